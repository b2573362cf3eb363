//! Four hosts on one lossy LAN, built from Linux network namespaces: each node runs in its
//! own namespace with its own address on port 7000, the namespaces are wired through a
//! bridge in a fifth ("switch") namespace, and nftables in every host namespace drops 20%
//! of outgoing UDP at random. Nothing is configured in the root namespace.
//!
//! The room forms, every node's messages reach every node exactly once and in one order,
//! and after the leader is SIGKILLed the survivors elect a new one and go on the same way.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); without them the test prints one
//! `skipped: <reason>` line to stderr and passes. The namespaces are always deleted, even
//! when the test fails.

mod common;

use common::{Proc, RoomLine, Scratch, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Hosts (namespaces with one node each).
const HOSTS: usize = 4;
/// The port every node listens on, in its own namespace.
const PORT: u16 = 7000;
/// Room messages each node sends before the leader is killed.
const BEFORE: usize = 10;
/// Room messages each survivor sends after.
const AFTER: usize = 5;
/// Bound for a join and for each phase to settle; the network loses a fifth of the
/// datagrams each way, so retransmissions are the norm.
const LOSSY_WAIT: Duration = Duration::from_secs(40);

/// The nftables ruleset for every host: drop 20% of outgoing UDP at random.
const CHAOS: &str = "\
table inet chaos {
    chain out {
        type filter hook output priority 0;
        udp dport != 0 numgen random mod 100 < 20 drop
    }
}
";

/// Whether `program` is an executable file in a directory on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// Why this test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match uid.as_deref() {
        Some("0") => {}
        Some(uid) => return Some(format!("needs root (uid is {uid})")),
        None => return Some("needs root (`id -u` did not run)".into()),
    }
    for program in ["ip", "nft"] {
        if !on_path(program) {
            return Some(format!("`{program}` is not on PATH"));
        }
    }
    None
}

/// Runs `program args`; an error says which command failed and its stderr.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces of one test run: deleted on drop, whatever happened.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// Creates namespace `name` with its loopback up; remembered for deletion at once.
    fn add(&mut self, name: &str) -> Result<(), String> {
        // A namespace of this name can only be left over from a killed earlier run whose
        // pid was the same as ours.
        if Path::new("/run/netns").join(name).exists() {
            let _ = run("ip", &["netns", "del", name]);
        }
        run("ip", &["netns", "add", name])?;
        self.names.push(name.to_string());
        run("ip", &["-n", name, "link", "set", "lo", "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            if let Err(e) = run("ip", &["netns", "del", name]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// One host of the LAN.
struct Host {
    ns: String,
    ip: Ipv4Addr,
}

/// Builds the LAN: a bridge in `switch`, one veth pair per host (`p<i>` on the bridge,
/// `eth0` in the host), the host's address, and the loss rules.
fn build_lan(
    nets: &mut Namespaces,
    switch: &str,
    hosts: &[Host],
    scratch: &Scratch,
) -> Result<(), String> {
    nets.add(switch)?;
    run(
        "ip",
        &["-n", switch, "link", "add", "br0", "type", "bridge"],
    )?;
    run("ip", &["-n", switch, "link", "set", "br0", "up"])?;
    let rules = scratch.path().join("chaos.nft");
    std::fs::write(&rules, CHAOS).map_err(|e| format!("cannot write the ruleset: {e}"))?;
    let rules = rules.to_string_lossy();
    for (i, h) in hosts.iter().enumerate() {
        let port = format!("p{}", i + 1);
        nets.add(&h.ns)?;
        run(
            "ip",
            &[
                "-n", switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &h.ns,
            ],
        )?;
        run(
            "ip",
            &["-n", switch, "link", "set", &port, "master", "br0", "up"],
        )?;
        let cidr = format!("{}/24", h.ip);
        run("ip", &["-n", &h.ns, "addr", "add", &cidr, "dev", "eth0"])?;
        run("ip", &["-n", &h.ns, "link", "set", "eth0", "up"])?;
        run("ip", &["netns", "exec", &h.ns, "nft", "-f", &rules])?;
    }
    Ok(())
}

/// Starts the node of host `i` (named `n<i+1>`), joining through `contact` if given.
fn start_node(scratch: &Scratch, hosts: &[Host], i: usize, contact: Option<Ipv4Addr>) -> Proc {
    let h = &hosts[i];
    let name = format!("n{}", i + 1);
    // Every node listens on the same port, so each logs into its own directory.
    let log_dir = scratch.path().join(&name);
    std::fs::create_dir_all(&log_dir).expect("create the node's log directory");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &h.ns, common::BIN])
        .args(["--name", &name, "--addr", &h.ip.to_string()])
        .args(["--port", &PORT.to_string()]);
    if let Some(c) = contact {
        cmd.args(["--join", &format!("{c}:{PORT}")]);
    }
    // Keyed, as by default: the first node makes the key file, the others read it.
    cmd.arg("--room-key-file")
        .arg(scratch.path().join("room.key"));
    cmd.arg("--log-dir").arg(&log_dir);
    // Identity and history in scratch, never the user's own.
    cmd.arg("--identity").arg(log_dir.join("identity"));
    cmd.env("XDG_DATA_HOME", &log_dir);
    let mut p = Proc::spawn_command(&name, cmd);
    p.read_listening(IpAddr::V4(h.ip));
    p
}

/// Starts the node of host `i` and joins through the first host. Joining gives up after
/// 3 s without an answer (documented), which a lossy network can cause now and then (all
/// of some six tries lost); a user would try again, and so does this, a few times.
fn join_node(scratch: &Scratch, hosts: &[Host], i: usize) -> Proc {
    const ATTEMPTS: usize = 4;
    for attempt in 1..=ATTEMPTS {
        let mut p = start_node(scratch, hosts, i, Some(hosts[0].ip));
        let line = p.expect_within(
            LOSSY_WAIT,
            |l| l.starts_with("joined the room: ") || l.starts_with("error: cannot join"),
            "the welcome",
        );
        if line.starts_with("joined the room: ") {
            if !line.ends_with(", leader is n1") {
                p.fail(&format!("joined with the wrong leader: {line:?}"));
            }
            return p;
        }
        let status = p.wait_exit(LOSSY_WAIT);
        eprintln!(
            "{} (attempt {attempt} of {ATTEMPTS}): {line} ({status})",
            p.label
        );
        // An earlier attempt the leader admitted stays online until its neighbours
        // declare it dead (a newcomer gets the 3 s join grace); until then the name is
        // taken.
        if line.contains("already online") {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    panic!("n{} could not join in {ATTEMPTS} attempts", i + 1);
}

/// Whether `p` last said `name` is online (`Some(true)`) or offline (`Some(false)`).
fn last_presence(p: &Proc, name: &str) -> Option<bool> {
    let online = format!("{name} is online");
    let offline = format!("{name} is offline");
    p.seen.iter().rev().find_map(|l| {
        if *l == online {
            Some(true)
        } else if *l == offline {
            Some(false)
        } else {
            None
        }
    })
}

/// Room lines whose text starts with `prefix`, in the order `p` showed them.
fn room_with(p: &Proc, prefix: &str) -> Vec<RoomLine> {
    p.room_seen()
        .into_iter()
        .filter(|r| r.text.starts_with(prefix))
        .collect()
}

/// Every node in `procs` shows all of `expected` (texts starting with `prefix`).
fn all_shown(procs: &[&mut Proc], prefix: &str, expected: &BTreeSet<String>) -> bool {
    procs.iter().all(|p| {
        let shown: BTreeSet<String> = room_with(p, prefix).into_iter().map(|r| r.text).collect();
        shown.is_superset(expected)
    })
}

/// A node's view of the room: (sequence number, sender, text) per message, in order.
type View = Vec<(u64, String, String)>;

/// Each of `procs` showed each message of `expected` exactly once, nothing else with
/// `prefix`, and all in one order with the same sequence numbers.
fn check_exactly_once_in_one_order(procs: &[&mut Proc], prefix: &str, expected: &BTreeSet<String>) {
    let mut first: Option<(&str, View)> = None;
    for p in procs {
        let view = room_with(p, prefix);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &view {
            *count.entry(&r.text).or_default() += 1;
        }
        if let Some((t, n)) = count.iter().find(|(_, n)| **n != 1) {
            p.fail(&format!("showed {t:?} {n} times"));
        }
        let texts: BTreeSet<String> = view.iter().map(|r| r.text.clone()).collect();
        if &texts != expected {
            p.fail(&format!(
                "showed {:?} but not {:?}",
                texts.difference(expected).collect::<Vec<_>>(),
                expected.difference(&texts).collect::<Vec<_>>()
            ));
        }
        let shared: View = view
            .iter()
            .map(|r| (r.seq, r.name.clone(), r.text.clone()))
            .collect();
        match &first {
            None => first = Some((&p.label, shared)),
            Some((label, order)) => assert_eq!(
                order, &shared,
                "{label} and {} show the room differently",
                p.label
            ),
        }
    }
}

#[test]
fn lossy_lan_of_namespaces_survives_a_leader_kill() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("skipped: {reason}");
        return;
    }
    let scratch = Scratch::new();
    let pid = std::process::id();
    let subnet = (pid % 200) as u8;
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| Host {
            ns: format!("rc{pid}n{}", i + 1),
            ip: Ipv4Addr::new(10, 201, subnet, i as u8 + 1),
        })
        .collect();
    // Declared before the processes, so dropped after them: the nodes die first.
    let mut nets = Namespaces { names: Vec::new() };
    if let Err(e) = build_lan(&mut nets, &format!("rc{pid}sw"), &hosts, &scratch) {
        if nets.names.is_empty() {
            eprintln!("skipped: cannot create a network namespace: {e}");
            return;
        }
        panic!("cannot build the namespace LAN: {e}");
    }
    let started = Instant::now();

    // The room: n1 creates it, the others join through n1, one at a time.
    let mut procs: Vec<Proc> = Vec::new();
    let mut n1 = start_node(&scratch, &hosts, 0, None);
    n1.expect_within(
        LOSSY_WAIT,
        |l| l == "created a new room; you (n1) are the leader",
        "the room",
    );
    procs.push(n1);
    for i in 1..HOSTS {
        procs.push(join_node(&scratch, &hosts, i));
    }
    {
        let mut all: Vec<&mut Proc> = procs.iter_mut().collect();
        wait_until(
            &mut all,
            LOSSY_WAIT,
            "every node sees every later one online",
            |ps| {
                ps.iter().enumerate().all(|(i, p)| {
                    (i + 1..HOSTS).all(|j| {
                        let name = format!("n{}", j + 1);
                        last_presence(p, &name) == Some(true)
                    })
                })
            },
        );
    }
    let formed = started.elapsed();

    // Everyone talks.
    let mut expected = BTreeSet::new();
    for k in 1..=BEFORE {
        for p in procs.iter_mut() {
            let t = format!("before {k:02} from {}", p.label);
            p.send(&format!("send_all {t}"));
            expected.insert(t);
        }
    }
    let phase = Instant::now();
    {
        let mut all: Vec<&mut Proc> = procs.iter_mut().collect();
        wait_until(
            &mut all,
            LOSSY_WAIT,
            "every node shows every message",
            |ps| all_shown(ps, "before ", &expected),
        );
        check_exactly_once_in_one_order(&all, "before ", &expected);
    }
    let talked = phase.elapsed();

    // The leader dies.
    let mut survivors = procs.split_off(1);
    let killed_at = Instant::now();
    procs[0].kill();
    let mut all: Vec<&mut Proc> = survivors.iter_mut().collect();
    wait_until(
        &mut all,
        LOSSY_WAIT,
        "every survivor shows `leader is now X` for the same X",
        |ps| {
            let leaders: BTreeSet<Option<&str>> = ps
                .iter()
                .map(|p| {
                    p.seen
                        .iter()
                        .rev()
                        .find_map(|l| l.strip_prefix("leader is now "))
                })
                .collect();
            leaders.len() == 1 && leaders.iter().all(|l| l.is_some_and(|l| l != "n1"))
        },
    );
    let elected = killed_at.elapsed();

    let mut expected = BTreeSet::new();
    for k in 1..=AFTER {
        for p in all.iter_mut() {
            let t = format!("after {k:02} from {}", p.label);
            p.send(&format!("send_all {t}"));
            expected.insert(t);
        }
    }
    wait_until(
        &mut all,
        LOSSY_WAIT,
        "every survivor shows every message sent after the failover",
        |ps| all_shown(ps, "after ", &expected),
    );
    let recovered = killed_at.elapsed();
    // The loss was real: the survivors had to resend.
    let mut resent = 0;
    for p in all.iter_mut() {
        let lines = common::status(p);
        let counters = lines
            .iter()
            .find_map(|l| l.strip_prefix("counters:"))
            .unwrap_or_else(|| p.fail("no `counters:` line in `status`"));
        let words: Vec<&str> = counters.split_whitespace().collect();
        resent += words
            .windows(2)
            .find(|w| w[0] == "retransmitted")
            .and_then(|w| w[1].parse::<u64>().ok())
            .unwrap_or_else(|| p.fail(&format!("no retransmitted count in {counters:?}")));
    }
    assert!(
        resent > 0,
        "no datagram was resent: is the loss rule in place?"
    );
    check_exactly_once_in_one_order(&all, "after ", &expected);
    // Checked after `status`, which gave a late duplicate time to show: nothing from
    // before the kill was shown again either.
    let before: BTreeSet<String> = (1..=BEFORE)
        .flat_map(|k| (1..=HOSTS).map(move |n| format!("before {k:02} from n{n}")))
        .collect();
    check_exactly_once_in_one_order(&all, "before ", &before);
    eprintln!(
        "netns: room formed in {formed:?}, {} messages shown everywhere in {talked:?}, \
         new leader {elected:?} after the kill, {} more messages shown everywhere {:?} after the kill; \
         {resent} resends at the survivors",
        HOSTS * BEFORE,
        expected.len(),
        recovered
    );
}
