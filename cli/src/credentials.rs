//! Which bearer token a command sends: `--token` / `HEX_TOKEN` / `--token-file` when given,
//! otherwise the token `hex-cli login` cached for `--url`, renewed with the stored client
//! credentials when it is about to expire.

use crate::Context;
use crate::error::CliError;
use crate::oidc::{self, OidcError};
use crate::token_cache::{CacheError, Login, TokenCache};

impl From<CacheError> for CliError {
    fn from(error: CacheError) -> Self {
        CliError::Usage(error.to_string())
    }
}

impl From<OidcError> for CliError {
    fn from(error: OidcError) -> Self {
        match error {
            OidcError::Transport { .. } => CliError::Network(error.to_string()),
            OidcError::Refused { .. } | OidcError::Invalid { .. } => CliError::Issuer(error.to_string()),
            OidcError::Policy(message) => CliError::Usage(message),
        }
    }
}

/// The token for this command, or `None` when there is neither an explicit one nor a login.
pub async fn bearer(ctx: &Context) -> Result<Option<String>, CliError> {
    if let Some(token) = &ctx.token {
        return Ok(Some(token.clone()));
    }
    let Some(cache) = TokenCache::locate() else {
        return Ok(None);
    };
    let Some(login) = cache.get(&ctx.url)? else {
        return Ok(None);
    };
    if login.fresh(oidc::now()) {
        return Ok(Some(login.access_token));
    }
    renew(ctx, &cache, login).await.map(Some)
}

/// A new token from the stored token endpoint and client; the cache keeps the new one.
async fn renew(ctx: &Context, cache: &TokenCache, mut login: Login) -> Result<String, CliError> {
    let endpoint = url::Url::parse(&login.token_endpoint).map_err(|e| {
        CliError::Usage(format!(
            "the login cache {} holds a bad token endpoint ({e}): run hex-cli login again",
            cache.path().display()
        ))
    })?;
    if ctx.verbose {
        eprintln!(
            "hex-cli: the token for {} has expired; asking {} for a new one",
            login.service_url, login.token_endpoint
        );
    }
    let issued = oidc::request_token(&ctx.http()?, &endpoint, &login.client)
        .await
        .map_err(|e| match CliError::from(e) {
            CliError::Issuer(message) => CliError::Issuer(format!(
                "renewing the login for {}: {message}; run hex-cli login again",
                login.service_url
            )),
            other => other,
        })?;
    login.access_token = issued.access_token.clone();
    login.expires_at = issued.expires_at;
    cache.put(login)?;
    Ok(issued.access_token)
}
