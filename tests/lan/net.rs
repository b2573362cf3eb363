//! A LAN of host namespaces wired to one [`Switch`] in the test process: host `i` is the
//! namespace `rl<pid>x<k>h<i>` whose only link, `eth0`, is a TAP read and written by the
//! switch, with address 10.77.0.<i+1>/24. Nothing is configured in the root namespace.
//! The switch is stopped and the namespaces deleted on drop, whatever happened.

use super::switch::{Link, Switch};
use super::tap::{TUN_DEVICE, in_namespace, make_tap, open_clone_device};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a test that needs namespaces and TAPs cannot run here, if it cannot.
pub fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!("needs root (euid is {euid})"));
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|s| s.success()) {
        return Some("`ip` (iproute2) does not run".into());
    }
    open_clone_device()
        .err()
        .map(|e| format!("cannot open {TUN_DEVICE}: {e}"))
}

/// Runs `ip` with `args`; an error names the command and says what it printed.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {args:?}: {} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )),
    }
}

/// One host of a [`Lan`].
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the LAN.
    pub ip: Ipv4Addr,
}

/// Host namespaces around a running switch.
pub struct Lan {
    /// The hosts, in switch port order.
    pub hosts: Vec<Host>,
    switch: Option<Switch>,
    /// The namespaces made so far, to delete.
    made: Vec<String>,
}

impl Lan {
    /// Builds a LAN of `hosts` hosts whose links all behave as `link`, random draws seeded
    /// by `seed`. When this machine cannot (see [`missing_prerequisite`], or the first
    /// namespace cannot be made) it prints one `skipped: <reason>` line to stderr and
    /// returns `None`; any later failure panics.
    pub fn for_test(hosts: usize, link: Link, seed: u64) -> Option<Lan> {
        if let Some(reason) = missing_prerequisite() {
            eprintln!("skipped: {reason}");
            return None;
        }
        static LANS: AtomicUsize = AtomicUsize::new(0);
        let k = LANS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut lan = Lan {
            hosts: (0..hosts)
                .map(|i| Host {
                    ns: format!("rl{pid}x{k}h{i}"),
                    ip: Ipv4Addr::new(10, 77, 0, i as u8 + 1),
                })
                .collect(),
            switch: None,
            made: Vec::new(),
        };
        let mut taps = Vec::with_capacity(hosts);
        for i in 0..hosts {
            match lan.wire(i) {
                Ok(tap) => taps.push(tap),
                Err(e) if lan.made.is_empty() => {
                    eprintln!("skipped: cannot make a network namespace: {e}");
                    return None;
                }
                Err(e) => panic!("cannot build host {i} of the LAN: {e}"),
            }
        }
        lan.switch = Some(Switch::start(taps, link, seed));
        Some(lan)
    }

    /// Makes host `i`'s namespace and its TAP `eth0`, addressed and up; returns the TAP.
    fn wire(&mut self, i: usize) -> Result<std::fs::File, String> {
        let ns = self.hosts[i].ns.clone();
        // Only a killed earlier run with our pid can have left this name behind.
        if Path::new("/run/netns").join(&ns).exists() {
            ip(&["netns", "delete", &ns])?;
        }
        ip(&["netns", "add", &ns])?;
        self.made.push(ns.clone());
        let tap = in_namespace(&ns, || make_tap("eth0"))
            .map_err(|e| format!("cannot make a TAP in {ns}: {e}"))?;
        let cidr = format!("{}/24", self.hosts[i].ip);
        ip(&["-n", &ns, "address", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        Ok(tap)
    }

    /// The switch between the hosts.
    pub fn switch(&self) -> &Switch {
        self.switch.as_ref().expect("the switch runs until drop")
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // The TAPs close with the switch, so their devices are gone before the namespaces.
        drop(self.switch.take());
        while let Some(ns) = self.made.pop() {
            if let Err(e) = ip(&["netns", "delete", &ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}
