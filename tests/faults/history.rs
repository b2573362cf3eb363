//! The history checker of the fault tests: given every room message each node showed, in
//! the order it showed them, it names what breaks the room's invariants
//! (`shared/ARCHITECTURE.md`, "Invariants every change must keep"):
//!
//! - a fork: one sequence number shown with two different messages, at any two nodes;
//! - a loss: a message its sender showed as its own (`mine`), missing at a live member;
//! - a reorder: two messages shown in opposite orders by two nodes;
//! - a duplicate: one node showing a message twice.
//!
//! A message is known by its sender and text: the tests tag every text uniquely. The
//! checker only reads; it knows nothing of processes, so its own tests feed it histories
//! made by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One room message as a node showed it (a `room` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The room's sequence number.
    pub seq: u64,
    /// The sender's name.
    pub from: String,
    /// The text.
    pub text: String,
    /// Whether the node showed it as its own: the sender's acknowledgement that the room
    /// holds it.
    pub mine: bool,
}

/// A message's identity: sender and text.
type MessageId<'a> = (&'a str, &'a str);

impl Shown {
    fn id(&self) -> MessageId<'_> {
        (&self.from, &self.text)
    }
}

/// Everything one node showed, in order.
#[derive(Clone, Debug)]
pub struct NodeHistory {
    /// The node's name, for the report.
    pub node: String,
    /// Whether it is a member at the end: only live members must show every acknowledged
    /// message.
    pub live: bool,
    /// Whether it joined while the room was already talking: it is then held only to the
    /// acknowledged messages numbered from the first one it showed on (a newcomer is shown
    /// the recent past, not all of it).
    pub joined_late: bool,
    /// Its room messages, in the order shown.
    pub shown: Vec<Shown>,
}

/// What the checker found. Zero counts mean the histories keep every invariant.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Sequence numbers shown with two different messages.
    pub forked: usize,
    /// Acknowledged messages missing at one live member or more.
    pub lost: usize,
    /// The most messages two nodes place differently: over every pair of nodes, how many
    /// of the messages both show must be set aside for the rest to be in one order.
    pub reordered: usize,
    /// Extra showings: a message shown three times by one node counts two.
    pub duplicated: usize,
    /// Messages shown under two different numbers (by different nodes). Not an invariant
    /// of its own, but a sign of a fork elsewhere.
    pub renumbered: usize,
    /// One line per finding, for a failure message.
    pub details: Vec<String>,
}

impl Report {
    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.forked + self.lost + self.reordered + self.duplicated == 0
    }

    /// The counts on one line.
    pub fn summary(&self) -> String {
        format!(
            "lost {}, forked {}, reordered {}, duplicated {}, renumbered {}",
            self.lost, self.forked, self.reordered, self.duplicated, self.renumbered
        )
    }
}

/// At most this many detail lines per kind of finding.
const DETAILS_PER_KIND: usize = 5;

/// Checks the histories of every node that took part, live or not (a killed node's
/// acknowledged messages must survive it; what it showed must not contradict the others).
pub fn check(histories: &[NodeHistory]) -> Report {
    let mut report = Report::default();
    forks(histories, &mut report);
    losses(histories, &mut report);
    reorders(histories, &mut report);
    duplicates(histories, &mut report);
    report
}

/// Adds a detail line unless `count` (the findings of this kind so far, this one included)
/// is past the limit.
fn note(report: &mut Report, count: usize, line: String) {
    if count <= DETAILS_PER_KIND {
        report.details.push(line);
    }
}

fn forks(histories: &[NodeHistory], report: &mut Report) {
    let mut by_seq: BTreeMap<u64, (MessageId, &str)> = BTreeMap::new();
    let mut forked: BTreeSet<u64> = BTreeSet::new();
    let mut seqs_of: HashMap<MessageId, BTreeSet<u64>> = HashMap::new();
    for h in histories {
        for s in &h.shown {
            seqs_of.entry(s.id()).or_default().insert(s.seq);
            let (first, first_node) = *by_seq.entry(s.seq).or_insert((s.id(), &h.node));
            if first != s.id() && forked.insert(s.seq) {
                let line = format!(
                    "fork: #{} is {}: {:?} at {first_node} but {}: {:?} at {}",
                    s.seq, first.0, first.1, s.from, s.text, h.node
                );
                note(report, forked.len(), line);
            }
        }
    }
    report.forked = forked.len();
    report.renumbered = seqs_of.values().filter(|s| s.len() > 1).count();
}

fn losses(histories: &[NodeHistory], report: &mut Report) {
    // Every acknowledged message, with the number its sender showed it under.
    let mut acked: BTreeMap<MessageId, u64> = BTreeMap::new();
    for h in histories {
        for s in h.shown.iter().filter(|s| s.mine) {
            acked.entry(s.id()).or_insert(s.seq);
        }
    }
    let mut missing: BTreeMap<MessageId, Vec<&str>> = BTreeMap::new();
    for h in histories.iter().filter(|h| h.live) {
        let floor = match h.joined_late {
            true => h.shown.iter().map(|s| s.seq).min().unwrap_or(u64::MAX),
            false => 0,
        };
        let has: BTreeSet<MessageId> = h.shown.iter().map(Shown::id).collect();
        for (id, _) in acked
            .iter()
            .filter(|(id, seq)| **seq >= floor && !has.contains(*id))
        {
            missing.entry(*id).or_default().push(&h.node);
        }
    }
    for (i, ((from, text), nodes)) in missing.iter().enumerate() {
        let line = format!(
            "loss: {from}: {text:?} (#{} at {from}) is missing at {}",
            acked[&(*from, *text)],
            nodes.join(", ")
        );
        note(report, i + 1, line);
    }
    report.lost = missing.len();
}

fn reorders(histories: &[NodeHistory], report: &mut Report) {
    let mut pairs = 0;
    for (i, a) in histories.iter().enumerate() {
        // Where `a` first showed each message.
        let mut place: HashMap<MessageId, usize> = HashMap::new();
        for (k, s) in a.shown.iter().enumerate() {
            place.entry(s.id()).or_insert(k);
        }
        for b in &histories[i + 1..] {
            // The places in `a` of the messages both show, in the order `b` showed them.
            let mut seen = BTreeSet::new();
            let in_a: Vec<(usize, &Shown)> = b
                .shown
                .iter()
                .filter(|s| seen.insert(s.id()))
                .filter_map(|s| place.get(&s.id()).map(|&k| (k, s)))
                .collect();
            let places: Vec<usize> = in_a.iter().map(|(k, _)| *k).collect();
            let out_of_place = places.len() - longest_increasing(&places);
            if out_of_place == 0 {
                continue;
            }
            pairs += 1;
            report.reordered = report.reordered.max(out_of_place);
            // The first message `b` showed after one that `a` showed later.
            let mut latest = in_a[0];
            for &(k, s) in &in_a {
                if k < latest.0 {
                    let line = format!(
                        "reorder: {} shows {}: {:?} before {}: {:?}, {} the other way round \
                         ({out_of_place} of {} common messages out of place)",
                        b.node,
                        latest.1.from,
                        latest.1.text,
                        s.from,
                        s.text,
                        a.node,
                        places.len()
                    );
                    note(report, pairs, line);
                    break;
                }
                if k > latest.0 {
                    latest = (k, s);
                }
            }
        }
    }
}

/// The length of the longest strictly increasing subsequence of `xs`.
fn longest_increasing(xs: &[usize]) -> usize {
    // tails[n] is the smallest last element of an increasing run of length n + 1.
    let mut tails: Vec<usize> = Vec::new();
    for &x in xs {
        match tails.binary_search(&x) {
            Ok(_) => {}
            Err(at) if at == tails.len() => tails.push(x),
            Err(at) => tails[at] = x,
        }
    }
    tails.len()
}

fn duplicates(histories: &[NodeHistory], report: &mut Report) {
    let mut found = 0;
    for h in histories {
        let mut count: BTreeMap<MessageId, usize> = BTreeMap::new();
        for s in &h.shown {
            *count.entry(s.id()).or_default() += 1;
        }
        for ((from, text), n) in count.into_iter().filter(|(_, n)| *n > 1) {
            found += 1;
            report.duplicated += n - 1;
            let line = format!("duplicate: {} showed {from}: {text:?} {n} times", h.node);
            note(report, found, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message `from` sent, `text` being `from` and `tag`.
    fn msg(seq: u64, from: &str, tag: u32, mine: bool) -> Shown {
        Shown {
            seq,
            from: from.to_string(),
            text: format!("{from}#{tag}"),
            mine,
        }
    }

    /// A live original member `node` that showed `shown`; its own messages are marked
    /// `mine` by name.
    fn node(name: &str, shown: &[(u64, &str, u32)]) -> NodeHistory {
        NodeHistory {
            node: name.to_string(),
            live: true,
            joined_late: false,
            shown: shown
                .iter()
                .map(|&(seq, from, tag)| msg(seq, from, tag, from == name))
                .collect(),
        }
    }

    /// Three nodes that agree on four messages.
    fn agreeing() -> Vec<NodeHistory> {
        let log = [(1, "a", 1), (2, "b", 1), (3, "c", 1), (4, "a", 2)];
        ["a", "b", "c"].iter().map(|n| node(n, &log)).collect()
    }

    /// [`agreeing`], except that node `name` showed `shown`.
    fn agreeing_but(name: &str, shown: &[(u64, &str, u32)]) -> Vec<NodeHistory> {
        let mut h = agreeing();
        let at = h.iter().position(|n| n.node == name).expect("a, b or c");
        h[at] = node(name, shown);
        h
    }

    /// Checks `h`; asserts what it counts (lost, forked, reordered, duplicated) and that a
    /// detail line contains `what`. Returns the report.
    #[track_caller]
    fn finds(h: &[NodeHistory], counts: [usize; 4], what: &str) -> Report {
        let r = check(h);
        assert_eq!(
            [r.lost, r.forked, r.reordered, r.duplicated],
            counts,
            "{r:?}"
        );
        assert!(!r.is_clean());
        let all = r.details.join("\n");
        assert!(all.contains(what), "no {what:?} in:\n{all}");
        r
    }

    #[test]
    fn agreeing_histories_are_clean() {
        let r = check(&agreeing());
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.renumbered, 0);
        assert!(r.details.is_empty());
        assert_eq!(
            r.summary(),
            "lost 0, forked 0, reordered 0, duplicated 0, renumbered 0"
        );
    }

    #[test]
    fn a_number_with_two_messages_is_a_fork() {
        // c shows b's message under #3, where the others show c's own.
        let h = agreeing_but("c", &[(1, "a", 1), (2, "b", 1), (3, "b", 9), (4, "a", 2)]);
        let what = "fork: #3 is c: \"c#1\" at a but b: \"b#9\" at c";
        finds(&h, [0, 1, 0, 0], what);
    }

    #[test]
    fn a_message_under_two_numbers_is_renumbered_and_forks() {
        // b shows a#2 under #3 and nothing under #4.
        let h = agreeing_but("b", &[(1, "a", 1), (2, "b", 1), (3, "a", 2)]);
        // b also misses c#1, which c showed as its own.
        let r = finds(&h, [1, 1, 0, 0], "fork: #3");
        assert_eq!(r.renumbered, 1);
    }

    #[test]
    fn an_acknowledged_message_missing_at_a_live_member_is_lost() {
        let mut h = agreeing();
        h[1].shown.retain(|s| s.text != "c#1");
        let what = "loss: c: \"c#1\" (#3 at c) is missing at b";
        finds(&h, [1, 0, 0, 0], what);
    }

    #[test]
    fn a_killed_senders_acknowledged_message_must_survive_it() {
        let mut h = agreeing();
        h[2].live = false;
        for n in &mut h[..2] {
            n.shown.retain(|s| s.text != "c#1");
        }
        finds(&h, [1, 0, 0, 0], "missing at a, b");
    }

    #[test]
    fn a_dead_node_need_not_show_everything() {
        let mut h = agreeing();
        h[2].live = false;
        h[2].shown.truncate(1);
        assert!(check(&h).is_clean());
    }

    #[test]
    fn an_unacknowledged_message_may_be_missing() {
        let mut h = agreeing();
        // Only b shows d's message, and d never showed it as its own.
        h[1].shown.push(msg(5, "d", 1, false));
        assert!(check(&h).is_clean());
    }

    #[test]
    fn a_late_joiner_owes_only_what_was_numbered_since_its_first_message() {
        let mut h = agreeing();
        h.push(NodeHistory {
            node: "z".into(),
            live: true,
            joined_late: true,
            shown: vec![msg(3, "c", 1, false), msg(4, "a", 2, false)],
        });
        assert!(check(&h).is_clean(), "{:?}", check(&h));
        // Once in, it owes everything acknowledged.
        h[3].shown.pop();
        finds(&h, [1, 0, 0, 0], "missing at z");
    }

    #[test]
    fn two_orders_are_a_reorder() {
        // b shows c#1 and b#1 the other way round (under the same numbers as the others:
        // the order, not the numbering, is what differs).
        let h = agreeing_but("b", &[(1, "a", 1), (3, "c", 1), (2, "b", 1), (4, "a", 2)]);
        let what = "b shows c: \"c#1\" before b: \"b#1\", a the other way round";
        finds(&h, [0, 0, 1, 0], &format!("reorder: {what}"));
    }

    #[test]
    fn a_moved_block_counts_the_fewest_messages_out_of_place() {
        let a: Vec<(u64, &str, u32)> = (1..=6).map(|i| (i, "x", i as u32)).collect();
        // b shows x#5 and x#6 first: two messages out of place, not eight inverted pairs.
        let b: Vec<(u64, &str, u32)> = [5, 6, 1, 2, 3, 4].map(|i| (i, "x", i as u32)).to_vec();
        let r = check(&[node("a", &a), node("b", &b)]);
        assert_eq!(r.reordered, 2, "{r:?}");
    }

    #[test]
    fn messages_only_one_node_shows_do_not_count_for_order() {
        let mut h = agreeing();
        h[0].shown.insert(0, msg(9, "q", 1, false));
        assert!(check(&h).is_clean());
    }

    #[test]
    fn a_message_shown_twice_is_a_duplicate() {
        let mut h = agreeing();
        let again = h[2].shown[1].clone();
        h[2].shown.push(again.clone());
        h[2].shown.push(again);
        finds(&h, [0, 0, 0, 2], "duplicate: c showed b: \"b#1\" 3 times");
    }

    #[test]
    fn details_are_capped_but_counts_are_not() {
        let mut h = agreeing();
        let many: Vec<Shown> = (10..30).map(|i| msg(i, "a", i as u32, true)).collect();
        h[0].shown.extend(many);
        let r = finds(&h, [20, 0, 0, 0], "loss: a: \"a#10\"");
        assert_eq!(r.details.len(), DETAILS_PER_KIND);
    }

    #[test]
    fn longest_increasing_run() {
        assert_eq!(longest_increasing(&[]), 0);
        assert_eq!(longest_increasing(&[3, 1, 2]), 2);
        assert_eq!(longest_increasing(&[1, 2, 3]), 3);
        assert_eq!(longest_increasing(&[5, 4, 3]), 1);
    }
}
