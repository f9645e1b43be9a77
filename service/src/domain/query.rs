//! The record query dialect: ONE parser from the contract's `RecordQueryFilter` JSON into ONE typed
//! [`Query`], and the reference evaluator over in-process records.
//!
//! Every adapter runs this typed query: `memory` and `embedded` through [`Query::apply`], `postgres`
//! by translating it to parameterised SQL with the same semantics, `http` by sending
//! [`Query::to_filter_json`] (the canonical form) upstream. The semantics are chosen so that SQL can
//! express them exactly (see README, "Query dialect"):
//!
//! - `eq`/`in` match a present field equal to the value (JSON equality, numbers by value);
//!   `ne` matches a field that is absent or different.
//! - `gt`/`gte`/`lt`/`lte` compare numbers with numbers and strings with strings (byte order); a
//!   field of another type does not match.
//! - `contains` matches a string field containing the (string) value, or an array field with an
//!   element equal to the value.
//! - `exists: true|false` tests presence (a JSON `null` is present).
//! - Sorting orders values by type (number < string < boolean < null < array < object), then by
//!   value; an absent field sorts last in either direction; ties are broken by `id` ascending.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::record::{Record, truncate_to_micros};

/// Records returned when the filter gives no `limit`.
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest `limit` accepted; a larger one is refused (400), never clamped silently.
pub const MAX_LIMIT: u64 = 1000;
/// Largest `offset` accepted (fits PostgreSQL's `bigint`).
pub const MAX_OFFSET: u64 = i64::MAX as u64;
/// Deepest `payload.` path accepted.
pub const MAX_PATH_DEPTH: usize = 32;
/// Largest array index in a path (fits PostgreSQL's `int`).
pub const MAX_PATH_INDEX: usize = i32::MAX as usize;

/// One step in a `payload.` path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// `.name`: a member of an object.
    Key(String),
    /// `[n]`: an element of an array.
    Index(usize),
}

/// What a condition or sort key addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Model,
    Version,
    CreatedAt,
    UpdatedAt,
    Payload(Vec<PathSegment>),
}

impl Field {
    fn kind(&self) -> FieldKind {
        match self {
            Self::Id | Self::Model | Self::Version => FieldKind::Text,
            Self::CreatedAt | Self::UpdatedAt => FieldKind::Time,
            Self::Payload(_) => FieldKind::Json,
        }
    }

    /// The field as written in the dialect: `id`, `payload.materials[0].name`.
    pub fn to_path_string(&self) -> String {
        match self {
            Self::Id => "id".into(),
            Self::Model => "model".into(),
            Self::Version => "version".into(),
            Self::CreatedAt => "created_at".into(),
            Self::UpdatedAt => "updated_at".into(),
            Self::Payload(segments) => {
                let mut out = String::from("payload");
                for segment in segments {
                    match segment {
                        PathSegment::Key(key) => {
                            out.push('.');
                            out.push_str(key);
                        }
                        PathSegment::Index(index) => out.push_str(&format!("[{index}]")),
                    }
                }
                out
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Text,
    Time,
    Json,
}

/// A typed operand: text for `id`/`model`/`version`, an instant for the timestamps, JSON for
/// payload fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Time(OffsetDateTime),
    Json(Value),
}

impl Operand {
    fn to_json(&self) -> Value {
        match self {
            Self::Text(s) => Value::String(s.clone()),
            Self::Time(t) => Value::String(t.format(&Rfc3339).unwrap_or_default()),
            Self::Json(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
        }
    }

    /// The SQL operator with the same meaning.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Gt => ordering == Ordering::Greater,
            Self::Gte => ordering != Ordering::Less,
            Self::Lt => ordering == Ordering::Less,
            Self::Lte => ordering != Ordering::Greater,
        }
    }
}

/// An operator with its (type-checked) operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Eq(Operand),
    Ne(Operand),
    In(Vec<Operand>),
    /// Substring of a string field (text operand) or element of an array field (any JSON).
    Contains(Operand),
    Exists(bool),
    /// `gt`/`gte`/`lt`/`lte`: the operand is text, an instant, or a JSON number or string.
    Compare(CompareOp, Operand),
}

impl Predicate {
    pub fn op_name(&self) -> &'static str {
        match self {
            Self::Eq(_) => "eq",
            Self::Ne(_) => "ne",
            Self::In(_) => "in",
            Self::Contains(_) => "contains",
            Self::Exists(_) => "exists",
            Self::Compare(op, _) => op.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: Field,
    pub direction: Direction,
}

/// A parsed query. `sort` is never empty after parsing: it defaults to `created_at asc`; the
/// final tie-break on `id asc` is implied and applied by every adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub conditions: Vec<Condition>,
    pub sort: Vec<SortKey>,
    pub limit: u64,
    pub offset: u64,
}

/// Why a query was refused: which clause, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{clause}{}: {problem}", field.as_ref().map(|f| format!(" (field {f:?})")).unwrap_or_default())]
pub struct QueryError {
    /// `filter`, `filter.limit`, `where[2]`, `sort[0]`...
    pub clause: String,
    /// Index of the `where` or `sort` item, when the problem is in one.
    pub index: Option<usize>,
    pub field: Option<String>,
    pub problem: String,
}

impl QueryError {
    fn new(clause: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            clause: clause.into(),
            index: None,
            field: None,
            problem: problem.into(),
        }
    }

    /// A problem with the request body as a whole (not JSON, not an object).
    pub fn body(problem: impl Into<String>) -> Self {
        Self::new("body", problem)
    }

    fn item(list: &str, index: usize, field: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            clause: format!("{list}[{index}]"),
            index: Some(index),
            field: field.map(str::to_string),
            problem: problem.into(),
        }
    }

    /// The `details` of the error envelope.
    pub fn details(&self) -> Value {
        json!({"clause": self.clause, "index": self.index, "field": self.field, "problem": self.problem})
    }
}

const OPS: &str = "eq, ne, in, contains, exists, gt, gte, lt, lte";
const ROOT_FIELDS: &str = "id, model, version, created_at, updated_at, payload.<path>";

impl Query {
    /// Parses a whole `QueryRequest` body: `{"filter": {...}}`.
    pub fn parse_request(body: &Value) -> Result<Self, QueryError> {
        let object = body
            .as_object()
            .ok_or_else(|| QueryError::new("body", "the request body must be an object {\"filter\": {...}}"))?;
        if let Some(unknown) = object.keys().find(|k| *k != "filter") {
            return Err(QueryError::new(
                "body",
                format!("unknown key {unknown:?}; the body has only \"filter\""),
            ));
        }
        let filter = object
            .get("filter")
            .ok_or_else(|| QueryError::new("body", "\"filter\" is required"))?;
        Self::parse_filter(filter)
    }

    /// Parses a `RecordQueryFilter`: `{"where": [...], "sort": [...], "limit", "offset"}`.
    pub fn parse_filter(filter: &Value) -> Result<Self, QueryError> {
        let object = filter
            .as_object()
            .ok_or_else(|| QueryError::new("filter", "must be an object"))?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "where" | "sort" | "limit" | "offset"))
        {
            return Err(QueryError::new(
                format!("filter.{unknown}"),
                "unknown key; accepted: where, sort, limit, offset",
            ));
        }
        let conditions = match object.get("where") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| parse_condition(index, item))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(QueryError::new("filter.where", "must be an array of conditions")),
        };
        let sort_items: Vec<&Value> = match object.get("sort") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            // The issue text shows a single sort object; accept it as a one-item list.
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => {
                return Err(QueryError::new(
                    "filter.sort",
                    "must be an array of {field, direction} (or one such object)",
                ));
            }
        };
        let mut sort = sort_items
            .into_iter()
            .enumerate()
            .map(|(index, item)| parse_sort(index, item))
            .collect::<Result<Vec<_>, _>>()?;
        if sort.is_empty() {
            sort.push(SortKey {
                field: Field::CreatedAt,
                direction: Direction::Asc,
            });
        }
        let limit = parse_count(object.get("limit"), "filter.limit", DEFAULT_LIMIT, MAX_LIMIT)?;
        let offset = parse_count(object.get("offset"), "filter.offset", 0, MAX_OFFSET)?;
        Ok(Self {
            conditions,
            sort,
            limit,
            offset,
        })
    }

    /// The canonical filter JSON (sort always a list, limit and offset explicit). Parsing it gives
    /// back an equal `Query`; the HTTP adapter sends it upstream.
    pub fn to_filter_json(&self) -> Value {
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                let value = match &c.predicate {
                    Predicate::Eq(v) | Predicate::Ne(v) | Predicate::Contains(v) | Predicate::Compare(_, v) => {
                        v.to_json()
                    }
                    Predicate::In(values) => Value::Array(values.iter().map(Operand::to_json).collect()),
                    Predicate::Exists(b) => Value::Bool(*b),
                };
                json!({"field": c.field.to_path_string(), "op": c.predicate.op_name(), "value": value})
            })
            .collect();
        let sort: Vec<Value> = self
            .sort
            .iter()
            .map(|s| {
                let direction = match s.direction {
                    Direction::Asc => "asc",
                    Direction::Desc => "desc",
                };
                json!({"field": s.field.to_path_string(), "direction": direction})
            })
            .collect();
        json!({"where": conditions, "sort": sort, "limit": self.limit, "offset": self.offset})
    }

    /// True when every condition holds for `record`.
    pub fn matches(&self, record: &Record) -> bool {
        self.conditions.iter().all(|c| condition_holds(c, record))
    }

    /// The order of two records under the sort keys, then `id` ascending.
    pub fn compare(&self, a: &Record, b: &Record) -> Ordering {
        for key in &self.sort {
            let ordering = compare_for_sort(&resolve(&key.field, a), &resolve(&key.field, b), key.direction);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.id.as_bytes().cmp(b.id.as_bytes())
    }

    /// Filters, sorts and pages `records` (the reference semantics for every adapter).
    pub fn apply<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Vec<Record> {
        let mut matched: Vec<&Record> = records.into_iter().filter(|r| self.matches(r)).collect();
        let wanted = self.offset.saturating_add(self.limit);
        let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
        // Only the first offset+limit records are needed in order: select them first when the match
        // set is much larger, so a broad query stays O(n) rather than O(n log n).
        if wanted < matched.len() {
            if wanted == 0 {
                return Vec::new();
            }
            matched.select_nth_unstable_by(wanted - 1, |a, b| self.compare(a, b));
            matched.truncate(wanted);
        }
        matched.sort_unstable_by(|a, b| self.compare(a, b));
        matched
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(self.limit).unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

fn parse_count(value: Option<&Value>, clause: &str, default: u64, max: u64) -> Result<u64, QueryError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(QueryError::new(clause, format!("must be an integer from 0 to {max}"))),
        },
        Some(_) => Err(QueryError::new(clause, format!("must be an integer from 0 to {max}"))),
    }
}

/// Parses `id`, `created_at`, `payload.a.b[0].c`...
pub fn parse_field(raw: &str) -> Result<Field, String> {
    match raw {
        "id" => return Ok(Field::Id),
        "model" => return Ok(Field::Model),
        "version" => return Ok(Field::Version),
        "created_at" => return Ok(Field::CreatedAt),
        "updated_at" => return Ok(Field::UpdatedAt),
        _ => {}
    }
    let Some(rest) = raw.strip_prefix("payload") else {
        return Err(format!("unknown field; accepted: {ROOT_FIELDS}"));
    };
    if !rest.starts_with('.') {
        return Err(format!(
            "a payload field is written payload.<name>[.<name>|[<index>]]...; accepted: {ROOT_FIELDS}"
        ));
    }
    let mut segments = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '.' => {
                let start = at + 1;
                let mut end = start;
                while let Some(&(i, next)) = chars.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    if next == ']' {
                        return Err(format!("unexpected ']' at byte {}", i + "payload".len()));
                    }
                    end = i + next.len_utf8();
                    chars.next();
                }
                if end == start {
                    return Err("empty name in payload path".into());
                }
                segments.push(PathSegment::Key(rest[start..end].to_string()));
            }
            '[' => {
                let mut digits = String::new();
                let mut closed = false;
                for (_, next) in chars.by_ref() {
                    if next == ']' {
                        closed = true;
                        break;
                    }
                    digits.push(next);
                }
                if !closed || digits.is_empty() || !digits.chars().all(|d| d.is_ascii_digit()) {
                    return Err("an array index is written [n] with a non-negative integer n".into());
                }
                let index: usize = digits
                    .parse()
                    .ok()
                    .filter(|i| *i <= MAX_PATH_INDEX)
                    .ok_or_else(|| format!("array index {digits} is larger than {MAX_PATH_INDEX}"))?;
                segments.push(PathSegment::Index(index));
            }
            other => return Err(format!("unexpected {other:?} in payload path")),
        }
        if segments.len() > MAX_PATH_DEPTH {
            return Err(format!("payload path is deeper than {MAX_PATH_DEPTH} steps"));
        }
    }
    Ok(Field::Payload(segments))
}

fn parse_condition(index: usize, item: &Value) -> Result<Condition, QueryError> {
    let object = item
        .as_object()
        .ok_or_else(|| QueryError::item("where", index, None, "must be an object {field, op, value}"))?;
    let raw_field = object.get("field").and_then(Value::as_str);
    let err = |problem: String| QueryError::item("where", index, raw_field, problem);
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
        return Err(err(format!("unknown key {unknown:?}; accepted: field, op, value")));
    }
    let raw_field = raw_field.ok_or_else(|| err("\"field\" is required and must be a string".into()))?;
    let field = parse_field(raw_field).map_err(&err)?;
    let op = object
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("\"op\" is required and must be one of {OPS}")))?;
    let value = object.get("value").ok_or_else(|| err("\"value\" is required".into()))?;
    let predicate = parse_predicate(&field, op, value).map_err(&err)?;
    if field_has_nul(&field) || predicate_has_nul(&predicate) {
        return Err(err(NUL_IN_QUERY.into()));
    }
    Ok(Condition { field, predicate })
}

/// No record can hold U+0000 (see `domain::payload`), and PostgreSQL cannot even compare with it:
/// a query naming one is refused on every adapter rather than sent to a store.
const NUL_IN_QUERY: &str = "strings in a query may not contain U+0000 (NUL): no record can hold one";

fn field_has_nul(field: &Field) -> bool {
    match field {
        Field::Payload(path) => path
            .iter()
            .any(|segment| matches!(segment, PathSegment::Key(key) if key.contains('\0'))),
        _ => false,
    }
}

fn predicate_has_nul(predicate: &Predicate) -> bool {
    let operand_has_nul = |operand: &Operand| match operand {
        Operand::Text(text) => text.contains('\0'),
        Operand::Time(_) => false,
        Operand::Json(value) => json_has_nul(value),
    };
    match predicate {
        Predicate::Eq(o) | Predicate::Ne(o) | Predicate::Contains(o) | Predicate::Compare(_, o) => operand_has_nul(o),
        Predicate::In(operands) => operands.iter().any(operand_has_nul),
        Predicate::Exists(_) => false,
    }
}

fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

fn parse_predicate(field: &Field, op: &str, value: &Value) -> Result<Predicate, String> {
    let kind = field.kind();
    let operand = |value: &Value| operand_for(kind, op, value);
    Ok(match op {
        "eq" => Predicate::Eq(operand(value)?),
        "ne" => Predicate::Ne(operand(value)?),
        "in" => {
            let items = value
                .as_array()
                .ok_or_else(|| "op \"in\" needs an array value".to_string())?;
            Predicate::In(items.iter().map(operand).collect::<Result<_, _>>()?)
        }
        "contains" => match kind {
            FieldKind::Text => match value {
                Value::String(s) => Predicate::Contains(Operand::Text(s.clone())),
                _ => return Err("op \"contains\" on this field needs a string value".into()),
            },
            FieldKind::Time => return Err("op \"contains\" does not apply to timestamps".into()),
            FieldKind::Json => Predicate::Contains(Operand::Json(value.clone())),
        },
        "exists" => match value {
            Value::Bool(b) => Predicate::Exists(*b),
            _ => return Err("op \"exists\" needs a boolean value".into()),
        },
        "gt" | "gte" | "lt" | "lte" => {
            let compare = match op {
                "gt" => CompareOp::Gt,
                "gte" => CompareOp::Gte,
                "lt" => CompareOp::Lt,
                _ => CompareOp::Lte,
            };
            if kind == FieldKind::Json && !(value.is_number() || value.is_string()) {
                return Err(format!("op {op:?} needs a number or a string value"));
            }
            Predicate::Compare(compare, operand(value)?)
        }
        other => return Err(format!("unknown op {other:?}; accepted: {OPS}")),
    })
}

fn operand_for(kind: FieldKind, op: &str, value: &Value) -> Result<Operand, String> {
    match kind {
        FieldKind::Text => match value {
            Value::String(s) => Ok(Operand::Text(s.clone())),
            _ => Err(format!("op {op:?} on this field needs a string value")),
        },
        FieldKind::Time => {
            let text = value
                .as_str()
                .ok_or_else(|| format!("op {op:?} on a timestamp needs an RFC 3339 string"))?;
            let at = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))?;
            Ok(Operand::Time(truncate_to_micros(at)))
        }
        FieldKind::Json => Ok(Operand::Json(value.clone())),
    }
}

fn parse_sort(index: usize, item: &Value) -> Result<SortKey, QueryError> {
    let object = item
        .as_object()
        .ok_or_else(|| QueryError::item("sort", index, None, "must be an object {field, direction}"))?;
    let raw_field = object.get("field").and_then(Value::as_str);
    let err = |problem: String| QueryError::item("sort", index, raw_field, problem);
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "field" | "direction")) {
        return Err(err(format!("unknown key {unknown:?}; accepted: field, direction")));
    }
    let raw_field = raw_field.ok_or_else(|| err("\"field\" is required and must be a string".into()))?;
    let field = parse_field(raw_field).map_err(&err)?;
    if field_has_nul(&field) {
        return Err(err(NUL_IN_QUERY.into()));
    }
    let direction = match object.get("direction") {
        None | Some(Value::Null) => Direction::Asc,
        Some(Value::String(d)) if d == "asc" => Direction::Asc,
        Some(Value::String(d)) if d == "desc" => Direction::Desc,
        Some(_) => return Err(err("\"direction\" must be \"asc\" or \"desc\"".into())),
    };
    Ok(SortKey { field, direction })
}

/// A field's value in one record.
#[derive(Debug, Clone, Copy)]
enum Resolved<'a> {
    Text(&'a str),
    Time(OffsetDateTime),
    Json(&'a Value),
    Missing,
}

fn resolve<'a>(field: &Field, record: &'a Record) -> Resolved<'a> {
    match field {
        Field::Id => Resolved::Text(&record.id),
        Field::Model => Resolved::Text(&record.model),
        Field::Version => Resolved::Text(&record.version),
        Field::CreatedAt => Resolved::Time(record.created_at),
        Field::UpdatedAt => Resolved::Time(record.updated_at),
        Field::Payload(path) => match resolve_path(path, &record.payload) {
            Some(value) => Resolved::Json(value),
            None => Resolved::Missing,
        },
    }
}

/// The value at a payload path: `.name` only reads object members, `[n]` only array elements.
pub fn resolve_path<'a>(path: &[PathSegment], payload: &'a Value) -> Option<&'a Value> {
    let mut current = payload;
    for segment in path {
        current = match (segment, current) {
            (PathSegment::Key(key), Value::Object(map)) => map.get(key)?,
            (PathSegment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

fn condition_holds(condition: &Condition, record: &Record) -> bool {
    let value = resolve(&condition.field, record);
    match &condition.predicate {
        Predicate::Eq(operand) => equals(value, operand),
        Predicate::Ne(operand) => !equals(value, operand),
        Predicate::In(operands) => operands.iter().any(|o| equals(value, o)),
        Predicate::Exists(expected) => !matches!(value, Resolved::Missing) == *expected,
        Predicate::Contains(operand) => match (value, operand) {
            (Resolved::Text(text), Operand::Text(needle)) => text.contains(needle.as_str()),
            (Resolved::Json(Value::String(text)), Operand::Json(Value::String(needle))) => {
                text.contains(needle.as_str())
            }
            (Resolved::Json(Value::Array(items)), Operand::Json(needle)) => {
                items.iter().any(|item| json_equal(item, needle))
            }
            _ => false,
        },
        Predicate::Compare(op, operand) => {
            let ordering = match (value, operand) {
                (Resolved::Text(a), Operand::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
                (Resolved::Time(a), Operand::Time(b)) => Some(a.cmp(b)),
                (Resolved::Json(Value::Number(a)), Operand::Json(Value::Number(b))) => Some(compare_numbers(a, b)),
                (Resolved::Json(Value::String(a)), Operand::Json(Value::String(b))) => {
                    Some(a.as_bytes().cmp(b.as_bytes()))
                }
                _ => None,
            };
            ordering.is_some_and(|o| op.holds(o))
        }
    }
}

fn equals(value: Resolved<'_>, operand: &Operand) -> bool {
    match (value, operand) {
        (Resolved::Text(a), Operand::Text(b)) => a == b,
        (Resolved::Time(a), Operand::Time(b)) => a == *b,
        (Resolved::Json(a), Operand::Json(b)) => json_equal(a, b),
        _ => false,
    }
}

/// JSON equality as PostgreSQL's `jsonb =`: structural, numbers by value (`1 == 1.0`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}

/// Numbers by value: integers exactly, anything else as f64.
pub fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let x = a.as_f64().unwrap_or(0.0);
    let y = b.as_f64().unwrap_or(0.0);
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// Type rank used for sorting payload values (see the module comment).
pub fn json_sort_rank(value: &Value) -> u8 {
    match value {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Null => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn compare_for_sort(a: &Resolved<'_>, b: &Resolved<'_>, direction: Direction) -> Ordering {
    let ordering = match (a, b) {
        // Absent values go last whatever the direction.
        (Resolved::Missing, Resolved::Missing) => return Ordering::Equal,
        (Resolved::Missing, _) => return Ordering::Greater,
        (_, Resolved::Missing) => return Ordering::Less,
        (Resolved::Text(x), Resolved::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Resolved::Time(x), Resolved::Time(y)) => x.cmp(y),
        (Resolved::Json(x), Resolved::Json(y)) => {
            json_sort_rank(x).cmp(&json_sort_rank(y)).then_with(|| match (x, y) {
                (Value::Number(p), Value::Number(q)) => compare_numbers(p, q),
                (Value::String(p), Value::String(q)) => p.as_bytes().cmp(q.as_bytes()),
                (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
                // Arrays and objects are not ordered among themselves: the next key decides.
                _ => Ordering::Equal,
            })
        }
        _ => Ordering::Equal,
    };
    match direction {
        Direction::Asc => ordering,
        Direction::Desc => ordering.reverse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record(id: &str, payload: Value) -> Record {
        Record {
            id: id.into(),
            model: "m".into(),
            version: "1".into(),
            payload: payload.into(),
            created_at: datetime!(2025-01-01 00:00:00 UTC),
            updated_at: datetime!(2025-01-01 00:00:00 UTC),
        }
    }

    fn filter(value: Value) -> Query {
        Query::parse_filter(&value).unwrap()
    }

    fn ids(query: &Query, records: &[Record]) -> Vec<String> {
        query.apply(records).into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn payload_paths_with_keys_and_indexes_parse() {
        assert_eq!(
            parse_field("payload.materials[0].name").unwrap(),
            Field::Payload(vec![
                PathSegment::Key("materials".into()),
                PathSegment::Index(0),
                PathSegment::Key("name".into())
            ])
        );
        for bad in [
            "payload",
            "payloadx",
            "payload.",
            "payload..a",
            "payload.a[",
            "payload.a[x]",
            "payload.a[-1]",
            "owner",
        ] {
            assert!(parse_field(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn errors_name_the_clause_index_and_field() {
        let err = Query::parse_filter(&json!({"where": [
            {"field": "id", "op": "eq", "value": "a"},
            {"field": "payload.mass", "op": "between", "value": 1}
        ]}))
        .unwrap_err();
        assert_eq!(err.clause, "where[1]");
        assert_eq!(err.index, Some(1));
        assert_eq!(err.field.as_deref(), Some("payload.mass"));
        assert!(err.to_string().contains("between"), "{err}");

        let cases = [
            (
                json!({"where": [{"field": "owner", "op": "eq", "value": 1}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "id", "op": "in", "value": "a"}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "id", "op": "exists", "value": "yes"}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "id", "op": "eq", "value": "a", "extra": 1}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "payload.a", "op": "gt", "value": true}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "created_at", "op": "gt", "value": "yesterday"}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "created_at", "op": "contains", "value": "2025"}]}),
                "where[0]",
            ),
            (json!({"where": [], "having": []}), "filter.having"),
            (json!({"limit": 1001}), "filter.limit"),
            (json!({"offset": -1}), "filter.offset"),
            (json!({"sort": [{"field": "id", "direction": "up"}]}), "sort[0]"),
            (json!({"where": {"field": "id"}}), "filter.where"),
        ];
        for (filter, clause) in cases {
            let err = Query::parse_filter(&filter).unwrap_err();
            assert_eq!(err.clause, clause, "{filter}: {err}");
        }
    }

    #[test]
    fn nul_characters_in_a_query_are_refused_by_clause() {
        let cases = [
            (
                json!({"where": [{"field": "id", "op": "eq", "value": "a\u{0}"}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "payload.a\u{0}", "op": "exists", "value": true}]}),
                "where[0]",
            ),
            (
                json!({"where": [{"field": "payload.a", "op": "in", "value": [1, {"k\u{0}": 2}]}]}),
                "where[0]",
            ),
            (json!({"sort": [{"field": "payload.\u{0}"}]}), "sort[0]"),
        ];
        for (filter, clause) in cases {
            let err = Query::parse_filter(&filter).unwrap_err();
            assert_eq!(err.clause, clause, "{filter}");
            assert!(err.problem.contains("U+0000"), "{err}");
        }
    }

    #[test]
    fn request_body_needs_exactly_a_filter() {
        assert!(Query::parse_request(&json!({"filter": {}})).is_ok());
        assert_eq!(Query::parse_request(&json!({})).unwrap_err().clause, "body");
        assert_eq!(
            Query::parse_request(&json!({"filter": {}, "x": 1})).unwrap_err().clause,
            "body"
        );
    }

    #[test]
    fn defaults_and_single_sort_object() {
        let query = filter(json!({"sort": {"field": "payload.n", "direction": "desc"}}));
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.offset, 0);
        assert_eq!(query.sort.len(), 1);
        assert_eq!(query.sort[0].direction, Direction::Desc);
        assert_eq!(filter(json!({})).sort[0].field, Field::CreatedAt);
    }

    #[test]
    fn canonical_json_parses_back_to_the_same_query() {
        let query = filter(json!({
            "where": [
                {"field": "payload.materials[0].name", "op": "eq", "value": "steel"},
                {"field": "created_at", "op": "gte", "value": "2025-01-01T00:00:00.5Z"},
                {"field": "id", "op": "in", "value": ["a", "b"]},
                {"field": "payload.tags", "op": "contains", "value": 3},
                {"field": "payload.x", "op": "exists", "value": false}
            ],
            "sort": [{"field": "payload.n", "direction": "desc"}],
            "limit": 7, "offset": 2
        }));
        assert_eq!(Query::parse_filter(&query.to_filter_json()).unwrap(), query);
    }

    #[test]
    fn operators_follow_the_documented_semantics() {
        let records = vec![
            record(
                "a",
                json!({"n": 1, "s": "steel", "tags": ["x", 2], "m": [{"name": "al"}]}),
            ),
            record("b", json!({"n": 2.0, "s": "aluminium", "tags": [], "nil": null})),
            record("c", json!({"n": "3", "s": 5})),
            record("d", json!({})),
        ];
        let q = |w: Value| ids(&filter(json!({"where": [w], "sort": [{"field": "id"}]})), &records);
        assert_eq!(q(json!({"field": "payload.n", "op": "eq", "value": 2})), ["b"]);
        assert_eq!(
            q(json!({"field": "payload.n", "op": "ne", "value": 2})),
            ["a", "c", "d"]
        );
        assert_eq!(
            q(json!({"field": "payload.n", "op": "in", "value": [1, "3"]})),
            ["a", "c"]
        );
        assert_eq!(q(json!({"field": "payload.n", "op": "gt", "value": 1})), ["b"]);
        assert_eq!(q(json!({"field": "payload.n", "op": "lte", "value": "3"})), ["c"]);
        assert_eq!(q(json!({"field": "payload.s", "op": "contains", "value": "ee"})), ["a"]);
        assert_eq!(
            q(json!({"field": "payload.tags", "op": "contains", "value": 2.0})),
            ["a"]
        );
        assert_eq!(q(json!({"field": "payload.nil", "op": "exists", "value": true})), ["b"]);
        assert_eq!(
            q(json!({"field": "payload.nil", "op": "exists", "value": false})),
            ["a", "c", "d"]
        );
        assert_eq!(
            q(json!({"field": "payload.m[0].name", "op": "eq", "value": "al"})),
            ["a"]
        );
        assert_eq!(q(json!({"field": "id", "op": "gte", "value": "c"})), ["c", "d"]);
        assert_eq!(q(json!({"field": "id", "op": "contains", "value": "b"})), ["b"]);
    }

    #[test]
    fn sort_orders_by_type_then_value_and_puts_missing_last() {
        let records = vec![
            record("a", json!({"v": "b"})),
            record("b", json!({"v": 10})),
            record("c", json!({})),
            record("d", json!({"v": 2})),
            record("e", json!({"v": null})),
            record("f", json!({"v": true})),
        ];
        let asc = filter(json!({"sort": [{"field": "payload.v", "direction": "asc"}]}));
        assert_eq!(ids(&asc, &records), ["d", "b", "a", "f", "e", "c"]);
        let desc = filter(json!({"sort": [{"field": "payload.v", "direction": "desc"}]}));
        assert_eq!(ids(&desc, &records), ["e", "f", "a", "b", "d", "c"]);
        let paged = filter(json!({"sort": [{"field": "payload.v"}], "limit": 2, "offset": 1}));
        assert_eq!(ids(&paged, &records), ["b", "a"]);
    }
}
