//! A record's payload: the JSON value that validation and queries read, plus, when that value
//! would write a number differently from how the client sent it, the exact text, so every adapter
//! returns each number as it was sent (`123456789012345678901234567890` is not turned into
//! `1.2345678901234568e29`, nor `-0` into `-0.0`).
//!
//! Also decided here: which payloads can be stored at all (no U+0000, see [`Payload::check_storable`])
//! and when two payloads are the same for an idempotent replay ([`Payload::sha256`]: by JSON value,
//! so `1` and `1.0` are one payload while two integers that differ in the 30th digit are not).
//!
//! The value is `serde_json`'s: integers within ±2^64 exactly, other numbers as the nearest double.
//! Validation and queries see that value on every adapter (PostgreSQL's JSONB column is written from
//! it too), so a query on numbers means the same everywhere; only the text returned is exact.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::report::child_path;

/// A payload as stored and returned. Cheap to clone (shared).
#[derive(Clone)]
pub struct Payload {
    value: Arc<Value>,
    /// The payload as written with every number's own text, when `value` would write one of them
    /// differently. `None` for the usual payload, whose numbers `serde_json` writes back unchanged.
    exact: Option<Arc<RawValue>>,
}

/// Why a payload cannot be stored; the same on every adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is not valid JSON: {0}")]
    Syntax(String),
    /// PostgreSQL's JSONB (and its text type) cannot hold U+0000; an escaped form would not keep
    /// the query semantics (byte order, substrings), so no adapter stores it.
    #[error(
        "the payload {} at {path} contains the character U+0000 (NUL), which records cannot store",
        if *in_key { "key" } else { "string" }
    )]
    NulCharacter { path: String, in_key: bool },
}

impl PayloadError {
    /// The JSON path the problem is at, when it is at one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Syntax(_) => None,
            Self::NulCharacter { path, .. } => Some(path),
        }
    }
}

impl Payload {
    /// Parses the text a client sent, keeping the numbers' text when the parsed value would change it.
    pub fn parse(text: &str) -> Result<Self, PayloadError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PayloadError::Syntax(e.to_string()))?;
        let exact = exact_text(text).map_err(|e| PayloadError::Syntax(e.to_string()))?;
        Ok(Self {
            value: Arc::new(value),
            exact,
        })
    }

    /// The value, shared (validation runs on other threads).
    pub fn shared_value(&self) -> Arc<Value> {
        self.value.clone()
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// True when the exact text is kept beside the value (some number would otherwise change).
    pub fn keeps_exact_text(&self) -> bool {
        self.exact.is_some()
    }

    /// The payload as JSON text, numbers as sent: what every adapter returns.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.exact {
            Some(raw) => Cow::Borrowed(raw.get()),
            // Serialising a `Value` cannot fail (its map keys are strings).
            None => Cow::Owned(self.value.to_string()),
        }
    }

    /// The storage rules every adapter applies to a new record: no U+0000 in any string or key.
    pub fn check_storable(&self) -> Result<(), PayloadError> {
        find_nul(&self.value, &mut String::from("$"))
    }

    /// SHA-256 (hex) of the canonical JSON of the payload: object keys sorted, no whitespace,
    /// strings as `serde_json` writes them, numbers by value (`1`, `1.0` and `1e0` are one number,
    /// `-0` is `0`, and digits beyond a double's precision still count). Idempotent creates compare
    /// payloads by this.
    pub fn sha256(&self) -> String {
        let mut canonical = String::new();
        match self.exact.as_deref().map(|raw| Scanner::scan(raw.get())) {
            Some(Ok(written)) => write_canonical_written(&written, &mut canonical),
            // Without exact text, the value writes every number as it was sent.
            _ => write_canonical_value(&self.value, &mut canonical),
        }
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

impl From<Value> for Payload {
    /// A payload whose numbers are taken as `serde_json` holds them.
    fn from(value: Value) -> Self {
        Self {
            value: Arc::new(value),
            exact: None,
        }
    }
}

impl std::ops::Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
            && self.exact.as_deref().map(RawValue::get) == other.exact.as_deref().map(RawValue::get)
    }
}

/// Compares the value only (tests compare stored payloads with the `json!` they were built from).
impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        *self.value == *other
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.exact {
            Some(raw) => raw.serialize(serializer),
            None => self.value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Reads a stored payload (the embedded store's file, an IO adapter's answer): the storage
    /// rules are not applied again, so nothing already stored becomes unreadable.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Self::parse(raw.get()).map_err(serde::de::Error::custom)
    }
}

/// The text to keep beside the value: `None` when the value writes every number as it is written
/// in `text`.
fn exact_text(text: &str) -> Result<Option<Arc<RawValue>>, serde_json::Error> {
    let Ok(written) = Scanner::scan(text) else {
        // Not reached for text serde_json accepted; the value alone is the safe fallback.
        return Ok(None);
    };
    // Usually every number writes back unchanged. Otherwise look again at the numbers the value
    // holds (a repeated key keeps only its last value): if only numbers it dropped differ, the
    // value's own text is exact, and keeping a second one would make the text depend on what was
    // dropped (it would not read back the same).
    if numbers_write_back_unchanged(&written, false) || numbers_write_back_unchanged(&written, true) {
        return Ok(None);
    }
    let mut exact = String::with_capacity(text.len());
    write_exact(&written, &mut exact);
    Ok(Some(Arc::from(RawValue::from_string(exact)?)))
}

fn find_nul(value: &Value, path: &mut String) -> Result<(), PayloadError> {
    match value {
        Value::String(s) if s.contains('\0') => Err(PayloadError::NulCharacter {
            path: path.clone(),
            in_key: false,
        }),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mut child = format!("{path}[{index}]");
                find_nul(item, &mut child)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let mut child = child_path(path, key);
                if key.contains('\0') {
                    return Err(PayloadError::NulCharacter {
                        path: child,
                        in_key: true,
                    });
                }
                find_nul(item, &mut child)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A JSON value as it is written: numbers keep their text, strings and keys their escaped text
/// (quotes included).
#[derive(Debug, PartialEq)]
enum Written<'a> {
    /// `null`, `true`, `false` or a string.
    Literal(&'a str),
    Number(&'a str),
    Array(Vec<Written<'a>>),
    Object(Vec<(&'a str, Written<'a>)>),
}

#[derive(Debug, PartialEq, Eq)]
struct ScanError;

/// Deeper than `serde_json` accepts (128), so any text it parsed scans; the bound keeps the
/// recursion safe on any other input.
const MAX_SCAN_DEPTH: usize = 256;

/// Splits JSON text into [`Written`] values. Meant for text `serde_json` has already accepted
/// (strings are only delimited, numbers only cut at their end), but never panics on other input.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn scan(text: &'a str) -> Result<Written<'a>, ScanError> {
        let mut scanner = Scanner { text, pos: 0 };
        let value = scanner.value(0)?;
        scanner.skip_whitespace();
        if scanner.pos == text.len() {
            Ok(value)
        } else {
            Err(ScanError)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn consume(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Written<'a>, ScanError> {
        if depth > MAX_SCAN_DEPTH {
            return Err(ScanError);
        }
        self.skip_whitespace();
        match self.peek().ok_or(ScanError)? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                if self.consume(b'}') {
                    return Ok(Written::Object(members));
                }
                loop {
                    self.skip_whitespace();
                    let key = self.string()?;
                    if !self.consume(b':') {
                        return Err(ScanError);
                    }
                    members.push((key, self.value(depth + 1)?));
                    if self.consume(b'}') {
                        return Ok(Written::Object(members));
                    }
                    if !self.consume(b',') {
                        return Err(ScanError);
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.consume(b']') {
                    return Ok(Written::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.consume(b']') {
                        return Ok(Written::Array(items));
                    }
                    if !self.consume(b',') {
                        return Err(ScanError);
                    }
                }
            }
            b'"' => Ok(Written::Literal(self.string()?)),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
                    self.pos += 1;
                }
                Ok(Written::Number(&self.text[start..self.pos]))
            }
            _ => {
                for keyword in ["null", "true", "false"] {
                    if self.text[self.pos..].starts_with(keyword) {
                        let start = self.pos;
                        self.pos += keyword.len();
                        return Ok(Written::Literal(&self.text[start..self.pos]));
                    }
                }
                Err(ScanError)
            }
        }
    }

    /// A string with its quotes, escapes left as written. Every slice boundary is an ASCII `"`,
    /// so it is a character boundary whatever the content.
    fn string(&mut self) -> Result<&'a str, ScanError> {
        if self.peek() != Some(b'"') {
            return Err(ScanError);
        }
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek().ok_or(ScanError)? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(&self.text[start..self.pos]);
                }
                _ => self.pos += 1,
            }
        }
    }
}

/// The characters of a written string (quotes removed, escapes decoded).
fn decode_string(written: &str) -> Cow<'_, str> {
    let inner = written.get(1..written.len().saturating_sub(1)).unwrap_or("");
    if !written.contains('\\') {
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<String>(written)
        .map(Cow::Owned)
        .unwrap_or(Cow::Borrowed(inner))
}

/// A string as `serde_json` writes it (what the canonical form uses).
fn encode_string(written: &str) -> Cow<'_, str> {
    // Without a backslash, a valid JSON string has no character `serde_json` would escape.
    if !written.contains('\\') {
        return Cow::Borrowed(written);
    }
    Cow::Owned(Value::String(decode_string(written).into_owned()).to_string())
}

/// The members of an object as `serde_json` keeps them: a repeated key holds the last value, in
/// the position of its first occurrence.
fn members_as_parsed<'w, 'a>(members: &'w [(&'a str, Written<'a>)]) -> Vec<(Cow<'a, str>, &'w Written<'a>)> {
    let mut kept: Vec<(Cow<'a, str>, &'w Written<'a>)> = Vec::with_capacity(members.len());
    let mut positions: HashMap<Cow<'a, str>, usize> = HashMap::new();
    for (key, value) in members {
        let decoded = decode_string(key);
        match positions.get(&decoded) {
            Some(&at) => kept[at].1 = value,
            None => {
                positions.insert(decoded.clone(), kept.len());
                kept.push((decoded, value));
            }
        }
    }
    kept
}

/// Whether `serde_json` writes every number back as written; `as_parsed`: only the numbers the
/// parsed value keeps (see [`members_as_parsed`]), which costs a decode of every key.
fn numbers_write_back_unchanged(written: &Written<'_>, as_parsed: bool) -> bool {
    match written {
        Written::Literal(_) => true,
        Written::Number(text) => serde_json::from_str::<serde_json::Number>(text).is_ok_and(|n| n.to_string() == *text),
        Written::Array(items) => items.iter().all(|item| numbers_write_back_unchanged(item, as_parsed)),
        Written::Object(members) if as_parsed => members_as_parsed(members)
            .into_iter()
            .all(|(_, value)| numbers_write_back_unchanged(value, true)),
        Written::Object(members) => members
            .iter()
            .all(|(_, value)| numbers_write_back_unchanged(value, false)),
    }
}

/// Compact JSON with the structure the parsed value has, numbers and strings as written.
fn write_exact(written: &Written<'_>, out: &mut String) {
    match written {
        Written::Literal(text) | Written::Number(text) => out.push_str(text),
        Written::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_exact(item, out);
            }
            out.push(']');
        }
        Written::Object(members) => {
            out.push('{');
            for (n, (key, value)) in members_as_parsed(members).into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.into_owned()).to_string());
                out.push(':');
                write_exact(value, out);
            }
            out.push('}');
        }
    }
}

fn write_canonical_written(written: &Written<'_>, out: &mut String) {
    match written {
        Written::Literal(text) => out.push_str(&encode_string(text)),
        Written::Number(text) => out.push_str(&canonical_number(text)),
        Written::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical_written(item, out);
            }
            out.push(']');
        }
        Written::Object(members) => {
            let mut members = members_as_parsed(members);
            members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (n, (key, value)) in members.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.into_owned()).to_string());
                out.push(':');
                write_canonical_written(value, out);
            }
            out.push('}');
        }
    }
}

fn write_canonical_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical_value(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical_value(item, out);
            }
            out.push(']');
        }
        Value::Number(number) => out.push_str(&canonical_number(&number.to_string())),
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A JSON number as sign, significant digits (no leading or trailing zeros) and a power of ten:
/// value = ±digits × 10^exponent. Zero has no digits.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i128,
}

/// Exponents are read up to this many digits; beyond, the number's own text is its canonical form
/// (no JSON reader holds such a number anyway, and the text is still kept exactly).
const MAX_EXPONENT_DIGITS: usize = 30;

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if integer.is_empty() || !integer.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut exponent: i128 = match exponent {
            None => 0,
            Some(text) => {
                let (negative_exponent, unsigned) = match text.as_bytes().first() {
                    Some(b'-') => (true, &text[1..]),
                    Some(b'+') => (false, &text[1..]),
                    _ => (false, text),
                };
                if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let significant = unsigned.trim_start_matches('0');
                if significant.len() > MAX_EXPONENT_DIGITS {
                    return None;
                }
                let magnitude: i128 = if significant.is_empty() {
                    0
                } else {
                    significant.parse().ok()?
                };
                if negative_exponent { -magnitude } else { magnitude }
            }
        };
        exponent -= fraction.len() as i128;
        let all_digits: String = integer.chars().chain(fraction.chars()).collect();
        let significant = all_digits.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        exponent += (significant.len() - trimmed.len()) as i128;
        if trimmed.is_empty() {
            return Some(Self {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        Some(Self {
            negative,
            digits: trimmed.to_string(),
            exponent,
        })
    }

    /// The value as an integer when it is one that fits `i64` or `u64`.
    fn as_machine_integer(&self) -> Option<String> {
        if self.digits.is_empty() {
            return Some("0".into());
        }
        if self.exponent < 0 || self.digits.len() as i128 + self.exponent > 20 {
            return None;
        }
        let magnitude = format!("{}{}", self.digits, "0".repeat(self.exponent as usize));
        let fits = if self.negative {
            format!("-{magnitude}").parse::<i64>().is_ok()
        } else {
            magnitude.parse::<u64>().is_ok()
        };
        fits.then(|| {
            if self.negative {
                format!("-{magnitude}")
            } else {
                magnitude
            }
        })
    }
}

/// The canonical text of a number, a function of its value alone. Where an earlier version of
/// this service wrote the number the same way (integers that fit 64 bits; other numbers that a
/// double holds exactly, in `serde_json`'s shortest form), this is that text, so idempotency keys
/// stored before keep matching; other numbers get `±<digits>e<exponent>`.
fn canonical_number(text: &str) -> Cow<'_, str> {
    let Some(decimal) = Decimal::parse(text) else {
        return Cow::Borrowed(text);
    };
    if let Some(integer) = decimal.as_machine_integer() {
        return Cow::Owned(integer);
    }
    if let Ok(double) = text.parse::<f64>()
        && double.is_finite()
        && double != 0.0
        && let Some(number) = serde_json::Number::from_f64(double)
    {
        let shortest = number.to_string();
        if Decimal::parse(&shortest).as_ref() == Some(&decimal) {
            return Cow::Owned(shortest);
        }
    }
    let sign = if decimal.negative { "-" } else { "" };
    Cow::Owned(format!("{sign}{}e{}", decimal.digits, decimal.exponent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Payload {
        Payload::parse(text).unwrap()
    }

    #[test]
    fn numbers_are_returned_as_sent() {
        for text in [
            r#"{"n":123456789012345678901234567890}"#,
            r#"{"n":-0}"#,
            r#"{"n":1.10}"#,
            r#"{"n":1e5,"m":[2.50E-3,-0.0]}"#,
            r#"{"n":3.141592653589793238462643383279}"#,
        ] {
            let payload = parse(text);
            assert!(payload.keeps_exact_text(), "{text}");
            assert_eq!(payload.text(), text);
            assert_eq!(serde_json::to_string(&payload).unwrap(), text);
        }
    }

    #[test]
    fn ordinary_payloads_keep_no_second_copy() {
        let payload = parse(r#"{ "a" : 1, "b": [1.5, -2, 0.1, 1e+20, 1.5e-7], "c": "\u00e9" }"#);
        assert!(!payload.keeps_exact_text());
        assert_eq!(payload.text(), r#"{"a":1,"b":[1.5,-2,0.1,1e+20,1.5e-7],"c":"é"}"#);
    }

    #[test]
    fn exact_text_has_the_parsed_structure() {
        // Whitespace goes, a repeated key keeps its last value at its first position (as the
        // value does), strings stay as written.
        let payload = parse("{ \"a\": 1.0, \"b\": \"\\u00e9\", \"a\": 2.50 }");
        assert_eq!(payload.text(), r#"{"a":2.50,"b":"\u00e9"}"#);
        assert_eq!(*payload.value(), json!({"a": 2.5, "b": "é"}));
        let reparsed: Value = serde_json::from_str(&payload.text()).unwrap();
        assert_eq!(reparsed, *payload.value());
    }

    #[test]
    fn numbers_only_in_a_dropped_duplicate_keep_no_second_text() {
        // Found by fuzzing (fuzz/regressions/payload/crash-6985bc56...): the first "a" held numbers
        // written otherwise, so the exact text was kept, with strings as sent; read back, it had
        // no such number and wrote itself differently ("\u00e9" became "é").
        let payload = parse(r#"{"s":"\u00e9","a":[2.0,-3e-2],"a":{"dup":0.5}}"#);
        assert!(!payload.keeps_exact_text());
        let again = parse(&payload.text());
        assert_eq!(again.text(), payload.text());
        assert_eq!(again, payload);
    }

    #[test]
    fn stored_payloads_read_back_unchanged() {
        let payload = parse(r#"{"big":123456789012345678901234567890,"z":-0}"#);
        let stored = serde_json::to_string(&payload).unwrap();
        let read: Payload = serde_json::from_str(&stored).unwrap();
        assert_eq!(read, payload);
        let plain = Payload::from(json!({"a": [1, 2.5]}));
        let read: Payload = serde_json::from_str(&serde_json::to_string(&plain).unwrap()).unwrap();
        assert_eq!(read, plain);
    }

    #[test]
    fn hash_compares_by_json_value() {
        let same = [
            r#"{"n":1,"s":"x"}"#,
            r#"{"s":"x","n":1.0}"#,
            r#"{"n":1e0,"s":"\u0078"}"#,
            r#"{"n":10E-1,"s":"x"}"#,
        ];
        let hashes: Vec<String> = same.iter().map(|t| parse(t).sha256()).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{same:?}");
        assert_eq!(parse(r#"{"n":-0}"#).sha256(), parse(r#"{"n":0}"#).sha256());
        assert_ne!(
            parse(r#"{"n":123456789012345678901234567890}"#).sha256(),
            parse(r#"{"n":123456789012345678901234567891}"#).sha256()
        );
        assert_ne!(parse(r#"{"n":[1,2]}"#).sha256(), parse(r#"{"n":[2,1]}"#).sha256());
        assert_ne!(parse(r#"{"n":1}"#).sha256(), parse(r#"{"n":"1"}"#).sha256());
    }

    #[test]
    fn hash_of_ordinary_payloads_is_unchanged_from_earlier_versions() {
        // The canonical text the previous version hashed: serde_json's number text, sorted keys.
        let payload = Payload::from(json!({"b": 1.5, "a": {"y": [1, 2], "x": "s"}, "c": -3, "d": 1e20, "e": 2.5e-7}));
        let old_canonical = r#"{"a":{"x":"s","y":[1,2]},"b":1.5,"c":-3,"d":1e+20,"e":2.5e-7}"#;
        assert_eq!(payload.sha256(), hex::encode(Sha256::digest(old_canonical.as_bytes())));
    }

    #[test]
    fn canonical_numbers() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.000e7", "0"),
            ("1.0", "1"),
            ("100", "100"),
            ("1e2", "100"),
            ("-12.50", "-12.5"),
            ("0.1", "0.1"),
            ("1E20", "1e+20"),
            ("100000000000000000000", "1e+20"),
            ("2.5e-1", "0.25"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("-9223372036854775809", "-9223372036854775809e0"),
            ("123456789012345678901234567890", "12345678901234567890123456789e1"),
            ("0.30000000000000000001", "30000000000000000001e-20"),
            ("1e-400", "1e-400"),
            ("1e+0000000000000000000000000000000000005", "100000"),
            // More exponent digits than are read: the text itself.
            (
                "1e-1000000000000000000000000000000",
                "1e-1000000000000000000000000000000",
            ),
        ];
        for (text, canonical) in cases {
            assert_eq!(canonical_number(text), canonical, "{text}");
        }
    }

    #[test]
    fn nul_characters_are_refused_with_their_path() {
        let err = parse(r#"{"a":[{"b":"x\u0000y"}]}"#).check_storable().unwrap_err();
        assert_eq!(
            err,
            PayloadError::NulCharacter {
                path: "$.a[0].b".into(),
                in_key: false
            }
        );
        let err = parse(r#"{"k\u0000":1}"#).check_storable().unwrap_err();
        assert_eq!(err.path(), Some("$['k\0']"));
        assert!(parse(r#"{"a":"\\u0000 is fine as text"}"#).check_storable().is_ok());
    }

    #[test]
    fn out_of_range_numbers_are_syntax_errors() {
        assert!(matches!(Payload::parse(r#"{"n":1e400}"#), Err(PayloadError::Syntax(_))));
    }

    #[test]
    fn scanner_refuses_broken_text_without_panicking() {
        for text in [
            "",
            "{",
            "[1,",
            "{\"a\"",
            "{\"a\":}",
            "\"\\",
            "tru",
            "[1]x",
            "{\"a\" 1}",
            "\"é\\",
        ] {
            assert_eq!(Scanner::scan(text), Err(ScanError), "{text:?}");
        }
        let deep = "[".repeat(MAX_SCAN_DEPTH + 2);
        assert_eq!(Scanner::scan(&deep), Err(ScanError));
    }
}
