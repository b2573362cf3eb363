//! The datagram guard, on the I/O side of the node: sealing every datagram with the room
//! key, a replay window per sender, and a per-source rate limit applied before any
//! expensive work.
//!
//! A sealed datagram is
//! `SEALED | sender id (8, LE) | packet number (8, LE) | nonce (24) | ciphertext+tag`,
//! where the header before the ciphertext is the associated data, and the plaintext is
//! the plain datagram (`wire::encode`'s output). XChaCha20-Poly1305 with a random 24-byte
//! nonce per datagram. Packet numbers grow per sending process; the receiver keeps a
//! sliding window of [`REPLAY_WINDOW`] numbers per sender id, so a datagram captured and
//! sent again is refused, whoever leads.
//!
//! The rate limit never cuts a member: the node task tells the guard the addresses in the
//! member table ([`Guard::set_members`]), and a member's address has a budget of its own,
//! [`member_rate`], far above what the protocol itself sends from one address, and is not
//! counted toward its IP's cap. Strangers (joins, floods, spoofed sources on a member's
//! host) keep the per-source limit and the per-IP cap. A flood that claims a member's own
//! address (IP and port) is still capped at the member budget.
//!
//! The node task opens and seals datagrams. The guard works through `&self` (its tables
//! are `DashMap`s and its counters atomics), so it can also be shared by reference with
//! other tasks, as the tests' stand-in peers do.

use crate::ids::NodeId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dashmap::{DashMap, DashSet};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use thiserror::Error;

mod replay;
pub use replay::{REPLAY_WINDOW, ReplayWindow};

/// First byte of a sealed datagram (plain ones start with the protocol version, 1).
pub const SEALED: u8 = 0xA1;
pub use crate::wire::SEAL_OVERHEAD;
const HEADER: usize = 1 + 8 + 8 + 24;
const _: () = assert!(SEAL_OVERHEAD == HEADER + 16);
/// How many sources' worth one IP address may send over all its ports.
const IP_SHARE: u32 = 20;
/// Datagrams a second a member's address may send, at least (see [`member_rate`]). One
/// node sends far fewer: a sender on loopback, where a bare socket moves about 280 000 small
/// datagrams a second, packs its room traffic into datagrams of up to 1200 bytes.
pub const MEMBER_RATE: u32 = 200_000;
/// Length of a room key.
pub const KEY_BYTES: usize = 32;

/// Why a datagram was refused before it reached the node.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refused {
    /// The source sent more than its share this second.
    #[error("over the per-source rate limit")]
    RateLimited,
    /// Sealed with another key, altered, or cut short.
    #[error("does not open with the room key")]
    Unauthentic,
    /// A plain datagram in a keyed room.
    #[error("not sealed, and this room has a key")]
    NotSealed,
    /// A sealed datagram, and we have no key.
    #[error("sealed, and this node has no room key")]
    NoKey,
    /// A packet number already seen, or too old to tell.
    #[error("replayed (packet {0} from {1})")]
    Replayed(u64, NodeId),
}

/// A room key could not be read or written.
#[derive(Debug, Error)]
pub enum KeyError {
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not 64 hex digits.
    #[error("a room key file holds 64 hex digits")]
    Format,
}

/// Reads a room key file (64 hex digits, whitespace ignored).
pub fn read_key(path: &Path) -> Result<[u8; KEY_BYTES], KeyError> {
    let text = std::fs::read_to_string(path)?;
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if hex.len() != KEY_BYTES * 2 {
        return Err(KeyError::Format);
    }
    let mut key = [0u8; KEY_BYTES];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| KeyError::Format)?;
    }
    Ok(key)
}

/// Writes a fresh random room key to `path`, readable by its owner only. Refuses to
/// overwrite an existing file.
pub fn write_new_key(path: &Path) -> Result<(), KeyError> {
    use std::io::Write;
    let key: [u8; KEY_BYTES] = rand::random();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{hex}")?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    second: u64,
    count: u32,
}

/// Datagrams refused before they reached the node, by reason.
#[derive(Debug, Default)]
pub struct RefusedCounts {
    /// Over the per-source rate.
    pub rate_limited: AtomicU64,
    /// Did not open with the room key, or were not sealed, or were sealed without our key.
    pub unauthentic: AtomicU64,
    /// Replayed.
    pub replayed: AtomicU64,
}

/// Datagrams a second let through from one member's address when strangers get
/// `per_source_per_second`: [`MEMBER_RATE`], or the per-IP cap where that is higher.
pub fn member_rate(per_source_per_second: u32) -> u32 {
    per_source_per_second
        .saturating_mul(IP_SHARE)
        .max(MEMBER_RATE)
}

/// Sealing, replay windows and rate limits for one node.
pub struct Guard {
    /// What was refused so far.
    pub refused: RefusedCounts,
    last_logged: DashMap<IpAddr, Instant>,
    cipher: Option<XChaCha20Poly1305>,
    me: NodeId,
    next_pn: AtomicU64,
    windows: DashMap<NodeId, ReplayWindow>,
    /// Per source address (IP and port): members on one host each keep their own share.
    buckets: DashMap<SocketAddr, Bucket>,
    /// Per source IP, a much larger cap over all its ports (strangers only).
    ip_buckets: DashMap<IpAddr, Bucket>,
    /// The addresses of the member table, as the node task last told them.
    members: DashSet<SocketAddr>,
    started: Instant,
    per_source_per_second: u32,
}

impl Guard {
    /// A guard for node `me`; with `key`, every datagram is sealed and must open.
    /// `per_source_per_second` datagrams from one source IP are let through each second.
    pub fn new(me: NodeId, key: Option<[u8; KEY_BYTES]>, per_source_per_second: u32) -> Self {
        Guard {
            refused: RefusedCounts::default(),
            last_logged: DashMap::new(),
            cipher: key.map(|k| XChaCha20Poly1305::new(&k.into())),
            me,
            next_pn: AtomicU64::new(1),
            windows: DashMap::new(),
            buckets: DashMap::new(),
            ip_buckets: DashMap::new(),
            members: DashSet::new(),
            started: Instant::now(),
            per_source_per_second,
        }
    }

    /// Replaces the member addresses: from now on these get [`member_rate`] each and are
    /// not counted toward their IP's cap. Call it whenever the member table changes.
    pub fn set_members(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.members.clear();
        for a in addrs {
            self.members.insert(a);
        }
    }

    /// Whether `addr` is a member's address (as last set by [`Guard::set_members`]).
    pub fn is_member(&self, addr: SocketAddr) -> bool {
        self.members.contains(&addr)
    }

    /// Whether the room is keyed.
    pub fn is_keyed(&self) -> bool {
        self.cipher.is_some()
    }

    /// Seals a plain datagram (or returns it as is without a key).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let Some(cipher) = &self.cipher else {
            return plain.to_vec();
        };
        let pn = self.next_pn.fetch_add(1, Ordering::Relaxed);
        let nonce: [u8; 24] = rand::random();
        let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
        out.push(SEALED);
        out.extend_from_slice(&self.me.0.to_le_bytes());
        out.extend_from_slice(&pn.to_le_bytes());
        out.extend_from_slice(&nonce);
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &out[..HEADER],
                },
            )
            .unwrap_or_default(); // cannot fail for datagram-sized input
        out.extend_from_slice(&sealed);
        out
    }

    /// Checks the source's rate, then opens a datagram: the plain datagram for the node
    /// (borrowed when the room has no key: nothing to open), or why it was refused.
    pub fn open<'a>(&self, from: SocketAddr, datagram: &'a [u8]) -> Result<Cow<'a, [u8]>, Refused> {
        self.within_rate(from)?;
        let sealed = datagram.first() == Some(&SEALED);
        let Some(cipher) = &self.cipher else {
            return if sealed {
                Err(Refused::NoKey)
            } else {
                Ok(Cow::Borrowed(datagram))
            };
        };
        if !sealed {
            return Err(Refused::NotSealed);
        }
        if datagram.len() < SEAL_OVERHEAD {
            return Err(Refused::Unauthentic);
        }
        let (header, body) = datagram.split_at(HEADER);
        let sender = NodeId(u64::from_le_bytes(
            header[1..9].try_into().unwrap_or_default(),
        ));
        let pn = u64::from_le_bytes(header[9..17].try_into().unwrap_or_default());
        let nonce: [u8; 24] = header[17..41].try_into().unwrap_or_default();
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: header,
                },
            )
            .map_err(|_| Refused::Unauthentic)?;
        if !self.windows.entry(sender).or_default().accept(pn) {
            return Err(Refused::Replayed(pn, sender));
        }
        Ok(Cow::Owned(plain))
    }

    /// Counts a refusal and logs it, at most once a second per source.
    pub fn note_refused(&self, from: SocketAddr, why: &Refused) {
        let counter = match why {
            Refused::RateLimited => &self.refused.rate_limited,
            Refused::Replayed(..) => &self.refused.replayed,
            _ => &self.refused.unauthentic,
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let quiet = self
            .last_logged
            .get(&from.ip())
            .is_some_and(|t| now.duration_since(*t).as_secs() < 1);
        if !quiet {
            if self.last_logged.len() > 4096 {
                self.last_logged.clear();
            }
            self.last_logged.insert(from.ip(), now);
            tracing::warn!("refused a datagram from {from}: {why} ({n} so far)");
        }
    }

    /// How many datagrams were refused in all.
    pub fn refused_total(&self) -> u64 {
        self.refused.rate_limited.load(Ordering::Relaxed)
            + self.refused.unauthentic.load(Ordering::Relaxed)
            + self.refused.replayed.load(Ordering::Relaxed)
    }

    fn within_rate(&self, from: SocketAddr) -> Result<(), Refused> {
        self.within_rate_at(from, self.started.elapsed().as_secs())
    }

    /// The rate check in second `second` of the guard's life.
    fn within_rate_at(&self, from: SocketAddr, second: u64) -> Result<(), Refused> {
        let source_count = Self::count(&self.buckets, from, second);
        // Old sources are forgotten now and then, so spoofed sources cannot grow the tables.
        if self.buckets.len() > 4096 {
            self.buckets.retain(|_, b| b.second == second);
        }
        if self.members.contains(&from) {
            // A member's own budget, and no share of its IP's cap: strangers on its host
            // cannot use that up for it.
            if source_count > member_rate(self.per_source_per_second) {
                return Err(Refused::RateLimited);
            }
            return Ok(());
        }
        let per_ip = self.per_source_per_second.saturating_mul(IP_SHARE);
        let ip_count = Self::count(&self.ip_buckets, from.ip(), second);
        if self.ip_buckets.len() > 4096 {
            self.ip_buckets.retain(|_, b| b.second == second);
        }
        if source_count > self.per_source_per_second || ip_count > per_ip {
            return Err(Refused::RateLimited);
        }
        Ok(())
    }

    fn count<K: std::hash::Hash + Eq>(table: &DashMap<K, Bucket>, key: K, second: u64) -> u32 {
        let mut b = table.entry(key).or_insert(Bucket { second, count: 0 });
        if b.second != second {
            *b = Bucket { second, count: 0 };
        }
        b.count = b.count.saturating_add(1);
        b.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    #[test]
    fn sealed_datagrams_open_only_with_the_key_and_once() {
        let key = [7u8; KEY_BYTES];
        let a = Guard::new(NodeId(1), Some(key), 1000);
        let b = Guard::new(NodeId(2), Some(key), 1000);
        let other = Guard::new(NodeId(3), Some([8u8; KEY_BYTES]), 1000);
        let plain = Guard::new(NodeId(4), None, 1000);
        let d = a.seal(b"\x01hello");
        assert_eq!(d.len(), 6 + SEAL_OVERHEAD);
        assert_eq!(&*b.open(addr(), &d).unwrap(), b"\x01hello");
        assert_eq!(b.open(addr(), &d), Err(Refused::Replayed(1, NodeId(1))));
        assert_eq!(other.open(addr(), &a.seal(b"x")), Err(Refused::Unauthentic));
        assert_eq!(plain.open(addr(), &a.seal(b"x")), Err(Refused::NoKey));
        assert_eq!(b.open(addr(), b"\x01plain"), Err(Refused::NotSealed));
        let mut tampered = a.seal(b"\x01hello");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(b.open(addr(), &tampered), Err(Refused::Unauthentic));
        // The header is authenticated too: a changed packet number does not open.
        let mut renumbered = a.seal(b"\x01hello");
        renumbered[9] ^= 1;
        assert_eq!(b.open(addr(), &renumbered), Err(Refused::Unauthentic));
        assert_eq!(b.open(addr(), &[SEALED, 1, 2]), Err(Refused::Unauthentic));
    }

    #[test]
    fn rate_limit_per_source_address() {
        let g = Guard::new(NodeId(1), None, 3);
        for _ in 0..3 {
            assert!(g.open(addr(), b"\x01x").is_ok());
        }
        assert_eq!(g.open(addr(), b"\x01x"), Err(Refused::RateLimited));
        // Another port on the same host (another member there) keeps its own share.
        let neighbour = SocketAddr::from(([127, 0, 0, 1], 10));
        assert!(g.open(neighbour, b"\x01x").is_ok());
        // But one host over all its ports is capped too.
        let mut refused = 0;
        for port in 100..200 {
            let from = SocketAddr::from(([127, 0, 0, 1], port));
            refused += usize::from(g.open(from, b"\x01x").is_err());
        }
        assert!(refused >= 100 - 3 * IP_SHARE as usize, "{refused}");
    }

    /// The member budget: a member's address is never cut at a rate a stranger would be,
    /// strangers on its host still are, and their flood does not use up the member's share;
    /// a flood from the member's own address is still capped, at [`member_rate`].
    #[test]
    fn members_have_a_budget_of_their_own() {
        let g = Guard::new(NodeId(1), None, 3);
        let member = SocketAddr::from(([127, 0, 0, 1], 20));
        let stranger = SocketAddr::from(([127, 0, 0, 1], 21));
        g.set_members([member]);
        assert!(g.is_member(member) && !g.is_member(stranger));
        // Strangers on the member's host use up the IP's cap...
        for port in 100..200 {
            let _ = g.within_rate_at(SocketAddr::from(([127, 0, 0, 1], port)), 0);
        }
        assert_eq!(g.within_rate_at(stranger, 0), Err(Refused::RateLimited));
        // ...but the member goes on, far past the per-source limit, up to its budget, and
        // a flood from its own address is capped there.
        let budget = member_rate(3);
        assert_eq!(budget, MEMBER_RATE);
        for k in 0..budget {
            assert_eq!(g.within_rate_at(member, 0), Ok(()), "datagram {k}");
        }
        assert_eq!(g.within_rate_at(member, 0), Err(Refused::RateLimited));
        // The next second it has its whole budget again.
        assert_eq!(g.within_rate_at(member, 1), Ok(()));
        // Once it is no member any more, it is a stranger again (one of its three this
        // second is used).
        g.set_members([]);
        assert!(!g.is_member(member));
        for _ in 0..2 {
            assert_eq!(g.within_rate_at(member, 1), Ok(()));
        }
        assert_eq!(g.within_rate_at(member, 1), Err(Refused::RateLimited));
        assert_eq!(member_rate(u32::MAX), u32::MAX);
        assert_eq!(member_rate(50_000), 50_000 * IP_SHARE);
    }

    #[test]
    fn key_files_round_trip_and_are_private() {
        let dir = std::env::temp_dir().join(format!("ringchat-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("room.key");
        write_new_key(&path).unwrap();
        assert!(write_new_key(&path).is_err(), "never overwrites");
        let key = read_key(&path).unwrap();
        assert_ne!(key, [0u8; KEY_BYTES]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "zz").unwrap();
        assert!(matches!(read_key(&path), Err(KeyError::Format)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
