//! Catch-up: a member far behind asks for a window of chunks at once and for the next
//! chunk as soon as one is shown; a member asked answers from memory or, with a
//! database, from what its driver reads; the leader says what is kept nowhere.

use super::*;
use crate::proto::disk::ReadRange;
use crate::proto::node::room::{CATCH_UP_WINDOW, COMMITTED_TERM, FETCH_CHUNK, RUN_MAX};

/// The fetches in `out` to `to`, as `(from, to)`.
pub(super) fn fetches(out: &Out, to: SocketAddr) -> Vec<(u64, u64)> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Fetch { from, to } => Some((from.0, to.0)),
            _ => None,
        })
        .collect()
}

/// A committed copy of entry `seq`, as a member's fetch is answered.
pub(super) fn committed(seq: u64) -> ChatEntry {
    ChatEntry {
        term: COMMITTED_TERM,
        ..entry(seq, CAROL, "carol", seq)
    }
}

/// The leader acks everything `n` sent it in `out`.
pub(super) fn leader_acks(n: &mut Node, t: Instant, out: &Out) {
    let ids = out.ids_to(addr(1), |_| true);
    n.handle_datagram(t, addr(1), &ack_of(n.id(), LEADER, &ids));
}

/// A follower that learns the room is committed up to 100 000 and asks for what it
/// lacks: four chunks at once (the window), not one batch per round trip.
fn far_behind(t0: Instant) -> (Node, Out) {
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(100_000)));
    drain(&mut n);
    let t1 = t0 + Duration::from_millis(400);
    n.handle_timeout(t1);
    let out = drain(&mut n);
    (n, out)
}

#[test]
fn a_member_far_behind_asks_for_a_window_of_chunks_at_once() {
    let t0 = base_time();
    let (_, out) = far_behind(t0);
    let chunks = CATCH_UP_WINDOW / FETCH_CHUNK;
    let want: Vec<(u64, u64)> = (0..chunks)
        .map(|k| (1 + k * FETCH_CHUNK, (k + 1) * FETCH_CHUNK))
        .collect();
    assert_eq!(fetches(&out, addr(1)), want);
}

/// Each chunk shown opens the window for the next one at once: no timer, no round trip
/// wasted between batches.
#[test]
fn each_chunk_shown_asks_for_the_next_at_once() {
    let t0 = base_time();
    let (mut n, out) = far_behind(t0);
    let t1 = t0 + Duration::from_millis(401);
    leader_acks(&mut n, t1, &out);
    let packets: Vec<Packet> = (1..=FETCH_CHUNK)
        .map(|s| Packet::Data {
            id: MsgId(2 + s),
            msg: Message::Sequenced(committed(s)),
        })
        .collect();
    // Eight to a datagram: each carries its seal.
    for batch in packets.chunks(8) {
        n.handle_datagram(t1, addr(1), &datagram(LEADER, batch.to_vec()));
    }
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out).len() as u64, FETCH_CHUNK);
    let next = CATCH_UP_WINDOW + 1;
    assert_eq!(
        fetches(&out, addr(1)),
        vec![(next, next + FETCH_CHUNK - 1)],
        "the next chunk, asked for in the same turn"
    );
    // Nothing stalled: the repair that would ask everything again waits a full interval.
    leader_acks(&mut n, t1, &out);
    let again = t1 + Duration::from_millis(250);
    n.handle_timeout(again);
    let later = drain(&mut n);
    assert!(
        fetches(&later, addr(1)).is_empty(),
        "{:?}",
        fetches(&later, addr(1))
    );
}

/// Nothing shown for a repair interval: the member asks again from what it still lacks,
/// of the next member in turn (the leader asked first, then carol).
#[test]
fn a_stalled_catch_up_asks_again_of_another_member() {
    let t0 = base_time();
    let (mut n, out) = far_behind(t0);
    leader_acks(&mut n, t0 + Duration::from_millis(401), &out);
    let t1 = t0 + Duration::from_millis(1300);
    n.handle_timeout(t1);
    let out = drain(&mut n);
    assert!(fetches(&out, addr(1)).is_empty());
    assert_eq!(fetches(&out, addr(3))[0], (1, FETCH_CHUNK));
}

/// Asked of another member, a catch-up takes a later chunk that comes before an earlier
/// one: each entry within the window asked for, not only within the first gap.
#[test]
fn a_later_chunk_from_a_member_is_taken_before_an_earlier_one() {
    let t0 = base_time();
    let mut n = follower(t0);
    // The leader says the room committed up to 100 000 (a member's heartbeat saying so
    // would make bob ask the leader only: see `numbers.rs`).
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(100_000)));
    drain(&mut n);
    n.handle_timeout(t0 + Duration::from_millis(400));
    let out = drain(&mut n);
    assert_eq!(fetches(&out, addr(1))[0], (1, FETCH_CHUNK));
    leader_acks(&mut n, t0 + Duration::from_millis(401), &out);
    let t1 = t0 + Duration::from_millis(1300);
    n.handle_timeout(t1);
    assert_eq!(fetches(&drain(&mut n), addr(3))[0], (1, FETCH_CHUNK));
    let from_carol = |first: u64, count: u64, id: u64| {
        let packets: Vec<Packet> = (first..first + count)
            .map(|s| Packet::Data {
                id: MsgId(id + s),
                msg: Message::Sequenced(committed(s)),
            })
            .collect();
        datagram(CAROL, packets)
    };
    // Part of the second chunk first, then the first chunk, eight to a datagram (each
    // carries its seal).
    n.handle_datagram(t1, addr(3), &from_carol(FETCH_CHUNK + 1, 8, 0));
    for first in (1..=FETCH_CHUNK).step_by(8) {
        n.handle_datagram(t1, addr(3), &from_carol(first, 8, 0));
    }
    let shown = room_seqs(&drain(&mut n));
    let all = shown == (1..=FETCH_CHUNK + 8).collect::<Vec<_>>();
    assert!(all, "shown {} up to #{:?}", shown.len(), shown.last());
}

/// A leader keeping `limit` messages in memory (and, with `persist`, a database), with
/// bob voting, after bob's `count` submissions were committed. Outputs drained.
fn leader_with_history(t0: Instant, count: u64, limit: usize, persist: bool) -> Node {
    let mut cfg = NodeConfig::new("alice", addr(1), None);
    cfg.history_limit = limit;
    cfg.persist = persist;
    let mut n = Node::new(cfg, LEADER, t0);
    drain(&mut n);
    let out = join_bob(&mut n, t0);
    ack_proposals(&mut n, t0, &out, &[(BOB, 2)]);
    for k in 1..=count {
        n.handle_datagram(t0, addr(2), &data(BOB, 2 + k, Message::Submit(submit(k))));
        let out = drain(&mut n);
        ack_proposals(&mut n, t0, &out, &[(BOB, 2)]);
    }
    while n.poll_write().is_some() {}
    n
}

/// What memory no longer holds is read from the database, as many as were asked for, and
/// sent as committed copies; what memory holds of the same fetch is sent at once.
#[test]
fn a_fetch_beyond_memory_is_answered_from_the_database() {
    let t0 = base_time();
    let mut n = leader_with_history(t0, 40, 10, true);
    let oldest = n.history().iter().next().unwrap().seq.0;
    let fetch = Message::Fetch {
        from: Seq(5),
        to: Seq(oldest + 2),
    };
    n.handle_datagram(t0, addr(2), &data(BOB, 100, fetch));
    let read = n.poll_read().expect("a read of the database");
    assert_eq!((read.from, read.to), (Seq(5), Seq(oldest - 1)));
    // As many as asked for, and up to a run more to end with one that closes its run.
    assert_eq!(read.max as u64, oldest - 5 + RUN_MAX as u64);
    assert!(n.poll_read().is_none());
    let out = drain(&mut n);
    assert_eq!(
        sequenced(&out, addr(2)),
        vec![oldest, oldest + 1, oldest + 2]
    );
    let rows: Vec<ChatEntry> = (5..oldest).map(|s| entry(s, BOB, "bob", s)).collect();
    n.handle_read(t0, read, Ok(rows));
    let out = drain_after_hold(&mut n, t0);
    let sent: Vec<&Message> = out.messages_to(addr(2));
    assert_eq!(sequenced(&out, addr(2)), (5..oldest).collect::<Vec<_>>());
    assert!(
        sent.iter()
            .all(|m| matches!(m, Message::Sequenced(e) if e.term == COMMITTED_TERM)),
        "committed copies: {sent:?}"
    );
}

/// The leader tells a member what its database does not hold either (the numbers before
/// the first one read), and sends the rest; without a database, the numbers before its
/// memory, with the first entry it keeps (which the member's skip waits for).
#[test]
fn the_leader_says_what_is_kept_nowhere() {
    let t0 = base_time();
    let mut n = leader_with_history(t0, 40, 10, true);
    let fetch = Message::Fetch {
        from: Seq(2),
        to: Seq(9),
    };
    n.handle_datagram(t0, addr(2), &data(BOB, 100, fetch));
    let read = n.poll_read().unwrap();
    let rows: Vec<ChatEntry> = (6..=9).map(|s| entry(s, BOB, "bob", s)).collect();
    n.handle_read(t0, read, Ok(rows));
    let out = drain_after_hold(&mut n, t0);
    assert!(out.messages_to(addr(2)).contains(&&Message::Forgotten {
        from: Seq(2),
        to: Seq(5)
    }));
    assert_eq!(sequenced(&out, addr(2)), vec![6, 7, 8, 9]);

    let mut n = leader_with_history(t0, 40, 10, false);
    let oldest = n.history().iter().next().unwrap().seq.0;
    let fetch = Message::Fetch {
        from: Seq(2),
        to: Seq(9),
    };
    n.handle_datagram(t0, addr(2), &data(BOB, 100, fetch));
    assert!(n.poll_read().is_none(), "no database, no read");
    let out = drain(&mut n);
    assert!(out.messages_to(addr(2)).contains(&&Message::Forgotten {
        from: Seq(2),
        to: Seq(oldest - 1)
    }));
    assert_eq!(sequenced(&out, addr(2))[0], oldest, "the first kept entry");
}

/// What a driver hands back is checked like any input: entries out of the range, out of
/// order or past the bound are not sent; an error sends nothing (the member asks again).
#[test]
fn what_the_driver_read_is_checked() {
    let t0 = base_time();
    let mut n = leader_with_history(t0, 40, 10, true);
    let fetch = Message::Fetch {
        from: Seq(3),
        to: Seq(6),
    };
    n.handle_datagram(t0, addr(2), &data(BOB, 100, fetch.clone()));
    let read = n.poll_read().unwrap();
    n.handle_read(t0, read.clone(), Err("disk on fire".into()));
    assert!(drain_after_hold(&mut n, t0).messages_to(addr(2)).is_empty());
    let rows: Vec<ChatEntry> = [3, 4, 9, 5, 6, 7, 8]
        .into_iter()
        .map(|s| entry(s, BOB, "bob", s))
        .collect();
    let t1 = t0 + Duration::from_millis(5);
    n.handle_read(t1, read.clone(), Ok(rows));
    assert_eq!(
        sequenced(&drain_after_hold(&mut n, t1), addr(2)),
        vec![3, 4]
    );
    let rows: Vec<ChatEntry> = (3..=60).map(|s| entry(s, BOB, "bob", s)).collect();
    let t2 = t1 + Duration::from_millis(5);
    n.handle_read(t2, read, Ok(rows));
    assert_eq!(
        sequenced(&drain_after_hold(&mut n, t2), addr(2)),
        vec![3, 4, 5, 6]
    );
    // A read nobody asked for, of any range: within its own bounds only.
    let forged = ReadRange {
        from: Seq(u64::MAX - 1),
        to: Seq(u64::MAX),
        max: usize::MAX,
        requester: addr(2),
    };
    let rows = vec![entry(u64::MAX, BOB, "bob", 1)];
    n.handle_read(t2, forged, Ok(rows));
    drain_after_hold(&mut n, t2 + Duration::from_millis(5));
    // An empty or backwards fetch is ignored.
    let backwards = Message::Fetch {
        from: Seq(9),
        to: Seq(3),
    };
    n.handle_datagram(t0, addr(2), &data(BOB, 101, backwards));
    assert!(n.poll_read().is_none());
    assert!(sequenced(&drain(&mut n), addr(2)).is_empty());
}

/// Fetches the driver has not served yet are bounded: past the bound a fetch that needs
/// the database is counted, not queued (its member asks again).
#[test]
fn reads_waiting_for_the_driver_are_bounded() {
    let t0 = base_time();
    let mut n = leader_with_history(t0, 40, 10, true);
    for k in 0..200 {
        let fetch = Message::Fetch {
            from: Seq(1),
            to: Seq(2),
        };
        n.handle_datagram(t0, addr(2), &data(BOB, 100 + k, fetch));
    }
    let mut reads = 0;
    while n.poll_read().is_some() {
        reads += 1;
    }
    assert_eq!(reads, 64);
    assert!(n.stats().limited >= 136);
}

/// Catching up from carol while alice, the leader, is held offline here: carol's copy of
/// a configuration entry is not taken (it is the leader's to vouch for), and the number
/// is not taken as asked for either. Once alice is online again, the catch-up moves to
/// her, from the number refused.
#[test]
fn a_catch_up_refused_a_configuration_entry_asks_the_leader_once_back() {
    const ERIN: NodeId = NodeId(150);
    let t0 = base_time();
    let mut n = follower_with(t0, vec![member(ERIN, "erin", 5)]).0;
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, commit(3)));
    drain(&mut n);
    // Erin, alice's watcher, says alice is gone; bob asks carol or erin.
    let mut gone = member(LEADER, "alice", 1);
    gone.presence = Presence::Offline;
    gone.stamp = Stamp {
        lamport: Lamport(40),
        by: ERIN,
    };
    n.handle_datagram(t0, addr(5), &data(ERIN, 1, Message::Members(vec![gone])));
    drain(&mut n);
    assert!(!n.members().is_online(LEADER), "alice declared gone");
    let t1 = t0 + Duration::from_millis(400);
    n.handle_timeout(t1);
    let out = drain(&mut n);
    let (peer, port) = if fetches(&out, addr(3)).is_empty() {
        (ERIN, 5)
    } else {
        (CAROL, 3)
    };
    assert_eq!(fetches(&out, addr(port)), vec![(1, 3)]);
    let config = ChatEntry {
        term: COMMITTED_TERM,
        ..ChatEntry::config(
            Seq(1),
            crate::wire::ConfigChange::Remove("dave".into()),
            Seq(0),
        )
    };
    let packets = vec![
        Packet::Data {
            id: MsgId(10),
            msg: Message::Sequenced(config),
        },
        Packet::Data {
            id: MsgId(11),
            msg: Message::Sequenced(committed(2)),
        },
    ];
    n.handle_datagram(t1, addr(port), &datagram(peer, packets));
    drain(&mut n);
    assert_eq!(n.room.next(), Seq(1), "#1 is still wanted");

    // Alice speaks again, refuting erin's word: bob asks her, from #1.
    let mut back = member(LEADER, "alice", 1);
    back.stamp = Stamp {
        lamport: Lamport(50),
        by: LEADER,
    };
    let t2 = t1 + Duration::from_millis(10);
    n.handle_datagram(t2, addr(1), &data(LEADER, 3, Message::Members(vec![back])));
    let out = drain(&mut n);
    assert!(n.members().is_online(LEADER), "alice back");
    assert_eq!(fetches(&out, addr(1)).first(), Some(&(1, 3)));
}

/// A submission that comes again after it was shown is answered: with a committed copy
/// where the leader keeps it, with [`Message::Settled`] where it keeps it no more (the
/// origin skipped past it, and would otherwise submit it for ever); it is never
/// numbered again.
#[test]
fn a_repeat_of_a_message_no_longer_kept_is_settled() {
    let t0 = base_time();
    let mut n = leader_with_history(t0, 40, 10, false);
    let next = n.history().iter().last().unwrap().seq.0 + 1;
    n.handle_datagram(t0, addr(2), &data(BOB, 500, Message::Submit(submit(3))));
    n.handle_datagram(t0, addr(2), &data(BOB, 501, Message::Submit(submit(39))));
    let out = drain(&mut n);
    let to_bob = out.messages_to(addr(2));
    assert!(
        to_bob
            .iter()
            .any(|m| matches!(m, Message::Settled { origin, origin_seq }
                if *origin == BOB && *origin_seq == OriginSeq(3))),
        "the one kept no more is settled: {to_bob:?}"
    );
    let copies: Vec<(u64, u64)> = to_bob
        .iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some((e.origin_seq.0, e.term)),
            _ => None,
        })
        .collect();
    assert_eq!(
        copies,
        vec![(39, COMMITTED_TERM)],
        "the kept one is sent again"
    );
    let after = n.history().iter().last().unwrap().seq.0 + 1;
    assert_eq!(after, next, "nothing numbered again");
    assert_eq!(n.room.uncommitted(), 0);
}

/// Another member's copy is taken as committed only when it comes as committed (one it
/// showed): a copy still of a term is a leader's proposal, and the leader that sent it
/// may lead no more. One reaches here when a proposal waited for its origin's seal
/// while its leader was deposed (`sim_chaos` minority seed 1881786: taken as committed,
/// a deposed leader's own message was shown at a number where the room committed a
/// change). Bob, catching up from carol, is handed such a copy from her: not shown; her
/// committed copy of the same number is.
#[test]
fn a_members_copy_still_of_a_term_is_not_taken_as_committed() {
    let t0 = base_time();
    let (mut n, out) = far_behind(t0);
    leader_acks(&mut n, t0 + Duration::from_millis(401), &out);
    let t1 = t0 + Duration::from_millis(1300);
    n.handle_timeout(t1);
    assert_eq!(fetches(&drain(&mut n), addr(3))[0], (1, FETCH_CHUNK));
    let proposal = ChatEntry {
        term: 0,
        ..committed(1)
    };
    n.on_sequenced_from(t1, CAROL, proposal);
    assert!(
        room_seqs(&drain(&mut n)).is_empty(),
        "a proposal is not shown"
    );
    n.on_sequenced_from(t1, CAROL, committed(1));
    assert_eq!(room_seqs(&drain(&mut n)), vec![1]);
}

/// A member holding a proposal that never committed (a deposed leader's) at its delivery
/// point, then sent a committed copy of a later number (a learner is sent only those),
/// knows the room committed that far: it asks for what lies between. The hold-back queue
/// sees no gap while its front is held, and the proposal's term never commits.
#[test]
fn a_committed_copy_past_a_held_proposal_is_fetched_up_to() {
    let t0 = base_time();
    let mut n = follower(t0);
    let proposal = entry(1, CAROL, "carol", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(proposal)));
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 3, Message::Sequenced(committed(3))),
    );
    let out = drain(&mut n);
    assert!(room_seqs(&out).is_empty(), "nothing is shown yet");
    n.handle_timeout(t0 + Duration::from_millis(400));
    let out = drain(&mut n);
    assert_eq!(
        fetches(&out, addr(1)),
        vec![(1, 3)],
        "the member asks for its delivery point up to the committed copy"
    );
}
