//! The Kubernetes API server `hex-cli status` reads from: the client, resolved like kubectl
//! resolves it (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`, else the pod's own
//! service account), and what its failures mean for the user and the exit code.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::CliError;

/// Which cluster, as the command line names it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--kubeconfig`: this file only (no `KUBECONFIG` merge, no in-cluster fallback).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: a context of the kubeconfig other than its current one.
    pub context: Option<String>,
}

/// A client for the cluster and the namespace the kubeconfig context (or the pod) defaults to.
pub async fn connect(target: &Target, timeout: Duration) -> Result<(Client, String), CliError> {
    // kube's rustls client takes the process-wide crypto provider (ring, like every other
    // connection hex-cli makes).
    hex_core_service::registry::fetch::install_crypto_provider();
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let mut config = match (&target.kubeconfig, &target.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| CliError::Usage(format!("--kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| CliError::Usage(format!("--kubeconfig {}: {e}", path.display())))?
        }
        (None, Some(context)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| CliError::Usage(format!("--context {context}: {e}")))?,
        (None, None) => Config::infer().await.map_err(|e| {
            CliError::Usage(format!(
                "no cluster to talk to: {e}\n  hint: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config"
            ))
        })?,
    };
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let server = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config)
        .map_err(|e| CliError::Usage(format!("cannot set up a client for the cluster {server}: {e}")))?;
    Ok((client, namespace))
}

/// What a failed request to the API server means: the server refused (exit 3, with a hint for
/// 401/403), the credentials could not be produced (exit 2), or it could not be reached (exit 4).
pub fn request_error(what: &str, error: kube::Error) -> CliError {
    match error {
        kube::Error::Api(status) => CliError::Kubernetes {
            status: status.code,
            message: format!("{what}: {}", status.message),
        },
        kube::Error::Auth(e) => CliError::Usage(format!(
            "{what}: cannot authenticate to the cluster with the kubeconfig's user: {e}"
        )),
        other => CliError::ClusterUnreachable(format!("{what}: {other}")),
    }
}
