//! Model identity and artifact kinds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `(model, version)`: the identity of one model version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelKey {
    pub model: String,
    pub version: String,
}

impl ModelKey {
    pub fn new(model: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.model, self.version)
    }
}

/// Longest model or version name accepted in a catalog or a request path.
pub const MAX_SEGMENT_LEN: usize = 128;

/// A model or version name must be a safe single path segment: it appears in URLs, metric labels
/// and (for the embedded store) key prefixes, so traversal and control characters are refused.
pub fn validate_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("is empty");
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err("is longer than 128 characters");
    }
    if segment == "." || segment == ".." || segment.contains("..") {
        return Err("must not contain '..'");
    }
    if !segment
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
    {
        return Err("may contain only letters, digits, '.', '_', '-' and '+'");
    }
    Ok(())
}

/// The artifacts a catalog entry can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Schema,
    Shacl,
    Owl,
    Openapi,
    Route,
    Linkml,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 6] = [
        Self::Schema,
        Self::Shacl,
        Self::Owl,
        Self::Openapi,
        Self::Route,
        Self::Linkml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::Shacl => "shacl",
            Self::Owl => "owl",
            Self::Openapi => "openapi",
            Self::Route => "route",
            Self::Linkml => "linkml",
        }
    }

    pub fn from_path_segment(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The catalog field that names this artifact.
    pub fn catalog_field(self) -> &'static str {
        match self {
            Self::Schema => "schema_url",
            Self::Shacl => "shacl_url",
            Self::Owl => "owl_url",
            Self::Openapi => "openapi_url",
            Self::Route => "route_url",
            Self::Linkml => "linkml_url",
        }
    }

    /// The content type served for this artifact. Upstream hosts (Codeberg raw, GitLab raw) send
    /// `text/plain` for everything, so the type comes from the kind and the file name instead.
    pub fn content_type(self, url: &str) -> &'static str {
        let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
        let is_yaml = path.ends_with(".yaml") || path.ends_with(".yml");
        match self {
            Self::Schema => "application/schema+json",
            Self::Shacl => "text/turtle; charset=utf-8",
            Self::Owl if path.ends_with(".owl") || path.ends_with(".rdf") => "application/rdf+xml",
            Self::Owl if path.ends_with(".jsonld") => "application/ld+json",
            Self::Owl => "text/turtle; charset=utf-8",
            Self::Openapi | Self::Route if is_yaml => "application/yaml",
            Self::Openapi | Self::Route => "application/json",
            Self::Linkml => "application/yaml",
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert!(validate_segment("re-indicators-specification").is_ok());
        assert!(validate_segment("0.0.5").is_ok());
        assert!(validate_segment("1.0.0+build.1").is_ok());
        for bad in ["", "..", "a/b", "a..b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_segment(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn content_types_follow_kind_and_extension() {
        assert_eq!(
            ArtifactKind::Schema.content_type("x/schema.json"),
            "application/schema+json"
        );
        assert_eq!(ArtifactKind::Owl.content_type("x/model.owl"), "application/rdf+xml");
        assert!(ArtifactKind::Owl.content_type("x/model.ttl").starts_with("text/turtle"));
        assert_eq!(
            ArtifactKind::Openapi.content_type("x/openapi.yaml?raw=1"),
            "application/yaml"
        );
    }
}
