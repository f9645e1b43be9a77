//! An address of this test's own for servers that stand in for replicas. EndpointSlices refuse
//! loopback addresses, and test traffic must never go to this machine's external address, so
//! each [`TestNetwork`] creates a network namespace with a veth pair and gives the host side an
//! address from 198.18.0.0/15 (RFC 2544, reserved for network tests). Servers of the test bind to
//! [`TestNetwork::host`]; traffic to it never leaves the machine.
//!
//! Needs root (CAP_NET_ADMIN) and `ip`. Dropping the network deletes the namespace (and with it
//! the veth pair); a watchdog does the same if the test process dies first.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestNetwork {
    /// The host side of the veth pair: bind test servers here.
    pub host: Ipv4Addr,
    namespace: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn address_in_use(address: Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {address}/")))
        .unwrap_or(false)
}

impl TestNetwork {
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("hex-test-{pid}-{n}");
        let (host_if, peer_if) = (format!("hx{pid:x}n{n}a"), format!("hx{pid:x}n{n}b"));
        // One /30 of 198.18.0.0/15 (32768 of them) per network, spread by pid and counter.
        let mut slot = (pid.wrapping_mul(64).wrapping_add(n * 7)) % 32768;
        let base = loop {
            let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + slot * 4;
            if !address_in_use(Ipv4Addr::from(base + 1)) {
                break base;
            }
            slot = (slot + 1) % 32768;
        };
        let (host, peer) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &namespace])?;
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &namespace,
            ])?;
            ip(&["addr", "add", &format!("{host}/30"), "dev", &host_if])?;
            ip(&["link", "set", &host_if, "up"])?;
            ip(&["-n", &namespace, "addr", "add", &format!("{peer}/30"), "dev", &peer_if])?;
            ip(&["-n", &namespace, "link", "set", &peer_if, "up"])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])
        };
        if let Err(error) = setup() {
            let _ = ip(&["netns", "del", &namespace]);
            panic!(
                "this test needs an address of its own (a network namespace with a veth pair): {error}. \
                 Run the tests as root with iproute2 installed (`apt-get install iproute2`)."
            );
        }
        spawn_cleanup_watchdog(&namespace);
        Self { host, namespace }
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.namespace]);
    }
}

/// Deletes `namespace` once this process has exited, however it exits.
fn spawn_cleanup_watchdog(namespace: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; ip netns del {namespace} 2>/dev/null; true",
        pid = std::process::id()
    );
    let _ = Command::new("setsid")
        .args(["-f", "bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
