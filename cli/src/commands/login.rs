//! `hex-cli login` (OAuth2 client credentials against an OpenID Connect issuer, the token cached
//! for `--url`) and `hex-cli logout`.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use serde_json::{Value, json};
use url::Url;

use crate::Context;
use crate::error::CliError;
use crate::oidc::{self, AuthMethod, ClientCredentials};
use crate::output::OutputMode;
use crate::token_cache::{CACHE_FILE_ENV, Login, TokenCache, service_key};

/// The client secret, when no `--client-secret-file` is given (never a command-line flag: other
/// users can read a process's arguments).
pub const CLIENT_SECRET_ENV: &str = "HEX_CLIENT_SECRET";

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("endpoint").required(true).args(["issuer", "token_url"])),
    after_help = "Examples:\n  HEX_CLIENT_SECRET=... hex-cli --url https://hex.example login --issuer https://sso.example/realms/ce-rise --client-id hex-admin\n  hex-cli login --token-url https://sso.example/oauth/token --client-id ci --client-secret-file /run/secrets/hex --audience hex-core"
)]
pub struct LoginArgs {
    /// OpenID Connect issuer; its token endpoint is found by discovery
    /// (`ISSUER/.well-known/openid-configuration`).
    #[arg(long, env = "HEX_OIDC_ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// The token endpoint itself, without discovery.
    #[arg(long, env = "HEX_OIDC_TOKEN_URL", value_name = "URL")]
    token_url: Option<String>,
    /// OAuth2 client id (a confidential client allowed the client-credentials grant).
    #[arg(long, env = "HEX_CLIENT_ID")]
    client_id: String,
    /// File with the client secret (first line); `-` reads stdin. Default: HEX_CLIENT_SECRET.
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<PathBuf>,
    /// Scopes to ask for (space-separated), e.g. "records:read records:write".
    #[arg(long)]
    scope: Option<String>,
    /// `audience` parameter (for issuers that need one, such as Auth0).
    #[arg(long)]
    audience: Option<String>,
    /// Client authentication; default: basic, or post when the issuer advertises only that.
    #[arg(long, value_enum)]
    auth_method: Option<AuthMethod>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Forget every service's login, not only --url's.
    #[arg(long)]
    all: bool,
}

fn client_secret(file: Option<&Path>) -> Result<String, CliError> {
    let secret = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
            line
        }
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("--client-secret-file {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        None => std::env::var(CLIENT_SECRET_ENV).unwrap_or_default(),
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        return Err(CliError::Usage(format!(
            "no client secret: pass --client-secret-file FILE or set {CLIENT_SECRET_ENV}"
        )));
    }
    Ok(secret)
}

fn parse_url(value: &str, flag: &str) -> Result<Url, CliError> {
    Url::parse(value).map_err(|e| CliError::Usage(format!("{flag} {value:?} is not a URL: {e}")))
}

fn cache() -> Result<TokenCache, CliError> {
    TokenCache::locate().ok_or_else(|| {
        CliError::Usage(format!(
            "nowhere to keep the login: set HOME, XDG_CACHE_HOME or {CACHE_FILE_ENV}"
        ))
    })
}

fn rfc3339(unix_seconds: Option<u64>) -> Value {
    unix_seconds
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s as i64).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

pub async fn login(args: LoginArgs, ctx: &Context) -> Result<(), CliError> {
    parse_url(&ctx.url, "--url")?;
    let secret = client_secret(args.client_secret_file.as_deref())?;
    let cache = cache()?;
    let http = ctx.http()?;
    let (issuer, token_endpoint, advertised) = match (&args.issuer, &args.token_url) {
        (Some(issuer), _) => {
            let discovered = oidc::discover(&http, &parse_url(issuer, "--issuer")?).await?;
            (Some(issuer.clone()), discovered.token_endpoint, discovered.auth_methods)
        }
        (None, Some(url)) => (None, parse_url(url, "--token-url")?, None),
        (None, None) => return Err(CliError::Usage("pass --issuer or --token-url".into())),
    };
    let client = ClientCredentials {
        client_id: args.client_id,
        client_secret: secret,
        scope: args.scope,
        audience: args.audience,
        auth_method: args
            .auth_method
            .unwrap_or_else(|| oidc::preferred_auth_method(advertised.as_deref())),
    };
    if ctx.verbose {
        eprintln!(
            "hex-cli: asking {token_endpoint} for a token for client {}",
            client.client_id
        );
    }
    let issued = oidc::request_token(&http, &token_endpoint, &client).await?;
    let summary = json!({
        "service": service_key(&ctx.url),
        "issuer": issuer,
        "token_endpoint": token_endpoint.as_str(),
        "client_id": client.client_id,
        "auth_method": client.auth_method,
        "expires_at": rfc3339(issued.expires_at),
        "cache": cache.path().display().to_string(),
    });
    cache.put(Login {
        service_url: ctx.url.clone(),
        issuer,
        token_endpoint: token_endpoint.to_string(),
        client,
        access_token: issued.access_token,
        expires_at: issued.expires_at,
    })?;
    if ctx.output.mode == OutputMode::Json {
        ctx.output.json(&summary);
    } else {
        let text = |key: &str| match &summary[key] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        ctx.output.pairs(&[
            ("logged in to", text("service")),
            ("issuer", text("issuer")),
            ("token endpoint", text("token_endpoint")),
            ("client", text("client_id")),
            ("token expires", text("expires_at")),
            ("kept in", text("cache")),
        ]);
    }
    Ok(())
}

pub async fn logout(args: LogoutArgs, ctx: &Context) -> Result<(), CliError> {
    let removed = match TokenCache::locate() {
        Some(cache) => cache.remove((!args.all).then_some(ctx.url.as_str()))?,
        None => Vec::new(),
    };
    if ctx.output.mode == OutputMode::Json {
        ctx.output.json(&json!({"logged_out": removed}));
    } else if removed.is_empty() {
        println!(
            "not logged in{}",
            if args.all {
                String::new()
            } else {
                format!(" to {}", ctx.url)
            }
        );
    } else {
        for url in removed {
            println!("logged out of {url}");
        }
    }
    Ok(())
}
