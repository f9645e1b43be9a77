//! The HTTP(S) artifact source: reqwest under the URL policy, with a size cap, a time limit, a
//! policy check on every redirect hop, and an optional TTL cache revalidated with ETag /
//! If-Modified-Since.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use super::local_file::{self, LocalFileLimits};
use super::policy::UrlPolicy;
use crate::ports::{ArtifactSource, FetchError, FetchedArtifact};

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub policy: UrlPolicy,
    pub max_bytes: u64,
    pub timeout: Duration,
    pub cache_ttl: Option<Duration>,
    pub extra_ca_pem: Option<Vec<u8>>,
}

#[derive(Clone)]
struct CachedArtifact {
    bytes: Bytes,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: Instant,
}

pub struct HttpArtifactSource {
    client: reqwest::Client,
    settings: FetchSettings,
    cache: Mutex<HashMap<String, CachedArtifact>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("REGISTRY_CA_FILE is not a PEM certificate bundle: {0}")]
    Ca(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// rustls needs one process-wide crypto provider; ring keeps the build free of C toolchains.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpArtifactSource {
    pub fn new(settings: FetchSettings) -> Result<Self, ClientBuildError> {
        install_crypto_provider();
        let redirect_policy = settings.policy.clone();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("hex-core-service/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match redirect_policy.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(violation) => attempt.error(RedirectRefused(violation.to_string())),
                }
            }));
        if let Some(pem) = &settings.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ClientBuildError::Ca(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientBuildError::Ca("no certificate found".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| ClientBuildError::Client(e.to_string()))?;
        Ok(Self {
            client,
            settings,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn fetch_url(&self, raw_url: &str) -> Result<FetchedArtifact, FetchError> {
        let url = self.settings.policy.check_str(raw_url)?;
        let cached = self.cached(raw_url);
        if let (Some(entry), Some(ttl)) = (&cached, self.settings.cache_ttl)
            && entry.fetched.elapsed() < ttl
        {
            return Ok(FetchedArtifact {
                url: raw_url.to_string(),
                bytes: entry.bytes.clone(),
                from_cache: true,
            });
        }

        let mut request = self.client.get(url);
        if let Some(entry) = &cached {
            if let Some(etag) = &entry.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &entry.last_modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
        }
        let response = request.send().await.map_err(|e| self.transport_error(raw_url, e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED
            && let Some(mut entry) = cached
        {
            entry.fetched = Instant::now();
            let bytes = entry.bytes.clone();
            self.store(raw_url, entry);
            return Ok(FetchedArtifact {
                url: raw_url.to_string(),
                bytes,
                from_cache: true,
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: raw_url.to_string(),
                status: status.as_u16(),
            });
        }
        let etag = header_string(&response, ETAG);
        let last_modified = header_string(&response, LAST_MODIFIED);
        let bytes = self.read_capped(raw_url, response).await?;
        if self.settings.cache_ttl.is_some() {
            self.store(
                raw_url,
                CachedArtifact {
                    bytes: bytes.clone(),
                    etag,
                    last_modified,
                    fetched: Instant::now(),
                },
            );
        }
        Ok(FetchedArtifact {
            url: raw_url.to_string(),
            bytes,
            from_cache: false,
        })
    }

    /// Reads the body without ever holding more than the cap, whatever Content-Length claims.
    async fn read_capped(&self, url: &str, mut response: reqwest::Response) -> Result<Bytes, FetchError> {
        let limit = self.settings.max_bytes;
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(url, e))? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn transport_error(&self, url: &str, error: reqwest::Error) -> FetchError {
        if error.is_timeout() {
            return FetchError::Timeout {
                url: url.to_string(),
                millis: self.settings.timeout.as_millis() as u64,
            };
        }
        if error.is_redirect() {
            let reason = find_redirect_reason(&error).unwrap_or_else(|| error.to_string());
            return FetchError::Redirect {
                url: url.to_string(),
                reason,
            };
        }
        FetchError::Transport {
            url: url.to_string(),
            message: error_chain(&error),
        }
    }

    fn cached(&self, url: &str) -> Option<CachedArtifact> {
        self.settings.cache_ttl?;
        self.cache.lock().expect("cache lock").get(url).cloned()
    }

    fn store(&self, url: &str, entry: CachedArtifact) {
        self.cache.lock().expect("cache lock").insert(url.to_string(), entry);
    }
}

#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

fn find_redirect_reason(error: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<RedirectRefused>() {
            return Some(refused.0.clone());
        }
        source = err.source();
    }
    None
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = err.source();
    }
    message
}

fn header_string(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl ArtifactSource for HttpArtifactSource {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedArtifact, FetchError>> {
        Box::pin(self.fetch_url(url))
    }
}

/// Artifacts named by a relative path in a catalog file, read from beside that file. Only used
/// when `REGISTRY_ALLOW_LOCAL_ARTIFACTS=true`; paths may not leave the catalog's directory.
pub struct LocalArtifactSource {
    root: PathBuf,
    max_bytes: u64,
    timeout: Duration,
}

/// How long one local read may take unless `with_timeout` says otherwise.
const DEFAULT_LOCAL_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl LocalArtifactSource {
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self {
            root,
            max_bytes,
            timeout: DEFAULT_LOCAL_READ_TIMEOUT,
        }
    }

    /// The time limit of one read (the service passes `REGISTRY_FETCH_TIMEOUT_MS`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A catalog value is local when it is a relative path, not a URL.
    pub fn is_local_reference(reference: &str) -> bool {
        !reference.contains("://") && !reference.starts_with('/') && !reference.contains(':')
    }

    async fn read(&self, reference: &str) -> Result<FetchedArtifact, FetchError> {
        let err = |message: String| FetchError::Local {
            path: reference.to_string(),
            message,
        };
        if !Self::is_local_reference(reference) || reference.split(['/', '\\']).any(|s| s == "..") {
            return Err(err(
                "local artifact paths must be relative and stay beside the catalog file".into(),
            ));
        }
        let root = tokio::fs::canonicalize(&self.root)
            .await
            .map_err(|e| err(format!("catalog directory: {e}")))?;
        let path = tokio::fs::canonicalize(root.join(reference))
            .await
            .map_err(|e| err(e.to_string()))?;
        if !path.starts_with(&root) {
            return Err(err("resolves outside the catalog directory".into()));
        }
        let limits = LocalFileLimits {
            max_bytes: self.max_bytes,
            timeout: self.timeout,
        };
        let bytes = local_file::read(&path, limits).await.map_err(|e| err(e.to_string()))?;
        Ok(FetchedArtifact {
            url: reference.to_string(),
            bytes,
            from_cache: false,
        })
    }
}

impl ArtifactSource for LocalArtifactSource {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedArtifact, FetchError>> {
        Box::pin(self.read(url))
    }
}

/// Routes each reference to the local source (relative paths, when enabled) or to HTTP.
pub struct RoutedArtifactSource {
    pub http: Arc<HttpArtifactSource>,
    pub local: Option<LocalArtifactSource>,
}

impl ArtifactSource for RoutedArtifactSource {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<FetchedArtifact, FetchError>> {
        match &self.local {
            Some(local) if LocalArtifactSource::is_local_reference(url) => local.fetch(url),
            _ => self.http.fetch(url),
        }
    }
}
