//! `AUTH_MODE=forward_auth`: a trusted proxy in front of the service (oauth2-proxy, Traefik or
//! nginx forward-auth) has authenticated the caller and passes the identity in headers.

use futures::future::BoxFuture;
use http::HeaderMap;

use super::{AuthError, Authenticator, Identity, split_header_list};
use crate::config::ForwardAuthConfig;

pub struct ForwardAuthenticator {
    config: ForwardAuthConfig,
}

impl ForwardAuthenticator {
    pub fn new(config: ForwardAuthConfig) -> Self {
        Self { config }
    }

    fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn identity(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let subject = Self::header(headers, &self.config.subject_header)
            .ok_or_else(|| AuthError::Missing(format!("the {} header is missing", self.config.subject_header)))?;
        let roles = Self::header(headers, &self.config.roles_header)
            .map(|v| split_header_list(v, ','))
            .unwrap_or_default();
        let scopes = Self::header(headers, &self.config.scopes_header)
            .map(|v| split_header_list(v, ' '))
            .unwrap_or_default();
        let tenant = self
            .config
            .tenant_header
            .as_deref()
            .and_then(|h| Self::header(headers, h))
            .map(str::to_string);
        let token = self
            .config
            .token_header
            .as_deref()
            .and_then(|h| Self::header(headers, h))
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string());
        Ok(Identity {
            subject: subject.to_string(),
            roles,
            scopes,
            tenant,
            token,
            machine_admin: false,
        })
    }
}

impl Authenticator for ForwardAuthenticator {
    fn mode(&self) -> &'static str {
        "forward_auth"
    }

    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async move { self.identity(headers) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> ForwardAuthenticator {
        ForwardAuthenticator::new(ForwardAuthConfig {
            subject_header: "x-auth-subject".into(),
            roles_header: "x-auth-roles".into(),
            scopes_header: "x-auth-scopes".into(),
            tenant_header: Some("x-auth-tenant".into()),
            token_header: Some("x-auth-token".into()),
        })
    }

    #[test]
    fn reads_identity_from_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-subject", "alice".parse().unwrap());
        headers.insert("x-auth-roles", "admin, editor,".parse().unwrap());
        headers.insert("x-auth-scopes", "records:read records:write".parse().unwrap());
        headers.insert("x-auth-tenant", "acme".parse().unwrap());
        headers.insert("x-auth-token", "Bearer abc".parse().unwrap());
        let id = authenticator().identity(&headers).unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.roles, vec!["admin", "editor"]);
        assert_eq!(id.scopes, vec!["records:read", "records:write"]);
        assert_eq!(id.tenant.as_deref(), Some("acme"));
        assert_eq!(id.token.as_deref(), Some("abc"));
    }

    #[test]
    fn missing_subject_is_unauthenticated() {
        let err = authenticator().identity(&HeaderMap::new()).unwrap_err();
        assert!(matches!(err, AuthError::Missing(_)));
    }
}
