//! A take-over whose survivors hold more than one answer carries (`SYNC_BATCH`, 512
//! room messages; see `room/answers.rs`): a cut answer is asked for the rest, counts
//! only once that is here in full, and never lets the new leader fill or skip a number
//! it holds.

use super::takeover::{answer_to_bob, bob_taking_over};
use super::takeover_answers::{carols, recovery_timer};
use super::*;
use crate::proto::node::room::COMMITTED_TERM;

/// Carol's answer from `from`: her copies of alice's #`from`..=#700 (term 0, not known
/// committed), cut at `SYNC_BATCH` as a member cuts it, then her reply naming #700 as
/// the highest she holds; ids from `id` on, the copy of #`lost` never arriving (0: none
/// lost). Returns the next id.
fn carol_answers(n: &mut Node, at: Instant, from: u64, mut id: u64, lost: u64) -> u64 {
    let upto = 700.min(from + 511);
    for s in from..=upto {
        if s != lost {
            n.handle_datagram(at, addr(3), &data(CAROL, id, carols(s)));
        }
        id += 1;
    }
    let reply = answer_to_bob(700, (upto + 1 - from) as u32);
    n.handle_datagram(at, addr(3), &data(CAROL, id, reply));
    id + 1
}

/// Runs bob's take-over from `out` (what he sent last) to its end: every sync request
/// to carol is answered at once by `answer(n, at, from, asked so far)`, and otherwise
/// the recovery timer fires. Returns where carol was asked from, and the events.
fn take_over_answered_by_carol(
    n: &mut Node,
    t0: Instant,
    out: Out,
    mut answer: impl FnMut(&mut Node, Instant, u64, &[u64]),
) -> (Vec<u64>, Vec<Event>) {
    let mut asked_from = Vec::new();
    let events = take_over_served_by_carol(n, t0, out, |n, at, msgs| {
        let asked = msgs.iter().find_map(|m| match m {
            Message::SyncRequest { from, .. } => Some(from.0),
            _ => None,
        });
        let Some(from) = asked else {
            return false;
        };
        answer(n, at, from, &asked_from);
        asked_from.push(from);
        true
    });
    (asked_from, events)
}

/// Runs bob's take-over from `out` to its end: what he sent carol goes to
/// `serve(n, at, messages)`, which says whether she answered; when she did not, the
/// recovery timer fires. Returns the events.
fn take_over_served_by_carol(
    n: &mut Node,
    t0: Instant,
    mut out: Out,
    mut serve: impl FnMut(&mut Node, Instant, &[&Message]) -> bool,
) -> Vec<Event> {
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    let mut events = Vec::new();
    while n.room.is_recovering() {
        events.append(&mut out.events);
        out = if serve(n, at, &out.messages_to(addr(3))) {
            drain(n)
        } else {
            at += step;
            assert!(
                at - t0 < Duration::from_secs(120),
                "the take-over never ends"
            );
            recovery_timer(n, at)
        };
    }
    events.append(&mut out.events);
    events
}

/// Bob takes over with carol's answers (#1..#700 held, each answer cut at
/// `SYNC_BATCH`), the first rest she sends losing #`lost` (0: nothing) for good. Checks
/// that bob ends holding carol's copy of every number (none filled, none missing), and
/// returns where carol was asked from.
fn bob_takes_over_carols_700(lost: u64) -> Vec<u64> {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let mut id = carol_answers(&mut n, t0, 1, 2, 0);
    let out = drain(&mut n);
    let (asked_from, _) = take_over_answered_by_carol(&mut n, t0, out, |n, at, from, asked| {
        let first_rest = from > 1 && asked.iter().all(|a| *a == 1);
        id = carol_answers(n, at, from, id, if first_rest { lost } else { 0 });
    });
    let filled: Vec<u64> = (1..=700)
        .filter(|s| {
            n.room
                .held_at(Seq(*s))
                .is_none_or(|e| e.is_filler() || e.text != format!("m{s}"))
        })
        .collect();
    assert!(
        filled.is_empty(),
        "{} filled or missing, from #{:?}",
        filled.len(),
        filled.first()
    );
    asked_from
}

/// Carol holds #1..#700 of alice's term 0, none known committed: alice may have
/// committed and shown all of them with carol's acks, then died. One answer carries at
/// most `SYNC_BATCH` (512) of them. Bob must not fill #513..#700 (committed numbers
/// given a second entry): he asks carol for the rest and proposes her copies of all 700.
#[test]
fn an_answer_cut_at_its_batch_is_asked_for_the_rest() {
    let asked_from = bob_takes_over_carols_700(0);
    assert_eq!(
        asked_from,
        [513],
        "asked for the rest once, from past her cut"
    );
}

/// Carol's rest (#513..#700) loses #600 for good: her answer is asked for again, from
/// #513, and only that answer, all here, counts. Before, the number of the last message
/// that came from her counted as what she sent; asked again from #1, her full answer
/// then looked complete, and #600 was filled (a review's case).
#[test]
fn a_rest_lost_in_part_is_asked_for_again() {
    let asked_from = bob_takes_over_carols_700(600);
    assert_eq!(
        asked_from,
        [513, 513],
        "asked again from where the rest began"
    );
}

/// Carol's full answer (#1..#512 of #700) is all here; she is asked for the rest and
/// goes before it comes. Her answer no longer counts (what lies past the cut may be a
/// committed entry she alone of those who answered holds), so bob, alone, fills nothing
/// and asks nobody gone; once she is back she is asked again. (A review found a form of
/// this code that kept a cut answer counted when its member went, and asked the gone
/// member for the rest, waiting on it for good.)
#[test]
fn a_cut_answer_of_a_member_gone_does_not_count() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    carol_answers(&mut n, t0, 1, 2, 0);
    drain(&mut n);
    let says =
        |presence, lamport| super::joins::member_says((CAROL, "carol", 3), presence, lamport);
    n.handle_datagram(t0, addr(3), &says(Presence::Offline, 1000));
    drain(&mut n);
    assert!(!n.members().is_online(CAROL));
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    while at - t0 < Duration::from_secs(20) && n.room.is_recovering() {
        at += step;
        let out = recovery_timer(&mut n, at);
        assert!(
            !out.messages_to(addr(3))
                .iter()
                .any(|m| matches!(m, Message::SyncRequest { .. })),
            "the gone carol is not asked"
        );
    }
    assert!(
        (1..=700).all(|s| n.room.held_at(Seq(s)).is_none_or(|e| !e.is_filler())),
        "nothing filled without a majority"
    );
    n.handle_datagram(at, addr(3), &says(Presence::Online, 1001));
    let out = drain(&mut n);
    let asked_back = out
        .messages_to(addr(3))
        .iter()
        .any(|m| matches!(m, Message::SyncRequest { .. }));
    assert!(
        asked_back || !n.room.is_recovering(),
        "carol back is asked again"
    );
}

/// Bob holds nothing of alice's burst but her notice that #1 to #700 are committed;
/// carol holds all 700 (term 0) and showed none. Nobody can send them as shown, so a
/// fetch brings nothing; but carol's answer holds them, past its cut at `SYNC_BATCH` too.
/// Bob asks for the rest, shows all 700 as committed (alice's term, within her notice)
/// and tells nobody they are lost. Before, he fetched #513..#700 from carol, who never
/// showed them, and skipped them as "no longer kept by anyone" (`sim_failover` burst seed
/// 2522).
#[test]
fn numbers_known_committed_come_from_the_rest_of_a_cut_answer() {
    let t0 = base_time();
    let (mut n, _) = super::joins::follower_with(t0, Vec::new());
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, commit(700)));
    drain(&mut n);
    super::takeover::bob_wins_round_1(&mut n, t0);
    let mut id = carol_answers(&mut n, t0, 1, 2, 0);
    let out = drain(&mut n);
    let (_, events) = take_over_answered_by_carol(&mut n, t0, out, |n, at, from, _| {
        id = carol_answers(n, at, from, id, 0);
    });
    let skipped: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Notice(t) if t.contains("no longer kept")))
        .collect();
    assert!(skipped.is_empty(), "nothing skipped: {skipped:?}");
    assert_eq!(n.room.next(), Seq(701), "all 700 shown");
}

/// Carol showed #1..#600 and holds #601..#768 of alice's term 0. Alice's #513..#768 are
/// one run, sealed once, on #768: what carol showed of it she cannot prove to anyone
/// from her shown history alone, so a fetch answer of hers leaves bob's copies waiting
/// for a proof that never comes. Her sync answers carry shown and held copies as one
/// stream, ending with a message that closes its run: bob asks her for the rest from
/// past her first answer's cut (#513), not from past what she showed (#601), shows
/// #1..#600 and proposes her #601..#768 again, skipping nothing. Before, he fetched
/// #513..#600 in vain and skipped them as "no longer kept by anyone" while carol had
/// shown them (`sim_failover` burst seed 1463).
#[test]
fn shown_numbers_a_fetch_cannot_prove_come_from_the_rest() {
    const SHOWN: u64 = 600;
    const HELD: u64 = 768;
    let run = sealed_run(LEADER, (513..=HELD).map(|s| entry(s, LEADER, "alice", s)));
    let copy = |s: u64| {
        let e = if s <= 512 {
            entry(s, LEADER, "alice", s)
        } else {
            run[(s - 513) as usize].clone()
        };
        let term = if s <= SHOWN { COMMITTED_TERM } else { 0 };
        ChatEntry { term, ..e }
    };
    let mut id = 2;
    let mut send = |n: &mut Node, at: Instant, msg: Message| {
        n.handle_datagram(at, addr(3), &data(CAROL, id, msg));
        id += 1;
    };
    let reply = |sent: u64| Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(SHOWN + 1),
        high: Seq(HELD),
        sent: sent as u32,
        votes: Vec::new(),
    };
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    for s in 1..=512 {
        send(&mut n, t0, Message::SyncEntry(copy(s)));
    }
    send(&mut n, t0, reply(512));
    let out = drain(&mut n);
    let mut rests = Vec::new();
    let events = take_over_served_by_carol(&mut n, t0, out, |n, at, msgs| {
        let mut answered = false;
        for m in msgs {
            match m {
                // As a member answers: 512 at most, then on to the end of a run.
                Message::SyncRequest { from, .. } => {
                    let upto = if from.0 <= 512 { 512 } else { HELD };
                    for s in from.0..=upto {
                        send(n, at, Message::SyncEntry(copy(s)));
                    }
                    send(n, at, reply(upto + 1 - from.0));
                    rests.push(from.0);
                    answered = true;
                }
                // From her shown history only: nothing closes the run in it.
                Message::Fetch { from, to } => {
                    for s in from.0..=to.0.min(SHOWN) {
                        send(n, at, Message::Sequenced(copy(s)));
                    }
                    answered = true;
                }
                _ => {}
            }
        }
        answered
    });
    let skipped: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Notice(t) if t.contains("no longer kept")))
        .collect();
    assert!(skipped.is_empty(), "nothing skipped: {skipped:?}");
    assert!(
        rests.first().is_some_and(|from| *from <= 513),
        "carol asked for the rest from her cut: {rests:?}"
    );
    let shown: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Room { entry, .. } if entry.text == format!("m{}", entry.seq) => {
                Some(entry.seq.0)
            }
            _ => None,
        })
        .collect();
    let unshown: Vec<u64> = (1..=SHOWN).filter(|s| !shown.contains(s)).collect();
    assert!(
        unshown.is_empty(),
        "all carol showed is shown: {unshown:?} not"
    );
    let lost: Vec<u64> = (SHOWN + 1..=HELD)
        .filter(|s| {
            n.room
                .held_at(Seq(*s))
                .is_none_or(|e| e.text != format!("m{s}"))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "carol's held copies proposed again: {lost:?}"
    );
}

/// Carol's answer is cut and she is asked for the rest, but sends no reply (she had
/// declared bob gone and was electing, so she refused him): once her transport would
/// surely have given up, she is asked for the rest again, from where it begins. Before,
/// nothing asked her again, and the take-over waited for good (`sim_failover`
/// two-leaders seeds 723 and 2897: the room sequenced nothing for the rest of the run).
#[test]
fn a_rest_asked_for_and_never_answered_is_asked_for_again() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    carol_answers(&mut n, t0, 1, 2, 0);
    let asked = |out: &Out| carol_asked_from(out);
    assert_eq!(asked(&drain(&mut n)), [513], "asked for the rest");
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    let mut again = Vec::new();
    while again.is_empty() && at - t0 < Duration::from_secs(60) {
        at += step;
        again = asked(&recovery_timer(&mut n, at));
    }
    assert_eq!(
        again,
        [513],
        "asked again for the rest, from where it begins"
    );
    assert!(
        at - t0 >= Duration::from_secs(15),
        "not before her transport would have given up: {:?}",
        at - t0
    );
}

/// Where bob's sync requests to carol in `out` ask her from.
pub(super) fn carol_asked_from(out: &Out) -> Vec<u64> {
    out.messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::SyncRequest { from, .. } => Some(from.0),
            _ => None,
        })
        .collect()
}
