//! A member's new process proves itself to a member that has no leader to ask.
//!
//! Only a leader adds a member to the table (see `ring/members.rs`), and a member told of
//! one it never heard of asks its leader for the table. A member whose leader is gone
//! (or that leads itself) has nobody to ask: a member restarted under a new id while it
//! was cut off, and let in by a leader it does not follow, stays unknown to it, and every
//! datagram of the new process is dropped. A voter's pre-vote answers never count, and
//! the election tokens passed round the ring through any such process are lost: no round
//! ends, and the room can stay split for good (`sim_chaos` minority seeds 1880091 and
//! 1880441: a leader of an older term let a voter's new process in, the member followed
//! a newer term's dead leader; majority seeds 3235 and 3315: two leaders, each holding
//! the new processes of the other's followers unknown, neither's round coming back).
//!
//! So such a member asks the process to prove who it is: datagrams from a node not in
//! its table, at the address where it holds a member's earlier process offline, get a
//! challenge (at most one an address a second). The process signs the nonce with its
//! user's key, bound to its own id and to the challenger's; the signature checks against
//! the key the table holds for that member, and the new process takes the earlier one's
//! place here, online. Nothing else is taken on its word: not a name, not a key, not an
//! address (the challenge goes where its datagrams come from), and a process that said
//! goodbye stays gone. A member answers only a member it knows, about itself, at most
//! once a second each; the answer is bound to the challenger, so it cannot be passed on
//! as a join's proof to a leader.

use super::*;
use crate::wire::member_proof_message;

/// How often one address is challenged, or one member answered, at most.
const PROVE_EVERY: Duration = Duration::from_secs(1);
/// Challenges open at once, at most (the oldest is dropped).
const OPEN_MAX: usize = 16;

/// Challenges this member sent to unknown processes, and the limits on sending and
/// answering them.
#[derive(Debug)]
pub(in crate::proto::node) struct Proving {
    /// Open challenges: the process and where it spoke, the nonce, the entry of the
    /// member it would replace, and when it was asked.
    open: BTreeMap<(NodeId, SocketAddr), ([u8; 16], Member, Instant)>,
    /// Addresses challenged lately.
    asked: Quiet<SocketAddr>,
    /// Members answered lately.
    answered: Quiet<NodeId>,
}

impl Default for Proving {
    fn default() -> Self {
        Proving {
            open: BTreeMap::new(),
            asked: Quiet::new(PROVE_EVERY, OPEN_MAX),
            answered: Quiet::new(PROVE_EVERY, OPEN_MAX),
        }
    }
}

impl Node {
    /// A datagram from `sender`, a node not in our table, at `from`: if it may be a
    /// member's new process and no leader of ours can tell us, challenge it.
    pub(in crate::proto::node) fn ask_stranger_to_prove(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
    ) {
        if !self.life.is_member() || (!self.is_leader() && self.leader_leads()) {
            return;
        }
        if self.life.proving.asked.is_quiet(from, now) || self.life.vouchers.was_forgotten(sender) {
            return;
        }
        let Some(earlier) = self
            .ring
            .members()
            .entries()
            .find(|m| m.addr == from && m.presence == Presence::Offline && m.id != sender)
            .cloned()
        else {
            return;
        };
        if !self.life.proving.asked.due(from, now) {
            return;
        }
        if self.life.proving.open.len() >= OPEN_MAX
            && let Some(oldest) = self
                .life
                .proving
                .open
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(k, _)| *k)
        {
            self.life.proving.open.remove(&oldest);
        }
        let nonce: [u8; 16] = self.life.rng.random();
        log_at!(
            info,
            self,
            "{sender}, unknown here, speaks from {}'s address; asking it to prove it is {}",
            earlier.name,
            earlier.name
        );
        self.life
            .proving
            .open
            .insert((sender, from), (nonce, earlier, now));
        let challenge = Message::Challenge {
            nonce,
            newcomer: sender,
            of_member: true,
        };
        self.send_reliable(now, from, challenge, Token::Control);
    }

    /// A member we know challenges us, a member too, to prove who we are (see the module
    /// documentation): answered, bound to it. Whether it was answered.
    pub(in crate::proto::node) fn prove_to_member(
        &mut self,
        now: Instant,
        from: SocketAddr,
        challenger: NodeId,
        nonce: [u8; 16],
    ) -> bool {
        let known = self
            .ring
            .members()
            .get(challenger)
            .is_some_and(|m| m.addr == from);
        if !known || !self.life.takes_part() || !self.life.proving.answered.due(challenger, now) {
            return false;
        }
        let message = member_proof_message(&nonce, self.ctx.id, &self.ctx.cfg.name, challenger);
        let signature = self.life.identity.sign(&message).to_bytes().to_vec();
        self.send_reliable(now, from, Message::Proof { signature }, Token::Control);
        true
    }

    /// A proof from `sender` at `from`: if it answers a challenge of ours (see
    /// [`Node::ask_stranger_to_prove`]) and checks, the process takes its member's earlier
    /// process's place. Whether it answered one of ours (a proof that does not check, from
    /// a process whose join we challenged too, is left to the join's check).
    pub(in crate::proto::node) fn on_member_proof(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        signature: &[u8],
    ) -> bool {
        let Some((nonce, earlier, _)) = self.life.proving.open.remove(&(sender, from)) else {
            return false;
        };
        let message = member_proof_message(&nonce, sender, &earlier.name, self.ctx.id);
        let checks = <[u8; 64]>::try_from(signature).ok().is_some_and(|sig| {
            VerifyingKey::from_bytes(&earlier.key).is_ok_and(|key| {
                key.verify_strict(&message, &Signature::from_bytes(&sig))
                    .is_ok()
            })
        });
        if !checks && self.life.pending_proofs.contains_key(&(sender, from)) {
            // A process asking us, leading, to take it in answers our join's challenge
            // too, and a proof does not say which it answers: this one may be the join's,
            // which checks it next.
            return false;
        }
        if !checks {
            self.refuse_forged(
                now,
                1,
                &format!("a proof for {} that does not check", earlier.name),
            );
            return true;
        }
        // Taken since, or gone for good: nothing to replace.
        let still = self
            .ring
            .members()
            .get(earlier.id)
            .is_some_and(|m| m.addr == from && m.presence == Presence::Offline);
        if !still || self.ring.members().get(sender).is_some() {
            return true;
        }
        log_at!(
            info,
            self,
            "{sender} proves it is {}'s process at {from}; taking it in place of {}",
            earlier.name,
            earlier.id
        );
        let entry = Member {
            id: sender,
            presence: Presence::Online,
            stamp: Stamp {
                lamport: self.ctx.clock.tick(),
                by: self.ctx.id,
            },
            ..earlier
        };
        if self.ring.merge(entry.clone()) == Change::CameOnline {
            self.forget_replaced_at(&entry, self.leader());
            self.member_came_online(now, &entry);
        }
        true
    }
}
