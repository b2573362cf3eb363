//! Bounds on what strangers (addresses not in the member table) can make a node do or
//! hold, whatever addresses they come from:
//!
//! - [`JoinLimiter`]: joins a leader takes, per IP address and for the room as a whole,
//!   per second; its table never forgets a count that is still running, however many
//!   addresses come and go.
//! - [`AmplificationBudget`]: what a node sends an address that has not been admitted is
//!   at most three times what it received from there (as QUIC bounds a server before
//!   the client's address is validated), retries included.
//! - [`Quiet`]: "at most once a second per address" (log lines, answers to strangers),
//!   with a bounded table that address churn cannot wipe.
//!
//! Every table here is bounded, and when full it forgets only what no longer counts
//! (the oldest entries, by their last use), never a running count.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Joins a leader takes from one IP address per second.
pub const JOINS_PER_SECOND: u32 = 20;
/// Joins a leader takes per second from all addresses together: address churn cannot
/// get more joins through than this.
pub const ROOM_JOINS_PER_SECOND: u32 = 100;
/// IP addresses whose joins are counted at once, at most (more than a second's worth of
/// [`ROOM_JOINS_PER_SECOND`], so a running count is never forgotten).
pub const MAX_COUNTED: usize = 1024;
/// What a node sends an address not admitted, at most, per byte received from it.
pub const AMPLIFICATION: u64 = 3;
/// Addresses whose bytes are counted for [`AmplificationBudget`], at most; past it the
/// least recently heard is forgotten (nothing more can then be sent to it).
pub const MAX_STRANGERS: usize = 4096;

/// The window joins are counted in.
const JOIN_WINDOW: Duration = Duration::from_secs(1);

/// What to do with a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinVerdict {
    /// Take it (challenge the newcomer).
    Take,
    /// Refuse it as throttled: the first join over its address's limit this second.
    Refuse,
    /// Ignore it: over a limit, and already told (or the room's limit: no answer at all).
    Ignore,
}

/// Joins per IP address and per room, per second.
#[derive(Debug, Default)]
pub struct JoinLimiter {
    /// Per address: when its window began, joins in it.
    per_ip: BTreeMap<IpAddr, (Instant, u32)>,
    /// The same entries by window start (oldest first), to forget expired ones.
    by_start: BTreeSet<(Instant, IpAddr)>,
    /// The room's window and its joins.
    room: Option<(Instant, u32)>,
}

impl JoinLimiter {
    /// Counts a join from `ip` at `now` and says what to do with it.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> JoinVerdict {
        if let Some(&(start, count)) = self.per_ip.get(&ip)
            && now.saturating_duration_since(start) < JOIN_WINDOW
            && count >= JOINS_PER_SECOND
        {
            self.per_ip.insert(ip, (start, count.saturating_add(1)));
            return if count == JOINS_PER_SECOND {
                JoinVerdict::Refuse
            } else {
                JoinVerdict::Ignore
            };
        }
        let room = match self.room {
            Some((start, n)) if now.saturating_duration_since(start) < JOIN_WINDOW => (start, n),
            _ => (now, 0),
        };
        if room.1 >= ROOM_JOINS_PER_SECOND {
            self.room = Some(room);
            return JoinVerdict::Ignore;
        }
        let (start, count) = match self.per_ip.get(&ip) {
            Some(&(start, count)) if now.saturating_duration_since(start) < JOIN_WINDOW => {
                (start, count)
            }
            old => {
                if let Some(&(start, _)) = old {
                    self.by_start.remove(&(start, ip));
                    self.per_ip.remove(&ip);
                }
                if !self.make_room(now) {
                    return JoinVerdict::Ignore;
                }
                self.by_start.insert((now, ip));
                (now, 0)
            }
        };
        self.per_ip.insert(ip, (start, count + 1));
        self.room = Some((room.0, room.1 + 1));
        JoinVerdict::Take
    }

    /// Forgets expired counts until there is room for one more; whether there is.
    fn make_room(&mut self, now: Instant) -> bool {
        while self.per_ip.len() >= MAX_COUNTED {
            match self.by_start.first().copied() {
                Some((start, ip)) if now.saturating_duration_since(start) >= JOIN_WINDOW => {
                    self.by_start.pop_first();
                    self.per_ip.remove(&ip);
                }
                _ => return false,
            }
        }
        true
    }

    #[cfg(test)]
    /// How many addresses are counted now.
    pub fn counted(&self) -> usize {
        self.per_ip.len()
    }
}

/// Bytes received from and sent to one address not in the member table.
#[derive(Debug, Clone, Copy)]
struct Budget {
    received: u64,
    sent: u64,
    last: Instant,
    /// It asked this node to join (a node that is not in a room itself budgets only
    /// answers to joins: anything else it sends, it sent first).
    asked: bool,
}

/// The anti-amplification bound: bytes sent to each address that is not a member's, at
/// most [`AMPLIFICATION`] times the bytes received from it, counted over everything
/// (first sends, retries, acks, answers).
#[derive(Debug, Default)]
pub struct AmplificationBudget {
    entries: BTreeMap<SocketAddr, Budget>,
    /// The same addresses by last use (oldest first), to forget the least recent.
    by_last: BTreeSet<(Instant, SocketAddr)>,
}

impl AmplificationBudget {
    fn touch(&mut self, now: Instant, addr: SocketAddr) -> &mut Budget {
        if let Some(b) = self.entries.get(&addr) {
            self.by_last.remove(&(b.last, addr));
        } else {
            while self.entries.len() >= MAX_STRANGERS {
                let Some((_, oldest)) = self.by_last.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
        let b = self.entries.entry(addr).or_insert(Budget {
            received: 0,
            sent: 0,
            last: now,
            asked: false,
        });
        b.last = now;
        self.by_last.insert((now, addr));
        b
    }

    /// `bytes` came from `from` (not a member's address); `join` if it asked to join.
    pub fn received(&mut self, now: Instant, from: SocketAddr, bytes: usize, join: bool) {
        let b = self.touch(now, from);
        b.received = b.received.saturating_add(bytes as u64);
        b.asked |= join;
    }

    /// A member passed on a join from `from` that was `bytes` long: counted as received
    /// from there (the answer goes there, from this node).
    pub fn credit_join(&mut self, now: Instant, from: SocketAddr, bytes: usize) {
        self.received(now, from, bytes, true);
    }

    /// Whether `bytes` more may go to `to` (not a member's address); if so they are
    /// counted. `in_room`: this node is in a room, so everything it sends to an address
    /// outside the table answers that address; otherwise only answers to its joins do.
    pub fn may_send(&mut self, to: SocketAddr, bytes: usize, in_room: bool) -> bool {
        match self.entries.get_mut(&to) {
            Some(b) if in_room || b.asked => {
                let sent = b.sent.saturating_add(bytes as u64);
                if sent > b.received.saturating_mul(AMPLIFICATION) {
                    return false;
                }
                b.sent = sent;
                true
            }
            Some(_) => true,
            None => !in_room,
        }
    }

    /// `addr` is a member's now: no longer counted.
    pub fn forget(&mut self, addr: SocketAddr) {
        if let Some(b) = self.entries.remove(&addr) {
            self.by_last.remove(&(b.last, addr));
        }
    }

    #[cfg(test)]
    /// How many addresses are counted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// Bytes sent to and received from `addr` so far, if counted.
    pub fn counts(&self, addr: SocketAddr) -> Option<(u64, u64)> {
        self.entries.get(&addr).map(|b| (b.sent, b.received))
    }
}

/// "At most once per interval for each key" with a bounded table: when full, entries
/// older than the interval are forgotten; if none is, a new key is not due (a flood of
/// new addresses gets nothing, it does not wipe the table).
#[derive(Debug)]
pub struct Quiet<K: Ord + Copy> {
    every: Duration,
    cap: usize,
    last: BTreeMap<K, Instant>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Copy> Quiet<K> {
    /// At most once per `every` for each key, at most `cap` keys remembered.
    pub fn new(every: Duration, cap: usize) -> Self {
        Quiet {
            every,
            cap,
            last: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }

    /// Whether `key` was due less than `every` before `now` (it is not due again yet).
    pub fn is_quiet(&self, key: K, now: Instant) -> bool {
        self.last
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.every)
    }

    /// Whether `key` is due at `now` (then it is not again for `every`).
    pub fn due(&mut self, key: K, now: Instant) -> bool {
        if let Some(&t) = self.last.get(&key) {
            if now.saturating_duration_since(t) < self.every {
                return false;
            }
            self.by_time.remove(&(t, key));
            self.last.remove(&key);
        }
        while self.last.len() >= self.cap {
            match self.by_time.first().copied() {
                Some((t, k)) if now.saturating_duration_since(t) >= self.every => {
                    self.by_time.pop_first();
                    self.last.remove(&k);
                }
                _ => return false,
            }
        }
        self.last.insert(key, now);
        self.by_time.insert((now, key));
        true
    }

    #[cfg(test)]
    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + n))
    }

    const SECOND: Duration = Duration::from_secs(1);

    /// Twenty joins a second from one address; the first one over is refused (told),
    /// the rest ignored; the next second counts afresh.
    #[test]
    fn one_address_gets_its_joins_per_second() {
        let t0 = Instant::now();
        let mut l = JoinLimiter::default();
        let verdicts: Vec<JoinVerdict> = (0..23).map(|_| l.check(t0, ip(1))).collect();
        assert!(verdicts[..20].iter().all(|v| *v == JoinVerdict::Take));
        assert_eq!(verdicts[20], JoinVerdict::Refuse);
        assert_eq!(verdicts[21..], [JoinVerdict::Ignore, JoinVerdict::Ignore]);
        assert_eq!(l.check(t0 + SECOND, ip(1)), JoinVerdict::Take);
    }

    /// The former table was wiped at 1 024 addresses, which reset every count: an
    /// address over its limit got through again after a churn of others. Now churn
    /// neither resets a running count nor gets more than the room's joins a second.
    #[test]
    fn address_churn_neither_wipes_counts_nor_gets_through() {
        let t0 = Instant::now();
        let mut l = JoinLimiter::default();
        for _ in 0..JOINS_PER_SECOND {
            assert_eq!(l.check(t0, ip(1)), JoinVerdict::Take);
        }
        let taken = (2..6002)
            .filter(|n| l.check(t0, ip(*n)) == JoinVerdict::Take)
            .count();
        assert_eq!(taken as u32, ROOM_JOINS_PER_SECOND - JOINS_PER_SECOND);
        assert_eq!(l.check(t0, ip(1)), JoinVerdict::Refuse, "still counted");
        assert!(l.counted() <= MAX_COUNTED);
        // A minute of churn at 6 000 addresses a second: the table stays bounded, and
        // the room takes its share each second.
        for s in 1..60u32 {
            let now = t0 + SECOND * s;
            let taken = (0..6000)
                .filter(|n| l.check(now, ip(10_000 * s + n)) == JoinVerdict::Take)
                .count();
            assert_eq!(taken as u32, ROOM_JOINS_PER_SECOND);
            assert!(l.counted() <= MAX_COUNTED, "{}", l.counted());
        }
    }

    /// Three times what came, retries included; nothing at all to an address never
    /// heard from, while in a room; the table stays bounded.
    #[test]
    fn the_budget_is_three_times_what_came_over_everything() {
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.9:4000".parse().unwrap();
        let mut b = AmplificationBudget::default();
        b.received(t0, a, 100, true);
        let sent: usize = std::iter::repeat_n(70, 9)
            .take_while(|n| b.may_send(a, *n, true))
            .sum();
        assert_eq!(sent, 280, "four of nine tries of 70 bytes fit in 300");
        assert!(b.may_send(a, 20, true));
        assert!(!b.may_send(a, 1, true), "300 of 300 sent");
        assert_eq!(b.counts(a), Some((300, 100)));
        let never: SocketAddr = "127.0.0.10:4000".parse().unwrap();
        assert!(!b.may_send(never, 1, true), "in a room: nothing unasked");
        assert!(b.may_send(never, 1, false), "joining: we asked first");
        for n in 0..10_000u32 {
            let addr = SocketAddr::new(ip(n), 9);
            b.received(t0, addr, 60, true);
        }
        assert_eq!(b.len(), MAX_STRANGERS);
    }

    /// Once a second per key; a flood of new keys finds the table full and is not due,
    /// without wiping the keys already there.
    #[test]
    fn quiet_is_bounded_without_wiping() {
        let t0 = Instant::now();
        let mut q = Quiet::new(SECOND, 4);
        assert!(q.due(1, t0));
        assert!(!q.due(1, t0));
        for k in 2..5 {
            assert!(q.due(k, t0));
        }
        assert!(!q.due(99, t0), "full of keys still counting");
        assert!(!q.due(1, t0), "key 1 not wiped");
        assert!(q.due(99, t0 + SECOND), "old ones make room");
        assert!(q.len() <= 4);
    }
}
