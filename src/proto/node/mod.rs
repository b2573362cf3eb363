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
//! 2. [`Node::poll_transmit`] until `None`, sending each datagram;
//! 3. [`Node::poll_event`] until `None`, showing each event;
//! 4. [`Node::poll_timeout`], and arm one timer for that instant.
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

mod admission;
mod config;
mod dispatch;
mod failover;
mod join;
mod presence;
mod recovery;
mod restart;
mod room;
mod transport;
mod views;

pub use config::NodeConfig;
use dispatch::msg_kind;

use super::batch::Coalescer;
use super::chat::{History, HoldBackQueue, Outbox, Sequencer};
use super::clock::LamportClock;
use super::detector::Detector;
use super::durable::Write;
use super::election::Election;
use super::event::{Command, Event, JoinError, MemberView, Stats, StatusView};
use super::offline::OfflineQueue;
use super::reliable::{DedupeWindow, GaveUp, Reliable, Transmit};
use super::ring::Membership;
use super::timers::{Timer, TimerTable};
use crate::ids::{DmId, Lamport, NodeId, Seq, WallMillis};
use crate::wire::{
    ChatEntry, DirectMessage, Epoch, Member, Message, Newcomer, Packet, Presence, Stamp, Submit,
    decode, encode_packet,
};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Where the node is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the welcome; holds the parts received so far.
    Joining {
        contact: SocketAddr,
        parts: BTreeMap<u16, Vec<Member>>,
    },
    /// In the room.
    Member,
    /// Leaving: waiting for own messages to commit (`notified == false`), then for the
    /// leave notices to be acked.
    Leaving { notified: bool },
    /// Deregistered: out of the ring but running, listed as offline; can `reg` again.
    Offline,
    /// Out of the room (left, or joining failed). Only acks are still handled.
    Done,
}

/// What a reliable message was for; returned by the reliability layer on ack or give-up.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Join,
    Control,
    Submit,
    /// A sequenced message; the number when it is the leader's own, awaiting a first ack.
    Sequenced(Option<Seq>),
    Direct {
        to: String,
        dm: DirectMessage,
    },
    LeaveNotice,
    /// A kept direct message replicated to a member; the first ack confirms it to the sender.
    Replica {
        origin: NodeId,
        id: DmId,
        to: u8,
    },
    /// A kept direct message handed to its recipient.
    Handover {
        to: String,
        origin: NodeId,
        id: DmId,
        idx: u8,
    },
    /// Re-registering with a leader learned of by gossip; given up, we stop waiting.
    Resync,
    /// A newcomer's join passed on to the leader; passed on again if that fails.
    Forward(Newcomer),
    /// An election token or announcement for the ring successor; rerouted if it dies.
    Ring(Message),
}

/// A new leader's state while it gathers the room messages survivors have.
#[derive(Debug, Default)]
struct Recovery {
    /// Members that have not answered yet.
    waiting: BTreeSet<NodeId>,
    /// Room messages each member said it sent us, and how many arrived.
    expected: BTreeMap<NodeId, u32>,
    received: BTreeMap<NodeId, u32>,
    /// The highest sequence number any survivor reported.
    high: Seq,
    /// Each answering member's next undelivered sequence number.
    member_next: BTreeMap<NodeId, Seq>,
    /// The first sequence number asked for.
    requested_from: Seq,
    /// Our own next undelivered number when we last asked (to see progress).
    asked_at: Seq,
    /// Whether the second round (asking from the lowest point any member still needs) ran.
    second_round: bool,
    /// Messages from before this leader's own history, gathered for members that lack them.
    backfill: BTreeMap<Seq, ChatEntry>,
    /// Submissions received meanwhile, sequenced once recovery ends.
    held_submits: Vec<(NodeId, Submit)>,
    /// Requests to keep direct messages received meanwhile, handled once recovery ends.
    held_stores: Vec<(SocketAddr, NodeId, u8, DirectMessage)>,
    /// Joins received meanwhile, admitted once recovery ends.
    held_joins: Vec<Newcomer>,
}

/// A ringchat node: membership, leader sequencing and direct messages as a pure state machine.
pub struct Node {
    ctx: Context,
    transport: Transport,
    ring: Ring,
    room: Room,
    mail: Mailbox,
    life: Lifecycle,
}

/// What every part uses: the settings, this node's id, the Lamport clock, the timers, and
/// the outputs other than datagrams.
struct Context {
    cfg: NodeConfig,
    id: NodeId,
    clock: LamportClock,
    timers: TimerTable,
    /// The time of the latest input (what is held back in the transport is judged by it).
    now: Instant,
    events: VecDeque<Event>,
    /// Changes to make durable (only with [`NodeConfig::persist`]).
    writes: VecDeque<Write>,
    /// The member table digest and epoch last written (to write the table on change).
    written_room: Option<(u64, Option<Epoch>)>,
    /// The Lamport time last written.
    written_clock: Lamport,
}

/// The transport: reliability, batching, outgoing datagrams and the counters.
struct Transport {
    reliable: Reliable<Token>,
    /// Packets queued for sending, packed into datagrams when the outputs are drained.
    outgoing: Coalescer,
    /// Datagrams ready to send.
    transmits: VecDeque<Transmit>,
    stats: Stats,
    last_drop_log: BTreeMap<SocketAddr, Instant>,
}

/// The ring: the member table, failure detection, heartbeats and the election.
struct Ring {
    members: Membership,
    epoch: Option<Epoch>,
    election: Election,
    detector: Detector,
    /// When the member table was last pushed to each node (anti-entropy rate limit).
    table_pushed: BTreeMap<NodeId, Instant>,
    /// Heartbeat rounds so far.
    beats: u64,
    /// The offline member probed last.
    last_offline_probe: Option<NodeId>,
    /// When each unknown sender was last answered with a heartbeat.
    strangers_answered: BTreeMap<SocketAddr, Instant>,
}

/// The room: the log (hold-back, history), the outbox of own messages, and the role.
struct Room {
    recovery: Option<Recovery>,
    sequencer: Option<Sequencer>,
    /// The leader's own sequenced messages not yet acked by any other member.
    unstable: BTreeMap<Seq, ChatEntry>,
    holdback: HoldBackQueue,
    history: History,
    outbox: Outbox,
    /// The highest sequence number heard of (from neighbours' heartbeats).
    known_high: Seq,
    /// See [`Node::first_seq`].
    first_seq: Seq,
    /// Gap repairs asked so far (alternates between the leader and other members).
    fetch_attempts: u64,
    /// Room messages below this number are shown as history.
    history_until: Seq,
}

/// The mailbox: direct messages, receipts, the offline queue and its hand-over.
struct Mailbox {
    /// Direct messages kept for offline members (replicated from the leader).
    offline: OfflineQueue,
    /// Kept messages awaiting a first replica's ack: where to confirm them.
    awaiting_replica: BTreeMap<(NodeId, DmId, u8), Option<SocketAddr>>,
    /// Recipients with a hand-over in flight.
    handing_over: BTreeSet<String>,
    /// Own direct messages for offline recipients, not yet confirmed saved.
    unsaved: BTreeMap<(DmId, u8), DirectMessage>,
    /// Direct messages shown, by origin (a message may arrive directly and again from the
    /// offline queue; it is shown once).
    seen_dms: BTreeMap<NodeId, DedupeWindow>,
    next_dm: u64,
}

/// The lifecycle: join, admission, dereg/reg, leave and restart.
struct Lifecycle {
    phase: Phase,
    /// This user's identity.
    identity: SigningKey,
    /// The node's own random generator, seeded from the configuration.
    rng: StdRng,
    /// Newcomers asked to prove their identity (the leader's side): nonce, who, when.
    pending_proofs: BTreeMap<NodeId, ([u8; 16], Newcomer, Instant)>,
    /// Joins per source address in the current second (the leader's side).
    join_throttle: BTreeMap<std::net::IpAddr, (Instant, u32)>,
    /// Whether the current leave ends offline (`dereg`) rather than in exit.
    going_offline: bool,
    /// Whether this node was in the room before (a `reg` after `dereg`).
    was_member: bool,
    /// Members still to try if coming back through the current one fails (last first).
    reg_contacts: Vec<SocketAddr>,
    /// The last "try again" refusal of the current join (reported if it never succeeds).
    join_refusal: Option<crate::wire::Refusal>,
    /// Set while re-registering with a leader learned of by gossip (after a partition).
    resyncing: bool,
    /// Set while a restarted node looks for its room (see `restart.rs`).
    restart: Option<restart::Restart>,
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
        Node {
            transport: Transport {
                reliable: Reliable::new(cfg.ack_timeout),
                outgoing: Coalescer::default(),
                transmits: VecDeque::new(),
                stats: Stats::default(),
                last_drop_log: BTreeMap::new(),
            },
            ring: Ring {
                members: Membership::new(me),
                epoch: None,
                election: Election::default(),
                detector: Detector::new(cfg.suspect_after(), cfg.dead_after(), cfg.join_timeout),
                table_pushed: BTreeMap::new(),
                beats: 0,
                last_offline_probe: None,
                strangers_answered: BTreeMap::new(),
            },
            room: Room {
                recovery: None,
                sequencer: None,
                unstable: BTreeMap::new(),
                holdback: HoldBackQueue::new(Seq(1)),
                history: History::new(cfg.history_limit),
                outbox: Outbox::default(),
                known_high: Seq(0),
                first_seq: Seq(1),
                fetch_attempts: 0,
                history_until: Seq(0),
            },
            mail: Mailbox {
                offline: OfflineQueue::default(),
                awaiting_replica: BTreeMap::new(),
                handing_over: BTreeSet::new(),
                unsaved: BTreeMap::new(),
                seen_dms: BTreeMap::new(),
                next_dm: 1,
            },
            life: Lifecycle {
                phase: Phase::Member,
                rng: StdRng::seed_from_u64(cfg.rng_seed),
                identity,
                pending_proofs: BTreeMap::new(),
                join_throttle: BTreeMap::new(),
                going_offline: false,
                was_member: false,
                reg_contacts: Vec::new(),
                join_refusal: None,
                resyncing: false,
                restart: None,
            },
            ctx: Context {
                id,
                clock,
                timers: TimerTable::default(),
                now,
                events: VecDeque::new(),
                writes: VecDeque::new(),
                written_room: None,
                written_clock: Lamport(0),
                cfg,
            },
        }
    }
    /// With [`NodeConfig::persist`]: from now on, queue a [`Write`] for every change.
    fn start_recording(&mut self) {
        if self.ctx.cfg.persist {
            self.mail.offline.record_changes();
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
        self.ring.epoch.map(|e| e.leader)
    }

    /// The leader and the election round it won, if any.
    pub fn epoch(&self) -> Option<Epoch> {
        self.ring.epoch
    }

    /// The first room sequence number this node was given when it joined (1 for the
    /// creator): earlier messages were before its time.
    pub fn first_seq(&self) -> Seq {
        self.room.first_seq
    }

    /// Whether this node leads and has finished taking over (it sequences messages).
    pub fn is_sequencing(&self) -> bool {
        self.room.sequencer.is_some()
    }

    /// Whether this node is in the room (welcomed and not leaving).
    pub fn is_member(&self) -> bool {
        self.life.phase == Phase::Member
    }

    /// The member table.
    pub fn members(&self) -> &Membership {
        &self.ring.members
    }

    /// The delivered room messages this node keeps.
    pub fn history(&self) -> &History {
        &self.room.history
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.transport.stats
    }

    /// Handles one received datagram from `from`. Any bytes are safe: bad input is
    /// dropped, counted in [`Stats::dropped`] and logged (at most once a second).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.ctx.now = self.ctx.now.max(now);
        self.transport.stats.received += 1;
        let env = match decode(bytes) {
            Ok(env) => env,
            Err(e) => return self.drop_datagram(now, from, &e.to_string()),
        };
        if env.from == self.ctx.id {
            return self.drop_datagram(now, from, "datagram claims our own node id");
        }
        if env.lamport > LamportClock::MAX_ACCEPTED {
            return self.drop_datagram(now, from, "Lamport time out of range");
        }
        for packet in env.packets {
            self.handle_packet(now, from, env.from, env.lamport, packet);
        }
    }

    /// Handles the passing of time: retransmissions, give-ups and protocol timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ctx.now = self.ctx.now.max(now);
        let mut out = Vec::new();
        let (resent, gave_up) = self.transport.reliable.poll_retransmits(now, &mut out);
        self.transport.stats.retransmitted += resent as u64;
        for t in out {
            self.transport.outgoing.push(t.to, t.bytes);
        }
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
                Timer::Recovery => self.finish_recovery(now),
                Timer::RestartRound => self.look_for_room(now),
            }
        }
    }

    /// Handles a user command at `now`; `wall` is the wall-clock time stamped on messages.
    /// A refused command yields [`Event::Error`] and changes nothing.
    pub fn handle_command(&mut self, now: Instant, wall: WallMillis, cmd: Command) {
        self.ctx.now = self.ctx.now.max(now);
        match cmd {
            Command::List => {
                let view = self.member_views();
                self.ctx.events.push_back(Event::Members(view));
            }
            Command::Status => {
                let view = self.status_view();
                self.ctx.events.push_back(Event::Status(view));
            }
            Command::SendAll { text } => self.send_all(now, wall, text),
            Command::Send { to, text } => self.send_direct(now, wall, to, text),
            Command::Leave => self.leave(now),
            Command::Dereg { name } => self.dereg(now, name),
            Command::Reg { name, via } => self.reg(now, name, via),
            Command::History { count, search } => {
                let wanted = search.map(|s| s.to_ascii_lowercase());
                let matches = |e: &ChatEntry| {
                    wanted.as_ref().is_none_or(|w| {
                        e.text.to_ascii_lowercase().contains(w)
                            || e.name.to_ascii_lowercase().contains(w)
                    })
                };
                let last: Vec<_> = self
                    .room.history
                    .iter()
                    .rev()
                    .filter(|e| !e.is_filler() && matches(e))
                    .take(count)
                    .cloned()
                    .collect();
                self.ctx.events
                    .push_back(Event::History(last.into_iter().rev().collect()));
            }
        }
    }

    /// The next change to make durable; drain these before [`Node::poll_transmit`]. Always
    /// `None` unless [`NodeConfig::persist`] is set.
    pub fn poll_write(&mut self) -> Option<Write> {
        if !self.ctx.cfg.persist {
            return None;
        }
        self.ctx.writes.extend(self.mail.offline.take_journal());
        let room = (self.ring.members.digest(), self.ring.epoch);
        let now = self.ctx.clock.now();
        if self.ctx.written_room != Some(room) {
            self.ctx.written_room = Some(room);
            self.ctx.written_clock = now;
            self.ctx.writes.push_back(Write::Room {
                members: self.ring.members.entries().cloned().collect(),
                epoch: self.ring.epoch,
                lamport: now,
            });
        } else if now.0 >= self.ctx.written_clock.0 + super::durable::CLOCK_WRITE_STEP {
            self.ctx.written_clock = now;
            self.ctx.writes.push_back(Write::Clock(now));
        }
        self.ctx.writes.pop_front()
    }

    /// The next datagram to send. The first call after inputs packs everything they
    /// queued (acks owed included) into datagrams, several packets per destination in one
    /// datagram where they fit: a driver that handles a burst of inputs before draining
    /// sends fewer, fuller datagrams. New messages to a peer that has earlier ones unacked
    /// may be held back until its ack comes, at most
    /// [`HOLD_LIMIT`](crate::proto::batch::HOLD_LIMIT) (see `proto::batch`); [`Node::poll_timeout`] includes that deadline.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.transport.transmits.is_empty() {
            self.pack_datagrams();
        }
        self.transport.transmits.pop_front()
    }

    /// The next event for the user or driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ctx.timers.next(),
            self.transport.reliable.next_deadline(),
            self.transport.outgoing.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// This user's identity (public key).
    fn public_key(&self) -> crate::wire::PublicKey {
        self.life.identity.verifying_key().to_bytes()
    }

    /// Whether this node is part of the ring: a member, or one leaving that has not yet
    /// told the others (it still heartbeats and answers probes).
    fn in_ring(&self) -> bool {
        matches!(
            self.life.phase,
            Phase::Member | Phase::Leaving { notified: false }
        )
    }

    fn leader_addr(&self) -> Option<SocketAddr> {
        self.leader()
            .filter(|l| self.ring.members.is_online(*l))
            .and_then(|l| self.ring.members.get(l))
            .map(|m| m.addr)
    }

    fn is_leader(&self) -> bool {
        self.leader() == Some(self.ctx.id)
    }

    fn name_of(&self, id: NodeId) -> Option<String> {
        self.ring.members.get(id).map(|m| m.name.clone())
    }

    fn next_dm_id(&mut self) -> DmId {
        let id = DmId(self.mail.next_dm);
        self.mail.next_dm += 1;
        id
    }
}

#[cfg(test)]
mod tests;
