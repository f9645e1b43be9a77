//! `IO_ADAPTER_ID=embedded`: a durable single-node store in `IO_ADAPTER_DATA_DIR/records.redb`.
//!
//! redb (pure Rust, ACID, copy-on-write B-trees) holds the records and idempotency keys; every
//! commit is fsync'd before a create is acknowledged, so a 200 survives `kill -9`. Writes go to
//! one writer thread that commits waiting creates as ONE transaction (group commit): one fsync per
//! batch instead of per record, and a natural serialisation point for idempotency decisions. The
//! commit (about one fsync) costs the same for 1 record as for 16, so throughput at a given
//! concurrency is set by how many writers each commit gathers; see [`gather`]. Reads and queries
//! are served from an in-memory index loaded at open and updated after each commit, so a query
//! scans memory, not disk (the trade-off: memory grows with the data set).
//!
//! After an I/O error (a full disk, say) redb refuses every later operation until the database
//! is closed and opened again. The writer does that itself (see [`Writer::recover`]), so creates
//! work again once the disk does, without a restart; until then the store reports itself not
//! ready and creates fail at once.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

use super::memory::RecordIndex;
use crate::domain::query::Query;
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
use crate::ports::{CallerToken, RecordStore, StoreError, StoreHealth};

/// `tenant \0 model \0 version \0 id` -> JSON of [`StoredRecord`].
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records_v1");
/// `tenant \0 model \0 version \0 idempotency key` -> JSON of [`StoredKey`].
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency_v1");

/// Most creates committed in one transaction.
const MAX_BATCH: usize = 256;
/// Longest the writer holds a batch open for writers it expects back (see [`gather`]); also never
/// longer than the previous commit took.
const MAX_LINGER: Duration = Duration::from_millis(2);
/// First wait between attempts to reopen the database after an I/O error; doubled after each
/// failed attempt up to [`MAX_REOPEN_WAIT`]. Each attempt may repair the whole file.
const MIN_REOPEN_WAIT: Duration = Duration::from_millis(250);
const MAX_REOPEN_WAIT: Duration = Duration::from_secs(5);
/// Bytes written (and fsync'd, then removed) beside the database before reopening it: a disk that
/// cannot take this much is still full, and reopening would only fail the next commit again.
const WRITE_PROBE_BYTES: usize = 64 * 1024;
const WRITE_PROBE_FILE: &str = ".records-write-probe";

#[derive(Deserialize)]
struct StoredRecord {
    scope: RecordScope,
    record: Record,
}

/// The serialised form of [`StoredRecord`], borrowed: the writer thread serialises without
/// cloning the payload.
#[derive(Serialize)]
struct StoredRecordRef<'a> {
    scope: &'a RecordScope,
    record: &'a Record,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    payload_sha256: String,
    record_id: String,
}

type Reply = oneshot::Sender<Result<CreateOutcome, StoreError>>;
type WriteRequest = (NewRecord, Reply);

pub struct EmbeddedStore {
    index: Arc<RwLock<RecordIndex>>,
    writer: mpsc::Sender<WriteRequest>,
    path: PathBuf,
    health: Arc<ArcSwap<StoreHealth>>,
}

#[derive(Debug, thiserror::Error)]
#[error("embedded store {path}: {message}")]
pub struct OpenError {
    pub path: String,
    pub message: String,
    /// True when the configured path is the cause (not a directory, no permission, a read-only
    /// file system): the configuration must change. False when the machine's state is (a full
    /// disk, an I/O error, the database held by another process): a later start may succeed.
    pub configuration: bool,
}

/// I/O errors that say the configured path cannot be used, whatever the disk's state.
fn is_configuration_error(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        PermissionDenied
            | NotADirectory
            | IsADirectory
            | ReadOnlyFilesystem
            | AlreadyExists
            | InvalidInput
            | InvalidFilename
    )
}

/// A redb failure as text, and whether it is an I/O error (after which redb refuses every later
/// operation until the database is reopened).
struct RedbFailure {
    message: String,
    io: Option<std::io::ErrorKind>,
    latched: bool,
}

fn redb_failure(error: impl Into<redb::Error>) -> RedbFailure {
    let error = error.into();
    let (io, latched) = match &error {
        redb::Error::Io(e) => (Some(e.kind()), true),
        redb::Error::PreviousIo => (None, true),
        _ => (None, false),
    };
    RedbFailure {
        message: error.to_string(),
        io,
        latched,
    }
}

fn data_failure(error: impl std::fmt::Display) -> RedbFailure {
    RedbFailure {
        message: error.to_string(),
        io: None,
        latched: false,
    }
}

/// Keys join their parts with NUL, which none of them can contain: tenants come from headers,
/// model and version are checked path segments, ids and keys refuse control characters.
fn scoped_key(scope: &RecordScope, last: &str) -> String {
    format!("{}\0{}\0{}\0{}", scope.tenant_key(), scope.model, scope.version, last)
}

fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {error}"))
}

impl EmbeddedStore {
    /// Opens (or creates) the database under `data_dir` and loads the index.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        let path = data_dir.join("records.redb");
        let fail = |failure: RedbFailure| OpenError {
            path: path.display().to_string(),
            message: failure.message,
            configuration: failure.io.is_some_and(is_configuration_error),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| OpenError {
            path: path.display().to_string(),
            message: format!("cannot create the directory: {e}"),
            configuration: is_configuration_error(e.kind()),
        })?;
        let db = Database::create(&path).map_err(|e| fail(redb_failure(e)))?;
        {
            // Create the tables once so readers never meet a missing table.
            let txn = db.begin_write().map_err(|e| fail(redb_failure(e)))?;
            txn.open_table(RECORDS).map_err(|e| fail(redb_failure(e)))?;
            txn.open_table(IDEMPOTENCY).map_err(|e| fail(redb_failure(e)))?;
            txn.commit().map_err(|e| fail(redb_failure(e)))?;
        }
        let mut index = RecordIndex::default();
        {
            let txn = db.begin_read().map_err(|e| fail(redb_failure(e)))?;
            let table = txn.open_table(RECORDS).map_err(|e| fail(redb_failure(e)))?;
            for entry in table.iter().map_err(|e| fail(redb_failure(e)))? {
                let (_, value) = entry.map_err(|e| fail(redb_failure(e)))?;
                let stored: StoredRecord = serde_json::from_slice(value.value())
                    .map_err(|e| fail(data_failure(format!("corrupt record: {e}"))))?;
                index.insert(stored.scope, stored.record);
            }
        }
        tracing::info!(path = %path.display(), records = index.len(), "embedded record store opened");
        let index = Arc::new(RwLock::new(index));
        let health = Arc::new(ArcSwap::from_pointee(StoreHealth::ready()));
        let (writer, requests) = mpsc::channel();
        let state = Writer {
            path: path.clone(),
            db: Some(db),
            index: index.clone(),
            health: health.clone(),
            in_doubt: Vec::new(),
            last_failure: String::new(),
            reopen_wait: MIN_REOPEN_WAIT,
            next_reopen: Instant::now(),
        };
        std::thread::Builder::new()
            .name("embedded-store-writer".into())
            .spawn(move || write_loop(state, requests))
            .map_err(|e| fail(data_failure(format!("cannot start the writer thread: {e}"))))?;
        Ok(Self {
            index,
            writer,
            path,
            health,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The writer thread's database: open, or closed after an I/O error until it can be reopened.
struct Writer {
    path: PathBuf,
    db: Option<Database>,
    index: Arc<RwLock<RecordIndex>>,
    health: Arc<ArcSwap<StoreHealth>>,
    /// The creates of a commit that failed on I/O. They were answered with an error, but the
    /// commit may still have reached the disk: once the database is open again, those found in it
    /// join the index (a retry with the same key then replays them).
    in_doubt: Vec<(RecordScope, String)>,
    last_failure: String,
    reopen_wait: Duration,
    next_reopen: Instant,
}

impl Writer {
    /// Closes the database after a commit failed on I/O, then tries to reopen it at once.
    fn close_after_io_failure(&mut self, message: String, batch: &[NewRecord]) {
        // Dropping the handle closes the file: redb's "previous I/O error" state goes with it.
        self.db = None;
        self.in_doubt
            .extend(batch.iter().map(|new| (new.scope.clone(), new.record.id.clone())));
        self.last_failure = message;
        self.reopen_wait = MIN_REOPEN_WAIT;
        self.recover();
    }

    /// Probes the disk, reopens the database (never creates one: a file that vanished must not
    /// become an empty store) and settles the creates in doubt. On failure, schedules the next
    /// attempt.
    fn recover(&mut self) {
        match self.reopen() {
            Ok(db) => {
                tracing::warn!(path = %self.path.display(), after = %self.last_failure, "embedded store reopened after an I/O error");
                self.db = Some(db);
                self.in_doubt.clear();
                self.reopen_wait = MIN_REOPEN_WAIT;
                let at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
                self.health.store(Arc::new(StoreHealth {
                    ready: true,
                    detail: Some(format!("reopened at {at} after an I/O error: {}", self.last_failure)),
                }));
            }
            Err(problem) => {
                tracing::error!(path = %self.path.display(), error = %self.last_failure, reopen = %problem, "embedded store closed after an I/O error; cannot reopen yet");
                self.next_reopen = Instant::now() + self.reopen_wait;
                self.health.store(Arc::new(StoreHealth {
                    ready: false,
                    detail: Some(format!(
                        "embedded store closed after an I/O error ({}); reopening failed: {problem}; next attempt within {} ms",
                        self.last_failure,
                        self.reopen_wait.as_millis()
                    )),
                }));
                self.reopen_wait = (self.reopen_wait * 2).min(MAX_REOPEN_WAIT);
            }
        }
    }

    fn reopen(&self) -> Result<Database, String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        probe_disk(dir).map_err(|e| format!("cannot write {WRITE_PROBE_BYTES} bytes in {}: {e}", dir.display()))?;
        let db = Database::open(&self.path).map_err(|e| redb_failure(e).message)?;
        self.settle_in_doubt(&db).map_err(|e| e.message)?;
        Ok(db)
    }

    fn settle_in_doubt(&self, db: &Database) -> Result<(), RedbFailure> {
        if self.in_doubt.is_empty() {
            return Ok(());
        }
        let txn = db.begin_read().map_err(redb_failure)?;
        let table = txn.open_table(RECORDS).map_err(redb_failure)?;
        let mut index = self.index.write().map_err(|_| data_failure("index lock poisoned"))?;
        for (scope, id) in &self.in_doubt {
            if index.contains(scope, id) {
                continue;
            }
            if let Some(raw) = table.get(scoped_key(scope, id).as_str()).map_err(redb_failure)? {
                let stored: StoredRecord = serde_json::from_slice(raw.value()).map_err(data_failure)?;
                tracing::info!(id = %id, "a create answered with an I/O error had reached the disk");
                index.insert(stored.scope, stored.record);
            }
        }
        Ok(())
    }

    fn closed_error(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "embedded store: the database is closed after an I/O error ({}); it is reopened as soon as the disk allows",
            self.last_failure
        ))
    }
}

/// Writes, syncs and removes a small file in `dir`.
fn probe_disk(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(WRITE_PROBE_FILE);
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&[0u8; WRITE_PROBE_BYTES])?;
        file.sync_data()
    })();
    let removed = std::fs::remove_file(&path);
    result.and(removed)
}

/// Runs until every sender is gone: gathers a batch, commits it as one transaction, then publishes
/// to the index and answers.
fn write_loop(mut writer: Writer, requests: mpsc::Receiver<WriteRequest>) {
    let mut waiting: Vec<WriteRequest> = Vec::new();
    let mut policy = BatchPolicy::default();
    loop {
        if waiting.is_empty() {
            let first = if writer.db.is_some() {
                requests.recv().ok()
            } else {
                // Closed: wake up for the next reopen attempt even when no create comes.
                match requests.recv_timeout(writer.next_reopen.saturating_duration_since(Instant::now())) {
                    Ok(first) => Some(first),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        writer.recover();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            };
            match first {
                Some(first) => waiting.push(first),
                None => return,
            }
        }
        if writer.db.is_none() && Instant::now() >= writer.next_reopen {
            writer.recover();
        }
        let Some(db) = writer.db.as_ref() else {
            // Answer at once rather than queue behind a disk that is not back.
            drain(&requests, &mut waiting);
            let error = writer.closed_error();
            for (_, reply) in waiting.drain(..) {
                let _ = reply.send(Err(error.clone()));
            }
            continue;
        };
        let linger = policy.next_linger();
        let filled = gather(&requests, &mut waiting, policy.expected, linger);
        policy.record_gather(linger, filled);
        let (news, replies): (Vec<NewRecord>, Vec<Reply>) = std::mem::take(&mut waiting).into_iter().unzip();
        let started = Instant::now();
        let committed = commit_batch(db, &news);
        let commit_duration = started.elapsed();
        // Creates that arrived during the commit come from writers other than the ones about to
        // be answered, who usually send again at once: together they are the next batch to expect.
        drain(&requests, &mut waiting);
        policy.record_commit(news.len() + waiting.len(), commit_duration);
        match committed {
            Ok(results) => {
                if let Ok(mut index) = writer.index.write() {
                    for (new, result) in news.iter().zip(&results) {
                        if let Ok(outcome) = result
                            && !outcome.replayed
                        {
                            index.insert(new.scope.clone(), outcome.record.clone());
                        }
                    }
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(failure) => {
                tracing::error!(error = %failure.message, "embedded store commit failed");
                let error = StoreError::Unavailable(format!("embedded store: {}", failure.message));
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
                if failure.latched {
                    writer.close_after_io_failure(failure.message, &news);
                }
            }
        }
    }
}

/// How long the writer waits to fill a batch (see [`gather`]).
///
/// Waiting pays when the writers just answered come back within a commit's duration (callers in
/// process, or behind a fast handler); it is a loss when they take longer (behind HTTP and
/// validation on a busy machine), because the batch would have been committed at once and the
/// late writers would have joined the next one anyway. So a wait that ends without the expected
/// writers turns waiting off for the next 2, 4, ... 64 batches, and a filled batch turns it back on.
#[derive(Debug)]
struct BatchPolicy {
    /// Creates the next batch should hold: the writers answered by the last commit plus the ones
    /// that queued during it.
    expected: usize,
    /// The last commit's duration, at most [`MAX_LINGER`].
    linger: Duration,
    /// Consecutive waits that ended without the expected writers.
    misses: u32,
    /// Batches still to form without waiting.
    skip: u32,
}

/// Waiting is retried after at most 2^6 = 64 batches.
const MAX_BACKOFF_SHIFT: u32 = 6;

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            expected: 1,
            linger: Duration::ZERO,
            misses: 0,
            skip: 0,
        }
    }
}

impl BatchPolicy {
    fn next_linger(&mut self) -> Duration {
        if self.skip > 0 {
            self.skip -= 1;
            return Duration::ZERO;
        }
        self.linger
    }

    fn record_gather(&mut self, linger: Duration, filled: bool) {
        if filled {
            self.misses = 0;
        } else if !linger.is_zero() {
            self.misses = (self.misses + 1).min(MAX_BACKOFF_SHIFT);
            self.skip = 1 << self.misses;
        }
    }

    fn record_commit(&mut self, next_expected: usize, duration: Duration) {
        self.expected = next_expected.clamp(1, MAX_BATCH);
        self.linger = duration.min(MAX_LINGER);
    }
}

/// Takes every create already waiting, up to [`MAX_BATCH`].
fn drain<T>(requests: &mpsc::Receiver<T>, batch: &mut Vec<T>) {
    while batch.len() < MAX_BATCH {
        match requests.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}

/// Fills `batch` with what is waiting, then waits up to `linger` until it holds `expected`
/// creates; answers whether it does. Without the wait, N concurrent writers split into two groups
/// that alternate (one is committed while the other queues), so each fsync carries about N/2
/// records; waiting for the writers just answered, when they send their next create at once,
/// brings all N into one commit. A lone writer expects 1 and never waits; when writers leave, the
/// wait is bounded by `linger` and `expected` shrinks at the next commit; [`BatchPolicy`] stops
/// waiting when it does not pay.
fn gather<T>(requests: &mpsc::Receiver<T>, batch: &mut Vec<T>, expected: usize, linger: Duration) -> bool {
    let expected = expected.min(MAX_BATCH);
    drain(requests, batch);
    let deadline = Instant::now() + linger;
    while batch.len() < expected {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match requests.recv_timeout(deadline - now) {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch.len() >= expected
}

/// One write transaction for the batch. Each create sees the ones before it (same transaction),
/// so two creates with one key in one batch resolve as create + replay.
fn commit_batch(db: &Database, batch: &[NewRecord]) -> Result<Vec<Result<CreateOutcome, StoreError>>, RedbFailure> {
    let txn = db.begin_write().map_err(redb_failure)?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut records = txn.open_table(RECORDS).map_err(redb_failure)?;
        let mut keys = txn.open_table(IDEMPOTENCY).map_err(redb_failure)?;
        for new in batch {
            let key_name = scoped_key(&new.scope, new.idempotency_key.as_str());
            let existing_key = match keys.get(key_name.as_str()).map_err(redb_failure)? {
                Some(raw) => Some(serde_json::from_slice::<StoredKey>(raw.value()).map_err(data_failure)?),
                None => None,
            };
            if let Some(stored_key) = existing_key {
                if stored_key.payload_sha256 != new.payload_sha256 {
                    results.push(Err(StoreError::IdempotencyConflict));
                    continue;
                }
                let record_key = scoped_key(&new.scope, &stored_key.record_id);
                let raw = records
                    .get(record_key.as_str())
                    .map_err(redb_failure)?
                    .ok_or_else(|| data_failure(format!("idempotency key points to missing record {record_key:?}")))?;
                let stored: StoredRecord = serde_json::from_slice(raw.value()).map_err(data_failure)?;
                results.push(Ok(CreateOutcome {
                    record: stored.record,
                    replayed: true,
                }));
                continue;
            }
            let record_key = scoped_key(&new.scope, &new.record.id);
            if records.get(record_key.as_str()).map_err(redb_failure)?.is_some() {
                results.push(Err(StoreError::RecordExists {
                    id: new.record.id.clone(),
                }));
                continue;
            }
            let stored = serde_json::to_vec(&StoredRecordRef {
                scope: &new.scope,
                record: &new.record,
            })
            .map_err(data_failure)?;
            let stored_key = serde_json::to_vec(&StoredKey {
                payload_sha256: new.payload_sha256.clone(),
                record_id: new.record.id.clone(),
            })
            .map_err(data_failure)?;
            records
                .insert(record_key.as_str(), stored.as_slice())
                .map_err(redb_failure)?;
            keys.insert(key_name.as_str(), stored_key.as_slice())
                .map_err(redb_failure)?;
            results.push(Ok(CreateOutcome {
                record: new.record.clone(),
                replayed: false,
            }));
        }
    }
    // Durability::Immediate (redb's default): the commit returns after fsync.
    txn.commit().map_err(redb_failure)?;
    Ok(results)
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("embedded store index lock poisoned by an earlier panic".into())
}

impl RecordStore for EmbeddedStore {
    fn create<'a>(&'a self, _: &'a CallerToken, new: NewRecord) -> BoxFuture<'a, Result<CreateOutcome, StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.writer
                .send((new, reply))
                .map_err(|_| StoreError::Unavailable("embedded store writer stopped".into()))?;
            answer
                .await
                .map_err(|_| StoreError::Unavailable("embedded store writer stopped".into()))?
        })
    }

    fn get<'a>(
        &'a self,
        _: &'a CallerToken,
        scope: &'a RecordScope,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move { Ok(self.index.read().map_err(|_| poisoned())?.get(scope, id)) })
    }

    fn health(&self) -> StoreHealth {
        self.health.load().as_ref().clone()
    }

    fn query<'a>(
        &'a self,
        _: &'a CallerToken,
        scope: &'a RecordScope,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            let index = self.index.clone();
            let scope = scope.clone();
            let query = query.clone();
            // A scan of a large scope is CPU work: keep it off the reactor.
            tokio::task::spawn_blocking(move || Ok(index.read().map_err(|_| poisoned())?.query(&scope, &query)))
                .await
                .map_err(storage)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_waits_for_the_writers_it_expects() {
        let (send, requests) = mpsc::channel();
        send.send(1).unwrap();
        let late = send.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            late.send(2).unwrap();
            late.send(3).unwrap();
        });
        let mut batch = Vec::new();
        assert!(gather(&requests, &mut batch, 3, Duration::from_secs(10)));
        sender.join().unwrap();
        assert_eq!(batch, vec![1, 2, 3]);
    }

    #[test]
    fn gather_does_not_wait_for_a_lone_writer() {
        let (send, requests) = mpsc::channel();
        send.send(1).unwrap();
        let mut batch = Vec::new();
        let started = Instant::now();
        assert!(gather(&requests, &mut batch, 1, Duration::from_secs(10)));
        assert_eq!(batch, vec![1]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn gather_gives_up_after_the_linger() {
        let (send, requests) = mpsc::channel();
        send.send(1).unwrap();
        let mut batch = Vec::new();
        let started = Instant::now();
        assert!(!gather(&requests, &mut batch, 8, Duration::from_millis(30)));
        assert_eq!(batch, vec![1]);
        assert!(started.elapsed() >= Duration::from_millis(30));
        drop(send);
    }

    #[test]
    fn waits_that_end_without_the_writers_turn_waiting_off_for_a_growing_number_of_batches() {
        let mut policy = BatchPolicy::default();
        policy.record_commit(8, Duration::from_millis(1));
        assert_eq!(policy.next_linger(), Duration::from_millis(1));
        policy.record_gather(Duration::from_millis(1), false);
        assert_eq!(policy.next_linger(), Duration::ZERO);
        policy.record_gather(Duration::ZERO, false);
        assert_eq!(policy.next_linger(), Duration::ZERO);
        policy.record_gather(Duration::ZERO, false);
        // Two batches without waiting, then a second try, which also fails: four batches.
        assert_eq!(policy.next_linger(), Duration::from_millis(1));
        policy.record_gather(Duration::from_millis(1), false);
        let skipped = (0..4).filter(|_| policy.next_linger().is_zero()).count();
        assert_eq!(skipped, 4);
        // A filled batch turns waiting back on for good.
        assert_eq!(policy.next_linger(), Duration::from_millis(1));
        policy.record_gather(Duration::from_millis(1), true);
        assert_eq!(policy.next_linger(), Duration::from_millis(1));
        assert_eq!(policy.misses, 0);
    }

    #[test]
    fn linger_is_the_last_commit_capped() {
        let mut policy = BatchPolicy::default();
        policy.record_commit(0, Duration::from_secs(1));
        assert_eq!(policy.expected, 1);
        assert_eq!(policy.next_linger(), MAX_LINGER);
    }
}
