//! Server-side apply with one field manager, and the check that decides when it is not needed.
//!
//! "Not needed" needs two checks. The `hex-core.dev/applied-hash` annotation records
//! which desired object was last applied, so a field *removed* from the desired state (which SSA
//! would prune) is noticed. And the desired object must be contained in the live one, so an
//! edit by someone else (drift) is noticed and undone. Server-added fields (defaults, status,
//! other managers' fields) are ignored by the containment check.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};

use crate::desired::{APPLIED_HASH_ANNOTATION, MANAGER, sha256_hex};

/// True when every field of `desired` has the same value in `live` (lists: same length and
/// element-wise containment). Resource quantities (the values of `limits` and `requests`) are
/// compared by value, since the API server rewrites them in canonical form.
pub fn contained_in(desired: &Value, live: &Value) -> bool {
    contained(desired, live, false)
}

fn contained(desired: &Value, live: &Value, quantities: bool) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| {
            // Every value inside a `limits` or `requests` map is a quantity.
            let child_quantities = quantities || k == "limits" || k == "requests";
            l.get(k).is_some_and(|lv| contained(dv, lv, child_quantities)) || (dv.is_null() && l.get(k).is_none())
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| contained(a, b, false))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) if quantities => crate::quantity::same_quantity(a, b),
        (a, b) => a == b,
    }
}

/// `desired` with the applied-hash annotation set to the hash of `desired` itself.
pub fn with_applied_hash(mut desired: Value) -> Value {
    let hash = sha256_hex(desired.to_string().as_bytes());
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(APPLIED_HASH_ANNOTATION.to_string(), Value::String(hash));
        }
    }
    desired
}

/// Server-side applies `desired` (a full object with apiVersion, kind, metadata.name, and the
/// applied-hash annotation) with the operator's field manager, taking over fields another manager
/// changed (drift is undone, not negotiated). Returns the object as the server stored it.
pub async fn server_side_apply<K>(api: &Api<K>, desired: &Value) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = desired["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply(MANAGER).force();
    api.patch(name, &params, &Patch::Apply(desired)).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_added_fields_do_not_count_as_differences() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"name": "http", "port": 80}]}});
        let live = json!({"spec": {"replicas": 2, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                           "revisionHistoryLimit": 10}, "status": {"x": 1}});
        assert!(contained_in(&desired, &live));
    }

    #[test]
    fn edited_values_and_changed_list_lengths_are_differences() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        assert!(!contained_in(
            &desired,
            &json!({"spec": {"replicas": 5, "ports": [{"port": 80}]}})
        ));
        assert!(!contained_in(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 81}]}})
        ));
        assert!(!contained_in(&desired, &json!({"spec": {"replicas": 2}})));
    }

    #[test]
    fn quantities_under_limits_and_requests_compare_by_value() {
        let desired = json!({"resources": {"limits": {"cpu": "0.5", "memory": "0.5Gi"}, "requests": {"cpu": "1"}}});
        let canonical =
            json!({"resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "1000m"}}});
        assert!(contained_in(&desired, &canonical));
        let edited = json!({"resources": {"limits": {"cpu": "600m", "memory": "512Mi"}, "requests": {"cpu": "1"}}});
        assert!(!contained_in(&desired, &edited));
        // Elsewhere strings stay strings: an image tag "1.0" is not the same as "1".
        assert!(!contained_in(&json!({"image": "1.0"}), &json!({"image": "1"})));
        assert!(!contained_in(
            &json!({"labels": {"v": "0.5"}}),
            &json!({"labels": {"v": "500m"}})
        ));
    }

    #[test]
    fn the_applied_hash_tracks_the_desired_object() {
        let a = with_applied_hash(json!({"metadata": {"name": "x"}, "data": {"k": "1"}}));
        let b = with_applied_hash(json!({"metadata": {"name": "x"}, "data": {"k": "1"}}));
        let c = with_applied_hash(json!({"metadata": {"name": "x"}, "data": {}}));
        let hash = |v: &Value| v["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].clone();
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(
            hash(&a),
            hash(&c),
            "a removed field changes the hash, so the removal is applied"
        );
        // A live object still carrying the removed key contains the new desired data, but not its hash.
        assert!(!contained_in(&c, &a));
    }
}
