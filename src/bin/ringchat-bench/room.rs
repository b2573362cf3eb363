//! The harness every in-process measurement uses: a [`Room`] of real nodes
//! (`driver::NodeTask`) on real UDP sockets on 127.0.0.1, their events merged into one
//! channel (in batches of whatever a node had out) and stamped with the time they left the
//! node, one [`Loss`] knob for the whole
//! room, and helpers to form the room, wait for events and read every node's counters.

use ringchat::driver::{self, Loss, NodeHandle, Output, Request, Security};
use ringchat::proto::{Command, Event, NodeConfig, Stats, StatusView};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where every node listens.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long one node may take to join (or fail to) before forming the room fails.
const JOIN_LIMIT: Duration = Duration::from_secs(15);

/// Events a forwarding task takes from its node at once, at most.
const FORWARD_BATCH: usize = 256;

/// Attempts per node to join before forming the room fails.
pub const JOIN_ATTEMPTS: usize = 5;

/// Start-to-start gap between joins that keeps under the leader's limit of 20 joins a
/// second from one IP address (every node here has the same one).
pub const PACED: Duration = Duration::from_millis(60);

/// An event from node `node`, with when the bench received it from the node's channel
/// (a forwarding task per node stamps it at once, so the stamp does not wait for the
/// measuring loop; the events it finds waiting together get one stamp and travel on
/// together).
pub struct Stamped {
    /// Index of the node in [`Room::nodes`].
    pub node: usize,
    /// When it came out of the node.
    pub at: Instant,
    /// The event.
    pub event: Event,
}

/// How to set a room up.
#[derive(Clone)]
pub struct Setup {
    /// Room key and rate limit of every node.
    pub security: Security,
    /// Quiet time after the last join, so every member has heard from its neighbours.
    pub settle: Duration,
    /// Least time from one node's start to the next one's.
    pub join_gap: Duration,
    /// Whether every node keeps its state in a database (in a scratch folder), as the
    /// program does by default.
    pub persist: bool,
    /// Whether members talk in sessions (as the program always does); without, every
    /// datagram is sealed with the room key alone (`NodeTask::room_key_only`).
    pub sessions: bool,
    /// Whether room messages carry and need their origin's seal, as the program does
    /// (`NodeConfig::seal_room`); off only to measure what the checks cost.
    pub seal: bool,
}

impl Setup {
    /// Default security (no key, the program's rate limit), as a user would run it.
    pub fn defaults() -> Setup {
        Setup {
            security: Security::default(),
            settle: Duration::from_secs(1),
            join_gap: PACED,
            persist: false,
            sessions: true,
            seal: true,
        }
    }

    /// No rate limit: the protocol's cost, not the limiter's, is measured.
    pub fn unlimited() -> Setup {
        Setup {
            security: Security {
                per_source_per_second: u32::MAX,
                ..Security::default()
            },
            settle: Duration::from_secs(1),
            join_gap: PACED,
            persist: false,
            sessions: true,
            seal: true,
        }
    }
}

/// Running nodes `n0`, `n1`, ... (`n0` created the room and leads it at first).
pub struct Room {
    /// The nodes; their `events` receivers are taken over by the forwarding tasks.
    pub nodes: Vec<NodeHandle>,
    /// Drops this fraction of every node's outgoing datagrams (0 at first).
    pub loss: Loss,
    /// Events stored by [`Room::pump`], per node.
    pub seen: Vec<Vec<(Instant, Event)>>,
    /// Joins that failed and were tried again ([`Room::join`]).
    pub join_failures: usize,
    events: mpsc::UnboundedReceiver<Vec<Stamped>>,
    sender: mpsc::UnboundedSender<Vec<Stamped>>,
    /// Events received but not yet taken.
    buffer: VecDeque<Stamped>,
    security: Security,
    sessions: bool,
    /// Whether room messages are sealed (see [`Setup::seal`]).
    seal: bool,
    /// Where the nodes' databases go, if they keep state (removed with the room).
    data: Option<std::path::PathBuf>,
}

impl Drop for Room {
    fn drop(&mut self) {
        for h in &self.nodes {
            h.task.abort();
        }
        if let Some(dir) = &self.data {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Room {
    /// A room with no node yet.
    pub fn empty(setup: &Setup) -> Room {
        let (sender, events) = mpsc::unbounded_channel();
        Room {
            nodes: Vec::new(),
            loss: Loss::default(),
            seen: Vec::new(),
            join_failures: 0,
            events,
            sender,
            buffer: VecDeque::new(),
            security: setup.security.clone(),
            sessions: setup.sessions,
            seal: setup.seal,
            data: setup.persist.then(|| {
                std::env::temp_dir().join(format!(
                    "ringchat-bench-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ))
            }),
        }
    }

    /// Forms a room of `n` nodes, each joining through the one before once that one has
    /// joined, starts at least `setup.join_gap` apart ([`Room::join`]), then waits for
    /// `setup.settle`. The join events are in [`Room::seen`].
    pub async fn form(n: usize, setup: &Setup) -> Result<Room, String> {
        let mut room = Room::empty(setup);
        let mut last_start: Option<Instant> = None;
        for _ in 0..n {
            if let Some(t) = last_start {
                tokio::time::sleep_until((t + setup.join_gap).into()).await;
            }
            last_start = Some(Instant::now());
            let join = room.nodes.last().map(|h| h.local_addr);
            room.join(join).await?;
        }
        tokio::time::sleep(setup.settle).await;
        room.pump();
        Ok(room)
    }

    /// Starts node `n<len>`, joining through `join` (or creating the room); returns its
    /// index without waiting for it to join.
    pub async fn add(&mut self, join: Option<SocketAddr>) -> Result<usize, String> {
        let i = self.nodes.len();
        let h = self.start(i, join).await?;
        self.nodes.push(h);
        self.seen.push(Vec::new());
        Ok(i)
    }

    /// Starts a node named `n<i>` whose events are tagged `i`.
    async fn start(&mut self, i: usize, join: Option<SocketAddr>) -> Result<NodeHandle, String> {
        let socket = driver::bind(LOCALHOST, 0)
            .await
            .map_err(|e| e.to_string())?;
        let addr = socket.local_addr().map_err(|e| e.to_string())?;
        let mut cfg = NodeConfig::new(format!("n{i}"), addr, join);
        cfg.seal_room = self.seal;
        let store = match &self.data {
            None => None,
            Some(dir) => {
                let public = ed25519_dalek::SigningKey::from_bytes(&cfg.identity)
                    .verifying_key()
                    .to_bytes();
                let store = ringchat::store::Store::open(&dir.join(format!("n{i}")), &public)
                    .map_err(|e| e.to_string())?;
                Some(store)
            }
        };
        let mut task = driver::NodeTask::new(socket, cfg)
            .security(self.security.clone())
            .store(store)
            .loss(self.loss.clone());
        if !self.sessions {
            task = task.room_key_only();
        }
        let mut h = task.start().map_err(|e| e.to_string())?;
        let (_, idle) = mpsc::unbounded_channel();
        let mut events = std::mem::replace(&mut h.events, idle);
        let tx = self.sender.clone();
        tokio::spawn(async move {
            let mut outs = Vec::new();
            while events.recv_many(&mut outs, FORWARD_BATCH).await > 0 {
                let at = Instant::now();
                let batch: Vec<Stamped> = outs
                    .drain(..)
                    .filter_map(|out| match out {
                        Output::Event(event) => Some(Stamped { node: i, at, event }),
                        Output::Say(_) | Output::Stopped(_) => None,
                    })
                    .collect();
                if !batch.is_empty() && tx.send(batch).is_err() {
                    break;
                }
            }
        });
        Ok(h)
    }

    /// Adds a node through `join` and waits until it has joined. A node whose join fails
    /// (`JoinFailed`) is stopped and replaced by a fresh one after a second, up to
    /// [`JOIN_ATTEMPTS`] times; each failure is counted in [`Room::join_failures`] and
    /// printed.
    pub async fn join(&mut self, join: Option<SocketAddr>) -> Result<usize, String> {
        let i = self.add(join).await?;
        for attempt in 1..=JOIN_ATTEMPTS {
            let joined_or_failed = |r: &Room| {
                r.seen[i]
                    .iter()
                    .any(|(_, e)| matches!(e, Event::Joined { .. } | Event::JoinFailed(_)))
            };
            self.wait_for(JOIN_LIMIT, &format!("n{i} to join"), joined_or_failed)
                .await?;
            if self.joined(i) {
                return Ok(i);
            }
            self.join_failures += 1;
            println!(
                "  note: n{i} failed to join (attempt {attempt}): {:?}",
                self.seen[i].last().map(|(_, e)| e)
            );
            self.kill(i);
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.pump();
            self.seen[i].clear();
            self.nodes[i] = self.start(i, join).await?;
        }
        Err(format!("n{i} failed to join {JOIN_ATTEMPTS} times"))
    }

    /// Hands `cmd` to node `i`.
    pub fn send(&self, i: usize, cmd: Command) {
        let _ = self.nodes[i].commands.send(Request::Command(cmd));
    }

    /// The next event of any node, waiting at most `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Stamped> {
        if self.buffer.is_empty() {
            let batch = tokio::time::timeout(limit, self.events.recv())
                .await
                .ok()
                .flatten()?;
            self.buffer.extend(batch);
        }
        self.buffer.pop_front()
    }

    /// Every event that has arrived, appended to `batch`, waiting at most `limit` for the
    /// first; `false` if none came in time.
    pub async fn next_batch(&mut self, limit: Duration, batch: &mut Vec<Stamped>) -> bool {
        if self.buffer.is_empty() {
            match self.events.try_recv() {
                Ok(b) => self.buffer.extend(b),
                Err(_) => match tokio::time::timeout(limit, self.events.recv()).await {
                    Ok(Some(b)) => self.buffer.extend(b),
                    _ => return false,
                },
            }
        }
        while let Ok(b) = self.events.try_recv() {
            self.buffer.extend(b);
        }
        batch.extend(self.buffer.drain(..));
        true
    }

    /// Moves every event that has arrived into [`Room::seen`].
    pub fn pump(&mut self) {
        while let Ok(b) = self.events.try_recv() {
            self.buffer.extend(b);
        }
        for s in self.buffer.drain(..) {
            self.seen[s.node].push((s.at, s.event));
        }
    }

    /// Pumps every millisecond until `done` holds, at most `limit`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Room) -> bool,
    ) -> Result<(), String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.pump();
            if done(self) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!("timed out after {limit:?} waiting for {what}"))
    }

    /// Whether node `i` has joined.
    pub fn joined(&self, i: usize) -> bool {
        self.seen[i]
            .iter()
            .any(|(_, e)| matches!(e, Event::Joined { .. }))
    }

    /// Forgets the stored events (to save memory and searching).
    pub fn forget(&mut self) {
        self.pump();
        self.seen.iter_mut().for_each(Vec::clear);
    }

    /// Every listed node's status, in the order of `which`; events other than the status
    /// answers that arrive meanwhile are kept in [`Room::seen`].
    pub async fn statuses(&mut self, which: &[usize]) -> Result<Vec<StatusView>, String> {
        self.pump();
        let marks: Vec<usize> = which.iter().map(|&i| self.seen[i].len()).collect();
        for &i in which {
            self.send(i, Command::Status);
        }
        let answer = |r: &Room, k: usize| {
            r.seen[which[k]][marks[k]..]
                .iter()
                .find_map(|(_, e)| match e {
                    Event::Status(s) => Some((**s).clone()),
                    _ => None,
                })
        };
        self.wait_for(Duration::from_secs(10), "status answers", |r| {
            (0..which.len()).all(|k| answer(r, k).is_some())
        })
        .await
        .map_err(|e| {
            let silent: Vec<usize> = (0..which.len())
                .filter(|&k| answer(self, k).is_none())
                .map(|k| which[k])
                .collect();
            format!("{e} (no answer from nodes {silent:?})")
        })?;
        Ok((0..which.len()).filter_map(|k| answer(self, k)).collect())
    }

    /// Simulates a crash of node `i`: its task is aborted (no goodbye, nothing more sent).
    pub fn kill(&self, i: usize) {
        self.nodes[i].task.abort();
    }
}

/// Counters summed over nodes.
pub fn total(views: &[StatusView]) -> Stats {
    let mut t = Stats::default();
    for s in views.iter().map(|v| &v.stats) {
        t.sent += s.sent;
        t.retransmitted += s.retransmitted;
        t.received += s.received;
        t.dropped += s.dropped;
        t.refused += s.refused;
        t.duplicates += s.duplicates;
        t.gave_up += s.gave_up;
        t.election_messages += s.election_messages;
        t.limited += s.limited;
        t.forged += s.forged;
    }
    t
}

/// The counter after minus before, per field (saturating).
pub fn delta(after: &Stats, before: &Stats) -> Stats {
    Stats {
        sent: after.sent.saturating_sub(before.sent),
        retransmitted: after.retransmitted.saturating_sub(before.retransmitted),
        received: after.received.saturating_sub(before.received),
        dropped: after.dropped.saturating_sub(before.dropped),
        duplicates: after.duplicates.saturating_sub(before.duplicates),
        gave_up: after.gave_up.saturating_sub(before.gave_up),
        election_messages: after
            .election_messages
            .saturating_sub(before.election_messages),
        refused: after.refused.saturating_sub(before.refused),
        limited: after.limited.saturating_sub(before.limited),
        forged: after.forged.saturating_sub(before.forged),
    }
}

/// The counters in one line.
pub fn describe_stats(s: &Stats) -> String {
    format!(
        "sent {} received {} retransmitted {} refused {} dropped {} duplicates {} gave_up {} forged {}",
        s.sent,
        s.received,
        s.retransmitted,
        s.refused,
        s.dropped,
        s.duplicates,
        s.gave_up,
        s.forged
    )
}

/// The room text of message `k` from node `i`; [`counter_of`] reads `k` back.
pub fn text_of(i: usize, k: usize) -> String {
    format!("n{i} m{k}")
}

/// The counter in a text made by [`text_of`].
pub fn counter_of(text: &str) -> Option<usize> {
    text.rsplit_once(" m")?.1.parse().ok()
}

/// Median and worst of durations (sorted in place); `None` if empty.
pub fn median_worst(v: &mut [Duration]) -> Option<(Duration, Duration)> {
    v.sort();
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

/// Milliseconds with no decimals, or with one below 10 ms.
pub fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m < 10.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}
