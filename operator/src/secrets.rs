//! The Secrets a HexCoreService's pods read: which ones it references, and what their content
//! contributes (the admin token the operator presents, digests that roll the pods on a change).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::crd::{HexCoreService, SecretKeyRef};
use crate::desired::{ADMIN_TOKEN_KEY, Names, sha256_hex};

/// A referenced Secret (or key) that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    #[error("Secret {name:?} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("Secret {name:?} has no key {key:?}")]
    KeyNotFound { name: String, key: String },
}

impl SecretProblem {
    /// The condition reason reporting this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            SecretProblem::NotFound { .. } => "SecretNotFound",
            SecretProblem::KeyNotFound { .. } => "SecretKeyNotFound",
        }
    }
}

/// What the pods' Secrets contribute: content digests (for the config hash) and the admin token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretsRead {
    /// `name/key` → SHA-256 of the value.
    pub digests: BTreeMap<String, String>,
    /// The admin token, trimmed.
    pub admin_token: Option<String>,
    pub problems: Vec<SecretProblem>,
}

/// The value of `key` in `secret` (`data`, or `stringData` for a Secret read from a file).
fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(bytes.0.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
}

/// Reads every Secret `hcs` references from `secrets` (by name, same namespace).
pub fn read_secrets(hcs: &HexCoreService, secrets: &BTreeMap<String, Secret>) -> SecretsRead {
    let namespace = kube::ResourceExt::namespace(hcs).unwrap_or_default();
    let admin_ref = admin_token_ref(hcs);
    let mut read = SecretsRead::default();
    for reference in referenced_secrets(hcs) {
        let Some(secret) = secrets.get(&reference.name) else {
            read.problems.push(SecretProblem::NotFound {
                name: reference.name.clone(),
                namespace: namespace.clone(),
            });
            continue;
        };
        let Some(bytes) = secret_value(secret, &reference.key) else {
            read.problems.push(SecretProblem::KeyNotFound {
                name: reference.name.clone(),
                key: reference.key.clone(),
            });
            continue;
        };
        if reference == admin_ref {
            read.admin_token = Some(String::from_utf8_lossy(&bytes).trim().to_string());
        }
        read.digests
            .insert(format!("{}/{}", reference.name, reference.key), sha256_hex(&bytes));
    }
    read
}

/// The admin token Secret the service reads from `AUTH_ADMIN_TOKEN_FILE` and the operator
/// presents as `Authorization: Bearer`.
pub fn admin_token_ref(hcs: &HexCoreService) -> SecretKeyRef {
    hcs.spec
        .auth
        .admin_token_secret_ref
        .clone()
        .unwrap_or_else(|| SecretKeyRef {
            name: Names::of(&kube::ResourceExt::name_any(hcs)).admin_token_secret,
            key: ADMIN_TOKEN_KEY.to_string(),
        })
}

/// A random admin token: 32 bytes from the OS, hex.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Secrets the pods need, as references (for existence checks and the config hash).
pub fn referenced_secrets(hcs: &HexCoreService) -> Vec<SecretKeyRef> {
    let mut refs = vec![admin_token_ref(hcs)];
    if let Some(r) = hcs
        .spec
        .io_adapter
        .as_ref()
        .and_then(|a| a.credentials_secret_ref.clone())
    {
        refs.push(r);
    }
    if let Some(r) = hcs.spec.registry.ca_secret_ref.clone() {
        refs.push(r);
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hcs, postgres_with_credentials_in};

    #[test]
    fn secrets_are_read_from_data_or_string_data_and_problems_are_named() {
        let mut h = hcs("svc");
        h.spec.io_adapter = Some(postgres_with_credentials_in("db", "url"));
        let admin = Secret {
            data: Some(BTreeMap::from([(
                "token".to_string(),
                k8s_openapi::ByteString(b"t0k3n\n".to_vec()),
            )])),
            ..Default::default()
        };
        let secrets = BTreeMap::from([("svc-admin-token".to_string(), admin.clone())]);
        let read = read_secrets(&h, &secrets);
        assert_eq!(read.admin_token.as_deref(), Some("t0k3n"), "trimmed");
        assert_eq!(
            read.digests["svc-admin-token/token"],
            sha256_hex(b"t0k3n\n"),
            "digest of the raw bytes"
        );
        assert_eq!(
            read.problems,
            [SecretProblem::NotFound {
                name: "db".into(),
                namespace: "ns1".into()
            }]
        );

        let db = Secret {
            string_data: Some(BTreeMap::from([("other".to_string(), "x".to_string())])),
            ..Default::default()
        };
        let secrets = BTreeMap::from([("svc-admin-token".to_string(), admin), ("db".to_string(), db)]);
        let read = read_secrets(&h, &secrets);
        assert_eq!(read.problems[0].reason(), "SecretKeyNotFound");
        assert_eq!(read.problems[0].to_string(), "Secret \"db\" has no key \"url\"");
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
