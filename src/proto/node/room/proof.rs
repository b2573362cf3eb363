//! Proof of origin on the node (see `proto::seal`; own room messages are sealed in
//! `own_runs.rs`): the leader's intake, which sequences a submission only
//! once its run is proven; and the members' staging, which holds (and acks) a sequenced
//! message only once its run is proven. A message whose proof fails is refused, counted
//! (`status`: `forged`) and logged: it is never shown, nor acked, nor passed on, and the
//! member fetches that number again from someone else.
//!
//! Everything the node shows, keeps and passes on is proven: the hold-back queue and the
//! history hold only vouched messages (with their full link), so an ack still means "I
//! hold a copy" and the leader's majority still means the copy is the origin's.

use super::*;
use crate::wire::PublicKey;

/// Own room messages one seal covers at most: a run of more is sealed every this many.
pub(in crate::proto::node) const RUN_MAX: usize = 256;

/// A sequenced message waiting for its run's proof, with what its ack needs.
#[derive(Debug, Clone)]
pub(in crate::proto::node) struct Staged {
    /// The message.
    entry: ChatEntry,
    /// The address it came from.
    from: SocketAddr,
    /// Its transport id (acked once the message is vouched for).
    id: MsgId,
}

impl Staged {
    /// Message `entry`, sent from `from` as transport id `id`.
    pub(super) fn new(entry: ChatEntry, from: SocketAddr, id: MsgId) -> Staged {
        Staged { entry, from, id }
    }

    /// The message.
    pub(super) fn entry(&self) -> &ChatEntry {
        &self.entry
    }

    /// The message, taken out.
    pub(super) fn into_entry(self) -> ChatEntry {
        self.entry
    }
}

impl Chained for Staged {
    fn written(&self, origin: NodeId) -> crate::proto::seal::Written<'_> {
        self.entry.written(origin)
    }

    fn proof(&self) -> &Provenance {
        &self.entry.proof
    }
}

/// What [`Node::proof_known`] found of a sequenced message's proof.
pub(in crate::proto::node) enum Proof {
    /// Vouched for already: the message, with its link.
    Known(ChatEntry),
    /// Refused as forged (counted and logged).
    Refused,
    /// To be proven by its run's seal: the message.
    Awaited(ChatEntry),
}

/// Whose identity a message from node `origin` under a name is checked against.
pub(in crate::proto::node) enum Binding {
    /// The identity the name is bound to.
    Key(PublicKey),
    /// The node is in the table under another name: the message is not its to claim.
    Other(String),
    /// Neither the node nor the name is known.
    Unknown,
}

impl Node {
    /// The identity that must have signed what node `origin` wrote as `name`: the key of
    /// its entry in the member table (which must be under that name), or, for a node the
    /// table no longer lists (an earlier process of a restarted member), the key the name
    /// is bound to: a name is bound to one identity for good.
    pub(in crate::proto::node) fn bound_key(&self, origin: NodeId, name: &str) -> Binding {
        let members = self.ring.members();
        match members.get(origin) {
            Some(m) if m.name == name => Binding::Key(m.key),
            Some(m) => Binding::Other(m.name.clone()),
            None => members
                .by_name(name)
                .map_or(Binding::Unknown, |m| Binding::Key(m.key)),
        }
    }

    /// `key` made ready for checking seals, kept for the next time.
    pub(super) fn run_key(&mut self, key: &PublicKey) -> RunKey {
        if let Some(k) = self.room.run_keys.get(key) {
            return *k;
        }
        if self.room.run_keys.len() >= VOUCHED_ORIGINS {
            self.room.run_keys.clear();
        }
        let k = RunKey::new(key);
        self.room.run_keys.insert(*key, k);
        k
    }

    /// The leader's intake of submission `s` from `origin`: sequenced once its run is
    /// proven (at once if it is already), refused if the proof fails.
    pub(in crate::proto::node) fn take_submission(
        &mut self,
        now: Instant,
        origin: NodeId,
        mut s: Submit,
    ) {
        if !self.ctx.cfg.seal_room {
            return self.sequence(now, origin, s);
        }
        if let Some(link) = self.room.vouched.confirms(&s.written(origin), s.proof.link) {
            s.proof.link = Some(link);
            return self.sequence_run(now, origin, vec![s]);
        }
        if self
            .ring
            .members()
            .get(origin)
            .is_none_or(|m| m.name != s.name)
        {
            let why = format!("submission from {origin} under a name not its own");
            return self.refuse_forged(now, 1, &why);
        }
        let k = s.origin_seq;
        if self
            .room
            .intake
            .insert(origin, origin, k, s, &self.room.vouched)
            .is_none()
        {
            log_at!(debug, self, "submission {k:?} from {origin}: intake full");
        }
        // Proven (and sequenced) when the outputs are drained: see `settle_waiting`.
    }

    /// Proves what waits for its seal and can be proven now, all of it at once (runs that
    /// follow on from each other are proven by the last seal; the seals left are checked
    /// together): the leader's intake is sequenced, the members' staged messages are
    /// acked and held; what fails is refused. Called when the outputs are drained, after
    /// the inputs at hand, and before anything is sent.
    pub(in crate::proto::node) fn settle_waiting(&mut self) {
        let now = self.ctx.now;
        let ready = self.room.intake.take_ready();
        if !ready.is_empty() {
            let keys: BTreeMap<NodeId, PublicKey> = ready
                .iter()
                .filter_map(|(_, o)| self.ring.members().get(*o).map(|m| (*o, m.key)))
                .collect();
            let keys: BTreeMap<NodeId, RunKey> =
                keys.iter().map(|(o, k)| (*o, self.run_key(k))).collect();
            let settled =
                self.room
                    .intake
                    .settle_all(&ready, |o| keys.get(&o).copied(), &self.room.vouched);
            for (_, origin, settled) in settled {
                if !settled.refused.is_empty() {
                    let why = format!("submissions from {origin} whose seal does not check");
                    self.refuse_forged(now, settled.refused.len(), &why);
                }
                let mut run = Vec::with_capacity(settled.vouched.len());
                for (mut s, link, value) in settled.vouched {
                    self.room.vouched.insert(origin, s.origin_seq, link, value);
                    s.proof.link = Some(link);
                    run.push(s);
                }
                if !run.is_empty() {
                    self.sequence_run(now, origin, run);
                }
            }
        }
        self.settle_staged(now, false);
        self.settle_staged(now, true);
        if std::mem::take(&mut self.room.answers_vouched) {
            self.take_answers_proven_elsewhere(now);
        }
    }

    /// The staged messages that can be proven now (of a take-over's answers, with
    /// `answers`: see `proven_answers.rs`), each taken once vouched for; what fails is
    /// refused.
    fn settle_staged(&mut self, now: Instant, answers: bool) {
        fn pending(room: &Room, answers: bool) -> &Pending<Staged> {
            if answers {
                &room.answered
            } else {
                &room.staged
            }
        }
        let ready = if answers {
            self.room.answered.take_ready()
        } else {
            self.room.staged.take_ready()
        };
        if ready.is_empty() {
            return;
        }
        // Each origin's identity, as bound to the name its messages claim.
        let mut keys: BTreeMap<NodeId, RunKey> = BTreeMap::new();
        for (sender, origin) in &ready {
            if let Some(name) = pending(&self.room, answers)
                .any_of(*sender, *origin)
                .map(|s| s.entry.name.clone())
                && let Binding::Key(key) = self.bound_key(*origin, &name)
            {
                let key = self.run_key(&key);
                keys.insert(*origin, key);
            }
        }
        let room = &mut self.room;
        let pending = if answers {
            &mut room.answered
        } else {
            &mut room.staged
        };
        let settled = pending.settle_all(&ready, |o| keys.get(&o).copied(), &room.vouched);
        if answers {
            // The take-over waits until every answered copy proven here is held.
            room.answers_in_hand = settled.iter().map(|(_, _, s)| s.vouched.len()).sum();
        }
        let mut refused_any = false;
        // Forgeries first: an answer that carried one counts no more before any proven
        // copy, taken, can end the take-over.
        for (sender, _, settled) in &settled {
            if !settled.refused.is_empty() {
                if answers {
                    refused_any = true;
                    self.answer_refused(*sender);
                }
                let seqs: Vec<u64> = settled.refused.iter().map(|s| s.entry.seq.0).collect();
                let why = format!("messages {seqs:?} from {sender} whose seal does not check");
                self.refuse_forged(now, settled.refused.len(), &why);
            }
        }
        for (sender, origin, settled) in settled {
            for (st, link, value) in settled.vouched {
                self.room
                    .vouched
                    .insert(origin, st.entry.origin_seq, link, value);
                let mut e = st.entry;
                e.proof.link = Some(link);
                if answers {
                    self.room.answers_vouched = true;
                    self.room.answers_in_hand -= 1;
                    self.take_answered(now, sender, e);
                } else {
                    self.take_sequenced(now, st.from, sender, st.id, e);
                }
            }
        }
        if answers && (refused_any || !ready.is_empty()) {
            // The take-over waited for them.
            self.maybe_finish_recovery(now);
        }
    }

    /// Sequences a proven run of `origin`'s submissions (or holds it while the room
    /// waits for a member: see [`Node::pace`]).
    pub(in crate::proto::node) fn sequence_run(
        &mut self,
        now: Instant,
        origin: NodeId,
        run: Vec<Submit>,
    ) {
        if let Some(run) = self.pace(now, origin, run) {
            self.sequence_run_now(now, origin, run);
        }
    }

    /// Sequences a proven run of `origin`'s submissions, all of it or (when too much is
    /// uncommitted) none: the origin submits again what is left.
    pub(in crate::proto::node) fn sequence_run_now(
        &mut self,
        now: Instant,
        origin: NodeId,
        run: Vec<Submit>,
    ) {
        let n = run.len() as u64;
        if !self.room.is_confirming() && self.room.uncommitted().saturating_add(n) > MAX_UNCOMMITTED
        {
            return log_at!(
                debug,
                self,
                "{n} submissions from {origin}: too much uncommitted"
            );
        }
        // Proposed together: the members looked up and the commit point worked out once.
        let mut entries = Vec::with_capacity(run.len());
        for s in run {
            self.accept_submission(now, origin, s, &mut entries);
        }
        self.propose_run(now, entries);
    }

    /// A sequenced message `e` from `sender` (transport id `id`, from `from`). In a sealed
    /// room it is held, and acked, only once its run is proven: until then it waits,
    /// unacked (its sender sends it again); if the proof fails it is refused.
    pub(in crate::proto::node) fn stage_sequenced(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        id: MsgId,
        e: ChatEntry,
    ) {
        if self.transport.was_received(sender, id) {
            return self.take_sequenced(now, from, sender, id, e);
        }
        if e.is_filler()
            && self.ctx.cfg.seal_room
            && self.leader() != Some(sender)
            && !self.room.is_recovering()
        {
            // A filler or a change of the voting configuration carries no one's seal: it
            // is the leader's to make. Another member's word alone is not taken for it (it
            // could hide a message, or change who votes), and the leader is asked next;
            // two members asked that agree are (a member the leader cannot reach has no
            // other way past it: the members after are asked in turn).
            if !self.transport.accept_data(from, sender, id) {
                return self.transport.count_duplicate();
            }
            if self.accepts_sequenced(sender, e.seq) && self.room.corroborates(sender, &e) {
                return self.on_sequenced_from(now, sender, e);
            }
            log_at!(
                debug,
                self,
                "not taking #{} (no message) from {sender} on its word alone",
                e.seq
            );
            return self.fetch_from_leader_instead(now, sender);
        }
        if e.is_filler() || !self.ctx.cfg.seal_room || !self.accepts_sequenced(sender, e.seq) {
            return self.take_sequenced(now, from, sender, id, e);
        }
        let e = match self.proof_known(now, sender, e) {
            Proof::Known(e) => return self.take_sequenced(now, from, sender, id, e),
            Proof::Refused => return,
            Proof::Awaited(e) => e,
        };
        // An origin not known yet (the table is on its way) waits.
        let (origin, k, seq) = (e.origin, e.origin_seq, e.seq);
        if self.room.staged.is_full(sender) {
            // Those shown meanwhile (from another copy) are of no use any more.
            let next = self.room.holdback.next();
            self.room.staged.retain(|s| s.entry.seq >= next);
        }
        let staged = Staged { entry: e, from, id };
        if self
            .room
            .staged
            .insert(sender, origin, k, staged, &self.room.vouched)
            .is_none()
        {
            log_at!(debug, self, "not holding #{seq}: too many wait for proof");
        }
        // Proven (and acked) when the outputs are drained: see `settle_waiting`.
    }

    /// What is known of sealed room message `e`'s proof from `sender` before its run
    /// closes: vouched for already (its own, or one whose link and value are known), with
    /// its link; refused (it claims a name another node holds); or to be proven by its
    /// run's seal. A shown copy next to it in its origin's chain may vouch for it first
    /// (see `links.rs`).
    pub(super) fn proof_known(&mut self, now: Instant, sender: NodeId, mut e: ChatEntry) -> Proof {
        if e.proof.link.is_none() {
            self.vouch_from_shown(e.origin, OriginSeq(e.origin_seq.0.saturating_sub(1)), false);
        }
        if let Some(link) = self.own_unconfirmed(&e).or_else(|| {
            self.room
                .vouched
                .confirms(&e.written(e.origin), e.proof.link)
        }) {
            e.proof.link = Some(link);
            return Proof::Known(e);
        }
        if let Binding::Other(owner) = self.bound_key(e.origin, &e.name) {
            let why = format!(
                "#{} from {sender} claims {owner}'s message is {}'s",
                e.seq, e.name
            );
            self.refuse_forged(now, 1, &why);
            return Proof::Refused;
        }
        self.vouch_from_shown(e.origin, e.origin_seq.next(), true);
        Proof::Awaited(e)
    }

    /// If `e` is one of this node's own unconfirmed messages exactly as it wrote it (every
    /// field its chain value covers, and the link it claims, if any), its link: what
    /// [`Vouched::confirms`] finds, without hashing it again.
    fn own_unconfirmed(&self, e: &ChatEntry) -> Option<ChainLink> {
        if e.origin != self.ctx.id {
            return None;
        }
        let s = self.room.outbox.get(e.origin_seq)?;
        let link = s.proof.link?;
        (s.name == e.name
            && s.lamport == e.lamport
            && s.sent_at == e.sent_at
            && s.text == e.text
            && e.proof.link.is_none_or(|l| l == link))
        .then_some(link)
    }

    /// Acks a sequenced message and handles it (a copy of one taken already is acked
    /// again, and counted as a duplicate).
    fn take_sequenced(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        id: MsgId,
        e: ChatEntry,
    ) {
        if !self.can_hold(sender, &e) {
            // Come due after this node followed a newer leader: not acked (as on arrival).
            return log_at!(debug, self, "not holding #{} from {sender} any more", e.seq);
        }
        if !self.transport.accept_data(from, sender, id) {
            self.transport.count_duplicate();
            return;
        }
        self.on_sequenced_from(now, sender, e);
    }

    /// Counts `n` messages refused because their proof of origin failed, and says why in
    /// the log (at most once a second: a forger cannot flood it).
    pub(in crate::proto::node) fn refuse_forged(&mut self, now: Instant, n: usize, why: &str) {
        self.transport.note_forged(n as u64);
        let quiet = self
            .room
            .forged_logged
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if !quiet {
            self.room.forged_logged = Some(now);
            log_at!(
                warn,
                self,
                "refused {n}: {why} ({} refused so far)",
                self.transport.stats().forged
            );
        }
    }
}

/// How many more entries (at most [`RUN_MAX`]) after the first `cut` of `entries` an
/// answer sends so that it ends with a message that closes its run: the receiver proves
/// nothing it was sent without it.
pub(in crate::proto::node) fn to_run_end(entries: &[ChatEntry], cut: usize) -> usize {
    let mut end = cut.min(entries.len());
    while end > 0
        && end < entries.len()
        && end < cut + RUN_MAX
        && !entries[end - 1].is_filler()
        && entries[end - 1].proof.seal.is_none()
    {
        end += 1;
    }
    end
}
