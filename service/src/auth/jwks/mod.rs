//! `AUTH_MODE=jwt_jwks` (the default): `Authorization: Bearer <JWT>` verified against the identity
//! provider's published keys, with `iss`, `aud`, `exp` and `nbf` checked. The key is chosen by the
//! token's `kid`, and the key alone decides which algorithm may verify it (see `keys`).

pub mod claims;
pub mod keys;
pub mod ring_verify;
pub mod store;

use std::sync::Arc;

use futures::future::BoxFuture;
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};

use self::keys::VerifyingKey;
use self::store::{KeyStore, Trigger};
use super::bearer::bearer_token;
use super::{AuthError, AuthHealth, Authenticator, Identity};
use crate::config::JwtConfig;
use crate::metrics::JwksMetrics;

pub struct JwksAuthenticator {
    store: Arc<KeyStore>,
    audience: String,
    tenant_claim: String,
}

impl JwksAuthenticator {
    /// Builds the authenticator and starts fetching keys in the background: an identity provider
    /// that is down at start must not stop the service; `/admin/ready` reports it instead. Needs a
    /// Tokio runtime.
    pub fn start(config: &JwtConfig, metrics: JwksMetrics) -> Result<Self, String> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| "the JWKS refresher needs a Tokio runtime (build the state inside one)".to_string())?;
        if !ring_verify::install() {
            tracing::warn!(
                "jsonwebtoken's crypto provider was fixed before start; JWT verification uses the slower pure-Rust backend"
            );
        }
        let authenticator = Self::new(config, metrics)?;
        authenticator.store.spawn_refresher();
        Ok(authenticator)
    }

    fn new(config: &JwtConfig, metrics: JwksMetrics) -> Result<Self, String> {
        let store = KeyStore::new(
            config.jwks_url.clone(),
            validation_template(config),
            config.jwks_refresh,
            config.jwks_min_refetch,
            metrics,
        )?;
        Ok(Self {
            store,
            audience: config.audience.clone(),
            tenant_claim: config.tenant_claim.clone(),
        })
    }

    /// Verifies one token and returns the caller's identity (with the token kept for forwarding).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let kid = token_kid(token)?;
        let kid = kid.as_str();
        if let Some(result) = self.verify_with_loaded_key(token, kid) {
            return result;
        }
        // The IdP may have rotated keys since the last fetch: look again (rate-limited).
        let seen = self.store.keys_owned();
        if let Some(key) = seen.get(kid) {
            return self.verify_with(token, key);
        }
        self.store.refresh(Trigger::UnknownKid { seen }).await;
        self.verify_with_loaded_key(token, kid)
            .unwrap_or_else(|| Err(self.unknown_kid_error()))
    }

    /// `None` when no loaded key has this kid. Synchronous: the key set guard never crosses an await.
    fn verify_with_loaded_key(&self, token: &str, kid: &str) -> Option<Result<Identity, AuthError>> {
        let keys = self.store.keys();
        let key = keys.get(kid)?;
        Some(self.verify_with(token, key))
    }

    fn verify_with(&self, token: &str, key: &VerifyingKey) -> Result<Identity, AuthError> {
        let data = decode::<serde_json::Value>(token, &key.decoding, &key.validation)
            .map_err(|e| AuthError::Invalid(describe(e.kind())))?;
        claims::identity_from_claims(&data.claims, &self.audience, &self.tenant_claim, token)
    }

    fn unknown_kid_error(&self) -> AuthError {
        if self.store.keys().is_empty() {
            AuthError::Unavailable("no signing keys have been loaded from AUTH_JWKS_URL yet".into())
        } else {
            AuthError::Invalid("the token's kid is not in the identity provider's key set".into())
        }
    }

    /// The key store, for the benchmark and tests that wait for the first fetch.
    pub fn store(&self) -> &Arc<KeyStore> {
        &self.store
    }
}

/// The `kid` of a token's header, which picks the verifying key. The header is read unverified,
/// only for this; nothing in it is trusted beyond that.
pub fn token_kid(token: &str) -> Result<String, AuthError> {
    let header = decode_header(token).map_err(|_| {
        AuthError::Invalid(
            "the token is not a JWT signed with a supported algorithm (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA)"
                .into(),
        )
    })?;
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: extensions we do not implement must make the token invalid.
        return Err(AuthError::Invalid(
            "the token has critical header parameters (crit)".into(),
        ));
    }
    header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or_else(|| AuthError::Invalid("the token header has no kid".into()))
}

/// The rules every key shares; each key then pins `algorithms` to what it can verify.
fn validation_template(config: &JwtConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_audience(&[&config.audience]);
    validation.set_issuer(&[&config.issuer]);
    // jsonwebtoken only checks `iss` and `aud` when present unless they are required.
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

/// A message for the client that says what is wrong with the token without echoing any of it.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token issuer is not the one configured (AUTH_ISSUER)".into(),
        ErrorKind::InvalidAudience => "the token audience does not include AUTH_AUDIENCE".into(),
        ErrorKind::InvalidSignature => "the token signature does not verify".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            "the token algorithm does not match its key".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        _ => "the token is malformed".into(),
    }
}

impl Authenticator for JwksAuthenticator {
    fn mode(&self) -> &'static str {
        "jwt_jwks"
    }

    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async move {
            let token = bearer_token(headers)?;
            self.verify(token).await
        })
    }

    fn health(&self) -> AuthHealth {
        let jwks = self.store.health();
        let (ready, detail) = match (jwks.keys_loaded, &jwks.last_error) {
            (0, Some(error)) => (false, format!("no signing keys loaded yet: {error}")),
            (0, None) => (false, "the first JWKS fetch has not finished".to_string()),
            (n, Some(error)) => (
                true,
                format!("using {n} keys from an earlier fetch; the last fetch failed: {error}"),
            ),
            (n, None) => (true, format!("{n} signing keys loaded")),
        };
        AuthHealth {
            ready,
            detail: Some(detail),
            jwks: Some(jwks),
        }
    }
}
