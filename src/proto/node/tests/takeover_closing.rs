//! A take-over whose answers close a run before the new leader's history (see
//! `Node::closing_copies_before`): a closing stretch of several copies, proven back from
//! its seal whatever order they come in, and a run closed before what was asked while a
//! later run of the same origin is sealed in the answer.

use super::takeover_answers::recovery_timer;
use super::takeover_gaps::{bob_joined_at_taking_over, reply};
use super::*;
use crate::proto::node::room::COMMITTED_TERM;

/// `runs` of `origin`, chained one after the other from the start of its chain, each
/// sealed on its last message; every copy with its full link (as held and answered).
fn chained_runs(origin: NodeId, runs: &[Vec<ChatEntry>]) -> Vec<ChatEntry> {
    let mut link = crate::proto::seal::chain_start(origin);
    let mut out = Vec::new();
    for run in runs {
        let last = run.len() - 1;
        for (k, e) in run.iter().enumerate() {
            let mut e = e.clone();
            let value = crate::proto::seal::chain(&link, &e.written(origin));
            e.proof = Provenance {
                link: Some(link),
                seal: (k == last)
                    .then(|| crate::proto::seal::seal_run(&identity(origin.0 as u8), &value)),
            };
            link = value;
            out.push(e);
        }
    }
    out
}

/// Carol (a follower) showed `shown` (committed, in order of number) and holds `held`
/// (proposals of term 0); what she answers a request from `from`: her sync entries.
fn carols_answer(
    t0: Instant,
    shown: &[ChatEntry],
    held: &[ChatEntry],
    from: u64,
) -> Vec<ChatEntry> {
    let (mut c, _) = follower_with(t0, Vec::new());
    for e in shown {
        let mut e = e.clone();
        e.term = COMMITTED_TERM;
        assert!(c.hold(e));
    }
    c.deliver_committed(t0);
    assert_eq!(c.room.next(), Seq(shown.len() as u64 + 1), "shown at carol");
    for e in held {
        let mut e = e.clone();
        e.term = 0;
        assert!(c.hold(e));
    }
    let ask = Message::SyncRequest {
        epoch: super::terms::epoch(0, LEADER),
        from: Seq(from),
    };
    c.handle_datagram(t0, addr(1), &data(LEADER, 3, ask));
    drain(&mut c)
        .messages_to(addr(1))
        .into_iter()
        .filter_map(|m| match m {
            Message::SyncEntry(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Bob, joined at `at`, takes over with carol's answer `sent` (her next `next`, high
/// `high`), alice gone; up to three recovery timers. What bob holds at `seq`.
fn bob_takes_over_with(
    t0: Instant,
    at: u64,
    sent: Vec<ChatEntry>,
    next: u64,
    high: u64,
    seq: u64,
) -> Option<(bool, String)> {
    let mut n = bob_joined_at_taking_over(t0, at, Vec::new());
    n.survivor_gone(t0, LEADER);
    let count = sent.len() as u32;
    for (id, e) in (2..).zip(sent) {
        n.handle_datagram(t0, addr(3), &data(CAROL, id, Message::SyncEntry(e)));
    }
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 2 + u64::from(count), reply(next, high, count)),
    );
    drain(&mut n);
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut t = t0;
    for _ in 0..3 {
        if !n.room.is_recovering() {
            break;
        }
        t += step;
        recovery_timer(&mut n, t);
    }
    n.room
        .held_at(Seq(seq))
        .map(|e| (e.is_filler(), e.text.clone()))
}

/// Alice's run of three (submissions 1, 2, 3, sealed on 3): submission 1 filled at its
/// first number by a leader that lacked it, submissions 2 and 3 shown at #1 and #2
/// (before bob joined), submission 1 resubmitted and sequenced again at #3 (see
/// `links.rs`). Alice (leader and origin) committed #3 with carol's ack and showed it,
/// then died. Bob joined at #3. Carol, asked from #3, sends what `closing_copies_before`
/// makes of her history: #1 (submission 2, no seal) and #2 (submission 3, sealed),
/// then #3. `vouch_sealed_before` vouches only for the sealed #2; #1 is below bob's
/// delivery point and is never staged nor vouched, so nothing proves #3 (its successor,
/// submission 2, is not vouched): bob gives it up on his timer and fills #3, which
/// alice and carol showed as `m3`.
#[test]
fn a_closing_run_longer_than_its_seal_before_the_new_leaders_history_is_not_filled() {
    let t0 = base_time();
    let run = chained_runs(
        LEADER,
        &[vec![
            entry(3, LEADER, "alice", 1),
            entry(1, LEADER, "alice", 2),
            entry(2, LEADER, "alice", 3),
        ]],
    );
    let sent = carols_answer(t0, &run[1..3], &run[0..1], 3);
    let seqs: Vec<(u64, bool)> = sent
        .iter()
        .map(|e| (e.seq.0, e.proof.seal.is_some()))
        .collect();
    assert_eq!(
        seqs,
        vec![(1, false), (2, true), (3, false)],
        "carol's answer"
    );
    assert_eq!(
        bob_takes_over_with(t0, 3, sent, 3, 3, 3),
        Some((false, "m3".to_string())),
        "#3, committed by alice with carol's ack and shown by alice, is held by bob as it is \
         (its run closes two numbers before bob's history)"
    );
}

/// Alice's run of two (submissions 1 and 2, sealed on 2): submission 2 shown at #2
/// (before bob joined at #3), submission 1 sequenced again at #3; then alice's next run,
/// submission 3 alone (sealed), at #4. Alice committed #3..#4 with carol's ack and
/// showed them, then died. Carol's answer from #3 carries #3 and #4 only:
/// `closing_copies_before` drops alice because the answer holds a seal of hers after
/// submission 1 (#4's), though that seal closes another run and proves nothing of #3
/// without submission 2 (at #2, before what bob asked for). Bob cannot prove #3, gives
/// it up and fills it.
#[test]
fn a_run_closed_before_the_new_leaders_history_is_not_filled_when_a_later_run_is_sealed() {
    let t0 = base_time();
    let chain = chained_runs(
        LEADER,
        &[
            vec![entry(3, LEADER, "alice", 1), entry(2, LEADER, "alice", 2)],
            vec![entry(4, LEADER, "alice", 3)],
        ],
    );
    let one = entry(1, CAROL, "carol", 1);
    let sent = carols_answer(
        t0,
        &[one, chain[1].clone()],
        &[chain[0].clone(), chain[2].clone()],
        3,
    );
    // Carol sends her copy of #2 first: #4's seal closes another run, not #3's.
    assert_eq!(
        bob_takes_over_with(t0, 3, sent, 3, 4, 3),
        Some((false, "m3".to_string())),
        "#3, committed by alice with carol's ack and shown by alice, is held by bob as it is \
         (its run closed at #2, before bob's history; alice's next run sealed at #4)"
    );
}
