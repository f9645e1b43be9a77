//! The per-user login cache of `hex-cli login`: one entry per service URL, holding where its token
//! comes from (issuer, token endpoint, client), the client secret needed to renew it, and the
//! current access token with its expiry. The file is private to the user (0600 in a 0700 folder);
//! a cache that others can read is refused rather than used, as ssh does with keys.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oidc::ClientCredentials;

/// Overrides where the cache file is (tests, several identities side by side).
pub const CACHE_FILE_ENV: &str = "HEX_CLI_TOKEN_CACHE";
/// A token is renewed when it has fewer seconds than this left, so that it does not expire on the
/// way to the service (the service allows clock skew on top: `AUTH_LEEWAY_SECS`).
pub const RENEW_BEFORE_SECS: u64 = 30;
const FORMAT_VERSION: u32 = 1;

/// One `hex-cli login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub service_url: String,
    /// The issuer the token endpoint was discovered from (`None`: given as `--token-url`).
    pub issuer: Option<String>,
    pub token_endpoint: String,
    pub client: ClientCredentials,
    pub access_token: String,
    /// Unix seconds; `None` when the issuer said nothing (the token is then renewed every time).
    pub expires_at: Option<u64>,
}

impl Login {
    pub fn fresh(&self, now: u64) -> bool {
        self.expires_at
            .is_some_and(|at| at > now.saturating_add(RENEW_BEFORE_SECS))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// By service URL (normalised: `service_key`).
    logins: BTreeMap<String, Login>,
}

impl Default for CacheFile {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            logins: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the login cache {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "the login cache {0} can be read by other users (mode {mode:o}): `chmod 600 {0}`, or delete it and log in again",
        .path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the login cache {} is not readable by this hex-cli ({message}): delete it and log in again", .path.display())]
    Corrupt { path: PathBuf, message: String },
}

/// The key of a service URL: scheme, host and port as the URL parser normalises them, without a
/// trailing slash (`HTTPS://Svc.Example:443/` and `https://svc.example` are one service).
pub fn service_key(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.as_str().trim_end_matches('/').to_string(),
        Err(_) => url.trim_end_matches('/').to_string(),
    }
}

pub struct TokenCache {
    path: PathBuf,
}

impl TokenCache {
    /// `HEX_CLI_TOKEN_CACHE`, else `$XDG_CACHE_HOME/hex-cli/tokens.json`, else
    /// `$HOME/.cache/hex-cli/tokens.json`; `None` when none of them is set.
    pub fn locate() -> Option<Self> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let path = var(CACHE_FILE_ENV)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("hex-cli/tokens.json")))
            .or_else(|| var("HOME").map(|d| d.join(".cache/hex-cli/tokens.json")))?;
        Some(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, service_url: &str) -> Result<Option<Login>, CacheError> {
        if !self.path.exists() {
            return Ok(None);
        }
        let _lock = self.lock()?;
        Ok(self.read()?.logins.remove(&service_key(service_url)))
    }

    pub fn put(&self, login: Login) -> Result<(), CacheError> {
        let _lock = self.lock()?;
        let mut file = self.read()?;
        file.logins.insert(service_key(&login.service_url), login);
        self.write(&file)
    }

    /// Removes the login of `service_url`, or every login when `None`; returns the URLs removed.
    pub fn remove(&self, service_url: Option<&str>) -> Result<Vec<String>, CacheError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let mut file = self.read()?;
        let removed = match service_url {
            Some(url) => file
                .logins
                .remove(&service_key(url))
                .map(|l| vec![l.service_url])
                .unwrap_or_default(),
            None => std::mem::take(&mut file.logins)
                .into_values()
                .map(|l| l.service_url)
                .collect(),
        };
        if !removed.is_empty() {
            self.write(&file)?;
        }
        Ok(removed)
    }

    fn io(&self, source: std::io::Error) -> CacheError {
        CacheError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// An exclusive lock on a file beside the cache, held for one read-modify-write, so that two
    /// commands renewing tokens at once do not drop each other's entries.
    fn lock(&self) -> Result<File, CacheError> {
        create_private_dir(self.dir()).map_err(|e| self.io(e))?;
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock = private_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir().join(name))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        Ok(lock)
    }

    fn read(&self) -> Result<CacheFile, CacheError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
            Err(e) => return Err(self.io(e)),
        };
        self.check_private()?;
        let file: CacheFile = serde_json::from_slice(&bytes).map_err(|e| CacheError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if file.version != FORMAT_VERSION {
            return Err(CacheError::Corrupt {
                path: self.path.clone(),
                message: format!("format version {}, this hex-cli reads {FORMAT_VERSION}", file.version),
            });
        }
        Ok(file)
    }

    #[cfg(unix)]
    fn check_private(&self) -> Result<(), CacheError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.path)
            .map_err(|e| self.io(e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(CacheError::Exposed {
                path: self.path.clone(),
                mode,
            });
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_private(&self) -> Result<(), CacheError> {
        Ok(())
    }

    /// Writes a new file (0600 from its creation, never wider) and renames it over the old one, so
    /// a reader sees the old or the new cache, never half of one.
    fn write(&self, file: &CacheFile) -> Result<(), CacheError> {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.tmp", std::process::id()));
        let temporary = self.dir().join(name);
        let bytes = serde_json::to_vec_pretty(file).expect("the cache serialises");
        let result = (|| {
            let mut out = private_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temporary)?;
            out.write_all(&bytes)?;
            out.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result.map_err(|e| self.io(e))
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates the cache folder (and its parents) for this user only; an existing folder is left as
/// it is (it may be the user's own `~/.cache`).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::AuthMethod;

    fn login(url: &str, expires_at: Option<u64>) -> Login {
        Login {
            service_url: url.to_string(),
            issuer: Some("https://idp.example/realms/x".into()),
            token_endpoint: "https://idp.example/realms/x/token".into(),
            client: ClientCredentials {
                client_id: "c".into(),
                client_secret: "s".into(),
                scope: None,
                audience: None,
                auth_method: AuthMethod::ClientSecretBasic,
            },
            access_token: "t".into(),
            expires_at,
        }
    }

    #[test]
    fn service_urls_are_keyed_as_the_url_parser_normalises_them() {
        assert_eq!(service_key("HTTPS://Svc.Example:443/"), "https://svc.example");
        assert_eq!(service_key("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(service_key("https://svc.example/prefix/"), "https://svc.example/prefix");
    }

    #[test]
    fn a_token_is_renewed_shortly_before_it_expires() {
        assert!(login("u", Some(1_000)).fresh(1_000 - RENEW_BEFORE_SECS - 1));
        assert!(!login("u", Some(1_000)).fresh(1_000 - RENEW_BEFORE_SECS));
        assert!(!login("u", None).fresh(0), "an unknown expiry is renewed every time");
    }

    #[test]
    fn entries_are_kept_per_service_and_removed_one_or_all() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache {
            path: dir.path().join("sub/tokens.json"),
        };
        assert!(cache.get("https://a.example").unwrap().is_none());
        cache.put(login("https://a.example/", Some(5))).unwrap();
        cache.put(login("https://b.example", Some(6))).unwrap();
        assert_eq!(cache.get("https://A.example").unwrap().unwrap().expires_at, Some(5));
        assert_eq!(
            cache.remove(Some("https://a.example")).unwrap(),
            vec!["https://a.example/"]
        );
        assert!(cache.get("https://a.example").unwrap().is_none());
        assert_eq!(cache.remove(None).unwrap(), vec!["https://b.example"]);
        assert!(cache.remove(None).unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_is_private_and_an_exposed_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache {
            path: dir.path().join("hex-cli/tokens.json"),
        };
        cache.put(login("https://a.example", Some(5))).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(cache.path()), 0o600);
        assert_eq!(mode(&dir.path().join("hex-cli")), 0o700);
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = cache.get("https://a.example").unwrap_err();
        assert!(matches!(error, CacheError::Exposed { mode: 0o644, .. }), "{error}");
    }
}
