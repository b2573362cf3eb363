//! The sessions table: one entry per member we may talk to, each with up to
//! [`MAX_SESSIONS`] sessions (the newest one we may send on is used; any live one opens),
//! the handshake we have in flight to it, and the datagrams waiting for that handshake.
//!
//! - **Who.** The node task gives the table the member table
//!   ([`Sessions::set_table`]): a member's static key follows from its ed25519 key. A
//!   handshake is taken only from a member's key, under the node id its entry has, and only
//!   if it names this node as its responder (the recipient is bound into the handshake,
//!   and so into every session key). A member that left by its own word (exit or `dereg`)
//!   gets none, and its sessions end when the table says so; one cut out by others keeps
//!   them, since a partition heals through it. While this node is outside the room
//!   (joining), it also takes a handshake from a key it does not know yet: the leader that
//!   admits it sends the welcome in a session; once in, it keeps only sessions with members.
//! - **When.** A datagram for a member with no session we may send on waits (at most
//!   [`MAX_QUEUED`]) while a handshake runs; the handshake is tried again with back-off
//!   ([`first_retry`], doubling up to [`MAX_RETRY`]) and given up after [`GIVE_UP`] (what
//!   waited is dropped; the protocol resends). A session is renewed when we send on it
//!   after [`REKEY_AFTER`], and used no more after [`REJECT_AFTER`](super::session::REJECT_AFTER).
//!   Both sides may start a handshake at once: each then sends on the session it started,
//!   and opens what comes in either.
//! - **Replay.** An initiation carries a timestamp that must exceed the last one taken
//!   from that member; a replayed one (from before a restart of ours, say) makes at most a
//!   session that is never confirmed, so never sent on. Transport datagrams have a window
//!   per session: a restart (either side's) starts new sessions, and old captures name
//!   none of them.

use super::Refused;
use super::frame::{
    INIT, INIT_LEN, INIT_PAYLOAD, RESPONSE, RESPONSE_LEN, RESPONSE_PAYLOAD, transport_header,
    u32_at, u64_at,
};
use super::phase::sender_of;
use super::session::{OpenError, Session, initiator, responder};
use super::statics::{PeerStatics, StaticKeys};
use crate::ids::NodeId;
use crate::wire::{Member, Presence};
use snow::HandshakeState;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use super::session::REKEY_AFTER;

/// Messages inside a session whose first byte is this or above are the guard's own (a
/// plain datagram starts with the protocol version).
pub const CONTROL: u8 = 0xC0;
/// Sessions kept per peer: the one we send on, one the peer may still send on, one new.
pub const MAX_SESSIONS: usize = 3;
/// Datagrams kept per peer while its handshake runs (the oldest goes first).
pub const MAX_QUEUED: usize = 256;
/// Peers taken on trust while outside the room (the oldest goes first).
const MAX_PROVISIONAL: usize = 4;
/// The longest wait before a handshake is tried again.
pub const MAX_RETRY: Duration = Duration::from_millis(1600);
/// A handshake unanswered for this long is given up, and what waited for it dropped.
pub const GIVE_UP: Duration = Duration::from_secs(10);
/// How often expired sessions are swept away.
const SWEEP: Duration = Duration::from_secs(10);
/// How often the table looks at who went quiet (see [`Sessions::handle_timeout`]).
const TICK: Duration = Duration::from_millis(500);
/// A peer we sent to but heard nothing from for this long gets a new handshake: it may
/// have lost our session (WireGuard's KEEPALIVE + REKEY_TIMEOUT, shorter here, as a room
/// notices a silent member within half a second).
pub const NEW_HANDSHAKE_AFTER: Duration = Duration::from_secs(2);
/// A peer that sent us something we have not answered for this long gets an empty
/// datagram, so that it does not take our silence for a lost session (WireGuard's
/// passive keepalive). Heartbeats go one way round the ring.
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(1);

/// The wait before the first retry of a handshake; it doubles with every try.
pub fn first_retry() -> Duration {
    Duration::from_millis(100)
}

/// A datagram the table wants sent.
#[derive(Debug)]
pub struct Out {
    /// Where to.
    pub to: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whether it still needs sealing, in a keyed room (a handshake message).
    pub seal: Seal,
}

/// How a datagram on its way out is sealed, in a keyed room (see `Guard::poll_transmit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Ready as it is: a session's datagram, or one sealed already.
    Ready,
    /// Our handshake initiation, its try (0 the first): under our pair key with the member
    /// there, or the join key of a node joining there.
    Initiation(u32),
    /// Our answer to an initiation: sealed as the initiation came (see [`Seal::Under`]),
    /// else as an initiation is.
    Response,
    /// Under this key, with this first byte: an answer sealed as what it answers came.
    Under(u8, [u8; 32]),
}

/// What the table did so far, for `status` and the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    /// Handshakes completed (either side).
    pub handshakes: u64,
    /// Datagrams dropped unsent: the queue was full, or the handshake was given up.
    pub unsent: u64,
}

/// Our handshake in flight to a peer.
struct Pending {
    handshake: HandshakeState,
    local: u32,
    /// When the first try of this round started.
    since: Instant,
    next_try: Instant,
    tries: u32,
}

/// One member (or, outside the room, one peer taken on trust).
struct Peer {
    id: NodeId,
    addr: SocketAddr,
    remote_static: [u8; 32],
    provisional: bool,
    /// Oldest first.
    sessions: Vec<Session>,
    pending: Option<Pending>,
    queue: VecDeque<Vec<u8>>,
    /// The largest initiation timestamp taken from this peer.
    last_stamp: u64,
    /// Since when we have sent it something in a session and heard nothing back.
    unanswered_since: Option<Instant>,
    /// Since when it has sent us something we have not answered (with anything).
    owed_since: Option<Instant>,
}

impl Peer {
    fn new(id: NodeId, addr: SocketAddr, remote_static: [u8; 32], provisional: bool) -> Self {
        Peer {
            id,
            addr,
            remote_static,
            provisional,
            sessions: Vec::new(),
            pending: None,
            queue: VecDeque::new(),
            last_stamp: 0,
            unanswered_since: None,
            owed_since: None,
        }
    }

    /// Every index of ours this peer holds.
    fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.sessions
            .iter()
            .map(|s| s.local)
            .chain(self.pending.as_ref().map(|p| p.local))
    }

    /// We sent it something now.
    fn sent(&mut self, now: Instant) {
        self.unanswered_since.get_or_insert(now);
        self.owed_since = None;
    }

    /// The session to send on: the newest confirmed one that has not expired.
    fn sending(&mut self, now: Instant) -> Option<&mut Session> {
        self.sessions
            .iter_mut()
            .rev()
            .find(|s| s.confirmed && !s.expired(now))
    }
}

/// The sessions of one node.
pub struct Sessions {
    me: NodeId,
    keys: StaticKeys,
    peers: HashMap<NodeId, Peer>,
    /// Which member a datagram for an address goes to.
    /// (and whether its entry says it is online).
    by_addr: HashMap<SocketAddr, (NodeId, bool)>,
    /// Our session and handshake indices, and whose they are.
    by_index: HashMap<u32, NodeId>,
    /// Outside the room: everything we send is the join exchange, and a handshake from
    /// an unknown key is taken (see the module doc).
    outside: bool,
    last_stamp: u64,
    next_sweep: Option<Instant>,
    next_tick: Option<Instant>,
    /// [`Sessions::poll_timeout`]'s answer, until something changes it.
    deadline: Option<Option<Instant>>,
    /// Members' static keys, kept from one table to the next.
    statics: PeerStatics,
    /// What was done so far.
    pub counts: SessionCounts,
}

impl Sessions {
    /// The sessions of node `me`, whose static keys are `keys`; no peer yet.
    pub fn new(me: NodeId, keys: StaticKeys) -> Self {
        Sessions {
            me,
            keys,
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            by_index: HashMap::new(),
            outside: true,
            last_stamp: 0,
            next_sweep: None,
            next_tick: None,
            deadline: None,
            statics: PeerStatics::default(),
            counts: SessionCounts::default(),
        }
    }

    /// Replaces who we hold sessions with by the member table `entries` (this node's own
    /// entry may be among them), and says whether this node is `outside` the room. Sessions
    /// with anyone no longer there (or whose key changed, or who left by its own word) end,
    /// and so do those taken on trust once inside, unless the table confirms them.
    pub fn set_table<'a>(&mut self, outside: bool, entries: impl IntoIterator<Item = &'a Member>) {
        if outside && !self.outside {
            // Out of the room (left, or deregistered): the members drop our sessions as
            // they hear of it, so we drop theirs, and come back with new ones.
            let all: Vec<NodeId> = self.peers.keys().copied().collect();
            for id in all {
                self.drop_peer(id);
            }
        }
        self.outside = outside;
        let mut wanted: HashMap<NodeId, (&Member, [u8; 32])> = HashMap::new();
        let mut best: HashMap<SocketAddr, &Member> = HashMap::new();
        self.statics.next_table();
        for m in entries {
            let left_by_own_word = m.presence == Presence::Offline && m.stamp.by == m.id;
            if m.id == self.me || left_by_own_word {
                continue;
            }
            let Some(remote) = self.statics.of(&m.key) else {
                continue;
            };
            wanted.insert(m.id, (m, remote));
            let rank = |m: &Member| (m.presence == Presence::Online, m.stamp);
            let slot = best.entry(m.addr).or_insert(m);
            if rank(m) > rank(slot) {
                *slot = m;
            }
        }
        let gone: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| match wanted.get(&p.id) {
                Some((_, remote)) => *remote != p.remote_static,
                None => !(p.provisional && outside),
            })
            .map(|p| p.id)
            .collect();
        for id in gone {
            self.drop_peer(id);
        }
        for (id, (m, remote)) in wanted {
            let peer = self
                .peers
                .entry(id)
                .or_insert_with(|| Peer::new(id, m.addr, remote, false));
            peer.provisional = false;
            peer.addr = m.addr;
        }
        self.by_addr = best
            .into_iter()
            .map(|(a, m)| (a, (m.id, m.presence == Presence::Online)))
            .collect();
    }

    /// Ends every session with `id` and forgets it.
    fn drop_peer(&mut self, id: NodeId) {
        self.deadline = None;
        if let Some(p) = self.peers.remove(&id) {
            for i in p.indices() {
                self.by_index.remove(&i);
            }
            self.counts.unsent += p.queue.len() as u64;
        }
    }

    /// The member at `to` that datagrams there go to in a session, if any (none while
    /// this node is outside the room), and whether its entry says it is online.
    pub fn peer_at(&self, to: SocketAddr) -> Option<(NodeId, bool)> {
        if self.outside {
            return None;
        }
        self.by_addr.get(&to).copied()
    }

    /// The static key (X25519) of the member datagrams for `to` go to, if any.
    pub fn static_at(&self, to: SocketAddr) -> Option<[u8; 32]> {
        let (id, _) = self.by_addr.get(&to)?;
        self.static_of(*id)
    }

    /// The static key (X25519) of member `id`, if we hold sessions with it (or may).
    pub fn static_of(&self, id: NodeId) -> Option<[u8; 32]> {
        self.peers.get(&id).map(|p| p.remote_static)
    }

    /// Whether we hold a session we may send on with the member at `to`.
    pub fn has_session(&mut self, now: Instant, to: SocketAddr) -> bool {
        let Some((id, _)) = self.by_addr.get(&to) else {
            return false;
        };
        self.peers
            .get_mut(id)
            .is_some_and(|p| p.sending(now).is_some())
    }

    /// Sends `plain` to the member at `to` in a session (at once, or once a handshake
    /// completes); `false` if `to` is no member we hold sessions with, or this node is
    /// outside the room: then `plain` belongs to the join exchange.
    pub fn send(
        &mut self,
        now: Instant,
        to: SocketAddr,
        plain: &[u8],
        out: &mut VecDeque<Out>,
    ) -> bool {
        if self.outside {
            return false;
        }
        let Some(&(id, _)) = self.by_addr.get(&to) else {
            return false;
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return false;
        };
        let idle = peer.pending.is_none();
        if let Some(session) = peer.sending(now) {
            let renew = session.stale(now);
            if let Some(bytes) = session.seal(plain) {
                peer.sent(now);
                out.push_back(Out {
                    to,
                    bytes,
                    seal: Seal::Ready,
                });
                if renew && idle {
                    self.start_handshake(now, id, out);
                }
                return true;
            }
        }
        if peer.queue.len() >= MAX_QUEUED {
            peer.queue.pop_front();
            self.counts.unsent += 1;
        }
        peer.queue.push_back(plain.to_vec());
        if idle {
            self.start_handshake(now, id, out);
        }
        true
    }

    /// A fresh index of ours, not 0 and not in use.
    fn new_index(&self) -> u32 {
        loop {
            let i: u32 = rand::random();
            if i != 0 && !self.by_index.contains_key(&i) {
                return i;
            }
        }
    }

    /// Opens a transport datagram: the session's peer and the plain datagram, if it
    /// opened in a live session and claims that peer as its sender (or is one of the
    /// guard's own messages, [`super::admission`]'s, first byte [`CONTROL`] or above),
    /// `None` for an empty one (a confirmation).
    pub fn open(
        &mut self,
        now: Instant,
        datagram: &[u8],
        out: &mut VecDeque<Out>,
    ) -> Result<Option<(NodeId, Vec<u8>)>, Refused> {
        let (index, counter) = transport_header(datagram).ok_or(Refused::Unauthentic)?;
        let id = *self.by_index.get(&index).ok_or(Refused::NoSession)?;
        let peer = self.peers.get_mut(&id).ok_or(Refused::NoSession)?;
        let session = peer
            .sessions
            .iter_mut()
            .find(|s| s.local == index)
            .ok_or(Refused::NoSession)?;
        if session.expired(now) {
            return Err(Refused::NoSession);
        }
        let was_confirmed = session.confirmed;
        let plain = session.open(counter, datagram).map_err(|e| match e {
            OpenError::OutOfRange => Refused::OutOfRange(counter),
            OpenError::Replayed => Refused::Replayed(counter, id),
            OpenError::Unauthentic => Refused::Unauthentic,
        })?;
        peer.unanswered_since = None;
        if !plain.is_empty() {
            peer.owed_since.get_or_insert(now);
        }
        if !was_confirmed && !peer.queue.is_empty() {
            self.flush(now, id, false, out);
        }
        if plain.is_empty() {
            return Ok(None);
        }
        if plain[0] >= CONTROL {
            return Ok(Some((id, plain)));
        }
        match sender_of(&plain) {
            Some(claimed) if claimed == id => Ok(Some((id, plain))),
            claimed => Err(Refused::Impersonation {
                claimed: claimed.unwrap_or(NodeId(0)),
                peer: id,
            }),
        }
    }

    /// Tries handshakes again that are due, gives up those unanswered for [`GIVE_UP`], and
    /// now and then forgets expired sessions.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Out>) {
        // The node task calls this on every timer of its own (heartbeats, ten a second):
        // nothing is due before the deadline worked out last, which every change resets.
        if self.poll_timeout().is_none_or(|d| now < d) {
            return;
        }
        self.deadline = None;
        let due: Vec<(NodeId, bool)> = self
            .peers
            .values()
            .filter_map(|p| p.pending.as_ref().map(|h| (p.id, h)))
            .filter(|(_, h)| h.next_try <= now)
            .map(|(id, h)| (id, now.saturating_duration_since(h.since) >= GIVE_UP))
            .collect();
        for (id, give_up) in due {
            if give_up {
                if let Some(peer) = self.peers.get_mut(&id) {
                    let dropped = peer.queue.len() as u64;
                    peer.queue.clear();
                    if let Some(p) = peer.pending.take() {
                        self.by_index.remove(&p.local);
                    }
                    self.counts.unsent += dropped;
                }
            } else {
                self.start_handshake(now, id, out);
            }
        }
        if self.next_tick.is_some_and(|t| t <= now) {
            self.next_tick = None;
            self.look_for_silence(now, out);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = None;
            let mut gone = Vec::new();
            for p in self.peers.values_mut() {
                p.sessions.retain(|s| {
                    let keep = !s.expired(now);
                    if !keep {
                        gone.push(s.local);
                    }
                    keep
                });
            }
            for i in gone {
                self.by_index.remove(&i);
            }
            if self.peers.values().any(|p| !p.sessions.is_empty()) {
                self.sweep_later(now);
            }
        }
    }

    /// WireGuard's two timers, on every peer with a session: a new handshake to one we
    /// keep sending to without hearing back (it may have lost our session: dropped us and
    /// taken us back, say), and an empty datagram to one we hear from without answering.
    fn look_for_silence(&mut self, now: Instant, out: &mut VecDeque<Out>) {
        let mut renew = Vec::new();
        let mut any = false;
        let older = |t: Option<Instant>, d: Duration| {
            t.is_some_and(|t| now.saturating_duration_since(t) >= d)
        };
        for peer in self.peers.values_mut() {
            if peer.sessions.is_empty() {
                continue;
            }
            any = true;
            if older(peer.unanswered_since, NEW_HANDSHAKE_AFTER) && peer.pending.is_none() {
                peer.unanswered_since = None;
                renew.push(peer.id);
            }
            if older(peer.owed_since, KEEPALIVE_AFTER) {
                let addr = peer.addr;
                if let Some(bytes) = peer.sending(now).and_then(|s| s.seal(&[])) {
                    peer.owed_since = None;
                    out.push_back(Out {
                        to: addr,
                        bytes,
                        seal: Seal::Ready,
                    });
                }
            }
        }
        for id in renew {
            self.start_handshake(now, id, out);
        }
        if any {
            self.tick_later(now);
        }
    }

    fn tick_later(&mut self, now: Instant) {
        if self.next_tick.is_none() {
            self.deadline = None;
            self.next_tick = Some(now + TICK);
        }
    }

    fn sweep_later(&mut self, now: Instant) {
        self.tick_later(now);
        if self.next_sweep.is_none() {
            self.deadline = None;
            self.next_sweep = Some(now + SWEEP);
        }
    }

    /// When [`Sessions::handle_timeout`] should next be called: a handshake to try again
    /// ([`Sessions::poll_urgent`]), or the tick or sweep ([`Sessions::poll_lazy`]).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [self.poll_urgent(), self.poll_lazy()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When a handshake is next due to be tried again (worked out again only after a
    /// change: the node task asks after every burst of input).
    pub fn poll_urgent(&mut self) -> Option<Instant> {
        if let Some(d) = self.deadline {
            return d;
        }
        let d = self
            .peers
            .values()
            .filter_map(|p| p.pending.as_ref().map(|h| h.next_try))
            .min();
        self.deadline = Some(d);
        d
    }

    /// When the silence tick (keepalives, handshakes after silence) or the sweep of
    /// expired sessions is next due: neither needs its exact moment, so a wake the node
    /// task has anyway may take them (see the driver).
    pub fn poll_lazy(&self) -> Option<Instant> {
        self.next_tick.into_iter().chain(self.next_sweep).min()
    }

    /// How many peers have a session we may send on.
    pub fn live(&self, now: Instant) -> usize {
        self.peers
            .values()
            .filter(|p| p.sessions.iter().any(|s| s.confirmed && !s.expired(now)))
            .count()
    }
}

/// Adds `session` to `peer`'s, dropping the oldest beyond [`MAX_SESSIONS`]; returns the
/// indices of those dropped.
fn add_session(peer: &mut Peer, session: Session) -> Vec<u32> {
    peer.sessions.push(session);
    let excess = peer.sessions.len().saturating_sub(MAX_SESSIONS);
    peer.sessions.drain(..excess).map(|s| s.local).collect()
}

mod handshake;
#[cfg(test)]
mod tests;
