//! The operator's memory does not grow with data it does not use, on a real API server: Secrets
//! are watched as metadata only (their content is read only for the Secrets a HexCoreService
//! references), and EndpointSlices and pods only for the operator's own Services and pods. Before
//! this, every Secret of every watched namespace sat in the operator's memory, content included:
//! 240 Secrets of 512 KiB took its peak RSS from 17 MiB to 346 MiB, over its 128Mi limit.

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{StreamExt, stream};
use hex_core_operator::crd::{HexCoreService, ModelCatalog};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use support::{RunningOperator, TestNs, eventually, install_crds, plane};

const WAIT: Duration = Duration::from_secs(60);

/// One request: method, path, query and `Accept` header.
type Request = (String, String, String, String);

/// Every request the operator sent.
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<Request>>>);

#[derive(Clone)]
struct LogLayer(RequestLog);

impl<S> tower::Layer<S> for LogLayer {
    type Service = Logged<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Logged {
            inner,
            log: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Logged<S> {
    inner: S,
    log: RequestLog,
}

impl<S, B> tower::Service<http::Request<B>> for Logged<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let accept = request
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.log.0.lock().unwrap().push((
            request.method().to_string(),
            request.uri().path().to_string(),
            request.uri().query().unwrap_or_default().to_string(),
            accept,
        ));
        self.inner.call(request)
    }
}

/// `count` Secrets of `size` random-looking bytes (not compressible, like certificates or keys).
async fn create_large_secrets(ns: &TestNs, count: usize, size: usize) {
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    let creates = (0..count).map(|i| {
        let secrets = secrets.clone();
        async move {
            let mut bytes = vec![0u8; size];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ i as u64;
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(format!("unrelated-{i}")),
                    ..Default::default()
                },
                data: Some([("blob".to_string(), ByteString(bytes))].into()),
                ..Default::default()
            };
            secrets.create(&PostParams::default(), &secret).await.map(|_| ())
        }
    });
    let results: Vec<_> = stream::iter(creates).buffer_unordered(8).collect().await;
    for result in results {
        result.expect("create a large Secret");
    }
}

async fn create_catalog_and_service(ns: &TestNs) {
    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    catalogs
        .create(&PostParams::default(), &support::minimal_catalog("c"))
        .await
        .unwrap();
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    services
        .create(&PostParams::default(), &support::minimal_service("svc", "c", json!({})))
        .await
        .unwrap();
}

async fn wait_for_status(ns: &TestNs) {
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    eventually(WAIT, "the service's status", || async {
        let status = services.get("svc").await.unwrap().status?;
        let ready = status.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.reason == "NoReadyReplicas").then_some(())
    })
    .await;
}

#[tokio::test]
async fn secrets_are_watched_as_metadata_and_slices_and_pods_by_the_operators_label() {
    let ns = TestNs::new("mem-requests").await;
    install_crds(&ns.client).await;
    let log = RequestLog::default();
    let builder = kube::client::ClientBuilder::try_from(support::config(&ns.name).await).unwrap();
    let client = builder.with_layer(&LogLayer(log.clone())).build();
    let _operator = RunningOperator::start(client, &ns.name);
    create_catalog_and_service(&ns).await;
    wait_for_status(&ns).await;

    let requests = log.0.lock().unwrap().clone();
    let collection = |resource: &str| -> Vec<Request> {
        requests
            .iter()
            .filter(|(method, path, _, _)| method == "GET" && path.ends_with(&format!("/{resource}")))
            .cloned()
            .collect()
    };
    let secret_lists = collection("secrets");
    assert!(!secret_lists.is_empty(), "Secrets are watched: {requests:?}");
    for (_, path, query, accept) in &secret_lists {
        assert!(
            accept.contains("as=PartialObjectMetadata"),
            "Secrets are listed and watched as metadata only: {path}?{query} Accept: {accept}"
        );
        assert!(
            query.contains("limit=") || query.contains("watch=true"),
            "{path}?{query}"
        );
    }
    // The only Secret read with its content is the one the service references.
    let secret_reads: Vec<&String> = requests
        .iter()
        .filter(|(method, path, _, _)| method == "GET" && path.contains("/secrets/"))
        .map(|(_, path, _, _)| path)
        .collect();
    assert!(
        secret_reads.iter().all(|p| p.ends_with("/secrets/svc-admin-token")),
        "{secret_reads:?}"
    );
    for resource in ["endpointslices", "pods", "configmaps", "deployments", "services"] {
        let lists = collection(resource);
        assert!(!lists.is_empty(), "{resource} are watched: {requests:?}");
        for (_, path, query, _) in lists {
            assert!(
                query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dhex-core-operator"),
                "{resource} narrowed to the operator's label: {path}?{query}"
            );
        }
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak RSS bound of the operator process in this test, and the size of the unrelated Secrets
/// (64 × 512 KiB = 32 MiB of content, which the old watch held in memory several times over).
const PEAK_BOUND_MIB: u64 = 40;
const SECRETS: usize = 64;
const SECRET_SIZE: usize = 512 * 1024;

#[tokio::test]
async fn large_unrelated_secrets_do_not_raise_the_operators_peak_memory() {
    let ns = TestNs::new("mem-rss").await;
    install_crds(&ns.client).await;
    create_large_secrets(&ns, SECRETS, SECRET_SIZE).await;
    create_catalog_and_service(&ns).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let operator = Child(
        Command::new(env!("CARGO_BIN_EXE_hex-core-operator"))
            .args(["--namespaces", &ns.name, "--no-leader-election"])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", &plane().kubeconfig)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hex-core-operator"),
    );
    wait_for_status(&ns).await;
    // A few more seconds of watching, resyncs included.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = vm_hwm_kib(operator.0.id());
    assert!(peak > 0, "VmHWM of the operator");
    assert!(
        peak < PEAK_BOUND_MIB * 1024,
        "peak RSS {:.1} MiB with {SECRETS} unrelated Secrets of {} KiB (bound {PEAK_BOUND_MIB} MiB)",
        peak as f64 / 1024.0,
        SECRET_SIZE / 1024
    );
}
