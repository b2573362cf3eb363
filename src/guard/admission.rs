//! Admission in a keyed room: the room key a user holds lets a newcomer *ask* to join;
//! it opens nothing sent between others. What it gets in answer is a join key of its own,
//! and the handshakes between members are sealed with a members' key that the leader
//! renews on every change of who is in the room.
//!
//! - **Asking.** A node outside the room (joining, restarting, back after `dereg`) sends
//!   a member an [`ASK`] sealed with the room key, carrying its identity's public key. A
//!   member that holds the room key answers with a [`GRANT`]: a fresh random join key,
//!   sealed to that identity (an ephemeral X25519 key agreed with it, as a sealed box), so
//!   only the identity that asked can read it, whoever captures the answer. The member
//!   hands the same join key to every online member over their sessions ([`JOIN_KEY`]),
//!   bound to the asker's address.
//! - **The join exchange** (join, challenge, proof, refusal, their acks) and a newcomer's
//!   first handshakes travel sealed with that join key ([`JOIN_SEALED`]). Each newcomer's
//!   exchange has its own key, known to it and to the members of the moment; a member that
//!   left, holding the room key, cannot open another's.
//! - **The members' key** seals the handshakes between members (their sessions carry the
//!   rest). The leader makes a new one whenever the set of online members changes (a
//!   join, an exit, a `dereg`, a death, or a new leader) and gives it to each online
//!   member over its session ([`KEY`], acknowledged by [`KEY_ACK`], sent again until
//!   acknowledged); a member takes it only from the leader it follows and only if it is
//!   newer than its own. The last [`KEPT_KEYS`] stay usable for opening, so a handshake
//!   from a member that missed a change (a partition) still opens.
//!
//! Sizes: an ask is [`ASK_LEN`] bytes and a grant [`GRANT_LEN`], smaller, so an answer
//! to a forged source never amplifies.

use crate::ids::NodeId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, XChaCha20Poly1305, XNonce};
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
/// First byte, inside a session, of a new members' key from the leader.
pub const KEY: u8 = 0xC1;
/// First byte, inside a session, of a member's acknowledgement of a members' key.
pub const KEY_ACK: u8 = 0xC2;
/// First byte, inside a session, of a join key handed to the other members.
pub const JOIN_KEY: u8 = 0xC3;

/// Length of an ask: `ASK | nonce (24) | sealed identity key (32 + 16) | padding`.
pub const ASK_LEN: usize = 160;
/// Length of a grant: `GRANT | ephemeral key (32) | sealed join key (32 + 16)`.
pub const GRANT_LEN: usize = 1 + 32 + 32 + 16;
const _: () = assert!(GRANT_LEN < ASK_LEN);
/// Length of a members' key message: `KEY | term (8) | number (8) | key (32)`.
const KEY_LEN: usize = 1 + 8 + 8 + 32;
/// Length of a join key handed on: `JOIN_KEY | address (19) | key (32)`.
const JOIN_KEY_LEN: usize = 1 + 19 + 32;

/// Members' keys kept for opening (the newest seals).
pub const KEPT_KEYS: usize = 8;
/// Join keys kept per address, and by a node for itself (the newest first).
const JOIN_KEYS_PER_ADDR: usize = 4;
/// A join key unused for this long is forgotten.
pub const JOIN_KEY_LIFE: Duration = Duration::from_secs(60);
/// Addresses whose join keys are kept at most (the least recently used go first).
const MAX_JOINING: usize = 1024;
/// Join keys handed out at most per second (asks beyond it get no answer).
const GRANTS_PER_SECOND: u32 = 50;
/// A node outside the room asks the same member again after this long.
pub const ASK_AGAIN: Duration = Duration::from_millis(400);
/// Datagrams of the join exchange kept while waiting for a join key.
const MAX_WAITING: usize = 64;
/// The leader waits this long after a change before it makes a new members' key, so
/// that changes in a burst (a ring forming) make one key.
pub const ROTATE_AFTER: Duration = Duration::from_millis(50);
/// How often the leader sends a members' key again to a member that has not acked it.
const KEY_AGAIN: Duration = Duration::from_millis(500);
/// How many times it tries.
const KEY_TRIES: u32 = 20;

/// Which members' key: the leader's term, then a count within it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyEpoch {
    /// The term of the leader that made it.
    pub term: u64,
    /// Its number within that term.
    pub n: u64,
}

/// What admission did so far, for `status` and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionCounts {
    /// Join keys this node handed out.
    pub granted: u64,
    /// Join keys this node was given.
    pub taken: u64,
    /// Members' keys this node made (as leader).
    pub made: u64,
    /// Members' keys this node took from its leader.
    pub renewed: u64,
}

/// A join key and when it was last used.
#[derive(Clone, Copy)]
struct JoinKey {
    key: [u8; 32],
    used: Instant,
}

/// A members' key the leader is still handing to a member.
struct Handing {
    addr: SocketAddr,
    next: Instant,
    tries: u32,
}

/// The admission state of one node.
pub struct Admission {
    me: NodeId,
    /// This node's identity (ed25519 public key), sent in its asks.
    identity: [u8; 32],
    /// The X25519 form of its secret, which opens grants.
    private: [u8; 32],
    /// Members' keys, the newest first.
    keys: VecDeque<(KeyEpoch, [u8; 32])>,
    /// Join keys handed to this node, the newest first.
    own: VecDeque<JoinKey>,
    /// Join keys of nodes joining at these addresses, the newest first.
    joining: HashMap<SocketAddr, VecDeque<JoinKey>>,
    /// When this node last asked a member at an address.
    asked: HashMap<SocketAddr, Instant>,
    /// When this node was last given a join key.
    granted_at: Option<Instant>,
    /// The join exchange waiting for a join key.
    waiting: VecDeque<(SocketAddr, Vec<u8>)>,
    outside: bool,
    online: Vec<(NodeId, SocketAddr)>,
    leader: Option<(NodeId, u64)>,
    /// The term and the online members the newest key was made for (as leader).
    made_for: Option<(u64, Vec<NodeId>)>,
    rotate_at: Option<Instant>,
    handing: HashMap<NodeId, Handing>,
    grant_second: (u64, u32),
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
    /// The admission state of node `me`, whose identity is `identity` (ed25519 public key)
    /// and the X25519 form of its secret `private`.
    pub fn new(me: NodeId, identity: [u8; 32], private: [u8; 32], now: Instant) -> Self {
        Admission {
            me,
            identity,
            private,
            keys: VecDeque::new(),
            own: VecDeque::new(),
            joining: HashMap::new(),
            asked: HashMap::new(),
            granted_at: None,
            waiting: VecDeque::new(),
            outside: true,
            online: Vec::new(),
            leader: None,
            made_for: None,
            rotate_at: None,
            handing: HashMap::new(),
            grant_second: (0, 0),
            started: now,
            counts: AdmissionCounts::default(),
        }
    }

    /// The newest members' key and its epoch, if this node holds one.
    pub fn members_key(&self) -> Option<(KeyEpoch, [u8; 32])> {
        self.keys.front().copied()
    }

    /// Every members' key kept, the newest first.
    pub fn members_keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.keys.iter().map(|(_, k)| k)
    }

    /// Whether this node is outside the room.
    pub fn is_outside(&self) -> bool {
        self.outside
    }

    /// Tells admission whether this node is outside the room and who is online (`online`:
    /// the other members' ids and addresses), and when it is.
    pub fn set_table(&mut self, now: Instant, outside: bool, online: Vec<(NodeId, SocketAddr)>) {
        if outside && !self.outside {
            // Out of the room: what this node held as a member says nothing about the
            // room it will come back to. It asks again.
            self.own.clear();
            self.asked.clear();
            self.granted_at = None;
        }
        if !outside {
            self.waiting.clear();
        }
        self.outside = outside;
        self.online = online;
        self.handing
            .retain(|id, _| self.online.iter().any(|(m, _)| m == id));
        self.consider(now);
    }

    /// Tells admission the leader this node follows and its term.
    pub fn set_leader(&mut self, now: Instant, leader: Option<(NodeId, u64)>) {
        if self.leader != leader {
            self.leader = leader;
            self.consider(now);
        }
    }

    /// As leader, schedules a new members' key when the online members changed since the
    /// last one (or there is none yet).
    fn consider(&mut self, now: Instant) {
        let Some((leader, term)) = self.leader else {
            return;
        };
        if leader != self.me || self.outside {
            self.rotate_at = None;
            return;
        }
        let mut ids: Vec<NodeId> = self.online.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        if self.keys.is_empty() {
            // A leader without a key (a room just created): one at once.
            self.rotate_at = Some(now);
        } else if self.made_for.as_ref() != Some(&(term, ids)) {
            self.rotate_at.get_or_insert(now + ROTATE_AFTER);
        } else {
            self.rotate_at = None;
        }
    }

    /// When [`Admission::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let handing = self.handing.values().map(|h| h.next).min();
        match (self.rotate_at, handing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Makes a new members' key when one is due, and hands the newest to members that
    /// have not acked it; what to send goes to `send`.
    pub fn handle_timeout(&mut self, now: Instant, send: &mut Vec<Send>) {
        if self.rotate_at.is_some_and(|t| t <= now) {
            self.rotate_at = None;
            self.rotate(now);
        }
        let Some((epoch, key)) = self.members_key() else {
            return;
        };
        let frame = key_frame(epoch, &key);
        let mut done = Vec::new();
        for (id, h) in self.handing.iter_mut() {
            if h.next > now {
                continue;
            }
            if h.tries >= KEY_TRIES {
                done.push(*id);
                continue;
            }
            h.tries += 1;
            h.next = now + KEY_AGAIN;
            send.push(Send::Session(h.addr, frame.clone()));
        }
        for id in done {
            tracing::debug!("gave up handing members' key {epoch:?} to {id}");
            self.handing.remove(&id);
        }
    }

    /// As leader: a new members' key for the online members of now.
    fn rotate(&mut self, now: Instant) {
        let Some((leader, term)) = self.leader else {
            return;
        };
        if leader != self.me || self.outside {
            return;
        }
        let mut ids: Vec<NodeId> = self.online.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let newest = self.keys.front().map(|(e, _)| *e).unwrap_or_default();
        let epoch = if newest.term >= term {
            KeyEpoch {
                term: newest.term,
                n: newest.n + 1,
            }
        } else {
            KeyEpoch { term, n: 1 }
        };
        self.install(epoch, rand::random());
        self.counts.made += 1;
        self.made_for = Some((term, ids));
        self.handing = self
            .online
            .iter()
            .map(|(id, addr)| {
                let h = Handing {
                    addr: *addr,
                    next: now,
                    tries: 0,
                };
                (*id, h)
            })
            .collect();
        tracing::info!(
            "made members' key {}.{} for {} online members",
            epoch.term,
            epoch.n,
            self.online.len()
        );
    }

    pub(super) fn install(&mut self, epoch: KeyEpoch, key: [u8; 32]) {
        self.keys.push_front((epoch, key));
        self.keys.truncate(KEPT_KEYS);
    }

    /// Takes a control message that opened in the session with member `peer` at `from`;
    /// what to answer goes to `send`. `false` if it was malformed or not to be taken.
    pub fn on_control(
        &mut self,
        now: Instant,
        peer: NodeId,
        from: SocketAddr,
        frame: &[u8],
        send: &mut Vec<Send>,
    ) -> bool {
        match frame.first() {
            Some(&KEY) if frame.len() == KEY_LEN => {
                let epoch = KeyEpoch {
                    term: u64_at(frame, 1),
                    n: u64_at(frame, 9),
                };
                if self.leader.map(|(l, _)| l) != Some(peer) {
                    tracing::debug!("a members' key from {peer}, who is not our leader: ignored");
                    return false;
                }
                let newest = self.keys.front().map(|(e, _)| *e);
                if newest.is_none_or(|n| epoch > n) {
                    let mut key = [0u8; 32];
                    key.copy_from_slice(&frame[17..49]);
                    self.install(epoch, key);
                    self.counts.renewed += 1;
                    tracing::debug!("took members' key {}.{} from {peer}", epoch.term, epoch.n);
                }
                let mut ack = vec![KEY_ACK];
                ack.extend_from_slice(&frame[1..17]);
                send.push(Send::Session(from, ack));
                true
            }
            Some(&KEY_ACK) if frame.len() == 17 => {
                let epoch = KeyEpoch {
                    term: u64_at(frame, 1),
                    n: u64_at(frame, 9),
                };
                if self.members_key().map(|(e, _)| e) == Some(epoch) {
                    self.handing.remove(&peer);
                }
                true
            }
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
        keys.retain(|k| k.key != key);
        keys.push_front(JoinKey { key, used: now });
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

    /// Notes that `key` opened what came from `from`: it is the one to answer with.
    pub fn used(&mut self, now: Instant, from: SocketAddr, key: &[u8; 32]) {
        if let Some(keys) = self.joining.get_mut(&from)
            && let Some(i) = keys.iter().position(|k| &k.key == key)
        {
            let mut k = keys.remove(i).unwrap_or(JoinKey {
                key: *key,
                used: now,
            });
            k.used = now;
            keys.push_front(k);
            return;
        }
        if let Some(i) = self.own.iter().position(|k| &k.key == key) {
            let mut k = self.own.remove(i).unwrap_or(JoinKey {
                key: *key,
                used: now,
            });
            k.used = now;
            self.own.push_front(k);
        }
    }

    /// The join key to seal what goes to `to` with: a member uses the newest key of the
    /// node joining there; a node outside the room its own newest. `None` if there is none.
    pub fn join_key_for(&self, now: Instant, to: SocketAddr) -> Option<[u8; 32]> {
        let fresh = |k: &&JoinKey| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE;
        if self.outside {
            return self.own.iter().find(fresh).map(|k| k.key);
        }
        self.joining
            .get(&to)
            .and_then(|keys| keys.iter().find(fresh))
            .or_else(|| self.own.iter().find(fresh))
            .map(|k| k.key)
    }

    /// Whether a node joins at `to` (a member holds a join key for it).
    pub fn joins_at(&self, now: Instant, to: SocketAddr) -> bool {
        self.joining.get(&to).is_some_and(|keys| {
            keys.iter()
                .any(|k| now.saturating_duration_since(k.used) < JOIN_KEY_LIFE)
        })
    }

    /// Outside the room: whether to ask the member at `to` for a join key now, noting
    /// that we do. A node asks when it has no join key, or when it got its last one more
    /// than [`ASK_AGAIN`] ago and still joins (the members that hold it may have lost it);
    /// never the same member twice within [`ASK_AGAIN`].
    pub fn should_ask(&mut self, now: Instant, to: SocketAddr) -> bool {
        if !self.outside {
            return false;
        }
        if self
            .granted_at
            .is_some_and(|at| now.saturating_duration_since(at) < ASK_AGAIN)
        {
            return false;
        }
        if self
            .asked
            .get(&to)
            .is_some_and(|at| now.saturating_duration_since(*at) < ASK_AGAIN)
        {
            return false;
        }
        if self.asked.len() >= MAX_JOINING {
            self.asked.clear();
        }
        self.asked.insert(to, now);
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

    /// An ask for a join key, sealed with the room key `room`.
    pub fn ask(&self, room: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ASK_LEN);
        out.push(ASK);
        let nonce: [u8; 24] = rand::random();
        out.extend_from_slice(&nonce);
        let cipher = XChaCha20Poly1305::new(room.into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &self.identity,
                    aad: &[ASK],
                },
            )
            .unwrap_or_default();
        out.extend_from_slice(&sealed);
        out.resize(ASK_LEN, 0);
        out
    }

    /// Answers an ask that came from `from`, if this node is a member holding the room key
    /// `room`: the grant for the asker, and the join key for every
    /// online member; nothing from a node outside the room. `Err` with why an ask is bad.
    pub fn answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        room: &[u8; 32],
        ask: &[u8],
        send: &mut Vec<Send>,
    ) -> Result<(), &'static str> {
        if ask.len() != ASK_LEN || ask[0] != ASK {
            return Err("a malformed ask");
        }
        if self.outside {
            // Not a member (yet, or any more): not for us to let anyone in. Not a fault
            // of the asker's (a room's creator is asked before its first table, say):
            // it asks again.
            tracing::debug!("an ask from {from}, and this node is not in the room: no answer");
            return Ok(());
        }
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&ask[1..25]);
        let cipher = XChaCha20Poly1305::new(room.into());
        let identity = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ask[25..25 + 32 + 16],
                    aad: &[ASK],
                },
            )
            .map_err(|_| "an ask that does not open with the room key")?;
        let identity: [u8; 32] = identity.try_into().map_err(|_| "a malformed ask")?;
        let second = now.saturating_duration_since(self.started).as_secs();
        if self.grant_second.0 != second {
            self.grant_second = (second, 0);
        }
        if self.grant_second.1 >= GRANTS_PER_SECOND {
            return Err("an ask over the grants' rate");
        }
        let key: [u8; 32] = rand::random();
        let grant = seal_grant(&identity, &key).ok_or("an ask from no valid identity")?;
        self.grant_second.1 += 1;
        self.counts.granted += 1;
        self.remember(now, from, key);
        send.push(Send::Wire(from, grant));
        let mut hand = vec![JOIN_KEY];
        hand.extend_from_slice(&addr_bytes(from));
        hand.extend_from_slice(&key);
        for (_, addr) in &self.online {
            send.push(Send::Session(*addr, hand.clone()));
        }
        Ok(())
    }

    /// Takes a grant that came from `from`: `true` if it opened and was for us (a node
    /// outside the room that asked there).
    pub fn take_grant(&mut self, now: Instant, from: SocketAddr, grant: &[u8]) -> bool {
        if !self.outside || !self.asked.contains_key(&from) {
            return false;
        }
        let Some(key) = open_grant(&self.private, &self.identity, grant) else {
            return false;
        };
        self.own.retain(|k| k.key != key);
        self.own.push_front(JoinKey { key, used: now });
        self.own.truncate(JOIN_KEYS_PER_ADDR);
        self.granted_at = Some(now);
        self.counts.taken += 1;
        true
    }
}

/// A members' key message.
fn key_frame(epoch: KeyEpoch, key: &[u8; 32]) -> Vec<u8> {
    let mut f = Vec::with_capacity(KEY_LEN);
    f.push(KEY);
    f.extend_from_slice(&epoch.term.to_le_bytes());
    f.extend_from_slice(&epoch.n.to_le_bytes());
    f.extend_from_slice(key);
    f
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// An address as 19 bytes: the IPv6 (or IPv4-mapped) address, the port, the family.
fn addr_bytes(addr: SocketAddr) -> [u8; 19] {
    let mut b = [0u8; 19];
    let (ip, v4) = match addr {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 1),
        SocketAddr::V6(a) => (*a.ip(), 0),
    };
    b[..16].copy_from_slice(&ip.octets());
    b[16..18].copy_from_slice(&addr.port().to_le_bytes());
    b[18] = v4;
    b
}

fn addr_from(b: &[u8]) -> Option<SocketAddr> {
    let octets: [u8; 16] = b.get(..16)?.try_into().ok()?;
    let ip = std::net::Ipv6Addr::from(octets);
    let port = u16::from_le_bytes([*b.get(16)?, *b.get(17)?]);
    match b.get(18)? {
        1 => Some(SocketAddr::new(ip.to_ipv4_mapped()?.into(), port)),
        0 => Some(SocketAddr::new(ip.into(), port)),
        _ => None,
    }
}

/// The AEAD key of a grant: HKDF-SHA256 over the agreed secret, salted with both public
/// keys.
fn grant_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    to: &MontgomeryPoint,
) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral.as_bytes());
    salt[32..].copy_from_slice(to.as_bytes());
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let mut key = [0u8; 32];
    let _ = hk.expand(b"ringchat join grant v1", &mut key);
    key
}

/// Seals join key `key` to the identity `identity` (ed25519 public key); `None` if it is
/// no valid key.
fn seal_grant(identity: &[u8; 32], key: &[u8; 32]) -> Option<Vec<u8>> {
    let to = MontgomeryPoint(super::statics::peer_static(identity)?);
    let secret: [u8; 32] = rand::random();
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret);
    let shared = to.mul_clamped(secret);
    if shared.as_bytes() == &[0u8; 32] {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(&grant_key(&shared, &ephemeral, &to).into());
    let mut out = Vec::with_capacity(GRANT_LEN);
    out.push(GRANT);
    out.extend_from_slice(ephemeral.as_bytes());
    // Each ephemeral key seals one grant: the zero nonce is never used twice with a key.
    let ct = cipher
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: key,
                aad: &out[..33],
            },
        )
        .ok()?;
    out.extend_from_slice(&ct);
    Some(out)
}

/// Opens a grant with the X25519 form of our secret `private` (our identity `identity`).
fn open_grant(private: &[u8; 32], identity: &[u8; 32], grant: &[u8]) -> Option<[u8; 32]> {
    if grant.len() != GRANT_LEN || grant[0] != GRANT {
        return None;
    }
    let mine = MontgomeryPoint(super::statics::peer_static(identity)?);
    let ephemeral = MontgomeryPoint(grant[1..33].try_into().ok()?);
    let shared = ephemeral.mul_clamped(*private);
    if shared.as_bytes() == &[0u8; 32] {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(&grant_key(&shared, &ephemeral, &mine).into());
    let key = cipher
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: &grant[33..],
                aad: &grant[..33],
            },
        )
        .ok()?;
    key.try_into().ok()
}

#[cfg(test)]
mod tests;
