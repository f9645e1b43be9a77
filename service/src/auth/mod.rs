//! Authentication adapters: who is calling. Authorization decisions (admin role, scopes) are made
//! by the HTTP edge from the `Identity` these return.

pub mod admin_token;
pub mod bearer;
pub mod forward;
pub mod jwks;
pub mod none;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::HeaderMap;

/// The authenticated caller, handed to the use cases.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub tenant: Option<String>,
    /// The caller's raw token, forwarded to the HTTP IO adapter. Never logged (see `Debug`).
    pub token: Option<String>,
    /// True when the caller presented the machine admin credential (`AUTH_ADMIN_TOKEN_FILE`).
    pub machine_admin: bool,
}

impl Identity {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.subject)
            .field("roles", &self.roles)
            .field("scopes", &self.scopes)
            .field("tenant", &self.tenant)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("machine_admin", &self.machine_admin)
            .finish()
    }
}

/// Why a request was not authenticated. Messages never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: {0}")]
    Missing(String),
    #[error("invalid credentials: {0}")]
    Invalid(String),
    #[error("identity provider keys unavailable: {0}")]
    Unavailable(String),
}

/// Health of the authenticator for readiness and status (JWKS staleness, for example).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuthHealth {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `jwt_jwks`: the key set in use and how fresh it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<jwks::store::JwksHealth>,
}

pub trait Authenticator: Send + Sync {
    fn mode(&self) -> &'static str;
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>>;
    /// Authentication for `/admin/*` routes (probes aside). The same as `authenticate` unless a
    /// wrapper adds a credential valid there only (`admin_token`).
    fn authenticate_admin<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        self.authenticate(headers)
    }
    fn health(&self) -> AuthHealth {
        AuthHealth {
            ready: true,
            ..Default::default()
        }
    }
}

pub type SharedAuthenticator = Arc<dyn Authenticator>;

/// Splits a list header value, dropping empty items.
pub(crate) fn split_header_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_token() {
        let identity = Identity {
            subject: "alice".into(),
            token: Some("secret-token".into()),
            ..Default::default()
        };
        let printed = format!("{identity:?}");
        assert!(!printed.contains("secret-token"));
        assert!(printed.contains("redacted"));
    }
}
