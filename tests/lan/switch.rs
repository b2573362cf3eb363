//! A user-space Ethernet switch with a fault policy, for tests that need what the kernel
//! here cannot do (no netem; nftables drops but neither delays nor reorders).
//!
//! One thread owns the TAP file of every port. It polls them all, learns which port each
//! source MAC address sits behind, and forwards a frame to the port of its destination
//! (to every other port when the destination is broadcast, multicast or not yet learnt,
//! so ARP works). Each copy then meets the policy of its directed link: cut when the two
//! ports are on different sides of a partition, lost with the link's loss percentage, or
//! queued for release after the link's delay plus or minus its jitter (plus a hold for
//! the share of frames chosen to be reordered). Queued copies leave in time order. The
//! queue of each port is bounded; a copy that finds it full is dropped and counted.
//!
//! The random draws come from one generator seeded by the caller. Which frames they fall
//! on still depends on the timing of the real processes around the switch.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames queued for one port at most; more are dropped (counted as `overflow`).
pub const QUEUE_BOUND: usize = 4096;

/// The longest the thread sleeps in `poll` before it looks at its stop flag again.
const IDLE: Duration = Duration::from_millis(10);

/// Frames read from one port before the others get their turn.
const READ_BATCH: usize = 64;

/// How one directed link treats the frames it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Percentage of frames dropped at random.
    pub loss: u32,
    /// Delay of every frame before the jitter.
    pub delay: Duration,
    /// Each frame's delay is `delay` plus or minus up to this much, uniformly (never
    /// below zero).
    pub jitter: Duration,
    /// Percentage of frames held back by `hold` on top of their delay, so that frames
    /// sent after them overtake them.
    pub reorder: u32,
    /// How much longer a reordered frame waits.
    pub hold: Duration,
}

impl Link {
    /// A link that delivers everything at once.
    pub const PERFECT: Link = Link {
        loss: 0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        reorder: 0,
        hold: Duration::ZERO,
    };

    /// A link with `loss`% loss, `delay_ms` ± `jitter_ms` of delay and `reorder`% of
    /// frames held back by a further `delay_ms + jitter_ms`.
    pub fn lossy(loss: u32, delay_ms: u64, jitter_ms: u64, reorder: u32) -> Link {
        Link {
            loss,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            reorder,
            hold: Duration::from_millis(delay_ms + jitter_ms),
        }
    }

    /// The shortest and longest time a frame that is not lost spends on this link.
    pub fn bounds(&self) -> (Duration, Duration) {
        let least = self.delay.saturating_sub(self.jitter);
        let most = self.delay
            + self.jitter
            + if self.reorder > 0 {
                self.hold
            } else {
                Duration::ZERO
            };
        (least, most)
    }
}

/// What the switch does to frames; changed while it runs through [`Switch`]'s methods.
#[derive(Clone, Debug, Default)]
struct Policy {
    /// Every directed link not named in `links`.
    default: Link,
    /// Directed links (from port, to port) with their own behaviour.
    links: HashMap<(usize, usize), Link>,
    /// While partitioned: each port's side (`None`: cut off from every port).
    sides: Option<Vec<Option<usize>>>,
}

impl Policy {
    fn link(&self, from: usize, to: usize) -> Link {
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.sides
            .as_ref()
            .is_some_and(|sides| sides[from].is_none() || sides[from] != sides[to])
    }
}

/// What happened to the frames of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Written to the destination port.
    pub delivered: u64,
    /// Dropped by the loss percentage.
    pub lost: u64,
    /// Dropped because a partition separated the ports.
    pub cut: u64,
    /// Dropped because the destination's queue was full or its TAP refused the write.
    pub overflow: u64,
    /// Held back to be overtaken (and delivered unless the write failed).
    pub reordered: u64,
}

impl LinkStats {
    fn add(&mut self, other: &LinkStats) {
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.cut += other.cut;
        self.overflow += other.overflow;
        self.reordered += other.reordered;
    }
}

/// Per directed link (from port, to port), what the switch did so far.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// The counts of every link that carried or dropped a frame.
    pub links: BTreeMap<(usize, usize), LinkStats>,
}

impl Stats {
    /// The counts of all links added up.
    pub fn total(&self) -> LinkStats {
        let mut sum = LinkStats::default();
        for s in self.links.values() {
            sum.add(s);
        }
        sum
    }
}

/// What the caller and the switch thread share.
struct Shared {
    policy: Mutex<Policy>,
    stats: Mutex<Stats>,
    stop: AtomicBool,
}

/// Locks `m`, whether or not a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running switch; its ports are numbered in the order their TAPs were given. Stopped,
/// with its TAP files closed, on drop.
pub struct Switch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// How many ports there are.
    ports: usize,
}

impl Switch {
    /// Starts the switch thread over `ports` (TAP files opened non-blocking), with every
    /// link behaving as `link` and random draws seeded by `seed`.
    pub fn start(ports: Vec<File>, link: Link, seed: u64) -> Switch {
        let shared = Arc::new(Shared {
            policy: Mutex::new(Policy {
                default: link,
                ..Policy::default()
            }),
            stats: Mutex::new(Stats::default()),
            stop: AtomicBool::new(false),
        });
        let count = ports.len();
        let engine = Engine {
            queued: vec![0; ports.len()],
            alive: vec![true; ports.len()],
            ports,
            macs: HashMap::new(),
            queue: BinaryHeap::new(),
            rng: StdRng::seed_from_u64(seed),
            order: 0,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("lan-switch".into())
            .spawn(move || engine.run())
            .expect("start the switch thread");
        Switch {
            shared,
            thread: Some(thread),
            ports: count,
        }
    }

    /// Every directed link behaves as `link` from now on (per-link settings are forgotten).
    pub fn set_all(&self, link: Link) {
        let mut policy = lock(&self.shared.policy);
        policy.default = link;
        policy.links.clear();
    }

    /// Frames from port `from` to port `to` meet `link` from now on.
    pub fn set_link(&self, from: usize, to: usize, link: Link) {
        lock(&self.shared.policy).links.insert((from, to), link);
    }

    /// Splits the ports into `groups`: frames between two groups, and to or from a port in
    /// none, are dropped until [`Switch::heal`]. Frames already queued still arrive.
    pub fn partition(&self, groups: &[&[usize]]) {
        let mut policy = lock(&self.shared.policy);
        let mut sides = vec![None; self.ports];
        for (side, group) in groups.iter().enumerate() {
            for &port in group.iter() {
                sides[port] = Some(side);
            }
        }
        policy.sides = Some(sides);
    }

    /// Ends a partition.
    pub fn heal(&self) {
        lock(&self.shared.policy).sides = None;
    }

    /// What the switch did so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A frame copy waiting for its time: (release time, arrival order, from, to, frame). The
/// arrival order is unique, so the frame bytes are never compared.
type Pending = Reverse<(Instant, u64, usize, usize, Vec<u8>)>;

/// The MAC address at byte `at` of `frame`, if the frame is long enough.
fn mac_at(frame: &[u8], at: usize) -> Option<[u8; 6]> {
    frame.get(at..at + 6)?.try_into().ok()
}

/// The switch thread's state.
struct Engine {
    /// The TAP file of each port.
    ports: Vec<File>,
    /// Ports whose TAP failed (its device went away); no longer polled.
    alive: Vec<bool>,
    /// The port behind each source MAC address seen.
    macs: HashMap<[u8; 6], usize>,
    /// Frame copies waiting for their release time, earliest first.
    queue: BinaryHeap<Pending>,
    /// How many copies in `queue` are for each port.
    queued: Vec<usize>,
    rng: StdRng,
    /// Frame copies queued so far.
    order: u64,
    shared: Arc<Shared>,
}

impl Engine {
    fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.release_due();
            let mut fds: Vec<libc::pollfd> = self
                .ports
                .iter()
                .zip(&self.alive)
                .map(|(file, alive)| libc::pollfd {
                    // A negative descriptor is skipped by poll.
                    fd: if *alive { file.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let wait = self.queue.peek().map_or(IDLE, |Reverse((at, ..))| {
                at.saturating_duration_since(Instant::now()).min(IDLE)
            });
            // Rounded up to whole milliseconds, so the thread never wakes before a release.
            let wait_ms = wait.as_micros().div_ceil(1000) as libc::c_int;
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
            if ready <= 0 {
                continue;
            }
            for (port, fd) in fds.iter().enumerate() {
                if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    self.alive[port] = false;
                } else if fd.revents & libc::POLLIN != 0 {
                    self.read_port(port, &mut buf);
                }
            }
        }
    }

    /// Reads what port `port` has waiting (up to a batch) and forwards each frame.
    fn read_port(&mut self, port: usize, buf: &mut [u8]) {
        for _ in 0..READ_BATCH {
            match (&self.ports[port]).read(buf) {
                Ok(n) => self.forward(port, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.alive[port] = false;
                    return;
                }
            }
        }
    }

    /// Learns the frame's source and queues a copy for each port it goes to.
    fn forward(&mut self, from: usize, frame: &[u8]) {
        let (Some(dst), Some(src)) = (mac_at(frame, 0), mac_at(frame, 6)) else {
            return;
        };
        // The group bit: broadcast and multicast addresses, never a source.
        let group = |mac: [u8; 6]| mac[0] & 1 != 0;
        if !group(src) {
            self.macs.insert(src, from);
        }
        let known = if group(dst) {
            None
        } else {
            self.macs.get(&dst).copied()
        };
        let targets: Vec<usize> = match known {
            Some(to) if to == from => Vec::new(),
            Some(to) => vec![to],
            None => (0..self.ports.len()).filter(|&to| to != from).collect(),
        };
        let shared = Arc::clone(&self.shared);
        let policy = lock(&shared.policy);
        let mut stats = lock(&shared.stats);
        let now = Instant::now();
        for to in targets {
            let counts = stats.links.entry((from, to)).or_default();
            let link = policy.link(from, to);
            if policy.cut(from, to) {
                counts.cut += 1;
            } else if self.rng.random_range(0..100) < link.loss {
                counts.lost += 1;
            } else if self.queued[to] >= QUEUE_BOUND {
                counts.overflow += 1;
            } else {
                // Uniform in delay ± jitter, clipped at zero.
                let spread = (link.jitter * 2).mul_f64(self.rng.random::<f64>());
                let mut wait = (link.delay + spread).saturating_sub(link.jitter);
                if self.rng.random_range(0..100) < link.reorder {
                    wait += link.hold;
                    counts.reordered += 1;
                }
                self.order += 1;
                self.queued[to] += 1;
                self.queue
                    .push(Reverse((now + wait, self.order, from, to, frame.to_vec())));
            }
        }
    }

    /// Writes every queued copy whose time has come to its port.
    fn release_due(&mut self) {
        let now = Instant::now();
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((at, ..))| *at <= now)
        {
            let Some(Reverse((_, _, from, to, frame))) = self.queue.pop() else {
                break;
            };
            self.queued[to] -= 1;
            let written = self.alive[to] && (&self.ports[to]).write(&frame).is_ok();
            let mut stats = lock(&self.shared.stats);
            let counts = stats.links.entry((from, to)).or_default();
            if written {
                counts.delivered += 1;
            } else {
                counts.overflow += 1;
            }
        }
    }
}
