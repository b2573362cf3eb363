//! A member's [`HoldBackQueue`]: the log's tail not yet shown. Room messages wait here
//! until they are committed and every earlier one is shown; of two copies of one number,
//! the one of the higher term wins (an uncommitted copy from a deposed leader gives way).

use super::*;

/// Room messages a member holds back while waiting for a gap to fill.
pub const MAX_HOLDBACK: usize = 10_000;

/// Slots an empty queue keeps allocated (more are given back once a burst has passed).
const KEPT_SLOTS: usize = 512;

/// A member's hold-back queue: room messages are shown strictly in sequence order; an
/// out-of-order message waits here until the gap before it is filled.
///
/// The entries live in a deque indexed from the next number to deliver (slot `i` holds
/// number `next + i`, `None` for a gap): a burst offers and takes them in order, so both
/// are constant time, and nothing is shifted about. The last slot is never a gap.
#[derive(Debug, Clone)]
pub struct HoldBackQueue {
    next: Seq,
    held: VecDeque<Option<ChatEntry>>,
    /// Slots `a..b` known to be gaps, so that finding the first held entry behind a gap
    /// does not walk the same gaps for every message: a member catching up holds the
    /// room's live messages up to [`MAX_HOLDBACK`] ahead and fills the gap before them in
    /// order, asking where the gap ends after each one.
    gaps: (usize, usize),
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
            held: VecDeque::new(),
            gaps: (0, 0),
            configs: BTreeSet::new(),
        }
    }

    /// The next sequence number to deliver.
    pub fn next(&self) -> Seq {
        self.next
    }

    /// Whether number `seq` is near enough to be held (or was delivered already): at most
    /// [`MAX_HOLDBACK`] - 1 past the next to show.
    pub fn within_reach(&self, seq: Seq) -> bool {
        seq.0 < self.next.0.saturating_add(MAX_HOLDBACK as u64)
    }

    /// The slot of `seq`, if it lies within the deque.
    fn slot(&self, seq: Seq) -> Option<usize> {
        let i = usize::try_from(seq.0.checked_sub(self.next.0)?).ok()?;
        (i < self.held.len()).then_some(i)
    }

    /// Offers a sequenced message; `false` if it was delivered already, is held already
    /// in the same or a higher term (a duplicate, or a stale copy), or lies too far ahead
    /// to hold. A copy of a higher term replaces the one held.
    pub fn offer(&mut self, e: ChatEntry) -> bool {
        if e.seq < self.next || self.get(e.seq).is_some_and(|h| h.term >= e.term) {
            return false;
        }
        if !self.within_reach(e.seq) {
            return false;
        }
        let i = e.seq.0 - self.next.0;
        let i = i as usize;
        if e.config_change().is_some() {
            self.configs.insert(e.seq);
        } else {
            // A copy of a higher term may replace a configuration entry held.
            self.configs.remove(&e.seq);
        }
        if self.held.is_empty() {
            self.gaps = (0, i);
        }
        if i >= self.held.len() {
            self.held.resize_with(i + 1, || None);
        }
        self.held[i] = Some(e);
        // Keep the part of the known gaps on one side of the slot just filled.
        let (a, b) = self.gaps;
        if (a..b).contains(&i) {
            self.gaps = if i == a { (i + 1, b) } else { (a, i) };
        }
        true
    }

    /// Moves the delivery point on to `next` (the numbers before it are skipped), keeping
    /// what is held from there.
    pub fn skip_to(&mut self, next: Seq) {
        if next > self.next {
            let gone = usize::try_from(next.0 - self.next.0).unwrap_or(usize::MAX);
            // What stays still ends with an entry held (or is empty).
            let gone = gone.min(self.held.len());
            self.held.drain(..gone);
            let (a, b) = self.gaps;
            self.gaps = (a.saturating_sub(gone), b.saturating_sub(gone));
            self.note_front_gap();
            self.configs = self.configs.split_off(&next);
            self.next = next;
        }
    }

    /// The held entry numbered `seq`, if any.
    pub fn get(&self, seq: Seq) -> Option<&ChatEntry> {
        self.held.get(self.slot(seq)?)?.as_ref()
    }

    /// Whether an entry proposed in `term` is held.
    pub fn holds_term(&self, term: u64) -> bool {
        self.held.iter().flatten().any(|e| e.term == term)
    }

    /// Removes and returns the next entry if `ready` says it may be shown.
    pub fn pop_if(&mut self, ready: impl Fn(&ChatEntry) -> bool) -> Option<ChatEntry> {
        if !ready(self.get(self.next)?) {
            return None;
        }
        self.pop_ready()
    }

    /// Takes the next message if it is here.
    pub fn pop_ready(&mut self) -> Option<ChatEntry> {
        self.held.front()?.as_ref()?;
        let e = self.held.pop_front()??;
        // The slot taken was held, so it was not among the known gaps.
        let (a, b) = self.gaps;
        self.gaps = (a.saturating_sub(1), b.saturating_sub(1));
        self.note_front_gap();
        if self.held.is_empty() && self.held.capacity() > KEPT_SLOTS {
            // Memory taken by a burst or a long gap goes back once it has passed.
            self.held.shrink_to(KEPT_SLOTS);
        }
        if !self.configs.is_empty() {
            self.configs.remove(&self.next);
        }
        self.next = self.next.next();
        Some(e)
    }

    /// The highest sequence number delivered or held (`next - 1` when nothing is held).
    pub fn high(&self) -> Seq {
        match self.held.len() {
            0 => Seq(self.next.0.saturating_sub(1)),
            n => Seq(self.next.0 + n as u64 - 1),
        }
    }

    /// The held messages from `from` on.
    pub fn held_from(&self, from: Seq) -> impl DoubleEndedIterator<Item = &ChatEntry> {
        let skip = usize::try_from(from.0.saturating_sub(self.next.0))
            .unwrap_or(usize::MAX)
            .min(self.held.len());
        self.held.range(skip..).filter_map(Option::as_ref)
    }

    /// The held entries from `from` on that change the voting configuration, in order.
    pub fn held_configs_from(&self, from: Seq) -> impl Iterator<Item = &ChatEntry> {
        self.configs.range(from..).filter_map(|seq| self.get(*seq))
    }

    /// How many numbers the index of configuration entries holds (for the tests: it must
    /// name nothing that is not held).
    #[cfg(test)]
    pub fn config_index_len(&self) -> usize {
        self.configs.len()
    }

    /// The first gap, `(first missing, last missing)`, if a later message is held.
    pub fn missing(&self) -> Option<(Seq, Seq)> {
        let first_held = self.first_held()?;
        (first_held > 0).then(|| (self.next, Seq(self.next.0 + first_held as u64 - 1)))
    }

    /// The slot of the first entry held, walking past the known gaps.
    fn first_held(&self) -> Option<usize> {
        let (a, b) = self.gaps;
        (0..a)
            .chain(b..self.held.len())
            .find(|&i| self.held[i].is_some())
    }

    /// Once the front is a gap, knows where it ends: each later question skips it.
    fn note_front_gap(&mut self) {
        if self.held.front().is_some_and(Option::is_none)
            && let Some(first) = self.first_held()
        {
            self.gaps = (0, first);
        }
    }
}
