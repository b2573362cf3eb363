//! A member's [`HoldBackQueue`]: the log's tail not yet shown. Room messages wait here
//! until they are committed and every earlier one is shown; of two copies of one number,
//! the one of the higher term wins (an uncommitted copy from a deposed leader gives way).

use super::*;

/// Room messages a member holds back while waiting for a gap to fill.
pub const MAX_HOLDBACK: usize = 10_000;

/// A member's hold-back queue: room messages are shown strictly in sequence order; an
/// out-of-order message waits here until the gap before it is filled.
#[derive(Debug, Clone)]
pub struct HoldBackQueue {
    next: Seq,
    held: BTreeMap<Seq, ChatEntry>,
    /// The numbers of the held entries that change the voting configuration: the leader
    /// works out the configuration its log ends with for every acknowledgement, and
    /// thousands of room messages may be held while one or none of them is such a change.
    configs: BTreeSet<Seq>,
}

impl HoldBackQueue {
    /// A queue that will deliver `next` first.
    pub fn new(next: Seq) -> Self {
        HoldBackQueue {
            next,
            held: BTreeMap::new(),
            configs: BTreeSet::new(),
        }
    }

    /// The next sequence number to deliver.
    pub fn next(&self) -> Seq {
        self.next
    }

    /// Offers a sequenced message; `false` if it was delivered already, is held already
    /// in the same or a higher term (a duplicate, or a stale copy), or lies too far ahead
    /// to hold. A copy of a higher term replaces the one held.
    pub fn offer(&mut self, e: ChatEntry) -> bool {
        if e.seq < self.next || self.held.get(&e.seq).is_some_and(|h| h.term >= e.term) {
            return false;
        }
        if e.seq.0 - self.next.0 >= MAX_HOLDBACK as u64 {
            return false;
        }
        if e.config_change().is_some() {
            self.configs.insert(e.seq);
        } else {
            // A copy of a higher term may replace a configuration entry held.
            self.configs.remove(&e.seq);
        }
        self.held.insert(e.seq, e);
        true
    }

    /// Moves the delivery point on to `next` (the numbers before it are skipped), keeping
    /// what is held from there.
    pub fn skip_to(&mut self, next: Seq) {
        if next > self.next {
            self.held = self.held.split_off(&next);
            self.configs = self.configs.split_off(&next);
            self.next = next;
        }
    }

    /// The held entry numbered `seq`, if any.
    pub fn get(&self, seq: Seq) -> Option<&ChatEntry> {
        self.held.get(&seq)
    }

    /// Removes and returns the next entry if `ready` says it may be shown.
    pub fn pop_if(&mut self, ready: impl Fn(&ChatEntry) -> bool) -> Option<ChatEntry> {
        if !ready(self.held.get(&self.next)?) {
            return None;
        }
        self.pop_ready()
    }

    /// Takes the next message if it is here.
    pub fn pop_ready(&mut self) -> Option<ChatEntry> {
        let e = self.held.remove(&self.next)?;
        self.configs.remove(&self.next);
        self.next = self.next.next();
        Some(e)
    }

    /// The highest sequence number delivered or held (`next - 1` when nothing is held).
    pub fn high(&self) -> Seq {
        self.held
            .last_key_value()
            .map_or(Seq(self.next.0.saturating_sub(1)), |(s, _)| *s)
    }

    /// The held messages from `from` on.
    pub fn held_from(&self, from: Seq) -> impl DoubleEndedIterator<Item = &ChatEntry> {
        self.held.range(from..).map(|(_, e)| e)
    }

    /// The held entries from `from` on that change the voting configuration, in order.
    pub fn held_configs_from(&self, from: Seq) -> impl Iterator<Item = &ChatEntry> {
        self.configs
            .range(from..)
            .filter_map(|seq| self.held.get(seq))
    }

    /// How many numbers the index of configuration entries holds (for the tests: it must
    /// name nothing that is not held).
    #[cfg(test)]
    pub fn config_index_len(&self) -> usize {
        self.configs.len()
    }

    /// The first gap, `(first missing, last missing)`, if a later message is held.
    pub fn missing(&self) -> Option<(Seq, Seq)> {
        let (&first_held, _) = self.held.first_key_value()?;
        (first_held > self.next).then(|| (self.next, Seq(first_held.0 - 1)))
    }
}
