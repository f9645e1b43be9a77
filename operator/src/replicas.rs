//! The replicas of a HexCoreService as the operator sees them: their addresses (from the
//! Service's EndpointSlices), what each reports (`GET /admin/ready`, the same JSON on 200 and
//! 503, and `GET /admin/version`), and the refresh call that makes one reload its catalog file.
//!
//! Replicas are found through `discovery.k8s.io/v1` EndpointSlices of the service (label
//! `kubernetes.io/service-name`), not through the Service address: a Service load-balances, so
//! calling it N times would not reach each replica once. Not-ready endpoints are read too: a
//! replica that failed to load its catalog is not ready, and its answer says why.

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize;
use serde_json::Value;

use crate::crd::EntryCounts;
use crate::desired::PORT_NAME;

/// One replica's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// `host:port`, IPv6 hosts in brackets.
    pub authority: String,
    /// The pod behind it, if the slice says.
    pub pod: Option<String>,
    /// The endpoint's `ready` condition (an unknown condition counts as ready, per the API).
    pub ready: bool,
}

/// Endpoints (ready or not, never terminating) of the `http` port across `slices`, sorted by
/// pod and address, each address once.
pub fn endpoints(slices: &[EndpointSlice]) -> Vec<Endpoint> {
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
            if conditions.terminating == Some(true) {
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
            out.push(Endpoint {
                authority,
                pod,
                ready: conditions.ready != Some(false),
            });
        }
    }
    out.sort_by(|a, b| (&a.pod, &a.authority).cmp(&(&b.pod, &b.authority)));
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|e| seen.insert(e.authority.clone()));
    out
}

/// One entry of `failed_entries` in `GET /admin/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReportedFailure {
    pub model: String,
    pub version: String,
    #[serde(default = "failed_state")]
    pub state: String,
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub transient: bool,
    #[serde(default)]
    pub attempts: Option<i64>,
    #[serde(default)]
    pub since: Option<String>,
    /// When the replica retries on its own; `None`: no automatic retry is scheduled.
    #[serde(default)]
    pub next_retry_at: Option<String>,
}

fn failed_state() -> String {
    "failed".to_string()
}

/// The body of `GET /admin/ready` (interface 1 in docs/operator.md), on 200 and on 503.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ReadyReport {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub catalog_sha256: Option<String>,
    #[serde(default)]
    pub models_loaded: Option<i64>,
    /// `{total, loaded, stale, failed}`; read leniently (see [`ReadyReport::entry_counts`]).
    #[serde(default)]
    pub entries: Option<Value>,
    /// `None` from a service older than interface 1, which cannot say; `Some([])`: all loaded.
    #[serde(default)]
    pub failed_entries: Option<Vec<ReportedFailure>>,
}

impl ReadyReport {
    /// The entry counts, when the replica reports them in interface 1's shape.
    pub fn entry_counts(&self) -> Option<EntryCounts> {
        serde_json::from_value(self.entries.clone()?).ok()
    }

    pub fn failures(&self) -> &[ReportedFailure] {
        self.failed_entries.as_deref().unwrap_or_default()
    }

    /// Serves catalog `want` with every entry loaded. A replica too old to report
    /// `failed_entries` is judged by the catalog hash alone (all it can tell).
    pub fn serves(&self, want: &str) -> bool {
        self.catalog_sha256.as_deref() == Some(want) && self.failures().is_empty()
    }
}

/// What one replica answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRead {
    pub endpoint: Endpoint,
    /// The ready report, or why there is none (connection refused, timeout, not JSON).
    pub report: Result<ReadyReport, String>,
    /// `service_version` of `GET /admin/version`, when it answered.
    pub version: Option<String>,
}

#[derive(Deserialize)]
struct VersionBody {
    service_version: Option<String>,
}

/// HTTP client for the replicas' admin endpoints.
#[derive(Clone)]
pub struct ReplicaClient {
    http: reqwest::Client,
}

/// Longest piece of a replica's answer quoted in an error.
const QUOTE_MAX: usize = 300;

impl ReplicaClient {
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

    /// Reads one replica: its ready report (200 or 503, the same JSON) and, with the admin
    /// token, its version.
    pub async fn read(&self, endpoint: &Endpoint, token: Option<&str>) -> ReplicaRead {
        let (report, version) = tokio::join!(self.ready(endpoint), async {
            match token {
                Some(token) => self.version(endpoint, token).await,
                None => None,
            }
        });
        ReplicaRead {
            endpoint: endpoint.clone(),
            report,
            version,
        }
    }

    async fn ready(&self, endpoint: &Endpoint) -> Result<ReadyReport, String> {
        let url = format!("http://{}/admin/ready", endpoint.authority);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        serde_json::from_slice::<ReadyReport>(&body).map_err(|e| {
            let text = String::from_utf8_lossy(&body);
            format!(
                "GET {url}: HTTP {status}, not the ready report ({e}): {}",
                text.chars().take(QUOTE_MAX).collect::<String>()
            )
        })
    }

    async fn version(&self, endpoint: &Endpoint, token: &str) -> Option<String> {
        let url = format!("http://{}/admin/version", endpoint.authority);
        let response = self.http.get(&url).bearer_auth(token).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<VersionBody>().await.ok()?.service_version
    }

    /// Asks one replica to reload its catalog file (`POST /admin/registry/refresh` with the
    /// machine admin token), then reads it again.
    pub async fn refresh(&self, endpoint: &Endpoint, token: &str) -> ReplicaRead {
        let url = format!("http://{}/admin/registry/refresh", endpoint.authority);
        let refreshed = match self.http.post(&url).bearer_auth(token).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                Err(format!(
                    "POST {url}: HTTP {status}: {}",
                    body.chars().take(QUOTE_MAX).collect::<String>()
                ))
            }
            Err(e) => Err(format!("POST {url}: {e}")),
        };
        let mut read = self.read(endpoint, Some(token)).await;
        if let Err(error) = refreshed {
            // The refresh call failed but the replica may still answer /admin/ready: keep its
            // report and say why it was not refreshed only when it has none.
            if read.report.is_err() {
                read.report = Err(error);
            }
        }
        read
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
    use serde_json::json;

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
            ports: Some(vec![
                EndpointPort {
                    name: Some("management".into()),
                    port: Some(9464),
                    ..Default::default()
                },
                EndpointPort {
                    name: Some("http".into()),
                    port: Some(8080),
                    ..Default::default()
                },
            ]),
        }
    }

    #[test]
    fn every_non_terminating_endpoint_of_the_http_port_is_read_with_its_readiness() {
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
        let found: Vec<(String, bool)> = endpoints(&slices).into_iter().map(|e| (e.authority, e.ready)).collect();
        assert_eq!(
            found,
            [
                ("10.0.0.2:8080".to_string(), true),
                ("10.0.0.3:8080".to_string(), false),
                ("10.0.0.4:8080".to_string(), true),
                ("[fd00::1]:8080".to_string(), true),
            ]
        );
        assert_eq!(endpoints(&slices)[0].pod.as_deref(), Some("pod-10.0.0.2"));
    }

    #[test]
    fn the_ready_report_of_interface_1_is_read_on_200_and_503_alike() {
        let body = json!({
            "status": "not_ready", "reason": "1 catalog entry failed to load",
            "catalog_sha256": "abc", "models_loaded": 3,
            "entries": {"total": 4, "loaded": 3, "stale": 0, "failed": 1},
            "failed_entries": [{"model": "m", "version": "1", "state": "failed", "artifact": "shacl",
                "error": "GET https://h/m.ttl: HTTP 503", "transient": true, "attempts": 3,
                "since": "2026-11-27T10:00:00Z", "next_retry_at": "2026-11-27T10:00:08Z"}],
            "auth": {"ready": true}
        });
        let report: ReadyReport = serde_json::from_value(body).unwrap();
        assert_eq!(
            report.entry_counts(),
            Some(EntryCounts {
                total: 4,
                loaded: 3,
                stale: 0,
                failed: 1
            })
        );
        assert_eq!(report.failures()[0].artifact.as_deref(), Some("shacl"));
        assert!(!report.serves("abc"), "the hash alone is not convergence");
        let fixed = ReadyReport {
            failed_entries: Some(vec![]),
            ..report.clone()
        };
        assert!(fixed.serves("abc"));
        assert!(!fixed.serves("other"));
    }

    #[test]
    fn an_older_service_without_per_entry_state_is_judged_by_the_hash() {
        let report: ReadyReport =
            serde_json::from_value(json!({"status": "ready", "models_loaded": 2, "catalog_sha256": "abc"})).unwrap();
        assert!(report.serves("abc"));
        assert_eq!(report.entry_counts(), None);
        // A refresh answer whose `entries` is a list (the pre-interface shape) is not counts.
        let report: ReadyReport =
            serde_json::from_value(json!({"catalog_sha256": "abc", "entries": [{"model": "m"}]})).unwrap();
        assert_eq!(report.entry_counts(), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let cap = Duration::from_secs(30);
        let delays: Vec<u64> = (0..8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX, cap), cap);
    }
}
