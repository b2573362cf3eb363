//! The leader's side of a join: pass a join on to the leader, check the name and the
//! joins-per-second limit, challenge the newcomer, verify its proof, admit and welcome it.

use super::*;

/// Newcomers the leader waits on for an identity proof, at most (the oldest is dropped).
pub(super) const MAX_PENDING_PROOFS: usize = 256;

/// Challenges for one node id a proof from elsewhere is checked against, at most (the
/// latest first).
const PROOF_TRIES_ELSEWHERE: usize = 4;

impl Node {
    /// A newcomer asked us to let it in: check it if we lead, else pass it to the leader.
    pub(in crate::proto::node) fn on_join(&mut self, now: Instant, n: Newcomer) {
        let taken_at = self.ctx.clock.now();
        self.join_taken_at(now, n, taken_at);
    }

    /// [`Node::on_join`] for a join taken at our Lamport time `taken_at` (earlier than now
    /// when passing it to the leader failed and it is handled again).
    pub(in crate::proto::node) fn join_taken_at(
        &mut self,
        now: Instant,
        n: Newcomer,
        taken_at: Lamport,
    ) {
        if self.is_restarting() {
            return self.refuse(now, n.addr, Refusal::Restarting);
        }
        if !self.life.is_member() {
            return self.refuse(now, n.addr, Refusal::NoLeader);
        }
        if self.leader_addr().is_none() && !self.is_leader() {
            // No leader to pass it to. A node our table has online asking to join is not
            // in the ring, whatever the table says (a leader that died admitted it, and
            // its welcome never came): cut it out here, or the ring would pass election
            // tokens to a node that drops them, and no round could end.
            self.cut_out_joiner(now, &n, taken_at);
            if self.seeks_prevote_of(&n.name)
                && self
                    .ring
                    .members()
                    .by_name(&n.name)
                    .is_some_and(|m| m.key == n.key)
            {
                // A voter restarted and looking for the room: once it proves who it is,
                // that is its yes to our pre-vote (see `ring/prevote.rs`).
                return self.challenge(now, n);
            }
            return self.refuse(now, n.addr, Refusal::NoLeader);
        }
        if !self.is_leader() && self.is_leaders_user(&n) {
            // The leader we follow asks to be let in, from its address: it went offline
            // still a voter (its leave waited its bounded time for its removal, then
            // went) and is back by `reg`, or its user restarted it under a new id.
            // Passing its join on would send it to itself, for good, while we wait for
            // our leader to lead. Challenged: its proof shows that our leader is not in
            // the ring, and is its yes to the round this node then seeks (`on_proof`).
            return self.challenge(now, n);
        }
        self.survivor_asks_in(now, &n);
        // Taken up once this new leader has taken over sequencing; a returning voter is
        // let in at once (its answer may be the one recovery waits for). That is a voter
        // of the configuration the log ends with, whose addition may not be known
        // committed yet, or of the committed one, whose removal may not be: recovery
        // counts a majority of both (a paused voter whose removal was in flight waited
        // for the recovery timeout).
        let votes =
            |u: &String| self.room.log_voters().contains(u) || self.room.voters().contains(u);
        let n = if votes(&n.name) {
            n
        } else {
            let Some(n) = self.room.hold_join(n, MAX_PENDING_PROOFS) else {
                return;
            };
            n
        };
        match self.leader_addr() {
            _ if self.is_leader() => self.challenge(now, n),
            Some(leader) => {
                log_at!(debug, self, "passing {}'s join to the leader", n.name);
                let token = Token::Life(LifeToken::Forward {
                    newcomer: n.clone(),
                    taken_at,
                });
                self.send_reliable(now, leader, Message::JoinForward(n), token);
            }
            None => self.refuse(now, n.addr, Refusal::NoLeader),
        }
    }

    pub(in crate::proto::node) fn on_join_forward(&mut self, now: Instant, n: Newcomer) {
        // The contact received at least the join itself from there: what the answers
        // from here may be three times of (see `proto::limits`).
        if !self.ring.members().has_addr(n.addr) {
            let join = Message::Join {
                name: n.name.clone(),
                key: n.key,
            };
            // The packet, and the smallest header a datagram carrying it has.
            let bytes = data_packet(MsgId::new(0, 1), join).map_or(0, |p| p.len())
                + 4
                + self.ctx.cfg.wire_overhead;
            self.transport.budget.credit_join(now, n.addr, bytes);
        }
        if self.is_leader() && self.life.phase == Phase::Member {
            self.on_join(now, n);
        } else {
            self.refuse(now, n.addr, Refusal::NoLeader);
        }
    }

    /// The leader's first check: a valid name not bound to another identity, not too many
    /// joins from one address; then the newcomer must prove its identity.
    fn challenge(&mut self, now: Instant, n: Newcomer) {
        if !valid_name(&n.name) {
            return self.refuse(now, n.addr, Refusal::BadName);
        }
        let owned = self
            .ring
            .members()
            .entries()
            .any(|m| m.name == n.name && m.key != n.key);
        if owned {
            return self.refuse(now, n.addr, Refusal::NameOwned);
        }
        if !self.join_allowed(now, n.addr) {
            // Said once; further joins from there in this second get no answer at all.
            return;
        }
        // A newcomer that asked twice from one address (directly and through a member,
        // say) gets the same challenge both times, so whichever proof arrives verifies.
        // A challenge is kept per node id and address: a join under the newcomer's id
        // from elsewhere (anyone may send one) gets a challenge of its own, and replaces
        // none sent to the newcomer.
        let nonce: [u8; 16] = match self.life.pending_proofs.get(&(n.id, n.addr)) {
            Some((nonce, old, _)) if old.key == n.key && old.name == n.name => *nonce,
            _ => self.life.rng.random(),
        };
        if self.life.pending_proofs.len() >= MAX_PENDING_PROOFS
            && let Some(oldest) = self
                .life
                .pending_proofs
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(id, _)| *id)
        {
            self.life.pending_proofs.remove(&oldest);
        }
        let (addr, newcomer) = (n.addr, n.id);
        self.life
            .pending_proofs
            .insert((n.id, n.addr), (nonce, n, now));
        let challenge = Message::Challenge {
            nonce,
            newcomer,
            of_member: false,
        };
        self.send_reliable(now, addr, challenge, Token::Control);
    }

    /// At most 20 joins a second from one IP address and 100 from all together (see
    /// `proto::limits`): past an address's limit it is told once that second, past the
    /// room's nobody is answered (the joiner asks again a second later).
    fn join_allowed(&mut self, now: Instant, addr: SocketAddr) -> bool {
        match self.life.join_limits.check(now, addr.ip()) {
            JoinVerdict::Take => true,
            JoinVerdict::Refuse => {
                self.note_limited(now, &format!("too many joins from {}", addr.ip()));
                self.refuse(now, addr, Refusal::Throttled);
                false
            }
            JoinVerdict::Ignore => {
                self.note_limited(now, "too many joins this second");
                false
            }
        }
    }

    /// A newcomer's proof: admit it if the signature is its identity's.
    pub(in crate::proto::node) fn on_proof(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        signature: &[u8],
    ) {
        if self.on_member_proof(now, from, sender, signature) {
            return;
        }
        let (challenged, verified) = if self.life.pending_proofs.contains_key(&(sender, from)) {
            let (nonce, n, _) = &self.life.pending_proofs[&(sender, from)];
            ((sender, from), proof_checks(nonce, n, signature))
        } else {
            // Not from an address a challenge for that id went to: the newcomer's from
            // another address of its host, perhaps, but mostly a forger's. It is checked
            // against the id's latest few challenges (a forged join after the real one
            // makes one more), only now and then, so that proofs from anywhere cannot
            // cost signature checks each.
            let mut open: Vec<((NodeId, SocketAddr), Instant)> = self
                .life
                .pending_proofs
                .iter()
                .filter(|((id, _), _)| *id == sender)
                .map(|(key, (_, _, at))| (*key, *at))
                .collect();
            let Some(&(latest, _)) = open.iter().max_by_key(|(_, at)| *at) else {
                return;
            };
            if !self.life.proofs_elsewhere.due(sender, now) {
                let name = &self.life.pending_proofs[&latest].1.name;
                let why = format!("a join proof for {name} from {from}, unchecked");
                return self.refuse_forged(now, 1, &why);
            }
            open.sort_unstable_by_key(|(_, at)| std::cmp::Reverse(*at));
            let pending = &self.life.pending_proofs;
            let found = open.iter().take(PROOF_TRIES_ELSEWHERE).find(|(key, _)| {
                let (nonce, n, _) = &pending[key];
                proof_checks(nonce, n, signature)
            });
            match found {
                Some(&(key, _)) => (key, true),
                None => (latest, false),
            }
        };
        let Some((nonce, n, asked_at)) = self.life.pending_proofs.remove(&challenged) else {
            return;
        };
        if !self.is_leader() || !self.life.is_member() {
            // Challenged while leading, deposed since: the newcomer asks again, and its
            // contact passes it to whoever leads now. A welcome from here would name
            // another leader, and the newcomer would rightly refuse it. Or challenged
            // as a voter while this node seeks a round: its proof is its yes.
            if verified && self.life.is_member() {
                if self.is_leaders_user(&n) {
                    // Our leader's user, proven to be asking in (see `join_taken_at`):
                    // our leader is not in the ring; we seek a round, and its proof is
                    // its yes.
                    self.cut_out_leader_asking_in(now, &n);
                }
                self.prevote_granted_by(now, &n.name);
            }
            return self.refuse(now, n.addr, Refusal::NoLeader);
        }
        if verified {
            self.admit(now, n);
        } else if self
            .ring
            .members()
            .get(n.id)
            .is_some_and(|m| m.presence == Presence::Online && m.key == n.key)
        {
            // Admitted already: a late copy of its join got a new challenge, and this is
            // a late copy of its answer to the first. Refusing would end a join that
            // succeeded; the challenge stays open for its answer, if any.
            log_at!(
                debug,
                self,
                "a stale proof from {}, already admitted",
                n.name
            );
            self.life.pending_proofs.insert(challenged, (nonce, n, now));
        } else {
            // Only a forger sends a bad proof: an honest newcomer signs with the key its
            // join names. Refusing would end the real newcomer's join on anyone's word;
            // the challenge stays open for its answer (or the newcomer's next join).
            let why = format!("a join proof for {} that does not check", n.name);
            self.refuse_forged(now, 1, &why);
            self.life
                .pending_proofs
                .insert(challenged, (nonce, n, asked_at));
        }
    }

    fn refuse(&mut self, now: Instant, addr: SocketAddr, reason: Refusal) {
        log_at!(info, self, "refusing join from {addr}: {reason}");
        self.send_reliable(now, addr, Message::JoinRefused { reason }, Token::Control);
    }

    /// The leader's admission of a proven newcomer: add it, welcome it, tell everyone.
    fn admit(&mut self, now: Instant, n: Newcomer) {
        let Newcomer {
            id,
            name,
            key,
            addr,
        } = n;
        if let Some(holder) = self.ring.members().by_name(&name)
            && holder.presence == Presence::Online
            && holder.id != id
        {
            // The same identity from a new process: a restart, while the room has not yet
            // noticed that the old process is gone (it will within a second).
            let reason = if holder.key == key {
                Refusal::StillOnline
            } else {
                Refusal::NameTaken
            };
            return self.refuse(now, addr, reason);
        }
        let already = self.ring.members().is_online(id);
        if !already {
            if self.ring.members().len() >= MAX_MEMBERS && self.ring.members().get(id).is_none() {
                return self.refuse(now, addr, Refusal::RoomFull);
            }
            let entry = Member {
                id,
                name: name.clone(),
                addr,
                presence: Presence::Online,
                key,
                stamp: Stamp {
                    lamport: self.ctx.clock.tick(),
                    by: self.ctx.id,
                },
            };
            self.ring.merge(entry.clone());
            // Admitted: its address is a member's, no longer held to a stranger's budget.
            self.transport.budget.forget(addr);
            self.ring.arrived(id, now);
            log_at!(info, self, "admitted {name} ({id}) at {addr}");
            self.ctx
                .out
                .event(Event::MemberOnline { name: name.clone() });
            // Everyone else learns of the newcomer; the newcomer gets the whole table.
            let others: Vec<SocketAddr> = self
                .ring
                .members()
                .online_peers()
                .filter(|m| m.id != id)
                .map(|m| m.addr)
                .collect();
            for peer in others {
                let msg = Message::Members(vec![entry.clone()]);
                self.send_reliable(now, peer, msg, Token::Control);
            }
        }
        let next_seq = self.room.next_seq();
        // With a database, what memory no longer holds is read from disk when asked for
        // (and what is not there either is said to be gone then). Without, what a fetch
        // is answered from (see `on_fetch`): the history, else what waits for a majority.
        let oldest = if self.ctx.cfg.persist {
            Seq(1)
        } else {
            self.room.oldest_or(self.room.next())
        };
        // The committed configuration, as of its last change: the newcomer holds the log
        // from before the first uncommitted number (see `Room::welcomed`), so a change
        // in flight reaches it as a held entry, counted while held and applied once
        // committed. Taken as applied, a change that a later leader overwrote would stay
        // in its configuration for good.
        let (voters, voters_at) = self.room.committed_voters();
        // A voter this table holds no entry for has no bit to carry it: it is named in a
        // part of its own, or the newcomer would count majorities among fewer voters
        // than the room does (`sim_chaos` majority seed 3722: a leader restarted with
        // one saved member welcomed a member into a configuration of itself alone, and
        // two numbers got two committed entries).
        let unlisted: Vec<String> = voters
            .iter()
            .filter(|u| self.ring.members().by_name(u).is_none())
            .cloned()
            .collect();
        let mut chunks = self.ring.members().chunks();
        let names_part = (!unlisted.is_empty()).then_some(chunks.len());
        if names_part.is_some() {
            chunks.push(Vec::new());
        }
        let parts = chunks.len() as u16;
        // Members still being welcomed themselves may not answer yet. Those gone
        // meanwhile, or admitted longer than a join timeout ago (their word is no longer
        // awaited: their watchers' grace is over anyway), are not kept.
        let members = self.ring.members();
        let join_timeout = self.ctx.cfg.join_timeout;
        self.life.welcome_unconfirmed.retain(|m, at| {
            *m != id && members.is_online(*m) && now.saturating_duration_since(*at) < join_timeout
        });
        let settling: BTreeSet<NodeId> = self.life.welcome_unconfirmed.keys().copied().collect();
        // Its watcher gives it the newcomer's grace until it says it holds this welcome
        // (a member re-registering, already online, is not awaited: it sends no word).
        self.life.welcoming.insert(id, (0..parts).collect());
        if !already {
            self.life.welcome_unconfirmed.insert(id, now);
        }
        let voucher = self
            .ring
            .members()
            .get(id)
            .cloned()
            .and_then(|entry| self.voucher_for(entry))
            .map(Box::new);
        for (part, members) in chunks.into_iter().enumerate() {
            let epoch = self.ring.epoch().expect("a leader has an epoch");
            let w = Welcome {
                voting: flags(&members, |m| voters.contains(&m.name)),
                unlisted_voters: if names_part == Some(part) {
                    unlisted.clone()
                } else {
                    Vec::new()
                },
                voters_at,
                settling: flags(&members, |m| settling.contains(&m.id)),
                newcomer: id,
                epoch,
                next_seq,
                oldest,
                pending_from: self.room.next(),
                part: part as u16,
                parts,
                members,
                voucher: voucher.clone(),
            };
            let token = Token::Life(LifeToken::Welcome {
                newcomer: id,
                part: part as u16,
            });
            self.send_reliable(now, addr, Message::Welcome(w), token);
        }
        self.ask_during_recovery(now, id, addr);
        // Back in the room: whatever it asked before it left is over.
        self.room.back_from_leaving(&name);
        self.reconcile_voters(now);
        // The newcomer holds a replica of the offline queue, and gets what was kept for it.
        if !already {
            self.replicate_queue_to(now, addr);
        }
        self.start_handover(now, &name);
    }
}

impl Node {
    /// What became of a welcome part we sent `newcomer` (its acks may come from outside a
    /// session, so they prove nothing about the newcomer: see [`Node::on_welcome_taken`]).
    pub(in crate::proto::node) fn welcome_settled(
        &mut self,
        newcomer: NodeId,
        part: u16,
        fate: Fate,
    ) {
        let Some(parts) = self.life.welcoming.get_mut(&newcomer) else {
            return;
        };
        parts.remove(&part);
        if fate != Fate::Acked || parts.is_empty() {
            self.life.welcoming.remove(&newcomer);
        }
    }

    /// `sender` says, within its session, that it holds its whole welcome and follows us:
    /// the members are told (`Welcomed`, once per admission), so that its watcher no
    /// longer waits the newcomer's grace for a sign of life (a newcomer that crashes just
    /// after its welcome is then found as fast as any member).
    pub(in crate::proto::node) fn on_welcome_taken(&mut self, now: Instant, sender: NodeId) {
        if self.life.welcome_unconfirmed.remove(&sender).is_none() || !self.is_leader() {
            return log_at!(
                debug,
                self,
                "{sender} says it took a welcome we did not send"
            );
        }
        let Some(entry) = self
            .ring
            .members()
            .get(sender)
            .filter(|m| m.presence == Presence::Online)
            .cloned()
        else {
            return;
        };
        log_at!(
            debug,
            self,
            "{} holds its whole welcome; telling the members",
            entry.name
        );
        self.ring.welcomed(sender, now);
        let others: Vec<SocketAddr> = self
            .ring
            .members()
            .online_peers()
            .filter(|m| m.id != sender)
            .map(|m| m.addr)
            .collect();
        for peer in others {
            let msg = Message::Welcomed {
                newcomer: entry.clone(),
            };
            self.send_reliable(now, peer, msg, Token::Control);
        }
        // Our signed word that we let it in, for it to show any member our word never
        // reaches (see `voucher.rs`). Sent now, not with the welcome: a newcomer still
        // joining leaves it unacked, and its resend could come too late.
        self.vouch_for_member(now, entry);
    }

    /// The leader says `newcomer` has its welcome: judged by the usual bounds from now.
    /// Only for the admission the notice is about: an entry of ours newer than the one it
    /// carries (the member came back since, and may be waiting for another welcome) or
    /// not online keeps its grace. One we do not hold yet (the notice came before the
    /// word that it came online) is remembered, so that it arrives without the grace; the
    /// notice adds no entry (a late one must not bring back a member forgotten since).
    pub(in crate::proto::node) fn on_welcomed(
        &mut self,
        now: Instant,
        sender: NodeId,
        newcomer: Member,
    ) {
        if self.leader() != Some(sender) {
            return log_at!(
                debug,
                self,
                "{sender} says {} is welcomed but does not lead",
                newcomer.name
            );
        }
        if !self.life.is_member() {
            return;
        }
        match self.ring.members().get(newcomer.id) {
            Some(m) if m.presence == Presence::Online && m.stamp <= newcomer.stamp => {
                log_at!(
                    debug,
                    self,
                    "{} is welcomed: judged by the usual bounds",
                    newcomer.name
                );
                self.ring.welcomed(newcomer.id, now);
            }
            Some(_) => log_at!(
                debug,
                self,
                "a notice that {} was welcomed is stale",
                newcomer.name
            ),
            None => self.ring.welcomed_early(newcomer.id, now),
        }
    }
}

/// One bit per member, `f` of `members[i]` at bit `i % 8` of byte `i / 8`.
fn flags(members: &[Member], f: impl Fn(&Member) -> bool) -> Vec<u8> {
    let mut bits = vec![0u8; members.len().div_ceil(8)];
    for (i, m) in members.iter().enumerate() {
        if f(m) {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    bits
}

/// Whether `signature` is the newcomer `n`'s answer to the challenge `nonce`.
fn proof_checks(nonce: &[u8; 16], n: &Newcomer, signature: &[u8]) -> bool {
    let message = proof_message(nonce, n.id, &n.name);
    <[u8; 64]>::try_from(signature).ok().is_some_and(|sig| {
        VerifyingKey::from_bytes(&n.key).is_ok_and(|key| {
            key.verify_strict(&message, &Signature::from_bytes(&sig))
                .is_ok()
        })
    })
}
