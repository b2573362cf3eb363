//! What goes into a node ([`Command`]) and what comes out of it ([`Event`]).

use crate::ids::{Lamport, NodeId, WallMillis};
use crate::wire::{ChatEntry, MAX_RECIPIENTS, Refusal};
use std::net::SocketAddr;
use thiserror::Error;

/// A user's request to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Post a room message to every online member, through the leader.
    SendAll {
        /// The text.
        text: String,
    },
    /// Send a private message to the named members.
    Send {
        /// Recipient names.
        to: Vec<String>,
        /// The text.
        text: String,
    },
    /// Report the member table ([`Event::Members`]).
    List,
    /// Report the node's status ([`Event::Status`]).
    Status,
    /// Leave the room gracefully; [`Event::Left`] follows.
    Leave,
    /// Go offline but keep running: leave the ring, stay in the table as offline, and
    /// have direct messages kept by the leader. `name`, if given, must be this node's.
    Dereg {
        /// The name to deregister.
        name: Option<String>,
    },
    /// Come back online after `Dereg`, through `via` or any member still known.
    Reg {
        /// The name to register (this node's).
        name: Option<String>,
        /// A member to rejoin through.
        via: Option<SocketAddr>,
    },
    /// Report the last `count` room messages ([`Event::History`]).
    History {
        /// How many.
        count: usize,
        /// Only messages whose text or sender contains this (ASCII case ignored).
        search: Option<String>,
    },
}

/// Something the user should see, or the driver should act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node is in the room (created it, or was welcomed).
    Joined {
        /// The leader's name.
        leader: String,
        /// Whether this node is the leader.
        is_leader: bool,
        /// Online members, this node included (for a room carried on after a restart,
        /// every member known, since the others are offline).
        members: usize,
    },
    /// Joining failed; the driver should report it and exit.
    JoinFailed(JoinError),
    /// Coming back after `dereg` failed through every member known; still offline.
    RegFailed(JoinError),
    /// A room message, in the room's total order.
    Room {
        /// The message.
        entry: ChatEntry,
        /// Whether this node sent it (its commit).
        mine: bool,
        /// Whether it is history: said before this node joined, or while it was offline.
        history: bool,
    },
    /// A private message for this node, or one this node sent.
    Direct {
        /// Sender's name.
        from: String,
        /// Everyone it was sent to.
        to: Vec<String>,
        /// Sender's Lamport time at send.
        lamport: Lamport,
        /// Sender's wall-clock time at send.
        sent_at: WallMillis,
        /// The text.
        text: String,
        /// Whether it was kept for this node while it was offline.
        offline: bool,
        /// Whether this node sent it (shown as it goes out; receipts follow).
        mine: bool,
        /// Whether it is shown again: taken just before the node last stopped, it may not
        /// have reached the screen then (see `driver/shown.rs`).
        history: bool,
    },
    /// A private message for an offline recipient was saved by the leader.
    Saved {
        /// The recipient.
        to: String,
        /// The leader that saved it.
        leader: String,
        /// Whether the recipient was online: the message went through the queue to
        /// stay behind an earlier one of ours the leader keeps for it.
        behind: bool,
    },
    /// This node went offline (`dereg`); it keeps running and can `reg` again.
    Deregistered {
        /// Own messages not yet confirmed; they are sent once the node is back.
        pending: usize,
    },
    /// Answer to [`Command::History`].
    History {
        /// Room messages, oldest first.
        entries: Vec<ChatEntry>,
        /// This node's id: entries with this origin are its own.
        own: NodeId,
        /// Whether the command searched (so no entries means no match).
        searched: bool,
    },
    /// A recipient acknowledged this node's private message.
    Receipt {
        /// The recipient.
        to: String,
    },
    /// A private message could not be delivered nor kept.
    Undelivered {
        /// The recipient.
        to: String,
        /// The text that was not delivered.
        text: String,
        /// Why.
        reason: String,
    },
    /// A member came online.
    MemberOnline {
        /// Its name.
        name: String,
    },
    /// A member went offline.
    MemberOffline {
        /// Its name.
        name: String,
    },
    /// The room has a new leader.
    LeaderChanged {
        /// Its name.
        name: String,
    },
    /// A peer stopped acknowledging after every retry.
    PeerUnreachable {
        /// Its address.
        addr: SocketAddr,
        /// Its name, if it is in the member table.
        name: Option<String>,
    },
    /// Room messages this node sent that were not confirmed before it left.
    Unconfirmed {
        /// Their texts.
        texts: Vec<String>,
    },
    /// Answer to [`Command::List`]: online members first, then by name.
    Members(Vec<MemberView>),
    /// Answer to [`Command::Status`].
    Status(Box<StatusView>),
    /// A command was refused; nothing was sent.
    Error(CommandError),
    /// The graceful leave finished; the driver may exit.
    Left,
    /// Something the user should know that is not an error (a restarted node carrying
    /// its room on, say).
    Notice(String),
}

/// One line of `list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Online or not.
    pub online: bool,
    /// Whether it is the leader.
    pub leader: bool,
    /// Whether it is this node.
    pub me: bool,
}

/// Counters a node keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent (acks and retransmissions included; one datagram may carry several
    /// packets).
    pub sent: u64,
    /// Reliable messages resent after their ack timeout.
    pub retransmitted: u64,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams dropped: malformed, wrong version, oversized, or not for this node.
    pub dropped: u64,
    /// Reliable messages received again and suppressed.
    pub duplicates: u64,
    /// Reliable messages given up after every retry.
    pub gave_up: u64,
    /// Election tokens and announcements this node sent (not counting retransmissions).
    pub election_messages: u64,
    /// Datagrams refused before they reached the protocol (rate limit, room key, replay);
    /// counted by the driver, which fills this in.
    pub refused: u64,
    /// What a bound held back: kept messages past the offline queue's limits or for
    /// unknown names, joins past the join limits, datagrams to a stranger past three
    /// times what it sent (see the README's "Bounds").
    pub limited: u64,
    /// Room and direct messages refused because their origin's signature (or a direct
    /// message's seal) did not check: forged, altered, or not for this node.
    pub forged: u64,
}

/// One member's place on the ring, for drawing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSeat {
    /// Name.
    pub name: String,
    /// Whether it leads.
    pub leader: bool,
    /// Whether it is this node.
    pub me: bool,
    /// Whether this node's failure detector suspects it.
    pub suspected: bool,
}

/// Answer to `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// The ring as this node sees it, starting at this node and following `next`.
    pub ring: Vec<RingSeat>,
    /// This node's name.
    pub name: String,
    /// This node's id.
    pub id: NodeId,
    /// This node's address.
    pub addr: SocketAddr,
    /// Ring predecessor's name.
    pub prev: Option<String>,
    /// Ring successor's name.
    pub next: Option<String>,
    /// Leader's name.
    pub leader: Option<String>,
    /// Online members currently suspected by this node's failure detector.
    pub suspected: Vec<String>,
    /// Lamport clock.
    pub lamport: Lamport,
    /// Counters.
    pub stats: Stats,
    /// Reliable messages awaiting an ack.
    pub in_flight: usize,
    /// Own room messages awaiting commit.
    pub unconfirmed: usize,
    /// Room messages delivered and kept in history.
    pub history: usize,
    /// The voting configuration: the users a majority is counted among.
    pub voters: Vec<String>,
    /// How many of them this node can reach: the voters its member table holds online,
    /// itself included unless it is offline or out of the room.
    pub reachable: usize,
    /// Whether the room waits for a majority of them, as far as this node sees: a leader
    /// whose proposals no majority holds, or fewer than a majority reachable (cut off, or
    /// too many gone). Nothing is committed meanwhile, and messages typed wait.
    pub waiting_for_majority: bool,
}

/// Why a command was refused. In every case nothing was sent and no state changed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    /// Empty text.
    #[error("empty message")]
    Empty,
    /// Text over the limit.
    #[error("message is {len} bytes; the limit is {limit} bytes")]
    TooLong {
        /// The text's length in bytes.
        len: usize,
        /// The limit for that kind of message ([`MAX_TEXT_BYTES`] for the room,
        /// [`MAX_DIRECT_TEXT_BYTES`](crate::wire::MAX_DIRECT_TEXT_BYTES) for a private one).
        limit: usize,
    },
    /// No member of that name.
    #[error("no such user {0}")]
    UnknownRecipient(String),
    /// The recipient is offline.
    #[error("{0} is offline")]
    RecipientOffline(String),
    /// A private message to oneself.
    #[error("you cannot send a private message to yourself")]
    ToSelf,
    /// More recipients than allowed.
    #[error("at most {MAX_RECIPIENTS} recipients")]
    TooManyRecipients,
    /// The node is not in a room (still joining, leaving, or offline).
    #[error("not in the room (offline? type reg)")]
    NotInRoom,
    /// A private message while the node looks for its room (restarted, or cut off alone).
    #[error("looking for the room's members; private messages can be sent once they are found")]
    LookingForRoom,
    /// `dereg`/`reg` named someone else.
    #[error("{0} is not you; you can only (de)register yourself")]
    NotYou(String),
    /// `reg` while online.
    #[error("you are already online")]
    AlreadyOnline,
    /// `reg` with no member to rejoin through.
    #[error("no member known to rejoin through; give one: reg <name> <host:port>")]
    NoContact,
    /// The node's database could not be read for `history`.
    #[error("reading history: {0}")]
    HistoryUnreadable(String),
}

/// Why joining failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum JoinError {
    /// The contact never answered.
    #[error("no answer from {0} (is it running, and do you have the room's key?)")]
    Unreachable(SocketAddr),
    /// The contact answered but no welcome came in time.
    #[error("no welcome from the room's leader in time")]
    Timeout,
    /// The room refused.
    #[error("join refused: {0}")]
    Refused(Refusal),
}
