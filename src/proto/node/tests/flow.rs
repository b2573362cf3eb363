//! Flow control: the leader sends a member at most a flow window of messages in flight,
//! and the room waits for it (submissions are sequenced once it acks).

use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::proto::node::transport::FLOW_WINDOW;

/// Bob acks everything the leader sent him in `out` (in datagrams of 100 ids).
fn bob_acks(n: &mut Node, t: Instant, out: &Out) {
    acks_in_datagrams(n, t, (BOB, 2), &out.ids_to(addr(2), |_| true));
}

/// Member `id` at `port` acks `ids`, 100 to a datagram.
fn acks_in_datagrams(n: &mut Node, t: Instant, (id, port): (NodeId, u16), ids: &[MsgId]) {
    for ids in ids.chunks(100) {
        n.handle_datagram(t, addr(port), &ack_of(LEADER, id, ids));
    }
}

/// A member that acks nothing is sent a flow window's worth of proposals and no more,
/// and the rest wait unsequenced; as it acks, the rest follow (no heartbeat needed),
/// each once, and all commit.
#[test]
fn a_member_is_sent_a_flow_window_and_the_rest_as_it_acks() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let total = FLOW_WINDOW as u64 + 300;
    // Typed as the driver hands lines over: up to 256 before each drain.
    let mut out = drain(&mut n);
    for k in 0..total {
        let text = format!("m{k}");
        n.handle_command(t0, WallMillis(1), Command::SendAll { text });
        if k % 256 == 255 {
            let more = drain(&mut n);
            out.sent.extend(more.sent);
            out.events.extend(more.events);
        }
    }
    let more = drain_after_hold(&mut n, t0);
    out.sent.extend(more.sent);
    out.events.extend(more.events);
    let first = sequenced(&out, addr(2));
    assert!(
        first.len() <= FLOW_WINDOW && first.len() + 10 >= FLOW_WINDOW,
        "a window's worth, not {} of {total}",
        first.len()
    );
    // The room waits for bob: what he has no room for is not even sequenced yet.
    assert!(
        n.room.uncommitted() <= FLOW_WINDOW as u64 + 10,
        "{} sequenced ahead of bob",
        n.room.uncommitted()
    );
    let mut all = first;
    let mut shown = room_seqs(&out).len();
    // Within one heartbeat interval: only bob's acks open the window.
    for k in 1..=8 {
        let t = t0 + Duration::from_millis(5 * k);
        bob_acks(&mut n, t, &out);
        out = drain_after_hold(&mut n, t);
        all.extend(sequenced(&out, addr(2)));
        shown += room_seqs(&out).len();
    }
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "each proposal sent once");
    let own: Vec<u64> = sorted.into_iter().filter(|s| *s > 1).collect();
    assert_eq!(own.len() as u64, total, "every one sent in the end");
    assert_eq!(shown as u64, total, "and committed");
}

/// Alice types `count` lines at `t`, handed over 256 at a time as the driver does, and
/// bob acks at once whatever the leader sends him; what it sends carol (port 3).
fn typed_with_bob_acking(n: &mut Node, t: Instant, count: u64) -> Out {
    let mut to_carol = Out::default();
    let mut k = 0;
    while k < count {
        for _ in 0..256.min(count - k) {
            let text = format!("m{k}");
            n.handle_command(t, WallMillis(1), Command::SendAll { text });
            k += 1;
        }
        let out = drain_after_hold(n, t);
        bob_acks(n, t, &out);
        to_carol
            .sent
            .extend(out.sent.into_iter().filter(|(a, _)| *a == addr(3)));
    }
    to_carol
}

/// The leader's next number and the oldest one carol owes it.
fn next_and_oldest_owed(n: &Node) -> (u64, Option<u64>) {
    let (next, oldest) = n.room.next_and_oldest_owed(CAROL).expect("leads");
    (next.0, oldest.map(|s| s.0))
}

/// A member that acks all but one old proposal has room in its flow window, yet the
/// room stops numbering messages a pacing span past that one (past its hold-back bound
/// it could hold nothing more), and goes on once it is acked: nothing is dropped, and
/// every message commits.
#[test]
fn the_room_waits_for_a_member_that_lacks_an_old_number() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let span = n.pace_span();
    let first = typed_with_bob_acking(&mut n, t0, 1);
    let missing = first.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
    let missing_seq = sequenced(&first, addr(3));
    assert_eq!(missing_seq.len(), 1, "carol is sent the first line");
    let total = MAX_HOLDBACK as u64 + 500;
    let mut sent_carol = Vec::new();
    let mut typed = 1;
    while typed < total {
        let batch = 1024.min(total - typed);
        let out = typed_with_bob_acking(&mut n, t0, batch);
        typed += batch;
        let ids = out.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
        acks_in_datagrams(&mut n, t0, (CAROL, 3), &ids);
        sent_carol.extend(sequenced(&out, addr(3)));
        let _ = drain(&mut n);
    }
    let (next, oldest) = next_and_oldest_owed(&n);
    assert_eq!(oldest, Some(missing_seq[0]), "carol owes the first line");
    // A run of submissions taken at once may pass the span (see `MAX_UNCOMMITTED`),
    // never the member's hold-back bound.
    assert!(
        next < missing_seq[0] + MAX_HOLDBACK as u64,
        "numbered up to #{next}, {} past what carol lacks (span {span})",
        next - missing_seq[0]
    );
    assert!(
        next + 400 >= missing_seq[0] + span,
        "paced only at the span: #{next}"
    );
    let reach = missing_seq[0] + MAX_HOLDBACK as u64;
    assert!(
        sent_carol.iter().all(|s| *s < reach),
        "carol is sent nothing past her reach"
    );
    // Carol acks the old one: the rest are numbered, sent, and commit.
    n.handle_datagram(t0, addr(3), &ack_of(LEADER, CAROL, &missing));
    let mut shown = 0;
    for k in 1..=20 {
        let t = t0 + Duration::from_millis(k);
        let out = drain_after_hold(&mut n, t);
        bob_acks(&mut n, t, &out);
        let ids = out.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
        acks_in_datagrams(&mut n, t, (CAROL, 3), &ids);
        shown += room_seqs(&out).len();
    }
    let out = drain_after_hold(&mut n, t0 + Duration::from_millis(21));
    shown += room_seqs(&out).len();
    let (next, oldest) = next_and_oldest_owed(&n);
    assert_eq!(oldest, None, "carol owes nothing");
    assert_eq!(n.room.uncommitted(), 0, "everything committed");
    assert!(
        next > missing_seq[0] + total - 1,
        "every line numbered: next #{next}"
    );
    assert!(shown > 0, "the rest are shown once numbered");
}

/// Proposals a member never acked are given up while the rest of the room commits them;
/// the leader then sends it committed copies of every one (rather than leave it to find
/// the gap and fetch it), and once it acks them it owes nothing.
#[test]
fn a_member_given_up_on_is_sent_committed_copies() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let lines = 50;
    let first = typed_with_bob_acking(&mut n, t0, lines);
    let proposed: BTreeSet<u64> = sequenced(&first, addr(3)).into_iter().collect();
    assert_eq!(proposed.len() as u64, lines, "carol is sent every line");
    assert_eq!(n.room.uncommitted(), 0, "bob's acks commit them");
    let mut copies = BTreeSet::new();
    let mut t = t0;
    for _ in 0..300 {
        t += Duration::from_millis(100);
        super::commit::beat_from(&mut n, t, BOB, 2);
        super::commit::beat_from(&mut n, t, CAROL, 3);
        n.handle_timeout(t);
        let out = drain_after_hold(&mut n, t);
        bob_acks(&mut n, t, &out);
        for m in out.messages_to(addr(3)) {
            if let Message::Sequenced(e) = m
                && e.term == COMMITTED_TERM
            {
                copies.insert(e.seq.0);
            }
        }
        if copies.len() as u64 == lines {
            let ids = out.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
            acks_in_datagrams(&mut n, t, (CAROL, 3), &ids);
            break;
        }
    }
    assert_eq!(
        copies, proposed,
        "a committed copy of each line carol never acked"
    );
    let (_, oldest) = next_and_oldest_owed(&n);
    assert_eq!(oldest, None, "acked, carol owes nothing");
    assert!(
        n.members()
            .get(CAROL)
            .is_some_and(|m| m.presence == Presence::Online),
        "carol stays online"
    );
}

/// A member that heartbeats but acks nothing (its delivery stuck, say) holds the room up
/// only while what it owes is sent again: a committed copy given up is not sent again
/// (it fetches it), so the room goes on at the pace of the give-ups, past any span.
#[test]
fn a_member_that_acks_nothing_does_not_stop_the_room_for_good() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let span = n.pace_span();
    let mut t = t0;
    let mut typed = 0u64;
    for _ in 0..1200 {
        t += Duration::from_millis(100);
        super::commit::beat_from(&mut n, t, BOB, 2);
        super::commit::beat_from(&mut n, t, CAROL, 3);
        n.handle_timeout(t);
        for _ in 0..50 {
            let text = format!("m{typed}");
            n.handle_command(t, WallMillis(1), Command::SendAll { text });
            typed += 1;
        }
        let out = drain_after_hold(&mut n, t);
        bob_acks(&mut n, t, &out);
    }
    let (next, _) = next_and_oldest_owed(&n);
    assert!(
        n.members()
            .get(CAROL)
            .is_some_and(|m| m.presence == Presence::Online),
        "carol stays online: she heartbeats"
    );
    assert!(
        next > 3 * span,
        "numbered up to #{next} of {typed} typed in 120 s: the room stopped (span {span})"
    );
}
