//! A network namespace joined to the host by a veth pair, both created by the test (root is
//! needed): a process started in it has a real, non-loopback address that only this machine can
//! reach, so a test can publish it in an EndpointSlice (the API server refuses loopback
//! addresses) without sending traffic to this machine's external address.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The namespace lives as long as this value (and dies with the test process in any case).
pub struct PodNetwork {
    /// The host's end of the veth pair.
    pub host_address: Ipv4Addr,
    /// The address inside the namespace.
    pub pod_address: Ipv4Addr,
    host_link: String,
    holder: Child,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e} (iproute2 and util-linux are needed)"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}; this test creates a network namespace and a veth pair and must run as root",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl PodNetwork {
    pub fn new() -> Self {
        let pid = std::process::id();
        // A /30 of 10.214.0.0/16 chosen by PID, so concurrent test processes do not collide.
        let base = u32::from(Ipv4Addr::new(10, 214, 0, 0)) + (pid % 16384) * 4;
        let (host_address, pod_address) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let host_link = format!("hx{pid:x}");
        let pod_link = format!("{host_link}p");
        // The holder keeps the namespace alive and exits when the test process is gone, which
        // frees the namespace and with it both ends of the veth pair.
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                &format!("while kill -0 {pid} 2>/dev/null; do sleep 1; done"),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare (util-linux)");
        let netns = format!("/proc/{}/ns/net", holder.id());
        let own = std::fs::read_link("/proc/self/ns/net").expect("read /proc/self/ns/net");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&netns).ok().is_none_or(|ns| ns == own) {
            assert!(
                Instant::now() < deadline,
                "unshare --net did not create a network namespace (this test must run as root)"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let network = Self {
            host_address,
            pod_address,
            host_link: host_link.clone(),
            holder,
        };
        let holder_pid = network.holder.id().to_string();
        run(
            "ip",
            &[
                "link",
                "add",
                &host_link,
                "type",
                "veth",
                "peer",
                "name",
                &pod_link,
                "netns",
                &holder_pid,
            ],
        );
        run("ip", &["addr", "add", &format!("{host_address}/30"), "dev", &host_link]);
        run("ip", &["link", "set", &host_link, "up"]);
        let net = format!("--net={netns}");
        let inside = |args: &[&str]| {
            let mut all = vec![net.as_str(), "--", "ip"];
            all.extend_from_slice(args);
            run("nsenter", &all);
        };
        inside(&["addr", "add", &format!("{pod_address}/30"), "dev", &pod_link]);
        inside(&["link", "set", &pod_link, "up"]);
        inside(&["link", "set", "lo", "up"]);
        network
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .arg("--")
            .arg(program);
        command
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // The namespace is gone with its last process; deleting the host end is a no-op then.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .stderr(Stdio::null())
            .status();
    }
}
