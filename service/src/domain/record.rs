//! Records: a payload stored under a model version, and the rules that make creates idempotent.
//!
//! A record's identity is `(tenant, model, version, id)`. Idempotency keys are scoped the same way
//! and remember the SHA-256 of the payload's canonical JSON, so a retry with the same payload is a
//! replay and a reuse with another payload is a conflict, whatever the key order of the JSON sent.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Longest record id accepted (taken from `payload.id` or generated).
pub const MAX_RECORD_ID_LEN: usize = 255;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Where records live: one model version, within one tenant when the caller has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordScope {
    /// `None` when the identity carries no tenant. Stores keep it apart from every named tenant.
    pub tenant: Option<String>,
    pub model: String,
    pub version: String,
}

impl RecordScope {
    pub fn new(tenant: Option<String>, model: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            tenant,
            model: model.into(),
            version: version.into(),
        }
    }

    /// The tenant as stored in columns and keys that cannot hold "none": the empty string, which
    /// no identity can carry as a tenant (empty headers count as unset).
    pub fn tenant_key(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }
}

/// A stored record, in the contract's shape (`Record`) plus the two timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub model: String,
    pub version: String,
    pub payload: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A record to write, with the idempotency facts the store must persist beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub scope: RecordScope,
    pub record: Record,
    pub idempotency_key: IdempotencyKey,
    /// SHA-256 (hex) of the payload's canonical JSON.
    pub payload_sha256: String,
}

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOutcome {
    pub record: Record,
    /// True when the key had been used before with the same payload: nothing new was written.
    pub replayed: bool,
}

/// A checked `Idempotency-Key`: 1..=255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordRuleError {
    #[error("the Idempotency-Key header is required for :create and must not be empty")]
    MissingIdempotencyKey,
    #[error("the Idempotency-Key header {0}")]
    InvalidIdempotencyKey(&'static str),
    #[error("payload.id {0}")]
    InvalidId(&'static str),
}

impl IdempotencyKey {
    pub fn parse(raw: Option<&str>) -> Result<Self, RecordRuleError> {
        let raw = raw.map(str::trim).unwrap_or("");
        if raw.is_empty() {
            return Err(RecordRuleError::MissingIdempotencyKey);
        }
        if raw.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(RecordRuleError::InvalidIdempotencyKey("is longer than 255 characters"));
        }
        if !raw.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(RecordRuleError::InvalidIdempotencyKey(
                "may contain only visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The record id: `payload.id` when it is a string (checked), otherwise a fresh UUID v4.
pub fn record_id_for(payload: &Value) -> Result<String, RecordRuleError> {
    match payload.get("id") {
        Some(Value::String(id)) => {
            if id.is_empty() {
                Err(RecordRuleError::InvalidId("is empty"))
            } else if id.len() > MAX_RECORD_ID_LEN {
                Err(RecordRuleError::InvalidId("is longer than 255 bytes"))
            } else if id.chars().any(char::is_control) {
                Err(RecordRuleError::InvalidId("contains control characters"))
            } else {
                Ok(id.clone())
            }
        }
        _ => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// Timestamps are kept to the microsecond, the precision PostgreSQL stores, so every adapter
/// returns and compares exactly the same instants.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.microsecond();
    at.replace_microsecond(micros)
        .unwrap_or(at)
        .to_offset(time::UtcOffset::UTC)
}

/// SHA-256 (hex) of the canonical JSON of `value`: object keys sorted, no whitespace.
pub fn payload_sha256(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                // Serialising a string cannot fail.
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_hash_ignores_key_order_but_not_values() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        let c = json!({"a": {"x": "s", "y": [2, 1]}, "b": 1});
        assert_eq!(payload_sha256(&a), payload_sha256(&b));
        assert_ne!(payload_sha256(&a), payload_sha256(&c));
    }

    #[test]
    fn record_id_comes_from_payload_id_or_is_a_uuid() {
        assert_eq!(record_id_for(&json!({"id": "p-1"})).unwrap(), "p-1");
        let generated = record_id_for(&json!({"id": 7})).unwrap();
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert_eq!(
            record_id_for(&json!({"id": ""})),
            Err(RecordRuleError::InvalidId("is empty"))
        );
        assert!(record_id_for(&json!({"id": "x".repeat(256)})).is_err());
        assert!(record_id_for(&json!({"id": "a\nb"})).is_err());
    }

    #[test]
    fn idempotency_key_is_required_and_bounded() {
        assert_eq!(IdempotencyKey::parse(None), Err(RecordRuleError::MissingIdempotencyKey));
        assert_eq!(
            IdempotencyKey::parse(Some("  ")),
            Err(RecordRuleError::MissingIdempotencyKey)
        );
        assert!(IdempotencyKey::parse(Some(&"k".repeat(256))).is_err());
        assert!(IdempotencyKey::parse(Some("k\u{7f}")).is_err());
        assert_eq!(IdempotencyKey::parse(Some("abc-1")).unwrap().as_str(), "abc-1");
    }

    #[test]
    fn timestamps_keep_microseconds() {
        let at = time::macros::datetime!(2025-01-02 03:04:05.123456789 UTC);
        assert_eq!(truncate_to_micros(at).nanosecond(), 123_456_000);
    }
}
