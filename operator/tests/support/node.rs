//! The single-node cluster of `scripts/node up` (kubelet, containerd, kube-proxy, the
//! controller-manager and scheduler on top of the test control plane), as the end-to-end tests on
//! real pods see it: read from the variables `up` exports. The tests fail, never skip, when they
//! are missing.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::repo_root;

pub struct Node {
    /// `HEX_NODE_DIR`: the node's state dir (for `scripts/node ... DIR`).
    pub dir: PathBuf,
    /// `HEX_NODE_KUBECONFIG`: cluster-admin on the node's API server.
    pub kubeconfig: PathBuf,
    /// `HEX_NODE_HOST_IP`: an address of this machine on the node's bridge; pods reach servers
    /// the test binds there.
    pub host_ip: Ipv4Addr,
    /// `HEX_NODE_SERVICE_IMAGE` / `HEX_NODE_OPERATOR_IMAGE`: images of this checkout, present in
    /// the node's containerd (no registry involved).
    pub service_image: String,
    pub operator_image: String,
    /// `HEX_NODE_BIN`: kubectl and helm.
    pub bin_dir: PathBuf,
}

fn required(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: the end-to-end tests on real pods need the single-node cluster. Start it as root \
             with `eval \"$(scripts/node up)\"` (scripts/test does) and run the tests in that shell; stop it with \
             `scripts/node down`"
        )
    })
}

/// The running node, from the environment.
pub fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let node = Node {
            dir: PathBuf::from(required("HEX_NODE_DIR")),
            kubeconfig: PathBuf::from(required("HEX_NODE_KUBECONFIG")),
            host_ip: required("HEX_NODE_HOST_IP")
                .parse()
                .expect("HEX_NODE_HOST_IP is an IPv4 address"),
            service_image: required("HEX_NODE_SERVICE_IMAGE"),
            operator_image: required("HEX_NODE_OPERATOR_IMAGE"),
            bin_dir: PathBuf::from(required("HEX_NODE_BIN")),
        };
        assert!(
            node.kubeconfig.is_file() && node.dir.join(".hex-node").is_file(),
            "HEX_NODE_DIR={} / HEX_NODE_KUBECONFIG={} do not name a running node: start one with \
             `eval \"$(scripts/node up)\"`",
            node.dir.display(),
            node.kubeconfig.display()
        );
        node
    })
}

impl Node {
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read the node's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kube config from the node's kubeconfig");
        Client::try_from(config).expect("a client for the node")
    }

    /// Runs kubectl or helm (from `HEX_NODE_BIN`) against the node.
    pub fn run(&self, tool: &str, args: &[&str]) -> Output {
        let path = self.bin_dir.join(tool);
        Command::new(&path)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    }

    /// Like `run`, failing the test with the tool's output when it fails.
    pub fn ok(&self, tool: &str, args: &[&str]) -> String {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// `scripts/node <args>` for this node (e.g. `ctr images tag`, `restart-apiserver`).
    pub fn script(&self, args: &[&str]) -> String {
        let out = Command::new(repo_root().join("scripts/node"))
            .args(args)
            .env("HEX_NODE_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/node");
        assert!(
            out.status.success(),
            "scripts/node {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

/// `repository` and `tag` of an image reference `repository:tag`.
pub fn split_image(reference: &str) -> (&str, &str) {
    reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .unwrap_or_else(|| panic!("image reference {reference} has no tag"))
}

/// Extracts the chart directory as of a git revision of this repository into `into`.
pub fn chart_at_revision(revision: &str, into: &Path) -> PathBuf {
    let archive = Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(["archive", "--format=tar", revision, "charts/hex-core-operator"])
        .output()
        .expect("run git archive");
    assert!(
        archive.status.success(),
        "git archive {revision} charts/hex-core-operator failed (the upgrade test needs this repository's history): {}",
        String::from_utf8_lossy(&archive.stderr)
    );
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(into)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run tar");
    use std::io::Write;
    tar.stdin.take().unwrap().write_all(&archive.stdout).unwrap();
    assert!(tar.wait().unwrap().success(), "tar -x of the chart archive");
    into.join("charts/hex-core-operator")
}
