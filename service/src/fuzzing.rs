//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer, nightly) and for the stable
//! test that replays their corpora and every crash found (`tests/fuzz_corpus.rs`): both call these
//! very functions. Each one feeds arbitrary bytes to a parser that reads untrusted input and checks
//! what must hold for anything it accepts; a panic is a finding.
//!
//! Not an API: hidden from the docs, and free to change with the fuzz targets.

use std::sync::{Arc, OnceLock};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::auth::bearer::bearer_token;
use crate::auth::jwks::claims::identity_from_claims;
use crate::auth::jwks::token_kid;
use crate::domain::catalog::{Catalog, infer_from_ce_rise_url};
use crate::domain::model::validate_segment;
use crate::domain::payload::Payload;
use crate::domain::query::Query;
use crate::domain::record::{Record, RecordScope};
use crate::registry::fetch::LocalArtifactSource;
use crate::registry::policy::{AllowList, UrlPolicy};
use crate::store::postgres::translate;
use crate::validation::linkml::LinkmlSchema;
use crate::validation::mapping::{MappingPlan, PlanSources, Vocabulary};

/// One fuzz target: what it is fed, bytes.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("query_dialect", query_dialect),
    ("catalog", catalog),
    ("url_policy", url_policy),
    ("bearer_jwt", bearer_jwt),
    ("json_to_rdf", json_to_rdf),
    ("linkml", linkml),
    ("payload", payload),
];

/// The query dialect: a `:query` body (or a bare filter) parses into a typed query whose canonical
/// JSON parses back to the same query, which every evaluator runs without panicking, and whose SQL
/// only refers to bound parameters.
pub fn query_dialect(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let parsed = Query::parse_request(&body).or_else(|_| Query::parse_filter(&body));
    let Ok(query) = parsed else {
        return;
    };
    let canonical = query.to_filter_json();
    let again = Query::parse_filter(&canonical)
        .unwrap_or_else(|e| panic!("the canonical filter {canonical} does not parse: {e}"));
    assert_eq!(again, query, "canonical filter {canonical}");
    let _ = query.apply(sample_records());
    let sql = translate(&RecordScope::new(Some("t".into()), "m", "1"), &query);
    let highest = sql
        .sql
        .split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .max()
        .unwrap_or(0);
    assert!(highest <= sql.params.len(), "{} refers to ${highest}", sql.sql);
}

fn sample_records() -> &'static [Record] {
    static RECORDS: OnceLock<Vec<Record>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let payloads = [
            json!({"n": 1, "s": "steel", "tags": ["x", 2], "m": [{"name": "al"}], "o": {"k": "v"}}),
            json!({"n": 2.5, "s": "aluminium", "tags": [], "nil": null}),
            json!({"n": "3", "s": 5, "flag": true}),
            json!({}),
        ];
        payloads
            .into_iter()
            .enumerate()
            .map(|(n, payload)| Record {
                id: format!("r{n}"),
                model: "m".into(),
                version: "1".into(),
                payload: payload.into(),
                created_at: datetime!(2025-01-01 00:00:00 UTC),
                updated_at: datetime!(2025-01-01 00:00:00 UTC),
            })
            .collect()
    })
}

/// The catalog parser: what it accepts has valid names, no duplicate, and URLs the inference and
/// the local-path test can read.
pub fn catalog(data: &[u8]) {
    let Ok(catalog) = Catalog::parse(data) else {
        return;
    };
    let mut keys = std::collections::BTreeSet::new();
    for entry in &catalog.entries {
        validate_segment(&entry.key.model).expect("accepted model names are valid path segments");
        validate_segment(&entry.key.version).expect("accepted versions are valid path segments");
        assert!(keys.insert(entry.key.clone()), "duplicate {}", entry.key);
        assert!(!entry.artifacts.is_empty());
        for url in entry.artifacts.values() {
            let _ = infer_from_ce_rise_url(url);
            let _ = LocalArtifactSource::is_local_reference(url);
        }
    }
}

/// The URL policy: the first line is `REGISTRY_ALLOWED_HOSTS`, the rest a URL. An admitted URL is
/// http(s), without credentials, with a host, and still admitted as the client will send it.
pub fn url_policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (allowed, url) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(list) = AllowList::parse(allowed) else {
        return;
    };
    let require_https = data.len().is_multiple_of(2);
    let policy = UrlPolicy::new(list, require_https);
    let Ok(parsed) = policy.check_str(url) else {
        return;
    };
    assert!(matches!(parsed.scheme(), "http" | "https"), "{parsed}");
    assert!(!require_https || parsed.scheme() == "https", "{parsed}");
    assert!(parsed.username().is_empty() && parsed.password().is_none(), "{parsed}");
    assert!(parsed.host().is_some(), "{parsed}");
    assert!(
        policy.check_str(parsed.as_str()).is_ok(),
        "{parsed} admitted once, refused as sent"
    );
}

/// The bearer header and the unverified JWT header: the bytes up to the first NUL are
/// `Authorization` values (one per line); the rest, as JSON, are claims read after verification.
pub fn bearer_jwt(data: &[u8]) {
    let (header_part, claims_part) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in header_part.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(AUTHORIZATION, value);
        }
    }
    if let Ok(token) = bearer_token(&headers) {
        assert!(!token.is_empty());
        assert!(!token.contains(' '), "one token, never two");
        let _ = token_kid(token);
    }
    if let Ok(claims) = serde_json::from_slice::<Value>(claims_part) {
        let _ = identity_from_claims(&claims, "hex-core", "tenant", "token");
    }
}

const LINKML: &str = r#"
id: https://example.org/m
prefixes:
  ex: https://example.org/m/
  schema: http://schema.org/
  xsd: http://www.w3.org/2001/XMLSchema#
default_prefix: ex
classes:
  Thing:
    slots: [id, name]
  Device:
    is_a: Thing
    tree_root: true
    attributes:
      url: {slot_uri: schema:url, range: uri}
      parts: {range: Part, multivalued: true}
      mass: {range: decimal}
      count: {range: integer}
      made_on: {range: date}
      ok: {range: boolean}
      kind: {range: Kind}
      maker: {range: Maker}
    slot_usage:
      name: {alias: label}
  Part:
    slots: [name]
    attributes:
      share: {range: float}
      sub: {range: Part, multivalued: true}
  Maker:
    class_uri: schema:Organization
    slots: [name]
enums:
  Kind:
    permissible_values: {a: {}, b: {}}
slots:
  id: {identifier: true}
  name: {slot_uri: schema:name}
"#;

/// The JSON → RDF mapping of any JSON document, with a plan from a LinkML schema that has nested
/// classes, references, datatypes and an enum.
pub fn json_to_rdf(data: &[u8]) {
    static PLAN: OnceLock<MappingPlan> = OnceLock::new();
    let plan = PLAN.get_or_init(|| {
        let schema = Arc::new(LinkmlSchema::parse(LINKML.as_bytes()).expect("the fuzz schema parses"));
        MappingPlan::build(&PlanSources {
            target_class: "Device",
            linkml: Some(&schema),
            shapes: None,
            json_schema: None,
        })
    });
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for vocabulary in [Vocabulary::Shapes, Vocabulary::Native] {
        let mapped = plan.map_with(&payload, vocabulary);
        for triple in mapped.graph.iter() {
            let _ = mapped.node_path(triple.subject.into());
        }
    }
}

/// The LinkML reader on any YAML: every class's induced slots and IRIs, and a mapping plan for the
/// first class.
pub fn linkml(data: &[u8]) {
    let Ok(schema) = LinkmlSchema::parse(data) else {
        return;
    };
    let names: Vec<String> = schema.class_names().take(64).map(str::to_string).collect();
    for name in &names {
        let _ = schema.induced_slots(name);
        let _ = schema.class_iri(name);
        let _ = schema.native_class_iri(name);
    }
    let _ = schema.tree_roots();
    if let Some(first) = names.first() {
        let schema = Arc::new(schema);
        let plan = MappingPlan::build(&PlanSources {
            target_class: first,
            linkml: Some(&schema),
            shapes: None,
            json_schema: None,
        });
        let _ = plan.map(&json!({"id": "x", "name": "n", "a": [1, {"b": "c"}]}));
    }
}

/// Payloads as records keep them: the text written parses back to the same value, reads back to
/// the same text, and hashes the same.
pub fn payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(payload) = Payload::parse(text) else {
        return;
    };
    let _ = payload.check_storable();
    let written = payload.text();
    let reparsed: Value = serde_json::from_str(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
    assert_eq!(&reparsed, payload.value(), "{written}");
    let again = Payload::parse(&written).unwrap_or_else(|e| panic!("{written}: {e}"));
    assert_eq!(again.text(), written);
    assert_eq!(again.sha256(), payload.sha256(), "{written}");
    if !payload.keeps_exact_text() {
        assert_eq!(Payload::from(payload.value().clone()).sha256(), payload.sha256());
    }
}
