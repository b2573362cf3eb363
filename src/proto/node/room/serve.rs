//! Answering a member's fetch: from the in-memory history, from the database through
//! the driver (see `proto::disk`), or, by the leader, with the word that nobody keeps
//! what was asked for any more (see `catchup.rs` for the asking side).

use super::catchup::FETCH_CHUNK;
use super::*;
use crate::proto::disk::ReadRange;

/// The shortest wait before an entry of a fetch's answer is sent again: the member works
/// through a window of them (and writes them to its database) before it acks the last,
/// which takes longer than a round trip of one message; resending at that round trip's
/// timeout would send most of the window twice.
const BACKFILL_PATIENCE: Duration = Duration::from_millis(100);

/// Reads of the database waiting for the driver, at most; past it a fetch that needs one
/// is not answered (and counted in [`Stats::limited`]): its member asks again.
const MAX_READS: usize = 64;

impl Node {
    /// Someone asked for sequenced messages `from..=to` it missed: answer with at most a
    /// chunk, from our history; what memory no longer holds from the database (when this
    /// node has one), else, by the leader, with the word that it is no longer kept.
    pub(in crate::proto::node) fn on_fetch(
        &mut self,
        now: Instant,
        requester: SocketAddr,
        from: Seq,
        to: Seq,
    ) {
        if to < from {
            return log_at!(debug, self, "ignoring an empty fetch {from}..={to}");
        }
        let to = Seq(to.0.min(from.0.saturating_add(FETCH_CHUNK - 1)));
        let oldest = self.room.oldest_or(self.room.holdback.next());
        if from >= oldest {
            return self.serve_from_memory(now, requester, from, to);
        }
        let below = Seq(oldest.0 - 1);
        if self.ctx.cfg.persist {
            // From the first number on disk at or after `from` (so that a leader can say
            // exactly what is not kept), as many as were asked for.
            // With up to a run more, so that the answer can end with a message that
            // closes its run (see `answer_read`).
            let read = ReadRange {
                from,
                to: below,
                max: (to.0.min(below.0) - from.0 + 1) as usize + RUN_MAX,
                requester,
            };
            self.queue_read(now, read);
        } else if !self.room.is_recovering() {
            // Said by any member: only a leader's word skips anything for a member; a new
            // leader fetching what members showed weighs every member's (see
            // `recovery.rs`). A leader still recovering may yet fetch it: it says nothing.
            log_at!(
                debug,
                self,
                "fetch {from}..={to} from {requester}: {from}..={below} not kept here"
            );
            let msg = Message::Forgotten { from, to: below };
            self.send_reliable(now, requester, msg, Token::Control);
            // The first kept entry, which the member's skip waits for, and what follows.
            let upto = Seq(oldest.0.saturating_add(FETCH_CHUNK - 1));
            return self.serve_from_memory(now, requester, oldest, upto);
        }
        if to >= oldest {
            self.serve_from_memory(now, requester, oldest, to);
        }
    }

    /// A member this recovering leader fetches from does not keep `from..=to` any more
    /// (see [`Node::fetch_shown`]): ask the next member that showed beyond us, or, when
    /// none is left, skip to the first number it keeps (sent with its word), as a member
    /// does on the leader's.
    pub(super) fn forgotten_while_recovering(&mut self, now: Instant, sender: NodeId, to: Seq) {
        let next = self.room.holdback.next();
        let Some(rec) = self.room.recovery_mut() else {
            return;
        };
        if rec.fetch_target != Some(sender) {
            return; // not the member fetched from now (a late answer, or a stale fetch)
        }
        rec.not_kept.insert(sender);
        rec.fetch_target = None;
        if rec.best_source(next).is_some() {
            self.maybe_finish_recovery(now);
            return;
        }
        self.skip_through(now, to);
    }

    /// Sends `from..=to` (at most a chunk) to `requester` from the history (committed
    /// copies) and, by the leader, what it proposed and has not committed yet.
    pub(super) fn serve_from_memory(
        &mut self,
        now: Instant,
        requester: SocketAddr,
        from: Seq,
        to: Seq,
    ) {
        let to = Seq(to.0.min(from.0.saturating_add(FETCH_CHUNK - 1)));
        // Each part of the answer ends with a message that closes its run (else the
        // member could prove none of the messages before it).
        let beyond = Seq(to.0.saturating_add(RUN_MAX as u64));
        // Shown here means committed.
        let mut entries: Vec<ChatEntry> = self
            .room
            .history
            .range(from, beyond)
            .map(|e| ChatEntry {
                term: COMMITTED_TERM,
                ..e.clone()
            })
            .collect();
        let cut = entries.partition_point(|e| e.seq <= to);
        entries.truncate(to_run_end(&entries, cut));
        if let Some(removal) = self.withheld_from(requester) {
            // A member taken out to leave learns it from the leader only after a majority
            // of the others (see `tell_commit`).
            entries.retain(|e| e.seq < removal);
        }
        // The leader also sends what it proposed and has not committed yet, as proposals
        // (their acks count towards committing them).
        let mut proposals: Vec<ChatEntry> = if self.is_leader() {
            self.room
                .holdback
                .held_from(from)
                .take_while(|e| e.seq <= beyond)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let cut = proposals.partition_point(|e| e.seq <= to);
        proposals.truncate(to_run_end(&proposals, cut));
        log_at!(
            debug,
            self,
            "fetch {from}..={to} from {requester}: have {}",
            entries.len() + proposals.len()
        );
        for e in entries {
            self.send_backfill(now, requester, e);
        }
        for e in proposals {
            self.send_proposal(now, requester, e);
        }
        let member = self
            .ring
            .members()
            .online_peers()
            .find(|m| m.addr == requester)
            .map(|m| m.id);
        if let Some(id) = member {
            self.tell_commit(now, id);
        }
    }

    /// Sends a committed entry to a member catching up, as part of a bulk transfer.
    pub(super) fn send_backfill(&mut self, now: Instant, to: SocketAddr, e: ChatEntry) {
        let token = Token::Room(RoomToken::Sequenced);
        let retries = self.ctx.cfg.max_retries;
        let msg = Message::Sequenced(e);
        self.send_patient(now, to, msg, token, retries, BACKFILL_PATIENCE);
    }

    /// Queues a read of the database for the driver, within [`MAX_READS`].
    pub(super) fn queue_read(&mut self, now: Instant, read: ReadRange) {
        if self.room.reads.len() >= MAX_READS {
            let what = format!(
                "not reading #{}..=#{} for {}: {MAX_READS} reads wait",
                read.from, read.to, read.requester
            );
            return self.note_limited(now, &what);
        }
        self.room.reads.push_back(read);
    }

    /// What the driver read for `read` (see [`Node::handle_read`]): sent to the member
    /// that asked. The leader says what is not on disk: the numbers before the first one
    /// read, or all of them when none was (and then sends the first entry its memory
    /// keeps, which the member's skip waits for).
    pub(in crate::proto::node) fn answer_read(
        &mut self,
        now: Instant,
        read: ReadRange,
        rows: Result<Vec<ChatEntry>, String>,
    ) {
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                return log_at!(
                    warn,
                    self,
                    "could not read #{}..=#{} from the database: {e}",
                    read.from,
                    read.to
                );
            }
        };
        // Checked as any input is: in range, one number after another, within the bound.
        let mut entries: Vec<ChatEntry> = Vec::new();
        for e in rows {
            let follows = entries
                .last()
                .map_or(e.seq >= read.from, |p| p.seq.next() == e.seq);
            if !follows || e.seq > read.to || entries.len() >= read.max {
                break;
            }
            entries.push(ChatEntry {
                term: COMMITTED_TERM,
                ..e
            });
        }
        // What was asked for, and up to a run more to end with a message closing its run.
        let cut = read.max.saturating_sub(RUN_MAX);
        entries.truncate(to_run_end(&entries, cut));
        let first = entries.first().map(|e| e.seq);
        if self.is_leader() && first != Some(read.from) {
            let gone = first.map_or(read.to, |s| Seq(s.0 - 1));
            log_at!(
                debug,
                self,
                "fetch from {}: #{}..=#{gone} no longer kept",
                read.requester,
                read.from
            );
            let msg = Message::Forgotten {
                from: read.from,
                to: gone,
            };
            self.send_reliable(now, read.requester, msg, Token::Control);
            if first.is_none() && gone.0 < u64::MAX {
                let upto = Seq(gone.0.saturating_add(FETCH_CHUNK));
                self.serve_from_memory(now, read.requester, gone.next(), upto);
            }
        }
        log_at!(
            debug,
            self,
            "fetch from {}: {} read from the database",
            read.requester,
            entries.len()
        );
        for e in entries {
            self.send_backfill(now, read.requester, e);
        }
    }
}
