//! [`Node`]: the whole protocol behind one sans-IO API.
//!
//! # Driving a node
//!
//! Feed it inputs:
//! - [`Node::handle_datagram`] for every datagram received,
//! - [`Node::handle_timeout`] when the deadline from [`Node::poll_timeout`] passes (calling
//!   it early or late is harmless),
//! - [`Node::handle_command`] for every user command.
//!
//! After **every** input, drain the outputs in this order:
//! 1. [`Node::poll_write`] until `None`, making each change durable (only with
//!    [`NodeConfig::persist`]; this comes first so nothing is acknowledged before it is
//!    on disk);
//! 2. [`Node::poll_read`] until `None`, answering each with [`Node::handle_read`] (only
//!    with [`NodeConfig::persist`]: room messages older than memory holds, read from the
//!    database for a member that asked for them);
//! 3. [`Node::poll_transmit`] until `None`, sending each datagram;
//! 4. [`Node::poll_event`] until `None`, showing each event;
//! 5. [`Node::poll_timeout`], and arm one timer for that instant.
//!
//! A node restarted from saved state is made with [`Node::restore`].
//!
//! A driver may instead handle a few inputs that are already waiting (a burst of
//! datagrams) and drain once after them: the packets they produce for one destination,
//! acks included, then share datagrams. The wait it adds to every answer is the time the
//! burst takes to handle, so keep bursts short.
//!
//! New messages to a peer that has earlier ones unacked may be held back until its ack
//! comes, for at most [`HOLD_LIMIT`](crate::proto::batch::HOLD_LIMIT) (Nagle's rule, see
//! `proto::batch`): the deadline is part of [`Node::poll_timeout`], so a driver that calls
//! [`Node::handle_timeout`] then sends them on time.
//!
//! Time is always an argument; the node never reads a clock, never sleeps, and draws
//! randomness only from its own seeded generator, so a run is reproducible.

#[macro_use]
mod context;
mod config;
mod dispatch;
mod life;
mod mail;
mod ring;
mod room;
mod token;
mod transport;
mod views;

pub use config::NodeConfig;
use dispatch::msg_kind;

use context::Context;
use life::{LifeToken, Lifecycle, Phase};
use mail::{MailToken, Mailbox};
use ring::{MAX_TERM, Ring, RingToken};
use room::{Binding, MAX_HELD, MAX_VOTERS, Room, RoomToken};
use token::{Fate, Token};
use transport::{Arrival, Transport};

use super::batch::Coalescer;
use super::chat::{
    Accepted, Chained, ClaimCheck, History, HoldBackQueue, MAX_HELD_PER_ORIGIN, MAX_HOLDBACK,
    Outbox, Pending, Sequencer, Vouched,
};
use super::clock::LamportClock;
use super::detector::Detector;
use super::disk::ReadRange;
use super::durable::{HistorySource, Restored, ShownDirect, Write};
use super::election::{Candidate, Decision, Election};
use super::event::{
    Command, CommandError, Event, JoinError, MemberView, RingSeat, Stats, StatusView,
};
use super::limits::{AmplificationBudget, JoinLimiter, JoinVerdict, Quiet};
use super::offline::{MAX_QUEUE_PER_SENDER, MAX_QUEUE_TOTAL, OfflineQueue};
use super::packet::{EncodedMessage, data_packet};
use super::reliable::{DedupeWindow, GaveUp, Reliable, Transmit};
use super::ring::{Change, MAX_MEMBERS, MEMBERS_PER_DATAGRAM, Membership};
use super::timers::{Timer, TimerTable};
use crate::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use crate::wire::{
    ChainLink, ChatEntry, DirectMessage, Epoch, Heartbeat, MAX_DIRECT_TEXT_BYTES, MAX_RECIPIENTS,
    MAX_TEXT_BYTES, Member, Message, Newcomer, Packet, Presence, Provenance, QueueLimit, QueuedDm,
    Refusal, Stamp, Submit, VotedRun, Voucher, Welcome, WireError, decode, encode_packet,
    proof_message, valid_name, voucher_message,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A ringchat node: membership, leader sequencing and direct messages as a pure state machine.
pub struct Node {
    ctx: Context,
    transport: Transport,
    ring: Ring,
    room: Room,
    mail: Mailbox,
    life: Lifecycle,
}

impl Node {
    /// Creates a node with identity `id` at time `now`. Without `cfg.join` it creates a room
    /// and leads it ([`Event::Joined`] is ready at once); with it, it sends a join request
    /// and waits for the welcome.
    pub fn new(cfg: NodeConfig, id: NodeId, now: Instant) -> Self {
        let mut node = Node::blank(cfg, id, now);
        match node.ctx.cfg.join {
            None => node.create_room(now),
            Some(contact) => node.start_join(now, contact),
        }
        node.start_recording();
        node
    }

    /// A node with nothing but its own entry, neither in a room nor joining one.
    fn blank(cfg: NodeConfig, id: NodeId, now: Instant) -> Self {
        let mut clock = LamportClock::default();
        let identity = SigningKey::from_bytes(&cfg.identity);
        let me = Member {
            id,
            name: cfg.name.clone(),
            addr: cfg.addr,
            presence: Presence::Online,
            key: identity.verifying_key().to_bytes(),
            stamp: Stamp {
                lamport: clock.tick(),
                by: id,
            },
        };
        let mut room = Room::new(&cfg);
        room.start_chain(id);
        Node {
            transport: Transport::new(&cfg),
            ring: Ring::new(me, &cfg, now),
            room,
            mail: Mailbox::new(cfg.rng_seed),
            life: Lifecycle::new(&cfg),
            ctx: Context::new(cfg, id, clock, now),
        }
    }
    /// With [`NodeConfig::persist`]: from now on, queue a [`Write`] for every change.
    fn start_recording(&mut self) {
        if self.ctx.cfg.persist {
            self.mail.record_changes();
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.ctx.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.ctx.cfg.name
    }

    /// The current Lamport time.
    pub fn lamport(&self) -> Lamport {
        self.ctx.clock.now()
    }

    /// The leader this node follows, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.ring.epoch().map(|e| e.leader)
    }

    /// The users of the voting configuration as this node last applied it: the room goes
    /// on while a majority of them is reachable.
    pub fn voters(&self) -> Vec<String> {
        self.room.voters().iter().cloned().collect()
    }

    /// The users of the configuration this node's log ends with, changes held but not yet
    /// applied included: whether it stands in an election as a voter (see
    /// `ring/election.rs`).
    pub fn log_voters(&self) -> Vec<String> {
        self.room.log_voters().iter().cloned().collect()
    }

    /// The leader and the election round it won, if any.
    pub fn epoch(&self) -> Option<Epoch> {
        self.ring.epoch()
    }

    /// The first room sequence number this node was given when it joined (1 for the
    /// creator): earlier messages were before its time.
    pub fn first_seq(&self) -> Seq {
        self.room.first_seq()
    }

    /// Whether this node leads and has finished taking over (it sequences messages).
    pub fn is_sequencing(&self) -> bool {
        self.room.is_sequencing()
    }

    /// Whether this node is in the room (welcomed and not leaving).
    pub fn is_member(&self) -> bool {
        self.life.is_member()
    }

    /// Whether this node is outside the room: joining (or restarting), offline after
    /// `dereg`, or done. The driver's guard then sends only the join exchange outside
    /// sessions, and takes a session from the leader that welcomes it.
    pub fn is_outside_room(&self) -> bool {
        matches!(
            self.life.phase(),
            Phase::Joining { .. } | Phase::Offline | Phase::Done
        )
    }

    /// The member table.
    pub fn members(&self) -> &Membership {
        self.ring.members()
    }

    /// The delivered room messages this node keeps.
    pub fn history(&self) -> &History {
        self.room.history()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        self.transport.stats()
    }

    /// Handles one received datagram from `from`. Any bytes are safe: bad input is
    /// dropped, counted in [`Stats::dropped`] and logged (at most once a second).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.receive(now, from, bytes, Arrival::Session);
    }

    /// Handles a datagram that came outside a session (see `guard::phase`): only the join
    /// exchange is taken from it, and kept apart from what sessions carry (see
    /// `transport.rs`). Any bytes are safe, as for [`Node::handle_datagram`].
    pub fn handle_outside_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.receive(now, from, bytes, Arrival::Outside);
    }

    fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8], arrival: Arrival) {
        self.ctx.now = self.ctx.now.max(now);
        self.notice_absence(now);
        self.transport.note_received();
        let env = match decode(bytes) {
            Ok(env) => env,
            Err(e) => return self.drop_datagram(now, from, &e.to_string()),
        };
        if env.from == self.ctx.id {
            return self.drop_datagram(now, from, "datagram claims our own node id");
        }
        if !LamportClock::in_range(env.lamport) {
            return self.drop_datagram(now, from, "Lamport time out of range");
        }
        let join = env.packets.iter().any(|p| {
            matches!(
                p,
                Packet::Data {
                    msg: Message::Join { .. },
                    ..
                }
            )
        });
        self.note_stranger_bytes(now, from, bytes.len(), join);
        if arrival == Arrival::Session
            && self
                .ring
                .members()
                .get(env.from)
                .is_some_and(|m| m.addr == from)
        {
            // A member that reaches us within a session holds our key: it knows of us.
            self.ring.in_touch(env.from);
        }
        for packet in env.packets {
            self.handle_packet(now, from, (env.from, env.lamport), packet, arrival);
        }
        self.bound_windows();
    }

    /// Handles the passing of time: retransmissions, give-ups and protocol timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ctx.now = self.ctx.now.max(now);
        self.notice_absence(now);
        let gave_up = self.transport.resend_due(now);
        self.on_gave_up(now, gave_up);
        for timer in self.ctx.timers.expire(now) {
            match timer {
                Timer::JoinDeadline => self.join_deadline(now),
                Timer::JoinRetry => self.send_join(now),
                Timer::GapRepair => self.repair_gap(now),
                Timer::Resubmit => self.resubmit(now),
                Timer::LeaveDeadline => self.leave_deadline(now),
                Timer::Heartbeat => self.on_heartbeat_timer(now),
                Timer::Probe => self.on_probe_timer(now),
                Timer::Election => self.on_election_timeout(now),
                Timer::Recovery => self.recovery_timed_out(now),
                Timer::RestartRound => self.look_for_room(now),
                Timer::LeaderCheck => self.on_leader_check(now),
                Timer::PreVote => self.on_prevote_timeout(now),
                // What waits is sealed when the outputs are drained (see `room/proof.rs`).
                Timer::SealRun => {}
            }
        }
    }

    /// Handles a user command at `now`; `wall` is the wall-clock time stamped on messages.
    /// A refused command yields [`Event::Error`] and changes nothing. `history` is answered
    /// from memory; see [`Node::handle_command_with`] for a node with a database.
    pub fn handle_command(&mut self, now: Instant, wall: WallMillis, cmd: Command) {
        self.handle_command_with(now, wall, cmd, None);
    }

    /// [`Node::handle_command`], with `history` answered from `source` (the node's
    /// database, which keeps more than memory) when there is one.
    pub fn handle_command_with(
        &mut self,
        now: Instant,
        wall: WallMillis,
        cmd: Command,
        source: Option<&dyn HistorySource>,
    ) {
        self.ctx.now = self.ctx.now.max(now);
        self.notice_absence(now);
        match cmd {
            Command::List => {
                let view = self.member_views();
                self.ctx.out.event(Event::Members(view));
            }
            Command::Status => {
                let view = self.status_view();
                self.ctx.out.event(Event::Status(Box::new(view)));
            }
            Command::SendAll { text } => self.send_all(now, wall, text),
            Command::Send { to, text } => self.send_direct(now, wall, to, text),
            // What was typed just before is sealed and sent first: the leave waits for it.
            Command::Leave => {
                self.flush_own_now();
                self.leave(now)
            }
            Command::Dereg { name } => {
                self.flush_own_now();
                self.dereg(now, name)
            }
            Command::Reg { name, via } => self.reg(now, name, via),
            Command::History { count, search } => {
                let searched = search.is_some();
                let found = match source {
                    None => Ok(self.room.search(count, search)),
                    Some(s) => s.history(count, search.as_deref()),
                };
                let answer = match found {
                    Ok(entries) => Event::History {
                        entries,
                        own: self.ctx.id,
                        searched,
                    },
                    Err(e) => Event::Error(CommandError::HistoryUnreadable(e)),
                };
                self.ctx.out.event(answer);
            }
        }
    }

    /// The datagrams the driver's guard has refused so far (bad seals, replays, rate
    /// limits): the node never sees them, so the driver reports the count, and `status`
    /// shows it as [`Stats::refused`].
    pub fn note_guard_refused(&mut self, total: u64) {
        self.transport.note_guard_refused(total);
    }

    /// The next change to make durable; drain these before [`Node::poll_transmit`]. Always
    /// `None` unless [`NodeConfig::persist`] is set. The first call after inputs also
    /// settles what they brought that waits for its origin's seal, and seals the own room
    /// messages typed since the last drain (see `room/proof.rs`): whatever that changes
    /// is made durable here too.
    pub fn poll_write(&mut self) -> Option<Write> {
        self.settle_waiting();
        self.flush_own();
        if !self.ctx.cfg.persist {
            return None;
        }
        for w in self.mail.take_journal() {
            self.ctx.out.write(w);
        }
        let members = self.ring.members();
        let lamport = self.ctx.clock.now();
        // A restarted node looking for its room holds the saved members and leader aside
        // (see `life/restart.rs`) until it is in: they stay on disk meanwhile, or a crash
        // during the search would leave a table of itself alone and no leader followed.
        let epoch = self.followed_epoch();
        let saved = self.life.saved_members();
        self.ctx
            .out
            .note_room(members.digest(), epoch, lamport, || {
                let mut entries: Vec<Member> = members.entries().cloned().collect();
                for m in saved {
                    if members.get(m.id).is_none() {
                        entries.push(m.clone());
                    }
                }
                entries
            });
        self.ctx.out.next_write()
    }

    /// The next range of room messages to read from the database, for a member that asked
    /// for messages older than memory holds; drain these after [`Node::poll_write`] and
    /// answer each with [`Node::handle_read`]. Always `None` unless [`NodeConfig::persist`]
    /// is set.
    pub fn poll_read(&mut self) -> Option<ReadRange> {
        self.room.next_read()
    }

    /// Hands back what the driver read for `read` (the entries of the current numbering
    /// from the first one at or after `read.from`, oldest first, as
    /// [`read_run`](crate::proto::read_run) says), or why it could not: they go to the
    /// member that asked, and the leader tells it what is kept nowhere. Entries out of the
    /// range, out of order or past `read.max` are dropped; an error is logged and nothing
    /// is sent (the member asks again).
    pub fn handle_read(
        &mut self,
        now: Instant,
        read: ReadRange,
        rows: Result<Vec<ChatEntry>, String>,
    ) {
        self.ctx.now = self.ctx.now.max(now);
        self.answer_read(now, read, rows);
    }

    /// The next datagram to send. The first call after inputs settles and seals as
    /// [`Node::poll_write`] does (if that was not called), then packs everything they
    /// queued (acks owed included) into datagrams, several packets per destination in one
    /// datagram where they fit: a driver that handles a burst of inputs before draining
    /// sends fewer, fuller datagrams. New messages to a peer that has earlier ones unacked
    /// may be held back until its ack comes, at most
    /// [`HOLD_LIMIT`](crate::proto::batch::HOLD_LIMIT) (see `proto::batch`); [`Node::poll_timeout`] includes that deadline.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.settle_waiting();
        self.flush_own();
        self.next_transmit()
    }

    /// The next event for the user or driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.out.next_event()
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.ctx.timers.next(), self.transport.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether this node is part of the ring (see [`Lifecycle::in_ring`]).
    fn in_ring(&self) -> bool {
        self.life.in_ring()
    }

    fn leader_addr(&self) -> Option<SocketAddr> {
        self.leader()
            .filter(|l| self.ring.members().is_online(*l))
            .and_then(|l| self.ring.members().get(l))
            .map(|m| m.addr)
    }

    fn is_leader(&self) -> bool {
        self.leader() == Some(self.ctx.id)
    }

    /// Refuses a user command: nothing changes, the user is told why.
    fn refuse_command(&mut self, e: CommandError) {
        self.ctx.out.event(Event::Error(e));
    }

    fn name_of(&self, id: NodeId) -> Option<String> {
        self.ring.members().get(id).map(|m| m.name.clone())
    }
}

/// Whether `text` may be sent: not blank, and within `limit` bytes.
fn check_text(text: &str, limit: usize) -> Result<(), CommandError> {
    if text.trim().is_empty() {
        Err(CommandError::Empty)
    } else if text.len() > limit {
        Err(CommandError::TooLong {
            len: text.len(),
            limit,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
