//! Proof of origin for room messages (see `proto::seal`): the messages known to be their
//! origin's ([`Vouched`]), and those still waiting for the message that closes their run
//! ([`Pending`]). Pure data: the node decides what to do with what [`Pending::settle`]
//! finds.
//!
//! A message is known to be its origin's once its chain value is covered by a valid seal:
//! its own, or one further along its origin's chain (every message in between present,
//! each linking to the one before). Messages from different senders are never chained
//! together before they are vouched for: a member answering a fetch cannot spoil the
//! leader's copies by sending others.

use super::holdback::MAX_HOLDBACK;
use super::*;
use crate::proto::seal::{self, RunKey, Written};
use crate::wire::{ChainLink, Provenance, SignatureBytes};
use group::Group;

/// Chain values of vouched messages remembered in all, at most (about 1.4 MB): every
/// number a member may hold beyond its delivery point, all of one origin, and as many
/// again. Past it, the oldest of the origin with the most are forgotten first. A bound
/// per origin (1 024, before) forgot what a member still needed: holding more of one
/// origin's proposals than that, it proved a new leader's copies of the first ones only
/// in pieces, as they arrived, and each piece it vouched for was forgotten at once, so
/// the messages before it never proved and were never acked (`sim_failover` burst seed
/// 23).
pub const VOUCHED_MAX: usize = 2 * MAX_HOLDBACK;

/// How many a full [`Vouched`] forgets at a time, at most (the search for the origin
/// with the most is made once per this many); never more than half an origin's, so its
/// newest stay (the next message, sent without its link, is placed after them).
const FORGET_AT_ONCE: usize = 256;

/// Origins whose chain values are remembered, at most.
pub const VOUCHED_ORIGINS: usize = 256;

/// Messages from one sender waiting for their run to close, at most; more are not taken
/// (they are not acknowledged, so their sender tries again). A sender that never closes
/// its runs uses up its own share only.
pub const PENDING_PER_SENDER: usize = 4096;

/// The most room an emptied group keeps for the next one (twice the longest run).
const SPARE_MAX: usize = 512;

/// The chain values of messages known to be their origin's: `(origin, origin_seq)` to the
/// message's link and its own chain value. Kept per origin as a run sorted by number
/// (an origin's messages are vouched for mostly in its order), [`VOUCHED_MAX`] in all.
#[derive(Debug, Default, Clone)]
pub struct Vouched {
    by_origin: BTreeMap<NodeId, VecDeque<(OriginSeq, ChainLink, ChainLink)>>,
    /// How many are remembered, of every origin.
    total: usize,
}

impl Vouched {
    /// The link and chain value of `(origin, origin_seq)`, if vouched for.
    pub fn get(&self, origin: NodeId, origin_seq: OriginSeq) -> Option<(&ChainLink, &ChainLink)> {
        let run = self.by_origin.get(&origin)?;
        let (newest, first) = (run.back()?, run.front()?);
        // Most lookups are of the newest, or of the one after it (not vouched yet).
        if newest.0 == origin_seq {
            return Some((&newest.1, &newest.2));
        }
        if origin_seq > newest.0 || origin_seq < first.0 {
            return None;
        }
        // Numbers are mostly consecutive: try the place they would have, then search.
        let i = usize::try_from(origin_seq.0 - first.0.0)
            .ok()
            .filter(|&i| run.get(i).is_some_and(|e| e.0 == origin_seq))
            .or_else(|| run.binary_search_by_key(&origin_seq, |(k, _, _)| *k).ok())?;
        let (_, l, v) = &run[i];
        Some((l, v))
    }

    /// Records that `(origin, origin_seq)` with `link` has chain value `value`.
    pub fn insert(
        &mut self,
        origin: NodeId,
        origin_seq: OriginSeq,
        link: ChainLink,
        value: ChainLink,
    ) {
        if !self.by_origin.contains_key(&origin) && self.by_origin.len() >= VOUCHED_ORIGINS {
            // The origin heard of least recently goes (its messages are old news).
            if let Some(oldest) = self
                .by_origin
                .iter()
                .min_by_key(|(_, run)| run.len())
                .map(|(o, _)| *o)
            {
                let gone = self.by_origin.remove(&oldest).map_or(0, |r| r.len());
                self.total -= gone;
            }
        }
        let run = self.by_origin.entry(origin).or_default();
        match run.back() {
            Some((last, _, _)) if *last >= origin_seq => {
                match run.binary_search_by_key(&origin_seq, |(k, _, _)| *k) {
                    Ok(i) => run[i] = (origin_seq, link, value),
                    Err(i) => {
                        run.insert(i, (origin_seq, link, value));
                        self.total += 1;
                    }
                }
            }
            _ => {
                run.push_back((origin_seq, link, value));
                self.total += 1;
            }
        }
        if self.total > VOUCHED_MAX {
            self.forget_oldest();
        }
    }

    /// Forgets the oldest of the origin with the most: [`FORGET_AT_ONCE`], or half of
    /// them if fewer. With at most [`VOUCHED_ORIGINS`] origins, that one holds more than
    /// 78 when the whole is full.
    fn forget_oldest(&mut self) {
        if let Some(run) = self.by_origin.values_mut().max_by_key(|r| r.len()) {
            let gone = FORGET_AT_ONCE.min(run.len() / 2);
            run.drain(..gone);
            self.total -= gone;
        }
    }

    /// If `w` (claiming `link`, or none) is the very message vouched for under its number,
    /// its link.
    pub fn confirms(&self, w: &Written<'_>, link: Option<ChainLink>) -> Option<ChainLink> {
        let (known, value) = self.get(w.origin, w.origin_seq)?;
        (link.is_none_or(|l| l == *known) && seal::chain(known, w) == *value).then_some(*known)
    }
}

/// Something an origin wrote, with its proof: a submission or a sequenced entry.
pub trait Chained {
    /// The fields the chain value covers; `origin` is the message's origin.
    fn written(&self, origin: NodeId) -> Written<'_>;
    /// The proof it carries.
    fn proof(&self) -> &Provenance;
}

impl Chained for Submit {
    fn written(&self, origin: NodeId) -> Written<'_> {
        Written {
            origin,
            name: &self.name,
            origin_seq: self.origin_seq,
            lamport: self.lamport,
            sent_at: self.sent_at,
            text: &self.text,
        }
    }

    fn proof(&self) -> &Provenance {
        &self.proof
    }
}

impl Chained for ChatEntry {
    fn written(&self, _origin: NodeId) -> Written<'_> {
        Written {
            origin: self.origin,
            name: &self.name,
            origin_seq: self.origin_seq,
            lamport: self.lamport,
            sent_at: self.sent_at,
            text: &self.text,
        }
    }

    fn proof(&self) -> &Provenance {
        &self.proof
    }
}

/// What [`Pending::settle`] found for one sender and origin.
#[derive(Debug)]
pub struct Settled<T> {
    /// Messages now vouched for, in their origin's order, each with its link and value.
    pub vouched: Vec<(T, ChainLink, ChainLink)>,
    /// Messages refused: their run's seal does not check, or the messages around them
    /// contradict them. Gone from the pending ones.
    pub refused: Vec<T>,
}

/// A run found closed by a seal, waiting for the seal to be checked.
struct Closure {
    members: Vec<(OriginSeq, ChainLink, ChainLink)>,
    value: ChainLink,
    seal: SignatureBytes,
}

/// Messages waiting for their run to close, grouped by who sent them and whose they are.
#[derive(Debug, Clone)]
pub struct Pending<T> {
    groups: BTreeMap<(NodeId, NodeId), Group<T>>,
    /// How many wait per sender.
    per_sender: BTreeMap<NodeId, usize>,
    /// Groups where something could be proven now (see [`Pending::take_ready`]).
    ready: BTreeSet<(NodeId, NodeId)>,
    /// The room of the last group emptied, for the next one (a burst fills and empties a
    /// group on every datagram: without it, each would grow its vector from nothing).
    spare: Group<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            groups: BTreeMap::new(),
            per_sender: BTreeMap::new(),
            ready: BTreeSet::new(),
            spare: Group::default(),
        }
    }
}

impl<T: Chained> Pending<T> {
    /// Keeps `item`, number `origin_seq` of `origin`, as sent by `sender` (replacing an
    /// earlier copy from the same sender). Returns `None` if it was not taken (too many
    /// of `sender`'s wait), else whether settling could now vouch for something: the item
    /// closes a run, or something waits after it, or the message after it is vouched for.
    pub fn insert(
        &mut self,
        sender: NodeId,
        origin: NodeId,
        origin_seq: OriginSeq,
        item: T,
        vouched: &Vouched,
    ) -> Option<bool> {
        let group = self
            .groups
            .entry((sender, origin))
            .or_insert_with(|| std::mem::take(&mut self.spare));
        let closes = item.proof().seal.is_some()
            || group.contains(origin_seq.next())
            || vouched.get(origin, origin_seq.next()).is_some();
        if !group.contains(origin_seq) {
            let count = self.per_sender.entry(sender).or_default();
            if *count >= PENDING_PER_SENDER {
                if group.is_empty()
                    && let Some(g) = self.groups.remove(&(sender, origin))
                {
                    self.keep_spare(g);
                }
                return None;
            }
            *count += 1;
        }
        group.insert(origin_seq, item);
        if closes {
            self.ready.insert((sender, origin));
        }
        Some(closes)
    }

    /// Something of `origin`'s was vouched for from elsewhere (its own word, say): every
    /// group of its messages may now settle (a vouched message proves the one before
    /// it), whoever sent them.
    pub fn wake_origin(&mut self, origin: NodeId) {
        let keys = self.groups.keys().filter(|(_, o)| *o == origin).copied();
        self.ready.extend(keys);
    }

    /// The groups where something could be proven since the last call: settle them
    /// together ([`Pending::settle_all`]), once the inputs at hand are in.
    pub fn take_ready(&mut self) -> Vec<(NodeId, NodeId)> {
        std::mem::take(&mut self.ready).into_iter().collect()
    }

    /// A message of `(sender, origin)`'s group, if any waits.
    pub fn any_of(&self, sender: NodeId, origin: NodeId) -> Option<&T> {
        self.groups.get(&(sender, origin)).and_then(Group::first)
    }

    /// Whether `sender` has as many waiting as it may.
    pub fn is_full(&self, sender: NodeId) -> bool {
        self.per_sender
            .get(&sender)
            .is_some_and(|c| *c >= PENDING_PER_SENDER)
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.per_sender.values().sum()
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any message waiting is one `f` picks.
    pub fn any(&self, f: impl Fn(&T) -> bool) -> bool {
        self.groups.values().any(|g| g.iter().any(|(_, t)| f(t)))
    }

    /// Whether `sender`'s message `origin_seq` of `origin` waits.
    pub fn holds(&self, sender: NodeId, origin: NodeId, origin_seq: OriginSeq) -> bool {
        self.groups
            .get(&(sender, origin))
            .is_some_and(|g| g.contains(origin_seq))
    }

    /// Takes out `sender`'s message `origin_seq` of `origin`, if it waits.
    pub fn take_one(&mut self, sender: NodeId, origin: NodeId, origin_seq: OriginSeq) -> Option<T> {
        let group = self.groups.get_mut(&(sender, origin))?;
        let (_, item) = group.take(|k| k == origin_seq).pop()?;
        if group.is_empty() {
            self.groups.remove(&(sender, origin));
        }
        if let Some(count) = self.per_sender.get_mut(&sender) {
            *count -= 1;
            if *count == 0 {
                self.per_sender.remove(&sender);
            }
        }
        Some(item)
    }

    /// Takes out the messages `pick` picks (proven some other way), each with its sender.
    pub fn extract(&mut self, mut pick: impl FnMut(&T) -> bool) -> Vec<(NodeId, T)> {
        let mut out = Vec::new();
        for ((sender, _), group) in self.groups.iter_mut() {
            let picked: BTreeSet<OriginSeq> = group
                .iter()
                .filter(|(_, t)| pick(t))
                .map(|(k, _)| k)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let taken = group.take(|k| picked.contains(&k));
            if let Some(count) = self.per_sender.get_mut(sender) {
                *count -= taken.len();
            }
            out.extend(taken.into_iter().map(|(_, t)| (*sender, t)));
        }
        self.groups.retain(|_, g| !g.is_empty());
        self.per_sender.retain(|_, c| *c > 0);
        out
    }

    /// Keeps only the messages `keep` picks (the others are of no use any more).
    pub fn retain(&mut self, keep: impl Fn(&T) -> bool) {
        for ((sender, _), group) in self.groups.iter_mut() {
            let before = group.len();
            group.retain(&keep);
            if let Some(count) = self.per_sender.get_mut(sender) {
                *count -= before - group.len();
            }
        }
        self.groups.retain(|_, g| !g.is_empty());
        self.per_sender.retain(|_, c| *c > 0);
    }

    /// Forgets everything `sender` sent (it left, or lost its standing).
    pub fn forget_sender(&mut self, sender: NodeId) {
        let keys: Vec<(NodeId, NodeId)> = self
            .groups
            .range((sender, NodeId(0))..=(sender, NodeId(u64::MAX)))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.groups.remove(&k);
            self.ready.remove(&k);
        }
        self.per_sender.remove(&sender);
    }

    /// Finds what `sender`'s messages of `origin` prove, with `key` the origin's identity
    /// (`None` if not known: only runs closed by a vouched message can then settle), and
    /// takes out what is vouched for or refused.
    #[cfg(test)]
    pub fn settle(
        &mut self,
        sender: NodeId,
        origin: NodeId,
        key: Option<&crate::wire::PublicKey>,
        vouched: &Vouched,
    ) -> Settled<T> {
        let key = key.map(RunKey::new);
        self.settle_all(&[(sender, origin)], |_| key, vouched)
            .pop()
            .map(|(_, _, s)| s)
            .unwrap_or(Settled {
                vouched: Vec::new(),
                refused: Vec::new(),
            })
    }

    /// [`Pending::settle`] for several groups at once: where one run follows on from
    /// another in its origin's chain, only the later seal is checked (it covers both);
    /// the seals left to check, of every group, are checked together (ed25519 batch
    /// verification). `key_of` gives an origin's identity.
    pub fn settle_all(
        &mut self,
        groups: &[(NodeId, NodeId)],
        key_of: impl Fn(NodeId) -> Option<RunKey>,
        vouched: &Vouched,
    ) -> Vec<(NodeId, NodeId, Settled<T>)> {
        // Per group: what a vouched successor proves, and stretches of runs that follow
        // on from each other, each to be proven by its last seal.
        let mut found = Vec::new();
        let mut checks: Vec<(RunKey, ChainLink, SignatureBytes)> = Vec::new();
        for &(sender, origin) in groups {
            let Some(group) = self.groups.get(&(sender, origin)) else {
                continue;
            };
            let (ok, closures) = walk(group, origin, vouched);
            let key = key_of(origin);
            let mut stretches: Vec<Vec<Closure>> = Vec::new();
            if key.is_some() {
                for c in closures {
                    let follows = stretches.last().and_then(|s| s.last()).is_some_and(|last| {
                        let (k, _, _) = last.members[last.members.len() - 1];
                        let (next, link, _) = c.members[0];
                        k.next() == next && link == last.value
                    });
                    match stretches.last_mut() {
                        Some(s) if follows => s.push(c),
                        _ => stretches.push(vec![c]),
                    }
                }
            }
            let first = checks.len();
            if let Some(key) = key {
                for s in &stretches {
                    let last = &s[s.len() - 1];
                    checks.push((key, last.value, last.seal));
                }
            }
            found.push((sender, origin, key, ok, stretches, first));
        }
        let all = !checks.is_empty() && seal::check_runs(&checks);
        let mut out = Vec::new();
        for (sender, origin, key, mut ok, stretches, first) in found {
            let mut bad = Vec::new();
            for (i, stretch) in stretches.into_iter().enumerate() {
                let (k, v, s) = &checks[first + i];
                if all || seal::check_run_by(k, v, s) {
                    ok.reserve(stretch.iter().map(|c| c.members.len()).sum());
                    ok.extend(stretch.into_iter().flat_map(|c| c.members));
                    continue;
                }
                // Some run of the stretch is not its origin's: each is judged alone.
                for c in stretch {
                    if key.is_some_and(|key| seal::check_run_by(&key, &c.value, &c.seal)) {
                        ok.extend(c.members);
                    } else {
                        bad.extend(c.members.into_iter().map(|(k, _, _)| k));
                    }
                }
            }
            out.push((sender, origin, self.take(sender, origin, ok, bad)));
        }
        out
    }

    /// Takes the messages `ok` (vouched for, with their links and values) and `bad`
    /// (refused) out of `(sender, origin)`'s group.
    fn take(
        &mut self,
        sender: NodeId,
        origin: NodeId,
        mut ok: Vec<(OriginSeq, ChainLink, ChainLink)>,
        bad: Vec<OriginSeq>,
    ) -> Settled<T> {
        let mut out = Settled {
            vouched: Vec::with_capacity(ok.len()),
            refused: Vec::with_capacity(bad.len()),
        };
        let Some(group) = self.groups.get_mut(&(sender, origin)) else {
            return out;
        };
        ok.sort_by_key(|(k, _, _)| *k);
        let mut bad = bad;
        bad.sort();
        // Both lists and the group are in the origin's order: one pass takes them out,
        // each tagged with its link and value (proven) or nothing (refused).
        let mut ok = ok.into_iter().peekable();
        let mut tags: Vec<Option<(ChainLink, ChainLink)>> =
            Vec::with_capacity(ok.len() + bad.len());
        let taken = group.take(|k| {
            while ok.next_if(|(n, _, _)| *n < k).is_some() {}
            if let Some((_, link, value)) = ok.next_if(|(n, _, _)| *n == k) {
                tags.push(Some((link, value)));
                true
            } else if bad.binary_search(&k).is_ok() {
                tags.push(None);
                true
            } else {
                false
            }
        });
        for ((_, item), tag) in taken.into_iter().zip(tags) {
            match tag {
                Some((link, value)) => out.vouched.push((item, link, value)),
                None => out.refused.push(item),
            }
        }
        let taken = out.vouched.len() + out.refused.len();
        if let Some(count) = self.per_sender.get_mut(&sender) {
            *count -= taken;
            if *count == 0 {
                self.per_sender.remove(&sender);
            }
        }
        if group.is_empty()
            && let Some(g) = self.groups.remove(&(sender, origin))
        {
            self.keep_spare(g);
        }
        out
    }

    /// Keeps emptied group `g` as the spare if it has more room than the spare (up to
    /// [`SPARE_MAX`]: a flood's room is not kept for ever).
    fn keep_spare(&mut self, g: Group<T>) {
        if g.is_empty() && g.capacity() > self.spare.capacity() && g.capacity() <= SPARE_MAX {
            self.spare = g;
        }
    }
}

/// One pass over a group in its origin's order: the messages vouched for by a vouched
/// successor, and the runs closed by a seal still to check. A message that carries its
/// link starts a run of its own there (an origin's runs link up, but nothing depends on
/// it); one without is placed after the message before it, if that is here or vouched.
fn walk<T: Chained>(
    group: &Group<T>,
    origin: NodeId,
    vouched: &Vouched,
) -> (Vec<(OriginSeq, ChainLink, ChainLink)>, Vec<Closure>) {
    let mut ok = Vec::new();
    let mut closures = Vec::new();
    // The open run: messages placed in the chain, not yet closed.
    let mut run: Vec<(OriginSeq, ChainLink, ChainLink)> = Vec::with_capacity(group.len());
    // The chain value of the message before, if known.
    let mut expected: Option<ChainLink> = None;
    let mut previous: Option<OriginSeq> = None;
    for (k, item) in group.iter() {
        if previous.is_none_or(|p| p.next() != k) {
            // A gap: what was open waits for the missing messages.
            run.clear();
            expected =
                k.0.checked_sub(1)
                    .and_then(|p| vouched.get(origin, OriginSeq(p)))
                    .map(|(_, v)| *v);
        }
        previous = Some(k);
        let link = match item.proof().link {
            Some(claimed) => {
                if expected != Some(claimed) {
                    // Not the continuation of the open run: that one waits.
                    run.clear();
                }
                claimed
            }
            None => match expected {
                Some(e) => e,
                None => {
                    // Not placed yet: the message before it has not come.
                    run.clear();
                    continue;
                }
            },
        };
        let value = seal::chain(&link, &item.written(origin));
        run.push((k, link, value));
        expected = Some(value);
        if let Some(seal) = &item.proof().seal {
            closures.push(Closure {
                // Copied out at its size; `run` keeps its room for the next one.
                members: run.split_off(0),
                value,
                seal: **seal,
            });
        } else if vouched
            .get(origin, k.next())
            .is_some_and(|(next_link, _)| *next_link == value)
        {
            ok.append(&mut run);
        }
    }
    (ok, closures)
}

mod group;
#[cfg(test)]
mod tests;
