//! A test identity provider: signing keys generated in the test (RSA 2048, P-256, P-384, Ed25519),
//! their JWKS, and Keycloak-shaped access tokens signed with jsonwebtoken.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

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
