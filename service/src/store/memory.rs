//! `IO_ADAPTER_ID=memory`: records in process memory, lost on exit. For tests and demos; also the
//! in-memory index that the `embedded` store serves reads from.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;

use crate::domain::query::Query;
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
use crate::ports::{CallerToken, RecordStore, StoreError};

/// The records of one scope, by id.
#[derive(Default)]
pub struct ScopeRecords {
    by_id: HashMap<String, Arc<Record>>,
}

/// Records of every scope, by id. Pure data: callers hold the lock.
#[derive(Default)]
pub struct RecordIndex {
    scopes: HashMap<RecordScope, ScopeRecords>,
}

impl RecordIndex {
    pub fn insert(&mut self, scope: RecordScope, record: Record) {
        self.scopes
            .entry(scope)
            .or_default()
            .by_id
            .insert(record.id.clone(), Arc::new(record));
    }

    pub fn get(&self, scope: &RecordScope, id: &str) -> Option<Record> {
        self.scopes
            .get(scope)
            .and_then(|s| s.by_id.get(id))
            .map(|r| r.as_ref().clone())
    }

    pub fn contains(&self, scope: &RecordScope, id: &str) -> bool {
        self.scopes.get(scope).is_some_and(|s| s.by_id.contains_key(id))
    }

    pub fn query(&self, scope: &RecordScope, query: &Query) -> Vec<Record> {
        match self.scopes.get(scope) {
            Some(records) => query.apply(records.by_id.values().map(Arc::as_ref)),
            None => Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.scopes.values().map(|s| s.by_id.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
struct MemoryState {
    index: RecordIndex,
    /// (scope, key) -> (payload hash, record id)
    keys: HashMap<(RecordScope, String), (String, String)>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: RwLock<MemoryState>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn create_now(&self, new: NewRecord) -> Result<CreateOutcome, StoreError> {
        let mut state = self.state.write().map_err(|_| poisoned())?;
        let key = (new.scope.clone(), new.idempotency_key.as_str().to_string());
        if let Some((hash, id)) = state.keys.get(&key) {
            if *hash != new.payload_sha256 {
                return Err(StoreError::IdempotencyConflict);
            }
            let record = state
                .index
                .get(&new.scope, id)
                .ok_or_else(|| StoreError::Unavailable(format!("idempotency key points to missing record {id:?}")))?;
            return Ok(CreateOutcome { record, replayed: true });
        }
        if state.index.contains(&new.scope, &new.record.id) {
            return Err(StoreError::RecordExists {
                id: new.record.id.clone(),
            });
        }
        state.keys.insert(key, (new.payload_sha256, new.record.id.clone()));
        state.index.insert(new.scope, new.record.clone());
        Ok(CreateOutcome {
            record: new.record,
            replayed: false,
        })
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned by an earlier panic".into())
}

impl RecordStore for MemoryStore {
    fn create<'a>(&'a self, _: &'a CallerToken, new: NewRecord) -> BoxFuture<'a, Result<CreateOutcome, StoreError>> {
        Box::pin(async move { self.create_now(new) })
    }

    fn get<'a>(
        &'a self,
        _: &'a CallerToken,
        scope: &'a RecordScope,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move { Ok(self.state.read().map_err(|_| poisoned())?.index.get(scope, id)) })
    }

    fn query<'a>(
        &'a self,
        _: &'a CallerToken,
        scope: &'a RecordScope,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Record>, StoreError>> {
        Box::pin(async move { Ok(self.state.read().map_err(|_| poisoned())?.index.query(scope, query)) })
    }
}
