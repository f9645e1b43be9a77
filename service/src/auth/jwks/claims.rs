//! From verified claims to an `Identity`, in the shapes Keycloak and other OIDC providers use:
//! roles in `realm_access.roles` and `resource_access.<audience>.roles`, scopes in `scope` (space
//! separated) or `scp` (array or string), an optional tenant claim.

use serde_json::Value;

use crate::auth::{AuthError, Identity};

/// Keycloak `typ` claim values of tokens that are not access tokens.
const NOT_ACCESS_TOKENS: [&str; 4] = ["ID", "Refresh", "Offline", "Logout"];

pub fn identity_from_claims(
    claims: &Value,
    audience: &str,
    tenant_claim: &str,
    token: &str,
) -> Result<Identity, AuthError> {
    // Keycloak signs ID tokens with the same key and audience as access tokens; its `typ` claim
    // tells them apart. An ID token proves a login to a client, not a right to call this API.
    if let Some(kind) = claims.get("typ").and_then(Value::as_str)
        && NOT_ACCESS_TOKENS.iter().any(|t| t.eq_ignore_ascii_case(kind))
    {
        return Err(AuthError::Invalid(format!(
            "the token is a {kind} token, not an access token"
        )));
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Invalid("the token has no sub claim".into()))?;
    let mut roles = Vec::new();
    push_strings(&mut roles, claims.pointer("/realm_access/roles"));
    push_strings(
        &mut roles,
        claims
            .get("resource_access")
            .and_then(|r| r.get(audience))
            .and_then(|c| c.get("roles")),
    );
    let mut scopes = Vec::new();
    push_strings(&mut scopes, claims.get("scope"));
    push_strings(&mut scopes, claims.get("scp"));
    let tenant = claims
        .get(tenant_claim)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if tenant.as_deref().is_some_and(|t| t.contains('\0')) {
        // Tenants scope stored records; no store can hold U+0000 (PostgreSQL text cannot, the
        // embedded store's keys use it as a separator).
        return Err(AuthError::Invalid(format!(
            "the token's {tenant_claim} claim contains U+0000"
        )));
    }
    Ok(Identity {
        subject: subject.to_string(),
        roles,
        scopes,
        tenant,
        token: Some(token.to_string()),
        machine_admin: false,
    })
}

/// Appends the strings of an array, or the space-separated words of a string, skipping duplicates.
fn push_strings(into: &mut Vec<String>, value: Option<&Value>) {
    let mut push = |item: &str| {
        if !item.is_empty() && !into.iter().any(|existing| existing == item) {
            into.push(item.to_string());
        }
    };
    match value {
        Some(Value::String(words)) => words.split(' ').for_each(&mut push),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_keycloak_realm_and_client_roles_scopes_and_tenant() {
        let claims = json!({
            "sub": "alice",
            "realm_access": {"roles": ["offline_access", "editor"]},
            "resource_access": {
                "hex-core": {"roles": ["admin", "editor"]},
                "other-client": {"roles": ["superuser"]}
            },
            "scope": "openid records:read  records:write",
            "scp": ["records:read", "profile"],
            "tenant": "acme"
        });
        let identity = identity_from_claims(&claims, "hex-core", "tenant", "t").unwrap();
        assert_eq!(identity.subject, "alice");
        assert_eq!(identity.roles, vec!["offline_access", "editor", "admin"]);
        assert!(!identity.has_role("superuser"), "roles of other clients do not count");
        assert_eq!(
            identity.scopes,
            vec!["openid", "records:read", "records:write", "profile"]
        );
        assert_eq!(identity.tenant.as_deref(), Some("acme"));
        assert_eq!(identity.token.as_deref(), Some("t"));
        assert!(!identity.machine_admin);
    }

    #[test]
    fn keycloak_id_tokens_are_not_access_tokens() {
        let err = identity_from_claims(&json!({"sub": "alice", "typ": "ID"}), "a", "tenant", "t").unwrap_err();
        assert!(
            matches!(err, AuthError::Invalid(ref m) if m.contains("not an access token")),
            "{err}"
        );
        assert!(identity_from_claims(&json!({"sub": "alice", "typ": "Bearer"}), "a", "tenant", "t").is_ok());
    }

    #[test]
    fn a_tenant_with_a_nul_character_is_invalid() {
        let err = identity_from_claims(&json!({"sub": "a", "tenant": "t\u{0}x"}), "a", "tenant", "t").unwrap_err();
        assert!(
            matches!(err, AuthError::Invalid(ref m) if m.contains("U+0000")),
            "{err}"
        );
    }

    #[test]
    fn a_token_without_subject_is_invalid() {
        let err = identity_from_claims(&json!({"sub": ""}), "a", "tenant", "t").unwrap_err();
        assert!(matches!(err, AuthError::Invalid(_)));
    }
}
