//! The one definition of every bounded integer setting of `hex-core-service`: its variable,
//! default and accepted range, and the list of every variable the service reads. The service's
//! parser (`service/src/config.rs`) reads these; the operator's CRD takes its
//! `minimum`/`maximum` from the same constants (a crate without dependencies, so the operator
//! does not link the service), so the API server
//! refuses exactly what the service would refuse, instead of accepting a spec whose pods then
//! exit 2. A test walks every bounded HexCoreService field at both ends through the operator's
//! environment into the service's own `Config::from_env` (`operator/tests/settings.rs`).

/// An integer environment variable of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntSetting {
    pub var: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

const fn int(var: &'static str, default: u64, min: u64, max: u64) -> IntSetting {
    IntSetting { var, default, min, max }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const DAY_SECS: u64 = 86_400;

pub const SERVER_PORT: IntSetting = int("SERVER_PORT", 8080, 0, 65535);
/// `0` picks a free port; unset (the default) means no management listener.
pub const SERVER_MANAGEMENT_PORT: IntSetting = int("SERVER_MANAGEMENT_PORT", 0, 0, 65535);
pub const SERVER_REQUEST_MAX_BYTES: IntSetting = int("SERVER_REQUEST_MAX_BYTES", MIB, KIB, GIB);
pub const SERVER_SHUTDOWN_GRACE_SECS: IntSetting = int("SERVER_SHUTDOWN_GRACE_SECS", 20, 0, 3600);
pub const SERVER_HEADER_READ_TIMEOUT_MS: IntSetting = int("SERVER_HEADER_READ_TIMEOUT_MS", 10_000, 100, 600_000);
pub const SERVER_BODY_READ_TIMEOUT_MS: IntSetting = int("SERVER_BODY_READ_TIMEOUT_MS", 30_000, 100, 3_600_000);
pub const SERVER_IDLE_TIMEOUT_SECS: IntSetting = int("SERVER_IDLE_TIMEOUT_SECS", 120, 1, DAY_SECS);
pub const SERVER_MAX_CONNECTIONS: IntSetting = int("SERVER_MAX_CONNECTIONS", 4096, 1, 1_000_000);
pub const CORS_MAX_AGE_SECS: IntSetting = int("CORS_MAX_AGE_SECS", 600, 0, DAY_SECS);
pub const VALIDATION_TIMEOUT_MS: IntSetting = int("VALIDATION_TIMEOUT_MS", 10_000, 10, 600_000);
/// RDF nodes one payload may produce; the service's validation use case defaults to it.
pub const VALIDATION_MAX_NODES: IntSetting = int("VALIDATION_MAX_NODES", 50_000, 10, 10_000_000);

pub const REGISTRY_CACHE_TTL_SECS: IntSetting = int("REGISTRY_CACHE_TTL_SECS", 300, 0, 7 * DAY_SECS);
pub const REGISTRY_ARTIFACT_MAX_BYTES: IntSetting = int("REGISTRY_ARTIFACT_MAX_BYTES", 16 * MIB, KIB, GIB);
pub const REGISTRY_FETCH_TIMEOUT_MS: IntSetting = int("REGISTRY_FETCH_TIMEOUT_MS", 10_000, 100, 600_000);
pub const REGISTRY_FETCH_CONCURRENCY: IntSetting = int("REGISTRY_FETCH_CONCURRENCY", 8, 1, 256);
/// First delay before retrying a transiently failed entry.
pub const REGISTRY_RETRY_MIN_DELAY_MS: IntSetting = int("REGISTRY_RETRY_MIN_DELAY_MS", 500, 10, 60_000);
/// Cap of the doubling delay (jitter adds up to as much again).
pub const REGISTRY_RETRY_MAX_DELAY_SECS: IntSetting = int("REGISTRY_RETRY_MAX_DELAY_SECS", 30, 1, 3600);
/// Longest a never-loaded, transiently failing entry keeps the replica not ready.
pub const REGISTRY_READY_MAX_WAIT_SECS: IntSetting = int("REGISTRY_READY_MAX_WAIT_SECS", 60, 0, 3600);

pub const IO_ADAPTER_TIMEOUT_MS: IntSetting = int("IO_ADAPTER_TIMEOUT_MS", 5000, 1, 600_000);

pub const AUTH_JWKS_REFRESH_SECS: IntSetting = int("AUTH_JWKS_REFRESH_SECS", 3600, 10, 7 * DAY_SECS);
pub const AUTH_LEEWAY_SECS: IntSetting = int("AUTH_LEEWAY_SECS", 30, 0, 600);
pub const AUTH_JWKS_MIN_REFETCH_SECS: IntSetting = int("AUTH_JWKS_MIN_REFETCH_SECS", 10, 0, 3600);

/// Every bounded integer setting (docs and tests enumerate them).
pub const ALL: &[IntSetting] = &[
    SERVER_PORT,
    SERVER_MANAGEMENT_PORT,
    SERVER_REQUEST_MAX_BYTES,
    SERVER_SHUTDOWN_GRACE_SECS,
    SERVER_HEADER_READ_TIMEOUT_MS,
    SERVER_BODY_READ_TIMEOUT_MS,
    SERVER_IDLE_TIMEOUT_SECS,
    SERVER_MAX_CONNECTIONS,
    CORS_MAX_AGE_SECS,
    VALIDATION_TIMEOUT_MS,
    VALIDATION_MAX_NODES,
    REGISTRY_CACHE_TTL_SECS,
    REGISTRY_ARTIFACT_MAX_BYTES,
    REGISTRY_FETCH_TIMEOUT_MS,
    REGISTRY_FETCH_CONCURRENCY,
    REGISTRY_RETRY_MIN_DELAY_MS,
    REGISTRY_RETRY_MAX_DELAY_SECS,
    REGISTRY_READY_MAX_WAIT_SECS,
    IO_ADAPTER_TIMEOUT_MS,
    AUTH_JWKS_REFRESH_SECS,
    AUTH_LEEWAY_SECS,
    AUTH_JWKS_MIN_REFETCH_SECS,
];

/// Every variable the service reads, for the check that each is either settable from a
/// HexCoreService, set by the operator itself, or deliberately left out of the CRD
/// (`operator/src/settings.rs`). A new variable must be added here; a test compares this
/// list with the variable names in `config.rs`.
pub const VARIABLES: &[&str] = &[
    "AUTH_ADMIN_ROLE",
    "AUTH_ADMIN_TOKEN_FILE",
    "AUTH_ALLOW_INSECURE_NONE",
    "AUTH_AUDIENCE",
    "AUTH_ENFORCE_SCOPES",
    "AUTH_FORWARD_ROLES_HEADER",
    "AUTH_FORWARD_SCOPES_HEADER",
    "AUTH_FORWARD_SUBJECT_HEADER",
    "AUTH_FORWARD_TENANT_HEADER",
    "AUTH_FORWARD_TOKEN_HEADER",
    "AUTH_ISSUER",
    "AUTH_JWKS_MIN_REFETCH_SECS",
    "AUTH_JWKS_REFRESH_SECS",
    "AUTH_JWKS_URL",
    "AUTH_LEEWAY_SECS",
    "AUTH_MODE",
    "AUTH_NONE_ROLES",
    "AUTH_NONE_SCOPES",
    "AUTH_NONE_SUBJECT",
    "AUTH_NONE_TENANT",
    "AUTH_TENANT_CLAIM",
    "CORS_ALLOWED_ORIGINS",
    "CORS_ALLOW_CREDENTIALS",
    "CORS_MAX_AGE_SECS",
    "IO_ADAPTER_BASE_URL",
    "IO_ADAPTER_DATABASE_URL",
    "IO_ADAPTER_DATA_DIR",
    "IO_ADAPTER_ID",
    "IO_ADAPTER_TIMEOUT_MS",
    "IO_ADAPTER_VERSION",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "METRICS_ENABLED",
    "REGISTRY_ALLOWED_HOSTS",
    "REGISTRY_ALLOW_LOCAL_ARTIFACTS",
    "REGISTRY_ARTIFACT_MAX_BYTES",
    "REGISTRY_CACHE_ENABLED",
    "REGISTRY_CACHE_TTL_SECS",
    "REGISTRY_CA_FILE",
    "REGISTRY_CATALOG_FILE",
    "REGISTRY_CATALOG_JSON",
    "REGISTRY_CATALOG_URL",
    "REGISTRY_FETCH_CONCURRENCY",
    "REGISTRY_FETCH_TIMEOUT_MS",
    "REGISTRY_MODE",
    "REGISTRY_READY_MAX_WAIT_SECS",
    "REGISTRY_REQUIRE_HTTPS",
    "REGISTRY_RETRY_MAX_DELAY_SECS",
    "REGISTRY_RETRY_MIN_DELAY_MS",
    "SERVER_BODY_READ_TIMEOUT_MS",
    "SERVER_HEADER_READ_TIMEOUT_MS",
    "SERVER_HOST",
    "SERVER_IDLE_TIMEOUT_SECS",
    "SERVER_MANAGEMENT_PORT",
    "SERVER_MAX_CONNECTIONS",
    "SERVER_PORT",
    "SERVER_REQUEST_MAX_BYTES",
    "SERVER_SHUTDOWN_GRACE_SECS",
    "VALIDATION_MAX_NODES",
    "VALIDATION_TIMEOUT_MS",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `"UPPER_CASE"` literal in config.rs that names a variable the service reads.
    fn variables_in_config_source() -> BTreeSet<String> {
        let source = include_str!("../../service/src/config.rs");
        let mut names = BTreeSet::new();
        for piece in source.split('"').skip(1).step_by(2) {
            let looks_like_var = piece.len() > 3
                && piece.contains('_')
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && VARIABLE_PREFIXES.iter().any(|p| piece.starts_with(p));
            if looks_like_var {
                names.insert(piece.to_string());
            }
        }
        names
    }

    const VARIABLE_PREFIXES: [&str; 8] = [
        "AUTH_",
        "CORS_",
        "IO_ADAPTER_",
        "LOG_",
        "METRICS_",
        "REGISTRY_",
        "SERVER_",
        "VALIDATION_",
    ];

    #[test]
    fn the_variable_list_is_exactly_what_config_reads() {
        let listed: BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
        let mut read = variables_in_config_source();
        // Bounded settings are read through their constants here, not by a literal in config.rs.
        read.extend(ALL.iter().map(|s| s.var.to_string()));
        assert_eq!(
            listed, read,
            "settings::VARIABLES and the variables config.rs reads differ"
        );
    }

    #[test]
    fn bounds_are_ordered_and_defaults_inside_them() {
        let mut seen = BTreeSet::new();
        for s in ALL {
            assert!(seen.insert(s.var), "{} listed twice", s.var);
            assert!(s.min <= s.default && s.default <= s.max, "{s:?}");
            assert!(VARIABLES.contains(&s.var), "{} missing from VARIABLES", s.var);
        }
    }
}
