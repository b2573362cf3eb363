//! A new leader behind what members showed fetches it before it numbers anything (see
//! `room/recovery.rs`): from whichever answer showed the most, never filling a number a
//! member holds, and within bounds when a member's answer claims too much. A number it
//! knows committed from a leader's notice is fetched or skipped the same way, never filled.

use super::takeover::{bob_taking_over, bob_wins_round_1};
use super::takeover_batches::carol_asked_from;
use super::terms::epoch;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;

/// A committed copy of room message `seq` (alice's, sealed), as a member's shown history
/// or a fetch answer sends it.
fn shown(seq: u64) -> ChatEntry {
    ChatEntry {
        term: COMMITTED_TERM,
        ..entry(seq, LEADER, "alice", seq)
    }
}

/// `member` (at port `port`) answers bob's sync request with its shown #1..=#`upto`, as
/// reliable messages numbered from 11; returns the last number used.
fn answer_shown(n: &mut Node, t0: Instant, member: NodeId, port: u16, upto: u64) -> u64 {
    let mut id = 10;
    for s in 1..=upto {
        id += 1;
        n.handle_datagram(
            t0,
            addr(port),
            &data(member, id, Message::SyncEntry(shown(s))),
        );
    }
    id
}

fn reply(next: u64, sent: u32) -> Message {
    Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(next),
        high: Seq(next - 1),
        sent,
        votes: Vec::new(),
    }
}

fn fetches_to(out: &Out, to: SocketAddr) -> Vec<(Seq, Seq)> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Fetch { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// Carol showed up to #599, alice up to #1000; each answers with the first 512 numbers
/// (`SYNC_BATCH`). Carol answers first, so bob fetches from her; alice's later answer
/// (more shown) moves the fetch to alice, who sends the rest: bob gets all of it, and
/// skips nothing. Before, the fetch stayed with carol, and bob skipped #600..#1000 as
/// "kept by nobody" although alice had answered and kept them.
#[test]
fn a_later_answer_showing_more_is_fetched_too() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let mut id = answer_shown(&mut n, t0, CAROL, 3, 512);
    id += 1;
    n.handle_datagram(t0, addr(3), &data(CAROL, id, reply(600, 512)));
    let out = drain(&mut n);
    assert_eq!(n.room.next(), Seq(513));
    assert!(
        !fetches_to(&out, addr(3)).is_empty(),
        "bob fetches from carol"
    );
    let mut aid = answer_shown(&mut n, t0, LEADER, 1, 512);
    aid += 1;
    n.handle_datagram(t0, addr(1), &data(LEADER, aid, reply(1001, 512)));
    let mut out = drain(&mut n);
    let fetched = fetches_to(&out, addr(1));
    assert!(
        fetched
            .iter()
            .any(|(from, to)| *from <= Seq(600) && *to >= Seq(1000)),
        "bob asks alice, who showed the most: {fetched:?}"
    );
    // Alice's answer to the fetch.
    for s in 513..=1000 {
        aid += 1;
        n.handle_datagram(
            t0,
            addr(1),
            &data(LEADER, aid, Message::Sequenced(shown(s))),
        );
    }
    out.events.extend(drain(&mut n).events);
    assert_eq!(n.room.next(), Seq(1001), "everything alice showed is here");
    let skipped: Vec<&Event> = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Notice(t) if t.contains("no longer kept")))
        .collect();
    assert!(skipped.is_empty(), "nothing skipped: {skipped:?}");
}

/// Carol showed up to #599 and holds #600..#700 of alice's term 0 uncommitted (alice
/// committed them with carol's acks and showed them, then died). Carol answers the first
/// 512 numbers (`SYNC_BATCH`) and `high` #700, then pauses. Bob fetches #513..#599 from
/// her; nothing comes. Bob skips #513..#599 (told), asks the survivors again from #600,
/// and waits for a majority's answer: it never proposes fillers over #600..#700. Before,
/// it ended recovery at the second timeout and filled them: once carol was back she acked
/// the term-1 fillers over her term-0 copies, committed numbers given two entries.
#[test]
fn a_stalled_fetch_does_not_fill_what_a_member_holds_beyond_its_shown_point() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let mut id = answer_shown(&mut n, t0, CAROL, 3, 512);
    id += 1;
    let reply = Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(600),
        high: Seq(700),
        sent: 512,
        votes: Vec::new(),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, id, reply));
    let mut sent = drain(&mut n).sent;
    assert_eq!(n.room.next(), Seq(513));
    // Carol is alive: she heartbeats and acks what bob sends her (her answers to the fetch
    // are what is lost).
    let bobs = Epoch {
        term: 1,
        leader: BOB,
    };
    for k in 1..=40 {
        let at = t0 + Duration::from_millis(100 * k);
        n.handle_datagram(at, addr(3), &super::terms::beat_naming(CAROL, bobs, false));
        n.handle_timeout(at);
        sent.extend(drain(&mut n).sent);
        let ids: Vec<MsgId> = sent
            .iter()
            .filter_map(|(to, p)| match p {
                Packet::Data { id, .. } if *to == addr(3) => Some(*id),
                _ => None,
            })
            .collect();
        if !ids.is_empty() {
            n.handle_datagram(at, addr(3), &ack_of(BOB, CAROL, &ids));
        }
    }
    let out = Out {
        sent,
        datagrams: Vec::new(),
        events: Vec::new(),
    };
    let filled: Vec<u64> = out
        .messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) if e.is_filler() && e.seq >= Seq(600) => Some(e.seq.0),
            _ => None,
        })
        .collect();
    let asked_again = out
        .messages_to(addr(3))
        .into_iter()
        .any(|m| matches!(m, Message::SyncRequest { from, .. } if *from > Seq(1)));
    assert!(
        asked_again && n.room.is_recovering(),
        "bob asks carol again from where it is, and waits for her answer"
    );
    assert!(
        filled.is_empty(),
        "bob proposed fillers at {}..={} (of {} numbers) that carol said she holds \
         (high #700); asked carol again from further on: {asked_again}",
        filled.first().unwrap_or(&0),
        filled.last().unwrap_or(&0),
        filled.len()
    );
}

/// One sync reply naming a delivery point far ahead (a confused or lying member), whose
/// sender then sends nothing it claims: the claim is capped at a hold-back queue's worth
/// past what was asked, so the new leader skips (telling its user) at most that many
/// numbers, once, and numbers on from there; before, it jumped to the claimed point.
#[test]
fn a_sync_reply_naming_a_far_delivery_point_is_bounded() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    let far = 1u64 << 40;
    let reply = Message::SyncReply {
        epoch: Epoch {
            term: 1,
            leader: BOB,
        },
        next: Seq(far),
        high: Seq(far - 1),
        sent: 0,
        votes: Vec::new(),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 11, reply));
    let mut events = drain(&mut n).events;
    for k in 1..=40 {
        n.handle_timeout(t0 + Duration::from_millis(100 * k));
        events.extend(drain(&mut n).events);
    }
    let bound = Seq(2 + MAX_HOLDBACK as u64);
    assert!(
        n.room.next() <= bound,
        "bob is at #{} (recovering {}): {events:?}",
        n.room.next(),
        n.room.is_recovering()
    );
    let told: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Notice(t) if t.contains("no longer kept")))
        .collect();
    assert!(told.len() <= 1, "skipped once at most: {told:?}");
}

/// Bob holds #1 and #3 of alice's term 0, and her notice that #1 to #3 are committed;
/// #2 never reached him. He wins round 1 and nobody answering holds anything: #2 is
/// committed (alice said so), so he neither fills it nor proposes anything there. A
/// recovery timeout on he skips it, telling his user, shows #3, and takes over at #4.
/// (Before, he proposed a filler at #2: the committed #2 others showed and his filler
/// were two entries of one number, `sim_chaos` seed 88.)
#[test]
fn a_take_over_never_fills_a_number_it_knows_committed() {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, Vec::new());
    for (id, seq) in [(5, 1), (6, 3)] {
        let e = entry(seq, LEADER, "alice", seq);
        n.handle_datagram(t0, addr(1), &data(LEADER, id, Message::Sequenced(e)));
    }
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, commit(3)));
    drain(&mut n);
    assert_eq!(n.room.next(), Seq(2), "#1 shown, #2 missing");
    let sent = bob_wins_round_1(&mut n, t0);
    // Alice and carol showed #1 as bob did, and hold nothing beyond: each answers every
    // request so.
    let shown_one = Message::SyncReply {
        epoch: epoch(1, BOB),
        next: Seq(2),
        high: Seq(1),
        sent: 0,
        votes: Vec::new(),
    };
    let mut ids = 10..;
    let mut proposed = Vec::new();
    let mut brought = Vec::new();
    let mut told = Vec::new();
    let mut shown = Vec::new();
    let mut asked = out_requests(&sent);
    for k in 0..=100u64 {
        let at = t0 + Duration::from_millis(100 * k);
        for (to, from) in std::mem::take(&mut asked) {
            let id = ids.next().expect("ids");
            n.handle_datagram(at, to, &data(from, id, shown_one.clone()));
        }
        // Both beat on: they live.
        for (port, from) in [(1, LEADER), (3, CAROL)] {
            let beat = Packet::Heartbeat(crate::wire::Heartbeat {
                epoch: Some(epoch(1, BOB)),
                delivered: Seq(1),
                digest: 0,
                probe: false,
                unknown: false,
            });
            n.handle_datagram(at, addr(port), &datagram(from, vec![beat]));
        }
        n.handle_timeout(at);
        let out = drain(&mut n);
        asked = out_requests(&out);
        for (to, from) in [(addr(1), LEADER), (addr(3), CAROL)] {
            let ids = out.ids_to(to, |_| true);
            if !ids.is_empty() {
                n.handle_datagram(at, to, &ack_of(BOB, from, &ids));
            }
        }
        for m in out.messages_to(addr(3)) {
            // Committed copies bring carol up to bob's shown point; the rest are his
            // proposals of term 1.
            match m {
                Message::Sequenced(e) if e.term != COMMITTED_TERM => proposed.push(e.seq),
                Message::Sequenced(e) => brought.push(e.seq),
                _ => {}
            }
        }
        told.extend(notices(&out));
        shown.extend(room_seqs(&out));
    }
    assert_eq!(
        proposed.first(),
        Some(&Seq(4)),
        "term 1 begins at #4: {proposed:?}"
    );
    assert!(
        proposed.iter().all(|s| *s >= Seq(4)) && !brought.contains(&Seq(2)),
        "nothing at #2, nor a new #3: proposed {proposed:?}, brought {brought:?}"
    );
    assert!(!n.room.is_recovering(), "bob took over");
    assert_eq!(n.room.next(), Seq(5), "#4, his first of term 1, shown");
    assert_eq!(
        shown.first(),
        Some(&3),
        "#3 shown after the skip: {shown:?}"
    );
    assert!(
        told.contains(&"1 older messages are no longer kept by anyone".to_string()),
        "the skip is told: {told:?}"
    );
}

/// The sync requests in `out`: to whom (alice or carol), and that member's id.
fn out_requests(out: &Out) -> Vec<(SocketAddr, NodeId)> {
    [(addr(1), LEADER), (addr(3), CAROL)]
        .into_iter()
        .filter(|(to, _)| {
            out.messages_to(*to)
                .iter()
                .any(|m| matches!(m, Message::SyncRequest { .. }))
        })
        .collect()
}

/// Bob holds alice's notice that #1..#3 are committed, and #1 only. He wins round 1;
/// alice, who showed all three, is away (paused, cut off) and carol, online, showed #1
/// only: nobody online would send #2 and #3. Bob is up to `secs` seconds of recovery
/// timeouts on; returns whether he skipped them, and what he sent alice after she said
/// she is back (if `back`: he is then two recovery timeouts on, her answer still to
/// come).
fn bob_without_the_committer(secs: u64, back: bool) -> (bool, Vec<Message>) {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, Vec::new());
    let e = entry(1, LEADER, "alice", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 5, Message::Sequenced(e)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, commit(3)));
    drain(&mut n);
    bob_wins_round_1(&mut n, t0);
    let says =
        |presence, lamport| super::joins::member_says((LEADER, "alice", 1), presence, lamport);
    n.handle_datagram(t0, addr(1), &says(Presence::Offline, 1000));
    n.handle_datagram(t0, addr(3), &data(CAROL, 20, reply(2, 0)));
    let mut told = notices(&drain(&mut n));
    assert!(!n.members().is_online(LEADER), "alice is away");
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    while at + step < t0 + Duration::from_secs(secs) && n.room.is_recovering() {
        at += step;
        told.extend(notices(&super::takeover_answers::recovery_timer(
            &mut n, at,
        )));
    }
    let skipped = told.iter().any(|t| t.contains("no longer kept"));
    if !back {
        return (skipped, Vec::new());
    }
    n.handle_datagram(at, addr(1), &says(Presence::Online, 1001));
    let out = drain(&mut n);
    // Two recovery timeouts more, her answer still to come.
    for _ in 0..2 {
        at += step;
        told.extend(notices(&super::takeover_answers::recovery_timer(
            &mut n, at,
        )));
    }
    let skipped = told.iter().any(|t| t.contains("no longer kept"));
    (
        skipped,
        out.messages_to(addr(1)).into_iter().cloned().collect(),
    )
}

/// While alice, whose notice said #2 and #3 are committed, is away, bob does not skip
/// them (a recovery timeout is 2 s, and he waits `AWAIT_COMMITTER`, 20 s); once she is
/// back he asks her what she holds, and fetches them from what she showed. Before, he
/// skipped them after one recovery timeout, and nobody was ever shown them
/// (`sim_failover` two-leaders seeds 663, 1434, 1726: the second leader was cut off
/// just after it committed, on the first one's notice, numbers the others held only
/// as the first one's proposals).
#[test]
fn a_take_over_waits_for_the_leader_that_said_what_nobody_online_has_is_committed() {
    let (skipped, to_alice) = bob_without_the_committer(18, true);
    assert!(!skipped, "nothing skipped while alice is away");
    assert!(
        to_alice
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. })),
        "alice, back, is asked what she holds: {to_alice:?}"
    );
}

/// Alice never comes back: bob skips #2 and #3 once `AWAIT_COMMITTER` has passed, and
/// the room goes on.
#[test]
fn a_take_over_skips_what_nobody_has_once_the_committer_stays_away() {
    let (skipped, _) = bob_without_the_committer(40, false);
    assert!(skipped, "skipped once alice stayed away for long");
}

/// Alice, whose notice said #2 and #3 are committed, comes back and is asked what she
/// holds: bob still waits for her answer (within `AWAIT_COMMITTER`) at the next
/// recovery timeout. Before, he skipped them one timeout after asking her (a review's
/// case).
#[test]
fn the_committer_back_and_asked_is_waited_for_until_it_answers() {
    let (skipped, to_alice) = bob_without_the_committer(10, true);
    assert!(
        to_alice
            .iter()
            .any(|m| matches!(m, Message::SyncRequest { .. })),
        "alice is asked"
    );
    assert!(!skipped, "nothing skipped while alice's answer is to come");
}

/// Alice answers with nothing beyond bob; carol showed #1..#599, holds up to #700, and
/// her answer is cut at #512. Bob asks her for the rest and fetches from her beside it;
/// she stays online and silent (she refused him). Bob and alice are a majority of full
/// answers, so the take-over waits on the fetch, which the rest may still serve: carol
/// must be asked again. Before, nothing asked her again, for good (a review's case).
#[test]
fn a_silent_rest_is_asked_for_again_while_the_fetch_waits_on_it() {
    let t0 = base_time();
    let mut n = bob_taking_over(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, reply(1, 0)));
    let mut id = answer_shown(&mut n, t0, CAROL, 3, 512);
    id += 1;
    let cut = Message::SyncReply {
        epoch: epoch(1, BOB),
        next: Seq(600),
        high: Seq(700),
        sent: 512,
        votes: Vec::new(),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, id, cut));
    let out = drain(&mut n);
    let asked = |out: &Out| carol_asked_from(out);
    assert_eq!(asked(&out), [513], "asked for the rest");
    assert!(
        !fetches_to(&out, addr(3)).is_empty(),
        "and fetched from beside it"
    );
    let step = n.ctx.cfg.recovery_timeout + Duration::from_millis(1);
    let mut at = t0;
    let mut again = Vec::new();
    while again.is_empty() && at - t0 < Duration::from_secs(120) {
        at += step;
        again = asked(&super::takeover_answers::recovery_timer(&mut n, at));
    }
    assert_eq!(again, [513], "carol asked again for the rest");
}
