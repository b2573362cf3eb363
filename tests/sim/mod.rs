//! A deterministic simulated network for many [`Node`]s.
//!
//! Virtual time, per-link latency, loss, duplication and reordering, partitions, crash and
//! restart, all drawn from one seed: a failing seed replays exactly. Verbs follow raft-rs's
//! test harness: [`Sim::drop`], [`Sim::cut`], [`Sim::isolate`], [`Sim::heal`],
//! [`Sim::crash`]. With [`Sim::persist`] each host also has a disk (a model of the
//! driver's database, fed by [`Node::poll_write`]) that survives its crashes:
//! [`Sim::restart_from_disk`].

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ringchat::ids::{NodeId, Seq, WallMillis};
use ringchat::proto::{Command, Event, Node, NodeConfig, Restored};

mod disk;
use disk::write_to;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
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
    /// What this host's processes wrote to disk (with [`Sim::persist`]).
    pub disk: Restored,
    /// Every room message written to disk, in the order written (never forgotten).
    pub disk_log: Vec<(u64, String, String)>,
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
    cut: BTreeSet<(SocketAddr, SocketAddr)>,
    /// Settings applied to every node created from now on.
    pub tune: fn(&mut NodeConfig),
    /// Datagrams delivered.
    pub delivered: u64,
    /// Whether nodes created from now on keep their state on their host's disk.
    pub persist: bool,
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
        Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            t0,
            now: t0,
            hosts: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
            default_link: Link::default(),
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            tune: |_| {},
            delivered: 0,
            persist: false,
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
        self.flush(i);
    }

    /// Restarts crashed host `i` as a new process from what its disk holds, with no
    /// contact given: it finds the room through the members it saved.
    pub fn restart_from_disk(&mut self, i: usize) {
        let cfg = self.config(i, None);
        let id = NodeId(self.rng.random());
        let saved = self.hosts[i].disk.clone();
        self.hosts[i].node = Some(Node::restore(cfg, id, self.now, saved));
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
            disk: Restored::default(),
            disk_log: Vec::new(),
        });
        self.spawn(i, join);
        i
    }

    /// Gives a user command to host `i` (ignored if crashed).
    pub fn command(&mut self, i: usize, cmd: Command) {
        let wall = WallMillis(self.elapsed().as_millis() as u64);
        let host_name = self.hosts[i].name.clone();
        if let Some(n) = self.hosts[i].node.as_mut() {
            let _host = tracing::debug_span!("host", name = %host_name).entered();
            n.handle_command(self.now, wall, cmd);
            self.flush(i);
        }
    }

    /// Sets loss percent on the link from `a` to `b`.
    pub fn drop(&mut self, a: usize, b: usize, pct: u32) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        let mut l = self
            .links
            .get(&(a, b))
            .copied()
            .unwrap_or(self.default_link);
        l.loss = pct;
        self.links.insert((a, b), l);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: usize, b: usize) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts `a` off from every other host.
    pub fn isolate(&mut self, a: usize) {
        for b in 0..self.hosts.len() {
            if b != a {
                self.cut(a, b);
            }
        }
    }

    /// Removes every cut and per-link override.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.links.clear();
    }

    /// Crashes host `i`: its state is gone, datagrams to it vanish.
    pub fn crash(&mut self, i: usize) {
        self.hosts[i].node = None;
        let events = std::mem::take(&mut self.hosts[i].events);
        self.hosts[i].past_events.extend(events);
    }

    /// Restarts crashed host `i` as a new process joining through `via`.
    pub fn restart(&mut self, i: usize, via: usize) {
        let contact = self.hosts[via].addr;
        self.spawn(i, Some(contact));
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
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        while let Some(w) = node.poll_write() {
            write_to(&mut host.disk, &mut host.disk_log, w);
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
        if self.rng.random_range(0..100) < link.loss {
            return;
        }
        let copies = if self.rng.random_range(0..100) < link.dup {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = link.latency;
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
        loop {
            let next_packet = self.queue.peek().map(|Reverse(p)| p.at);
            let next_timer = self
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.node.as_ref()?.poll_timeout().map(|t| (t, i)))
                .min();
            let packet_first = match (next_packet, next_timer) {
                (Some(p), Some((t, _))) => p <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let at = if packet_first {
                next_packet.unwrap()
            } else {
                next_timer.unwrap().0
            };
            if at > end {
                break;
            }
            self.now = self.now.max(at);
            if packet_first {
                let Reverse(p) = self.queue.pop().unwrap();
                if let Some(i) = self.host_at(p.to)
                    && let host_name = self.hosts[i].name.clone()
                    && let Some(n) = self.hosts[i].node.as_mut()
                {
                    self.delivered += 1;
                    let _host = tracing::debug_span!("host", name = %host_name).entered();
                    n.handle_datagram(self.now, p.from, &p.bytes);
                    self.flush(i);
                }
            } else {
                let i = next_timer.unwrap().1;
                let host_name = self.hosts[i].name.clone();
                if let Some(n) = self.hosts[i].node.as_mut() {
                    let _host = tracing::debug_span!("host", name = %host_name).entered();
                    n.handle_timeout(self.now);
                    self.flush(i);
                }
            }
        }
        self.now = self.now.max(end);
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

    /// The room messages host `i` showed, as `(sender name, text)`, in order.
    pub fn room_log(&self, i: usize) -> Vec<(String, String)> {
        self.hosts[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Room { entry, .. } => Some((entry.name.clone(), entry.text.clone())),
                _ => None,
            })
            .collect()
    }

    /// The private messages host `i` showed, as `(sender name, text)`, in order.
    pub fn direct_log(&self, i: usize) -> Vec<(String, String)> {
        self.hosts[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Direct { from, text, .. } => Some((from.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    /// Forms a room: the first name creates it, each other joins through a random member
    /// already in; then waits until every member sees all the others online.
    pub fn form_room(&mut self, rng: &mut StdRng, names: &[&str]) -> Result<(), String> {
        self.create(names[0]);
        for name in &names[1..] {
            let joined: Vec<usize> = (0..self.hosts.len()).filter(|&i| self.joined(i)).collect();
            let via = joined[rng.random_range(0..joined.len())];
            let i = self.join(name, via);
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

    /// Checks that the live hosts agree on one live leader and form one ring.
    pub fn check_converged(&self) -> Result<(), String> {
        let live = self.live();
        let ids: BTreeSet<NodeId> = live.iter().map(|&i| self.node(i).id()).collect();
        let leaders: BTreeSet<Option<NodeId>> =
            live.iter().map(|&i| self.node(i).leader()).collect();
        if leaders.len() != 1 {
            return Err(format!("live members disagree on the leader: {leaders:?}"));
        }
        let leader = leaders.into_iter().next().flatten().ok_or("no leader")?;
        if !ids.contains(&leader) {
            return Err(format!("leader {leader} is not a live member"));
        }
        let leading = live
            .iter()
            .filter(|&&i| self.node(i).is_sequencing())
            .count();
        if leading != 1 {
            return Err(format!("{leading} live members are sequencing"));
        }
        for &i in &live {
            let online: BTreeSet<NodeId> = self
                .node(i)
                .members()
                .online_peers()
                .map(|m| m.id)
                .chain([self.node(i).id()])
                .collect();
            if online != ids {
                return Err(format!(
                    "{} sees {} online, {} are live",
                    self.hosts[i].name,
                    online.len(),
                    ids.len()
                ));
            }
        }
        Ok(())
    }

    /// Checks that no live host showed a room message twice and that any two messages
    /// two hosts both showed appear in the same order at both.
    pub fn check_order(&self) -> Result<(), String> {
        self.check_order_among(|_| true)
    }

    /// [`Sim::check_order`] restricted to messages whose text satisfies `keep`.
    pub fn check_order_among(&self, keep: impl Fn(&str) -> bool) -> Result<(), String> {
        let live = self.live();
        for &i in &live {
            let log = self.room_log(i);
            let unique: BTreeSet<&(String, String)> = log.iter().collect();
            if unique.len() != log.len() {
                return Err(format!("{} showed a message twice", self.hosts[i].name));
            }
        }
        for &a in &live {
            for &b in &live {
                let la: Vec<_> = self
                    .room_log(a)
                    .into_iter()
                    .filter(|m| keep(&m.1))
                    .collect();
                let lb: Vec<_> = self
                    .room_log(b)
                    .into_iter()
                    .filter(|m| keep(&m.1))
                    .collect();
                let sa: BTreeSet<&(String, String)> = la.iter().collect();
                let sb: BTreeSet<&(String, String)> = lb.iter().collect();
                let common_a: Vec<_> = la.iter().filter(|m| sb.contains(m)).collect();
                let common_b: Vec<_> = lb.iter().filter(|m| sa.contains(m)).collect();
                if common_a != common_b {
                    return Err(format!(
                        "{} and {} show common messages in different orders",
                        self.hosts[a].name, self.hosts[b].name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks that every room message whose sender saw it committed (in any incarnation)
    /// is shown at every live host that was in the room when it was sequenced.
    pub fn check_committed_everywhere(&self) -> Result<(), String> {
        self.check_committed(false).map(|_| ())
    }

    /// [`Sim::check_committed_everywhere`], except that a message is allowed to be missing
    /// at a host whose history holds a filler under its number: the known limit where every
    /// holder of a message was offline when the leader died (README, "Known limits").
    /// Returns how many such cases it let pass.
    pub fn check_committed_except_filled(&self) -> Result<usize, String> {
        self.check_committed(true)
    }

    fn check_committed(&self, allow_filled: bool) -> Result<usize, String> {
        let mut filled = 0;
        let mut committed = Vec::new();
        for h in &self.hosts {
            for (_, e) in h.past_events.iter().chain(&h.events) {
                if let Event::Room {
                    entry, mine: true, ..
                } = e
                {
                    committed.push((entry.seq, (entry.name.clone(), entry.text.clone())));
                }
            }
        }
        for i in self.live() {
            let shown: BTreeSet<(String, String)> = self.room_log(i).into_iter().collect();
            let first = self.node(i).first_seq();
            let filler_at = |seq: Seq| {
                self.node(i)
                    .history()
                    .range(seq, seq)
                    .any(|e| e.is_filler())
            };
            let mut missing = None;
            for (seq, m) in &committed {
                if *seq >= first && !shown.contains(m) {
                    if allow_filled && filler_at(*seq) {
                        filled += 1;
                    } else {
                        missing = Some(m);
                        break;
                    }
                }
            }
            if let Some(m) = missing {
                return Err(format!(
                    "{} never showed committed message {m:?}",
                    self.hosts[i].name
                ));
            }
        }
        Ok(filled)
    }

    /// Prints every host's events (for replaying a failing seed with `--nocapture`).
    pub fn dump(&self) {
        for h in &self.hosts {
            println!("== {} {}", h.name, h.addr);
            for (t, e) in &h.past_events {
                println!("  {:>8.3}s (before crash) {e:?}", t.as_secs_f64());
            }
            for (t, e) in &h.events {
                println!("  {:>8.3}s {e:?}", t.as_secs_f64());
            }
        }
    }

    /// Host `i`'s events matching `pred`.
    pub fn count_events(&self, i: usize, pred: impl Fn(&Event) -> bool) -> usize {
        self.hosts[i].events.iter().filter(|(_, e)| pred(e)).count()
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

/// Runs `check` for each seed, reporting every failing seed with the command that replays
/// it. `SIM_SEED=n` runs only seed `n`; `SIM_SEEDS=k` runs `k` seeds instead of `default`.
pub fn for_seeds(test: &str, default: u64, check: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default);
            (0..n).collect()
        }
    };
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(why) = check(seed) {
            failures.push(format!(
                "seed {seed}: {why}\n  replay: SIM_SEED={seed} cargo test --test {} {test} -- --nocapture",
                module_path!().split("::").next().unwrap_or("sim")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
