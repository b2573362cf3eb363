//! What a reliable message was for, and what became of it: the reliability layer hands
//! each message's [`Token`] back when the message is acked, given up, or cancelled
//! because its destination left; [`Node::settle`] routes it to the part that sent it.

use super::*;

/// What a reliable message was for, by the part that sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    /// Room messages: submissions and sequenced entries.
    Room(RoomToken),
    /// Direct messages, kept ones and their hand-over.
    Mail(MailToken),
    /// Election tokens and announcements for the ring successor.
    Ring(RingToken),
    /// Joins, leaves and re-registrations.
    Life(LifeToken),
    /// Anything whose fate changes nothing (answers, table pushes, requests).
    Control,
}

/// What became of a reliable message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Its destination acked it.
    Acked,
    /// Its destination never acked it within the retries.
    GaveUp,
    /// Its destination left the room; it was withdrawn.
    Cancelled,
}

impl Node {
    /// A reliable message to `to` was acked, given up or cancelled: its part decides what
    /// that means.
    pub(super) fn settle(&mut self, now: Instant, to: SocketAddr, token: Token, fate: Fate) {
        match token {
            Token::Room(t) => self.room_settled(now, to, t, fate),
            Token::Mail(t) => self.mail_settled(now, t, fate),
            Token::Ring(t) => self.ring_settled(now, to, t, fate),
            Token::Life(t) => self.life_settled(now, to, t, fate),
            Token::Control => {}
        }
    }
}
