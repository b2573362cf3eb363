//! A deterministic simulated network for many [`Node`]s.
//!
//! Virtual time, per-link latency, loss, duplication and reordering, partitions, crash,
//! restart and pauses, all drawn from one seed: a failing seed replays exactly. A test
//! speaks in faults, as raft-rs's harness does ([`faults`]): [`Sim::crash`],
//! [`Sim::restart`], [`Sim::pause`], [`Sim::cut`], [`Sim::isolate`], [`Sim::partition`],
//! [`Sim::heal`], [`Sim::drop`]; and in users' acts: [`Sim::send_all`],
//! [`Sim::command`]. With [`Sim::persist`] each host also has a disk (a model of the
//! driver's database, fed by [`Node::poll_write`], read for [`Node::poll_read`]) that
//! survives its crashes:
//! [`Sim::restart_from_disk`]. What a test reads of a run, and the properties it checks of
//! whole histories, are in [`check`]; running a scenario over many seeds is in [`seeds`].

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ringchat::ids::{NodeId, WallMillis};
use ringchat::proto::{Command, Event, Node, NodeConfig, Restored, read_run};

pub mod check;
mod disk;
pub mod faults;
pub mod leaders;
pub mod seeds;

use disk::write_to;
// Each suite is its own crate and uses some of these.
#[allow(unused_imports)]
pub use seeds::{for_listed_sims, for_seeds, for_sims, replay_on_failure};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How a link behaves.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Percent of datagrams lost.
    pub loss: u32,
    /// Percent of datagrams delivered twice.
    pub dup: u32,
    /// Latency range; a random latency per datagram also reorders them.
    pub latency: (Duration, Duration),
}

impl Link {
    /// A busy local network: `loss` percent of datagrams lost, 5 % delivered twice, 1 to
    /// 15 ms of latency.
    pub fn lan(loss: u32) -> Self {
        Link {
            loss,
            dup: 5,
            latency: (Duration::from_millis(1), Duration::from_millis(15)),
        }
    }
}

impl Link {
    /// Machines far apart: `loss` percent of datagrams lost, 1 % delivered twice, 40 to
    /// 200 ms of latency each way.
    pub fn wan(loss: u32) -> Self {
        Link {
            loss,
            dup: 1,
            latency: (Duration::from_millis(40), Duration::from_millis(200)),
        }
    }

    /// Slow paths (a satellite hop, a congested mobile network): `loss` percent of
    /// datagrams lost, 1 % delivered twice, 100 to 400 ms of latency each way.
    pub fn far(loss: u32) -> Self {
        Link {
            loss,
            dup: 1,
            latency: (Duration::from_millis(100), Duration::from_millis(400)),
        }
    }
}

impl Default for Link {
    fn default() -> Self {
        Link {
            loss: 0,
            dup: 0,
            latency: (Duration::from_millis(1), Duration::from_millis(10)),
        }
    }
}

/// One simulated host.
pub struct Host {
    /// The node, `None` while crashed.
    pub node: Option<Node>,
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Every event the current process produced, with the virtual time.
    pub events: Vec<(Duration, Event)>,
    /// Events of earlier processes on this host (before crashes).
    pub past_events: Vec<(Duration, Event)>,
    /// Whether the current process started again from this host's disk (it shows
    /// nothing its earlier processes showed: see [`Sim::restart_from_disk`]).
    pub restored: bool,
    /// What this host's processes wrote to disk (with [`Sim::persist`]).
    pub disk: Restored,
    /// Every room message written to disk, in the order written (never forgotten).
    pub disk_log: Vec<(u64, String, String)>,
    /// Until when the process is paused ([`Sim::pause`]).
    paused_until: Option<Instant>,
    /// Datagrams that reached the paused process's socket, oldest first.
    backlog: VecDeque<InFlight>,
    /// Their bytes.
    backlog_bytes: usize,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The simulated network.
pub struct Sim {
    /// The seed everything is drawn from.
    pub seed: u64,
    rng: StdRng,
    t0: Instant,
    now: Instant,
    /// The hosts, by index.
    pub hosts: Vec<Host>,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    /// Behaviour of every link without an override.
    pub default_link: Link,
    links: BTreeMap<(SocketAddr, SocketAddr), Link>,
    /// Links whose losses come in runs ([`Sim::drop_runs`]): the longest run.
    runs: BTreeMap<(SocketAddr, SocketAddr), u32>,
    /// Datagrams still to lose on a link in the run of losses under way.
    burst_left: BTreeMap<(SocketAddr, SocketAddr), u32>,
    cut: BTreeSet<(SocketAddr, SocketAddr)>,
    /// Settings applied to every node created from now on.
    pub tune: fn(&mut NodeConfig),
    /// Datagrams delivered.
    pub delivered: u64,
    /// Whether nodes created from now on keep their state on their host's disk.
    pub persist: bool,
    /// Bytes of datagrams a paused host's socket holds; more are dropped. The default is
    /// Linux's default `rmem_max`, which caps the driver's 4 MiB request (the kernel
    /// doubles it for its own bookkeeping, so about this much payload fits).
    pub socket_buffer: usize,
    /// Datagrams dropped because a paused host's socket was full.
    pub overflowed: u64,
    /// Latency range of every link, whatever the scenario set: `SIM_LATENCY_MS=lo..hi`
    /// runs a suite as if its machines were far apart (a sweep; a scenario's own time
    /// bounds, set for a LAN, may then be too short).
    latency_override: Option<(Duration, Duration)>,
}

/// What the network does next.
enum Step {
    /// The earliest datagram in flight arrives.
    Packet,
    /// Host `i`'s timeout fires.
    Timer(usize),
    /// Host `i`'s pause ends.
    Resume(usize),
}

fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16))
}

impl Sim {
    /// An empty network. With `SIM_TRACE=1` the nodes' logs go to the test's stdout.
    pub fn new(seed: u64) -> Self {
        if std::env::var("SIM_TRACE").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_test_writer()
                .try_init();
        }
        let t0 = Instant::now();
        let latency_override = std::env::var("SIM_LATENCY_MS").ok().map(|v| {
            let (lo, hi) = v.split_once("..").expect("SIM_LATENCY_MS=lo..hi");
            let ms = |x: &str| Duration::from_millis(x.parse().expect("SIM_LATENCY_MS: ms"));
            (ms(lo), ms(hi))
        });
        Sim {
            latency_override,
            seed,
            rng: StdRng::seed_from_u64(seed),
            t0,
            now: t0,
            hosts: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
            default_link: Link::default(),
            links: BTreeMap::new(),
            runs: BTreeMap::new(),
            burst_left: BTreeMap::new(),
            cut: BTreeSet::new(),
            tune: |_| {},
            delivered: 0,
            persist: false,
            socket_buffer: 212_992,
            overflowed: 0,
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn config(&self, i: usize, join: Option<SocketAddr>) -> NodeConfig {
        let mut cfg = NodeConfig::new(self.hosts[i].name.clone(), self.hosts[i].addr, join);
        (self.tune)(&mut cfg);
        cfg.persist = self.persist;
        cfg
    }

    fn spawn(&mut self, i: usize, join: Option<SocketAddr>) {
        let cfg = self.config(i, join);
        let id = NodeId(self.rng.random());
        self.hosts[i].node = Some(Node::new(cfg, id, self.now));
        self.hosts[i].restored = false;
        self.flush(i);
    }

    /// Adds a host that creates the room. Returns its index.
    pub fn create(&mut self, name: &str) -> usize {
        self.add(name, None)
    }

    /// Adds a host that joins through host `via`. Returns its index.
    pub fn join(&mut self, name: &str, via: usize) -> usize {
        let contact = self.hosts[via].addr;
        self.add(name, Some(contact))
    }

    fn add(&mut self, name: &str, join: Option<SocketAddr>) -> usize {
        let i = self.hosts.len();
        self.hosts.push(Host {
            node: None,
            name: name.into(),
            addr: addr_of(i),
            events: Vec::new(),
            past_events: Vec::new(),
            restored: false,
            disk: Restored::default(),
            disk_log: Vec::new(),
            paused_until: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
        });
        self.spawn(i, join);
        i
    }

    /// Gives a user command to host `i` (ignored if crashed or paused).
    pub fn command(&mut self, i: usize, cmd: Command) {
        let wall = WallMillis(self.elapsed().as_millis() as u64);
        let host_name = self.hosts[i].name.clone();
        let t = self.elapsed().as_millis();
        if self.hosts[i].paused_until.is_none()
            && let Some(n) = self.hosts[i].node.as_mut()
        {
            let _host = tracing::debug_span!("host", t, name = %host_name).entered();
            n.handle_command(self.now, wall, cmd);
            self.flush(i);
        }
    }

    /// Host `i` sends `text` to the room: the [`Command::SendAll`] a user types (ignored if
    /// crashed or paused).
    pub fn send_all(&mut self, i: usize, text: impl Into<String>) {
        self.command(i, Command::SendAll { text: text.into() });
    }

    /// Host `i` sends each of `texts` to the room in one turn, as lines piped in together
    /// are read (one run of its own, sealed once), and what that gives is sent.
    pub fn send_all_at_once(&mut self, i: usize, texts: impl IntoIterator<Item = String>) {
        let wall = WallMillis(self.elapsed().as_millis() as u64);
        if self.hosts[i].paused_until.is_none()
            && let Some(n) = self.hosts[i].node.as_mut()
        {
            for text in texts {
                n.handle_command(self.now, wall, Command::SendAll { text });
            }
            self.flush(i);
        }
    }

    /// The node of host `i`.
    pub fn node(&self, i: usize) -> &Node {
        self.hosts[i].node.as_ref().expect("host is up")
    }

    /// Whether host `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.hosts[i].node.is_some()
    }

    fn flush(&mut self, i: usize) {
        let since = self.elapsed();
        let now = self.now;
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        while let Some(w) = node.poll_write() {
            write_to(&mut host.disk, &mut host.disk_log, w);
        }
        // Fetches of what memory no longer holds, answered from the disk as the driver
        // answers them from its database.
        while let Some(read) = node.poll_read() {
            let rows = read_run(&host.disk.history, &read);
            node.handle_read(now, read, Ok(rows));
        }
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = node.poll_event() {
            events.push((since, e));
        }
        self.hosts[i].events.extend(events);
        let from = self.hosts[i].addr;
        for t in out {
            self.send(from, t.to, t.bytes);
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        let link = self
            .links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_link);
        if let Some(left) = self.burst_left.get_mut(&(from, to))
            && *left > 0
        {
            *left -= 1;
            return;
        }
        if self.rng.random_range(0..100) < link.loss {
            if let Some(&longest) = self.runs.get(&(from, to))
                && longest > 1
            {
                let run = self.rng.random_range(1..=longest);
                self.burst_left.insert((from, to), run - 1);
            }
            return;
        }
        let copies = if self.rng.random_range(0..100) < link.dup {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = self.latency_override.unwrap_or(link.latency);
            let lat = lo + (hi - lo).mul_f64(self.rng.random::<f64>());
            self.order += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + lat,
                order: self.order,
                from,
                to,
                bytes: bytes.clone(),
            }));
        }
    }

    fn host_at(&self, addr: SocketAddr) -> Option<usize> {
        self.hosts.iter().position(|h| h.addr == addr)
    }

    /// Runs the network until virtual time `elapsed() + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some((at, step)) = self.next_step() {
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            match step {
                Step::Packet => {
                    let Reverse(p) = self.queue.pop().unwrap();
                    if let Some(i) = self.host_at(p.to) {
                        self.arrive(i, p);
                    }
                }
                Step::Timer(i) => {
                    let host_name = self.hosts[i].name.clone();
                    let t = self.now.duration_since(self.t0).as_millis();
                    if let Some(n) = self.hosts[i].node.as_mut() {
                        let _host = tracing::debug_span!("host", t, name = %host_name).entered();
                        n.handle_timeout(self.now);
                        self.flush(i);
                    }
                }
                Step::Resume(i) => self.resume(i),
            }
        }
        self.now = self.now.max(end);
    }

    /// The next thing to happen, and when: the earliest of the next datagram's arrival,
    /// the earliest timeout of a running host and the earliest end of a pause. A datagram
    /// goes before a timeout due at the same instant; a pause ends before either.
    fn next_step(&self) -> Option<(Instant, Step)> {
        let next_packet = self.queue.peek().map(|Reverse(p)| p.at);
        let next_timer = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.paused_until.is_none())
            .filter_map(|(i, h)| h.node.as_ref()?.poll_timeout().map(|t| (t, i)));
        let next_timer = next_timer.min();
        let next_resume = self
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.paused_until.map(|t| (t, i)))
            .min();
        let first = match (next_packet, next_timer) {
            (Some(p), Some((t, _))) if p <= t => Some((p, Step::Packet)),
            (_, Some((t, i))) => Some((t, Step::Timer(i))),
            (Some(p), None) => Some((p, Step::Packet)),
            (None, None) => None,
        };
        match (first, next_resume) {
            (Some((at, _)), Some((r, i))) if r <= at => Some((r, Step::Resume(i))),
            (None, Some((r, i))) => Some((r, Step::Resume(i))),
            (first, _) => first,
        }
    }

    /// A datagram reaches host `i`: its process takes it, or if paused its socket keeps
    /// it while there is room; a crashed host's vanishes.
    fn arrive(&mut self, i: usize, p: InFlight) {
        let host = &mut self.hosts[i];
        if host.node.is_none() {
            return;
        }
        if host.paused_until.is_none() {
            self.take_datagram(i, p.from, &p.bytes);
        } else if host.backlog_bytes + p.bytes.len() <= self.socket_buffer {
            host.backlog_bytes += p.bytes.len();
            host.backlog.push_back(p);
        } else {
            self.overflowed += 1;
        }
    }

    /// Host `i`'s process handles one datagram now.
    fn take_datagram(&mut self, i: usize, from: SocketAddr, bytes: &[u8]) {
        let host_name = self.hosts[i].name.clone();
        if let Some(n) = self.hosts[i].node.as_mut() {
            self.delivered += 1;
            let t = self.now.duration_since(self.t0).as_millis();
            let _host = tracing::debug_span!("host", t, name = %host_name).entered();
            n.handle_datagram(self.now, from, bytes);
            self.flush(i);
        }
    }

    /// Runs until `pred` holds, checking every 10 ms of virtual time, for at most `limit`.
    /// Returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            self.run_for(Duration::from_millis(10));
        }
        pred(self)
    }

    /// Whether host `i` is up and in the room.
    pub fn joined(&self, i: usize) -> bool {
        self.hosts[i].node.as_ref().is_some_and(Node::is_member)
    }

    /// Forms a room: the first name creates it, each other joins through a random member
    /// already in; then waits until every member sees all the others online. A join that
    /// failed, and said so (`JoinFailed`: on a lossy link every try and its answer can be
    /// lost within the join's 3 s, as in `sim_offline` seed 2112, where 8 of the 9
    /// datagrams to and from the newcomer were), is started again once, as its user would.
    pub fn form_room(&mut self, rng: &mut StdRng, names: &[&str]) -> Result<(), String> {
        self.create(names[0]);
        for name in &names[1..] {
            let joined: Vec<usize> = (0..self.hosts.len()).filter(|&i| self.joined(i)).collect();
            let via = joined[rng.random_range(0..joined.len())];
            let i = self.join(name, via);
            let failed = |s: &Sim| {
                s.hosts[i]
                    .events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::JoinFailed(_)))
            };
            self.run_until(Duration::from_secs(30), |s| s.joined(i) || failed(s));
            if failed(self) {
                let told = std::mem::take(&mut self.hosts[i].events);
                self.hosts[i].past_events.extend(told);
                self.restart(i, via);
            }
            if !self.run_until(Duration::from_secs(30), |s| s.joined(i)) {
                return Err(format!(
                    "{name} did not join through {}",
                    self.hosts[via].name
                ));
            }
        }
        let n = names.len();
        let all_see_all = |s: &Sim| {
            (0..n).all(|i| s.joined(i) && s.node(i).members().online_peers().count() + 1 == n)
        };
        if !self.run_until(Duration::from_secs(30), all_see_all) {
            return Err("members do not all see each other online".into());
        }
        Ok(())
    }

    /// Indices of hosts that are up and in the room.
    pub fn live(&self) -> Vec<usize> {
        (0..self.hosts.len()).filter(|&i| self.joined(i)).collect()
    }

    /// The index of the live host that every live host takes for the leader, or `None`
    /// while they disagree or name no live host. A paused host counts as live: it is up and
    /// in the room, only behind.
    pub fn leader(&self) -> Option<usize> {
        let live = self.live();
        let leader = self.node(*live.first()?).leader()?;
        if live.iter().any(|&i| self.node(i).leader() != Some(leader)) {
            return None;
        }
        live.into_iter().find(|&i| self.node(i).id() == leader)
    }

    /// A fingerprint of the run so far: virtual time, datagrams sent and delivered, and
    /// every event and disk write of every host. Two runs of one seed that took the same
    /// course have the same digest, so a refactoring of a scenario can be shown not to
    /// change what happens (`SIM_DIGEST=1` prints it for every simulation at its end).
    pub fn digest(&self) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        (self.elapsed(), self.order, self.delivered).hash(&mut h);
        for host in &self.hosts {
            host.name.hash(&mut h);
            for (t, e) in host.past_events.iter().chain(&host.events) {
                (t, format!("{e:?}")).hash(&mut h);
            }
            host.disk_log.hash(&mut h);
        }
        h.finish()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::env::var_os("SIM_DIGEST").is_some() {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            println!("digest {test} seed {}: {:016x}", self.seed, self.digest());
        }
    }
}
