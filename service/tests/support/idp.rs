//! A test identity provider: signing keys generated in the test (RSA 2048, P-256, P-384, Ed25519),
//! their JWKS, and Keycloak-shaped access tokens signed with jsonwebtoken; and `TokenIssuer`, a
//! real token endpoint (discovery, client-credentials grant) serving such tokens on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.example.test/realms/hex";
pub const AUDIENCE: &str = "hex-core";

/// One private key with its kid and the algorithm its JWK declares.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    /// The public JWK (with `kid`, `alg`, `use`), as an IdP publishes it.
    pub jwk: Value,
    /// The public key in a form an attacker could use as an HMAC secret.
    pub public_bytes: Vec<u8>,
}

struct RsaMaterial {
    private_der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// RSA key generation is slow; each test binary generates a few keys once and shares them.
fn rsa_material(slot: usize) -> &'static RsaMaterial {
    static SLOTS: [OnceLock<RsaMaterial>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    SLOTS[slot].get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generates");
        RsaMaterial {
            private_der: key.to_pkcs1_der().unwrap().as_bytes().to_vec(),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        }
    })
}

fn public_jwk(decoding: &DecodingKey, kid: &str, alg: Algorithm) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_decoding_key(decoding, Some(alg)).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

impl TestKey {
    /// An RSA key (`slot` 0–2 picks one of three distinct keys) whose JWK declares `alg`.
    pub fn rsa(kid: &str, alg: Algorithm, slot: usize) -> Self {
        let material = rsa_material(slot);
        let decoding = DecodingKey::from_rsa_raw_components(&material.n, &material.e);
        Self {
            kid: kid.to_string(),
            alg,
            encoding: EncodingKey::from_rsa_der(&material.private_der),
            jwk: public_jwk(&decoding, kid, alg),
            public_bytes: material.n.clone(),
        }
    }

    pub fn p256(kid: &str) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        let decoding = DecodingKey::from_ec_der(&point);
        Self {
            kid: kid.to_string(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
            jwk: public_jwk(&decoding, kid, Algorithm::ES256),
            public_bytes: point,
        }
    }

    pub fn p384(kid: &str) -> Self {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        use p384::pkcs8::EncodePrivateKey;
        let secret = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        let decoding = DecodingKey::from_ec_der(&point);
        Self {
            kid: kid.to_string(),
            alg: Algorithm::ES384,
            encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
            jwk: public_jwk(&decoding, kid, Algorithm::ES384),
            public_bytes: point,
        }
    }

    pub fn ed25519(kid: &str) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let public = signing.verifying_key().to_bytes().to_vec();
        let decoding = DecodingKey::from_ed_der(&public);
        Self {
            kid: kid.to_string(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes()),
            jwk: public_jwk(&decoding, kid, Algorithm::EdDSA),
            public_bytes: public,
        }
    }

    /// A token signed by this key with its own algorithm and kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, &self.kid, claims)
    }

    /// A token signed by this key with the given header algorithm and kid (for forgeries).
    pub fn sign_as(&self, alg: Algorithm, kid: &str, claims: &Value) -> String {
        // jsonwebtoken fixes its crypto provider on first use: make it the service's (ring for
        // verification), so in-process services verify exactly as in production.
        assert!(hex_core_service::auth::jwks::ring_verify::install());
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("token signs")
    }
}

/// The JWKS document publishing these keys.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A Keycloak-shaped access token body for `subject`, valid for five minutes, with realm roles.
pub fn claims(subject: &str, realm_roles: &[&str]) -> Value {
    let now = now();
    json!({
        "exp": now + 300,
        "iat": now,
        "nbf": now - 1,
        "jti": "5d1c9d8e-0000-4000-8000-000000000000",
        "iss": ISSUER,
        "aud": [AUDIENCE, "account"],
        "sub": subject,
        "typ": "Bearer",
        "azp": AUDIENCE,
        "realm_access": {"roles": realm_roles},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "scope": "openid profile records:read",
        "tenant": "acme",
    })
}

/// An unsigned token with `alg: none`, as an attacker would craft it.
pub fn unsigned_token(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// What the token endpoint saw of one token request.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub client_id: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: &'static str,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

struct IssuerState {
    clients: HashMap<String, String>,
    /// `expires_in` of the next tokens; `None` leaves the field out of the answer.
    expires_in: Option<u64>,
    /// `token_endpoint_auth_methods_supported` in discovery; `None` leaves it out.
    auth_methods: Option<Vec<String>>,
    requests: Vec<TokenRequest>,
}

struct IssuerShared {
    issuer: OnceLock<String>,
    key: TestKey,
    state: Mutex<IssuerState>,
}

/// A real OAuth2 / OpenID Connect issuer on 127.0.0.1, Keycloak-shaped (`/realms/hex`): discovery,
/// the client-credentials grant with `client_secret_basic` or `client_secret_post`, access tokens
/// signed with a generated P-256 key (accepted by a service with `AUTH_ISSUER = issuer`,
/// `AUTH_AUDIENCE = AUDIENCE`), and the JWKS. Over HTTPS with a test CA when started with one.
pub struct TokenIssuer {
    /// The issuer URL (`http://127.0.0.1:PORT/realms/hex` or `https://localhost:PORT/realms/hex`).
    pub issuer: String,
    shared: Arc<IssuerShared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

async fn discovery(State(shared): State<Arc<IssuerShared>>) -> Response {
    let issuer = shared.issuer.get().expect("issuer URL set at start");
    let mut document = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    if let Some(methods) = &shared.state.lock().unwrap().auth_methods {
        document["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    Json(document).into_response()
}

/// `Authorization: Basic` credentials: each part form-urlencoded before base64 (RFC 6749 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

async fn token(State(shared): State<Arc<IssuerShared>>, headers: HeaderMap, body: String) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "form body expected");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let (client_id, secret, auth_method) = match (basic_credentials(&headers), form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "more than one client authentication",
            );
        }
        (Some((id, secret)), None) => (id, secret, "client_secret_basic"),
        (None, Some(secret)) => (
            form.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
            "client_secret_post",
        ),
        (None, None) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "no client authentication"),
    };
    let mut state = shared.state.lock().unwrap();
    if state.clients.get(&client_id) != Some(&secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials only",
        );
    }
    state.requests.push(TokenRequest {
        client_id: client_id.clone(),
        auth_method,
        scope: form.get("scope").cloned(),
        audience: form.get("audience").cloned(),
    });
    let now = now();
    let lifetime = state.expires_in.unwrap_or(300);
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "records:read records:write".to_string());
    let access_token = shared.key.sign(&json!({
        "exp": now + lifetime,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": shared.issuer.get(),
        "aud": [AUDIENCE],
        "sub": format!("service-account-{client_id}"),
        "typ": "Bearer",
        "azp": client_id,
        "realm_access": {"roles": ["admin"]},
        "scope": scope,
    }));
    let mut answer = json!({"access_token": access_token, "token_type": "Bearer", "scope": scope});
    if let Some(expires_in) = state.expires_in {
        answer["expires_in"] = json!(expires_in);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

async fn certs(State(shared): State<Arc<IssuerShared>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], jwks(&[&shared.key])).into_response()
}

impl TokenIssuer {
    pub async fn start(tls: Option<&super::TestTls>) -> Self {
        let shared = Arc::new(IssuerShared {
            issuer: OnceLock::new(),
            key: TestKey::p256("issuer-key"),
            state: Mutex::new(IssuerState {
                clients: HashMap::new(),
                expires_in: Some(300),
                auth_methods: Some(vec!["client_secret_basic".into(), "client_secret_post".into()]),
                requests: Vec::new(),
            }),
        });
        let realm = "/realms/hex";
        let app = Router::new()
            .route(&format!("{realm}/.well-known/openid-configuration"), get(discovery))
            .route(&format!("{realm}/protocol/openid-connect/token"), post(token))
            .route(&format!("{realm}/protocol/openid-connect/certs"), get(certs))
            .with_state(shared.clone());
        let (addr, task) = super::serve(app, tls).await;
        // The issuer URL names the port, known once bound; no request can arrive before this.
        let issuer = match tls {
            Some(_) => format!("https://localhost:{}{realm}", addr.port()),
            None => format!("http://127.0.0.1:{}{realm}", addr.port()),
        };
        shared.issuer.set(issuer.clone()).unwrap();
        Self { issuer, shared, task }
    }

    /// Registers a confidential client.
    pub fn add_client(&self, id: &str, secret: &str) {
        self.state().clients.insert(id.to_string(), secret.to_string());
    }

    /// `expires_in` of the tokens issued from now on (`None`: left out of the answer).
    pub fn set_expires_in(&self, seconds: Option<u64>) {
        self.state().expires_in = seconds;
    }

    /// `token_endpoint_auth_methods_supported` in discovery (`None`: left out).
    pub fn set_auth_methods(&self, methods: Option<&[&str]>) {
        self.state().auth_methods = methods.map(|m| m.iter().map(|s| s.to_string()).collect());
    }

    /// Every successful token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state().requests.clone()
    }

    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    /// The JWKS with the signing key (for a service that fetches it elsewhere, e.g. over HTTP).
    pub fn jwks(&self) -> String {
        jwks(&[&self.shared.key])
    }

    /// The key the issuer signs with (to mint tokens directly).
    pub fn key(&self) -> &TestKey {
        &self.shared.key
    }

    fn state(&self) -> std::sync::MutexGuard<'_, IssuerState> {
        self.shared.state.lock().unwrap()
    }
}
