//! Records: a payload stored under a model version, and the rules that make creates idempotent.
//!
//! A record's identity is `(tenant, model, version, id)`. Idempotency keys are scoped the same way
//! and remember the SHA-256 of the payload's canonical JSON ([`Payload::sha256`]), so a retry with
//! the same payload is a replay and a reuse with another payload is a conflict, whatever the key
//! order or number spelling of the JSON sent.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::payload::Payload;

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
    pub payload: Payload,
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
    InvalidId(InvalidRecordId),
}

/// Why `payload.id` cannot be a record id. Ids are shown to people (URLs, logs, lists) and compared
/// byte by byte, so characters that are invisible or change how the text around them is displayed
/// are refused: two ids that look the same must be the same id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecordId {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_RECORD_ID_LEN} bytes")]
    TooLong,
    #[error("starts or ends with a space")]
    SurroundingSpace,
    #[error(
        "contains {code_point}, {class}, at character {position}; ids may not contain control, format \
         (bidirectional and zero-width), separator, default-ignorable or noncharacter code points"
    )]
    Character {
        /// `U+202E`.
        code_point: String,
        class: &'static str,
        /// 0-based, in characters.
        position: usize,
    },
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

/// The record id: `payload.id` when it is a string (checked: an unusable one is refused, never
/// replaced), otherwise a fresh UUID v4.
pub fn record_id_for(payload: &Value) -> Result<String, RecordRuleError> {
    match payload.get("id") {
        Some(Value::String(id)) => check_record_id(id)
            .map(|()| id.clone())
            .map_err(RecordRuleError::InvalidId),
        _ => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

pub fn check_record_id(id: &str) -> Result<(), InvalidRecordId> {
    if id.is_empty() {
        return Err(InvalidRecordId::Empty);
    }
    if id.len() > MAX_RECORD_ID_LEN {
        return Err(InvalidRecordId::TooLong);
    }
    if let Some((position, (c, class))) = id
        .chars()
        .enumerate()
        .find_map(|(position, c)| refused_in_ids(c).map(|class| (position, (c, class))))
    {
        return Err(InvalidRecordId::Character {
            code_point: format!("U+{:04X}", c as u32),
            class,
            position,
        });
    }
    if id.starts_with(' ') || id.ends_with(' ') {
        return Err(InvalidRecordId::SurroundingSpace);
    }
    Ok(())
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 16): code points that
/// render as nothing when not supported. Most are format characters (Cf) already; the list is
/// complete so variation selectors, fillers and the reserved ranges are covered too.
const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// The class of a character refused in record ids, or `None` when it is allowed.
fn refused_in_ids(c: char) -> Option<&'static str> {
    use unicode_general_category::{GeneralCategory, get_general_category};
    let code = c as u32;
    let class = match get_general_category(c) {
        GeneralCategory::Control => "a control character",
        GeneralCategory::Format => "a format character (bidirectional control, zero-width or similar)",
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => "a line or paragraph separator",
        GeneralCategory::SpaceSeparator if c != ' ' => "a space other than U+0020",
        _ if DEFAULT_IGNORABLE
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&code)) =>
        {
            "a default-ignorable (invisible) character"
        }
        _ if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE => "a noncharacter",
        _ => return None,
    };
    Some(class)
}

/// Timestamps are kept to the microsecond, the precision PostgreSQL stores, so every adapter
/// returns and compares exactly the same instants.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.microsecond();
    at.replace_microsecond(micros)
        .unwrap_or(at)
        .to_offset(time::UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_id_comes_from_payload_id_or_is_a_uuid() {
        assert_eq!(record_id_for(&json!({"id": "p-1"})).unwrap(), "p-1");
        let generated = record_id_for(&json!({"id": 7})).unwrap();
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert_eq!(
            record_id_for(&json!({"id": ""})),
            Err(RecordRuleError::InvalidId(InvalidRecordId::Empty))
        );
        assert_eq!(
            record_id_for(&json!({"id": "x".repeat(256)})),
            Err(RecordRuleError::InvalidId(InvalidRecordId::TooLong))
        );
        assert!(record_id_for(&json!({"id": "é".repeat(127)})).is_ok(), "254 bytes");
        assert!(record_id_for(&json!({"id": "a\nb"})).is_err());
    }

    #[test]
    fn ids_with_invisible_or_reordering_characters_are_refused() {
        let refused = [
            ('\u{202E}', "format"),  // RIGHT-TO-LEFT OVERRIDE
            ('\u{2066}', "format"),  // LEFT-TO-RIGHT ISOLATE
            ('\u{200F}', "format"),  // RIGHT-TO-LEFT MARK
            ('\u{061C}', "format"),  // ARABIC LETTER MARK
            ('\u{200B}', "format"),  // ZERO WIDTH SPACE
            ('\u{200D}', "format"),  // ZERO WIDTH JOINER
            ('\u{FEFF}', "format"),  // BYTE ORDER MARK
            ('\u{00AD}', "format"),  // SOFT HYPHEN
            ('\u{E0041}', "format"), // TAG LATIN CAPITAL LETTER A
            ('\u{0000}', "control"),
            ('\u{0085}', "control"), // NEXT LINE (C1)
            ('\u{007F}', "control"),
            ('\u{2028}', "separator"), // LINE SEPARATOR
            ('\u{00A0}', "space"),     // NO-BREAK SPACE
            ('\u{3000}', "space"),     // IDEOGRAPHIC SPACE
            ('\u{FE0F}', "default-ignorable"),
            ('\u{3164}', "default-ignorable"), // HANGUL FILLER
            ('\u{E01EF}', "default-ignorable"),
            ('\u{FFFF}', "noncharacter"),
            ('\u{FDD0}', "noncharacter"),
            ('\u{10FFFE}', "noncharacter"),
        ];
        for (c, class) in refused {
            let id = format!("ab{c}c");
            match check_record_id(&id) {
                Err(InvalidRecordId::Character {
                    code_point,
                    class: found,
                    position,
                }) => {
                    assert_eq!(code_point, format!("U+{:04X}", c as u32));
                    assert!(found.contains(class), "{code_point}: {found}");
                    assert_eq!(position, 2);
                }
                other => panic!("{:?} accepted: {other:?}", c),
            }
        }
        for ok in ["p-1", "passport 0001", "café/Ω-日本語", "a😀b", "ID_42.v2"] {
            assert_eq!(check_record_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_record_id(" p-1"), Err(InvalidRecordId::SurroundingSpace));
        assert_eq!(check_record_id("p-1 "), Err(InvalidRecordId::SurroundingSpace));
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
