//! Typed configuration, parsed once at start-up from environment variables.
//!
//! Every error names the variable, the value given and what is accepted, so a misconfigured
//! Deployment fails with one readable line (exit code 2) instead of a panic at first use.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::registry::policy::{AllowList, UrlPolicy};
use crate::registry::state::RetryPolicy;
use hex_core_settings::{self as settings, IntSetting};

/// A configuration error: one variable, the value it had, and what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {problem}; accepted: {accepted}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub problem: String,
    pub accepted: String,
}

impl ConfigError {
    fn new(variable: &str, value: &str, problem: impl Into<String>, accepted: impl Into<String>) -> Self {
        Self {
            variable: variable.to_string(),
            value: value.to_string(),
            problem: problem.into(),
            accepted: accepted.into(),
        }
    }
}

/// Where the catalog comes from: exactly one of the three `REGISTRY_CATALOG_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSource {
    Json(String),
    File(PathBuf),
    Url(String),
}

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub source: CatalogSource,
    pub policy: UrlPolicy,
    pub cache_enabled: bool,
    pub cache_ttl: Duration,
    pub artifact_max_bytes: u64,
    pub fetch_timeout: Duration,
    pub fetch_concurrency: usize,
    /// Extra PEM CA bundle trusted for artifact and catalog fetches (in-cluster CAs, tests).
    pub ca_file: Option<PathBuf>,
    /// Relative artifact paths in a file catalog resolve beside the catalog file.
    pub allow_local_artifacts: bool,
    /// Automatic retries of failed entries and the readiness bound.
    pub retry: RetryPolicy,
}

// Bounded integer settings (default, range) live in the `hex-core-settings` crate.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoAdapterKind {
    Memory,
    Embedded,
    Http,
    Postgres,
}

impl IoAdapterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Embedded => "embedded",
            Self::Http => "http",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IoAdapterConfig {
    pub kind: IoAdapterKind,
    pub version: String,
    pub base_url: Option<String>,
    pub timeout: Duration,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    JwtJwks,
    ForwardAuth,
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JwtJwks => "jwt_jwks",
            Self::ForwardAuth => "forward_auth",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_refresh: Duration,
    pub leeway_secs: u64,
    /// At most one JWKS refetch per this period is triggered by tokens with an unknown `kid`.
    pub jwks_min_refetch: Duration,
    /// Top-level claim that names the caller's tenant, if present.
    pub tenant_claim: String,
}

#[derive(Debug, Clone)]
pub struct ForwardAuthConfig {
    pub subject_header: String,
    pub roles_header: String,
    pub scopes_header: String,
    pub tenant_header: Option<String>,
    pub token_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NoneAuthConfig {
    pub subject: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub jwt: Option<JwtConfig>,
    pub forward: Option<ForwardAuthConfig>,
    pub none: Option<NoneAuthConfig>,
    pub admin_role: String,
    pub enforce_scopes: bool,
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    pub request_max_bytes: usize,
    pub shutdown_grace: Duration,
    pub validation_timeout: Duration,
    /// Most JSON values (objects, arrays, scalars) a payload to validate may hold.
    pub validation_max_nodes: usize,
    /// Slow and idle clients, and how many connections are served at once.
    pub connections: ConnectionConfig,
    /// `SERVER_MANAGEMENT_PORT`: a second listener for probes and metrics, without authentication.
    pub management_port: Option<u16>,
    /// `CORS_ALLOWED_ORIGINS` and friends; `None` (the default) sends no CORS headers at all.
    pub cors: Option<CorsConfig>,
}

/// `SERVER_HEADER_READ_TIMEOUT_MS`: a request head (request line and headers) must arrive within
/// this time of its first byte, and a new connection must send its first request head within it.
/// Ten seconds is far above what a header block needs on any real link (a few hundred bytes) and
/// keeps a slow-headers client's hold on a connection short.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = settings::SERVER_HEADER_READ_TIMEOUT_MS.default;
/// `SERVER_BODY_READ_TIMEOUT_MS`: a request body must arrive completely within this time of the
/// handler's first read. 30 s carries the largest default body (1 MiB) at under 300 kbit/s;
/// ingress proxies buffer bodies and forward them at LAN speed.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = settings::SERVER_BODY_READ_TIMEOUT_MS.default;
/// `SERVER_IDLE_TIMEOUT_SECS`: a keep-alive connection without a request for this long is closed.
/// Longer than the upstream idle timeouts of common load balancers (AWS ALB and ingress-nginx 60 s,
/// Traefik 90 s), so the proxy closes first and never sends a request into a closing connection.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = settings::SERVER_IDLE_TIMEOUT_SECS.default;
/// `SERVER_MAX_CONNECTIONS`: connections served at once on the main port; more wait in the
/// kernel's accept queue. 4096 idle connections cost about 40 MiB of buffers; at start the value
/// is also checked against the open-file limit (see `server::limits`).
pub const DEFAULT_MAX_CONNECTIONS: usize = settings::SERVER_MAX_CONNECTIONS.default as usize;
/// `CORS_MAX_AGE_SECS`: how long a browser may cache a preflight answer.
pub const DEFAULT_CORS_MAX_AGE_SECS: u64 = settings::CORS_MAX_AGE_SECS.default;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Whether `SERVER_MAX_CONNECTIONS` was set: an explicit value above the open-file limit is a
    /// configuration error, the default is lowered to fit.
    pub max_connections_explicit: bool,
}

/// Which browser origins may call the API (`CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    pub origins: CorsOrigins,
    pub allow_credentials: bool,
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub registry: RegistryConfig,
    pub io_adapter: IoAdapterConfig,
    pub auth: AuthConfig,
    pub server: ServerConfig,
    pub log_level: String,
    pub log_format: LogFormat,
    pub metrics_enabled: bool,
}

/// Reads variables through a lookup function so tests can pass a map instead of the process env.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl<'a> Env<'a> {
    pub fn from_process() -> Env<'static> {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    pub fn from_map(map: &'a BTreeMap<String, String>) -> Self {
        Env {
            lookup: Box::new(move |k| map.get(k).cloned()),
        }
    }

    /// A variable that is set to an empty string counts as unset, as in most container tooling.
    fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    fn required(&self, key: &str, accepted: &str) -> Result<String, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError::new(key, "", "is required", accepted))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(key, &v),
        }
    }

    fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
        &self,
        key: &str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        let Some(raw) = self.get(key) else {
            return Ok(default);
        };
        let accepted = format!("an integer from {min} to {max}");
        let value: T = raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(key, &raw, "is not a number", accepted.clone()))?;
        if value < min || value > max {
            return Err(ConfigError::new(key, &raw, "is out of range", accepted));
        }
        Ok(value)
    }

    /// A bounded integer setting: its default, range and variable from [`crate::settings`].
    fn int<T: TryFrom<u64>>(&self, setting: &IntSetting) -> Result<T, ConfigError> {
        let value = self.number(setting.var, setting.default, setting.min, setting.max)?;
        // The bounds are chosen to fit the field's type; a setting whose max did not fit would
        // be a programming error caught by the settings tests.
        T::try_from(value)
            .map_err(|_| ConfigError::new(setting.var, &value.to_string(), "does not fit", "a smaller value"))
    }

    fn list(&self, key: &str, separator: char) -> Vec<String> {
        self.get(key).map(|v| split_list(&v, separator)).unwrap_or_default()
    }
}

fn split_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::new(key, value, "is not a boolean", "true, false")),
    }
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            registry: registry_config(env)?,
            io_adapter: io_adapter_config(env)?,
            auth: auth_config(env)?,
            server: server_config(env)?,
            log_level: log_level(env)?,
            log_format: log_format(env)?,
            metrics_enabled: env.bool("METRICS_ENABLED", false)?,
        })
    }
}

fn registry_config(env: &Env<'_>) -> Result<RegistryConfig, ConfigError> {
    let mode = env.string("REGISTRY_MODE", "catalog");
    if mode != "catalog" {
        return Err(ConfigError::new(
            "REGISTRY_MODE",
            &mode,
            "is not a known registry mode",
            "catalog",
        ));
    }
    let sources = [
        ("REGISTRY_CATALOG_JSON", env.get("REGISTRY_CATALOG_JSON")),
        ("REGISTRY_CATALOG_FILE", env.get("REGISTRY_CATALOG_FILE")),
        ("REGISTRY_CATALOG_URL", env.get("REGISTRY_CATALOG_URL")),
    ];
    let set: Vec<_> = sources.iter().filter(|(_, v)| v.is_some()).collect();
    let accepted = "exactly one of REGISTRY_CATALOG_JSON, REGISTRY_CATALOG_FILE, REGISTRY_CATALOG_URL";
    let source = match set.as_slice() {
        [] => {
            return Err(ConfigError::new(
                "REGISTRY_CATALOG_JSON",
                "",
                "no catalog source is set",
                accepted,
            ));
        }
        [(name, Some(value))] => match *name {
            "REGISTRY_CATALOG_JSON" => CatalogSource::Json(value.clone()),
            "REGISTRY_CATALOG_FILE" => CatalogSource::File(PathBuf::from(value)),
            _ => CatalogSource::Url(value.clone()),
        },
        several => {
            let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
            return Err(ConfigError::new(
                names[1],
                "(set)",
                format!("{} are all set", names.join(" and ")),
                accepted,
            ));
        }
    };

    let hosts_raw = env.required("REGISTRY_ALLOWED_HOSTS", "a comma-separated list of host or host:port")?;
    let allow_list = AllowList::parse(&hosts_raw).map_err(|problem| {
        ConfigError::new(
            "REGISTRY_ALLOWED_HOSTS",
            &hosts_raw,
            problem,
            "a comma-separated list of host or host:port",
        )
    })?;
    let https_raw = env.required("REGISTRY_REQUIRE_HTTPS", "true, false")?;
    let require_https = parse_bool("REGISTRY_REQUIRE_HTTPS", &https_raw)?;

    if let CatalogSource::Url(url) = &source {
        let policy = UrlPolicy::new(allow_list.clone(), require_https);
        policy.check_str(url).map_err(|e| {
            ConfigError::new(
                "REGISTRY_CATALOG_URL",
                url,
                e.to_string(),
                "an http(s) URL admitted by REGISTRY_ALLOWED_HOSTS and REGISTRY_REQUIRE_HTTPS",
            )
        })?;
    }

    Ok(RegistryConfig {
        source,
        policy: UrlPolicy::new(allow_list, require_https),
        cache_enabled: env.bool("REGISTRY_CACHE_ENABLED", false)?,
        cache_ttl: Duration::from_secs(env.int::<u64>(&settings::REGISTRY_CACHE_TTL_SECS)?),
        artifact_max_bytes: env.int(&settings::REGISTRY_ARTIFACT_MAX_BYTES)?,
        fetch_timeout: Duration::from_millis(env.int::<u64>(&settings::REGISTRY_FETCH_TIMEOUT_MS)?),
        fetch_concurrency: env.int(&settings::REGISTRY_FETCH_CONCURRENCY)?,
        ca_file: env.get("REGISTRY_CA_FILE").map(PathBuf::from),
        allow_local_artifacts: env.bool("REGISTRY_ALLOW_LOCAL_ARTIFACTS", false)?,
        retry: retry_policy(env)?,
    })
}

/// (default, min, max) of each variable are the constants above.
fn retry_policy(env: &Env<'_>) -> Result<RetryPolicy, ConfigError> {
    let min_delay = Duration::from_millis(env.int(&settings::REGISTRY_RETRY_MIN_DELAY_MS)?);
    let max_delay = Duration::from_secs(env.int(&settings::REGISTRY_RETRY_MAX_DELAY_SECS)?);
    if max_delay < min_delay {
        return Err(ConfigError::new(
            "REGISTRY_RETRY_MAX_DELAY_SECS",
            &max_delay.as_secs().to_string(),
            "is shorter than REGISTRY_RETRY_MIN_DELAY_MS",
            "a cap at least as long as the first delay",
        ));
    }
    let ready_max_wait = Duration::from_secs(env.int(&settings::REGISTRY_READY_MAX_WAIT_SECS)?);
    Ok(RetryPolicy {
        min_delay,
        max_delay,
        ready_max_wait,
    })
}

fn io_adapter_config(env: &Env<'_>) -> Result<IoAdapterConfig, ConfigError> {
    let raw = env.string("IO_ADAPTER_ID", "memory");
    let kind = match raw.as_str() {
        "memory" => IoAdapterKind::Memory,
        "embedded" => IoAdapterKind::Embedded,
        "http" => IoAdapterKind::Http,
        "postgres" => IoAdapterKind::Postgres,
        _ => {
            return Err(ConfigError::new(
                "IO_ADAPTER_ID",
                &raw,
                "is not a known IO adapter",
                "memory, embedded, http, postgres",
            ));
        }
    };
    let base_url = env.get("IO_ADAPTER_BASE_URL");
    if kind == IoAdapterKind::Http {
        let url = base_url.clone().ok_or_else(|| {
            ConfigError::new(
                "IO_ADAPTER_BASE_URL",
                "",
                "is required when IO_ADAPTER_ID=http",
                "an http(s) URL",
            )
        })?;
        if url::Url::parse(&url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(ConfigError::new(
                "IO_ADAPTER_BASE_URL",
                &url,
                "is not an http(s) URL",
                "an http(s) URL",
            ));
        }
    }
    let database_url = env.get("IO_ADAPTER_DATABASE_URL");
    if kind == IoAdapterKind::Postgres && database_url.is_none() {
        return Err(ConfigError::new(
            "IO_ADAPTER_DATABASE_URL",
            "",
            "is required when IO_ADAPTER_ID=postgres",
            "a PostgreSQL connection URL (postgres://user@host:port/db)",
        ));
    }
    Ok(IoAdapterConfig {
        kind,
        version: env.string("IO_ADAPTER_VERSION", "v1"),
        base_url,
        timeout: Duration::from_millis(env.int::<u64>(&settings::IO_ADAPTER_TIMEOUT_MS)?),
        data_dir: PathBuf::from(env.string("IO_ADAPTER_DATA_DIR", "./.data")),
        database_url,
    })
}

fn auth_config(env: &Env<'_>) -> Result<AuthConfig, ConfigError> {
    let raw = env.string("AUTH_MODE", "jwt_jwks");
    let mode = match raw.as_str() {
        "jwt_jwks" => AuthMode::JwtJwks,
        "forward_auth" => AuthMode::ForwardAuth,
        "none" => AuthMode::None,
        _ => {
            return Err(ConfigError::new(
                "AUTH_MODE",
                &raw,
                "is not a known auth mode",
                "jwt_jwks, forward_auth, none",
            ));
        }
    };
    let jwt = match mode {
        AuthMode::JwtJwks => {
            let jwks_url = env.required("AUTH_JWKS_URL", "the http(s) URL of the identity provider's JWKS")?;
            if url::Url::parse(&jwks_url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                return Err(ConfigError::new(
                    "AUTH_JWKS_URL",
                    &jwks_url,
                    "is not an http(s) URL",
                    "an http(s) URL",
                ));
            }
            Some(JwtConfig {
                jwks_url,
                issuer: env.required("AUTH_ISSUER", "the expected `iss` claim")?,
                audience: env.required("AUTH_AUDIENCE", "the expected `aud` claim")?,
                jwks_refresh: Duration::from_secs(env.int::<u64>(&settings::AUTH_JWKS_REFRESH_SECS)?),
                leeway_secs: env.int(&settings::AUTH_LEEWAY_SECS)?,
                jwks_min_refetch: Duration::from_secs(env.int::<u64>(&settings::AUTH_JWKS_MIN_REFETCH_SECS)?),
                tenant_claim: env.string("AUTH_TENANT_CLAIM", "tenant"),
            })
        }
        _ => None,
    };
    let forward = (mode == AuthMode::ForwardAuth).then(|| ForwardAuthConfig {
        subject_header: env
            .string("AUTH_FORWARD_SUBJECT_HEADER", "x-auth-subject")
            .to_ascii_lowercase(),
        roles_header: env
            .string("AUTH_FORWARD_ROLES_HEADER", "x-auth-roles")
            .to_ascii_lowercase(),
        scopes_header: env
            .string("AUTH_FORWARD_SCOPES_HEADER", "x-auth-scopes")
            .to_ascii_lowercase(),
        tenant_header: env.get("AUTH_FORWARD_TENANT_HEADER").map(|h| h.to_ascii_lowercase()),
        token_header: env.get("AUTH_FORWARD_TOKEN_HEADER").map(|h| h.to_ascii_lowercase()),
    });
    let none = if mode == AuthMode::None {
        let allowed_raw = env.string("AUTH_ALLOW_INSECURE_NONE", "false");
        if !parse_bool("AUTH_ALLOW_INSECURE_NONE", &allowed_raw)? {
            return Err(ConfigError::new(
                "AUTH_MODE",
                "none",
                "disables authentication and needs AUTH_ALLOW_INSECURE_NONE=true to confirm",
                "jwt_jwks, forward_auth, or none together with AUTH_ALLOW_INSECURE_NONE=true",
            ));
        }
        Some(NoneAuthConfig {
            subject: env.string("AUTH_NONE_SUBJECT", "dev-anonymous"),
            roles: env.list("AUTH_NONE_ROLES", ','),
            scopes: env.list("AUTH_NONE_SCOPES", ' '),
            tenant: env.get("AUTH_NONE_TENANT"),
        })
    } else {
        None
    };
    Ok(AuthConfig {
        mode,
        jwt,
        forward,
        none,
        admin_role: env.string("AUTH_ADMIN_ROLE", "admin"),
        enforce_scopes: env.bool("AUTH_ENFORCE_SCOPES", false)?,
        admin_token_file: env.get("AUTH_ADMIN_TOKEN_FILE").map(PathBuf::from),
    })
}

fn server_config(env: &Env<'_>) -> Result<ServerConfig, ConfigError> {
    let host_raw = env.string("SERVER_HOST", "0.0.0.0");
    let host: IpAddr = host_raw.parse().map_err(|_| {
        ConfigError::new(
            "SERVER_HOST",
            &host_raw,
            "is not an IP address",
            "an IPv4 or IPv6 address such as 0.0.0.0 or 127.0.0.1",
        )
    })?;
    Ok(ServerConfig {
        host,
        port: env.int(&settings::SERVER_PORT)?,
        request_max_bytes: env.int(&settings::SERVER_REQUEST_MAX_BYTES)?,
        shutdown_grace: Duration::from_secs(env.int::<u64>(&settings::SERVER_SHUTDOWN_GRACE_SECS)?),
        validation_timeout: Duration::from_millis(env.int::<u64>(&settings::VALIDATION_TIMEOUT_MS)?),
        validation_max_nodes: env.int(&settings::VALIDATION_MAX_NODES)?,
        connections: connection_config(env)?,
        management_port: management_port(env)?,
        cors: cors_config(env)?,
    })
}

fn connection_config(env: &Env<'_>) -> Result<ConnectionConfig, ConfigError> {
    Ok(ConnectionConfig {
        header_read_timeout: Duration::from_millis(env.int(&settings::SERVER_HEADER_READ_TIMEOUT_MS)?),
        body_read_timeout: Duration::from_millis(env.int(&settings::SERVER_BODY_READ_TIMEOUT_MS)?),
        idle_timeout: Duration::from_secs(env.int(&settings::SERVER_IDLE_TIMEOUT_SECS)?),
        max_connections: env.int(&settings::SERVER_MAX_CONNECTIONS)?,
        max_connections_explicit: env.get("SERVER_MAX_CONNECTIONS").is_some(),
    })
}

/// `SERVER_MANAGEMENT_PORT`: unset means no second listener; `0` picks a free port (tests).
fn management_port(env: &Env<'_>) -> Result<Option<u16>, ConfigError> {
    let Some(raw) = env.get("SERVER_MANAGEMENT_PORT") else {
        return Ok(None);
    };
    let port: u16 = env.int(&settings::SERVER_MANAGEMENT_PORT)?;
    let main: u16 = env.int(&settings::SERVER_PORT)?;
    if port != 0 && port == main {
        return Err(ConfigError::new(
            "SERVER_MANAGEMENT_PORT",
            &raw,
            "is the same port as SERVER_PORT",
            "a port other than SERVER_PORT (the operator uses 9464), or unset for no management listener",
        ));
    }
    Ok(Some(port))
}

fn cors_config(env: &Env<'_>) -> Result<Option<CorsConfig>, ConfigError> {
    let accepted = "*, or a comma-separated list of origins such as https://app.example.org,http://localhost:3000";
    let Some(raw) = env.get("CORS_ALLOWED_ORIGINS") else {
        for dependent in ["CORS_ALLOW_CREDENTIALS", "CORS_MAX_AGE_SECS"] {
            if let Some(value) = env.get(dependent) {
                return Err(ConfigError::new(
                    dependent,
                    &value,
                    "has no effect without CORS_ALLOWED_ORIGINS (CORS is off)",
                    "unset, or set CORS_ALLOWED_ORIGINS too",
                ));
            }
        }
        return Ok(None);
    };
    let allow_credentials = env.bool("CORS_ALLOW_CREDENTIALS", false)?;
    let origins = if raw.trim() == "*" {
        if allow_credentials {
            // Browsers refuse credentials with a wildcard origin, so this can only be a mistake.
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                &raw,
                "is * while CORS_ALLOW_CREDENTIALS=true, which browsers refuse",
                "a list of origins when credentials are allowed",
            ));
        }
        CorsOrigins::Any
    } else {
        let list = split_list(&raw, ',');
        for origin in &list {
            parse_origin(origin).map_err(|problem| {
                ConfigError::new("CORS_ALLOWED_ORIGINS", &raw, format!("{origin:?} {problem}"), accepted)
            })?;
        }
        if list.is_empty() {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                &raw,
                "names no origin",
                accepted,
            ));
        }
        CorsOrigins::List(list)
    };
    Ok(Some(CorsConfig {
        origins,
        allow_credentials,
        max_age: Duration::from_secs(env.int::<u64>(&settings::CORS_MAX_AGE_SECS)?),
    }))
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing else (no path, no slash).
fn parse_origin(origin: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(origin).map_err(|_| "is not an origin")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http(s) origin");
    }
    if url.host_str().is_none() {
        return Err("has no host");
    }
    if url.origin().ascii_serialization() != origin {
        return Err("is not exactly scheme://host[:port] (no path, no trailing slash, lower case)");
    }
    Ok(())
}

fn log_level(env: &Env<'_>) -> Result<String, ConfigError> {
    let raw = env.string("LOG_LEVEL", "info").to_ascii_lowercase();
    match raw.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" => Ok(raw),
        _ => Err(ConfigError::new(
            "LOG_LEVEL",
            &raw,
            "is not a log level",
            "trace, debug, info, warn, error",
        )),
    }
}

fn log_format(env: &Env<'_>) -> Result<LogFormat, ConfigError> {
    let raw = env.string("LOG_FORMAT", "json");
    match raw.as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(ConfigError::new(
            "LOG_FORMAT",
            &raw,
            "is not a log format",
            "json, text",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            ("REGISTRY_CATALOG_JSON", "[]"),
            ("REGISTRY_ALLOWED_HOSTS", "example.org"),
            ("REGISTRY_REQUIRE_HTTPS", "true"),
            ("AUTH_MODE", "none"),
            ("AUTH_ALLOW_INSECURE_NONE", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn parse(map: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_map(map))
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.request_max_bytes, 1_048_576);
        assert_eq!(config.server.validation_max_nodes, 50_000);
        assert_eq!(config.registry.cache_ttl, Duration::from_secs(300));
        assert_eq!(config.registry.retry, RetryPolicy::default());
        assert_eq!(config.io_adapter.timeout, Duration::from_millis(5000));
        assert!(!config.metrics_enabled);
        assert_eq!(config.log_level, "info");
        let connections = &config.server.connections;
        assert_eq!(connections.header_read_timeout, Duration::from_secs(10));
        assert_eq!(connections.body_read_timeout, Duration::from_secs(30));
        assert_eq!(connections.idle_timeout, Duration::from_secs(120));
        assert_eq!(connections.max_connections, 4096);
        assert!(!connections.max_connections_explicit);
        assert_eq!(config.server.management_port, None);
        assert_eq!(config.server.cors, None);
    }

    #[test]
    fn connection_limits_are_parsed_and_bounded() {
        let mut map = base();
        map.insert("SERVER_HEADER_READ_TIMEOUT_MS".into(), "2500".into());
        map.insert("SERVER_IDLE_TIMEOUT_SECS".into(), "5".into());
        map.insert("SERVER_MAX_CONNECTIONS".into(), "64".into());
        let connections = parse(&map).unwrap().server.connections;
        assert_eq!(connections.header_read_timeout, Duration::from_millis(2500));
        assert_eq!(connections.idle_timeout, Duration::from_secs(5));
        assert_eq!(connections.max_connections, 64);
        assert!(connections.max_connections_explicit);
        for (variable, value) in [
            ("SERVER_HEADER_READ_TIMEOUT_MS", "0"),
            ("SERVER_BODY_READ_TIMEOUT_MS", "soon"),
            ("SERVER_IDLE_TIMEOUT_SECS", "0"),
            ("SERVER_MAX_CONNECTIONS", "0"),
        ] {
            let mut map = base();
            map.insert(variable.into(), value.into());
            let err = parse(&map).unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
            assert!(err.accepted.contains("an integer from"), "{err}");
        }
    }

    #[test]
    fn management_port_must_differ_from_the_main_port() {
        let mut map = base();
        map.insert("SERVER_MANAGEMENT_PORT".into(), "9464".into());
        assert_eq!(parse(&map).unwrap().server.management_port, Some(9464));
        map.insert("SERVER_PORT".into(), "9464".into());
        assert_eq!(parse(&map).unwrap_err().variable, "SERVER_MANAGEMENT_PORT");
        map.insert("SERVER_MANAGEMENT_PORT".into(), "0".into());
        map.insert("SERVER_PORT".into(), "0".into());
        assert_eq!(parse(&map).unwrap().server.management_port, Some(0));
    }

    #[test]
    fn cors_origins_are_checked() {
        let mut map = base();
        map.insert(
            "CORS_ALLOWED_ORIGINS".into(),
            "https://app.example.org, http://localhost:3000".into(),
        );
        let cors = parse(&map).unwrap().server.cors.unwrap();
        assert_eq!(
            cors.origins,
            CorsOrigins::List(vec!["https://app.example.org".into(), "http://localhost:3000".into()])
        );
        assert!(!cors.allow_credentials);
        assert_eq!(cors.max_age, Duration::from_secs(600));
        for bad in [
            "https://app.example.org/",
            "app.example.org",
            "ftp://x.org",
            "https://x.org/path",
        ] {
            map.insert("CORS_ALLOWED_ORIGINS".into(), bad.into());
            assert_eq!(parse(&map).unwrap_err().variable, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
        map.insert("CORS_ALLOWED_ORIGINS".into(), "*".into());
        assert_eq!(parse(&map).unwrap().server.cors.unwrap().origins, CorsOrigins::Any);
        map.insert("CORS_ALLOW_CREDENTIALS".into(), "true".into());
        assert!(parse(&map).unwrap_err().problem.contains("browsers refuse"));
        map.remove("CORS_ALLOWED_ORIGINS");
        assert_eq!(parse(&map).unwrap_err().variable, "CORS_ALLOW_CREDENTIALS");
    }

    #[test]
    fn unknown_auth_mode_names_variable_value_and_accepted_values() {
        let mut map = base();
        map.insert("AUTH_MODE".into(), "magic".into());
        let err = parse(&map).unwrap_err();
        assert_eq!(err.variable, "AUTH_MODE");
        assert_eq!(err.value, "magic");
        assert!(err.to_string().contains("jwt_jwks, forward_auth, none"), "{err}");
    }

    #[test]
    fn none_auth_requires_the_insecure_flag() {
        let mut map = base();
        map.remove("AUTH_ALLOW_INSECURE_NONE");
        let err = parse(&map).unwrap_err();
        assert!(err.to_string().contains("AUTH_ALLOW_INSECURE_NONE=true"), "{err}");
    }

    #[test]
    fn two_catalog_sources_are_rejected() {
        let mut map = base();
        map.insert("REGISTRY_CATALOG_FILE".into(), "catalog.json".into());
        let err = parse(&map).unwrap_err();
        assert!(
            err.problem.contains("REGISTRY_CATALOG_JSON and REGISTRY_CATALOG_FILE"),
            "{err}"
        );
    }

    #[test]
    fn missing_catalog_source_is_rejected() {
        let mut map = base();
        map.remove("REGISTRY_CATALOG_JSON");
        assert!(parse(&map).unwrap_err().problem.contains("no catalog source"));
    }

    #[test]
    fn malformed_port_and_bool_are_rejected() {
        let mut map = base();
        map.insert("SERVER_PORT".into(), "80a".into());
        assert_eq!(parse(&map).unwrap_err().variable, "SERVER_PORT");
        let mut map = base();
        map.insert("METRICS_ENABLED".into(), "maybe".into());
        let err = parse(&map).unwrap_err();
        assert_eq!(err.variable, "METRICS_ENABLED");
        assert_eq!(err.accepted, "true, false");
    }

    #[test]
    fn require_https_is_required() {
        let mut map = base();
        map.remove("REGISTRY_REQUIRE_HTTPS");
        assert_eq!(parse(&map).unwrap_err().variable, "REGISTRY_REQUIRE_HTTPS");
    }

    #[test]
    fn catalog_url_must_pass_the_policy() {
        let mut map = base();
        map.remove("REGISTRY_CATALOG_JSON");
        map.insert("REGISTRY_CATALOG_URL".into(), "http://example.org/catalog.json".into());
        let err = parse(&map).unwrap_err();
        assert_eq!(err.variable, "REGISTRY_CATALOG_URL");
        assert!(err.problem.contains("https"), "{err}");
    }

    #[test]
    fn retry_settings_are_bounded_and_consistent() {
        let mut map = base();
        map.insert("REGISTRY_READY_MAX_WAIT_SECS".into(), "3601".into());
        assert_eq!(parse(&map).unwrap_err().variable, "REGISTRY_READY_MAX_WAIT_SECS");
        let mut map = base();
        map.insert("REGISTRY_RETRY_MIN_DELAY_MS".into(), "5000".into());
        map.insert("REGISTRY_RETRY_MAX_DELAY_SECS".into(), "2".into());
        assert_eq!(parse(&map).unwrap_err().variable, "REGISTRY_RETRY_MAX_DELAY_SECS");
        let mut map = base();
        map.insert("REGISTRY_RETRY_MIN_DELAY_MS".into(), "50".into());
        map.insert("REGISTRY_READY_MAX_WAIT_SECS".into(), "0".into());
        let retry = parse(&map).unwrap().registry.retry;
        assert_eq!(retry.min_delay, Duration::from_millis(50));
        assert_eq!(retry.ready_max_wait, Duration::ZERO);
    }

    #[test]
    fn http_adapter_needs_a_base_url() {
        let mut map = base();
        map.insert("IO_ADAPTER_ID".into(), "http".into());
        assert_eq!(parse(&map).unwrap_err().variable, "IO_ADAPTER_BASE_URL");
    }
}
