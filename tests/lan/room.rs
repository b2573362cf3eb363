//! A room of real `ringchat --json --ephemeral` processes, one per host of a [`Lan`], and
//! the judgement of what they showed: sequence numbers, completeness, order, duplicates
//! and the leader.

use super::net::Lan;
use crate::common::{BIN, Proc, Scratch, wait_until};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::process::Command;
use std::time::{Duration, Instant};

/// The port every node listens on, in its own namespace.
pub const PORT: u16 = 7000;

/// Bound for a join, and for the room to form.
const JOIN_WAIT: Duration = Duration::from_secs(30);

/// The name of host `i`'s node.
pub fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The JSON objects `p` printed so far, in order (other lines skipped).
pub fn events(p: &Proc) -> impl Iterator<Item = Value> + '_ {
    p.seen.iter().filter_map(|l| serde_json::from_str(l).ok())
}

/// Whether line `l` is a JSON event of kind `kind`.
fn is_event(l: &str, kind: &str) -> bool {
    serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == kind)
}

/// Starts host `i`'s node in its namespace, joining through host `contact` if given, and
/// reads its `listening` event.
fn spawn_node(scratch: &Scratch, lan: &Lan, i: usize, contact: Option<usize>) -> Proc {
    let host = &lan.hosts[i];
    let me = name(i);
    let dir = scratch.path().join(&me);
    std::fs::create_dir_all(&dir).expect("create the node's directory");
    let addr = host.ip.to_string();
    let port = PORT.to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &host.ns, BIN, "--json", "--ephemeral"])
        .args(["--name", &me, "--addr", &addr, "--port", &port]);
    if let Some(c) = contact {
        cmd.args(["--join", &format!("{}:{PORT}", lan.hosts[c].ip)]);
    }
    // Keyed, as by default: the first node makes the key file, the others read it.
    cmd.arg("--room-key-file")
        .arg(scratch.path().join("room.key"));
    // Logs and the identity in scratch, never the user's own.
    cmd.arg("--log-dir").arg(&dir);
    cmd.arg("--identity").arg(dir.join("identity"));
    cmd.env("XDG_DATA_HOME", &dir);
    let mut p = Proc::spawn_command(&me, cmd);
    let first = p.next_line("the listening event");
    let listening: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
    if listening["event"] != "listening" || listening["addr"] != format!("{addr}:{PORT}") {
        p.fail(&format!(
            "first line {first:?} is not listening on {addr}:{PORT}"
        ));
    }
    p.port = PORT;
    p
}

/// Starts host `i`'s node joining through host 0. A join gives up after 3 s without an
/// answer, which loss can cause now and then; a user would try again, and so does this.
fn join_node(scratch: &Scratch, lan: &Lan, i: usize) -> Proc {
    const TRIES: usize = 4;
    for attempt in 1..=TRIES {
        let mut p = spawn_node(scratch, lan, i, Some(0));
        let line = p.expect_within(
            JOIN_WAIT,
            |l| is_event(l, "joined") || is_event(l, "join_failed"),
            "joined or join_failed",
        );
        if is_event(&line, "joined") {
            return p;
        }
        p.wait_exit(JOIN_WAIT);
        eprintln!("{}: try {attempt} of {TRIES}: {line}", p.label);
        // A try the leader admitted keeps the name until it is declared gone.
        if line.contains("already online") {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    panic!("{} could not join in {TRIES} tries", name(i));
}

/// Whether `p`'s last presence event about `who` says it is online.
fn online(p: &Proc, who: &str) -> bool {
    let events: Vec<Value> = events(p).collect();
    events
        .iter()
        .rev()
        .find_map(|v| match v["event"].as_str() {
            Some("member_online") if v["name"] == who => Some(true),
            Some("member_offline") if v["name"] == who => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// Host 0's node creates the room, every other host's joins through it; returns once each
/// node has seen every later one come online.
pub fn form_room(scratch: &Scratch, lan: &Lan) -> Vec<Proc> {
    let mut first = spawn_node(scratch, lan, 0, None);
    first.expect_within(
        JOIN_WAIT,
        |l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["event"] == "joined" && v["is_leader"] == true)
        },
        "the new room",
    );
    let mut procs = vec![first];
    for i in 1..lan.hosts.len() {
        procs.push(join_node(scratch, lan, i));
    }
    let mut all: Vec<&mut Proc> = procs.iter_mut().collect();
    wait_until(&mut all, JOIN_WAIT, "every later node online", |ps| {
        (0..ps.len()).all(|i| (i + 1..ps.len()).all(|j| online(ps[i], &name(j))))
    });
    procs
}

/// Each node sends one room message per tick for `ticks` ticks, `tick` apart, numbered on
/// from `*next`; the texts go into `sent`.
pub fn chatter(
    procs: &mut [Proc],
    ticks: usize,
    tick: Duration,
    next: &mut usize,
    sent: &mut BTreeSet<String>,
) {
    for _ in 0..ticks {
        let due = Instant::now() + tick;
        for p in procs.iter_mut() {
            let text = format!("m{:03} from {}", *next, p.label);
            p.send(&format!("send_all {text}"));
            sent.insert(text);
            p.pump();
        }
        *next += 1;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

/// One room message as a node showed it.
#[derive(Clone, Debug)]
pub struct Shown {
    /// Its sequence number.
    pub seq: u64,
    /// Its text.
    pub text: String,
    /// Whether the node showed it as its own.
    pub mine: bool,
}

/// The room messages `p` showed whose text is in `sent`, in order.
pub fn shown(p: &Proc, sent: &BTreeSet<String>) -> Vec<Shown> {
    events(p)
        .filter(|v| v["event"] == "room")
        .filter_map(|v| {
            let text = v["text"].as_str()?.to_string();
            sent.contains(&text).then(|| Shown {
                seq: v["seq"].as_u64().unwrap_or(u64::MAX),
                text,
                mine: v["mine"] == true,
            })
        })
        .collect()
}

/// The leader `p`'s events last named (in `joined` or `leader_changed`).
fn leader_seen(p: &Proc) -> Option<String> {
    let events: Vec<Value> = events(p).collect();
    events.iter().rev().find_map(|v| {
        let named = match v["event"].as_str() {
            Some("joined") => &v["leader"],
            Some("leader_changed") => &v["name"],
            _ => return None,
        };
        named.as_str().map(str::to_string)
    })
}

/// The messages some sender showed as its own.
fn own(views: &[Vec<Shown>]) -> BTreeSet<&str> {
    views
        .iter()
        .flatten()
        .filter(|s| s.mine)
        .map(|s| s.text.as_str())
        .collect()
}

/// Whether every message a sender showed as its own is shown at every node.
fn complete(views: &[Vec<Shown>]) -> bool {
    let own = own(views);
    views.iter().all(|view| {
        let texts: BTreeSet<&str> = view.iter().map(|s| s.text.as_str()).collect();
        own.is_subset(&texts)
    })
}

/// Pumps the nodes until every message sent is shown by its sender and at every node, and
/// all name the same leader, then for `quiet` more (late duplicates show up then), or
/// until `limit`. Returns how long it took and whether the room settled.
pub fn settle(
    procs: &mut [Proc],
    sent: &BTreeSet<String>,
    quiet: Duration,
    limit: Duration,
) -> (Duration, bool) {
    let start = Instant::now();
    let settled = loop {
        for p in procs.iter_mut() {
            p.pump();
        }
        let views: Vec<Vec<Shown>> = procs.iter().map(|p| shown(p, sent)).collect();
        let leaders: BTreeSet<Option<String>> = procs.iter().map(leader_seen).collect();
        // Everything typed is committed in the end (a message typed on a side without a
        // majority waits, and goes in after the heal): every sender shows all it sent.
        if complete(&views) && own(&views).len() == sent.len() && leaders.len() == 1 {
            break true;
        }
        if start.elapsed() > limit {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = start.elapsed();
    std::thread::sleep(quiet);
    for p in procs.iter_mut() {
        p.pump();
    }
    (took, settled)
}

/// `p`'s `status`, as JSON.
pub fn status(p: &mut Proc) -> Value {
    p.send("status");
    let line = p.expect(|l| is_event(l, "status"), "the status event");
    serde_json::from_str(&line).unwrap_or(Value::Null)
}

/// The leader `p` names in its `status`.
pub fn leader_by_status(p: &mut Proc) -> String {
    status(p)["leader"].as_str().unwrap_or("none").to_string()
}

/// The voters `p` names in its `status`.
pub fn voters_by_status(p: &mut Proc) -> BTreeSet<String> {
    status(p)["voters"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts host `i`'s node again (a new process, the same identity and address), joining
/// through host `contact`; returns once it says it joined.
pub fn restart_node(scratch: &Scratch, lan: &Lan, i: usize, contact: usize) -> Proc {
    let mut p = spawn_node(scratch, lan, i, Some(contact));
    p.expect_within(JOIN_WAIT, |l| is_event(l, "joined"), "joined again");
    p
}

/// What a room's nodes showed of the messages sent, judged.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Room messages typed.
    pub sent: usize,
    /// Of those, how many their sender showed as its own.
    pub own: usize,
    /// Sequence numbers shown with two different texts (at one node or two).
    pub forked: usize,
    /// (message a sender showed as its own, node that never showed it) pairs.
    pub missing: usize,
    /// Pairs of messages two nodes showed in opposite orders.
    pub misordered: usize,
    /// Showings of a message at a node beyond its first.
    pub duplicates: usize,
    /// The leaders the nodes name in `status` at the end.
    pub leaders: BTreeSet<String>,
}

impl Verdict {
    /// Judges what `procs` showed of `sent`, asking each node for its leader.
    pub fn judge(procs: &mut [Proc], sent: &BTreeSet<String>) -> Verdict {
        let leaders = procs.iter_mut().map(leader_by_status).collect();
        let views: Vec<Vec<Shown>> = procs.iter().map(|p| shown(p, sent)).collect();
        let own = own(&views);
        let mut texts_of: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
        let mut duplicates = 0;
        let mut missing = 0;
        // Each node's position of each message, first showing only.
        let mut places: Vec<BTreeMap<&str, usize>> = Vec::new();
        for view in &views {
            let mut place = BTreeMap::new();
            for (at, s) in view.iter().enumerate() {
                texts_of.entry(s.seq).or_default().insert(&s.text);
                if place.insert(s.text.as_str(), at).is_some() {
                    duplicates += 1;
                }
            }
            missing += own.iter().filter(|t| !place.contains_key(*t)).count();
            places.push(place);
        }
        // Pairs of messages (in text order) that two nodes showed in opposite orders.
        let mut opposite: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (i, a) in places.iter().enumerate() {
            for b in &places[i + 1..] {
                let mut common: Vec<(&str, usize, usize)> = a
                    .iter()
                    .filter_map(|(t, at)| b.get(t).map(|bt| (*t, *at, *bt)))
                    .collect();
                common.sort_by_key(|c| c.1);
                for (k, x) in common.iter().enumerate() {
                    for y in common[k + 1..].iter().filter(|y| y.2 < x.2) {
                        opposite.insert((x.0.min(y.0), x.0.max(y.0)));
                    }
                }
            }
        }
        Verdict {
            sent: sent.len(),
            own: own.len(),
            forked: texts_of.values().filter(|t| t.len() > 1).count(),
            missing,
            misordered: opposite.len(),
            duplicates,
            leaders,
        }
    }

    /// Whether the room kept every promise checked.
    pub fn clean(&self) -> bool {
        self.forked == 0
            && self.missing == 0
            && self.misordered == 0
            && self.duplicates == 0
            && self.leaders.len() == 1
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leaders: Vec<&str> = self.leaders.iter().map(String::as_str).collect();
        write!(
            f,
            "{} sent, {} shown by their senders; {} sequence numbers forked, {} showings \
             missing, {} pairs in opposite orders, {} duplicates, leaders after: {}",
            self.sent,
            self.own,
            self.forked,
            self.missing,
            self.misordered,
            self.duplicates,
            leaders.join(",")
        )
    }
}
