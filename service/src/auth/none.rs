//! `AUTH_MODE=none`: every caller is the configured development identity. Only reachable with
//! `AUTH_ALLOW_INSECURE_NONE=true` (checked at configuration time), and logged loudly at start.

use futures::future::BoxFuture;
use http::HeaderMap;

use super::{AuthError, Authenticator, Identity};
use crate::config::NoneAuthConfig;

pub struct NoneAuthenticator {
    identity: Identity,
}

impl NoneAuthenticator {
    pub fn new(config: &NoneAuthConfig) -> Self {
        Self {
            identity: Identity {
                subject: config.subject.clone(),
                roles: config.roles.clone(),
                scopes: config.scopes.clone(),
                tenant: config.tenant.clone(),
                token: None,
                machine_admin: false,
            },
        }
    }
}

impl Authenticator for NoneAuthenticator {
    fn mode(&self) -> &'static str {
        "none"
    }

    fn authenticate<'a>(&'a self, _headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async move { Ok(self.identity.clone()) })
    }
}
