//! The receiving side of [`Reliable`]: messages accepted from each sender's streams
//! (duplicate suppression, see [`super::receipts`]) and the acks they owe.

use super::Reliable;
use crate::ids::{MsgId, NodeId};
use crate::wire::Ack;
use std::net::SocketAddr;

impl<T: Clone> Reliable<T> {
    /// Records a reliable message from `sender` at `from` that the owner accepts, and owes
    /// its ack; `false` means it was seen before and must not be handled again (it is
    /// acked again all the same: the sender lost our first ack). Call only for messages
    /// the owner accepts: one not acked is retried by its sender.
    pub fn on_data(&mut self, from: SocketAddr, sender: NodeId, id: MsgId) -> bool {
        self.receipts.accept(from, sender, id)
    }

    /// [`Reliable::on_data`] for a message that came outside a session (the join
    /// exchange): recorded apart from the sender's session stream, so a forged one marks
    /// nothing of it as seen (see [`Receipts::outside`]).
    pub fn on_data_outside(&mut self, from: SocketAddr, sender: NodeId, id: MsgId) -> bool {
        self.outside.accept(from, sender, id)
    }

    /// Whether data packet `id` from `sender` was accepted already (a copy of it now is a
    /// duplicate). Changes nothing.
    pub fn was_received(&self, sender: NodeId, id: MsgId) -> bool {
        self.receipts.was_accepted(sender, id)
    }

    /// Whether acks are owed (see [`Reliable::take_acks`]).
    pub fn owes_acks(&self) -> bool {
        self.receipts.owes() || self.outside.owes()
    }

    /// The ack packets owed, one per sender stream (more for a long range list), with
    /// their destinations. Call when the outputs are drained, so that every message
    /// accepted since the last drain is acked together.
    pub fn take_acks(&mut self) -> Vec<(SocketAddr, Ack)> {
        let mut acks = self.receipts.take_acks();
        acks.extend(self.outside.take_acks());
        acks
    }

    /// Bounds the duplicate windows: past `max` sender streams, forgets those of senders
    /// `keep` does not keep (strangers that asked to join, say; a message of theirs
    /// seen again is handled again, which joins take as the same join).
    pub fn bound_windows(&mut self, max: usize, keep: impl Fn(NodeId) -> bool) {
        if self.receipts.windows() > max {
            self.receipts.retain_senders(&keep);
        }
        if self.outside.windows() > max {
            // Mostly newcomers' (not in the table yet): a join resent after this is
            // taken again, which the join exchange allows.
            self.outside.retain_senders(&keep);
            if self.outside.windows() > max {
                self.outside.retain_senders(|_| false);
            }
        }
    }

    #[cfg(test)]
    /// How many sender streams have a duplicate window.
    pub fn windows(&self) -> usize {
        self.receipts.windows()
    }

    #[cfg(test)]
    /// Forgets the duplicate windows of a node that is gone for good.
    pub fn forget_sender(&mut self, id: NodeId) {
        self.receipts.forget(id);
    }
}
