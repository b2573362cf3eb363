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
//! 1. [`Node::poll_transmit`] until `None`, sending each datagram;
//! 2. [`Node::poll_event`] until `None`, showing each event;
//! 3. [`Node::poll_timeout`], and arm one timer for that instant.
//!
//! Time is always an argument; the node never reads a clock, never sleeps, and draws
//! randomness only from its own seeded generator, so a run is reproducible.

mod failover;
mod join;
mod presence;
mod room;

use super::chat::{History, HoldBackQueue, Outbox, Sequencer};
use super::clock::LamportClock;
use super::detector::Detector;
use super::election::Election;
use super::event::{Command, Event, JoinError, MemberView, Stats, StatusView};
use super::offline::OfflineQueue;
use super::reliable::{DedupeWindow, GaveUp, Reliable, Transmit};
use super::ring::Membership;
use super::timers::{Timer, TimerTable};
use crate::ids::{DmId, Lamport, MsgId, NodeId, Seq, WallMillis};
use crate::wire::{
    ChatEntry, DirectMessage, Envelope, Epoch, Member, Message, Packet, Presence, Stamp, Submit,
    decode, encode,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// A node's settings. [`NodeConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This user's name.
    pub name: String,
    /// The address other members reach this node at.
    pub addr: SocketAddr,
    /// A member to join through; `None` creates a new room with this node as leader.
    pub join: Option<SocketAddr>,
    /// Time before an unacked reliable message is resent (500 ms).
    pub ack_timeout: Duration,
    /// Resends before a reliable message is given up (8).
    pub max_retries: u32,
    /// How long joining may take before it fails (3 s).
    pub join_timeout: Duration,
    /// How long a gap in the room's sequence may stay open before asking the leader (300 ms).
    pub gap_repair_after: Duration,
    /// How long an own room message may wait for its commit before it is resubmitted (3 s).
    pub resubmit_after: Duration,
    /// How long a graceful leave waits for confirmations and acks (2 s).
    pub leave_timeout: Duration,
    /// Room messages kept in history (10 000).
    pub history_limit: usize,
    /// Recent room messages a newcomer is shown as history when it joins (100).
    pub join_history: usize,
    /// Interval between heartbeats to each ring neighbour (100 ms).
    pub heartbeat_interval: Duration,
    /// Heartbeat intervals of silence before a neighbour is suspected and probed (3); it
    /// is declared dead after one and a half times as long.
    pub suspect_after: u32,
    /// How long a started election may take before it is started again (2 s).
    pub election_timeout: Duration,
    /// How long a new leader waits for survivors' room messages before it goes on (1.5 s).
    pub recovery_timeout: Duration,
}

impl NodeConfig {
    /// Default settings for `name` at `addr`, joining through `join` if given.
    pub fn new(name: impl Into<String>, addr: SocketAddr, join: Option<SocketAddr>) -> Self {
        NodeConfig {
            name: name.into(),
            addr,
            join,
            ack_timeout: Duration::from_millis(500),
            max_retries: 8,
            join_timeout: Duration::from_secs(3),
            gap_repair_after: Duration::from_millis(300),
            resubmit_after: Duration::from_secs(3),
            leave_timeout: Duration::from_secs(2),
            history_limit: 10_000,
            join_history: 100,
            heartbeat_interval: Duration::from_millis(100),
            suspect_after: 3,
            election_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_millis(1500),
        }
    }

    /// Silence after which a neighbour is suspected.
    pub fn suspect_after(&self) -> Duration {
        self.heartbeat_interval * self.suspect_after
    }

    /// Silence after which a neighbour is declared dead.
    pub fn dead_after(&self) -> Duration {
        self.suspect_after().mul_f64(1.5)
    }
}

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
    },
    /// A newcomer's join passed on to the leader; passed on again if that fails.
    Forward {
        id: NodeId,
        name: String,
        addr: SocketAddr,
    },
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
    /// Whether the second round (asking from the lowest point any member still needs) ran.
    second_round: bool,
    /// Messages from before this leader's own history, gathered for members that lack them.
    backfill: BTreeMap<Seq, ChatEntry>,
    /// Submissions received meanwhile, sequenced once recovery ends.
    held_submits: Vec<(NodeId, Submit)>,
    /// Requests to keep direct messages received meanwhile, handled once recovery ends.
    held_stores: Vec<(SocketAddr, NodeId, u8, DirectMessage)>,
    /// Joins received meanwhile, admitted once recovery ends.
    held_joins: Vec<(NodeId, String, SocketAddr)>,
}

/// A ringchat node: membership, leader sequencing and direct messages as a pure state machine.
pub struct Node {
    cfg: NodeConfig,
    id: NodeId,
    clock: LamportClock,
    reliable: Reliable<Token>,
    timers: TimerTable,
    phase: Phase,
    members: Membership,
    epoch: Option<Epoch>,
    election: Election,
    detector: Detector,
    recovery: Option<Recovery>,
    /// Set while re-registering with a leader learned of by gossip (after a partition).
    resyncing: bool,
    /// The highest sequence number heard of (from neighbours' heartbeats).
    known_high: Seq,
    /// When the member table was last pushed to each node (anti-entropy rate limit).
    table_pushed: BTreeMap<NodeId, Instant>,
    /// Heartbeat rounds so far.
    beats: u64,
    /// See [`Node::first_seq`].
    first_seq: Seq,
    /// Gap repairs asked so far (alternates between the leader and other members).
    fetch_attempts: u64,
    /// Whether the current leave ends offline (`dereg`) rather than in exit.
    going_offline: bool,
    /// Whether this node was in the room before (a `reg` after `dereg`).
    was_member: bool,
    /// Members still to try if coming back through the current one fails (last first).
    reg_contacts: Vec<SocketAddr>,
    /// Room messages below this number are shown as history.
    history_until: Seq,
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
    /// The offline member probed last.
    last_offline_probe: Option<NodeId>,
    sequencer: Option<Sequencer>,
    /// The leader's own sequenced messages not yet acked by any other member.
    unstable: BTreeMap<Seq, ChatEntry>,
    holdback: HoldBackQueue,
    history: History,
    outbox: Outbox,
    next_dm: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    last_drop_log: Option<Instant>,
}

impl Node {
    /// Creates a node with identity `id` at time `now`. Without `cfg.join` it creates a room
    /// and leads it ([`Event::Joined`] is ready at once); with it, it sends a join request
    /// and waits for the welcome.
    pub fn new(cfg: NodeConfig, id: NodeId, now: Instant) -> Self {
        let mut clock = LamportClock::default();
        let me = Member {
            id,
            name: cfg.name.clone(),
            addr: cfg.addr,
            presence: Presence::Online,
            stamp: Stamp {
                lamport: clock.tick(),
                by: id,
            },
        };
        let mut node = Node {
            reliable: Reliable::new(cfg.ack_timeout),
            history: History::new(cfg.history_limit),
            id,
            clock,
            timers: TimerTable::default(),
            phase: Phase::Member,
            members: Membership::new(me),
            epoch: None,
            election: Election::default(),
            detector: Detector::new(cfg.suspect_after(), cfg.dead_after(), cfg.join_timeout),
            recovery: None,
            resyncing: false,
            known_high: Seq(0),
            table_pushed: BTreeMap::new(),
            beats: 0,
            first_seq: Seq(1),
            fetch_attempts: 0,
            going_offline: false,
            was_member: false,
            reg_contacts: Vec::new(),
            history_until: Seq(0),
            offline: OfflineQueue::default(),
            awaiting_replica: BTreeMap::new(),
            handing_over: BTreeSet::new(),
            unsaved: BTreeMap::new(),
            seen_dms: BTreeMap::new(),
            last_offline_probe: None,
            sequencer: None,
            unstable: BTreeMap::new(),
            holdback: HoldBackQueue::new(Seq(1)),
            outbox: Outbox::default(),
            next_dm: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_drop_log: None,
            cfg,
        };
        match node.cfg.join {
            None => node.create_room(now),
            Some(contact) => node.start_join(now, contact),
        }
        node
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The current Lamport time.
    pub fn lamport(&self) -> Lamport {
        self.clock.now()
    }

    /// The leader this node follows, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.epoch.map(|e| e.leader)
    }

    /// The leader and the election round it won, if any.
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The first room sequence number this node was given when it joined (1 for the
    /// creator): earlier messages were before its time.
    pub fn first_seq(&self) -> Seq {
        self.first_seq
    }

    /// Whether this node leads and has finished taking over (it sequences messages).
    pub fn is_sequencing(&self) -> bool {
        self.sequencer.is_some()
    }

    /// Whether this node is in the room (welcomed and not leaving).
    pub fn is_member(&self) -> bool {
        self.phase == Phase::Member
    }

    /// The member table.
    pub fn members(&self) -> &Membership {
        &self.members
    }

    /// The delivered room messages this node keeps.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Handles one received datagram from `from`. Any bytes are safe: bad input is
    /// dropped, counted in [`Stats::dropped`] and logged (at most once a second).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.stats.received += 1;
        let env = match decode(bytes) {
            Ok(env) => env,
            Err(e) => return self.drop_datagram(now, from, &e.to_string()),
        };
        if env.from == self.id {
            return self.drop_datagram(now, from, "datagram claims our own node id");
        }
        match env.packet {
            Packet::Heartbeat(hb) => {
                if self.in_ring() {
                    // Only heartbeats prove liveness: a newcomer sends other traffic
                    // before it starts heartbeating.
                    self.detector.heard(env.from, now);
                    self.clock.observe(env.lamport);
                    self.on_heartbeat(now, from, env.from, hb);
                }
            }
            Packet::Ack { id } => {
                self.clock.observe(env.lamport);
                if let Some(token) = self.reliable.on_ack(from, id) {
                    self.on_acked(now, token);
                }
            }
            Packet::Data { id, msg } => {
                if !self.accepts_now(&msg) {
                    // Not acked: the sender will retry once we are ready for it.
                    debug!(?from, "not ready for {:?} yet", msg_kind(&msg));
                    return;
                }
                self.clock.observe(env.lamport);
                self.send_ack(from, id);
                if !self.reliable.first_delivery(env.from, id) {
                    self.stats.duplicates += 1;
                    return;
                }
                self.on_message(now, from, env.from, msg);
            }
        }
    }

    /// Handles the passing of time: retransmissions, give-ups and protocol timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut out = Vec::new();
        let (resent, gave_up) = self.reliable.poll_retransmits(now, &mut out);
        self.stats.retransmitted += resent as u64;
        for t in out {
            self.push_transmit(t);
        }
        self.on_gave_up(now, gave_up);
        for timer in self.timers.expire(now) {
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
            }
        }
    }

    /// Handles a user command at `now`; `wall` is the wall-clock time stamped on messages.
    /// A refused command yields [`Event::Error`] and changes nothing.
    pub fn handle_command(&mut self, now: Instant, wall: WallMillis, cmd: Command) {
        match cmd {
            Command::List => {
                let view = self.member_views();
                self.events.push_back(Event::Members(view));
            }
            Command::Status => {
                let view = self.status_view();
                self.events.push_back(Event::Status(view));
            }
            Command::SendAll { text } => self.send_all(now, wall, text),
            Command::Send { to, text } => self.send_direct(now, wall, to, text),
            Command::Leave => self.leave(now),
            Command::Dereg { name } => self.dereg(now, name),
            Command::Reg { name, via } => self.reg(now, name, via),
            Command::History { count } => {
                let last: Vec<_> = self
                    .history
                    .iter()
                    .rev()
                    .filter(|e| !e.is_filler())
                    .take(count)
                    .cloned()
                    .collect();
                self.events
                    .push_back(Event::History(last.into_iter().rev().collect()));
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the user or driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next(), self.reliable.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- sending -----

    fn push_transmit(&mut self, t: Transmit) {
        self.stats.sent += 1;
        self.transmits.push_back(t);
    }

    fn envelope(&mut self, packet: Packet) -> Envelope {
        Envelope {
            from: self.id,
            lamport: self.clock.tick(),
            packet,
        }
    }

    /// Sends `msg` reliably to `to` with the default retry bound.
    fn send_reliable(&mut self, now: Instant, to: SocketAddr, msg: Message, token: Token) {
        let retries = self.cfg.max_retries;
        self.send_reliable_with(now, to, msg, token, retries);
    }

    fn send_reliable_with(
        &mut self,
        now: Instant,
        to: SocketAddr,
        msg: Message,
        token: Token,
        retries: u32,
    ) {
        let id = self.reliable.allocate_id();
        let env = self.envelope(Packet::Data { id, msg });
        match encode(&env) {
            Ok(bytes) => {
                self.reliable
                    .track(now, id, to, bytes.clone(), token, retries);
                self.push_transmit(Transmit { to, bytes });
            }
            // Unreachable by construction (limits are checked before); never silent.
            Err(e) => warn!(lamport = self.clock.now().0, "not sent to {to}: {e}"),
        }
    }

    fn send_ack(&mut self, to: SocketAddr, id: MsgId) {
        let env = self.envelope(Packet::Ack { id });
        if let Ok(bytes) = encode(&env) {
            self.push_transmit(Transmit { to, bytes });
        }
    }

    /// Sends `msg` reliably to every online member but this node.
    fn broadcast(&mut self, now: Instant, msg: &Message, token: &Token) {
        let peers: Vec<SocketAddr> = self.members.online_peers().map(|m| m.addr).collect();
        for addr in peers {
            self.send_reliable(now, addr, msg.clone(), token.clone());
        }
    }

    /// Whether this node is part of the ring: a member, or one leaving that has not yet
    /// told the others (it still heartbeats and answers probes).
    fn in_ring(&self) -> bool {
        matches!(
            self.phase,
            Phase::Member | Phase::Leaving { notified: false }
        )
    }

    fn leader_addr(&self) -> Option<SocketAddr> {
        self.leader()
            .filter(|l| self.members.is_online(*l))
            .and_then(|l| self.members.get(l))
            .map(|m| m.addr)
    }

    fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    fn name_of(&self, id: NodeId) -> Option<String> {
        self.members.get(id).map(|m| m.name.clone())
    }

    // ----- bad input -----

    fn drop_datagram(&mut self, now: Instant, from: SocketAddr, why: &str) {
        self.stats.dropped += 1;
        let quiet = self
            .last_drop_log
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if !quiet {
            self.last_drop_log = Some(now);
            warn!(
                lamport = self.clock.now().0,
                "dropped datagram from {from}: {why} ({} dropped so far)", self.stats.dropped
            );
        }
    }

    // ----- dispatch -----

    /// Whether a reliable message may be handled in the current phase. Messages that are
    /// not yet welcome are left unacked so that the sender retries them later.
    fn accepts_now(&self, msg: &Message) -> bool {
        match &self.phase {
            Phase::Joining { .. } => {
                matches!(msg, Message::Welcome(_) | Message::JoinRefused { .. })
            }
            Phase::Member | Phase::Leaving { .. } => true,
            Phase::Offline | Phase::Done => false,
        }
    }

    fn on_message(&mut self, now: Instant, from: SocketAddr, sender: NodeId, msg: Message) {
        match msg {
            Message::Join { name } => self.on_join(now, sender, name, from),
            Message::JoinForward { id, name, addr } => self.on_join_forward(now, id, name, addr),
            Message::Welcome(w) => self.on_welcome(now, w),
            Message::JoinRefused { reason } => self.on_join_refused(now, reason),
            Message::Members(list) => {
                if self.phase == Phase::Member || matches!(self.phase, Phase::Leaving { .. }) {
                    self.on_members(now, from, list)
                }
            }
            Message::Submit(s) => self.on_submit(now, sender, s),
            Message::Sequenced(e) => {
                if self.accepts_sequenced(sender, e.seq) {
                    let recovering = if let Some(rec) = self.recovery.as_mut() {
                        *rec.received.entry(sender).or_default() += 1;
                        true
                    } else {
                        false
                    };
                    self.on_sequenced(now, e);
                    if recovering {
                        self.maybe_finish_recovery(now);
                    }
                } else {
                    debug!(
                        lamport = self.clock.now().0,
                        "ignoring #{} from {sender}", e.seq
                    );
                }
            }
            Message::Fetch { from: a, to: b } => self.on_fetch(now, from, a, b),
            Message::Direct(dm) => self.on_direct(sender, dm, false),
            Message::Store { to, dm } => self.on_store(now, from, sender, to, dm),
            Message::Saved { id, to, full } => self.on_saved(id, to, full),
            Message::Queued(item) => {
                let to = item.recipient().to_string();
                if self.is_leader() && self.offline.was_handed_over(item.origin, item.dm.id) {
                    // A stale replica: tell its holder the message is gone.
                    let msg = Message::Dequeued {
                        origin: item.origin,
                        id: item.dm.id,
                        to: item.to,
                    };
                    self.send_reliable(now, from, msg, Token::Control);
                }
                let _ = self.offline.push(item);
                if let Some(rec) = self.recovery.as_mut() {
                    *rec.received.entry(sender).or_default() += 1;
                    self.maybe_finish_recovery(now);
                } else {
                    // A leader given a replica (after a heal) hands it over if it can.
                    self.start_handover(now, &to);
                }
            }
            Message::Dequeued { origin, id, to } => self.on_dequeued(origin, id, to),
            Message::Handover(item) => self.on_direct(item.origin, item.dm, true),
            Message::Election { term, candidate } => self.on_election(now, term, candidate),
            Message::Elected(epoch) => self.on_elected(now, epoch),
            Message::SyncRequest { epoch, from: first } => {
                self.on_sync_request(now, from, epoch, first)
            }
            Message::SyncReply {
                epoch,
                next,
                high,
                sent,
            } => self.on_sync_reply(now, sender, epoch, (next, high), sent),
        }
    }

    fn on_acked(&mut self, now: Instant, token: Token) {
        match token {
            Token::Direct { to, .. } => self.events.push_back(Event::Receipt { to }),
            // The contact is there: the welcome may take longer than the contact's answer
            // (the leader is further away, or the room is electing), so wait longer for it.
            Token::Join => {
                if matches!(self.phase, Phase::Joining { .. }) {
                    self.timers
                        .set(Timer::JoinDeadline, now + self.cfg.join_timeout * 3);
                }
            }
            Token::Replica { origin, id, to } => self.replica_acked(now, origin, id, to),
            Token::Handover { to, origin, id } => self.handed_over(now, to, origin, id),
            Token::LeaveNotice => self.maybe_finish_leave(now),
            Token::Sequenced(Some(seq)) => {
                self.stabilise(now, seq);
                self.maybe_notify_leave(now);
            }
            Token::Sequenced(None) => self.maybe_notify_leave(now),
            Token::Forward { .. } | Token::Control | Token::Submit | Token::Ring(_) => {}
        }
    }

    fn on_gave_up(&mut self, now: Instant, gave_up: Vec<GaveUp<Token>>) {
        let mut unreachable: Vec<SocketAddr> = Vec::new();
        for g in gave_up {
            self.stats.gave_up += 1;
            match g.token {
                Token::Join => self.fail_join(now, JoinError::Unreachable(g.to)),
                // No ack from the recipient: the leader keeps it for when it is back.
                Token::Direct { to, dm } => self.store_offline_for(now, &to, dm),
                Token::Replica { origin, id, to } => self.replica_lost(now, origin, id, to),
                Token::Handover { to, .. } => {
                    self.handing_over.remove(&to);
                }
                Token::LeaveNotice => self.maybe_finish_leave(now),
                Token::Ring(msg) => self.reroute_ring(now, g.to, msg),
                Token::Forward { id, name, addr } => self.on_join(now, id, name, addr),
                // Own submissions are resubmitted by the resubmit timer; sequenced messages
                // are fetched by members that see the gap.
                Token::Sequenced(Some(seq)) => {
                    self.stabilise(now, seq);
                    self.maybe_notify_leave(now);
                }
                Token::Sequenced(None) => self.maybe_notify_leave(now),
                Token::Submit | Token::Control => {}
            }
            if !unreachable.contains(&g.to) {
                unreachable.push(g.to);
            }
        }
        for addr in unreachable {
            let name = self
                .members
                .entries()
                .find(|m| m.addr == addr)
                .map(|m| m.name.clone());
            warn!(
                lamport = self.clock.now().0,
                "peer {addr} ({name:?}) unreachable"
            );
            // Only members concern the user (a refused newcomer that went away does not).
            if name.is_some() {
                self.events.push_back(Event::PeerUnreachable { addr, name });
            }
        }
    }

    // ----- views -----

    fn member_views(&self) -> Vec<MemberView> {
        self.members
            .current()
            .into_iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                addr: m.addr,
                online: m.presence == Presence::Online,
                leader: Some(m.id) == self.leader(),
                me: m.id == self.id,
            })
            .collect()
    }

    fn status_view(&self) -> StatusView {
        StatusView {
            name: self.cfg.name.clone(),
            id: self.id,
            addr: self.cfg.addr,
            prev: self.members.prev().and_then(|id| self.name_of(id)),
            next: self.members.next().and_then(|id| self.name_of(id)),
            leader: self.leader().and_then(|id| self.name_of(id)),
            suspected: self
                .members
                .online_peers()
                .filter(|m| self.detector.is_suspected(m.id))
                .map(|m| m.name.clone())
                .collect(),
            lamport: self.clock.now(),
            stats: self.stats.clone(),
            in_flight: self.reliable.in_flight(),
            unconfirmed: self.outbox.len(),
            history: self.history.len(),
        }
    }

    fn next_dm_id(&mut self) -> DmId {
        let id = DmId(self.next_dm);
        self.next_dm += 1;
        id
    }
}

fn msg_kind(msg: &Message) -> &'static str {
    match msg {
        Message::Join { .. } => "Join",
        Message::JoinForward { .. } => "JoinForward",
        Message::Welcome(_) => "Welcome",
        Message::JoinRefused { .. } => "JoinRefused",
        Message::Members(_) => "Members",
        Message::Submit(_) => "Submit",
        Message::Sequenced(_) => "Sequenced",
        Message::Fetch { .. } => "Fetch",
        Message::Direct(_) => "Direct",
        Message::Election { .. } => "Election",
        Message::Elected(_) => "Elected",
        Message::SyncRequest { .. } => "SyncRequest",
        Message::SyncReply { .. } => "SyncReply",
        Message::Store { .. } => "Store",
        Message::Saved { .. } => "Saved",
        Message::Queued(_) => "Queued",
        Message::Dequeued { .. } => "Dequeued",
        Message::Handover(_) => "Handover",
    }
}

#[cfg(test)]
mod tests;
