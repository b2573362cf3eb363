//! The datagram guard, on the I/O side of the node: pairwise sessions between members
//! (every datagram authenticated to its sender), admission (a one-time invitation, a
//! member's pair key or the room key lets a node ask for a join key of its own, which
//! seals its join exchange), replay windows, and a per-source rate limit applied before
//! any expensive work.
//!
//! **Sessions** ([`sessions`]). Every member's static key is the X25519 form of its
//! ed25519 identity ([`statics`]); members hold Noise IK sessions with each other (the
//! WireGuard design: a handshake per pair, keys per session, an index and a counter in each
//! datagram, a replay window per session, renewal after [`sessions::REKEY_AFTER`]). A
//! datagram that opens in a session reaches the node only if its envelope names that
//! session's peer as its sender. Only the join exchange travels outside a session
//! ([`phase`]): plain in a room without a key, sealed with a join key (or, between two
//! members, their pair key) in one with a key; anything else found there is refused, and
//! never sent so. A guard made without an
//! identity ([`Guard::new`] alone) seals everything with the room key, as before sessions
//! (kept to measure what sessions cost).
//!
//! **Keys outside sessions** ([`admission`]). In a keyed room a node outside the room
//! asks a member for a join key of its own (under their pair key if it is a member coming
//! back, the secret of a one-time invitation that member minted ([`invitations`]), or the
//! room key), granted sealed to its identity; the join exchange travels sealed with that
//! join key ([`JOIN_SEALED`]), and handshakes between members with their pair key, from
//! their two identities ([`SEALED`]). A guard without sessions seals everything with the
//! room key itself. A sealed datagram is
//! `first byte | sender id (8, LE) | packet number (8, LE) | nonce (24) | ciphertext+tag`,
//! where the header before the ciphertext is the associated data, and the plaintext is
//! the plain datagram (`wire::encode`'s output) or a handshake message. XChaCha20-Poly1305
//! with a random 24-byte nonce per datagram. Packet numbers grow per sending process; the
//! receiver keeps a sliding window of [`REPLAY_WINDOW`] numbers per claimed sender id for
//! the join exchange (handshakes have their own defence, see [`sessions`]).
//!
//! The rate limit never cuts a member: the node task tells the guard the member table
//! ([`Guard::set_table`]), and a member's address has a budget of its own,
//! [`member_rate`], far above what the protocol itself sends from one address, and is not
//! counted toward its IP's cap. Strangers (joins, floods, spoofed sources on a member's
//! host) keep the per-source limit and the per-IP cap. A flood that claims a member's own
//! address (IP and port) is still capped at the member budget.
//!
//! The node task opens and seals datagrams. The guard works through `&self` (its tables
//! are `DashMap`s, its sessions behind a mutex, its counters atomics), so it can also be
//! shared by reference with other tasks, as the tests' stand-in peers do.

use crate::ids::NodeId;
use crate::wire::Member;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use dashmap::{DashMap, DashSet};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub mod admission;
pub mod frame;
pub mod invitations;
mod keyfile;
mod outside;
pub mod phase;
mod rate;
mod refused;
mod replay;
mod sealed;
mod timers;
pub use refused::{Refused, RefusedCounts};
pub mod session;
pub mod sessions;
pub mod statics;
use admission::{Admission, AdmissionCounts, AskKeys, JOIN_SEALED};
pub use invitations::Invitations;
pub use keyfile::{KeyError, read_key, write_new_key, write_private_beside};
use rate::Bucket;
pub use rate::{MEMBER_RATE, member_rate};
pub use replay::{REPLAY_WINDOW, ReplayWindow};
use sealed::window_of;
use sessions::{Out, Seal, Sessions};
pub use statics::StaticKeys;

/// First byte of a datagram sealed with the room key (without sessions) or, with sessions,
/// a pair key (plain ones start with the protocol version).
pub const SEALED: u8 = 0xA1;
pub use crate::wire::SEAL_OVERHEAD;
const HEADER: usize = 1 + 8 + 8 + 24;
const _: () = assert!(SEAL_OVERHEAD == HEADER + 16);
// A transport datagram adds less than the room key's seal, for which the wire keeps room.
const _: () = assert!(frame::TRANSPORT_OVERHEAD <= SEAL_OVERHEAD);
/// Length of a room key.
pub const KEY_BYTES: usize = 32;

/// A datagram the guard let through to the node, and how it came.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The plain datagram.
    pub plain: Cow<'a, [u8]>,
    /// Whether it came in a session with its sender; if not, it is the join exchange,
    /// which anyone may send from anywhere (see [`phase`]).
    pub in_session: bool,
}

/// What the guard keeps behind its mutex: the sessions, and what waits to be sent.
struct Inner {
    sessions: Option<Sessions>,
    /// Join keys and pair keys, in a keyed room with sessions.
    admission: Option<Admission>,
    out: VecDeque<Out>,
    /// Addresses a join exchange came from outside a session lately, and when: what is
    /// sent there is split (see [`phase::split_for`]), as the process there may be a new
    /// one (a restart) that holds no session yet. So is what goes to an offline member.
    joining_from: std::collections::HashMap<SocketAddr, Instant>,
}

/// How long an address that spoke the join exchange gets its replies split.
const JOINING_FOR: std::time::Duration = std::time::Duration::from_secs(20);
/// Addresses remembered for that at most (the oldest are forgotten first).
const JOINING_MAX: usize = 1024;
/// Room-key replay windows kept at most (the least recently used go first).
const MAX_WINDOWS: usize = 4096;

/// Sessions, sealing, replay windows and rate limits for one node.
pub struct Guard {
    /// What was refused so far.
    pub refused: RefusedCounts,
    last_logged: DashMap<IpAddr, Instant>,
    cipher: Option<XChaCha20Poly1305>,
    /// The room key itself: asks for a join key are sealed with it, and answered.
    room_key: Option<[u8; KEY_BYTES]>,
    /// Whether every datagram is sealed (a room key, or an invitation to a keyed room).
    keyed: bool,
    /// The secret of the one-time invitation this node joined with: its asks to the member
    /// that minted it go under it.
    invitation: Option<[u8; KEY_BYTES]>,
    /// The invitations this node minted: asks under them are answered here.
    invitations: Option<Arc<Invitations>>,
    me: NodeId,
    next_pn: AtomicU64,
    /// Room-key replay windows per claimed sender, each with when it was last used (a
    /// count of checks), so that the least recently used go first when they are many.
    windows: DashMap<NodeId, (ReplayWindow, u64)>,
    window_checks: AtomicU64,
    /// Per source address (IP and port): members on one host each keep their own share.
    buckets: DashMap<SocketAddr, Bucket>,
    /// Per source IP, a much larger cap over all its ports (strangers only).
    ip_buckets: DashMap<IpAddr, Bucket>,
    /// The addresses of the member table, as the node task last told them.
    members: DashSet<SocketAddr>,
    started: Instant,
    per_source_per_second: u32,
    inner: Mutex<Inner>,
}

impl Guard {
    /// A guard for node `me` without sessions: with `key`, every datagram is sealed with
    /// the room key and must open (see [`Guard::with_identity`] for sessions).
    /// `per_source_per_second` datagrams from one source IP are let through each second.
    pub fn new(me: NodeId, key: Option<[u8; KEY_BYTES]>, per_source_per_second: u32) -> Self {
        Guard {
            refused: RefusedCounts::default(),
            last_logged: DashMap::new(),
            cipher: key.map(|k| XChaCha20Poly1305::new(&k.into())),
            room_key: key,
            keyed: key.is_some(),
            invitation: None,
            invitations: None,
            me,
            next_pn: AtomicU64::new(1),
            windows: DashMap::new(),
            window_checks: AtomicU64::new(0),
            buckets: DashMap::new(),
            ip_buckets: DashMap::new(),
            members: DashSet::new(),
            started: Instant::now(),
            per_source_per_second,
            inner: Mutex::new(Inner {
                sessions: None,
                admission: None,
                out: VecDeque::new(),
                joining_from: Default::default(),
            }),
        }
    }

    /// The same guard, for a node that holds no room key but the secret of a one-time
    /// invitation (`Some`): the room is keyed, and this node asks the member that minted it
    /// with it (see [`invitations`]). Call it before [`Guard::with_identity`].
    pub fn with_invitation(mut self, secret: Option<[u8; KEY_BYTES]>) -> Self {
        if secret.is_some() {
            self.keyed = true;
        }
        self.invitation = secret;
        self
    }

    /// The same guard, answering asks under the invitations in `minted` (shared with what
    /// mints them, `invite`).
    pub fn with_invitations(mut self, minted: Option<Arc<Invitations>>) -> Self {
        self.invitations = minted;
        self
    }

    /// The same guard with sessions: members talk in pairwise sessions keyed from their
    /// identities (this node's ed25519 secret is `identity`), and only the join exchange
    /// travels outside them (see the module doc).
    pub fn with_identity(self, identity: &[u8; 32]) -> Self {
        let statics = StaticKeys::from_identity(identity);
        let public = ed25519_dalek::SigningKey::from_bytes(identity)
            .verifying_key()
            .to_bytes();
        let admission = self
            .is_keyed()
            .then(|| Admission::new(public, statics.private, statics.public, Instant::now()));
        let sessions = Sessions::new(self.me, statics);
        let mut inner = self.lock();
        inner.sessions = Some(sessions);
        inner.admission = admission;
        drop(inner);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether members talk in sessions here.
    pub fn has_sessions(&self) -> bool {
        self.lock().sessions.is_some()
    }

    /// Tells the guard the member table (`entries`, this node's own among them or not)
    /// and whether this node is `outside_room` (joining, or out after `dereg`): members'
    /// addresses get their own rate budget, and sessions are held with members only (see
    /// [`sessions`]). Call it whenever the table or that changes.
    pub fn set_table<'a>(&self, outside_room: bool, entries: impl IntoIterator<Item = &'a Member>) {
        let entries: Vec<&Member> = entries.into_iter().collect();
        let me = self.me;
        self.set_members(entries.iter().filter(|m| m.id != me).map(|m| m.addr));
        let online = entries
            .iter()
            .filter(|m| m.id != me && m.presence == crate::wire::Presence::Online)
            .map(|m| m.addr)
            .collect();
        // Every entry but ours, whatever it says (a member that left by its own word may
        // come back, and be asked as one); at one address the online and newest last.
        let mut known: Vec<&&Member> = entries.iter().filter(|m| m.id != me).collect();
        known.sort_by_key(|m| (m.presence == crate::wire::Presence::Online, m.stamp));
        let known = known
            .into_iter()
            .map(|m| (m.addr, m.key))
            .collect::<Vec<_>>();
        let mut inner = self.lock();
        if let Some(a) = inner.admission.as_mut() {
            a.set_table(outside_room, online, known);
        }
        if let Some(sessions) = inner.sessions.as_mut() {
            sessions.set_table(outside_room, entries);
        }
    }

    /// What admission did so far (nothing in a room without a key).
    pub fn admission_counts(&self) -> AdmissionCounts {
        self.lock()
            .admission
            .as_ref()
            .map(|a| a.counts)
            .unwrap_or_default()
    }

    /// Takes the node's datagram `plain` for `to`: sealed in the session with the member
    /// there (at once, or once its handshake completes), or, outside sessions, what of it
    /// is the join exchange (sealed with the room key when there is one). Collect what to
    /// send with [`Guard::poll_transmit`].
    pub fn send(&self, now: Instant, to: SocketAddr, plain: &[u8]) {
        let mut inner = self.lock();
        let Inner {
            sessions,
            admission,
            out,
            joining_from,
        } = &mut *inner;
        let Some(sessions) = sessions.as_mut() else {
            let Some(bytes) = self.seal(plain) else {
                return;
            };
            return out.push_back(Out {
                to,
                bytes,
                seal: Seal::Ready,
            });
        };
        // Where a new process may be (a join exchange came from there lately, or the member
        // there is offline: a restart at its address is not admitted yet), the join exchange
        // goes outside the session.
        let split = sessions
            .peer_at(to)
            .filter(|(_, online)| {
                !online
                    || joining_from
                        .get(&to)
                        .is_some_and(|at| now.saturating_duration_since(*at) < JOINING_FOR)
            })
            .map(|(id, _)| id);
        let (plain, inside): (Cow<[u8]>, Option<Vec<u8>>) = match split {
            None => (Cow::Borrowed(plain), None),
            Some(member) => match phase::split_for(plain, member) {
                (None, inside) => {
                    if let Some(inside) = inside {
                        sessions.send(now, to, &inside, out);
                    }
                    return;
                }
                (Some(outside), inside) => (Cow::Owned(outside), inside),
            },
        };
        if let Some(inside) = inside {
            sessions.send(now, to, &inside, out);
        } else if split.is_none() && sessions.send(now, to, &plain, out) {
            return;
        }
        let (kept, held) = phase::for_departure(&plain);
        if held > 0 {
            tracing::debug!("held back {held} packets for {to}: no session with it");
        }
        let Some(bytes) = kept else {
            return;
        };
        match admission.as_mut() {
            Some(admission) => self.seal_join(now, to, bytes, admission, out),
            None => out.push_back(Out {
                to,
                bytes,
                seal: Seal::Ready,
            }),
        }
    }

    /// The next datagram to put on the wire, and where.
    pub fn poll_transmit(&self) -> Option<(SocketAddr, Vec<u8>)> {
        loop {
            let mut inner = self.lock();
            let Inner {
                sessions,
                admission,
                out,
                ..
            } = &mut *inner;
            let o = out.pop_front()?;
            let try_no = match o.seal {
                Seal::Ready => return Some((o.to, o.bytes)),
                Seal::Under(first, key) => {
                    return Some((o.to, self.seal_under(first, &key, &o.bytes)));
                }
                Seal::Initiation(n) => n,
                Seal::Response => 0,
            };
            let Some(admission) = admission.as_mut() else {
                return Some((o.to, o.bytes));
            };
            let member = sessions.as_ref().and_then(|s| s.static_at(o.to));
            if let Some(bytes) = self.seal_handshake(o.to, &o.bytes, try_no, member, admission) {
                return Some((o.to, bytes));
            }
        }
    }

    /// Checks the source's rate, then takes a received datagram: the plain datagram for
    /// the node (a session's, whose sender is that session's peer; or the join exchange),
    /// `None` when it was for the guard itself (a handshake, a confirmation), or why it was
    /// refused. Without sessions, as [`Guard::open`].
    pub fn receive<'a>(
        &self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Result<Option<Opened<'a>>, Refused> {
        if !self.has_sessions() {
            // Every datagram sealed alike, as before sessions.
            return self.open(from, datagram).map(|plain| {
                Some(Opened {
                    plain,
                    in_session: true,
                })
            });
        }
        self.within_rate(from)?;
        let first = datagram.first().copied();
        let mut inner = self.lock();
        let Inner {
            sessions,
            admission,
            out,
            joining_from,
        } = &mut *inner;
        let sessions = sessions.as_mut().ok_or(Refused::NoSessions)?;
        let mut heard_join = |from: SocketAddr| {
            if joining_from.len() >= JOINING_MAX && !joining_from.contains_key(&from) {
                joining_from.retain(|_, at| now.saturating_duration_since(*at) < JOINING_FOR);
                if joining_from.len() >= JOINING_MAX {
                    // All recent: the oldest quarter goes (never all at once).
                    let mut ats: Vec<Instant> = joining_from.values().copied().collect();
                    ats.sort_unstable();
                    let keep_from = ats[ats.len() / 4];
                    joining_from.retain(|_, at| *at >= keep_from);
                }
            }
            joining_from.insert(from, now);
        };
        match first {
            Some(frame::TRANSPORT) => {
                let Some((peer, plain)) = sessions.open(now, datagram, out)? else {
                    return Ok(None);
                };
                if !joining_from.is_empty() {
                    // The process there holds a session with us: it is in the room.
                    joining_from.remove(&from);
                }
                if plain[0] >= sessions::CONTROL {
                    let admission = admission.as_mut().ok_or(Refused::Control(peer))?;
                    if !admission.on_control(now, &plain) {
                        return Err(Refused::Control(peer));
                    }
                    return Ok(None);
                }
                Ok(Some(Opened {
                    plain: Cow::Owned(plain),
                    in_session: true,
                }))
            }
            Some(frame::INIT | frame::RESPONSE) if self.is_keyed() => Err(Refused::NotSealed),
            Some(frame::INIT | frame::RESPONSE) => {
                sessions.on_handshake(now, from, datagram, out)?;
                Ok(None)
            }
            Some(SEALED) => {
                // In a keyed room with sessions, handshakes between members travel so, and
                // the join exchange between them, sealed with their pair key: the
                // sender's, from our table.
                let admission = admission.as_mut().ok_or(Refused::NoKey)?;
                let sender = datagram
                    .get(1..9)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| NodeId(u64::from_le_bytes(b)))
                    .ok_or(Refused::Unauthentic)?;
                let (theirs, new_process) = match sessions.static_of(sender) {
                    Some(theirs) => (theirs, false),
                    // A new process of the member our table holds at that address (a
                    // restart let in by a leader whose word never reached us): its
                    // identity is the member's, and only its holder seals under our pair
                    // key with it. It may show us the join exchange (a leader's voucher,
                    // see `proto/node/life/voucher.rs`); a session waits until our table
                    // lists it.
                    None => match (sessions.peer_at(from), sessions.static_at(from)) {
                        (Some((listed, _)), Some(theirs)) if listed != sender => (theirs, true),
                        _ => return Err(Refused::NotAMember(sender)),
                    },
                };
                let key = admission.pair_key(&theirs);
                let (_, pn, inner) = Self::open_under(&key, datagram)?;
                if new_process && matches!(inner.first(), Some(&(frame::INIT | frame::RESPONSE))) {
                    return Err(Refused::NotAMember(sender));
                }
                // A handshake, or the join exchange between two members (one healing
                // after a partition).
                self.take_sealed(
                    now,
                    from,
                    (SEALED, &key, sender, pn),
                    inner,
                    sessions,
                    out,
                    heard_join,
                )
            }
            Some(admission::ASK) => {
                let a = admission.as_mut().ok_or(Refused::NoKey)?;
                let keys = AskKeys {
                    room: self.room_key.as_ref(),
                    invitations: self.invitations.as_deref(),
                };
                let mut sends = Vec::new();
                a.answer(now, from, keys, datagram, &mut sends)
                    .map_err(Refused::Unanswered)?;
                Self::put(now, sessions, sends, out);
                Ok(None)
            }
            Some(admission::GRANT) => {
                let a = admission.as_mut().ok_or(Refused::NotAsked)?;
                if !a.take_grant(now, from, datagram) {
                    return Err(Refused::NotAsked);
                }
                for (to, plain) in a.take_waiting() {
                    self.seal_join(now, to, plain, a, out);
                }
                Ok(None)
            }
            Some(JOIN_SEALED) => {
                let admission = admission.as_mut().ok_or(Refused::NoKey)?;
                let keys = admission.join_keys_from(now, from);
                let (key, (sender, pn, inner)) = keys
                    .iter()
                    .find_map(|k| Self::open_under(k, datagram).ok().map(|o| (*k, o)))
                    .ok_or(Refused::Unauthentic)?;
                admission.used(now, from, &key);
                self.take_sealed(
                    now,
                    from,
                    (JOIN_SEALED, &key, sender, pn),
                    inner,
                    sessions,
                    out,
                    heard_join,
                )
            }
            _ if self.is_keyed() => Err(Refused::NotSealed),
            _ => {
                phase::check_arrival(datagram)?;
                heard_join(from);
                Ok(Some(Opened {
                    plain: Cow::Borrowed(datagram),
                    in_session: false,
                }))
            }
        }
    }

    /// Takes `inner`, opened outside a session under a pair key or a join key (`sealed`:
    /// the key, the sender its header claims, its packet number): a handshake goes to the
    /// sessions; the join exchange to the node, once its packet number is new in the
    /// window of that key and sender (so another key's holder cannot move it); anything
    /// else is refused.
    #[allow(clippy::too_many_arguments)]
    fn take_sealed(
        &self,
        now: Instant,
        from: SocketAddr,
        sealed: (u8, &[u8; KEY_BYTES], NodeId, u64),
        inner: Vec<u8>,
        sessions: &mut Sessions,
        out: &mut VecDeque<Out>,
        mut heard_join: impl FnMut(SocketAddr),
    ) -> Result<Option<Opened<'static>>, Refused> {
        if matches!(inner.first(), Some(&(frame::INIT | frame::RESPONSE))) {
            let before = out.len();
            sessions.on_handshake(now, from, &inner, out)?;
            // The answer goes sealed as the initiation came: the key it opened with is
            // one its sender holds (a member that left and came back through another
            // member holds no more the join key it first joined with here).
            let (first, key) = (sealed.0, *sealed.1);
            for o in out.iter_mut().skip(before) {
                if o.seal == Seal::Response && o.to == from {
                    o.seal = Seal::Under(first, key);
                }
            }
            return Ok(None);
        }
        if inner.first() == Some(&frame::TRANSPORT) {
            return Err(Refused::OutsideSession("a session datagram"));
        }
        phase::check_arrival(&inner)?;
        let (_, key, sender, pn) = sealed;
        self.check_window(window_of(key, sender), pn)?;
        heard_join(from);
        Ok(Some(Opened {
            plain: Cow::Owned(inner),
            in_session: false,
        }))
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
        self.keyed
    }
}

#[cfg(test)]
mod tests;
