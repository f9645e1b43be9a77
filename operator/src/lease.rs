//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! The algorithm is client-go's: a candidate creates the Lease if it is absent, renews it while it
//! holds it, and takes it over only after the current holder has not renewed it for a full lease
//! duration. Every write carries the `resourceVersion` the candidate read (or is a create), so the
//! API server's optimistic concurrency decides races: of several candidates writing the same
//! observed version, exactly one succeeds and the others get `409 Conflict`.
//!
//! Expiry is judged by *local* observation time, not by the `renewTime` another process wrote, so
//! clock skew between replicas cannot make two of them believe they lead.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

/// One candidate for one Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    observed: Mutex<Option<Observed>>,
}

/// The Lease as this candidate last saw it, and when it saw that version first.
struct Observed {
    resource_version: String,
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    since: Instant,
}

/// Outcome of one acquire-or-renew attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// This candidate holds the Lease (just created, renewed or taken over).
    Held,
    /// Another candidate holds it (or won the race for it).
    HeldBy(Option<String>),
}

impl LeaseLock {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            observed: Mutex::new(None),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One step of the election: create, renew or take over the Lease if this candidate may.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = Timestamp::now();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = self.lease_for_me(None, now, 0);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(Attempt::Held)
                }
                Err(e) if is_status(&e, 409) => Ok(Attempt::HeldBy(None)),
                Err(e) => Err(e),
            };
        };
        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() && !self.observed_expired() {
            return Ok(Attempt::HeldBy(holder));
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquire_time = if mine { spec.acquire_time.map(|t| t.0) } else { None };
        let mut lease = self.lease_for_me(acquire_time, now, transitions);
        lease.metadata.resource_version = current.metadata.resource_version.clone();
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(updated) => {
                self.observe(&updated);
                Ok(Attempt::Held)
            }
            Err(e) if is_status(&e, 409) => Ok(Attempt::HeldBy(holder)),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (if held) so a successor need not wait for it to expire.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut current) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = current.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(&self.name, &PostParams::default(), &current).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn lease_for_me(&self, acquired: Option<Timestamp>, now: Timestamp, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
                acquire_time: Some(MicroTime(acquired.unwrap_or(now))),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(transitions),
                ..Default::default()
            }),
        }
    }

    /// Records the Lease's version; the expiry clock restarts only when the record changes.
    fn observe(&self, lease: &Lease) {
        let spec = lease.spec.as_ref();
        let holder = spec.and_then(|s| s.holder_identity.clone());
        let renew_time = spec.and_then(|s| s.renew_time.as_ref().map(|t| t.0));
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        let changed = observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
        if changed {
            *observed = Some(Observed {
                resource_version: version,
                holder,
                renew_time,
                since: Instant::now(),
            });
        } else if let Some(o) = observed.as_mut() {
            o.resource_version = version;
        }
    }

    fn observed_expired(&self) -> bool {
        let observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        observed
            .as_ref()
            .is_some_and(|o| !o.resource_version.is_empty() && o.since.elapsed() >= self.duration)
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Timing of the election loop, as in client-go: renew every `retry`, and step down when no
/// renewal succeeded for `renew_deadline` (which must be shorter than the lease duration, so a
/// successor can never take over while this process still believes it leads).
#[derive(Debug, Clone, Copy)]
pub struct ElectionTiming {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Runs the election forever, publishing whether this process leads on `leading`.
pub async fn run_election(lock: &LeaseLock, timing: ElectionTiming, leading: &watch::Sender<bool>) {
    let mut last_renewed: Option<Instant> = None;
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(Attempt::Held) => {
                if !*leading.borrow() {
                    tracing::info!(identity = lock.identity(), "acquired the leader lease");
                }
                last_renewed = Some(Instant::now());
                leading.send_replace(true);
            }
            Ok(Attempt::HeldBy(holder)) => {
                if *leading.borrow() {
                    tracing::warn!(?holder, "lost the leader lease to another replica");
                }
                last_renewed = None;
                leading.send_replace(false);
            }
            Err(error) => {
                tracing::warn!(%error, "leader lease renewal failed");
                if last_renewed.is_none_or(|t| t.elapsed() >= timing.renew_deadline) && *leading.borrow() {
                    tracing::warn!("renew deadline passed; stepping down");
                    leading.send_replace(false);
                }
            }
        }
        tokio::time::sleep(timing.retry).await;
    }
}
