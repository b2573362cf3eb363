//! Who is in the room, on the wire: the join exchange (a newcomer, its identity proof, a
//! refusal), the leader's welcome, and the member table's entries with their stamps.

use crate::ids::{Lamport, NodeId, Seq};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use super::{Epoch, MAX_NAME_BYTES};

/// An ed25519 public key: a user's identity.
pub type PublicKey = [u8; 32];

/// A newcomer as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Newcomer {
    /// Its node id.
    pub id: NodeId,
    /// The name it asks for.
    pub name: String,
    /// Its identity.
    pub key: PublicKey,
    /// Its address as the contact saw it.
    pub addr: SocketAddr,
}

/// What a newcomer signs to prove its identity: the leader's nonce bound to its node id and
/// the name it asks for (a captured proof is worth nothing for another join).
pub fn proof_message(nonce: &[u8; 16], id: NodeId, name: &str) -> Vec<u8> {
    let mut m = b"ringchat join proof v1".to_vec();
    m.extend_from_slice(nonce);
    m.extend_from_slice(&id.0.to_le_bytes());
    m.extend_from_slice(name.as_bytes());
    m
}

/// What a member signs to prove to `asker`, another member, that process `id` is user
/// `name`'s (see `proto::node::life::proven`): bound to the asker, so that it proves
/// nothing to anyone else (a join's proof, [`proof_message`], is another text).
pub fn member_proof_message(nonce: &[u8; 16], id: NodeId, name: &str, asker: NodeId) -> Vec<u8> {
    let mut m = b"ringchat member proof v1".to_vec();
    m.extend_from_slice(nonce);
    m.extend_from_slice(&id.0.to_le_bytes());
    m.extend_from_slice(&asker.0.to_le_bytes());
    m.extend_from_slice(name.as_bytes());
    m
}

/// A leader's signed word that it let a member in: the member's entry as the leader's
/// table had it, and the epoch it led. The member keeps it and shows it to any member of
/// that epoch that never heard of it (the leader died before its word went round), which
/// checks the signature against the leader's key in its own table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// The member let in.
    pub entry: Member,
    /// The leader that let it in, and its round.
    pub epoch: Epoch,
    /// The leader's ed25519 signature over [`voucher_message`].
    pub signature: Vec<u8>,
}

/// What a leader signs when it vouches for a member it let in (see [`Voucher`]).
pub fn voucher_message(entry: &Member, epoch: &Epoch) -> Vec<u8> {
    let mut m = b"ringchat voucher v1".to_vec();
    m.extend_from_slice(&epoch.term.to_le_bytes());
    m.extend_from_slice(&epoch.leader.0.to_le_bytes());
    m.extend_from_slice(&entry.id.0.to_le_bytes());
    m.extend_from_slice(&entry.key);
    m.extend_from_slice(&entry.stamp.lamport.0.to_le_bytes());
    m.extend_from_slice(&entry.stamp.by.0.to_le_bytes());
    m.push(match entry.presence {
        Presence::Online => 1,
        Presence::Offline => 0,
    });
    m.extend_from_slice(entry.addr.to_string().as_bytes());
    m.push(0);
    m.extend_from_slice(entry.name.as_bytes());
    m
}

/// Why a join was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Another online member already has this name.
    NameTaken,
    /// The name is empty, too long, or has whitespace or commas.
    BadName,
    /// The member table cannot take another member.
    RoomFull,
    /// The room has no leader right now (an election is running); try again shortly.
    NoLeader,
    /// The name is bound to another identity in this room.
    NameOwned,
    /// The identity proof did not verify.
    BadProof,
    /// Too many joins from this address just now.
    Throttled,
    /// This name is online from another process with the same identity (a restart the
    /// room has not noticed yet); try again shortly.
    StillOnline,
    /// The contact is itself a restarted member still looking for its room.
    Restarting,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NameTaken => write!(f, "that name is already online in the room"),
            Refusal::BadName => write!(
                f,
                "invalid name (1 to {MAX_NAME_BYTES} bytes, no spaces or commas)"
            ),
            Refusal::RoomFull => write!(f, "the room is full"),
            Refusal::NoLeader => write!(f, "the room has no leader right now; try again"),
            Refusal::NameOwned => write!(f, "that name belongs to another identity in this room"),
            Refusal::BadProof => write!(f, "the identity proof did not verify"),
            Refusal::Throttled => write!(f, "too many joins from your address; try again soon"),
            Refusal::StillOnline => write!(
                f,
                "that name is still online from another process with your identity"
            ),
            Refusal::Restarting => write!(
                f,
                "that member is restarting and not in a room yet; try again shortly"
            ),
        }
    }
}

/// One part of the leader's welcome to a newcomer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The node welcomed: a new process at the same address (the old one crashed while
    /// the welcome was being resent) does not take it for its own.
    pub newcomer: NodeId,
    /// The current leader and its election round.
    pub epoch: Epoch,
    /// The first sequence number the newcomer will be sent.
    pub next_seq: Seq,
    /// The oldest room message the leader still keeps (history can be fetched from here).
    pub oldest: Seq,
    /// The leader's delivery point: every number before it is committed, any from it on
    /// may be a proposal still waiting for a majority. A newcomer holds the log from here
    /// at the latest, so that every proposal it may be asked to ack is one it can hold.
    pub pending_from: Seq,
    /// Which part this is (0-based).
    pub part: u16,
    /// How many parts the table spans.
    pub parts: u16,
    /// Member table entries of this part.
    pub members: Vec<Member>,
    /// Which of this part's members vote: bit `i % 8` of byte `i / 8` for `members[i]`.
    pub voting: Vec<u8>,
    /// Voters with no entry in the leader's table, so no bit in `voting` (their entries
    /// were forgotten, or never saved across a restart): named in a part of their own
    /// after the table's, which carries no members.
    pub unlisted_voters: Vec<String>,
    /// The configuration sent is the one in effect after this entry.
    pub voters_at: Seq,
    /// Which of this part's members are still being welcomed themselves (their silence
    /// gets the newcomer's grace), bits as in `voting`.
    pub settling: Vec<u8>,
    /// The leader's voucher for the newcomer, in every part: a newcomer holds it before it
    /// can ack anything as a member, so before its addition to the voters can commit on
    /// its ack (see `proto::node::life::voucher`).
    pub voucher: Option<Box<Voucher>>,
}

/// A member's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    /// In the ring.
    Online,
    /// Known but not in the ring (left, crashed, or deregistered).
    Offline,
}

/// Version of a member-table entry: the Lamport time of the change, ties broken by writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    /// Lamport time of the change.
    pub lamport: Lamport,
    /// The node that made the change.
    pub by: NodeId,
}

/// One entry of the member table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node.
    pub id: NodeId,
    /// Its user's name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Online or offline.
    pub presence: Presence,
    /// The identity the name is bound to.
    pub key: PublicKey,
    /// Version of this entry.
    pub stamp: Stamp,
}
