//! A survivor's answer to a new leader's sync request: every room message it holds from
//! the number asked for on (what it showed, as committed copies; then what it holds),
//! cut at the end of a run, with the votes among them and its replica of the offline
//! queue, then a reply saying how many it sent; and before them, the copies it showed
//! that close a run whose first message it answers (see
//! [`Node::closing_copies_before`]).

use super::proof::to_run_end;
use super::recovery::SYNC_BATCH;
use super::*;

impl Node {
    /// A new leader asks what we have: send it our messages from `from` on, then a reply.
    pub(in crate::proto::node) fn on_sync_request(
        &mut self,
        now: Instant,
        leader: SocketAddr,
        sender: NodeId,
        epoch: Epoch,
        from: Seq,
    ) {
        if self
            .ring
            .epoch()
            .is_some_and(|e| e.term > epoch.term || (e.term == epoch.term && e != epoch))
            || !self.life.takes_part()
        {
            return;
        }
        // A leader this node declared gone, or one of a term older than a round this node
        // takes part in, is being replaced: no answer confirms it (see `ring/away.rs`).
        if !self.ring.members().is_online(sender) || self.ring.electing_above(epoch.term) {
            return log_at!(
                debug,
                self,
                "not answering {sender}'s sync request: replaced"
            );
        }
        if self.ring.epoch() != Some(epoch) && !self.ring.election_carried(epoch.term, epoch.leader)
        {
            // A newer term than any round this node saw: the leader's word alone.
            return self.seek_leader(now, sender);
        }
        self.accept_leader(now, epoch);
        // The leader's own request (see `dispatch.rs`): it shows it leads this term.
        self.leader_spoke_itself(now);
        self.room.note_synced(epoch.term);
        // What we showed is committed: no copy of another term can replace it.
        let mut entries: Vec<ChatEntry> = self
            .room
            .history
            .range(from, Seq(u64::MAX))
            .map(|e| ChatEntry {
                term: COMMITTED_TERM,
                ..e.clone()
            })
            .collect();
        entries.extend(self.room.holdback.held_from(from).cloned());
        // Ending with a message that closes its run: the new leader proves them by it.
        entries.truncate(to_run_end(&entries, SYNC_BATCH));
        let votes = self.room.votes_among(&entries);
        // A run closed before `from` (its first message sequenced again later): the
        // copies that close it go first, or the new leader could not prove the rest.
        let mut closing = self.closing_copies_before(from, &entries);
        closing.append(&mut entries);
        let entries = closing;
        // Our replica of the offline queue too: the new leader takes the union.
        let kept: Vec<QueuedDm> = self.mail.kept();
        let sent = (entries.len() + kept.len()) as u32;
        for e in entries {
            let token = Token::Room(RoomToken::Sequenced);
            self.send_reliable(now, leader, Message::SyncEntry(e), token);
        }
        for item in kept {
            self.send_reliable(now, leader, Message::Queued(item), Token::Control);
        }
        let msg = Message::SyncReply {
            epoch,
            next: self.room.holdback.next(),
            high: self.room.holdback.high(),
            sent,
            votes,
        };
        self.send_reliable(now, leader, msg, Token::Control);
    }

    /// The copies this node showed before `from` that close the run of an origin's first
    /// message among `entries` (an answer from `from`) where the answer does not: its
    /// later messages up to the sealed one, as committed copies. A leader that filled a
    /// message's first number sequences it again after later ones of its run (see
    /// `links.rs`); a new leader that joined after the seal could not prove it otherwise,
    /// and would fill a committed number.
    fn closing_copies_before(&self, from: Seq, entries: &[ChatEntry]) -> Vec<ChatEntry> {
        /// Shown messages looked at, newest first, at most.
        const LOOK_BACK: usize = 4096;
        if !self.ctx.cfg.seal_room {
            return Vec::new();
        }
        // Each origin's messages in the answer, by number, and whether sealed.
        let mut answered: BTreeMap<NodeId, BTreeMap<OriginSeq, bool>> = BTreeMap::new();
        for e in entries
            .iter()
            .filter(|e| !e.is_filler() && e.proof.link.is_some())
        {
            let sealed = e.proof.seal.is_some();
            answered
                .entry(e.origin)
                .or_default()
                .insert(e.origin_seq, sealed);
        }
        if answered.is_empty() {
            return Vec::new();
        }
        let mut shown: BTreeMap<(NodeId, OriginSeq), &ChatEntry> = BTreeMap::new();
        for e in self
            .room
            .history
            .iter()
            .rev()
            .skip_while(|e| e.seq >= from)
            .take(LOOK_BACK)
        {
            let after_first = answered
                .get(&e.origin)
                .and_then(|m| m.keys().next())
                .is_some_and(|k| e.origin_seq > *k);
            if after_first {
                shown.entry((e.origin, e.origin_seq)).or_insert(e);
            }
        }
        let mut closing: Vec<ChatEntry> = Vec::new();
        for (origin, mine) in &answered {
            // From the first answered message on, in its origin's order, to the first
            // sealed one: what the answer lacks of that stretch, if this node showed it.
            let Some((&first, _)) = mine.iter().next() else {
                continue;
            };
            let mut k = first;
            let mut needed = Vec::new();
            let closed = loop {
                match (mine.get(&k), shown.get(&(*origin, k))) {
                    (Some(true), _) => break true,
                    (Some(false), _) => {}
                    (None, Some(e)) => {
                        needed.push(*e);
                        if e.proof.seal.is_some() {
                            break true;
                        }
                    }
                    (None, None) => break false,
                }
                if needed.len() > RUN_MAX {
                    break false;
                }
                k = k.next();
            };
            if closed {
                closing.extend(needed.into_iter().map(|e| ChatEntry {
                    term: COMMITTED_TERM,
                    ..e.clone()
                }));
            }
        }
        closing.sort_by_key(|e| e.seq);
        closing
    }
}
