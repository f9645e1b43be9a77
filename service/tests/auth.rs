//! Authentication and authorization through real HTTP: JWTs signed with keys generated here and
//! verified against a JWKS served by a real HTTP server, forward-auth headers, and the machine
//! admin credential read from a file.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use support::idp::{self, AUDIENCE, ISSUER, TestKey};
use support::{ArtifactServer, InProcessService, Route, ServiceProcess, base_env, client, demo_dir};

const JWKS_PATH: &str = "/realms/hex/protocol/openid-connect/certs";
const ADMIN_TOKEN: &str = "operator-0123456789abcdef";

/// The demo catalog with the given auth variables (no `none` mode unless asked for).
fn env_with(auth: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = base_env("", "localhost", true);
    for key in ["REGISTRY_CATALOG_JSON", "AUTH_ALLOW_INSECURE_NONE", "AUTH_NONE_ROLES"] {
        env.remove(key);
    }
    let catalog = demo_dir().join("catalog.json");
    env.insert("REGISTRY_CATALOG_FILE".into(), catalog.to_str().unwrap().into());
    env.insert("REGISTRY_ALLOW_LOCAL_ARTIFACTS".into(), "true".into());
    for (key, value) in auth {
        env.insert(key.to_string(), value.to_string());
    }
    env
}

fn jwt_env(idp: &ArtifactServer, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let url = idp.url(JWKS_PATH);
    let mut env = env_with(&[
        ("AUTH_MODE", "jwt_jwks"),
        ("AUTH_JWKS_URL", &url),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("AUTH_LEEWAY_SECS", "5"),
        ("AUTH_JWKS_MIN_REFETCH_SECS", "0"),
    ]);
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    env
}

async fn idp_serving(keys: &[&TestKey]) -> ArtifactServer {
    let idp = ArtifactServer::http().await;
    idp.set(JWKS_PATH, Route::ok(idp::jwks(keys)));
    idp
}

async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the service in jwt_jwks mode and waits for the first JWKS fetch.
async fn start_jwt(idp: &ArtifactServer, extra: &[(&str, &str)]) -> InProcessService {
    let service = InProcessService::start(&jwt_env(idp, extra)).await;
    let auth = service.state.auth.clone();
    wait_until("the first JWKS fetch", Duration::from_secs(10), || auth.health().ready).await;
    service
}

async fn get_with_token(service: &InProcessService, path: &str, token: &str) -> reqwest::Response {
    client().get(service.url(path)).bearer_auth(token).send().await.unwrap()
}

async fn refresh_with_token(service: &InProcessService, token: &str) -> reqwest::Response {
    client()
        .post(service.url("/admin/registry/refresh"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// 401 with the JSON envelope and a Bearer challenge, and no trace of the token in the body.
/// Returns the message.
async fn assert_unauthorized(response: reqwest::Response, case: &str, token: Option<&str>) -> String {
    assert_eq!(response.status(), 401, "{case}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{case}: no WWW-Authenticate header"))
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{case}: challenge {challenge:?}");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{case}: body is not JSON: {text}"));
    assert_eq!(body["code"], "UNAUTHORIZED", "{case}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: {body}"
    );
    assert!(body.get("details").is_some(), "{case}: {body}");
    if let Some(token) = token {
        assert!(!text.contains(token), "{case}: the response echoes the token");
    }
    body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_family_are_accepted() {
    let keys = [
        TestKey::rsa("rsa-rs256", Algorithm::RS256, 0),
        TestKey::rsa("rsa-rs512", Algorithm::RS512, 0),
        TestKey::rsa("rsa-ps256", Algorithm::PS256, 1),
        TestKey::rsa("rsa-ps384", Algorithm::PS384, 1),
        TestKey::p256("ec-p256"),
        TestKey::p384("ec-p384"),
        TestKey::ed25519("ed25519"),
    ];
    let idp = idp_serving(&keys.iter().collect::<Vec<_>>()).await;
    let service = start_jwt(&idp, &[]).await;
    for key in &keys {
        let token = key.sign(&idp::claims("alice", &[]));
        let response = get_with_token(&service, "/models", &token).await;
        assert_eq!(
            response.status(),
            200,
            "{:?} token refused: {}",
            key.alg,
            response.text().await.unwrap()
        );
    }
    // A single-string `aud` equal to the audience is as good as an array containing it.
    let mut claims = idp::claims("alice", &[]);
    claims["aud"] = json!(AUDIENCE);
    let response = get_with_token(&service, "/models", &keys[0].sign(&claims)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn invalid_tokens_and_malformed_headers_get_401_with_envelope_and_challenge() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let ec = TestKey::p256("ec");
    let idp = idp_serving(&[&rsa, &ec]).await;
    let service = start_jwt(&idp, &[]).await;
    let good = || idp::claims("alice", &["admin"]);
    let now = idp::now();

    let mut expired = good();
    expired["exp"] = json!(now - 60);
    let mut not_yet_valid = good();
    not_yet_valid["nbf"] = json!(now + 300);
    let mut wrong_issuer = good();
    wrong_issuer["iss"] = json!("https://evil.example.test/realms/hex");
    let mut wrong_audience = good();
    wrong_audience["aud"] = json!(["account", "other-service"]);
    let mut no_issuer = good();
    no_issuer.as_object_mut().unwrap().remove("iss");
    let mut no_expiry = good();
    no_expiry.as_object_mut().unwrap().remove("exp");
    let other_rsa_key = TestKey::rsa("rsa", Algorithm::RS256, 2);
    let hmac_with_public_key = EncodingKey::from_secret(&rsa.public_bytes);
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("rsa".into());
        jsonwebtoken::encode(&header, &good(), &hmac_with_public_key).unwrap()
    };
    let valid = rsa.sign(&good());
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let tampered_payload = {
        use base64::Engine;
        let mut claims = good();
        claims["sub"] = json!("mallory");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let signature_of_valid = valid.rsplit_once('.').unwrap().1;

    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", rsa.sign(&expired), "expired"),
        ("not yet valid", rsa.sign(&not_yet_valid), "not valid yet"),
        ("wrong issuer", rsa.sign(&wrong_issuer), "issuer"),
        ("wrong audience", rsa.sign(&wrong_audience), "audience"),
        ("no issuer", rsa.sign(&no_issuer), "no iss claim"),
        ("no expiry", rsa.sign(&no_expiry), "no exp claim"),
        (
            "bad signature (another key, same kid)",
            other_rsa_key.sign(&good()),
            "signature",
        ),
        (
            "tampered payload",
            format!("{head}.{tampered_payload}.{signature_of_valid}"),
            "signature",
        ),
        ("signature stripped", format!("{head}.{payload}."), "signature"),
        (
            "unknown kid",
            rsa.sign_as(Algorithm::RS256, "no-such-kid", &good()),
            "kid",
        ),
        ("alg none", idp::unsigned_token("rsa", &good()), "supported algorithm"),
        ("HS256 signed with the public key", hs256, "does not match its key"),
        (
            "ES256 token naming the RSA key",
            ec.sign_as(Algorithm::ES256, "rsa", &good()),
            "does not match its key",
        ),
        (
            "PS256 token on a key pinned to RS256",
            rsa.sign_as(Algorithm::PS256, "rsa", &good()),
            "does not match its key",
        ),
        (
            "RS256 token naming the EC key",
            rsa.sign_as(Algorithm::RS256, "ec", &good()),
            "does not match its key",
        ),
        ("not a JWT", "not-a-jwt".into(), "not a JWT"),
    ];
    for (case, token, reason) in &cases {
        let response = get_with_token(&service, "/models", token).await;
        let message = assert_unauthorized(response, case, Some(token)).await;
        assert!(
            message.contains(reason),
            "{case}: refused for another reason: {message}"
        );
    }

    let mut big_claims = good();
    big_claims["padding"] = json!("x".repeat(9000));
    let oversized = rsa.sign(&big_claims);
    assert!(oversized.len() > 8192);
    let message = assert_unauthorized(
        get_with_token(&service, "/models", &oversized).await,
        "oversized token",
        None,
    )
    .await;
    assert!(message.contains("larger than 8192 bytes"), "{message}");

    let header_cases: Vec<(&str, Vec<String>)> = vec![
        ("no Authorization header", vec![]),
        ("Basic scheme", vec!["Basic YWxpY2U6c2VjcmV0".into()]),
        ("Bearer without a token", vec!["Bearer".into()]),
        ("two tokens in one header", vec![format!("Bearer {valid} {valid}")]),
        (
            "two Authorization headers",
            vec![format!("Bearer {valid}"), format!("Bearer {valid}")],
        ),
        ("token without scheme", vec![valid.clone()]),
    ];
    for (case, values) in header_cases {
        let mut request = client().get(service.url("/models"));
        for value in values {
            request = request.header("authorization", value);
        }
        assert_unauthorized(request.send().await.unwrap(), case, Some(&valid)).await;
    }

    // The same valid token is accepted, so the refusals above are about what each case changed.
    assert_eq!(get_with_token(&service, "/models", &valid).await.status(), 200);
}

#[tokio::test]
async fn expiry_within_the_leeway_is_accepted() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    let service = start_jwt(&idp, &[("AUTH_LEEWAY_SECS", "60")]).await;
    let mut claims = idp::claims("alice", &[]);
    claims["exp"] = json!(idp::now() - 30);
    assert_eq!(
        get_with_token(&service, "/models", &rsa.sign(&claims)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_rotated_key_is_accepted_without_restart() {
    let old = TestKey::rsa("2024-key", Algorithm::RS256, 0);
    let new = TestKey::rsa("2025-key", Algorithm::RS256, 1);
    let idp = idp_serving(&[&old]).await;
    let service = start_jwt(&idp, &[]).await;
    let new_token = new.sign(&idp::claims("alice", &[]));
    assert_unauthorized(
        get_with_token(&service, "/models", &new_token).await,
        "key not published yet",
        None,
    )
    .await;

    idp.set(JWKS_PATH, Route::ok(idp::jwks(&[&old, &new])));
    let fetches_before = idp.hits(JWKS_PATH);
    assert_eq!(get_with_token(&service, "/models", &new_token).await.status(), 200);
    assert_eq!(
        idp.hits(JWKS_PATH),
        fetches_before + 1,
        "the unknown kid caused one refetch"
    );
    let old_token = old.sign(&idp::claims("alice", &[]));
    assert_eq!(get_with_token(&service, "/models", &old_token).await.status(), 200);

    // The IdP retires the old key: tokens signed with it stop working after the next fetch.
    idp.set(JWKS_PATH, Route::ok(idp::jwks(&[&new])));
    let unknown = new.sign_as(Algorithm::RS256, "trigger-a-refetch", &idp::claims("alice", &[]));
    let _ = get_with_token(&service, "/models", &unknown).await;
    assert_unauthorized(
        get_with_token(&service, "/models", &old_token).await,
        "retired key",
        None,
    )
    .await;
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_period_even_when_concurrent() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    // Slow JWKS answers keep the first refetch in flight while the others arrive.
    let service = start_jwt(&idp, &[("AUTH_JWKS_MIN_REFETCH_SECS", "60")]).await;
    idp.set(
        JWKS_PATH,
        Route::ok(idp::jwks(&[&rsa])).with_delay(Duration::from_millis(300)),
    );
    let fetches_before = idp.hits(JWKS_PATH);
    let requests = (0..20).map(|i| {
        let token = rsa.sign_as(Algorithm::RS256, &format!("random-kid-{i}"), &idp::claims("alice", &[]));
        let url = service.url("/models");
        async move { client().get(url).bearer_auth(token).send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Later misses inside the period do not fetch either.
    let late = rsa.sign_as(Algorithm::RS256, "another-random-kid", &idp::claims("alice", &[]));
    assert_eq!(get_with_token(&service, "/models", &late).await.status(), 401);
    assert_eq!(
        idp.hits(JWKS_PATH),
        fetches_before + 1,
        "20+1 unknown kids, one JWKS fetch"
    );
    // Known keys are unaffected.
    assert_eq!(
        get_with_token(&service, "/models", &rsa.sign(&idp::claims("alice", &[])))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn concurrent_requests_with_a_new_kid_wait_for_one_shared_refetch() {
    let old = TestKey::rsa("old", Algorithm::RS256, 0);
    let new = TestKey::p256("new");
    let idp = idp_serving(&[&old]).await;
    // No rate limit here, so only coalescing can keep the fetch count at one.
    let service = start_jwt(&idp, &[("AUTH_JWKS_MIN_REFETCH_SECS", "0")]).await;
    idp.set(
        JWKS_PATH,
        Route::ok(idp::jwks(&[&old, &new])).with_delay(Duration::from_millis(300)),
    );
    let fetches_before = idp.hits(JWKS_PATH);
    let token = new.sign(&idp::claims("alice", &[]));
    let requests = (0..20).map(|_| {
        let url = service.url("/models");
        let token = token.clone();
        async move { client().get(url).bearer_auth(token).send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        idp.hits(JWKS_PATH),
        fetches_before + 1,
        "20 concurrent misses, one JWKS fetch"
    );
}

#[tokio::test]
async fn old_keys_keep_working_when_the_jwks_server_goes_down_and_readiness_reports_staleness() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    let service = start_jwt(&idp, &[]).await;
    let token = rsa.sign(&idp::claims("alice", &[]));
    assert_eq!(get_with_token(&service, "/models", &token).await.status(), 200);

    idp.set(JWKS_PATH, Route::status(503));
    // An unknown kid forces a refetch now instead of waiting for the refresh period.
    let unknown = rsa.sign_as(Algorithm::RS256, "unknown", &idp::claims("alice", &[]));
    let _ = get_with_token(&service, "/models", &unknown).await;
    let auth = service.state.auth.clone();
    wait_until("the failed fetch to be recorded", Duration::from_secs(10), || {
        auth.health().jwks.is_some_and(|j| j.stale)
    })
    .await;

    assert_eq!(get_with_token(&service, "/models", &token).await.status(), 200);
    let ready = client().get(service.url("/admin/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "old keys exist, so the service stays ready");
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["auth"]["jwks"]["stale"], true, "{ready}");
    assert!(
        ready["auth"]["jwks"]["last_error"].as_str().unwrap().contains("503"),
        "{ready}"
    );
    let status: Value = get_with_token(&service, "/admin/status", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["auth"]["mode"], "jwt_jwks");
    assert_eq!(status["auth"]["health"]["jwks"]["stale"], true, "{status}");
}

#[tokio::test]
async fn an_unreachable_idp_at_start_is_not_ready_then_recovers_by_itself() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = ArtifactServer::http().await;
    idp.set(JWKS_PATH, Route::status(503));
    let service = InProcessService::start(&jwt_env(&idp, &[])).await;
    let auth = service.state.auth.clone();
    wait_until("the first failed fetch", Duration::from_secs(10), || {
        auth.health().jwks.is_some_and(|j| j.last_error.is_some())
    })
    .await;

    let ready = client().get(service.url("/admin/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "no keys were ever loaded");
    let ready: Value = ready.json().await.unwrap();
    assert!(ready["reason"].as_str().unwrap().starts_with("auth"), "{ready}");
    let token = rsa.sign(&idp::claims("alice", &[]));
    assert_unauthorized(
        get_with_token(&service, "/models", &token).await,
        "no keys yet",
        Some(&token),
    )
    .await;

    // The IdP comes up: the background retry (backoff from 1 s) loads the keys.
    idp.set(JWKS_PATH, Route::ok(idp::jwks(&[&rsa])));
    wait_until(
        "the keys to load after the IdP recovers",
        Duration::from_secs(15),
        || auth.health().ready,
    )
    .await;
    assert_eq!(
        client().get(service.url("/admin/ready")).send().await.unwrap().status(),
        200
    );
    assert_eq!(get_with_token(&service, "/models", &token).await.status(), 200);
}

#[tokio::test]
async fn the_binary_starts_and_reports_not_ready_when_the_jwks_host_refuses_connections() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut env = env_with(&[
        ("AUTH_MODE", "jwt_jwks"),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
    ]);
    env.insert("AUTH_JWKS_URL".into(), format!("http://127.0.0.1:{closed_port}/certs"));
    let service = ServiceProcess::spawn(&env);
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body: Value = loop {
        let response = http.get(service.url("/admin/ready")).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        if body["auth"]["jwks"]["last_error"].is_string() {
            break body;
        }
        assert!(Instant::now() < deadline, "no JWKS error reported: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["auth"]["ready"], false, "{body}");
}

#[tokio::test]
async fn registry_refresh_needs_the_admin_role_from_realm_or_client_roles() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    let service = start_jwt(&idp, &[]).await;

    let reader = rsa.sign(&idp::claims("reader", &["offline_access"]));
    let response = refresh_with_token(&service, &reader).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "FORBIDDEN", "{body}");
    assert!(body["message"].as_str().unwrap().contains("admin"), "{body}");
    assert!(body.get("details").is_some(), "{body}");
    // Reads of admin status need authentication only.
    assert_eq!(get_with_token(&service, "/admin/status", &reader).await.status(), 200);

    let realm_admin = rsa.sign(&idp::claims("root", &["admin"]));
    assert_eq!(refresh_with_token(&service, &realm_admin).await.status(), 200);

    let mut client_admin = idp::claims("ops", &[]);
    client_admin["resource_access"][AUDIENCE] = json!({"roles": ["admin"]});
    assert_eq!(
        refresh_with_token(&service, &rsa.sign(&client_admin)).await.status(),
        200
    );

    let mut other_client_admin = idp::claims("ops", &[]);
    other_client_admin["resource_access"]["some-other-client"] = json!({"roles": ["admin"]});
    assert_eq!(
        refresh_with_token(&service, &rsa.sign(&other_client_admin))
            .await
            .status(),
        403,
        "roles of other clients do not count"
    );

    let custom = start_jwt(&idp, &[("AUTH_ADMIN_ROLE", "hex-operator")]).await;
    assert_eq!(refresh_with_token(&custom, &realm_admin).await.status(), 403);
    let operator = rsa.sign(&idp::claims("root", &["hex-operator"]));
    assert_eq!(refresh_with_token(&custom, &operator).await.status(), 200);
}

fn forward_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = env_with(&[("AUTH_MODE", "forward_auth")]);
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    env
}

#[tokio::test]
async fn forward_auth_trusts_the_proxy_headers() {
    let service = InProcessService::start(&forward_env(&[])).await;
    let http = client();
    let ok = http
        .get(service.url("/models"))
        .header("x-auth-subject", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let missing = http.get(service.url("/models")).send().await.unwrap();
    assert_unauthorized(missing, "forward-auth without subject", None).await;

    let no_role = http
        .post(service.url("/admin/registry/refresh"))
        .header("x-auth-subject", "alice")
        .header("x-auth-roles", "editor")
        .send()
        .await
        .unwrap();
    assert_eq!(no_role.status(), 403);
    assert_eq!(no_role.json::<Value>().await.unwrap()["code"], "FORBIDDEN");

    let admin = http
        .post(service.url("/admin/registry/refresh"))
        .header("x-auth-subject", "root")
        .header("x-auth-roles", "editor, admin")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
}

/// A Kubernetes-style Secret volume: `token -> ..data/token`, `..data -> ..<version>`, updated by
/// atomically renaming a new `..data` symlink over the old one.
struct SecretVolume {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretVolume {
    fn new(token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        let mut volume = Self { dir, version: 0 };
        volume.update(token);
        volume
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("token")
    }

    fn update(&mut self, token: &str) {
        self.version += 1;
        let version_dir = format!("..2025_01_01_00_00_0{}", self.version);
        let root = self.dir.path();
        std::fs::create_dir(root.join(&version_dir)).unwrap();
        std::fs::write(root.join(&version_dir).join("token"), format!("{token}\n")).unwrap();
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(&version_dir, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
    }
}

async fn admin_token_checks(service: &InProcessService, volume: &mut SecretVolume) {
    let http = client();
    let refresh = refresh_with_token(service, ADMIN_TOKEN).await;
    assert_eq!(refresh.status(), 200, "{}", refresh.text().await.unwrap());
    assert_eq!(
        get_with_token(service, "/admin/status", ADMIN_TOKEN).await.status(),
        200
    );

    let models = get_with_token(service, "/models", ADMIN_TOKEN).await;
    assert_unauthorized(models, "admin token on /models", Some(ADMIN_TOKEN)).await;
    let detail = http
        .get(service.url("/models/demo-passport/versions/0.1.0"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_unauthorized(detail, "admin token on a model route", Some(ADMIN_TOKEN)).await;

    let wrong = refresh_with_token(service, "operator-0123456789abcdeX").await;
    assert_unauthorized(wrong, "wrong admin token", None).await;

    let rotated = "operator-rotated-fedcba9876543210";
    volume.update(rotated);
    assert_eq!(
        refresh_with_token(service, rotated).await.status(),
        200,
        "the new token works at once"
    );
    assert_unauthorized(
        refresh_with_token(service, ADMIN_TOKEN).await,
        "the old token after rotation",
        None,
    )
    .await;
}

#[tokio::test]
async fn admin_token_file_works_for_admin_endpoints_only_in_jwt_mode_and_follows_rotation() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    let mut volume = SecretVolume::new(ADMIN_TOKEN);
    let path = volume.path();
    let service = start_jwt(&idp, &[("AUTH_ADMIN_TOKEN_FILE", path.to_str().unwrap())]).await;
    admin_token_checks(&service, &mut volume).await;
    // JWT admins keep working beside the machine credential.
    let admin = rsa.sign(&idp::claims("root", &["admin"]));
    assert_eq!(refresh_with_token(&service, &admin).await.status(), 200);
}

#[tokio::test]
async fn admin_token_file_works_for_admin_endpoints_only_in_forward_auth_mode() {
    let mut volume = SecretVolume::new(ADMIN_TOKEN);
    let path = volume.path();
    let service = InProcessService::start(&forward_env(&[("AUTH_ADMIN_TOKEN_FILE", path.to_str().unwrap())])).await;
    admin_token_checks(&service, &mut volume).await;
}

#[test]
fn an_unreadable_admin_token_file_stops_the_start_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    for (path, expected) in [(&missing, "cannot read"), (&short, "shorter than")] {
        let env = forward_env(&[("AUTH_ADMIN_TOKEN_FILE", path.to_str().unwrap())]);
        let output = std::process::Command::new(support::service_binary())
            .env_clear()
            .envs(&env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("AUTH_ADMIN_TOKEN_FILE") && stderr.contains(expected),
            "{stderr}"
        );
    }
}

fn assert_not_in_log(log: &str, secret: &str, what: &str) {
    assert!(!log.contains(secret), "{what} appears in the log");
}

#[tokio::test]
async fn tokens_never_appear_in_the_log() {
    let rsa = TestKey::rsa("rsa", Algorithm::RS256, 0);
    let idp = idp_serving(&[&rsa]).await;
    let volume = SecretVolume::new(ADMIN_TOKEN);
    let url = idp.url(JWKS_PATH);
    let path = volume.path();
    let env = env_with(&[
        ("AUTH_MODE", "jwt_jwks"),
        ("AUTH_JWKS_URL", &url),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("AUTH_JWKS_MIN_REFETCH_SECS", "0"),
        ("AUTH_ADMIN_TOKEN_FILE", path.to_str().unwrap()),
        ("LOG_LEVEL", "debug"),
    ]);
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    let http = client();

    let valid = rsa.sign(&idp::claims("alice", &["admin"]));
    let mut expired_claims = idp::claims("alice", &[]);
    expired_claims["exp"] = json!(idp::now() - 3600);
    let expired = rsa.sign(&expired_claims);
    let forged = TestKey::rsa("rsa", Algorithm::RS256, 2).sign(&idp::claims("mallory", &["admin"]));
    let unknown_kid = rsa.sign_as(Algorithm::RS256, "unknown", &idp::claims("alice", &[]));
    let tokens = [valid.as_str(), expired.as_str(), forged.as_str(), unknown_kid.as_str()];
    let mut statuses = Vec::new();
    for token in tokens {
        for (method, path) in [
            ("GET", "/models"),
            ("POST", "/admin/registry/refresh"),
            ("GET", "/admin/status"),
        ] {
            let request = match method {
                "GET" => http.get(service.url(path)),
                _ => http.post(service.url(path)),
            };
            statuses.push(request.bearer_auth(token).send().await.unwrap().status().as_u16());
        }
    }
    for token in [ADMIN_TOKEN, "operator-wrong-0123456789"] {
        statuses.push(refresh_via(&http, &service, token).await);
        statuses.push(
            http.get(service.url("/models"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&200) && statuses.contains(&401), "{statuses:?}");

    // The log must be readable JSON with the decisions in it, and no token or signature anywhere.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = service.log_text();
    assert!(log.contains("request not authenticated"), "debug log missing:\n{log}");
    assert!(log.contains("\"status\":401"), "access log missing:\n{log}");
    for token in tokens {
        assert_not_in_log(&log, token, "a JWT");
        assert_not_in_log(&log, token.rsplit_once('.').unwrap().1, "a JWT signature");
    }
    assert_not_in_log(&log, ADMIN_TOKEN, "the admin token");
    assert_not_in_log(&log, "operator-wrong-0123456789", "a wrong admin token");
}

async fn refresh_via(http: &reqwest::Client, service: &ServiceProcess, token: &str) -> u16 {
    http.post(service.url("/admin/registry/refresh"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
