//! JSON scalars as typed RDF literals, and lexical-form checks for XSD datatypes.
//!
//! The SHACL engine reports ill-formed literals itself for the numeric, boolean, date, time and
//! dateTime types; the mapper checks the remaining XSD date/duration types here so that a value
//! such as `"2025-13"` for `xsd:gYearMonth` fails too.

use std::str::FromStr;

use oxrdf::{Literal, NamedNode};
use serde_json::Value;

use super::rdf::{XSD, XSD_STRING};

/// The outcome of a lexical check done by the mapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexicalCheck {
    Malformed(String),
}

const XSD_INTEGER: &str = "http://www.w3.org/2001/XMLSchema#integer";
const XSD_DECIMAL: &str = "http://www.w3.org/2001/XMLSchema#decimal";

/// Integer types derived from `xsd:integer`.
const INTEGER_TYPES: &[&str] = &[
    "integer",
    "int",
    "long",
    "short",
    "byte",
    "nonNegativeInteger",
    "positiveInteger",
    "nonPositiveInteger",
    "negativeInteger",
    "unsignedLong",
    "unsignedInt",
    "unsignedShort",
    "unsignedByte",
];

fn xsd_local(datatype: &str) -> Option<&str> {
    datatype.strip_prefix(XSD)
}

fn xsd(local: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("{XSD}{local}"))
}

/// The literal for a JSON scalar under a property of `datatype`, and a lexical problem the mapper
/// found (only for the types the SHACL engine does not check itself, see [`mapper_checks`]).
pub fn to_literal(value: &Value, datatype: Option<&NamedNode>) -> (Literal, Option<LexicalCheck>) {
    let local = datatype.and_then(|d| xsd_local(d.as_str()));
    match value {
        Value::String(s) => match datatype {
            None => (Literal::new_simple_literal(s), None),
            Some(d) if d.as_str() == XSD_STRING => (Literal::new_simple_literal(s), None),
            Some(d) => {
                let problem = local
                    .filter(|l| mapper_checks(l))
                    .and_then(|l| lexical_problem(s, l))
                    .map(LexicalCheck::Malformed);
                (Literal::new_typed_literal(s, d.clone()), problem)
            }
        },
        Value::Bool(b) => (Literal::new_typed_literal(b.to_string(), xsd("boolean")), None),
        Value::Number(n) => {
            let literal = match (local, datatype) {
                (Some(l), Some(d)) if INTEGER_TYPES.contains(&l) => {
                    let lexical = if let Some(i) = n.as_i64() {
                        i.to_string()
                    } else if let Some(u) = n.as_u64() {
                        u.to_string()
                    } else {
                        match n.as_f64() {
                            // JSON Schema counts 5.0 as an integer; so do we.
                            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
                            _ => n.to_string(),
                        }
                    };
                    Literal::new_typed_literal(lexical, d.clone())
                }
                (Some("decimal"), Some(d)) => Literal::new_typed_literal(decimal_lexical(n), d.clone()),
                (Some("float" | "double"), Some(d)) => Literal::new_typed_literal(n.to_string(), d.clone()),
                _ => natural_number(n),
            };
            (literal, None)
        }
        // Only scalars reach here; anything else is mapped as a node by the caller.
        other => (Literal::new_simple_literal(other.to_string()), None),
    }
}

/// A JSON number with no datatype to follow: `xsd:integer` or `xsd:decimal`.
fn natural_number(n: &serde_json::Number) -> Literal {
    if n.is_i64() || n.is_u64() {
        Literal::new_typed_literal(n.to_string(), NamedNode::new_unchecked(XSD_INTEGER))
    } else {
        Literal::new_typed_literal(decimal_lexical(n), NamedNode::new_unchecked(XSD_DECIMAL))
    }
}

/// `xsd:decimal` has no exponent notation; Rust's `f64` display never uses one.
fn decimal_lexical(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            let text = format!("{f}");
            if text.contains('.') { text } else { format!("{text}.0") }
        }
        _ => n.to_string(),
    }
}

/// The XSD types whose lexical form the mapper checks (the engine checks the others it knows).
pub fn mapper_checks(xsd_local_name: &str) -> bool {
    matches!(
        xsd_local_name,
        "gYear"
            | "gYearMonth"
            | "gMonthDay"
            | "gDay"
            | "gMonth"
            | "duration"
            | "dayTimeDuration"
            | "yearMonthDuration"
            | "dateTimeStamp"
    )
}

/// Why `lexical` is not a valid `xsd:<local>` value; `None` when it is, or when the type is not
/// one this module knows (unknown types are not judged).
pub fn lexical_problem(lexical: &str, local: &str) -> Option<String> {
    fn check<T: FromStr>(lexical: &str) -> bool {
        lexical.parse::<T>().is_ok()
    }
    use oxsdatatypes as t;
    let valid = match local {
        "string" | "normalizedString" | "token" | "anyURI" | "language" | "Name" | "NCName" => true,
        "boolean" => check::<t::Boolean>(lexical),
        "decimal" => check::<t::Decimal>(lexical),
        "float" => check::<t::Float>(lexical),
        "double" => check::<t::Double>(lexical),
        l if INTEGER_TYPES.contains(&l) => integer_in_range(lexical, l),
        "dateTime" => check::<t::DateTime>(lexical),
        "dateTimeStamp" => lexical
            .parse::<t::DateTime>()
            .map(|d| d.timezone_offset().is_some())
            .unwrap_or(false),
        "date" => check::<t::Date>(lexical),
        "time" => check::<t::Time>(lexical),
        "gYear" => check::<t::GYear>(lexical),
        "gYearMonth" => check::<t::GYearMonth>(lexical),
        "gMonthDay" => check::<t::GMonthDay>(lexical),
        "gDay" => check::<t::GDay>(lexical),
        "gMonth" => check::<t::GMonth>(lexical),
        "duration" => check::<t::Duration>(lexical),
        "dayTimeDuration" => check::<t::DayTimeDuration>(lexical),
        "yearMonthDuration" => check::<t::YearMonthDuration>(lexical),
        _ => true,
    };
    (!valid).then(|| format!("{lexical:?} is not a valid xsd:{local} value"))
}

fn integer_in_range(lexical: &str, local: &str) -> bool {
    let Ok(value) = lexical.parse::<oxsdatatypes::Integer>() else {
        return false;
    };
    let Ok(value) = i128::from_str(&value.to_string()) else {
        return false;
    };
    let (min, max): (i128, i128) = match local {
        "int" => (i32::MIN.into(), i32::MAX.into()),
        "long" => (i64::MIN.into(), i64::MAX.into()),
        "short" => (i16::MIN.into(), i16::MAX.into()),
        "byte" => (i8::MIN.into(), i8::MAX.into()),
        "nonNegativeInteger" => (0, i128::MAX),
        "positiveInteger" => (1, i128::MAX),
        "nonPositiveInteger" => (i128::MIN, 0),
        "negativeInteger" => (i128::MIN, -1),
        "unsignedLong" => (0, u64::MAX.into()),
        "unsignedInt" => (0, u32::MAX.into()),
        "unsignedShort" => (0, u16::MAX.into()),
        "unsignedByte" => (0, u8::MAX.into()),
        _ => (i128::MIN, i128::MAX),
    };
    (min..=max).contains(&value)
}

/// Whether a literal's own datatype accepts its lexical form (`None`: a datatype not judged).
pub fn is_well_formed(literal: &Literal) -> bool {
    match xsd_local(literal.datatype().as_str()) {
        Some(local) => lexical_problem(literal.value(), local).is_none(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const XSD_BOOLEAN: &str = "http://www.w3.org/2001/XMLSchema#boolean";

    fn dt(local: &str) -> NamedNode {
        xsd(local)
    }

    #[test]
    fn scalars_follow_the_property_datatype() {
        let (l, _) = to_literal(&json!("2025-01-02"), Some(&dt("date")));
        assert_eq!(l.to_string(), "\"2025-01-02\"^^<http://www.w3.org/2001/XMLSchema#date>");
        let (l, _) = to_literal(&json!(1.5), Some(&dt("decimal")));
        assert_eq!(l.value(), "1.5");
        let (l, _) = to_literal(&json!(3), Some(&dt("decimal")));
        assert_eq!(l.value(), "3");
        let (l, _) = to_literal(&json!(4.0), Some(&dt("integer")));
        assert_eq!(l.value(), "4");
        let (l, _) = to_literal(&json!("text"), Some(&dt("string")));
        assert_eq!(l.datatype().as_str(), XSD_STRING);
        assert_eq!(l.to_string(), "\"text\"");
    }

    #[test]
    fn json_types_that_cannot_carry_the_datatype_keep_their_own() {
        let (l, _) = to_literal(&json!(5), Some(&dt("string")));
        assert_eq!(l.datatype().as_str(), XSD_INTEGER);
        let (l, _) = to_literal(&json!(true), Some(&dt("date")));
        assert_eq!(l.datatype().as_str(), XSD_BOOLEAN);
        let (l, _) = to_literal(&json!(1.5), None);
        assert_eq!(l.datatype().as_str(), XSD_DECIMAL);
    }

    #[test]
    fn mapper_reports_malformed_values_of_types_the_engine_skips() {
        let (_, problem) = to_literal(&json!("2025-13"), Some(&dt("gYearMonth")));
        assert!(matches!(problem, Some(LexicalCheck::Malformed(_))));
        let (_, problem) = to_literal(&json!("2025-03"), Some(&dt("gYearMonth")));
        assert_eq!(problem, None);
        // Dates are the engine's to report; the mapper stays quiet so results are not doubled.
        let (_, problem) = to_literal(&json!("yesterday"), Some(&dt("date")));
        assert_eq!(problem, None);
    }

    #[test]
    fn lexical_checks_cover_numbers_dates_and_ranges() {
        assert!(lexical_problem("2025-02-30", "date").is_some());
        assert!(lexical_problem("2025-02-28", "date").is_none());
        assert!(lexical_problem("12:00:00Z", "time").is_none());
        assert!(lexical_problem("1.5", "integer").is_some());
        assert!(lexical_problem("300", "byte").is_some());
        assert!(lexical_problem("-1", "nonNegativeInteger").is_some());
        assert!(lexical_problem("2026-04-15T12:00:00", "dateTimeStamp").is_some());
        assert!(lexical_problem("anything", "unknownType").is_none());
    }
}
