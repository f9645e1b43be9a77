//! Verified catalog delivery: every ready replica is asked to reload its catalog file and must
//! report the hash of the exact bytes the operator wrote.
//!
//! Replicas are found through `discovery.k8s.io/v1` EndpointSlices of the service (label
//! `kubernetes.io/service-name`), not through the Service address: a Service load-balances, so
//! calling it N times would not reach each replica once. A replica that already reports the
//! wanted hash on the open `GET /admin/ready` is not refreshed again; the others get
//! `POST /admin/registry/refresh` with the machine admin token.

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize;

use crate::desired::PORT_NAME;

/// One ready replica's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// `host:port`, IPv6 hosts in brackets.
    pub authority: String,
    /// The pod behind it, if the slice says.
    pub pod: Option<String>,
}

/// Ready (and not terminating) endpoints of the `http` port across `slices`, sorted, deduplicated.
pub fn ready_endpoints(slices: &[EndpointSlice]) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for slice in slices {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(PORT_NAME) || p.name.as_deref() == Some(""))
            .or_else(|| slice.ports.iter().flatten().next())
            .and_then(|p| p.port)
        else {
            continue;
        };
        let ipv6 = slice.address_type == "IPv6";
        for ep in &slice.endpoints {
            let conditions = ep.conditions.clone().unwrap_or_default();
            // Per the EndpointSlice API, an unknown (nil) ready condition counts as ready.
            if conditions.ready == Some(false) || conditions.terminating == Some(true) {
                continue;
            }
            let Some(address) = ep.addresses.first() else { continue };
            let authority = if ipv6 {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            };
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            out.push(Endpoint { authority, pod });
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.authority == b.authority);
    out
}

/// What one replica reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Serves the wanted catalog; `refreshed` when it took a refresh call to get there.
    Converged { refreshed: bool, errors: Vec<String> },
    /// Answered, but with another catalog (e.g. the kubelet has not synced the file yet).
    Stale { reported: Option<String> },
    /// Did not answer usefully.
    Failed { error: String },
}

impl Outcome {
    pub fn converged(&self) -> bool {
        matches!(self, Outcome::Converged { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Converged { refreshed: true, .. } => "refreshed",
            Outcome::Converged { refreshed: false, .. } => "already_current",
            Outcome::Stale { .. } => "stale",
            Outcome::Failed { .. } => "failed",
        }
    }
}

#[derive(Deserialize)]
struct ReadyBody {
    catalog_sha256: Option<String>,
}

#[derive(Deserialize)]
struct RefreshBody {
    catalog_sha256: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

/// HTTP client for the replicas' admin endpoints.
#[derive(Clone)]
pub struct RefreshClient {
    http: reqwest::Client,
}

impl RefreshClient {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("hex-core-operator/", env!("CARGO_PKG_VERSION")))
            // Replicas are addressed by pod IP; a proxy from the environment must not intervene.
            .no_proxy()
            .build()?;
        Ok(Self { http })
    }

    /// Brings one replica onto `want` (hex SHA-256), refreshing it if needed.
    pub async fn converge(&self, endpoint: &Endpoint, token: &str, want: &str) -> Outcome {
        let base = format!("http://{}", endpoint.authority);
        if let Ok(response) = self.http.get(format!("{base}/admin/ready")).send().await
            && response.status().is_success()
            && let Ok(body) = response.json::<ReadyBody>().await
            && body.catalog_sha256.as_deref() == Some(want)
        {
            return Outcome::Converged {
                refreshed: false,
                errors: vec![],
            };
        }
        let response = match self
            .http
            .post(format!("{base}/admin/registry/refresh"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    error: format!("POST {base}/admin/registry/refresh: {e}"),
                };
            }
        };
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Outcome::Failed {
                error: format!(
                    "POST {base}/admin/registry/refresh: HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ),
            };
        }
        match response.json::<RefreshBody>().await {
            Ok(body) if body.catalog_sha256.as_deref() == Some(want) => Outcome::Converged {
                refreshed: true,
                errors: body.errors,
            },
            Ok(body) => Outcome::Stale {
                reported: body.catalog_sha256,
            },
            Err(e) => Outcome::Failed {
                error: format!("POST {base}/admin/registry/refresh: unreadable body: {e}"),
            },
        }
    }
}

/// Capped exponential backoff for re-checking unconverged replicas: 1 s, 2 s, 4 s, ... ≤ `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let secs = 1u64.checked_shl(attempt.min(20)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(cap)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointConditions, EndpointPort};

    use super::*;

    fn endpoint(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> SliceEndpoint {
        SliceEndpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: None,
                terminating,
            }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(format!("pod-{ip}")),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(address_type: &str, endpoints: Vec<SliceEndpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: address_type.into(),
            endpoints,
            metadata: Default::default(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                ..Default::default()
            }]),
        }
    }

    #[test]
    fn only_ready_non_terminating_endpoints_are_targets() {
        let slices = [
            slice(
                "IPv4",
                vec![
                    endpoint("10.0.0.2", Some(true), None),
                    endpoint("10.0.0.3", Some(false), None),
                    endpoint("10.0.0.4", None, None),
                    endpoint("10.0.0.5", Some(true), Some(true)),
                ],
            ),
            slice("IPv6", vec![endpoint("fd00::1", Some(true), None)]),
            slice("IPv4", vec![endpoint("10.0.0.2", Some(true), None)]),
        ];
        let authorities: Vec<String> = ready_endpoints(&slices).into_iter().map(|e| e.authority).collect();
        assert_eq!(authorities, ["10.0.0.2:8080", "10.0.0.4:8080", "[fd00::1]:8080"]);
        assert_eq!(ready_endpoints(&slices)[0].pod.as_deref(), Some("pod-10.0.0.2"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let cap = Duration::from_secs(30);
        let delays: Vec<u64> = (0..8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX, cap), cap);
    }
}
