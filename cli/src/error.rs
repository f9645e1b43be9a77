//! What can go wrong in a hex-cli command, and the documented exit code of each.

use std::fmt;

/// Documented exit codes: 0 success, 1 the check did not pass (validation failed, a
/// HexCoreService is not Ready), 2 usage error, 3 the service (or the issuer, for a login; the
/// Kubernetes API server, for `status`) answered with an error, 4 network or timeout.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const VALIDATION_FAILED: u8 = 1;
    /// `hex-cli status`: a HexCoreService is not Ready (scripts gate on it like on a failed check).
    pub const NOT_READY: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SERVICE_ERROR: u8 = 3;
    pub const NETWORK: u8 = 4;
}

#[derive(Debug)]
pub enum CliError {
    /// The command line or a local input (file, flag value) is wrong.
    Usage(String),
    /// The service answered with an error envelope.
    Service { status: u16, code: String, message: String },
    /// The service or the issuer could not be reached, or did not answer in time.
    Network(String),
    /// The OAuth2 / OpenID Connect issuer refused or answered nonsense (login, token renewal).
    Issuer(String),
    /// Validation ran and the payload did not pass (the report was already printed).
    ValidationFailed,
    /// The Kubernetes API server answered with an error (`status`).
    Kubernetes { status: u16, message: String },
    /// The API server answered with an object this hex-cli cannot read (operator/CLI skew).
    UnexpectedObject(String),
    /// The Kubernetes API server could not be reached, or did not answer in time.
    ClusterUnreachable(String),
    /// `status` ran and a HexCoreService is not Ready (the view was already printed); says which.
    NotReady(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Service { .. } | Self::Issuer(_) | Self::Kubernetes { .. } | Self::UnexpectedObject(_) => {
                exit::SERVICE_ERROR
            }
            Self::Network(_) | Self::ClusterUnreachable(_) => exit::NETWORK,
            Self::ValidationFailed => exit::VALIDATION_FAILED,
            Self::NotReady(_) => exit::NOT_READY,
        }
    }

    /// What to do about it, for the common statuses.
    fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Service { status: 401, .. } => {
                Some("the service needs a token: pass --token or set HEX_TOKEN, or run hex-cli login")
            }
            Self::Service { status: 403, .. } => {
                Some("the token lacks the role or scope this needs (admin role for refresh)")
            }
            Self::Service { status: 404, code, .. } if code == "MODEL_NOT_FOUND" => {
                Some("list what the service has with `hex-cli models list`")
            }
            Self::Service { status: 503, .. } => Some("the service is not ready yet: check `hex-cli admin ready`"),
            Self::Network(message) if message.contains("certificate") => Some(
                "the server's certificate is not trusted here: pass --cacert FILE (or HEX_CACERT) with the CA that signed it",
            ),
            Self::Network(message) if message.starts_with("the issuer") => {
                Some("check --issuer or --token-url, and that the issuer can be reached from here")
            }
            Self::Network(_) => {
                Some("check --url (or HEX_URL) and that the service is running; raise --timeout if it is slow")
            }
            Self::Kubernetes { status: 401, .. } => {
                Some("the cluster refused the kubeconfig's credentials: log in to the cluster again")
            }
            Self::Kubernetes { status: 403, .. } => Some(
                "your identity may not read this: it needs get and list on hexcoreservices.hex-core.dev, pods and events \
                 in the namespace (check with `kubectl auth can-i list hexcoreservices.hex-core.dev -n NAMESPACE`)",
            ),
            Self::ClusterUnreachable(message) if message.contains("certificate") => Some(
                "the API server's certificate is not trusted by the kubeconfig's certificate-authority: check the kubeconfig",
            ),
            Self::ClusterUnreachable(_) => Some(
                "check the kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and --context, and that the cluster is up; \
                 raise --timeout if it is slow",
            ),
            Self::Issuer(message) if message.contains("invalid_client") => {
                Some("check --client-id and the client secret")
            }
            Self::Issuer(message)
                if message.contains("unauthorized_client") || message.contains("unsupported_grant_type") =>
            {
                Some("the client must be allowed the client-credentials grant (Keycloak: enable its service account)")
            }
            _ => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) => write!(f, "{message}")?,
            Self::Service { status, code, message } => write!(f, "{status} {code}: {message}")?,
            Self::Network(message) => write!(f, "cannot reach {message}")?,
            Self::Issuer(message) => write!(f, "login failed: {message}")?,
            Self::ValidationFailed => write!(f, "validation did not pass")?,
            Self::Kubernetes { status, message } => {
                write!(f, "the Kubernetes API server answered {status}: {message}")?
            }
            Self::ClusterUnreachable(message) => write!(f, "cannot reach the Kubernetes API server: {message}")?,
            Self::NotReady(message) | Self::UnexpectedObject(message) => write!(f, "{message}")?,
        }
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}
