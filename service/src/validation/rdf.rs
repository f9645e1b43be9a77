//! Small RDF helpers shared by the SHACL and OWL validators: Turtle parsing into an `oxrdf` graph,
//! vocabulary IRIs, IRI naming of payload nodes.

use oxrdf::{Graph, NamedNodeRef, NamedOrBlankNodeRef, TermRef};
use oxrdfio::{RdfFormat, RdfParser};

pub const RDF_TYPE: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#type");
pub const RDF_FIRST: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#first");
pub const RDF_REST: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#rest");
pub const RDF_NIL: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#nil");
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
pub const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
pub const SH: &str = "http://www.w3.org/ns/shacl#";

/// A SHACL vocabulary term.
pub fn sh(local: &'static str) -> NamedNodeRef<'static> {
    // Only called with the vocabulary's own names, which are valid IRIs.
    NamedNodeRef::new_unchecked(match local {
        "targetClass" => "http://www.w3.org/ns/shacl#targetClass",
        "targetNode" => "http://www.w3.org/ns/shacl#targetNode",
        "targetSubjectsOf" => "http://www.w3.org/ns/shacl#targetSubjectsOf",
        "targetObjectsOf" => "http://www.w3.org/ns/shacl#targetObjectsOf",
        "target" => "http://www.w3.org/ns/shacl#target",
        "property" => "http://www.w3.org/ns/shacl#property",
        "path" => "http://www.w3.org/ns/shacl#path",
        "datatype" => "http://www.w3.org/ns/shacl#datatype",
        "class" => "http://www.w3.org/ns/shacl#class",
        "node" => "http://www.w3.org/ns/shacl#node",
        "nodeKind" => "http://www.w3.org/ns/shacl#nodeKind",
        "description" => "http://www.w3.org/ns/shacl#description",
        "IRI" => "http://www.w3.org/ns/shacl#IRI",
        "NodeShape" => "http://www.w3.org/ns/shacl#NodeShape",
        "PropertyShape" => "http://www.w3.org/ns/shacl#PropertyShape",
        "sparql" => "http://www.w3.org/ns/shacl#sparql",
        "select" => "http://www.w3.org/ns/shacl#select",
        other => panic!("sh:{other} is not in the helper's vocabulary list"),
    })
}

/// Parses Turtle into a graph. `what` names the artifact in the error.
pub fn parse_turtle(bytes: &[u8], what: &str) -> Result<Graph, String> {
    parse_rdf(bytes, "artifact.ttl", what)
}

/// Parses an RDF artifact, its syntax chosen by the file name in `url` (Turtle unless it ends in
/// `.nt`, `.owl`/`.rdf`/`.xml` (RDF/XML) or `.jsonld`). Quads in named graphs are merged.
pub fn parse_rdf(bytes: &[u8], url: &str, what: &str) -> Result<Graph, String> {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let extension = path.rsplit('.').next().unwrap_or("ttl");
    let format = match extension {
        "owl" | "xml" => RdfFormat::RdfXml,
        other => RdfFormat::from_extension(other).unwrap_or(RdfFormat::Turtle),
    };
    let mut graph = Graph::new();
    for quad in RdfParser::from_format(format).for_slice(bytes) {
        let quad = quad.map_err(|e| format!("{what} is not valid {}: {e}", format.name()))?;
        graph.insert(oxrdf::TripleRef::new(&quad.subject, &quad.predicate, &quad.object));
    }
    Ok(graph)
}

/// The part of an IRI after the last `#` or `/` (`schema:url` -> `url`).
pub fn local_name(iri: &str) -> &str {
    iri.rsplit(['#', '/', ':']).next().unwrap_or(iri)
}

/// The namespace of an IRI: everything up to and including the last `#` or `/`.
pub fn namespace_of(iri: &str) -> &str {
    match iri.rfind(['#', '/']) {
        Some(i) => &iri[..=i],
        None => iri,
    }
}

/// The IRI objects of `(subject, predicate, ?)`.
pub fn iri_objects<'a>(
    graph: &'a Graph,
    subject: impl Into<NamedOrBlankNodeRef<'a>>,
    predicate: NamedNodeRef<'a>,
) -> impl Iterator<Item = NamedNodeRef<'a>> + 'a {
    graph
        .objects_for_subject_predicate(subject, predicate)
        .filter_map(|o| match o {
            TermRef::NamedNode(n) => Some(n),
            _ => None,
        })
}

/// The single IRI object of `(subject, predicate, ?)`, if any.
pub fn iri_object<'a>(
    graph: &'a Graph,
    subject: impl Into<NamedOrBlankNodeRef<'a>>,
    predicate: NamedNodeRef<'a>,
) -> Option<NamedNodeRef<'a>> {
    iri_objects(graph, subject, predicate).next()
}

/// The lexical form of the single literal object of `(subject, predicate, ?)`, if any.
pub fn literal_object<'a>(
    graph: &'a Graph,
    subject: impl Into<NamedOrBlankNodeRef<'a>>,
    predicate: NamedNodeRef<'a>,
) -> Option<&'a str> {
    graph
        .objects_for_subject_predicate(subject, predicate)
        .find_map(|o| match o {
            TermRef::Literal(l) => Some(l.value()),
            _ => None,
        })
}

/// The members of an RDF list starting at `head` (stops on malformed or cyclic lists).
pub fn list_members<'a>(graph: &'a Graph, head: TermRef<'a>) -> Vec<TermRef<'a>> {
    let mut members = Vec::new();
    let mut current = head;
    for _ in 0..100_000 {
        let node = match current {
            TermRef::NamedNode(n) if n == RDF_NIL => break,
            TermRef::NamedNode(n) => NamedOrBlankNodeRef::from(n),
            TermRef::BlankNode(b) => NamedOrBlankNodeRef::from(b),
            _ => break,
        };
        let Some(first) = graph.object_for_subject_predicate(node, RDF_FIRST) else {
            break;
        };
        members.push(first);
        let Some(rest) = graph.object_for_subject_predicate(node, RDF_REST) else {
            break;
        };
        current = rest;
    }
    members
}

/// The IRI that names the payload node at a JSON path: `urn:hex:payload:$.a%5B2%5D.b`.
///
/// JSON paths contain `[`, `]` and, for odd keys, spaces and quotes, which IRIs do not allow, so
/// those are percent-encoded; everything else is kept so the IRI stays readable.
pub fn payload_node_iri(json_path: &str) -> String {
    let mut iri = String::with_capacity(json_path.len() + 24);
    iri.push_str("urn:hex:payload:");
    percent_encode_into(&mut iri, json_path);
    iri
}

/// Percent-encodes what an IRI path segment may not hold.
pub fn percent_encode_into(out: &mut String, text: &str) {
    for c in text.chars() {
        let keep = c.is_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | ':'
                    | '@'
                    | '/'
            );
        if keep && !c.is_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_node_iris_are_valid_iris() {
        for path in ["$", "$.a[2].b", "$['we ird']['x/y']", "$.é[0]", "$['100%']"] {
            let iri = payload_node_iri(path);
            assert!(oxrdf::NamedNode::new(&iri).is_ok(), "{iri} should be a valid IRI");
        }
        assert_eq!(payload_node_iri("$.a[2]"), "urn:hex:payload:$.a%5B2%5D");
    }

    #[test]
    fn local_names_and_namespaces() {
        assert_eq!(local_name("http://schema.org/url"), "url");
        assert_eq!(local_name("http://www.w3.org/2001/XMLSchema#date"), "date");
        assert_eq!(namespace_of("http://schema.org/url"), "http://schema.org/");
    }
}
