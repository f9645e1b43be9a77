//! Slow, idle and numerous clients over real sockets (issue 17, point 1), error answers that keep
//! a connection usable (point 4) and requests hyper itself refuses (point 7): the service closes
//! what it must, answers with the JSON error envelope, and keeps serving everyone else.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::raw_http::{RawConnection, ReadEnd, request_bytes};
use support::{InProcessService, client, demo_env};

const VALIDATE: &str = "/models/demo-passport/versions/0.1.0:validate";

async fn service(extra: &[(&str, &str)]) -> InProcessService {
    InProcessService::start(&demo_env(extra)).await
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body.get("details").is_some(), "{body}");
}

fn valid_body() -> Vec<u8> {
    std::fs::read(support::demo_dir().join("examples/passport-valid.json")).unwrap()
}

#[tokio::test]
async fn slow_request_headers_get_408_with_the_envelope_then_the_connection_closes() {
    let service = service(&[("SERVER_HEADER_READ_TIMEOUT_MS", "500")]).await;
    let mut connection = RawConnection::connect(service.addr).await;
    let started = Instant::now();
    connection.send(b"GET /models HTTP/1.1\r\nhost: test\r\nx-slow: ").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    connection.send(b"still typing").await;
    let response = connection.read_response().await;
    let waited = started.elapsed();
    assert_eq!(response.status, 408);
    assert_envelope(&response.json(), "REQUEST_TIMEOUT");
    assert!(response.closes(), "{:?}", response.headers);
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(connection.wait_for_close(Duration::from_secs(3)).await, ReadEnd::Closed);
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_after_the_header_timeout() {
    let service = service(&[("SERVER_HEADER_READ_TIMEOUT_MS", "500")]).await;
    let mut connection = RawConnection::connect(service.addr).await;
    let started = Instant::now();
    assert_eq!(connection.wait_for_close(Duration::from_secs(5)).await, ReadEnd::Closed);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert!(connection.unread().is_empty(), "nothing is sent to a silent client");
}

#[tokio::test]
async fn a_slow_request_body_gets_408_and_the_connection_closes() {
    let service = service(&[("SERVER_BODY_READ_TIMEOUT_MS", "500")]).await;
    let mut connection = RawConnection::connect(service.addr).await;
    let started = Instant::now();
    connection
        .send(b"POST /models/demo-passport/versions/0.1.0:validate HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"payload\"")
        .await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 408);
    let body = response.json();
    assert_envelope(&body, "REQUEST_TIMEOUT");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("SERVER_BODY_READ_TIMEOUT_MS"),
        "{body}"
    );
    assert!(response.closes());
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(connection.wait_for_close(Duration::from_secs(5)).await, ReadEnd::Closed);
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_idle_timeout_not_the_header_timeout() {
    let service = service(&[
        ("SERVER_HEADER_READ_TIMEOUT_MS", "300"),
        ("SERVER_IDLE_TIMEOUT_SECS", "2"),
    ])
    .await;
    let mut connection = RawConnection::connect(service.addr).await;
    assert_eq!(connection.request("GET", "/models", &[], b"").await.status, 200);
    // Idle for longer than the header timeout: still open, and the next request is served.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(connection.request("GET", "/models", &[], b"").await.status, 200);
    let idle_since = Instant::now();
    assert_eq!(connection.wait_for_close(Duration::from_secs(5)).await, ReadEnd::Closed);
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(4),
        "{idle:?}"
    );
}

#[tokio::test]
async fn a_client_that_does_not_read_its_response_is_dropped_after_the_idle_timeout() {
    let service = service(&[("SERVER_IDLE_TIMEOUT_SECS", "1")]).await;
    let mut connection = RawConnection::connect_with_receive_buffer(service.addr, 4096).await;
    // Ask for the same artifact many times without reading: the server's writes block.
    let request = request_bytes("GET", "/models/demo-passport/versions/0.1.0/shacl", &[], b"");
    for _ in 0..2000 {
        if tokio::time::timeout(Duration::from_millis(200), connection.send(&request))
            .await
            .is_err()
        {
            break;
        }
    }
    let open = service.state.metrics.render();
    assert!(open.contains("http_connections_open{port=\"main\"} 1"), "{open}");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let text = service.state.metrics.render();
        if text.contains("http_connections_closed_total{port=\"main\",reason=\"write_stalled\"} 1") {
            assert!(text.contains("http_connections_open{port=\"main\"} 0"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection was not closed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_connection_limit_holds_while_probes_answer_on_the_management_port() {
    let service = service(&[
        ("SERVER_MAX_CONNECTIONS", "32"),
        ("SERVER_MANAGEMENT_PORT", "0"),
        ("SERVER_HEADER_READ_TIMEOUT_MS", "1000"),
    ])
    .await;
    // 100 slow-header clients: 32 are served (and held), the rest wait in the accept queue.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut connection = RawConnection::connect(service.addr).await;
        connection.send(b"GET /models HTTP/1.1\r\nhost: test\r\n").await;
        slow.push(connection);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = service.state.metrics.render();
    assert!(metrics.contains("http_connections_open{port=\"main\"} 32"), "{metrics}");
    assert!(
        sample(&metrics, "http_connection_limit_reached_total{port=\"main\"}") >= 1.0,
        "{metrics}"
    );

    // The liveness and readiness probes answer at once on the management port.
    let started = Instant::now();
    for path in ["/admin/health", "/admin/ready"] {
        let response = client().get(service.management(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // On the main port a new client waits behind them, and is served once they have timed out.
    let started = Instant::now();
    let response = client().get(service.url("/admin/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let mut timed_out = 0;
    for connection in &mut slow {
        if connection.read_response().await.status == 408 {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, 100);
}

#[tokio::test]
async fn idle_connections_give_way_when_the_limit_is_reached() {
    let service = service(&[("SERVER_MAX_CONNECTIONS", "4")]).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut connection = RawConnection::connect(service.addr).await;
        assert_eq!(connection.request("GET", "/models", &[], b"").await.status, 200);
        idle.push(connection);
    }
    let started = Instant::now();
    let mut fifth = RawConnection::connect(service.addr).await;
    assert_eq!(fifth.request("GET", "/models", &[], b"").await.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let mut closed = 0;
    for connection in &mut idle {
        if connection.wait_for_close(Duration::from_millis(500)).await == ReadEnd::Closed {
            closed += 1;
        }
    }
    assert!(closed >= 1, "an idle connection was closed to make room");
    let metrics = service.state.metrics.render();
    assert!(
        sample(
            &metrics,
            "http_connections_closed_total{port=\"main\",reason=\"connection_limit\"}"
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn error_answers_before_the_body_is_read_keep_the_connection_usable() {
    let service = service(&[]).await;
    let mut connection = RawConnection::connect(service.addr).await;
    let big = json!({"payload": {"id": "x".repeat(200_000)}}).to_string();
    let json_type = [("content-type", "application/json")];
    let text_type = [("content-type", "text/plain")];
    // (method, path, content type, status): each answered before its 200 KB body is read.
    let steps = [
        ("POST", "/models/nope/versions/1:validate", &json_type, 404),
        ("POST", "/models/nope/versions/1:query", &json_type, 404),
        ("POST", VALIDATE, &text_type, 415),
        ("POST", "/models/demo-passport/versions/0.1.0:explode", &json_type, 404),
        ("DELETE", "/models", &json_type, 405),
        ("POST", "/admin/health", &json_type, 405),
    ];
    for (method, path, headers, status) in steps {
        let response = connection.request(method, path, headers, big.as_bytes()).await;
        assert_eq!(response.status, status, "{method} {path}");
        assert!(!response.closes(), "{method} {path} keeps the connection");
        let next = connection.request("GET", "/models", &[], b"").await;
        assert_eq!(next.status, 200, "the request after {method} {path}");
    }
    let valid = valid_body();
    let response = connection.request("POST", VALIDATE, &json_type, &valid).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_401_before_the_body_is_read_keeps_the_connection_usable() {
    let service = service(&[("AUTH_MODE", "forward_auth")]).await;
    let mut connection = RawConnection::connect(service.addr).await;
    let valid = valid_body();
    let response = connection
        .request("POST", VALIDATE, &[("content-type", "application/json")], &valid)
        .await;
    assert_eq!(response.status, 401);
    assert!(!response.closes());
    let response = connection
        .request(
            "POST",
            VALIDATE,
            &[("content-type", "application/json"), ("x-auth-subject", "alice")],
            &valid,
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", String::from_utf8_lossy(&response.body));
}

#[tokio::test]
async fn a_body_too_large_to_drain_is_answered_and_closed_cleanly() {
    let service = service(&[("SERVER_REQUEST_MAX_BYTES", "65536")]).await;
    // The client sends all of its 2 MiB before reading, as most clients do: the service answers,
    // announces the close and keeps reading long enough that the answer is not lost to a reset.
    let big = vec![b' '; 2 * 1024 * 1024];
    let json_type = [("content-type", "application/json")];
    for (path, status, code) in [
        (VALIDATE, 413, "PAYLOAD_TOO_LARGE"),
        ("/models/nope/versions/1:validate", 404, "MODEL_NOT_FOUND"),
    ] {
        let mut connection = RawConnection::connect(service.addr).await;
        let response = connection.request("POST", path, &json_type, &big).await;
        assert_eq!(response.status, status, "{path}");
        assert_envelope(&response.json(), code);
        assert!(response.closes(), "{path}: {:?}", response.headers);
        assert_eq!(
            connection.wait_for_close(Duration::from_secs(5)).await,
            ReadEnd::Closed,
            "{path}"
        );
    }

    // With `Expect: 100-continue` an unread body is never requested, so it is not drained either.
    let mut connection = RawConnection::connect(service.addr).await;
    connection
        .send(
            b"POST /models/nope/versions/1:validate HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 5000\r\n\r\n",
        )
        .await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 404);
    assert!(response.closes(), "{:?}", response.headers);
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_error_envelope() {
    let service = service(&[]).await;
    let big_header = format!("x-big: {}\r\n", "a".repeat(70 * 1024));
    let many_headers: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "GET /models HTTP/1.1\r\nhost: test\r\nno colon here\r\n\r\n".into(),
            400,
            "BAD_REQUEST",
        ),
        ("G@T /models HTTP/1.1\r\nhost: test\r\n\r\n".into(), 400, "BAD_REQUEST"),
        ("GET /models HTTP/9.9\r\nhost: test\r\n\r\n".into(), 400, "BAD_REQUEST"),
        (
            "POST /models HTTP/1.1\r\nhost: test\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            "POST /models HTTP/1.1\r\nhost: test\r\ntransfer-encoding: gzip\r\n\r\n".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            format!("GET /models HTTP/1.1\r\nhost: test\r\n{big_header}\r\n"),
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
        (
            format!("GET /models HTTP/1.1\r\nhost: test\r\n{many_headers}\r\n"),
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
        ),
    ];
    for (request, status, code) in cases {
        let mut connection = RawConnection::connect(service.addr).await;
        connection.send(request.as_bytes()).await;
        let response = connection.read_response().await;
        let label = &request[..request.len().min(60)];
        assert_eq!(response.status, status, "{label:?}");
        assert_eq!(response.header("content-type"), Some("application/json"), "{label:?}");
        assert_envelope(&response.json(), code);
        assert!(response.closes(), "{label:?}");
        assert_eq!(
            connection.wait_for_close(Duration::from_secs(5)).await,
            ReadEnd::Closed,
            "{label:?}"
        );
    }

    // A broken chunked body is found by the handler reading it: 400 from the router.
    let mut connection = RawConnection::connect(service.addr).await;
    connection
        .send(b"POST /models/demo-passport/versions/0.1.0:validate HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
        .await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 400);
    assert_envelope(&response.json(), "BAD_REQUEST");

    // A request after a malformed one on a pipelined connection is not served.
    let mut connection = RawConnection::connect(service.addr).await;
    connection
        .send(b"GET /models HTTP/1.1\r\nhost: test\r\n\r\nGET /models HTTP/1.1\r\nbad header\r\n\r\n")
        .await;
    assert_eq!(connection.read_response().await.status, 200);
    let response = connection.read_response().await;
    assert_eq!(response.status, 400);
    assert_envelope(&response.json(), "BAD_REQUEST");
}

/// The value of one series in a metrics exposition (the series exist at 0 from the start, so a
/// test of an event reads the value, not the name).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}
