//! A room of real `ringchat --json --ephemeral` processes on 127.0.0.1 for the fault
//! tests: it forms the room, keeps every member that is up typing uniquely tagged room
//! messages at a steady pace, pauses, kills, adds and removes members as a user would, asks
//! the members for their `status`, and hands every node's whole history to the checker.
//!
//! Every wait is for a condition, with a deadline; the only fixed pauses are the faults
//! themselves (a process stopped for so long) and the traffic they happen in.

use crate::common::{Proc, Scratch};
use crate::history::{NodeHistory, Shown};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// The pace of each member's typing: one room message every so many milliseconds, drawn
/// afresh each time.
const PACE_MS: std::ops::RangeInclusive<u64> = 20..=50;
/// How often a member is asked for its `status` while the test waits on the room.
const STATUS_EVERY: Duration = Duration::from_millis(150);
/// How often a waited-for condition is re-evaluated.
const CHECK_EVERY: Duration = Duration::from_millis(25);
/// The loop's step: read output, type what is due.
const STEP: Duration = Duration::from_millis(3);
/// Bound for one member's welcome (the README allows 9 s once the contact answers).
pub const JOIN_WAIT: Duration = Duration::from_secs(15);

/// What a node is doing, as the test sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Started with `--join`, not yet welcomed: it types nothing.
    Joining,
    /// A member that types.
    Up,
    /// Stopped with SIGSTOP.
    Paused,
    /// Typed `exit`; not yet exited.
    Leaving,
    /// Typed `dereg`: offline, typing nothing, until it types `reg` (then joining).
    Away,
    /// Exited or killed.
    Gone,
}

/// One `ringchat` process and what the test read of it.
pub struct Node {
    /// Its name in the room.
    pub name: String,
    /// The process.
    pub proc: Proc,
    /// What it is doing.
    pub state: State,
    /// Whether it joined while the room was talking.
    pub joined_late: bool,
    /// Room messages it showed, in order.
    shown: Vec<Shown>,
    /// How many of `proc.seen` were read into `shown` and the fields below.
    parsed: usize,
    /// Room messages typed so far.
    typed: usize,
    /// When it types next.
    next_send: Instant,
    /// Its latest `status` object.
    status: Option<Value>,
    /// `status` commands typed, and answers read.
    asked: usize,
    answered: usize,
    /// Answers up to this many are from before [`Room::forget_statuses`].
    stale: usize,
    /// When `status` was last typed.
    asked_at: Option<Instant>,
    /// Names it showed going offline (`member_offline`).
    pub saw_offline: Vec<String>,
}

impl Node {
    /// Reads what the process printed since last time.
    fn absorb(&mut self) {
        self.proc.pump();
        for line in &self.proc.seen[self.parsed..] {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            match v["event"].as_str() {
                Some("room") => self.shown.push(Shown {
                    seq: v["seq"].as_u64().unwrap_or(u64::MAX),
                    from: text("from"),
                    text: text("text"),
                    mine: v["mine"] == true,
                }),
                Some("status") => {
                    self.answered += 1;
                    self.status = Some(v);
                }
                Some("joined") if self.state == State::Joining => self.state = State::Up,
                Some("member_offline") => self.saw_offline.push(text("name")),
                _ => {}
            }
        }
        self.parsed = self.proc.seen.len();
    }

    /// Its latest `status`, if asked for after the last [`Room::forget_statuses`].
    fn fresh_status(&self) -> Option<&Value> {
        self.status.as_ref().filter(|_| self.answered > self.stale)
    }

    /// The leader its fresh `status` names.
    pub fn leader(&self) -> Option<&str> {
        self.fresh_status().and_then(|s| s["leader"].as_str())
    }

    /// Its own room messages awaiting commit, by its fresh `status`.
    pub fn unconfirmed(&self) -> Option<u64> {
        self.fresh_status().and_then(|s| s["unconfirmed"].as_u64())
    }

    /// Whether it is a member now (up or paused, not joining, leaving or gone).
    fn member(&self) -> bool {
        matches!(self.state, State::Up | State::Paused)
    }

    /// Its history, for the checker.
    pub fn history(&self) -> NodeHistory {
        NodeHistory {
            node: self.name.clone(),
            live: self.member(),
            joined_late: self.joined_late,
            shown: self.shown.clone(),
        }
    }
}

/// The room: every node the test started, in order of start.
pub struct Room {
    /// The nodes (gone ones too: their histories count).
    pub nodes: Vec<Node>,
    /// Draws the pace and the random choices.
    pub rng: StdRng,
    /// Whether the members that are up type room messages.
    pub typing: bool,
    /// Logs of every node; declared after `nodes` so that it outlives them.
    pub scratch: Scratch,
}

impl Room {
    /// Starts `names[0]`, which creates the room, then the others joining through it one
    /// by one; returns once every member's `status` shows one ring of all and one leader.
    #[track_caller]
    pub fn form(names: &[&str], seed: u64) -> Room {
        let mut room = Room {
            nodes: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            typing: false,
            scratch: Scratch::new(),
        };
        room.start(names[0], None);
        let created = room.nodes[0].proc.expect_within(
            JOIN_WAIT,
            |l| l.contains(r#""event":"joined""#),
            "the `joined` event of the room's creator",
        );
        assert!(created.contains(r#""is_leader":true"#), "{created}");
        room.nodes[0].state = State::Up;
        for name in &names[1..] {
            let i = room.start(name, Some(0));
            room.wait_for(JOIN_WAIT, &format!("{name} joins the room"), |r| {
                r.nodes[i].state == State::Up
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
        room.wait_for(
            JOIN_WAIT,
            "every member shows one ring of all and one leader",
            |r| r.agreed_leader().is_some(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        room
    }

    /// Starts node `name` with `--json --ephemeral`, joining through node `contact` if
    /// given; it is [`State::Joining`] until its `joined` event. Returns its index.
    #[track_caller]
    pub fn start(&mut self, name: &str, contact: Option<usize>) -> usize {
        let via = contact.map(|c| format!("127.0.0.1:{}", self.nodes[c].proc.port));
        let mut args = vec!["--name", name, "--port", "0", "--json", "--ephemeral"];
        if let Some(via) = &via {
            args.extend(["--join", via.as_str()]);
        }
        let mut proc = Proc::spawn(name, &self.scratch, &args);
        let first = proc.next_line("the `listening` event");
        let addr = serde_json::from_str::<Value>(&first)
            .ok()
            .filter(|v| v["event"] == "listening")
            .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()));
        let Some(addr) = addr else {
            proc.fail(&format!("first line {first:?} is not a `listening` event"));
        };
        proc.addr = Some(addr);
        proc.port = addr.port();
        self.nodes.push(Node {
            name: name.to_string(),
            proc,
            state: State::Joining,
            joined_late: self.typing,
            shown: Vec::new(),
            parsed: 1,
            typed: 0,
            next_send: Instant::now(),
            status: None,
            asked: 0,
            answered: 0,
            stale: 0,
            asked_at: None,
            saw_offline: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// The index of the node called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// One step: read every node's output, type the room messages that are due, notice a
    /// leaving node's exit.
    fn step(&mut self) {
        let now = Instant::now();
        for n in &mut self.nodes {
            n.absorb();
            if n.state == State::Leaving && n.proc.reap(Duration::ZERO).is_some() {
                n.absorb();
                n.state = State::Gone;
            }
            if self.typing && n.state == State::Up && n.next_send <= now {
                n.typed += 1;
                let line = format!("send_all {}#{:04}", n.name, n.typed);
                n.proc.send(&line);
                let gap = Duration::from_millis(self.rng.random_range(PACE_MS));
                // After a stall (a slow step, a pause) the pace starts over: no burst.
                n.next_send = (n.next_send + gap).max(now + gap / 2);
            }
        }
    }

    /// Types `status` at every member that is up and has answered the last one (and was
    /// asked long enough ago).
    fn ask_statuses(&mut self) {
        for n in self.nodes.iter_mut().filter(|n| n.state == State::Up) {
            let due = n.asked_at.is_none_or(|at| at.elapsed() >= STATUS_EVERY);
            if due && n.answered == n.asked {
                n.proc.send("status");
                n.asked += 1;
                n.asked_at = Some(Instant::now());
            }
        }
    }

    /// From now on only `status` answers to questions asked after this count.
    pub fn forget_statuses(&mut self) {
        for n in &mut self.nodes {
            n.stale = n.asked;
        }
    }

    /// Goes on (typing if [`Room::typing`]) for `d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.step();
            thread::sleep(STEP);
        }
    }

    /// Goes on (typing if [`Room::typing`], asking members for their `status`) until
    /// `done` holds; an error naming `what` and every node's state after `limit`.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Room) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let mut checked = start;
        loop {
            self.step();
            self.ask_statuses();
            if checked.elapsed() >= CHECK_EVERY || checked == start {
                checked = Instant::now();
                if done(self) {
                    return Ok(start.elapsed());
                }
            }
            if start.elapsed() > limit {
                return Err(format!("not within {limit:?}: {what}; {}", self.states()));
            }
            thread::sleep(STEP);
        }
    }

    /// Every node's state and what its fresh `status` says, on one line.
    pub fn states(&self) -> String {
        let each: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let s = n.fresh_status();
                let field = |k: &str| s.map(|s| s[k].to_string()).unwrap_or("?".into());
                format!(
                    "{} {:?} (leader {}, ring {}, unconfirmed {})",
                    n.name,
                    n.state,
                    field("leader"),
                    s.map(|s| ring(s).join(">")).unwrap_or("?".into()),
                    field("unconfirmed")
                )
            })
            .collect();
        each.join("; ")
    }

    /// The leader, if every node is up or gone and the fresh `status` of each one up shows
    /// one ring of exactly those up and one leader among them.
    pub fn agreed_leader(&self) -> Option<usize> {
        if self
            .nodes
            .iter()
            .any(|n| !matches!(n.state, State::Up | State::Gone))
        {
            return None;
        }
        let members: Vec<&Node> = self.nodes.iter().filter(|n| n.member()).collect();
        let names: BTreeSet<&str> = members.iter().map(|n| n.name.as_str()).collect();
        let mut leaders = BTreeSet::new();
        for n in &members {
            let s = n.fresh_status()?;
            let shown: BTreeSet<&str> = ring(s).into_iter().collect();
            if shown != names {
                return None;
            }
            leaders.insert(n.leader()?);
        }
        let [leader] = leaders.into_iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        names.contains(leader).then(|| self.index(leader))
    }

    /// The distinct leaders the members' fresh statuses name (`?` for none).
    pub fn leaders(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.member())
            .map(|n| n.leader().unwrap_or("?").to_string())
            .collect()
    }

    /// Waits (typing on) for the members to agree on a leader; returns it.
    pub fn leader(&mut self, limit: Duration) -> Result<usize, String> {
        self.forget_statuses();
        self.wait_for(limit, "the members agree on one ring and one leader", |r| {
            r.agreed_leader().is_some()
        })?;
        Ok(self.agreed_leader().expect("just agreed"))
    }

    /// Node `i`'s ring successor, which watches it, from its fresh `status`.
    pub fn successor(&self, i: usize) -> usize {
        let next = self.nodes[i]
            .fresh_status()
            .and_then(|s| s["next"].as_str())
            .unwrap_or_else(|| panic!("{} has no `next`: {}", self.nodes[i].name, self.states()));
        self.index(next)
    }

    /// Sends `signal` (`STOP`, `CONT`) to node `i`'s process.
    fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i].proc.pid().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{signal}: {e}"));
        assert!(status.success(), "kill -{signal} {pid} failed: {status}");
    }

    /// Stops node `i` with SIGSTOP for `d` while the others go on, then continues it.
    pub fn pause(&mut self, i: usize, d: Duration) {
        self.signal(i, "STOP");
        self.nodes[i].state = State::Paused;
        self.run_for(d);
        self.signal(i, "CONT");
        self.nodes[i].state = State::Up;
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].proc.kill();
        self.nodes[i].absorb();
        self.nodes[i].state = State::Gone;
    }

    /// Node `i` types `dereg`: it types nothing more until [`Room::back`].
    pub fn away(&mut self, i: usize) {
        self.nodes[i].proc.send("dereg");
        self.nodes[i].state = State::Away;
    }

    /// Node `i`, away, types `reg`; it types again once welcomed (its `joined` event).
    pub fn back(&mut self, i: usize) {
        self.nodes[i].proc.send("reg");
        self.nodes[i].state = State::Joining;
    }

    /// Node `i` types `exit`; [`Room::step`] notices when it has gone.
    pub fn exit(&mut self, i: usize) {
        self.nodes[i].proc.send("exit");
        self.nodes[i].state = State::Leaving;
    }

    /// Every node's history, for the checker.
    pub fn histories(&self) -> Vec<NodeHistory> {
        self.nodes.iter().map(Node::history).collect()
    }

    /// Room messages typed in all.
    pub fn typed(&self) -> usize {
        self.nodes.iter().map(|n| n.typed).sum()
    }
}

/// The names on the ring of a `status` object.
fn ring(status: &Value) -> Vec<&str> {
    status["ring"]
        .as_array()
        .map(|r| r.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default()
}
