//! The JWKS cache: keys fetched at start and every `AUTH_JWKS_REFRESH_SECS`, and again when a token
//! names an unknown `kid` (the IdP may have rotated), rate-limited and coalesced so a flood of
//! random kids costs the IdP at most one request per `AUTH_JWKS_MIN_REFETCH_SECS`.
//!
//! Requests read the current `KeySet` through an `ArcSwap` and never wait on a lock; a request that
//! needs a refetch awaits a shared future, not a mutex. A failed fetch keeps the last good keys.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use jsonwebtoken::Validation;

use super::keys::{KeySet, MAX_JWKS_BYTES, ParsedJwks, parse_jwks};
use crate::metrics::JwksMetrics;

/// One JWKS request may take this long; the IdP is usually in the same cluster.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry delays after failed fetches grow from this to `MAX_RETRY_DELAY` (capped by the period).
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Why a fetch is wanted: only fetches caused by tokens are rate-limited.
pub enum Trigger {
    Periodic,
    /// A token named a kid missing from `seen`, the key set it was looked up in.
    UnknownKid {
        seen: Arc<KeySet>,
    },
}

/// The JWKS part of `/admin/ready` and `/admin/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JwksHealth {
    pub url: String,
    pub keys_loaded: usize,
    pub kids: Vec<String>,
    /// Seconds since the last successful fetch; absent if none succeeded yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_seconds_ago: Option<u64>,
    /// The last fetch failed, so the keys in use may be out of date.
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Default)]
struct FetchStatus {
    last_success: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Default)]
struct Refetch {
    in_flight: Option<Shared<BoxFuture<'static, ()>>>,
    last_on_demand: Option<Instant>,
}

pub struct KeyStore {
    url: String,
    client: reqwest::Client,
    template: Validation,
    refresh_every: Duration,
    min_refetch: Duration,
    keys: ArcSwap<KeySet>,
    status: Mutex<FetchStatus>,
    refetch: Mutex<Refetch>,
    metrics: JwksMetrics,
}

impl KeyStore {
    pub fn new(
        url: String,
        template: Validation,
        refresh_every: Duration,
        min_refetch: Duration,
        metrics: JwksMetrics,
    ) -> Result<Arc<Self>, String> {
        crate::registry::fetch::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("hex-core-service/", env!("CARGO_PKG_VERSION")))
            // The JWKS URL is configured; a redirect to elsewhere is a misconfiguration to report,
            // not a place to fetch trust anchors from.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))?;
        Ok(Arc::new(Self {
            url,
            client,
            template,
            refresh_every,
            min_refetch,
            keys: ArcSwap::from_pointee(KeySet::default()),
            status: Mutex::new(FetchStatus::default()),
            refetch: Mutex::new(Refetch::default()),
            metrics,
        }))
    }

    /// The current keys; cheap, lock-free, and not to be held across an await.
    pub fn keys(&self) -> Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// The current keys as an owned `Arc`, for the (rare) unknown-kid path that awaits a refetch.
    pub fn keys_owned(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Fetches the JWKS now, or joins the fetch already running. Returns `false` without fetching
    /// when an `UnknownKid` trigger is rate-limited.
    pub async fn refresh(self: &Arc<Self>, trigger: Trigger) -> bool {
        let fetch = {
            let mut refetch = self.refetch.lock().unwrap_or_else(|p| p.into_inner());
            match &refetch.in_flight {
                Some(in_flight) => in_flight.clone(),
                None => {
                    if let Trigger::UnknownKid { seen } = &trigger {
                        // Keys fetched since the miss (by a fetch that has just finished) are
                        // checked again first; that is not a new request to the IdP.
                        if !Arc::ptr_eq(seen, &self.keys.load_full()) {
                            return true;
                        }
                        if refetch.last_on_demand.is_some_and(|t| t.elapsed() < self.min_refetch) {
                            return false;
                        }
                        refetch.last_on_demand = Some(Instant::now());
                    }
                    // Spawned, so the fetch finishes and clears `in_flight` even if every request
                    // waiting for it is cancelled.
                    let store = self.clone();
                    let task = tokio::spawn(async move {
                        store.fetch_and_swap().await;
                        store.refetch.lock().unwrap_or_else(|p| p.into_inner()).in_flight = None;
                    });
                    let shared = async move {
                        let _ = task.await;
                    }
                    .boxed()
                    .shared();
                    refetch.in_flight = Some(shared.clone());
                    shared
                }
            }
        };
        fetch.await;
        true
    }

    /// Fetches at once, then every `refresh_every`; after a failure, retries sooner with backoff.
    /// Holds only a weak reference while sleeping, so it ends when the authenticator is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut retry_delay = FIRST_RETRY_DELAY;
            loop {
                let Some(store) = weak.upgrade() else { return };
                store.refresh(Trigger::Periodic).await;
                let delay = if store.last_fetch_failed() {
                    let delay = retry_delay.min(store.refresh_every);
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                    delay
                } else {
                    retry_delay = FIRST_RETRY_DELAY;
                    store.refresh_every
                };
                drop(store);
                tokio::time::sleep(delay).await;
            }
        });
    }

    fn last_fetch_failed(&self) -> bool {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error
            .is_some()
    }

    async fn fetch_and_swap(&self) {
        match self.fetch().await {
            Ok(ParsedJwks { set, skipped }) => {
                let kids: Vec<String> = set.kids().into_iter().map(str::to_string).collect();
                let changed = self.keys.load().kids() != set.kids();
                self.metrics.record_success(set.len(), SystemTime::now());
                self.keys.store(Arc::new(set));
                let recovered = {
                    let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    status.last_success = Some(Instant::now());
                    status.last_error.take().is_some()
                };
                if changed || recovered {
                    tracing::info!(url = %self.url, ?kids, ?skipped, "JWKS loaded");
                } else {
                    tracing::debug!(url = %self.url, ?kids, "JWKS refreshed, keys unchanged");
                }
            }
            Err(error) => {
                let keys_kept = self.keys.load().len();
                tracing::warn!(url = %self.url, error = %error, keys_kept, "JWKS fetch failed; keeping the last good keys");
                self.metrics.record_failure();
                self.status.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some(error);
            }
        }
    }

    async fn fetch(&self) -> Result<ParsedJwks, String> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("cannot fetch {}: {}", self.url, error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{} answered HTTP {}", self.url, status.as_u16()));
        }
        if response.content_length().is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
            return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", self.url));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("cannot read {}: {}", self.url, error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", self.url));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body, &self.template)
    }

    pub fn health(&self) -> JwksHealth {
        let keys = self.keys.load();
        let status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        JwksHealth {
            url: self.url.clone(),
            keys_loaded: keys.len(),
            kids: keys.kids().into_iter().map(str::to_string).collect(),
            fetched_seconds_ago: status.last_success.map(|t| t.elapsed().as_secs()),
            stale: status.last_error.is_some() && !keys.is_empty(),
            last_error: status.last_error.clone(),
        }
    }
}

/// reqwest's own message hides the cause ("error sending request"); the chain names it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
