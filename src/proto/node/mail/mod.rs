//! The mailbox: direct messages and their receipts, the sender's side of messages kept
//! for offline members, and the leader's replicated offline queue with its hand-over.
//!
//! Owns every direct message this node sent, keeps or has shown. Never touches the room
//! log or the member table.

use super::*;

mod direct;
mod order;
mod queue;
mod sender;

/// What a reliable message of the mailbox was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum MailToken {
    /// A direct message to recipient `to` (the copy sealed for it, and its text); its
    /// ack is the receipt.
    Direct {
        to: String,
        dm: DirectMessage,
        text: String,
    },
    /// A kept direct message replicated to a member; the first ack confirms it to the sender.
    Replica { origin: NodeId, id: DmId, to: u8 },
    /// A kept direct message handed to its recipient.
    Handover {
        to: String,
        origin: NodeId,
        id: DmId,
        idx: u8,
    },
}

/// The mailbox part's state.
pub(super) struct Mailbox {
    /// Direct messages kept for offline members (replicated from the leader).
    offline: OfflineQueue,
    /// Kept messages awaiting a first replica's ack: where to confirm them.
    awaiting_replica: BTreeMap<(NodeId, DmId, u8), Option<SocketAddr>>,
    /// Recipients with a hand-over in flight.
    handing_over: BTreeSet<String>,
    /// Own direct messages for offline recipients (the copy sealed for each, and its
    /// text), not yet confirmed saved.
    unsaved: BTreeMap<(DmId, u8), (DirectMessage, String)>,
    /// Own direct copies for a recipient online, waiting behind an earlier direct copy
    /// for it not yet acked (see `order.rs`), oldest first.
    held: BTreeMap<String, VecDeque<(DirectMessage, String)>>,
    /// Own copies sent through the queue for a recipient online (behind an earlier one
    /// of ours kept for it): told as such once saved.
    behind: BTreeSet<(DmId, u8)>,
    /// Own messages the leader said it keeps (id and recipient index): their recipient
    /// and when it was said, until our replica of the queue holds them or they are known
    /// handed over, for at most [`KEPT_BRIDGE`] (see `order.rs`).
    kept_mine: BTreeMap<(DmId, u8), (String, Instant)>,
    /// Direct messages shown, by origin (a message may arrive directly and again from the
    /// offline queue; it is shown once).
    seen_dms: BTreeMap<NodeId, DedupeWindow>,
    next_dm: u64,
    /// Fresh bytes for each seal (mixed with the identity's secret, see `proto::seal`).
    rng: StdRng,
}

impl Mailbox {
    /// An empty mailbox, its random generator seeded from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Mailbox {
            offline: OfflineQueue::default(),
            awaiting_replica: BTreeMap::new(),
            handing_over: BTreeSet::new(),
            unsaved: BTreeMap::new(),
            held: BTreeMap::new(),
            behind: BTreeSet::new(),
            kept_mine: BTreeMap::new(),
            seen_dms: BTreeMap::new(),
            next_dm: 1,
            rng: StdRng::seed_from_u64(seed ^ 0x6d61_696c_626f_7873),
        }
    }

    /// Fresh bytes for a seal.
    pub(super) fn entropy(&mut self) -> [u8; 32] {
        self.rng.random()
    }

    /// From now on, journal every change of the offline queue for the disk.
    pub(super) fn record_changes(&mut self) {
        self.offline.record_changes();
    }

    /// The queue changes to make durable since the last call.
    pub(super) fn take_journal(&mut self) -> Vec<Write> {
        self.offline.take_journal()
    }

    /// Own direct messages not yet confirmed kept for their offline recipients, or held
    /// behind an earlier one (see `order.rs`).
    pub(super) fn unsaved_len(&self) -> usize {
        self.unsaved.len() + self.held.values().map(VecDeque::len).sum::<usize>()
    }

    /// Takes every own private message not yet sent or saved (held behind an earlier one,
    /// or waiting for the leader to keep it), as (recipient, text), oldest first.
    pub(super) fn take_unsent(&mut self) -> Vec<(String, String)> {
        let mut unsent: Vec<(DmId, String, String)> = Vec::new();
        for ((id, idx), (dm, text)) in std::mem::take(&mut self.unsaved) {
            let to = dm.to.get(idx as usize).cloned().unwrap_or_default();
            unsent.push((id, to, text));
        }
        for (to, held) in std::mem::take(&mut self.held) {
            unsent.extend(held.into_iter().map(|(dm, text)| (dm.id, to.clone(), text)));
        }
        unsent.sort_by_key(|(id, ..)| *id);
        unsent.into_iter().map(|(_, to, text)| (to, text)).collect()
    }

    /// The recipient of our own message `id` (recipient index `idx`), if we still know
    /// it: waiting to be saved, or saved and not yet in our replica.
    pub(super) fn own_recipient(&self, id: DmId, idx: u8) -> Option<String> {
        self.kept_mine
            .get(&(id, idx))
            .map(|(name, _)| name.clone())
            .or_else(|| {
                let (dm, _) = self.unsaved.get(&(id, idx))?;
                dm.to.get(idx as usize).cloned()
            })
    }

    /// Kept message `id` for `to` (recipient index `idx`) left the queue, handed over;
    /// `mine` if we sent it. `true` if it was kept here.
    pub(super) fn remove_kept(
        &mut self,
        to: &str,
        origin: NodeId,
        id: DmId,
        idx: u8,
        mine: bool,
    ) -> bool {
        if mine {
            self.kept_mine.remove(&(id, idx));
        }
        self.offline.remove(to, origin, id)
    }

    /// Kept messages this node holds.
    pub(super) fn kept_len(&self) -> usize {
        self.offline.len()
    }

    /// Whether this node holds kept messages for `name`.
    pub(super) fn holds_for(&self, name: &str) -> bool {
        self.offline.front(name).is_some()
    }

    /// The first of our own unsaved messages for `name`: the only one whose store
    /// request may be out, so that the leader keeps them in the order they were written.
    pub(super) fn first_unsaved_for(&self, name: &str) -> Option<(DmId, u8)> {
        self.unsaved
            .iter()
            .find(|((_, to), (dm, _))| dm.to.get(*to as usize).is_some_and(|n| n == name))
            .map(|(key, _)| *key)
    }

    #[cfg(test)]
    /// How many kept messages this node holds for `name`.
    pub(super) fn kept_for(&self, name: &str) -> usize {
        self.offline.len_for(name)
    }

    /// The kept messages this node holds (a replica of the leader's queue).
    pub(super) fn kept(&self) -> Vec<QueuedDm> {
        self.offline.items().cloned().collect()
    }

    /// The hand-over to `to` ended without an ack: the next one may start.
    pub(super) fn handover_failed(&mut self, to: &str) {
        self.handing_over.remove(to);
    }

    /// Forgets which hand-overs were in flight (this node no longer leads).
    pub(super) fn stop_handing_over(&mut self) {
        self.handing_over.clear();
    }

    /// What a restarted node had kept on disk: kept messages, hand-overs and the direct
    /// messages already shown.
    pub(super) fn restore(&mut self, saved: &mut Restored) {
        for (to, origin, id) in &saved.handed_over {
            self.offline.remember_handed_over(to, *origin, *id);
        }
        for (origin, id) in std::mem::take(&mut saved.directs_shown) {
            self.seen_dms.entry(origin).or_default().first_time(id.0);
        }
        for item in std::mem::take(&mut saved.kept) {
            // A full queue was full before too: nothing new is lost.
            let _ = self.offline.push(item);
        }
    }

    pub(super) fn next_dm_id(&mut self) -> DmId {
        let id = DmId(self.next_dm);
        self.next_dm += 1;
        id
    }
}
