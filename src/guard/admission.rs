//! Admission in a keyed room: what a node holds lets it *ask* to join; it opens nothing
//! sent between others. What it gets in answer is a join key of its own; handshakes
//! between members are sealed with a key only that pair holds.
//!
//! - **Asking.** A node outside the room (joining, restarting, back after `dereg`) sends
//!   the node it contacts an [`ASK`] carrying its identity's public key and the time (an
//!   ask is answered once, and only within [`ASK_FRESH`]), sealed with one of
//!   ([`AskWith`], each in turn, one per ask):
//!   - its pair key with the member there, when it is a member coming back (it names its
//!     identity in the clear; a node whose table holds that identity answers);
//!   - the secret of a one-time invitation (only the member that minted it answers, for
//!     the first identity that used it: [`super::invitations`]);
//!   - the room key (every node that holds it answers).
//!
//!   The answer is a [`GRANT`]: a fresh random join key, sealed to that identity (an
//!   ephemeral X25519 key agreed with it, as a sealed box), so only the identity that
//!   asked can read it, whoever captures the answer. A member hands the same join key to
//!   every online member over their sessions ([`JOIN_KEY`]), bound to the asker's
//!   address. (A node outside the room answers too, for the join exchange with itself:
//!   nodes restarting at once tell each other so.)
//! - **The join exchange** (join, challenge, proof, refusal, their acks) and a newcomer's
//!   first handshakes travel sealed with that join key ([`JOIN_SEALED`]). Each newcomer's
//!   exchange has its own key, known to it and to the members of the moment; a member that
//!   left, whatever it holds, cannot open another's. An ask forged from a node's
//!   address makes a key that node does not hold: until something from the node opens
//!   with one of the keys held for it, what goes there goes under each of them, and a
//!   handshake only ever under the key that opened something.
//! - **Handshakes between members** are sealed with their pair key: HKDF-SHA256 over the
//!   X25519 agreement of their two static keys (the X25519 forms of their identities), so
//!   only those two can open them, and a node that holds no member's entry (a stranger, a
//!   member that left) costs no key agreement with one. So is the join exchange between
//!   two members (a partition healing), with a copy under each join key held for a node
//!   asking from that address. It follows from the identities:
//!   nothing to hand out, keep or renew, and the same after a restart or a partition.
//!
//! Sizes: an ask is [`ASK_LEN`] bytes and a grant [`GRANT_LEN`], smaller, so an answer
//! to a forged source never amplifies.

use curve25519_dalek::MontgomeryPoint;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// First byte of a datagram sealed with a join key (its layout is the room key's seal).
pub const JOIN_SEALED: u8 = 0xA4;
/// First byte of a request for a join key.
pub const ASK: u8 = 0xA5;
/// First byte of a join key sealed to the identity that asked.
pub const GRANT: u8 = 0xA6;
/// First byte, inside a session, of a join key handed to the other members.
pub const JOIN_KEY: u8 = 0xC3;

/// Length of an ask: `ASK | nonce (24) | sealed identity key and time (40 + 16) | kind of
/// key (1) | tag (16) | zero padding`. The kind and the tag are in the clear (and bound as
/// associated data): they say which key opens it, so that a node tries one key per ask.
pub const ASK_LEN: usize = 160;
/// What an ask seals: the identity key (32) and the time (8).
const ASK_BODY: usize = 32 + 8;
/// Where an ask says which kind of key sealed it, followed by its tag.
pub(crate) const ASK_KIND: usize = 1 + 24 + ASK_BODY + 16;
/// Length of an ask's tag.
const TAG_LEN: usize = 16;
const _: () = assert!(ASK_KIND + 1 + TAG_LEN <= ASK_LEN);
/// An ask's kind: sealed with the room key (no tag).
pub(crate) const KIND_ROOM: u8 = 0;
/// An ask's kind: sealed with a pair key (the tag is [`pair_tag`] of it).
pub(crate) const KIND_PAIR: u8 = 1;
/// An ask's kind: sealed with an invitation's secret (the tag is its
/// [`invitations::locator`]).
pub(crate) const KIND_INVITATION: u8 = 2;
/// Asks to one address whose grants are still taken (an answer may come after a new ask).
const NONCES_KEPT: usize = 4;
/// Length of a grant: `GRANT | ephemeral key (32) | sealed join key (32 + 16)`.
pub const GRANT_LEN: usize = 1 + 32 + 32 + 16;
const _: () = assert!(GRANT_LEN < ASK_LEN);
/// Length of a join key handed on: `JOIN_KEY | address (19) | key (32)`.
const JOIN_KEY_LEN: usize = 1 + 19 + 32;

/// Join keys kept per address, and by a node for itself (the newest first).
const JOIN_KEYS_PER_ADDR: usize = 4;
/// A join key unused for this long is forgotten.
pub const JOIN_KEY_LIFE: Duration = Duration::from_secs(60);
/// Addresses whose join keys are kept at most (the least recently used go first).
const MAX_JOINING: usize = 1024;
/// Join keys handed out at most per second (asks beyond it get no answer).
const GRANTS_PER_SECOND: u32 = 50;
/// Join keys handed out at most per second to one IP address.
const GRANTS_PER_IP: u32 = 10;
/// An ask older or newer than this (by its sender's clock) is not answered.
pub const ASK_FRESH: Duration = Duration::from_secs(120);
/// Asks remembered (their nonces) to refuse a replay while they are fresh.
const MAX_ASKS_SEEN: usize = 4096;
/// A node outside the room asks the same member again after this long.
pub const ASK_AGAIN: Duration = Duration::from_millis(400);
/// Datagrams of the join exchange kept while waiting for a join key.
const MAX_WAITING: usize = 64;
/// Pair keys kept (computed once per peer; forgotten all at once past this).
const MAX_PAIR_KEYS: usize = 4096;

/// What admission did so far, for the tests and the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionCounts {
    /// Join keys this node handed out.
    pub granted: u64,
    /// Join keys this node was given.
    pub taken: u64,
}

/// A join key and when it was last used.
#[derive(Clone, Copy)]
struct JoinKey {
    key: [u8; 32],
    used: Instant,
    /// Whether something from the node it is for opened with it here: only then is it
    /// used for a handshake, or alone for the join exchange (an ask forged from that
    /// address makes keys that the node there does not hold).
    confirmed: bool,
    /// For a key granted to this node: where from (that node, and its room, hold it).
    by: Option<SocketAddr>,
}

/// The asks this node sent to one address: when the last went, their nonces and the keys
/// they were sealed with (a grant answering one is bound to both), and how many were sent
/// (each turns to the next kind of key this node can ask with).
#[derive(Clone, Default)]
struct Asked {
    at: Option<Instant>,
    nonces: VecDeque<([u8; 24], [u8; 32])>,
    sent: u32,
}

/// The admission state of one node.
pub struct Admission {
    /// This node's identity (ed25519 public key), sent in its asks.
    identity: [u8; 32],
    /// The X25519 form of its secret, which opens grants and agrees pair keys.
    private: [u8; 32],
    /// The X25519 form of its identity.
    public: [u8; 32],
    /// Pair keys by the peer's static key.
    pairs: HashMap<[u8; 32], [u8; 32]>,
    /// Join keys handed to this node, the newest first.
    own: VecDeque<JoinKey>,
    /// Join keys of nodes joining at these addresses, the newest first.
    joining: HashMap<SocketAddr, VecDeque<JoinKey>>,
    /// The ask this node last sent to an address (until a grant answers it).
    asked: HashMap<SocketAddr, Asked>,
    /// The join exchange waiting for a join key.
    waiting: VecDeque<(SocketAddr, Vec<u8>)>,
    outside: bool,
    online: Vec<SocketAddr>,
    /// The room's members, online or not, by the tag of their pair key with this node:
    /// their static keys (they ask under that pair key).
    known: HashMap<[u8; TAG_LEN], [u8; 32]>,
    /// The static key of the member at each address in the table (whatever its entry
    /// says): this node, coming back, asks it under their pair key.
    statics_at: HashMap<SocketAddr, [u8; 32]>,
    /// Members' static keys, kept from one table to the next.
    statics: super::statics::PeerStatics,
    grant_second: (u64, u32),
    /// Grants this second, per IP address.
    grants_by_ip: HashMap<std::net::IpAddr, u32>,
    /// Nonces of the asks answered lately, with when: a replayed ask is not answered.
    asks_seen: HashMap<[u8; 24], Instant>,
    started: Instant,
    /// What was done so far.
    pub counts: AdmissionCounts,
}

/// What to put on the wire: plain to an address, or in the session with a member there.
#[derive(Debug, PartialEq, Eq)]
pub enum Send {
    /// A datagram as it is (a grant, an ask).
    Wire(SocketAddr, Vec<u8>),
    /// A message for the session with the member at this address.
    Session(SocketAddr, Vec<u8>),
}

impl Admission {
    /// The admission state of a node whose identity is `identity` (ed25519 public key),
    /// the X25519 forms of its secret `private` and of its identity `public`.
    pub fn new(identity: [u8; 32], private: [u8; 32], public: [u8; 32], now: Instant) -> Self {
        Admission {
            identity,
            private,
            public,
            pairs: HashMap::new(),
            own: VecDeque::new(),
            joining: HashMap::new(),
            asked: HashMap::new(),
            waiting: VecDeque::new(),
            outside: true,
            online: Vec::new(),
            known: HashMap::new(),
            statics_at: HashMap::new(),
            statics: Default::default(),
            grant_second: (0, 0),
            grants_by_ip: HashMap::new(),
            asks_seen: HashMap::new(),
            started: now,
            counts: AdmissionCounts::default(),
        }
    }

    /// Whether this node is outside the room.
    pub fn is_outside(&self) -> bool {
        self.outside
    }

    /// Tells admission whether this node is outside the room, where the other online
    /// members are (they are handed the join keys this node grants), and every member of
    /// the room with its address and identity (ed25519), whatever its entry says (`known`:
    /// each may ask under its pair key with this node, and is asked so; where several are
    /// at one address, the last one given).
    pub fn set_table(
        &mut self,
        outside: bool,
        online: Vec<SocketAddr>,
        known: impl IntoIterator<Item = (SocketAddr, [u8; 32])>,
    ) {
        self.known.clear();
        self.statics_at.clear();
        self.statics.next_table();
        for (addr, identity) in known {
            let Some(theirs) = self.statics.of(&identity) else {
                continue;
            };
            let tag = pair_tag(&self.pair_key(&theirs));
            self.known.insert(tag, theirs);
            self.statics_at.insert(addr, theirs);
        }
        if outside && !self.outside {
            // Out of the room: what this node held as a member says nothing about the
            // room it will come back to. It asks again.
            self.own.clear();
            self.asked.clear();
        }
        if !outside {
            self.waiting.clear();
        }
        if !outside && self.outside {
            // In the room: our own join key sealed our join exchange with the members we
            // turned to, which are not joining. From now on we seal handshakes to them
            // under our pair keys: a new process at one of their addresses (a restart)
            // does not hold our key, and would open nothing from us for a minute.
            let own: Vec<[u8; 32]> = self.own.iter().map(|k| k.key).collect();
            self.joining.retain(|_, keys| {
                keys.retain(|k| !own.contains(&k.key));
                !keys.is_empty()
            });
        }
        self.outside = outside;
        self.online = online;
    }

    /// The key that seals handshakes between this node and the peer whose static key
    /// (X25519) is `theirs`: the same at both ends, and at nobody else.
    pub fn pair_key(&mut self, theirs: &[u8; 32]) -> [u8; 32] {
        if let Some(k) = self.pairs.get(theirs) {
            return *k;
        }
        if self.pairs.len() >= MAX_PAIR_KEYS {
            self.pairs.clear();
        }
        let shared = MontgomeryPoint(*theirs).mul_clamped(self.private);
        let (a, b) = if self.public <= *theirs {
            (&self.public, theirs)
        } else {
            (theirs, &self.public)
        };
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(a);
        salt[32..].copy_from_slice(b);
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
        let mut key = [0u8; 32];
        let _ = hk.expand(b"ringchat pair key v1", &mut key);
        self.pairs.insert(*theirs, key);
        key
    }

    /// The static key of the member at `to` in the table, if any: this node, coming back,
    /// asks it under their pair key.
    pub fn static_at(&self, to: SocketAddr) -> Option<[u8; 32]> {
        self.statics_at.get(&to).copied()
    }

    /// Takes a control message that opened in a session with a member: `false` if it was
    /// malformed or not to be taken.
    pub fn on_control(&mut self, now: Instant, frame: &[u8]) -> bool {
        match frame.first() {
            Some(&JOIN_KEY) if frame.len() == JOIN_KEY_LEN && !self.outside => {
                let Some(addr) = addr_from(&frame[1..20]) else {
                    return false;
                };
                let mut key = [0u8; 32];
                key.copy_from_slice(&frame[20..52]);
                self.remember(now, addr, key);
                true
            }
            _ => false,
        }
    }

    /// Keeps join key `key` for a node joining at `addr`.
    fn remember(&mut self, now: Instant, addr: SocketAddr, key: [u8; 32]) {
        if self.joining.len() >= MAX_JOINING && !self.joining.contains_key(&addr) {
            self.joining.retain(|_, keys| {
                keys.front()
                    .is_some_and(|k| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE)
            });
            if self.joining.len() >= MAX_JOINING {
                // All in use: the least recently used quarter goes (never all at once).
                let mut used: Vec<(Instant, SocketAddr)> = self
                    .joining
                    .iter()
                    .map(|(a, k)| (k.front().map_or(now, |k| k.used), *a))
                    .collect();
                used.sort_unstable();
                for (_, a) in &used[..used.len() / 4] {
                    self.joining.remove(a);
                }
            }
        }
        let keys = self.joining.entry(addr).or_default();
        if keys.iter().any(|k| k.key == key) {
            return;
        }
        keys.push_front(JoinKey {
            key,
            used: now,
            confirmed: false,
            by: None,
        });
        keys.truncate(JOIN_KEYS_PER_ADDR);
    }

    /// The join keys that may open what comes from `from` sealed with a join key: those
    /// of a node joining there, then this node's own.
    pub fn join_keys_from(&self, now: Instant, from: SocketAddr) -> Vec<[u8; 32]> {
        let fresh = |k: &&JoinKey| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE;
        let theirs = self.joining.get(&from).into_iter().flatten().filter(fresh);
        theirs
            .chain(self.own.iter().filter(fresh))
            .map(|k| k.key)
            .collect()
    }

    /// Notes that `key` opened what came from `from`: the node there holds it, and it is
    /// the one to answer with (whichever list it came from: a key this node granted, or
    /// one granted to it, as two nodes outside the room ask each other). This node's own
    /// keys stay fresh only while it is outside the room: once in, they expire
    /// [`JOIN_KEY_LIFE`] after their last use outside, whoever sends with them.
    pub fn used(&mut self, now: Instant, from: SocketAddr, key: &[u8; 32]) {
        let own = self.own.iter().position(|k| &k.key == key);
        if self.outside
            && let Some(i) = own
            && let Some(mut k) = self.own.remove(i)
        {
            k.used = now;
            self.own.push_front(k);
        }
        if own.is_some() && !self.outside {
            // A late answer to our own join: the member there is not joining (see
            // `set_table`).
            return;
        }
        self.remember(now, from, *key);
        if let Some(keys) = self.joining.get_mut(&from)
            && let Some(i) = keys.iter().position(|k| &k.key == key)
            && let Some(mut k) = keys.remove(i)
        {
            k.used = now;
            k.confirmed = true;
            keys.push_front(k);
        }
    }

    /// The join keys to seal what goes to `to` with (a copy under each): the key of the
    /// node joining there that opened something from it here; else every fresh key held
    /// for it (one of them is its own: the others came from asks forged from its address,
    /// which it cannot open, so they cost it nothing); else this node's own newest (for a
    /// node outside the room, asked by nobody at `to`). Empty if there is none.
    pub fn join_keys_for(&self, now: Instant, to: SocketAddr) -> Vec<[u8; 32]> {
        let fresh = |k: &&JoinKey| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE;
        if let Some(k) = self.confirmed_for(now, to) {
            return vec![k];
        }
        let held = self.held_for(now, to);
        if !held.is_empty() {
            return held;
        }
        self.own
            .iter()
            .filter(fresh)
            .find(|k| k.by == Some(to))
            .or_else(|| self.own.iter().find(fresh))
            .map(|k| k.key)
            .into_iter()
            .collect()
    }

    /// Every fresh join key held for a node joining at `to`, the newest first.
    pub fn held_for(&self, now: Instant, to: SocketAddr) -> Vec<[u8; 32]> {
        let fresh = |k: &&JoinKey| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE;
        let keys = self.joining.get(&to).into_iter().flatten().filter(fresh);
        keys.map(|k| k.key).collect()
    }

    /// The join key `to` confirmed here (something from there opened with it), if any.
    pub fn confirmed_for(&self, now: Instant, to: SocketAddr) -> Option<[u8; 32]> {
        self.joining.get(&to).and_then(|keys| {
            keys.iter()
                .find(|k| k.confirmed && now.saturating_duration_since(k.used) < JOIN_KEY_LIFE)
                .map(|k| k.key)
        })
    }

    /// The join key to seal a handshake for `to` with: that of the node joining there
    /// that opened something from it here, else this node's own newest (outside the
    /// room, or for a member not in our table yet).
    pub fn handshake_key_for(&self, now: Instant, to: SocketAddr) -> Option<[u8; 32]> {
        let fresh = |k: &&JoinKey| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE;
        self.joining
            .get(&to)
            .and_then(|keys| keys.iter().filter(fresh).find(|k| k.confirmed))
            .or_else(|| self.own.iter().find(fresh))
            .map(|k| k.key)
    }

    /// Whether a node joins at `to`: a join key for it opened something from there.
    pub fn joins_at(&self, now: Instant, to: SocketAddr) -> bool {
        self.joining.get(&to).is_some_and(|keys| {
            keys.iter()
                .any(|k| k.confirmed && now.saturating_duration_since(k.used) < JOIN_KEY_LIFE)
        })
    }

    /// Outside the room: whether to ask the node at `to` for a join key now (none asked
    /// there within [`ASK_AGAIN`]), noting that we do. A node asks each node it turns to:
    /// one outside the room (restarting too) knows only the keys it granted itself.
    pub fn should_ask(&mut self, now: Instant, to: SocketAddr) -> bool {
        if !self.outside {
            return false;
        }
        if self
            .asked
            .get(&to)
            .and_then(|a| a.at)
            .is_some_and(|at| now.saturating_duration_since(at) < ASK_AGAIN)
        {
            return false;
        }
        if self.asked.len() >= MAX_JOINING && !self.asked.contains_key(&to) {
            self.asked.clear();
        }
        self.asked.entry(to).or_default().at = Some(now);
        true
    }

    /// Keeps a datagram of the join exchange for `to` until a join key comes.
    pub fn wait(&mut self, to: SocketAddr, plain: Vec<u8>) {
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.waiting.push_back((to, plain));
    }

    /// What waited for a join key.
    pub fn take_waiting(&mut self) -> VecDeque<(SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.waiting)
    }
}

mod asking;
mod grant;
use asking::pair_tag;
pub use asking::{AskKeys, AskWith};
use grant::{addr_bytes, addr_from};

#[cfg(test)]
mod tests;
