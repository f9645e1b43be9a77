//! `hex-core-operator render`: the objects the operator would apply for HexCoreServices and
//! ModelCatalogs read from YAML files, without a cluster. It runs the controller's own selection,
//! merge, Secret reading and desired-state functions, so a preview (or a GitOps repository that
//! does not run the operator) sees exactly what a reconcile writes.
//!
//! Differences from a reconcile, all because there is no live owner: no owner references (the
//! HexCoreService read from a file has no uid) and no `hex-core.dev/applied-hash` annotation (an
//! apply-layer detail computed over the object with its owner reference).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::SelectionError;
use crate::crd::{GROUP, HexCoreService, ModelCatalog};
use crate::decide;
use crate::desired::Child;
use crate::observe::Observed;
use crate::secrets::{self, SecretProblem};

/// Where the admin token of a HexCoreService without `adminTokenSecretRef` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminToken {
    /// A fresh random token per service, as the operator creates (the output then differs from
    /// run to run in that Secret and the pod template's config hash).
    Random,
    /// This token (read from `--admin-token-file`, surrounding whitespace trimmed): deterministic.
    Fixed(String),
}

/// What to render.
#[derive(Debug, Clone)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub admin_token: AdminToken,
    /// Namespace of objects that name none (like `kubectl apply -n`). When neither is set, the
    /// output names no namespace either.
    pub namespace: Option<String>,
    /// Image of services whose spec names none (the operator's default).
    pub default_image: String,
}

/// Why nothing was rendered. Each names the file and document (1-based) or the object at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: document {document}: not YAML: {source}")]
    Yaml {
        file: String,
        document: usize,
        source: serde_yaml::Error,
    },
    #[error("{file}: document {document}: invalid {kind}: {source}")]
    Invalid {
        file: String,
        document: usize,
        kind: String,
        source: serde_json::Error,
    },
    #[error("{file}: document {document}: {kind} {name:?} is also defined in {first}")]
    Duplicate {
        file: String,
        document: usize,
        kind: String,
        name: String,
        first: String,
    },
    #[error("no HexCoreService (apiVersion {GROUP}/v1alpha1) in {files}")]
    NoService { files: String },
    #[error("HexCoreService {service} ({origin}): {source}")]
    Selection {
        service: String,
        origin: String,
        source: Box<SelectionError>,
    },
    #[error("HexCoreService {service} ({origin}): {source}; add the Secret to the input files")]
    Secret {
        service: String,
        origin: String,
        source: SecretProblem,
    },
    #[error("cannot read the admin token file {file}: {source}")]
    TokenFile { file: String, source: std::io::Error },
    #[error("the admin token file {file} is empty")]
    EmptyToken { file: String },
    #[error("cannot generate an admin token: {0}")]
    Random(String),
    #[error("cannot write YAML: {0}")]
    Output(serde_yaml::Error),
}

/// Reads the admin token for `--admin-token-file`.
pub fn read_token_file(path: &Path) -> Result<String, RenderError> {
    let file = path.display().to_string();
    let token = std::fs::read_to_string(path)
        .map_err(|source| RenderError::TokenFile {
            file: file.clone(),
            source,
        })?
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(RenderError::EmptyToken { file });
    }
    Ok(token)
}

/// One object read from the input and where it came from (`file, document N`).
struct Sourced<T> {
    object: T,
    origin: String,
}

#[derive(Default)]
struct Inputs {
    services: Vec<Sourced<HexCoreService>>,
    catalogs: Vec<Sourced<ModelCatalog>>,
    secrets: Vec<Sourced<Secret>>,
}

/// Renders every HexCoreService in the input as one multi-document YAML stream.
pub fn render(options: &Options) -> Result<String, RenderError> {
    let inputs = read_inputs(&options.files, options.namespace.as_deref())?;
    if inputs.services.is_empty() {
        let files = options
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(RenderError::NoService { files });
    }
    let mut out = String::new();
    for object in objects(&inputs, options)? {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object).map_err(RenderError::Output)?);
    }
    Ok(out)
}

/// The objects of every service, services in (namespace, name) order: the controller's own
/// assembly (`decide::assemble`) of an observation with nothing live.
fn objects(inputs: &Inputs, options: &Options) -> Result<Vec<Value>, RenderError> {
    let mut services: Vec<&Sourced<HexCoreService>> = inputs.services.iter().collect();
    services.sort_by_key(|s| (s.object.namespace(), s.object.name_any()));
    let mut out = Vec::new();
    for Sourced { object: hcs, origin } in services {
        let service = qualified(hcs);
        let token = match &options.admin_token {
            AdminToken::Fixed(token) => token.clone(),
            AdminToken::Random => secrets::random_token().map_err(|e| RenderError::Random(e.to_string()))?,
        };
        let mut observed = Observed::of(hcs.clone(), &options.default_image, &token);
        observed.catalogs = inputs.catalogs.iter().map(|c| c.object.clone()).collect();
        observed.secrets = inputs
            .secrets
            .iter()
            .filter(|s| s.object.namespace() == hcs.namespace())
            .map(|s| (s.object.name_any(), s.object.clone()))
            .collect();
        let assembly = decide::assemble(&observed);
        if let Err(source) = assembly.selection.merged {
            return Err(RenderError::Selection {
                service,
                origin: origin.clone(),
                source: Box::new(source),
            });
        }
        if let Some(problem) = assembly.secrets.problems.first().cloned() {
            return Err(RenderError::Secret {
                service,
                origin: origin.clone(),
                source: problem,
            });
        }
        let mut children = assembly.children.iter().map(Child::to_value);
        // The operator's order: ConfigMaps, then the Secret the pods mount, then the rest.
        out.extend(children.by_ref().take(2));
        if let Some(secret) = &assembly.admin_token_secret {
            out.push(serde_json::to_value(secret).map_err(|e| RenderError::Output(serde::ser::Error::custom(e)))?);
        }
        out.extend(children);
    }
    Ok(out)
}

fn qualified(hcs: &HexCoreService) -> String {
    match hcs.namespace() {
        Some(ns) => format!("{ns}/{}", hcs.name_any()),
        None => hcs.name_any(),
    }
}

/// Reads every document of every file; keeps HexCoreServices, ModelCatalogs and Secrets, and
/// ignores other kinds (a kustomization's Namespace, say).
fn read_inputs(files: &[PathBuf], namespace: Option<&str>) -> Result<Inputs, RenderError> {
    let mut inputs = Inputs::default();
    let mut seen: BTreeMap<(String, Option<String>, String), String> = BTreeMap::new();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RenderError::Read {
            file: file.clone(),
            source,
        })?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let number = index + 1;
            let value = serde_yaml::Value::deserialize(document).map_err(|source| RenderError::Yaml {
                file: file.clone(),
                document: number,
                source,
            })?;
            if value.is_null() {
                continue; // an empty document, e.g. after a trailing `---`
            }
            let mut value: Value = serde_json::to_value(value).map_err(|source| RenderError::Invalid {
                file: file.clone(),
                document: number,
                kind: "document".into(),
                source,
            })?;
            let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let relevant = matches!(
                (api_version.as_str(), kind.as_str()),
                ("hex-core.dev/v1alpha1", "HexCoreService" | "ModelCatalog") | ("v1", "Secret")
            );
            if !relevant {
                continue;
            }
            if let (Some(ns), Some(meta)) = (namespace, value.get_mut("metadata").and_then(Value::as_object_mut)) {
                meta.entry("namespace").or_insert_with(|| Value::String(ns.to_string()));
            }
            let invalid = |source| RenderError::Invalid {
                file: file.clone(),
                document: number,
                kind: kind.clone(),
                source,
            };
            let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if name.is_empty() {
                return Err(invalid(serde::de::Error::custom("metadata.name is missing")));
            }
            let origin = format!("{file}, document {number}");
            let key = (
                kind.clone(),
                value["metadata"]["namespace"].as_str().map(str::to_string),
                name.clone(),
            );
            if let Some(first) = seen.insert(key, origin.clone()) {
                return Err(RenderError::Duplicate {
                    file,
                    document: number,
                    kind,
                    name,
                    first,
                });
            }
            match kind.as_str() {
                "HexCoreService" => inputs.services.push(Sourced {
                    object: serde_json::from_value(value).map_err(invalid)?,
                    origin,
                }),
                "ModelCatalog" => inputs.catalogs.push(Sourced {
                    object: serde_json::from_value(value).map_err(invalid)?,
                    origin,
                }),
                _ => inputs.secrets.push(Sourced {
                    object: serde_json::from_value(value).map_err(invalid)?,
                    origin,
                }),
            }
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::desired;

    const CATALOG: &str = r#"
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: ce-rise, labels: {tier: prod}}
spec:
  models:
  - {model: b, version: "1", schemaUrl: "https://h/b.json"}
  - {model: a, version: "1", schemaUrl: "https://h/a.json"}
"#;

    const SERVICE: &str = r#"
apiVersion: hex-core.dev/v1alpha1
kind: HexCoreService
metadata: {name: passports}
spec:
  image: "i:1"
  replicas: 3
  catalogs: {selector: {matchLabels: {tier: prod}}}
  registry: {allowedHosts: [h]}
  ioAdapter: {id: http, baseUrl: "https://records.example"}
  auth: {mode: forward_auth}
  podDisruptionBudget: {maxUnavailable: 1}
"#;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    fn options(files: &[&tempfile::NamedTempFile], token: Option<&str>) -> Options {
        Options {
            files: files.iter().map(|f| f.path().to_path_buf()).collect(),
            admin_token: token.map_or(AdminToken::Random, |t| AdminToken::Fixed(t.into())),
            namespace: Some("team-a".into()),
            default_image: "hex-core-service:9.9.9".into(),
        }
    }

    fn documents(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn renders_the_controllers_objects_in_apply_order_without_owner_references() {
        let (c, s) = (file(CATALOG), file(SERVICE));
        let out = render(&options(&[&s, &c], Some("t0k3n"))).unwrap();
        let docs = documents(&out);
        let kinds: Vec<(&str, &str)> = docs
            .iter()
            .map(|d| (d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ConfigMap", "passports-catalog"),
                ("ConfigMap", "passports-env"),
                ("Secret", "passports-admin-token"),
                ("Deployment", "passports"),
                ("Service", "passports"),
                ("PodDisruptionBudget", "passports"),
            ]
        );
        for d in &docs {
            assert!(d["metadata"].get("ownerReferences").is_none(), "{d}");
            assert_eq!(d["metadata"]["namespace"], "team-a");
            assert_eq!(
                d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "hex-core-operator"
            );
        }
        // The same functions as the controller: the merged catalog and the config hash.
        let catalog: ModelCatalog = serde_yaml::from_str(CATALOG).unwrap();
        let merged = crate::catalog::merge_catalogs([("ce-rise", &catalog.spec)]).unwrap();
        assert_eq!(docs[0]["data"]["catalog.json"], merged.json.as_str());
        let mut hcs: HexCoreService = serde_yaml::from_str(SERVICE).unwrap();
        hcs.metadata.namespace = Some("team-a".into());
        let digests = BTreeMap::from([("passports-admin-token/token".to_string(), desired::sha256_hex(b"t0k3n"))]);
        let hash = desired::config_hash(&desired::environment(&hcs), &digests);
        assert_eq!(
            docs[3]["spec"]["template"]["spec"]["containers"][0]["image"], "i:1",
            "spec.image wins over the default"
        );
        assert_eq!(
            docs[3]["spec"]["template"]["metadata"]["annotations"][desired::CONFIG_HASH_ANNOTATION],
            hash.as_str()
        );
        assert_eq!(docs[2]["stringData"]["token"], "t0k3n");
    }

    #[test]
    fn output_is_deterministic_with_a_fixed_token_and_independent_of_file_order() {
        let (c, s) = (file(CATALOG), file(SERVICE));
        let a = render(&options(&[&s, &c], Some("t"))).unwrap();
        let b = render(&options(&[&c, &s], Some("t"))).unwrap();
        assert_eq!(a, b);
        let r1 = render(&options(&[&s, &c], None)).unwrap();
        let r2 = render(&options(&[&s, &c], None)).unwrap();
        assert_ne!(r1, r2, "random tokens differ");
    }

    #[test]
    fn a_conflict_names_both_catalogs_and_the_service_file() {
        let other = file(
            r#"
apiVersion: hex-core.dev/v1alpha1
kind: ModelCatalog
metadata: {name: other, labels: {tier: prod}}
spec:
  models:
  - {model: a, version: "1", schemaUrl: "https://h/DIFFERENT.json"}
"#,
        );
        let (c, s) = (file(CATALOG), file(SERVICE));
        let error = render(&options(&[&c, &other, &s], Some("t"))).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, RenderError::Selection { .. }), "{message}");
        assert!(
            message.contains("\"ce-rise\"") && message.contains("\"other\"") && message.contains("a@1"),
            "{message}"
        );
        assert!(message.contains(&s.path().display().to_string()), "{message}");
    }

    #[test]
    fn a_missing_named_catalog_or_secret_is_an_error() {
        let s = file(&SERVICE.replace("{selector: {matchLabels: {tier: prod}}}", "{names: [absent]}"));
        let message = render(&options(&[&s], Some("t"))).unwrap_err().to_string();
        assert!(message.contains("ModelCatalog \"absent\" not found"), "{message}");

        let s = file(&SERVICE.replace(
            "auth: {mode: forward_auth}",
            "auth: {mode: forward_auth, adminTokenSecretRef: {name: mine, key: token}}",
        ));
        let c = file(CATALOG);
        let message = render(&options(&[&s, &c], Some("t"))).unwrap_err().to_string();
        assert!(
            message.contains("Secret \"mine\" not found") && message.contains("add the Secret"),
            "{message}"
        );
        // With the Secret in the input, it is read (and not printed: it is the user's).
        let secret = file("apiVersion: v1\nkind: Secret\nmetadata: {name: mine}\nstringData: {token: abc}\n");
        let out = render(&options(&[&s, &c, &secret], None)).unwrap();
        assert!(!out.contains("kind: Secret"), "{out}");
    }

    #[test]
    fn bad_input_names_the_file_and_document() {
        let bad = file(&format!(
            "{CATALOG}---\n{}",
            SERVICE.replace("replicas: 3", "replicas: three")
        ));
        let message = render(&options(&[&bad], Some("t"))).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}: document 2: invalid HexCoreService", bad.path().display())),
            "{message}"
        );
        let yaml = file("a: [unclosed\n");
        let message = render(&options(&[&yaml], Some("t"))).unwrap_err().to_string();
        assert!(message.contains("document 1: not YAML"), "{message}");
        let none = file(CATALOG);
        assert!(matches!(
            render(&options(&[&none], Some("t"))),
            Err(RenderError::NoService { .. })
        ));
    }
}
