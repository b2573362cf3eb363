//! The datagram format: a version byte followed by a postcard-encoded [`Envelope`], which
//! carries one or more [`Packet`]s for the same destination (reliable messages, acks,
//! heartbeats, coalesced by the node).
//!
//! This module owns the message enums and the size limits. It does no I/O and makes no
//! decisions: [`encode`] refuses anything over [`MAX_PLAIN`], [`encode_packet`] refuses a
//! packet that could not travel alone in a datagram, [`decode`] refuses anything that is
//! not exactly one well-formed envelope of our version.
//!
//! Postcard encodes a struct as its fields in order and a `Vec` as a varint length followed
//! by the elements, so a datagram can be assembled from packets encoded one by one
//! ([`assemble`]): the node keeps each reliable message encoded once, for its first send
//! and every retransmission, whatever it is batched with.

use crate::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod entry;
mod membership;
mod signature;
pub use entry::{ChainLink, ChatEntry, ConfigChange, FILLER_ORIGIN, Provenance};
pub use membership::{
    Member, Newcomer, Presence, PublicKey, Refusal, Stamp, Voucher, Welcome, member_proof_message,
    proof_message, voucher_message,
};
pub use signature::SignatureBytes;

/// The protocol version carried in the first byte of every datagram. Version 11: a
/// member's answer to a new leader says which copies it sent are its votes
/// (`Message::SyncReply::votes`) (version 10: a
/// challenge says whether a member asks (`Message::Challenge::of_member`); version 9: a
/// leader's voucher for a member it let in (`Message::Vouched`); version 8: the
/// challenge names the process asked, `Message::Challenge::newcomer`; version 7: the
/// welcome names the leader's delivery point, `Welcome::pending_from`; version 6: `Welcomed`,
/// the members' word that a newcomer has its welcome and follows the leader; version
/// 5: pre-votes; version 4: the
/// candidate's log position in election tokens; version 3: each room message's proof of
/// origin, direct messages sealed to their recipient; version 2: a list of packets per
/// datagram and cumulative acks; version 1: one packet, one id per ack).
pub const PROTOCOL_VERSION: u8 = 11;
/// Runs of votes a member's answer names at most (see `Message::SyncReply::votes`).
pub const MAX_VOTED_RUNS: usize = 32;

/// Numbers `first..=last` whose copies a member holds as votes of `term` (see
/// `Message::SyncReply::votes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotedRun {
    /// The first number of the run.
    pub first: Seq,
    /// The last number of the run.
    pub last: Seq,
    /// The term of every copy in it.
    pub term: u64,
}

/// The largest datagram we ever send, sealed or not (safe under any real path MTU).
pub const MAX_DATAGRAM: usize = 1200;
/// Bytes that sealing with the room key adds (see `guard`): a mark, the sender id, a
/// packet number, a 24-byte nonce and a 16-byte tag.
pub const SEAL_OVERHEAD: usize = 1 + 8 + 8 + 24 + 16;
/// The largest plain datagram: room for the seal is always kept.
pub const MAX_PLAIN: usize = MAX_DATAGRAM - SEAL_OVERHEAD;
/// The most bytes an envelope takes besides its packets: the version byte, the sender id
/// and Lamport time (varints of up to 10 bytes each) and the packet count (a varint below
/// 2^14, as no datagram holds more packets than bytes).
pub const HEADER_MAX: usize = 1 + 10 + 10 + 2;
/// The largest encoded packet: one that fits a datagram alone, whatever the header.
pub const MAX_PACKET: usize = MAX_PLAIN - HEADER_MAX;
/// The largest room message text in bytes (UTF-8). The worst-case message carrying it
/// stays within [`MAX_PLAIN`]; a test checks this.
pub const MAX_TEXT_BYTES: usize = 760;
/// The largest direct message text in bytes (UTF-8): less than a room message's, as each
/// copy carries its seal (an ephemeral key, a tag and the sender's signature, see
/// `proto::seal`). The worst-case copy (to the most recipients with the longest names,
/// kept for an offline one) stays within [`MAX_PLAIN`]; a test checks this.
pub const MAX_DIRECT_TEXT_BYTES: usize = 640;
/// The longest member name in bytes.
pub const MAX_NAME_BYTES: usize = 32;
/// How many recipients one `send` may name.
pub const MAX_RECIPIENTS: usize = 8;

/// What every datagram carries: who sent it, the sender's Lamport time, and the packets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The sender's Lamport clock when it sent this datagram.
    pub lamport: Lamport,
    /// The payload: at least one packet, handled in order.
    pub packets: Vec<Packet>,
}

/// The transport-level packet kinds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Packet {
    /// A message that must arrive: the receiver acks `id` and suppresses duplicates.
    Data {
        /// Transport id, unique per sender.
        id: MsgId,
        /// The protocol message.
        msg: Message,
    },
    /// Acknowledges `Data` packets (cumulatively and selectively).
    Ack(Ack),
    /// A ring neighbour's liveness beacon; never acked or resent.
    Heartbeat(Heartbeat),
}

/// Acknowledges `Data` packets of one id stream: every id its sender gave out for one
/// destination address (see `proto::reliable`). Ids are named by their number within the
/// stream ([`MsgId::seq`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The node whose messages are acknowledged: a new process at the same address
    /// ignores acks meant for its predecessor.
    pub of: NodeId,
    /// The stream ([`MsgId::stream`]).
    pub stream: u32,
    /// Every number of the stream from 1 up to and including this one was received (0
    /// claims nothing).
    pub upto: u64,
    /// Further numbers above `upto` received, as inclusive ranges `(first, last)`.
    pub ranges: Vec<(u64, u64)>,
}

impl Ack {
    /// An ack of the single message `id` sent by `of`.
    pub fn of_one(of: NodeId, id: MsgId) -> Ack {
        Ack {
            of,
            stream: id.stream(),
            upto: 0,
            ranges: vec![(id.seq(), id.seq())],
        }
    }

    /// Whether this ack covers number `seq` of its stream.
    pub fn covers(&self, seq: u64) -> bool {
        seq != 0 && (seq <= self.upto || self.ranges.iter().any(|&(a, b)| a <= seq && seq <= b))
    }
}

/// Who leads and since which election: ordered by term, then leader id, so of two leaders
/// the one with the larger epoch wins (and the other steps down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch {
    /// Election round; each election uses a term above every one its starter knew.
    pub term: u64,
    /// The leader elected in that round.
    pub leader: NodeId,
}

/// What a heartbeat tells a neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender's leader, if any.
    pub epoch: Option<Epoch>,
    /// The highest room sequence number the sender has delivered (0 for none).
    pub delivered: Seq,
    /// A digest of the sender's member table; a mismatch triggers a table exchange.
    pub digest: u64,
    /// A probe from a suspicious neighbour: answer with a heartbeat at once.
    pub probe: bool,
    /// An answer to a node not in the sender's member table that spoke as a member: the
    /// sender does not know it (see `answer_stranger`).
    pub unknown: bool,
}

/// Protocol messages carried reliably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A newcomer asks any member to let it in under `name`.
    Join {
        /// The requested name.
        name: String,
        /// The newcomer's identity (ed25519 public key), which the name is bound to.
        key: PublicKey,
    },
    /// A member passes a newcomer's join on to the leader.
    JoinForward(Newcomer),
    /// The leader asks a newcomer to prove its identity by signing `nonce`, or a member
    /// asks a process it does not know, speaking from a member's address, to prove it is
    /// that member's.
    Challenge {
        /// Random bytes to sign.
        nonce: [u8; 16],
        /// The process asked: a resend meant for an earlier process at the same address
        /// is not the new one's to answer.
        newcomer: NodeId,
        /// Asked by a member of the process as a member (see `life/proven.rs`): answered
        /// with [`member_proof_message`], bound to the challenger; else a join's, with
        /// [`proof_message`]. A member asking to be taken in answers both kinds, each in
        /// its own form: the challenger checks only its own.
        of_member: bool,
    },
    /// A newcomer's answer: an ed25519 signature (64 bytes) over [`proof_message`].
    Proof {
        /// The signature.
        signature: Vec<u8>,
    },
    /// The leader admits a newcomer: one part of the member table (large tables span parts).
    Welcome(Welcome),
    /// The leader (or a contact) refuses a join.
    JoinRefused {
        /// Why.
        reason: Refusal,
    },
    /// Member table entries to merge (last writer wins per entry, see `proto::ring`).
    Members(Vec<Member>),
    /// A member asks the leader to sequence a room message.
    Submit(Submit),
    /// The leader's sequenced room message.
    Sequenced(ChatEntry),
    /// A leaving member asks the leader to take it out of the voting configuration (it
    /// goes once that is committed).
    Leave,
    /// The leader answers a fetch: room messages `from..=to` are older than anything it
    /// keeps (committed, and no longer kept by anyone it would send them from).
    Forgotten {
        /// The first number no longer kept.
        from: Seq,
        /// The last number no longer kept.
        to: Seq,
    },
    /// A member asks the leader to resend sequenced messages `from..=to`.
    Fetch {
        /// First missing sequence number.
        from: Seq,
        /// Last missing sequence number.
        to: Seq,
    },
    /// A direct (private) message.
    Direct(DirectMessage),
    /// Chang-Roberts election token for `candidate`, travelling to the ring successor.
    Election {
        /// The round.
        term: u64,
        /// The best candidate seen so far on this token's way: the most room messages
        /// shown first, then the largest id.
        candidate: NodeId,
        /// The candidate's delivery point (the number after the last room message it
        /// showed) when it entered the round.
        log: Seq,
    },
    /// Chang-Roberts announcement: `epoch.leader` won round `epoch.term`.
    Elected(Epoch),
    /// A new leader asks a member for every room message it has from `from` on.
    SyncRequest {
        /// The new leader's epoch.
        epoch: Epoch,
        /// The first sequence number the leader lacks.
        from: Seq,
    },
    /// A sender asks the leader to keep a direct message for an offline recipient,
    /// `dm.to[to]`.
    Store {
        /// Index of the recipient in `dm.to`.
        to: u8,
        /// The message.
        dm: DirectMessage,
    },
    /// The leader tells the sender its direct message `id` for `dm.to[to]` is saved (or,
    /// with `full`, which limit of the offline queue kept it from being saved).
    Saved {
        /// The message's id.
        id: DmId,
        /// Index of the recipient in the message's `to`.
        to: u8,
        /// Not saved: the queue was at this limit.
        full: Option<QueueLimit>,
    },
    /// The leader replicates a kept direct message to a member.
    Queued(QueuedDm),
    /// The leader tells replicas a kept message was handed over.
    Dequeued {
        /// The message's origin.
        origin: NodeId,
        /// The message's id.
        id: DmId,
        /// Index of the recipient.
        to: u8,
    },
    /// The leader hands a kept message to its recipient, back online.
    Handover(QueuedDm),
    /// A member's answer, sent after the entries it had: what it delivered and holds.
    SyncReply {
        /// The epoch it answers.
        epoch: Epoch,
        /// The next sequence number the member will deliver.
        next: Seq,
        /// The highest sequence number it has (delivered or held back).
        high: Seq,
        /// How many room messages it sent the leader just before this reply (the leader
        /// waits for all of them: reliable messages may overtake each other).
        sent: u32,
        /// Which of them (held, not shown) are its votes: copies it took as proposals
        /// from the leader of their term, or proposed itself (at most
        /// [`MAX_VOTED_RUNS`] runs; see `Node::proven_changes`).
        votes: Vec<VotedRun>,
    },
    /// The leader of `term` tells a member that every entry up to `upto` it sent in that
    /// term is held by a majority of the room: committed, to be shown.
    Commit {
        /// The leader's term.
        term: u64,
        /// The highest committed sequence number.
        upto: Seq,
    },
    /// The sender suspects `target` (its ring predecessor went silent): probe it, and say
    /// so with [`Message::Alive`] if it answers (an indirect probe, as in SWIM).
    ProbeFor {
        /// The suspected member.
        target: NodeId,
    },
    /// `target`, which the recipient asked about with [`Message::ProbeFor`], answered.
    Alive {
        /// The member that answered.
        target: NodeId,
    },
    /// A member's answer to a new leader's [`Message::SyncRequest`]: one room message it
    /// holds (with the term it was proposed in) or showed. Unlike a leader's
    /// [`Message::Sequenced`] proposal, acking it never counts as holding a copy, so a
    /// new leader gathering answers acks these and no proposal of an older term.
    SyncEntry(ChatEntry),
    /// The leader tells members to drop these departed members from the member table:
    /// offline for long, and nobody holds messages for them. Each is named with the
    /// stamp of the entry the leader dropped; a newer entry (the member came back) stays.
    Forget(Vec<(NodeId, Stamp)>),
    /// Would the receiver support a round `term` to replace the leader (pre-vote)? Sent
    /// to every voter by a node that lost its leader on its own judgement.
    PreVote {
        /// The round the sender would start.
        term: u64,
        /// The epoch the sender follows (itself, if it won the last round it knows).
        follows: Option<Epoch>,
    },
    /// The answer to a [`Message::PreVote`] for round `term`.
    PreVoteReply {
        /// The round asked about.
        term: u64,
        /// Yes: the receiver lost the leader too (or follows none).
        granted: bool,
        /// The epoch the receiver follows: an asker that missed the end of a round learns
        /// its winner once two voters name the same one.
        follows: Option<Epoch>,
    },
    /// The leader heard from `newcomer`, within its session, that it holds its whole
    /// welcome and follows this leader ([`Message::WelcomeTaken`]): it is in the room, and
    /// whoever watches it judges its silence by the usual bounds from now on.
    Welcomed {
        /// The member welcomed, as the leader's table has it (merged as `Members` is, in
        /// case this comes first).
        newcomer: Member,
    },
    /// A newcomer tells the leader that welcomed it that it holds every part of its
    /// welcome and follows it (sent within their session, so nobody can say it for it).
    WelcomeTaken,
    /// The answer to a [`Message::ProbeFor`]: the sender is probing `target` for us (it
    /// is in the room, holds `target` online and heard from it before). Only then does our
    /// silence from `target` count as checked by another member.
    Probing {
        /// The member being probed.
        target: NodeId,
    },
    /// A leader's signed word that it let a member in: from the leader to that member, to
    /// keep; from the member to another of that leader's epoch that holds no entry for it
    /// (the leader died before its word reached it), which then takes the entry as the
    /// leader's word. Part of the join exchange: the other holds no session with it yet.
    Vouched(Voucher),
    /// The leader tells a member that the room message it submitted as `origin_seq` is
    /// committed at a number the leader keeps no more (the member skipped past it, or
    /// missed it otherwise): it is sent, and need not be submitted again.
    Settled {
        /// The submission's origin (a new process at its address is not it).
        origin: NodeId,
        /// The submission's number at its origin.
        origin_seq: OriginSeq,
    },
}

impl Message {
    /// Whether it belongs to the join exchange (a join, the leader's challenge, the
    /// newcomer's proof, a refusal, a voucher): the only messages that travel outside sessions,
    /// before a newcomer holds any.
    pub fn is_join_exchange(&self) -> bool {
        matches!(
            self,
            Message::Join { .. }
                | Message::Challenge { .. }
                | Message::Proof { .. }
                | Message::JoinRefused { .. }
                | Message::Vouched(_)
        )
    }
}

/// A limit of the offline queue that kept a direct message from being saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueLimit {
    /// The recipient has as many messages waiting as one recipient may.
    Recipient,
    /// The sender has as many messages waiting for that recipient as one sender may.
    Sender,
    /// The queue holds as many messages as it may, for everyone together.
    Room,
}

/// A direct message kept for an offline recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedDm {
    /// The sending node.
    pub origin: NodeId,
    /// Index of the recipient in `dm.to`.
    pub to: u8,
    /// The message, with its original send times.
    pub dm: DirectMessage,
}

impl QueuedDm {
    /// The recipient's name.
    pub fn recipient(&self) -> &str {
        self.dm.to.get(self.to as usize).map_or("", String::as_str)
    }
}

/// A room message a member asks the leader to sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submit {
    /// The origin's number for this message.
    pub origin_seq: OriginSeq,
    /// Every origin number below this one is already committed as far as the origin knows.
    pub committed_below: OriginSeq,
    /// The origin's name (used when the leader does not know the origin yet).
    pub name: String,
    /// Origin's Lamport time at send.
    pub lamport: Lamport,
    /// Origin's wall-clock time at send.
    pub sent_at: WallMillis,
    /// The text.
    pub text: String,
    /// The origin's proof that it wrote this (see `proto::seal`).
    pub proof: Provenance,
}

/// One copy of a direct message, sealed for one of its recipients (see `proto::seal`):
/// only that recipient opens it, and only the sender could have written what is inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMessage {
    /// Per-origin id.
    pub id: DmId,
    /// The sender's name.
    pub from_name: String,
    /// All recipients' names (each gets its own copy).
    pub to: Vec<String>,
    /// The sealed content (times, text and the sender's signature), for the recipient
    /// this copy goes to: the one it is sent to directly, or `to[i]` of a kept copy.
    pub sealed: Vec<u8>,
}

/// Why a datagram could not be encoded or decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Empty datagram.
    #[error("empty datagram")]
    Empty,
    /// Over [`MAX_PLAIN`] bytes.
    #[error("datagram of {0} bytes exceeds the {MAX_PLAIN}-byte limit")]
    TooLarge(usize),
    /// A version byte we do not speak.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// Not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// A well-formed envelope followed by extra bytes.
    #[error("{0} trailing bytes after the envelope")]
    Trailing(usize),
}

/// Encodes an envelope into a datagram. Fails, sending nothing, if it would exceed
/// [`MAX_PLAIN`].
pub fn encode(env: &Envelope) -> Result<Vec<u8>, WireError> {
    let mut out = vec![PROTOCOL_VERSION];
    let body = postcard::to_allocvec(env).map_err(|e| WireError::Malformed(e.to_string()))?;
    out.extend_from_slice(&body);
    if out.len() > MAX_PLAIN {
        return Err(WireError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Encodes one packet for [`assemble`]. Fails if it is over [`MAX_PACKET`]: it could not
/// be sent even alone (limits are checked before this; the refusal is never silent).
pub fn encode_packet(packet: &Packet) -> Result<Vec<u8>, WireError> {
    let bytes = postcard::to_allocvec(packet).map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_PACKET {
        return Err(WireError::TooLarge(bytes.len() + HEADER_MAX));
    }
    Ok(bytes)
}

/// Appends `v` as a postcard varint (LEB128).
fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The datagram carrying `packets` (each from [`encode_packet`]), exactly what [`encode`]
/// makes of the same envelope. The caller keeps the total within [`MAX_PLAIN`]: packets
/// summing to at most `MAX_PLAIN - HEADER_MAX` bytes always fit.
pub fn assemble<P: AsRef<[u8]>>(from: NodeId, lamport: Lamport, packets: &[P]) -> Vec<u8> {
    let body: usize = packets.iter().map(|p| p.as_ref().len()).sum();
    let mut out = Vec::with_capacity(HEADER_MAX + body);
    out.push(PROTOCOL_VERSION);
    push_varint(&mut out, from.0);
    push_varint(&mut out, lamport.0);
    push_varint(&mut out, packets.len() as u64);
    for p in packets {
        out.extend_from_slice(p.as_ref());
    }
    out
}

/// Decodes a datagram. Any byte string is safe to pass; nothing panics.
pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if bytes.len() > MAX_PLAIN {
        return Err(WireError::TooLarge(bytes.len()));
    }
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    let (env, rest) = postcard::take_from_bytes::<Envelope>(body)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    if env.packets.is_empty() {
        return Err(WireError::Malformed("no packets".into()));
    }
    Ok(env)
}

/// Checks a member name: 1 to [`MAX_NAME_BYTES`] bytes, no whitespace, no commas.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c.is_control())
}

#[cfg(test)]
mod tests;
