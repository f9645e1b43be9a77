//! `hex-cli login` / `logout` and `--cacert`, black-box: a real token endpoint on 127.0.0.1
//! (`support::idp::TokenIssuer`: discovery, client credentials, JWTs signed with a generated key),
//! the real service binary verifying those tokens through the issuer's JWKS, and real TLS with a
//! CA generated per run for the issuer and for the service (behind a TLS terminator).

#[path = "../../service/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use support::idp::{AUDIENCE, TokenIssuer, now};
use support::{ArtifactServer, Route, ServiceProcess, TestTls, TlsProxy, demo_dir, demo_env};

const CLIENT: &str = "hex-admin";
const SECRET: &str = "s3cret with spaces & symbols:/";

/// The service binary verifying the issuer's tokens (JWKS over plain HTTP on loopback, scopes
/// enforced).
async fn service_trusting(issuer: &TokenIssuer) -> (ServiceProcess, ArtifactServer) {
    let jwks = ArtifactServer::http().await;
    jwks.set("/certs", Route::ok(issuer.jwks()));
    let mut env = demo_env(&[("AUTH_MODE", "jwt_jwks"), ("AUTH_ENFORCE_SCOPES", "true")]);
    env.remove("AUTH_ALLOW_INSECURE_NONE");
    env.insert("AUTH_JWKS_URL".into(), jwks.url("/certs"));
    env.insert("AUTH_ISSUER".into(), issuer.issuer.clone());
    env.insert("AUTH_AUDIENCE".into(), AUDIENCE.into());
    let service = ServiceProcess::spawn(&env);
    service.wait_ready().await;
    (service, jwks)
}

/// hex-cli with nothing from this machine's environment but a private cache folder.
fn cli(url: &str, cache_home: &Path) -> Command {
    let mut command = Command::cargo_bin("hex-cli").unwrap();
    command
        .env_clear()
        .env("HEX_URL", url)
        .env("XDG_CACHE_HOME", cache_home)
        .env("HEX_CLIENT_SECRET", SECRET)
        .env("NO_COLOR", "1");
    command
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

fn cache_file(cache_home: &Path) -> PathBuf {
    cache_home.join("hex-cli/tokens.json")
}

fn cached(cache_home: &Path) -> Value {
    json_of(&std::fs::read(cache_file(cache_home)).unwrap())
}

fn rewrite_cache(cache_home: &Path, change: impl FnOnce(&mut Value)) {
    let mut value = cached(cache_home);
    change(&mut value);
    std::fs::write(cache_file(cache_home), value.to_string()).unwrap();
}

fn login_entry(cache: &Value) -> &Value {
    let logins = cache["logins"].as_object().unwrap();
    assert_eq!(logins.len(), 1, "{cache}");
    logins.values().next().unwrap()
}

fn demo_payload() -> String {
    demo_dir()
        .join("examples/passport-valid.json")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_discovery_caches_a_token_that_every_command_uses() {
    let issuer = TokenIssuer::start(None).await;
    issuer.add_client(CLIENT, SECRET);
    let (service, _jwks) = service_trusting(&issuer).await;
    let home = tempfile::tempdir().unwrap();
    let url = &service.base_url;

    cli(url, home.path())
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401").and(predicate::str::contains("hex-cli login")));

    let out = cli(url, home.path())
        .args(["login", "--issuer", &issuer.issuer, "--client-id", CLIENT])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json_of(&out.stdout);
    assert_eq!(summary["service"], url.as_str());
    assert_eq!(summary["issuer"], issuer.issuer.as_str());
    assert_eq!(summary["token_endpoint"], issuer.token_url());
    assert_eq!(summary["client_id"], CLIENT);
    assert_eq!(summary["auth_method"], "client_secret_basic");
    assert!(summary["expires_at"].as_str().unwrap().ends_with('Z'), "{summary}");
    assert_eq!(summary["cache"], cache_file(home.path()).to_str().unwrap());
    assert!(
        !out.stdout.windows(10).any(|w| w == &SECRET.as_bytes()[..10]),
        "no secret printed"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache_file(home.path())), 0o600, "the cache is private");
        assert_eq!(mode(&home.path().join("hex-cli")), 0o700);
    }
    let entry = login_entry(&cached(home.path())).clone();
    assert!(entry["expires_at"].as_u64().unwrap() > now() + 200);

    // Every command uses the cached token: reads, admin (the token carries the admin role) and
    // writes (records:write scope), with one token request for all of them.
    cli(url, home.path()).args(["models", "list"]).assert().success();
    cli(url, home.path()).args(["admin", "refresh"]).assert().success();
    cli(url, home.path())
        .args(["create", "demo-passport", "0.1.0", &demo_payload()])
        .assert()
        .success();
    let requests = issuer.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].auth_method, "client_secret_basic");
    assert_eq!(requests[0].client_id, CLIENT);

    // The login belongs to this service URL only.
    let other_name = url.replace("127.0.0.1", "localhost");
    cli(&other_name, home.path())
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401"));

    // An explicit token wins over the login.
    cli(url, home.path())
        .args(["--token", "not-a-jwt", "models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401"));

    let out = cli(url, home.path()).args(["logout"]).output().unwrap();
    assert_eq!(json_of(&out.stdout), json!({"logged_out": [url]}));
    cli(url, home.path())
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401"));
    let out = cli(url, home.path()).args(["logout"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(json_of(&out.stdout), json!({"logged_out": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_and_kept() {
    let issuer = TokenIssuer::start(None).await;
    issuer.add_client(CLIENT, SECRET);
    let (service, _jwks) = service_trusting(&issuer).await;
    let home = tempfile::tempdir().unwrap();
    let url = &service.base_url;
    cli(url, home.path())
        .args(["login", "--issuer", &issuer.issuer, "--client-id", CLIENT])
        .assert()
        .success();
    let first = login_entry(&cached(home.path())).clone();

    // The cached token has (nearly) expired: the next command asks for a new one, uses it, and
    // keeps it.
    rewrite_cache(home.path(), |cache| {
        for entry in cache["logins"].as_object_mut().unwrap().values_mut() {
            entry["expires_at"] = json!(now() + 5);
        }
    });
    cli(url, home.path())
        .args(["-v", "models", "list"])
        .assert()
        .success()
        .stderr(predicate::str::contains("has expired"));
    assert_eq!(issuer.requests().len(), 2);
    let renewed = login_entry(&cached(home.path())).clone();
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert!(renewed["expires_at"].as_u64().unwrap() > now() + 200);
    cli(url, home.path()).args(["models", "list"]).assert().success();
    assert_eq!(issuer.requests().len(), 2, "the renewed token is reused");

    // Without `expires_in` in the answer, the expiry is the token's own `exp`.
    issuer.set_expires_in(None);
    rewrite_cache(home.path(), |cache| {
        for entry in cache["logins"].as_object_mut().unwrap().values_mut() {
            entry["expires_at"] = json!(0);
        }
    });
    cli(url, home.path()).args(["models", "list"]).assert().success();
    let from_jwt = login_entry(&cached(home.path()))["expires_at"].as_u64().unwrap();
    assert!((now() + 290..=now() + 300).contains(&from_jwt), "{from_jwt}");

    // A renewal the issuer refuses (the client's secret was rotated) says to log in again.
    issuer.add_client(CLIENT, "rotated");
    rewrite_cache(home.path(), |cache| {
        for entry in cache["logins"].as_object_mut().unwrap().values_mut() {
            entry["expires_at"] = json!(0);
        }
    });
    cli(url, home.path())
        .args(["models", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("invalid_client").and(predicate::str::contains("hex-cli login again")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_token_url_post_authentication_scope_and_audience() {
    let issuer = TokenIssuer::start(None).await;
    issuer.add_client(CLIENT, SECRET);
    let (service, _jwks) = service_trusting(&issuer).await;
    let home = tempfile::tempdir().unwrap();
    let secret_file = home.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let out = cli(&service.base_url, home.path())
        .env_remove("HEX_CLIENT_SECRET")
        .args(["login", "--token-url", &issuer.token_url(), "--client-id", CLIENT])
        .args(["--client-secret-file", secret_file.to_str().unwrap()])
        .args([
            "--auth-method",
            "post",
            "--scope",
            "records:read",
            "--audience",
            "hex-core",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_of(&out.stdout)["issuer"], Value::Null);
    let request = issuer.requests().pop().unwrap();
    assert_eq!(request.auth_method, "client_secret_post");
    assert_eq!(request.scope.as_deref(), Some("records:read"));
    assert_eq!(request.audience.as_deref(), Some("hex-core"));
    // The token carries only records:read: reading works, writing is forbidden.
    cli(&service.base_url, home.path())
        .args(["query", "demo-passport", "0.1.0", "--where", "id eq x"])
        .assert()
        .success();
    cli(&service.base_url, home.path())
        .args(["create", "demo-passport", "0.1.0", &demo_payload()])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("403"));

    // An issuer that advertises only client_secret_post gets it without being told.
    issuer.set_auth_methods(Some(&["client_secret_post"]));
    cli(&service.base_url, home.path())
        .args(["login", "--issuer", &issuer.issuer, "--client-id", CLIENT])
        .assert()
        .success();
    assert_eq!(issuer.requests().pop().unwrap().auth_method, "client_secret_post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_say_what_went_wrong() {
    let issuer = TokenIssuer::start(None).await;
    issuer.add_client(CLIENT, SECRET);
    let home = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9";
    let login = |args: &[&str]| {
        let mut command = cli(url, home.path());
        command.arg("login").args(args);
        command
    };
    login(&["--issuer", &issuer.issuer, "--client-id", "nobody"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("401 invalid_client").and(predicate::str::contains("check --client-id")));
    // Discovery of a URL that is not this issuer.
    let other = issuer.issuer.replace("/realms/hex", "/realms/other");
    login(&["--issuer", &other, "--client-id", CLIENT])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("404"));
    // A secret never goes over plain HTTP to another machine.
    login(&["--token-url", "http://idp.example/token", "--client-id", CLIENT])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("must be https"));
    // No secret; both endpoint kinds; neither.
    login(&["--issuer", &issuer.issuer, "--client-id", CLIENT])
        .env_remove("HEX_CLIENT_SECRET")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("HEX_CLIENT_SECRET"));
    login(&[
        "--issuer",
        &issuer.issuer,
        "--token-url",
        &issuer.token_url(),
        "--client-id",
        CLIENT,
    ])
    .assert()
    .code(2);
    login(&["--client-id", CLIENT]).assert().code(2);
    // An unreachable issuer is a network error (exit 4).
    login(&["--token-url", "http://127.0.0.1:9/token", "--client-id", CLIENT])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("the issuer at"));
    assert!(!cache_file(home.path()).exists(), "nothing is cached by a failed login");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_other_users_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let issuer = TokenIssuer::start(None).await;
    issuer.add_client(CLIENT, SECRET);
    let home = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9";
    cli(url, home.path())
        .args(["login", "--issuer", &issuer.issuer, "--client-id", CLIENT])
        .assert()
        .success();
    std::fs::set_permissions(cache_file(home.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
    cli(url, home.path())
        .args(["models", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("chmod 600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacert_trusts_a_private_ca_for_the_issuer_and_the_service() {
    let tls = TestTls::generate();
    let issuer = TokenIssuer::start(Some(&tls)).await;
    issuer.add_client(CLIENT, SECRET);
    let (service, _jwks) = service_trusting(&issuer).await;
    let proxy = TlsProxy::start(&tls, &service.base_url).await;
    let url = proxy.url();
    let home = tempfile::tempdir().unwrap();
    let ca = tls.ca_file.to_str().unwrap();

    // Without the CA neither the issuer nor the service is trusted.
    cli(&url, home.path())
        .args(["login", "--issuer", &issuer.issuer, "--client-id", CLIENT])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("certificate").and(predicate::str::contains("--cacert")));
    cli(&url, home.path())
        .args(["--token", "x", "admin", "health"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("certificate").and(predicate::str::contains("--cacert")));

    cli(&url, home.path())
        .args([
            "--cacert",
            ca,
            "login",
            "--issuer",
            &issuer.issuer,
            "--client-id",
            CLIENT,
        ])
        .assert()
        .success();
    let out = cli(&url, home.path())
        .args(["--cacert", ca, "models", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        json_of(&out.stdout)["models"][0]["id"],
        "demo-passport",
        "through TLS to the service with the cached token"
    );
    // HEX_CACERT is the same option; the renewal goes to the issuer over TLS too.
    rewrite_cache(home.path(), |cache| {
        for entry in cache["logins"].as_object_mut().unwrap().values_mut() {
            entry["expires_at"] = json!(0);
        }
    });
    cli(&url, home.path())
        .env("HEX_CACERT", ca)
        .args(["models", "list"])
        .assert()
        .success();
    assert_eq!(issuer.requests().len(), 2);

    cli(&url, home.path())
        .args(["--cacert", "/nonexistent/ca.pem", "models", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--cacert"));
    let not_pem = home.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    cli(&url, home.path())
        .args(["--cacert", not_pem.to_str().unwrap(), "models", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no PEM certificate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacert_also_trusts_artifact_servers_for_catalog_lint_fetch() {
    let tls = TestTls::generate();
    let server = ArtifactServer::https(&tls).await;
    server.set("/schema.json", Route::ok(r#"{"type": "object"}"#));
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        json!([{"model": "m", "version": "1", "schema_url": server.url("/schema.json")}]).to_string(),
    )
    .unwrap();
    let lint = |cacert: Option<&Path>| {
        let mut command = Command::cargo_bin("hex-cli").unwrap();
        command.env_clear();
        if let Some(ca) = cacert {
            command.arg("--cacert").arg(ca);
        }
        command
            .args(["catalog", "lint", "--fetch"])
            .arg(&catalog)
            .output()
            .unwrap()
    };
    let untrusted = lint(None);
    assert_eq!(untrusted.status.code(), Some(1));
    assert_eq!(json_of(&untrusted.stdout)["entries"][0]["ok"], false);
    let trusted = lint(Some(&tls.ca_file));
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trusted.stdout)
    );
    let validators = json_of(&trusted.stdout)["entries"][0]["validators"].clone();
    assert!(
        validators.as_array().unwrap().contains(&json!("json_schema")),
        "fetched and compiled: {validators}"
    );
}
