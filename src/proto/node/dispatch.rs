//! Dispatch: which received message goes to which handler, in which phase, and what
//! an ack or a give-up of one of our own reliable messages means.

use super::*;

/// Why a ring message from a member held offline is not taken (until it is back: see
/// `Node::park_ring_message`).
pub(super) const RING_FROM_OFFLINE: &str = "election message from a member not online";

/// The most parts a welcome can have: the largest member table, chunked, and one naming
/// the voters it holds no entry for.
const MAX_WELCOME_PARTS: u16 = (MAX_MEMBERS / MEMBERS_PER_DATAGRAM + 2) as u16;

impl Node {
    /// Checks a message against what its sender may say, before it is acked or handled.
    /// Only joins come from strangers; everything else must come from a node in the
    /// member table, with values in range. (Without a room key, a sender's identity is
    /// only as good as its claim: see the README.)
    pub(super) fn admissible(
        &self,
        now: Instant,
        (sender, lamport): (NodeId, Lamport),
        from: SocketAddr,
        msg: &Message,
    ) -> Result<(), &'static str> {
        let known = self.ring.members().get(sender).is_some();
        // A member speaks from the address it joined with: another address claiming its id
        // is someone else.
        let impersonated = self
            .ring
            .members()
            .get(sender)
            .is_some_and(|m| m.addr != from);
        match msg {
            // Anyone may ask to join, but not under the id of a member elsewhere: that
            // would take ids of the member's own stream here, and its real messages
            // under them would be acked as duplicates and never handled.
            Message::Join { .. } if impersonated => {
                Err("join under a member's id from another address")
            }
            Message::Join { .. } => Ok(()),
            // Acked from anyone (a late copy of one we answered must not be resent for
            // ever), answered only while we are joining (see `on_challenge`).
            Message::Challenge { .. } => Ok(()),
            // The same: acked from anyone, taken only as the answer to a challenge still
            // open (see `on_proof`). A newcomer answers each challenge, and a proof left
            // unacked would hold back its next join behind it until it gave us up.
            Message::Proof { .. } => Ok(()),
            // A stamp is a Lamport time of its writer, which every later datagram of its
            // relays exceeds: one later than the datagram carrying it is forged. Nor may
            // it be beyond what a clock can be pushed to: the member it is about must be
            // able to outdo it.
            Message::Members(list) if list.iter().any(|m| !stamp_in_range(m, lamport)) => {
                Err("member entry stamped later than its datagram")
            }
            Message::Welcomed { newcomer: m } if !stamp_in_range(m, lamport) => {
                Err("member entry stamped later than its datagram")
            }
            Message::Vouched(v) if !stamp_in_range(&v.entry, lamport) => {
                Err("member entry stamped later than its datagram")
            }
            // Our own voucher, from the leader that let us in, before its welcome is taken
            // (not acked then: it comes again once we are in).
            Message::Vouched(v) if !known && v.entry.id == self.ctx.id => Ok(()),
            // A member shows its leader's voucher to one that may not know it: its own
            // entry, from its own address (see `life/voucher.rs`).
            Message::Vouched(v) if !known => {
                if v.entry.id != sender || v.entry.addr != from || !valid_name(&v.entry.name) {
                    Err("voucher for another node")
                } else {
                    Ok(())
                }
            }
            Message::Welcome(w) if w.members.iter().any(|m| !stamp_in_range(m, lamport)) => {
                Err("member entry stamped later than its datagram")
            }
            Message::Welcome(w) => {
                if w.parts == 0 || w.parts > MAX_WELCOME_PARTS || w.part >= w.parts {
                    Err("welcome with impossible parts")
                } else if w.newcomer != self.ctx.id {
                    // Not acked: its sender gives up on the process it was meant for.
                    Err("welcome for another node (an earlier process at this address?)")
                } else if w.epoch.leader != sender && !known {
                    Err("welcome not from the leader it names")
                } else if w.epoch.term > MAX_TERM {
                    Err("welcome naming a term out of range")
                } else if w.unlisted_voters.len() > MAX_VOTERS + 1
                    || !w.unlisted_voters.iter().all(|u| valid_name(u))
                {
                    Err("welcome naming an invalid voter")
                } else {
                    Ok(())
                }
            }
            Message::JoinRefused { .. } => Ok(()),
            _ if !known => Err("message from a node not in the member table"),
            _ if impersonated => Err("member id from another address"),
            Message::Welcomed { newcomer: m } if !valid_name(&m.name) => {
                Err("member entry with an invalid name")
            }
            Message::Members(list) => {
                if list.iter().all(|m| valid_name(&m.name)) {
                    Ok(())
                } else {
                    Err("member entry with an invalid name")
                }
            }
            _ if message_term(msg).is_some_and(|t| !self.term_in_range(now, t)) => {
                Err("term out of range")
            }
            Message::Election { .. } | Message::Elected(_)
                if !self.ring.members().is_online(sender) =>
            {
                Err(RING_FROM_OFFLINE)
            }
            // Only a leader asks what a member holds for its term: its own word.
            Message::SyncRequest { epoch, .. } if epoch.leader != sender => {
                Err("sync request for another leader")
            }
            _ => Ok(()),
        }
    }

    // ----- dispatch -----

    /// Whether a reliable message may be handled in the current phase. Messages that are
    /// not yet welcome are left unacked so that the sender retries them later.
    pub(super) fn accepts_now(&self, msg: &Message) -> bool {
        match self.life.phase() {
            // A restarted node tells other restarted ones that it is looking too.
            Phase::Joining { .. }
                if self.is_restarting() && matches!(msg, Message::Join { .. }) =>
            {
                true
            }
            Phase::Joining { .. } => matches!(
                msg,
                Message::Welcome(_) | Message::JoinRefused { .. } | Message::Challenge { .. }
            ),
            Phase::Member | Phase::Leaving { .. } => true,
            Phase::Offline | Phase::Done => false,
        }
    }

    pub(super) fn on_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        id: MsgId,
        msg: Message,
    ) {
        match msg {
            Message::Join { name, key } => {
                let newcomer = Newcomer {
                    id: sender,
                    name,
                    key,
                    addr: from,
                };
                self.on_join(now, newcomer)
            }
            Message::JoinForward(newcomer) => self.on_join_forward(now, newcomer),
            Message::Challenge {
                nonce,
                newcomer,
                of_member,
            } => self.on_challenge(now, (from, sender), nonce, newcomer, of_member),
            Message::Proof { signature } => self.on_proof(now, from, sender, &signature),
            Message::Welcome(w) => self.on_welcome(now, from, sender, w),
            Message::JoinRefused { reason } => self.on_join_refused(now, reason),
            Message::Members(list) => {
                if self.life.is_member() || matches!(self.life.phase(), Phase::Leaving { .. }) {
                    self.on_members(now, from, sender, list)
                }
            }
            Message::Welcomed { newcomer } => self.on_welcomed(now, sender, newcomer),
            Message::Submit(s) => self.on_submit(now, sender, s),
            Message::Sequenced(e) => self.on_sequenced_from(now, sender, e),
            Message::SyncEntry(e) => self.on_sync_entry(now, (from, sender), id, e),
            Message::Fetch { from: a, to: b } => self.on_fetch(now, from, a, b),
            Message::Direct(dm) => self.on_direct(now, sender, dm, false),
            Message::Store { to, dm } => self.on_store(now, from, sender, to, dm),
            Message::Saved { id, to, full } => self.on_saved(now, id, to, full),
            Message::Queued(item) => self.on_queued(now, (from, sender, id), item),
            Message::Dequeued { origin, id, to } => self.on_dequeued(origin, id, to),
            Message::Handover(item) => self.on_direct(now, item.origin, item.dm, true),
            Message::Election {
                term,
                candidate,
                log,
            } => self.on_election(now, term, Candidate { log, id: candidate }),
            Message::Elected(epoch) => self.on_elected(now, sender, epoch),
            Message::ProbeFor { target } => self.on_probe_for(now, from, target),
            Message::Alive { target } => self.on_alive(now, from, target),
            Message::Probing { target } => self.on_probing(now, from, target),
            Message::WelcomeTaken => self.on_welcome_taken(now, sender),
            Message::Vouched(v) => self.on_vouched(now, from, sender, v),
            Message::SyncRequest { epoch, from: first } => {
                self.on_sync_request(now, from, sender, epoch, first)
            }
            Message::SyncReply {
                epoch,
                next,
                high,
                sent,
                votes,
            } => self.on_sync_reply(now, sender, id, epoch, (next, high), (sent, votes)),
            Message::Commit { term, upto } => self.on_commit(now, sender, term, upto),
            Message::Leave => self.on_leave_request(now, sender),
            Message::Forgotten { from: a, to: b } => self.on_forgotten(now, sender, a, b),
            Message::Forget(list) => self.on_forget(sender, list),
            Message::Settled { origin, origin_seq } => {
                self.on_settled(now, sender, origin, origin_seq)
            }
            Message::PreVote { term, follows } => self.on_prevote(now, from, sender, term, follows),
            Message::PreVoteReply {
                term,
                granted,
                follows,
            } => self.on_prevote_reply(now, sender, term, granted, follows),
        }
    }

    /// Our reliable messages that were never acked: their parts decide what that means,
    /// and the user hears of each member that stopped answering. A join attempt that got
    /// no answer is not such news: joining says itself what became of it (a restarted
    /// node tries every member it saved, long gone ones too).
    pub(super) fn on_gave_up(&mut self, now: Instant, gave_up: Vec<GaveUp<Token>>) {
        let mut unreachable: Vec<SocketAddr> = Vec::new();
        for g in gave_up {
            self.transport.note_gave_up();
            // Nor is a pre-vote's: a node cut off asks every voter again and again.
            let quiet = matches!(
                g.token,
                Token::Life(LifeToken::Join) | Token::Ring(RingToken::PreVote)
            );
            self.settle(now, g.to, g.token, Fate::GaveUp);
            if !quiet && !unreachable.contains(&g.to) {
                unreachable.push(g.to);
            }
        }
        for addr in unreachable {
            let name = self
                .ring
                .members()
                .entries()
                .find(|m| m.addr == addr)
                .map(|m| m.name.clone());
            let who = name.as_deref().unwrap_or("not a member");
            log_at!(warn, self, "peer {addr} ({who}) unreachable");
            // Only members concern the user (a refused newcomer that went away does not).
            if name.is_some() {
                self.ctx.out.event(Event::PeerUnreachable { addr, name });
            }
        }
    }
}

/// Whether `m`'s stamp may come in a datagram stamped `lamport` (see `admissible`).
fn stamp_in_range(m: &Member, lamport: Lamport) -> bool {
    m.stamp.lamport <= lamport && m.stamp.lamport <= LamportClock::MAX_STAMP
}

/// The election term a message names, if any (a committed copy's marker is none). A
/// welcome's is not judged against what this node knows: a newcomer knows nothing yet.
pub(super) fn message_term(msg: &Message) -> Option<u64> {
    match msg {
        Message::Election { term, .. }
        | Message::Commit { term, .. }
        | Message::PreVote { term, .. }
        | Message::PreVoteReply { term, .. } => Some(*term),
        Message::Elected(e) | Message::SyncRequest { epoch: e, .. } => Some(e.term),
        Message::SyncReply { epoch, .. } => Some(epoch.term),
        Message::Sequenced(e) if e.term != room::COMMITTED_TERM => Some(e.term),
        _ => None,
    }
}

pub(super) fn msg_kind(msg: &Message) -> &'static str {
    match msg {
        Message::Join { .. } => "Join",
        Message::JoinForward(_) => "JoinForward",
        Message::Challenge { .. } => "Challenge",
        Message::Proof { .. } => "Proof",
        Message::Welcome(_) => "Welcome",
        Message::JoinRefused { .. } => "JoinRefused",
        Message::Members(_) => "Members",
        Message::Welcomed { .. } => "Welcomed",
        Message::Submit(_) => "Submit",
        Message::Sequenced(_) => "Sequenced",
        Message::SyncEntry(_) => "SyncEntry",
        Message::Fetch { .. } => "Fetch",
        Message::Commit { .. } => "Commit",
        Message::Leave => "Leave",
        Message::Forgotten { .. } => "Forgotten",
        Message::ProbeFor { .. } => "ProbeFor",
        Message::Alive { .. } => "Alive",
        Message::Probing { .. } => "Probing",
        Message::WelcomeTaken => "WelcomeTaken",
        Message::Vouched(_) => "Vouched",
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
        Message::Forget(_) => "Forget",
        Message::Settled { .. } => "Settled",
        Message::PreVote { .. } => "PreVote",
        Message::PreVoteReply { .. } => "PreVoteReply",
    }
}
