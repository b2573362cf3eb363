//! Which numbers a member takes another member's word for: up to what the leader said is
//! committed (or a committed copy held shows is), the member asked to fill a gap; above
//! it, two members that agree. A seal proves who wrote a message, not the number it is
//! shown at, so one member alone must never choose which genuine message goes where.

use super::*;

/// A member's word for a number not known committed: who said it, and which entry it
/// said is at that number ([`said`]).
pub(super) type Word = (NodeId, [u8; 32]);

/// What an entry says, as two members must agree on it: its origin, its number there,
/// its sender's name and its text. A message is told apart by its origin and number
/// alone (its seal binds the rest); a filler or a change of the voting configuration has
/// no origin of its own, and what it says is its name and text.
fn said(e: &ChatEntry) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"ringchat entry said v1");
    h.update(e.origin.0.to_le_bytes());
    h.update(e.origin_seq.0.to_le_bytes());
    for part in [e.name.as_bytes(), e.text.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Members whose word for one number not known committed is noted, at most.
const UNVOUCHED_WORDS: usize = 3;

/// Numbers not known committed whose members' words are noted, at most (twice a catch-up
/// window: what the fetches under way ask for).
const UNVOUCHED_NUMBERS: usize = 2 * catchup::CATCH_UP_WINDOW as usize;

impl Room {
    /// The highest number known committed on the word of the leader (its commit notices,
    /// what its welcome said was committed) or of a committed copy held from a source
    /// trusted with its number (the leader, a relay, a member asked, within this bound):
    /// never a member's claim in a heartbeat. A member asked to fill a gap is taken at its
    /// word up to here (every number below holds a committed message, which no ack counts
    /// towards any more); above, only once another member agrees.
    pub(super) fn vouched_high(&self) -> Seq {
        let held = self
            .holdback
            .held_from(self.holdback.next())
            .rev()
            .find(|e| self.committed(e))
            .map_or(Seq(0), |e| e.seq);
        self.commit.max(held).max(self.welcome_committed)
    }

    /// Whether a member other than `sender` said the entry `e` (see [`said`]) is at `e`'s
    /// number; if not, `sender`'s word is noted. One member's word alone never puts a
    /// message at a number not known committed: it could choose which genuine message
    /// goes where; nor a filler or a configuration change at any number: it could hide a
    /// message, or change who votes.
    pub(super) fn corroborates(&mut self, sender: NodeId, e: &ChatEntry) -> bool {
        let next = self.holdback.next();
        if self
            .unvouched
            .first_key_value()
            .is_some_and(|(s, _)| *s < next)
        {
            self.unvouched = self.unvouched.split_off(&next);
        }
        let said = said(e);
        let words = self.unvouched.entry(e.seq).or_default();
        if words
            .iter()
            .any(|(who, what)| *who != sender && *what == said)
        {
            return true;
        }
        if words.len() < UNVOUCHED_WORDS && !words.iter().any(|(who, _)| *who == sender) {
            words.push((sender, said));
        }
        while self.unvouched.len() > UNVOUCHED_NUMBERS {
            self.unvouched.pop_last();
        }
        false
    }
}
