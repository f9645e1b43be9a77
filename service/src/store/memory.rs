//! `IO_ADAPTER_ID=memory`: records in process memory, lost on exit. For tests and demos; also the
//! in-memory index that the `embedded` store serves reads from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use futures::future::BoxFuture;

use serde_json::Value;

use crate::domain::query::{Field, Operand, PathSegment, Predicate, Query, resolve_path};
use crate::domain::record::{CreateOutcome, NewRecord, Record, RecordScope};
use crate::ports::{CallerToken, RecordStore, StoreError};

/// Most payload paths one scope keeps an equality index for; queries on further paths scan.
const MAX_INDEXED_PATHS: usize = 32;

/// A scalar as an equality-index key. Numbers key by their f64 value, so values that compare equal
/// (`1`, `1.0`) share a key; the rare distinct integers that share an f64 only widen the candidate
/// set, which the full filter then narrows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScalarKey {
    Null,
    Bool(bool),
    Number(u64),
    String(String),
}

impl ScalarKey {
    fn of(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => {
                let f = n.as_f64()?;
                // -0.0 == 0.0 as numbers: one key.
                Self::Number(if f == 0.0 { 0.0f64.to_bits() } else { f.to_bits() })
            }
            Value::String(s) => Self::String(s.clone()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// Records by the scalar found at one payload path.
type EqIndex = HashMap<ScalarKey, Vec<Arc<Record>>>;

/// The records of one scope, by id, plus equality indexes built on first use per payload path and
/// kept up to date on insert (records are never removed).
#[derive(Default)]
pub struct ScopeRecords {
    by_id: HashMap<String, Arc<Record>>,
    eq_indexes: Mutex<HashMap<Vec<PathSegment>, EqIndex>>,
}

impl ScopeRecords {
    fn insert(&mut self, record: Arc<Record>) {
        let indexes = self
            .eq_indexes
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (path, index) in indexes.iter_mut() {
            if let Some(key) = resolve_path(path, &record.payload).and_then(ScalarKey::of) {
                index.entry(key).or_default().push(record.clone());
            }
        }
        self.by_id.insert(record.id.clone(), record);
    }

    /// Candidates for the query from an index, when one condition allows it: `id eq`, or `eq` /
    /// `in` with scalar values on a payload path. Always a superset of the matches.
    fn candidates(&self, query: &Query) -> Option<Vec<Arc<Record>>> {
        for condition in &query.conditions {
            match (&condition.field, &condition.predicate) {
                (Field::Id, Predicate::Eq(Operand::Text(id))) => {
                    return Some(self.by_id.get(id).cloned().into_iter().collect());
                }
                (Field::Payload(path), Predicate::Eq(Operand::Json(value))) => {
                    if let Some(key) = ScalarKey::of(value)
                        && let Some(found) = self.lookup(path, std::slice::from_ref(&key))
                    {
                        return Some(found);
                    }
                }
                (Field::Payload(path), Predicate::In(operands)) => {
                    let keys: Option<Vec<ScalarKey>> = operands
                        .iter()
                        .map(|o| match o {
                            Operand::Json(value) => ScalarKey::of(value),
                            _ => None,
                        })
                        .collect();
                    if let Some(keys) = keys
                        && let Some(found) = self.lookup(path, &keys)
                    {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn lookup(&self, path: &[PathSegment], keys: &[ScalarKey]) -> Option<Vec<Arc<Record>>> {
        let mut indexes = self.eq_indexes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !indexes.contains_key(path) {
            if indexes.len() >= MAX_INDEXED_PATHS {
                return None;
            }
            let mut index = EqIndex::new();
            for record in self.by_id.values() {
                if let Some(key) = resolve_path(path, &record.payload).and_then(ScalarKey::of) {
                    index.entry(key).or_default().push(record.clone());
                }
            }
            indexes.insert(path.to_vec(), index);
        }
        let index = &indexes[path];
        let mut found: Vec<Arc<Record>> = Vec::new();
        let mut distinct = keys.to_vec();
        distinct.dedup();
        for key in &distinct {
            found.extend(index.get(key).into_iter().flatten().cloned());
        }
        if distinct.len() > 1 {
            // `in` may repeat a value in a non-adjacent position: list each record once.
            found.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            found.dedup_by(|a, b| a.id == b.id);
        }
        Some(found)
    }
}

/// Records of every scope, by id. Pure data: callers hold the lock.
#[derive(Default)]
pub struct RecordIndex {
    scopes: HashMap<RecordScope, ScopeRecords>,
}

impl RecordIndex {
    pub fn insert(&mut self, scope: RecordScope, record: Record) {
        self.scopes.entry(scope).or_default().insert(Arc::new(record));
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
            Some(records) => match records.candidates(query) {
                Some(candidates) => query.apply(candidates.iter().map(Arc::as_ref)),
                None => query.apply(records.by_id.values().map(Arc::as_ref)),
            },
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
