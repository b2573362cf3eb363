//! Tests of the sequencer, the hold-back queue, the history and the outbox.

use super::*;
use crate::ids::{Lamport, WallMillis};

fn submit(n: u64, below: u64) -> Submit {
    Submit {
        origin_seq: OriginSeq(n),
        committed_below: OriginSeq(below),
        name: "a".into(),
        lamport: Lamport(n),
        sent_at: WallMillis(0),
        text: format!("m{n}"),
        proof: Default::default(),
    }
}

fn seqs(a: Accepted) -> Vec<(u64, u64)> {
    match a {
        Accepted::Sequenced(v) => v.iter().map(|e| (e.seq.0, e.origin_seq.0)).collect(),
        other => panic!("expected sequenced, got {other:?}"),
    }
}

#[test]
fn sequencer_numbers_in_arrival_order_across_origins() {
    let mut s = Sequencer::resume(Seq(1), &History::new(10));
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(1, 1))), vec![(1, 1)]);
    assert_eq!(seqs(s.accept(NodeId(2), "b", submit(1, 1))), vec![(2, 1)]);
    assert_eq!(s.next_seq(), Seq(3));
}

/// A retried submission is recognised by (origin, origin_seq) and never posted twice.
#[test]
fn sequencer_recognises_retries() {
    let mut s = Sequencer::resume(Seq(1), &History::new(10));
    seqs(s.accept(NodeId(1), "a", submit(1, 1)));
    assert_eq!(s.accept(NodeId(1), "a", submit(1, 1)), Accepted::Duplicate);
    assert_eq!(s.next_seq(), Seq(2));
}

/// Per-sender FIFO: a later submission that overtook an earlier one waits for it.
#[test]
fn sequencer_keeps_each_origins_order() {
    let mut s = Sequencer::resume(Seq(1), &History::new(10));
    assert_eq!(s.accept(NodeId(1), "a", submit(2, 1)), Accepted::Held);
    assert_eq!(s.accept(NodeId(1), "a", submit(2, 1)), Accepted::Duplicate);
    assert_eq!(
        seqs(s.accept(NodeId(1), "a", submit(1, 1))),
        vec![(1, 1), (2, 2)]
    );
}

/// A full hold for one origin never refuses the submission the others wait for, and
/// keeps the nearest ones: an origin with more unconfirmed than the hold takes, whose first
/// was lost, is not stuck for good.
#[test]
fn sequencer_full_of_later_ones_still_takes_the_next() {
    let mut s = Sequencer::resume(Seq(1), &History::new(10));
    let n = MAX_HELD_PER_ORIGIN as u64;
    // 1 is lost; 3..n+3 arrive (one over the bound: the farthest is refused).
    for k in 3..n + 3 {
        assert_eq!(
            s.accept(NodeId(1), "a", submit(k, 1)),
            Accepted::Held,
            "{k}"
        );
    }
    assert_eq!(
        s.accept(NodeId(1), "a", submit(n + 3, 1)),
        Accepted::Overflow
    );
    // 2 is nearer than the farthest held: it takes its place.
    assert_eq!(s.accept(NodeId(1), "a", submit(2, 1)), Accepted::Held);
    let out = seqs(s.accept(NodeId(1), "a", submit(1, 1)));
    assert_eq!(out.len() as u64, n + 1, "1, 2 and 3..=n+1 go out together");
    assert_eq!(out.last(), Some(&(n + 1, n + 1)));
    // The displaced ones are sequenced when their origin resubmits them.
    assert_eq!(
        seqs(s.accept(NodeId(1), "a", submit(n + 2, 1))),
        vec![(n + 2, n + 2)]
    );
}

/// A new leader that never saw an origin's early messages trusts the origin's
/// `committed_below` instead of waiting forever for number 1.
#[test]
fn sequencer_skips_what_the_origin_says_is_committed() {
    let mut s = Sequencer::resume(Seq(40), &History::new(10));
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(7, 7))), vec![(40, 7)]);
}

/// A held submission is released when the origin says the one it waited for was
/// committed elsewhere (by a leader on the other side of a partition, say).
#[test]
fn sequencer_releases_held_when_committed_below_moves() {
    let mut s = Sequencer::resume(Seq(1), &History::new(10));
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(1, 1))), vec![(1, 1)]);
    assert_eq!(s.accept(NodeId(1), "a", submit(3, 2)), Accepted::Held);
    // The retry of 3 says everything below 3 is committed: 3 goes out now.
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(3, 3))), vec![(2, 3)]);
}

/// After a failover a later submission can survive while an earlier one was lost with
/// the old leader: the earlier one is sequenced when resubmitted, the later is not again.
#[test]
fn sequencer_takes_a_lost_submission_below_a_surviving_one() {
    let mut s = Sequencer::resume(Seq(30), &History::new(10));
    s.note_sequenced(NodeId(1), OriginSeq(6));
    assert_eq!(s.accept(NodeId(1), "a", submit(6, 5)), Accepted::Duplicate);
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(5, 5))), vec![(30, 5)]);
    assert_eq!(seqs(s.accept(NodeId(1), "a", submit(7, 5))), vec![(31, 7)]);
}

/// What a take-over answer claimed an origin sent counts only once the origin's own
/// submission matches it: a true claim makes it a repeat (and lets go what waited for
/// it), a false one is refuted and the submission sequenced.
#[test]
fn sequencer_takes_a_claim_only_on_its_origins_word() {
    let a = NodeId(1);
    let mut s = Sequencer::resume(Seq(10), &History::new(10));
    s.note_claimed(&entry(1));
    // Unconfirmed, the claim lets nothing past it.
    assert_eq!(s.accept(a, "a", submit(2, 1)), Accepted::Held);
    assert_eq!(s.settle_claim(a, &submit(1, 1)), ClaimCheck::Confirmed);
    assert_eq!(seqs(s.accept(a, "a", submit(1, 1))), vec![(10, 2)]);
    assert_eq!(s.settle_claim(a, &submit(1, 1)), ClaimCheck::Unclaimed);

    let mut s = Sequencer::resume(Seq(10), &History::new(10));
    let mut lie = entry(1);
    lie.text = "made up".into();
    s.note_claimed(&lie);
    assert_eq!(s.settle_claim(a, &submit(1, 1)), ClaimCheck::Refuted);
    assert_eq!(seqs(s.accept(a, "a", submit(1, 1))), vec![(10, 1)]);

    // Claims below what the origin says is committed are settled by its word.
    let mut s = Sequencer::resume(Seq(10), &History::new(10));
    s.note_claimed(&lie);
    assert_eq!(seqs(s.accept(a, "a", submit(3, 3))), vec![(10, 3)]);
    assert_eq!(s.settle_claim(a, &submit(1, 1)), ClaimCheck::Unclaimed);
}

#[test]
fn sequencer_resumes_from_history() {
    let mut h = History::new(10);
    h.push(ChatEntry {
        seq: Seq(1),
        origin: NodeId(1),
        name: "a".into(),
        origin_seq: OriginSeq(1),
        lamport: Lamport(1),
        sent_at: WallMillis(0),
        text: "x".into(),
        term: 0,
        proof: Default::default(),
    });
    let mut s = Sequencer::resume(Seq(2), &h);
    assert_eq!(s.accept(NodeId(1), "a", submit(1, 1)), Accepted::Duplicate);
}

fn entry(seq: u64) -> ChatEntry {
    ChatEntry {
        seq: Seq(seq),
        origin: NodeId(1),
        name: "a".into(),
        origin_seq: OriginSeq(seq),
        lamport: Lamport(seq),
        sent_at: WallMillis(0),
        text: format!("m{seq}"),
        term: 0,
        proof: Default::default(),
    }
}

#[test]
fn holdback_delivers_in_order_and_reports_gaps() {
    let mut q = HoldBackQueue::new(Seq(1));
    assert!(q.offer(entry(3)));
    assert!(q.pop_ready().is_none());
    assert_eq!(q.missing(), Some((Seq(1), Seq(2))));
    assert!(q.offer(entry(1)));
    assert_eq!(q.pop_ready().unwrap().seq, Seq(1));
    assert!(q.pop_ready().is_none());
    assert_eq!(q.missing(), Some((Seq(2), Seq(2))));
    assert!(q.offer(entry(2)));
    assert!(!q.offer(entry(2)), "duplicate while held");
    assert_eq!(q.pop_ready().unwrap().seq, Seq(2));
    assert_eq!(q.pop_ready().unwrap().seq, Seq(3));
    assert!(!q.offer(entry(1)), "duplicate after delivery");
    assert_eq!(q.missing(), None);
}

/// Of two copies of one number, the one of the higher term replaces the other; an equal
/// or lower term is a duplicate or a stale copy. Nothing is shown before `ready` says so.
#[test]
fn holdback_keeps_the_copy_of_the_highest_term_and_waits_for_commit() {
    let in_term = |seq, term, text: &str| ChatEntry {
        term,
        text: text.into(),
        ..entry(seq)
    };
    let mut q = HoldBackQueue::new(Seq(1));
    assert!(q.offer(in_term(1, 2, "old")));
    assert!(!q.offer(in_term(1, 2, "same term")), "one copy per term");
    assert!(
        !q.offer(in_term(1, 1, "older")),
        "a lower term never replaces"
    );
    assert!(q.offer(in_term(1, 3, "new")), "a higher term replaces");
    assert_eq!(q.get(Seq(1)).map(|e| e.text.as_str()), Some("new"));
    assert!(
        q.pop_if(|e| e.term == 2).is_none(),
        "not committed in term 3 yet"
    );
    assert_eq!(q.next(), Seq(1));
    assert_eq!(
        q.pop_if(|e| e.term == 3).map(|e| e.text),
        Some("new".into())
    );
    assert!(q.pop_if(|_| true).is_none(), "nothing held at 2");
    assert!(!q.offer(in_term(1, 9, "late")), "shown already");
}

/// The hold-back queue's index of configuration entries always names exactly the held
/// entries that change the configuration, whatever copies replace each other, are shown
/// or skipped.
#[test]
fn holdback_index_of_configuration_entries_matches_what_is_held() {
    use crate::wire::ConfigChange;
    use proptest::prelude::*;
    #[derive(Debug, Clone)]
    enum Op {
        Offer { seq: u64, term: u64, config: bool },
        Pop,
        Skip(u64),
    }
    let op = prop_oneof![
        (1u64..40, 0u64..4, any::<bool>()).prop_map(|(seq, term, config)| Op::Offer {
            seq,
            term,
            config
        }),
        Just(Op::Pop),
        (1u64..40).prop_map(Op::Skip),
    ];
    proptest!(|(ops in proptest::collection::vec(op, 1..120), from in 1u64..40)| {
        let mut q = HoldBackQueue::new(Seq(1));
        for op in ops {
            match op {
                Op::Offer { seq, term, config } => {
                    let e = if config {
                        ChatEntry::config(Seq(seq), ConfigChange::Add(format!("u{seq}")), Seq(0))
                    } else {
                        entry(seq)
                    };
                    q.offer(ChatEntry { term, ..e });
                }
                Op::Pop => {
                    q.pop_ready();
                }
                Op::Skip(to) => q.skip_to(Seq(to)),
            }
            let scanned: Vec<Seq> = q
                .held_from(Seq(from))
                .filter(|e| e.config_change().is_some())
                .map(|e| e.seq)
                .collect();
            let indexed: Vec<Seq> = q.held_configs_from(Seq(from)).map(|e| e.seq).collect();
            prop_assert_eq!(scanned, indexed);
            let all = q.held_from(Seq(0)).filter(|e| e.config_change().is_some()).count();
            prop_assert_eq!(q.config_index_len(), all);
        }
    });
}

/// The hold-back queue answers as a plain map of number to entry would, over random
/// offers (in and out of order, of several terms, some too far ahead), deliveries and
/// skips: what is held, the first gap, the highest number, what is delivered and in what
/// order.
#[test]
fn holdback_answers_as_a_map_of_its_entries_would() {
    use proptest::prelude::*;
    #[derive(Debug, Clone)]
    enum Op {
        Offer { ahead: u64, term: u64 },
        Pop,
        Skip(u64),
    }
    let op = prop_oneof![
        4 => (0u64..30, 0u64..3).prop_map(|(ahead, term)| Op::Offer { ahead, term }),
        1 => (0u64..2).prop_map(|k| Op::Offer { ahead: MAX_HOLDBACK as u64 - 1 + k, term: 0 }),
        3 => Just(Op::Pop),
        1 => (0u64..20).prop_map(Op::Skip),
    ];
    proptest!(|(ops in proptest::collection::vec(op, 1..150), start in 1u64..5)| {
        let mut q = HoldBackQueue::new(Seq(start));
        let mut next = start;
        let mut model: BTreeMap<u64, u64> = BTreeMap::new(); // seq -> term
        for op in ops {
            match op {
                Op::Offer { ahead, term } => {
                    let seq = next + ahead;
                    let fits = ahead < MAX_HOLDBACK as u64;
                    let takes = fits && model.get(&seq).is_none_or(|&t| t < term);
                    prop_assert_eq!(q.offer(ChatEntry { term, ..entry(seq) }), takes);
                    if takes {
                        model.insert(seq, term);
                    }
                }
                Op::Pop => {
                    let want = model.remove(&next);
                    let got = q.pop_ready().map(|e| (e.seq.0, e.term));
                    prop_assert_eq!(got, want.map(|t| (next, t)));
                    if want.is_some() {
                        next += 1;
                    }
                }
                Op::Skip(by) => {
                    let to = next + by;
                    q.skip_to(Seq(to));
                    model = model.split_off(&to);
                    next = to;
                }
            }
            prop_assert_eq!(q.next(), Seq(next));
            let held: Vec<(u64, u64)> = q.held_from(Seq(0)).map(|e| (e.seq.0, e.term)).collect();
            let want: Vec<(u64, u64)> = model.iter().map(|(&s, &t)| (s, t)).collect();
            prop_assert_eq!(held, want);
            let high = model.keys().next_back().copied().unwrap_or(next - 1);
            prop_assert_eq!(q.high(), Seq(high));
            let gap = model
                .keys()
                .next()
                .filter(|&&first| first > next)
                .map(|&first| (Seq(next), Seq(first - 1)));
            prop_assert_eq!(q.missing(), gap);
            for probe in [next.saturating_sub(1), next, next + 3, next + 29] {
                prop_assert_eq!(q.get(Seq(probe)).map(|e| e.term), model.get(&probe).copied());
                let from: Vec<u64> = q.held_from(Seq(probe)).map(|e| e.seq.0).collect();
                let want: Vec<u64> = model.range(probe..).map(|(&s, _)| s).collect();
                prop_assert_eq!(from, want);
            }
        }
    });
}

#[test]
fn history_is_bounded_and_ranges_by_seq() {
    let mut h = History::new(3);
    for i in 1..=5 {
        h.push(entry(i));
    }
    assert_eq!(h.len(), 3);
    let r: Vec<u64> = h.range(Seq(2), Seq(4)).map(|e| e.seq.0).collect();
    assert_eq!(r, vec![3, 4]);
}

#[test]
fn outbox_tracks_committed_below() {
    let mut o = Outbox::default();
    let a = o.push(submit(0, 0));
    let b = o.push(submit(0, 0));
    assert_eq!((a.origin_seq, b.origin_seq), (OriginSeq(1), OriginSeq(2)));
    assert_eq!(a.committed_below, OriginSeq(1), "a itself is not committed");
    assert_eq!(b.committed_below, OriginSeq(1));
    o.confirm(OriginSeq(1));
    assert_eq!(o.committed_below(), OriginSeq(2));
    assert_eq!(o.unconfirmed()[0].committed_below, OriginSeq(2));
    o.confirm(OriginSeq(2));
    assert_eq!(o.committed_below(), OriginSeq(3));
}

/// A history remembers what it showed beyond what it keeps, and tells what was shown in
/// this log from what was shown in a numbering it left (forgotten from there on): only
/// the former is committed here, so only it may be told to its origin as settled.
#[test]
fn history_tells_what_was_shown_in_this_log() {
    let mut h = History::new(3);
    for i in 1..=6 {
        h.push(entry(i));
    }
    let (origin, seq_of) = (entry(1).origin, |i: u64| entry(i).origin_seq);
    assert!(
        h.find_submission(origin, seq_of(1)).is_none(),
        "no longer kept"
    );
    assert!(h.in_log(origin, seq_of(1)), "but shown in this log");
    h.forget_from(Seq(6));
    assert!(
        h.contains_submission(origin, seq_of(6)),
        "shown, so not shown again"
    );
    assert!(!h.in_log(origin, seq_of(6)), "but not in this log");
    assert!(h.in_log(origin, seq_of(5)), "what is kept still is");
    h.push(entry(7));
    assert!(h.in_log(origin, seq_of(7)));
}
