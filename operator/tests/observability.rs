//! The chart's observability kit against the real things it describes: the PrometheusRule's
//! alerts through `promtool check rules` and `promtool test rules`
//! (charts/hex-core-operator/tests/alerts.test.yaml), the data-plane PodMonitor against the
//! Deployment the operator renders, and every metric name in the alerts and the Grafana
//! dashboard against the `/admin/metrics` of a running service binary and the operator's
//! registry, and the operator keeping its HexCoreService condition gauge in step with the status
//! on a real API server. Needs helm (`scripts/control-plane build`), promtool
//! (`scripts/promtool build`, or `HEX_PROMTOOL`) and, for that last test, the test control plane
//! (`HEX_TEST_KUBECONFIG`, else one is started).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hex_core_operator::crd::HexCoreService;
use hex_core_operator::desired;
use hex_core_operator::metrics::Metrics;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{RunningOperator, TestNs, eventually, install_crds, repo_root, yaml_documents};

const MONITORING_APIS: [&str; 4] = [
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions",
    "monitoring.coreos.com/v1/PodMonitor",
];

fn chart_dir() -> PathBuf {
    repo_root().join("charts/hex-core-operator")
}

/// Prints a pinned tool's path via its build script, or fails saying how to build it.
fn built_tool(script: &str, args: &[&str], build_hint: &str) -> String {
    let out = Command::new(repo_root().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{}\n{build_hint}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn helm() -> PathBuf {
    let bin = built_tool(
        "scripts/control-plane",
        &["bin"],
        "helm is missing: run `scripts/control-plane build`",
    );
    PathBuf::from(bin).join("helm")
}

/// `HEX_PROMTOOL` (scripts/test exports it), else the cached build of scripts/promtool.
fn promtool() -> PathBuf {
    let path = match std::env::var("HEX_PROMTOOL") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(built_tool(
            "scripts/promtool",
            &["path"],
            "promtool is missing: run `scripts/promtool build` (or set HEX_PROMTOOL to a promtool binary)",
        )),
    };
    assert!(
        path.is_file(),
        "promtool is missing at {}: run `scripts/promtool build` (or set HEX_PROMTOOL)",
        path.display()
    );
    path
}

fn run_ok(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `helm template` of the chart with `values` (`--set` pairs) and the monitoring APIs served.
fn render(values: &[&str], api_versions: bool) -> Vec<Value> {
    let chart = chart_dir();
    let mut args = vec!["template", "hco", chart.to_str().unwrap(), "--namespace", "hex-system"];
    if api_versions {
        args.extend(MONITORING_APIS);
    }
    for value in values {
        // `json:` values keep their type (helm's --set makes 0.2 a string).
        match value.strip_prefix("json:") {
            Some(value) => args.extend(["--set-json", value]),
            None => args.extend(["--set", value]),
        }
    }
    let out = run_ok(&helm(), &args);
    yaml_documents(&String::from_utf8(out.stdout).unwrap())
}

fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn count(docs: &[Value], kind: &str) -> usize {
    docs.iter().filter(|d| d["kind"] == kind).count()
}

fn rule_with_defaults() -> Value {
    let docs = render(&["metrics.prometheusRule.enabled=true"], true);
    only(&docs, "PrometheusRule").clone()
}

fn alerts(rule: &Value) -> BTreeMap<String, Value> {
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| (r["alert"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// PrometheusRule
// ---------------------------------------------------------------------------------------------

#[test]
fn prometheus_rule_alerts_pass_promtool_check_and_their_unit_tests() {
    let promtool = promtool();
    let rule = rule_with_defaults();
    let names: Vec<String> = alerts(&rule).into_keys().collect();
    assert_eq!(
        names,
        [
            "HexCoreCatalogNotConverged",
            "HexCoreHigh5xxRatio",
            "HexCoreJwksStale",
            "HexCoreModelLoadFailures",
            "HexCoreOperatorWatchErrors",
            "HexCoreRegistryRefreshErrors",
            "HexCoreServiceNotReady",
        ],
        "the alerts of docs/observability.md"
    );
    for (name, alert) in alerts(&rule) {
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            assert!(alert["annotations"][annotation].is_string(), "{name}: no {annotation}");
        }
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = runbook.rsplit_once('#').map(|(_, a)| a).unwrap_or_default();
        assert_eq!(anchor, name.to_lowercase(), "{name}: runbook_url {runbook}");
        assert!(
            docs_anchors().contains(anchor),
            "{name}: docs/observability.md has no heading for #{anchor}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let groups = json!({"groups": rule["spec"]["groups"]});
    std::fs::write(&rules, serde_yaml::to_string(&groups).unwrap()).unwrap();
    let tests = dir.path().join("alerts.test.yaml");
    std::fs::copy(chart_dir().join("tests/alerts.test.yaml"), &tests).unwrap();

    let checked = run_ok(&promtool, &["check", "rules", rules.to_str().unwrap()]);
    let checked = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{checked}"
    );
    let tested = run_ok(&promtool, &["test", "rules", tests.to_str().unwrap()]);
    let tested = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Every alert has a firing case in the unit tests (promtool itself fails when a non-firing
    // case fires).
    let test_file = std::fs::read_to_string(&tests).unwrap();
    for name in names {
        assert!(
            test_file.contains(&format!("alertname: {name}")),
            "{name} has no promtool unit test"
        );
    }
}

/// Lower-cased heading texts of docs/observability.md, the way the forge makes anchors.
fn docs_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/observability.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect()
}

#[test]
fn prometheus_rule_needs_the_api_and_its_alerts_can_be_tuned_or_turned_off() {
    let without_api = render(&["metrics.prometheusRule.enabled=true"], false);
    assert_eq!(count(&without_api, "PrometheusRule"), 0, "only where the CRD is served");
    assert_eq!(count(&render(&[], true), "PrometheusRule"), 0, "off by default");

    let docs = render(
        &[
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.labels.release=kube-prometheus",
            "metrics.prometheusRule.alerts.jwksStale.enabled=false",
            "json:metrics.prometheusRule.alerts.http5xxRatio.threshold=0.2",
            "metrics.prometheusRule.alerts.http5xxRatio.window=10m",
            "metrics.prometheusRule.alerts.serviceNotReady.for=1h",
            "metrics.prometheusRule.alerts.serviceNotReady.severity=warning",
            "metrics.dataPlane.job=dpp",
            "metrics.prometheusRule.runbookBaseUrl=https://runbooks.example/hex",
        ],
        true,
    );
    let rule = only(&docs, "PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus");
    let alerts = alerts(rule);
    assert!(!alerts.contains_key("HexCoreJwksStale"));
    assert_eq!(alerts.len(), 6);
    let ratio = alerts["HexCoreHigh5xxRatio"]["expr"].as_str().unwrap();
    assert!(ratio.trim_end().ends_with("> 0.2"), "{ratio}");
    assert!(ratio.contains("[10m]") && ratio.contains("job=\"dpp\""), "{ratio}");
    let not_ready = &alerts["HexCoreServiceNotReady"];
    assert_eq!(not_ready["for"], "1h");
    assert_eq!(not_ready["labels"]["severity"], "warning");
    assert_eq!(
        not_ready["annotations"]["runbook_url"],
        "https://runbooks.example/hex#hexcoreservicenotready"
    );

    // With every operator alert off, its group is left out rather than rendered empty.
    let docs = render(
        &[
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.alerts.serviceNotReady.enabled=false",
            "metrics.prometheusRule.alerts.catalogNotConverged.enabled=false",
            "metrics.prometheusRule.alerts.operatorWatchErrors.enabled=false",
        ],
        true,
    );
    let groups: Vec<&str> = only(&docs, "PrometheusRule")["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["hex-core-service"]);

    let refused = Command::new(helm())
        .args(["template", "hco", chart_dir().to_str().unwrap()])
        .args(["--set-json", "metrics.prometheusRule.alerts.http5xxRatio.threshold=5"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a ratio above 1 is refused by values.schema.json"
    );
    let refused = String::from_utf8_lossy(&refused.stderr);
    assert!(refused.contains("threshold"), "{refused}");
}

// ---------------------------------------------------------------------------------------------
// PodMonitor
// ---------------------------------------------------------------------------------------------

fn hcs(name: &str) -> HexCoreService {
    serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1",
        "kind": "HexCoreService",
        "metadata": {"name": name, "namespace": "shop", "uid": "uid-1", "generation": 1},
        "spec": {
            "image": "registry.example/hex-core-service:0.1.0",
            "replicas": 2,
            "catalogs": {"names": ["c"]},
            "registry": {"allowedHosts": ["models.example"]},
            "auth": {"mode": "forward_auth"},
        },
    }))
    .expect("HexCoreService JSON")
}

#[test]
fn pod_monitor_selects_the_pods_and_the_port_of_the_deployment_the_operator_renders() {
    assert_eq!(
        count(
            &render(&["metrics.dataPlane.podMonitor.enabled=true"], false),
            "PodMonitor"
        ),
        0,
        "only where the CRD is served"
    );
    let docs = render(&["metrics.dataPlane.podMonitor.enabled=true"], true);
    let monitor = only(&docs, "PodMonitor");
    assert_eq!(monitor["spec"]["namespaceSelector"], json!({"any": true}));

    let deployment = desired::deployment(&hcs("orders"), "config-hash", "registry.test/hex-core-service:1");
    let template = deployment.spec.unwrap().template;
    let pod_labels = template.metadata.unwrap().labels.unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            pod_labels.get(key).map(String::as_str),
            value.as_str(),
            "the PodMonitor selects {key}={value}; the operator's pods have {pod_labels:?}"
        );
    }
    assert!(
        !selector.contains_key(desired::INSTANCE_LABEL),
        "every HexCoreService is scraped, not one"
    );

    let endpoints = monitor["spec"]["podMetricsEndpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint["path"], "/admin/metrics");
    let port_name = endpoint["port"].as_str().unwrap();
    assert_eq!(port_name, desired::MANAGEMENT_PORT_NAME);
    let pod = template.spec.unwrap();
    let container = &pod.containers[0];
    let port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some(port_name))
        .unwrap_or_else(|| panic!("the data-plane container has no port named {port_name}"));
    // The replicas' environment (their ConfigMap, loaded with envFrom).
    let environment = desired::environment(&hcs("orders"));
    assert_eq!(
        environment.get("SERVER_MANAGEMENT_PORT"),
        Some(&port.container_port.to_string()),
        "the named port is the one the service's management listener (no auth) binds"
    );

    // The `hexcoreservice` label comes from the pod label that names the HexCoreService.
    let relabel = endpoint["relabelings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["targetLabel"] == "hexcoreservice")
        .expect("a hexcoreservice relabeling");
    let meta_label = format!(
        "__meta_kubernetes_pod_label_{}",
        desired::INSTANCE_LABEL.replace(['.', '/', '-'], "_")
    );
    assert_eq!(relabel["sourceLabels"], json!([meta_label]));
    assert_eq!(pod_labels[desired::INSTANCE_LABEL], "orders");
    let job = endpoint["relabelings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["targetLabel"] == "job")
        .expect("a job relabeling");
    assert_eq!(job["replacement"], "hex-core-service", "the job the alerts select");

    let docs = render(
        &[
            "metrics.dataPlane.podMonitor.enabled=true",
            "metrics.dataPlane.podMonitor.namespaces={shop,billing}",
        ],
        true,
    );
    assert_eq!(
        only(&docs, "PodMonitor")["spec"]["namespaceSelector"],
        json!({"matchNames": ["shop", "billing"]})
    );
}

// ---------------------------------------------------------------------------------------------
// Grafana dashboard and metric names
// ---------------------------------------------------------------------------------------------

fn dashboard() -> Value {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/hex-core.json")).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard (panels and template variables), with Grafana's
/// variables replaced so Prometheus can parse them.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            // label_values(<selector>, <label>): the selector is the PromQL part.
            let query = variable["query"]["query"].as_str().unwrap();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _)| selector)
                .unwrap_or_else(|| panic!("unexpected variable query {query}"));
            exprs.push(inner.to_string());
        }
    }
    exprs
        .into_iter()
        .map(|e| {
            e.replace("$__rate_interval", "5m")
                .replace("$job", "hex-core-service")
                .replace("$namespace", ".*")
                .replace("$hexcoreservice", ".*")
        })
        .collect()
}

const PROMQL_KEYWORDS: [&str; 26] = [
    // Aggregations may put `by (...)` between their name and their argument.
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
];

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label
/// names (in `{...}` or in `by (...)`-style lists), strings, numbers or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_next_parens = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' || (c == '(' && skip_next_parens) {
            // Label matchers, ranges and label lists hold no metric names.
            let close = match c {
                '{' => '}',
                '[' => ']',
                _ => ')',
            };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
            skip_next_parens = false;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_lowercase();
            if PROMQL_KEYWORDS.contains(&lower.as_str()) {
                skip_next_parens = matches!(
                    lower.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
            } else if next != Some(&'(') {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (5m) are one token.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Families of a Prometheus/OpenMetrics exposition by their `# TYPE` lines.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
        .collect()
}

/// Whether `name` is a series name the exposition's families produce: a gauge's own name, a
/// counter's `_total`, a histogram's `_bucket`/`_sum`/`_count` (and nothing else for them).
fn exposed(name: &str, families: &BTreeMap<String, String>) -> bool {
    let kind_of = |family: &str| families.get(family).map(String::as_str);
    if matches!(kind_of(name), Some("gauge" | "unknown")) {
        return true;
    }
    if let Some(family) = name.strip_suffix("_total")
        && kind_of(family) == Some("counter")
    {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|family| kind_of(family) == Some("histogram"))
    })
}

#[test]
fn promql_metric_names_are_found_without_labels_functions_or_keywords() {
    let names = metric_names(
        r#"sum by (le, route) (rate(http_request_duration_seconds_bucket{job="x", a=~"5.."}[5m])) / on (pod) group_left(le) up unless time() - foo:bar > 0.05 or absent(b_total offset 1h)"#,
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        ["b_total", "foo:bar", "http_request_duration_seconds_bucket", "up"]
    );

    let families = families("# TYPE h histogram\n# TYPE c counter\n# TYPE g gauge\n");
    for (name, ok) in [
        ("h_bucket", true),
        ("h_count", true),
        ("h", false),
        ("c_total", true),
        ("c", false),
        ("c_count", false),
        ("g", true),
        ("g_bucket", false),
        ("g_total", false),
    ] {
        assert_eq!(exposed(name, &families), ok, "{name}");
    }
}

/// A JWKS endpoint on loopback serving RFC 7515's example P-256 public key (appendix A.3).
async fn jwks_server() -> SocketAddr {
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "rfc7515-a3", "use": "sig", "alg": "ES256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRjmdrwtTFqVHdJDPKjTK5pu_jq5xVZ3o_Ih7RU"
    }]});
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The service binary of this workspace, built (or found up to date) once per test run, so a
/// targeted run never tests a stale binary.
fn service_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            support::build_workspace_binaries(&[("hex-core-service", "hex-core-service")]).join("hex-core-service")
        })
        .clone()
}

/// A service process on loopback, killed on drop; its stderr is kept for failure messages.
struct Service {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(env: &[(&str, String)]) -> Service {
    let demo = repo_root().join("demo/catalog.json");
    let mut command = Command::new(service_binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REGISTRY_CATALOG_FILE", demo)
        .env("REGISTRY_ALLOW_LOCAL_ARTIFACTS", "true")
        .env("REGISTRY_ALLOWED_HOSTS", "localhost")
        .env("REGISTRY_REQUIRE_HTTPS", "true")
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", "0")
        // What the operator sets from `spec.metrics.enabled: true`.
        .env("METRICS_ENABLED", "true")
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the service binary starts");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    Service { child, log }
}

/// Polls `url` until `accept` likes the body; fails with the service's log otherwise.
async fn scrape_until(service: &Service, url: &str, what: &str, accept: impl Fn(&str) -> bool) -> String {
    hex_core_service::registry::fetch::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            let body = response.text().await.unwrap();
            if accept(&body) {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} at {url}; service log:\n{}",
            service.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::test]
async fn every_metric_in_the_dashboard_and_the_alerts_is_exported_by_the_service_or_the_operator() {
    let jwks = jwks_server().await;
    let management = support::free_port();
    let service = start_service(&[
        ("SERVER_MANAGEMENT_PORT", management.to_string()),
        ("AUTH_MODE", "jwt_jwks".into()),
        ("AUTH_JWKS_URL", format!("http://{jwks}/jwks")),
        ("AUTH_ISSUER", "https://idp.test/realms/hex".into()),
        ("AUTH_AUDIENCE", "hex-core".into()),
    ]);
    // The management port the PodMonitor scrapes, without a token; once the JWKS is loaded.
    let url = format!("http://127.0.0.1:{management}/admin/metrics");
    let service_exposition = scrape_until(&service, &url, "a loaded JWKS in the metrics", |body| {
        sample(body, "auth_jwks_keys") == Some(1.0)
    })
    .await;
    let fetched_at = sample(&service_exposition, "auth_jwks_last_success_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 60.0..=now + 1.0).contains(&fetched_at),
        "the last JWKS fetch is a Unix time of this minute: {fetched_at} vs {now}"
    );
    assert_eq!(
        sample(&service_exposition, "auth_jwks_fetches_total{result=\"success\"}"),
        Some(1.0),
        "{service_exposition}"
    );
    // A second replica without JWT auth takes traffic: requests, a validation with violations,
    // record creates and an idempotency conflict, so those families have series (a family
    // without any series is not in the exposition at all).
    let traffic = traffic_service().await;
    let mut service_families = families(&service_exposition);
    service_families.extend(families(&traffic));
    let operator_families = families(&operator_metrics_with_series());
    assert!(
        operator_families.contains_key("hexcore_operator_service_condition"),
        "{operator_families:?}"
    );

    let mut expressions: Vec<(String, String)> = dashboard_expressions(&dashboard())
        .into_iter()
        .map(|e| ("dashboard".to_string(), e))
        .collect();
    for (name, alert) in alerts(&rule_with_defaults()) {
        expressions.push((name, alert["expr"].as_str().unwrap().to_string()));
    }

    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    for (source, expr) in &expressions {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{source}: no metric in {expr}");
        for name in names {
            let families = if name.starts_with("hexcore_operator_") {
                &operator_families
            } else {
                &service_families
            };
            if !exposed(&name, families) {
                missing.push(format!("{source}: {name}"));
            }
            used.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "metrics not exported (renamed? a counter without _total? a histogram without _bucket?):\n{}\n\nservice families: {service_families:?}\noperator families: {operator_families:?}",
        missing.join("\n")
    );
    // The dashboard covers every family either exports, so a new metric gets a panel.
    let uncovered: Vec<&String> = service_families
        .iter()
        .chain(operator_families.iter())
        .filter(|(family, kind)| {
            let one = BTreeMap::from([((*family).clone(), (*kind).clone())]);
            !used.iter().any(|name| exposed(name, &one))
        })
        .map(|(family, _)| family)
        .collect();
    assert!(uncovered.is_empty(), "families without a panel or alert: {uncovered:?}");

    // The dashboard's PromQL parses: promtool checks it as recording rules.
    let rules: Vec<Value> = dashboard_expressions(&dashboard())
        .iter()
        .enumerate()
        .map(|(i, expr)| json!({"record": format!("dashboard:expr_{i}"), "expr": expr}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-rules.yaml");
    let groups = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, serde_yaml::to_string(&groups).unwrap()).unwrap();
    run_ok(&promtool(), &["check", "rules", "--lint=none", file.to_str().unwrap()]);
}

/// The operator's registry (what its `/metrics` serves) with one series in every family: the
/// names come from the registry, only the label values are made up here.
fn operator_metrics_with_series() -> String {
    let m = Metrics::new();
    let controller = vec![("controller", "hexcoreservice".to_string())];
    m.reconciles.get_or_create(&controller).inc();
    m.reconcile_duration.get_or_create(&controller).observe(0.01);
    m.watch_errors.get_or_create(&controller).inc();
    m.reconcile_errors
        .get_or_create(&vec![
            ("controller", "hexcoreservice".to_string()),
            ("reason", "Kube".to_string()),
        ])
        .inc();
    m.write("Deployment");
    m.refreshes
        .get_or_create(&vec![("outcome", "refreshed".to_string())])
        .inc();
    m.record_service_conditions("shop", "orders", &[]);
    m.render()
}

/// Starts a service with `AUTH_MODE=none`, sends it the traffic every family needs, and returns
/// its `/admin/metrics` from the management port.
async fn traffic_service() -> String {
    let management = support::free_port();
    let service = start_service(&[
        ("SERVER_MANAGEMENT_PORT", management.to_string()),
        ("AUTH_MODE", "none".into()),
        ("AUTH_ALLOW_INSECURE_NONE", "true".into()),
    ]);
    let metrics_url = format!("http://127.0.0.1:{management}/admin/metrics");
    let first = scrape_until(&service, &metrics_url, "the demo catalog loaded", |body| {
        sample(body, "registry_models_loaded") == Some(1.0)
    })
    .await;
    let base = main_url(&service, &first).await;
    let http = reqwest::Client::new();
    let version = format!("{base}/models/demo-passport/versions/0.1.0");
    let examples = repo_root().join("demo/examples");
    let invalid: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("passport-invalid.json")).unwrap()).unwrap();
    let valid: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("passport-valid.json")).unwrap()).unwrap();

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.get(format!("{base}/models")).send().await.unwrap()), 200);
    let validated = http
        .post(format!("{version}:validate"))
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), 200, "{}", validated.text().await.unwrap());
    // The example is a create body: {"payload": {...}}.
    let create = |body: &Value| {
        http.post(format!("{version}:create"))
            .header("Idempotency-Key", "observability-1")
            .json(body)
            .send()
    };
    let created = create(&valid).await.unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());
    let mut other = valid.clone();
    other["payload"]["id"] = json!("observability-other");
    assert_eq!(status(create(&other).await.unwrap()), 409, "an idempotency conflict");

    scrape_until(&service, &metrics_url, "the traffic's metrics", |body| {
        body.contains("validation_violations_total{") && body.contains("io_adapter_requests_total{")
    })
    .await
}

/// The main port's URL, from the service's "listening" log line.
async fn main_url(service: &Service, _metrics: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = service.log.lock().unwrap().lines().find_map(|line| {
            let entry: Value = serde_json::from_str(line).ok()?;
            (entry["message"] == "hex-core-service listening").then(|| entry["url"].as_str().map(str::to_string))?
        });
        if let Some(url) = url {
            return url;
        }
        assert!(Instant::now() < deadline, "no listening line in the service log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_service_whose_jwks_cannot_be_fetched_counts_errors_and_reports_no_success() {
    // A port nothing listens on: every fetch fails.
    let closed = support::free_port();
    let management = support::free_port();
    let service = start_service(&[
        ("SERVER_MANAGEMENT_PORT", management.to_string()),
        ("AUTH_MODE", "jwt_jwks".into()),
        ("AUTH_JWKS_URL", format!("http://127.0.0.1:{closed}/jwks")),
        ("AUTH_ISSUER", "https://idp.test/realms/hex".into()),
        ("AUTH_AUDIENCE", "hex-core".into()),
    ]);
    let url = format!("http://127.0.0.1:{management}/admin/metrics");
    let exposition = scrape_until(&service, &url, "a failed JWKS fetch in the metrics", |body| {
        sample(body, "auth_jwks_fetches_total{result=\"error\"}").is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(
        sample(&exposition, "auth_jwks_last_success_timestamp_seconds"),
        Some(0.0)
    );
    assert_eq!(sample(&exposition, "auth_jwks_keys"), Some(0.0));
    assert_eq!(
        sample(&exposition, "auth_jwks_fetches_total{result=\"success\"}"),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_service_without_jwt_auth_exports_no_jwks_metrics() {
    let management = support::free_port();
    let service = start_service(&[
        ("SERVER_MANAGEMENT_PORT", management.to_string()),
        ("AUTH_MODE", "none".into()),
        ("AUTH_ALLOW_INSECURE_NONE", "true".into()),
    ]);
    let url = format!("http://127.0.0.1:{management}/admin/metrics");
    let exposition = scrape_until(&service, &url, "the metrics", |body| {
        body.contains("registry_models_loaded")
    })
    .await;
    assert!(
        !exposition.contains("auth_jwks"),
        "HexCoreJwksStale must never fire for a service that verifies no JWT:\n{exposition}"
    );
}

#[test]
fn the_grafana_dashboard_ships_as_a_sidecar_config_map_when_asked() {
    assert_eq!(count(&render(&[], false), "ConfigMap"), 0, "off by default");
    let docs = render(&["metrics.grafanaDashboard.enabled=true"], false);
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "hco-hex-core-operator-dashboard")
        .expect("the dashboard ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(map["data"]["hex-core.json"].as_str().unwrap()).unwrap();
    assert_eq!(shipped, dashboard());
}

// ---------------------------------------------------------------------------------------------
// The operator's condition gauge on a real API server
// ---------------------------------------------------------------------------------------------

/// `hexcore_operator_service_condition` samples of one HexCoreService, by condition type.
fn condition_samples(exposition: &str, namespace: &str, name: &str) -> BTreeMap<String, f64> {
    let prefix =
        format!("hexcore_operator_service_condition{{namespace=\"{namespace}\",hexcoreservice=\"{name}\",type=\"");
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (type_, value) = rest.split_once("\"} ")?;
            Some((type_.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_condition_gauge_follows_the_status_the_operator_writes_and_goes_with_the_service() {
    use hex_core_operator::crd::{HexCoreService, ModelCatalog};
    const WAIT: Duration = Duration::from_secs(30);

    let ns = TestNs::new("obs").await;
    install_crds(&ns.client).await;
    let operator = RunningOperator::start(ns.client.clone(), &ns.name);
    let catalogs: Api<ModelCatalog> = Api::namespaced(ns.client.clone(), &ns.name);
    let catalog: ModelCatalog = serde_json::from_value(json!({
        "apiVersion": "hex-core.dev/v1alpha1", "kind": "ModelCatalog", "metadata": {"name": "c"},
        "spec": {"models": [{"model": "a", "version": "1", "schemaUrl": "https://h/a.json"}]},
    }))
    .unwrap();
    catalogs.create(&PostParams::default(), &catalog).await.unwrap();
    let services: Api<HexCoreService> = Api::namespaced(ns.client.clone(), &ns.name);
    services
        .create(
            &PostParams::default(),
            &support::minimal_service("svc", "c", json!({"replicas": 1})),
        )
        .await
        .unwrap();
    let metrics = operator.handle.metrics.clone();

    // No kubelet runs the pods: the operator reports the service not Ready, and so does the gauge.
    let samples = eventually(WAIT, "Ready=False in the status and the gauge", || async {
        let hcs = services.get("svc").await.ok()?;
        let conditions = hcs.status?.conditions?;
        let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
        let samples = condition_samples(&metrics.render(), &ns.name, "svc");
        (ready.status == "False" && samples.get("Ready") == Some(&0.0)).then_some(samples)
    })
    .await;
    let types: Vec<&str> = samples.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "CatalogSynced",
            "Degraded",
            "Progressing",
            "Ready",
            "ReconciliationPaused"
        ],
        "one series per condition type"
    );
    let status = services.get("svc").await.unwrap().status.unwrap();
    for condition in status.conditions.unwrap() {
        if let Some(value) = samples.get(&condition.type_) {
            assert_eq!(
                *value,
                if condition.status == "True" { 1.0 } else { 0.0 },
                "{condition:?} vs {samples:?}"
            );
        }
    }

    services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "ReconciliationPaused=1 in the gauge", || async {
        let samples = condition_samples(&metrics.render(), &ns.name, "svc");
        (samples.get("ReconciliationPaused") == Some(&1.0)).then_some(())
    })
    .await;

    services.delete("svc", &DeleteParams::default()).await.unwrap();
    eventually(WAIT, "the deleted service's series to go", || async {
        let gone = services.get_opt("svc").await.ok()?.is_none();
        (gone && condition_samples(&metrics.render(), &ns.name, "svc").is_empty()).then_some(())
    })
    .await;
}
