//! `AUTH_ADMIN_TOKEN_FILE`: the operator's machine credential, a secret token in a mounted
//! Kubernetes Secret, accepted as `Authorization: Bearer <token>` on admin endpoints only, in every
//! auth mode.
//!
//! It is a wrapper around the mode's authenticator rather than a check in the middleware because
//! the credential is an authentication concern that must work the same in every mode, and because
//! the wrapper only answers `authenticate_admin`: the HTTP edge calls that for the `/admin/*`
//! router alone, so no model or record route can ever reach the token comparison.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::bearer::bearer_token;
use super::{AuthError, AuthHealth, Authenticator, Identity, SharedAuthenticator};

/// The subject the machine credential authenticates as (shown in logs and audit trails).
pub const MACHINE_ADMIN_SUBJECT: &str = "hex-core-operator";

/// Shorter secrets are refused: the token is the whole credential, with no second factor.
pub const MIN_TOKEN_LEN: usize = 16;

/// What identifies one version of the file. Kubernetes updates a Secret volume by swapping a
/// `..data` symlink to a new directory, so the resolved file gets a new inode and mtime; a plain
/// rewrite changes mtime or length. Checking this costs one `stat`, so it is done on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileVersion {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileVersion {
    fn of(path: &Path) -> std::io::Result<Self> {
        // `metadata` follows symlinks, so the swap of `..data` is seen through `path`.
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (metadata.dev(), metadata.ino())
            },
        })
    }
}

/// The token as last read: only its SHA-256 is kept, and compared in constant time, so neither
/// its content nor its length leaks through timing.
struct LoadedToken {
    version: Option<FileVersion>,
    digest: Option<[u8; 32]>,
}

struct AdminCredential {
    path: PathBuf,
    current: ArcSwap<LoadedToken>,
}

impl AdminCredential {
    fn load(path: &Path) -> Result<Self, String> {
        // The version is taken before the content: if the file changes in between, the next use
        // sees a newer version and reads again, instead of keeping stale content forever.
        let version =
            FileVersion::of(path).map_err(|e| format!("AUTH_ADMIN_TOKEN_FILE={}: cannot read: {e}", path.display()))?;
        let digest = read_token_digest(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(LoadedToken {
                version: Some(version),
                digest: Some(digest),
            }),
        })
    }

    fn matches(&self, presented: &str) -> bool {
        let Some(expected) = self.current_digest() else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&expected).into()
    }

    /// The digest of the file's current content, re-read when the file changed. A file that
    /// disappears or becomes unusable accepts nothing (fail closed) until it is fixed.
    fn current_digest(&self) -> Option<[u8; 32]> {
        let current = self.current.load();
        let version = FileVersion::of(&self.path).ok();
        if version == current.version {
            return current.digest;
        }
        let digest = match read_token_digest(&self.path) {
            Ok(digest) => {
                tracing::info!(path = %self.path.display(), "machine admin credential reloaded");
                Some(digest)
            }
            Err(error) => {
                tracing::warn!(error = %error, "machine admin credential unusable; refusing it until the file is fixed");
                None
            }
        };
        // Two requests racing here both store the same result; no lock is needed.
        self.current.store(Arc::new(LoadedToken { version, digest }));
        digest
    }
}

fn read_token_digest(path: &Path) -> Result<[u8; 32], String> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| format!("AUTH_ADMIN_TOKEN_FILE={}: cannot read: {e}", path.display()))?;
    // Secrets created with `echo` or an editor end in a newline that is not part of the token.
    let token = content.trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "AUTH_ADMIN_TOKEN_FILE={}: the token is shorter than {MIN_TOKEN_LEN} characters",
            path.display()
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "AUTH_ADMIN_TOKEN_FILE={}: the token must be one word of visible ASCII (it is sent as a bearer token)",
            path.display()
        ));
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

/// Accepts the machine admin credential on admin endpoints, and otherwise defers to `inner`.
pub struct MachineAdminAuthenticator {
    inner: SharedAuthenticator,
    credential: AdminCredential,
}

impl MachineAdminAuthenticator {
    /// Reads the token once now, so a missing or empty Secret stops the start with a clear message.
    pub fn new(inner: SharedAuthenticator, path: &Path) -> Result<Self, String> {
        let credential = AdminCredential::load(path)?;
        tracing::info!(path = %path.display(), "machine admin credential loaded (AUTH_ADMIN_TOKEN_FILE)");
        Ok(Self { inner, credential })
    }

    fn machine_identity() -> Identity {
        Identity {
            subject: MACHINE_ADMIN_SUBJECT.to_string(),
            machine_admin: true,
            ..Default::default()
        }
    }
}

impl Authenticator for MachineAdminAuthenticator {
    fn mode(&self) -> &'static str {
        self.inner.mode()
    }

    /// Model and record routes: the machine credential is never considered here.
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        self.inner.authenticate(headers)
    }

    /// Admin routes: the machine credential first, then the mode's own authentication, so admins
    /// with a JWT (or a forward-auth identity) keep working beside the operator.
    fn authenticate_admin<'a>(&'a self, headers: &'a HeaderMap) -> BoxFuture<'a, Result<Identity, AuthError>> {
        if let Ok(token) = bearer_token(headers)
            && self.credential.matches(token)
        {
            return Box::pin(async { Ok(Self::machine_identity()) });
        }
        self.inner.authenticate_admin(headers)
    }

    fn health(&self) -> AuthHealth {
        self.inner.health()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::none::NoneAuthenticator;
    use crate::config::NoneAuthConfig;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    fn inner() -> SharedAuthenticator {
        Arc::new(NoneAuthenticator::new(&NoneAuthConfig {
            subject: "dev".into(),
            roles: vec![],
            scopes: vec![],
            tenant: None,
        }))
    }

    #[tokio::test]
    async fn token_is_accepted_on_admin_routes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef-secret\n").unwrap();
        let auth = MachineAdminAuthenticator::new(inner(), &path).unwrap();
        let admin = auth
            .authenticate_admin(&bearer("0123456789abcdef-secret"))
            .await
            .unwrap();
        assert!(admin.machine_admin);
        assert_eq!(admin.subject, MACHINE_ADMIN_SUBJECT);
        let model_route = auth.authenticate(&bearer("0123456789abcdef-secret")).await.unwrap();
        assert!(
            !model_route.machine_admin,
            "model routes never see the machine credential"
        );
        let wrong = auth
            .authenticate_admin(&bearer("0123456789abcdef-wrong"))
            .await
            .unwrap();
        assert!(!wrong.machine_admin);
    }

    #[test]
    fn short_or_missing_token_files_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert!(MachineAdminAuthenticator::new(inner(), &path).is_err());
        std::fs::write(&path, "short\n").unwrap();
        let err = MachineAdminAuthenticator::new(inner(), &path).err().unwrap();
        assert!(err.contains("shorter than"), "{err}");
    }

    #[test]
    fn a_deleted_file_accepts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef-secret").unwrap();
        let credential = AdminCredential::load(&path).unwrap();
        assert!(credential.matches("0123456789abcdef-secret"));
        std::fs::remove_file(&path).unwrap();
        assert!(!credential.matches("0123456789abcdef-secret"));
    }
}
