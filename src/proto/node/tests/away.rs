//! A node back from an absence (`ring/away.rs`): a leader sequences nothing until a
//! majority confirms it still leads (CheckQuorum, Ongaro's thesis 9.6, for a leader whose
//! own timers say it did not run), and a member confirms no leader it has replaced.

use super::*;

const EPOCH0: Epoch = Epoch {
    term: 0,
    leader: LEADER,
};

/// Everything `n` sends for inputs at `at`, messages held back for an ack included (they
/// leave within the hold limit).
fn drain_at(n: &mut Node, at: Instant) -> Out {
    let mut out = drain(n);
    n.handle_timeout(at + crate::proto::batch::HOLD_LIMIT);
    let later = drain(n);
    out.sent.extend(later.sent);
    out.events.extend(later.events);
    out
}

/// Member `id` at `port` answers the leader's sync request for its epoch (its message
/// number `msg`) 10 ms after `woke`: it still follows the leader. What the leader sends.
fn confirm(n: &mut Node, woke: Instant, (id, port, msg): (NodeId, u16, u64)) -> Out {
    let reply = Message::SyncReply {
        epoch: EPOCH0,
        next: Seq(1),
        high: Seq(0),
        sent: 0,
        votes: Vec::new(),
    };
    let later = woke + Duration::from_millis(10);
    n.handle_datagram(later, addr(port), &data(id, msg, reply));
    drain_at(n, later)
}

fn sequenced_to(out: &Out, to: SocketAddr) -> usize {
    out.messages_to(to)
        .iter()
        .filter(|m| matches!(m, Message::Sequenced(_)))
        .count()
}

fn sync_requests_to(out: &Out, to: SocketAddr) -> usize {
    out.messages_to(to)
        .iter()
        .filter(|m| matches!(m, Message::SyncRequest { epoch, .. } if *epoch == EPOCH0))
        .count()
}

#[test]
fn a_leader_back_from_a_pause_sequences_only_once_a_majority_confirms_it() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    // Five seconds without a single input: the process was stopped. Its socket held a
    // submission from bob.
    let woke = t0 + Duration::from_secs(5);
    n.handle_datagram(woke, addr(2), &data(BOB, 3, Message::Submit(submit(1))));
    let out = drain_at(&mut n, woke);
    assert_eq!(
        sequenced_to(&out, addr(2)),
        0,
        "nothing sequenced before confirmation"
    );
    assert_eq!(sequenced_to(&out, addr(3)), 0);
    assert!(sync_requests_to(&out, addr(2)) >= 1, "bob is asked");
    assert!(sync_requests_to(&out, addr(3)) >= 1, "carol is asked");

    // Bob still follows alice: with alice herself, two of three.
    let out = confirm(&mut n, woke, (BOB, 2, 4));
    assert_eq!(
        sequenced_to(&out, addr(2)),
        1,
        "the held submission is sequenced"
    );
    assert_eq!(sequenced_to(&out, addr(3)), 1);
}

#[test]
fn a_leader_that_ran_on_time_does_not_ask() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(submit(1))));
    let out = drain_at(&mut n, t0);
    assert_eq!(sequenced_to(&out, addr(2)), 1);
    assert_eq!(sync_requests_to(&out, addr(2)), 0);
}

#[test]
fn a_member_does_not_confirm_a_leader_it_declared_gone() {
    let t0 = base_time();
    let ask = || Message::SyncRequest {
        epoch: EPOCH0,
        from: Seq(1),
    };
    let replies_to_alice = |out: &Out| {
        out.messages_to(addr(1))
            .iter()
            .filter(|m| matches!(m, Message::SyncReply { .. }))
            .count()
    };
    // Alice online: bob answers.
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, ask()));
    assert_eq!(replies_to_alice(&drain(&mut n)), 1);

    // Erin, alice's watcher (her successor on the ring), says alice is gone: bob no
    // longer confirms her.
    const ERIN: NodeId = NodeId(150);
    let mut n = follower_with(t0, vec![member(ERIN, "erin", 5)]).0;
    let mut gone = member(LEADER, "alice", 1);
    gone.presence = Presence::Offline;
    gone.stamp = Stamp {
        lamport: Lamport(50),
        by: ERIN,
    };
    n.handle_datagram(t0, addr(5), &data(ERIN, 1, Message::Members(vec![gone])));
    drain(&mut n);
    assert!(!n.members().is_online(LEADER), "alice declared gone");
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, ask()));
    assert_eq!(replies_to_alice(&drain(&mut n)), 0);
}

#[test]
fn the_leaders_own_message_waits_for_the_confirmation_and_goes_out_with_it() {
    let t0 = base_time();
    let mut n = leader_of_three(t0);
    let woke = t0 + Duration::from_secs(5);
    n.handle_command(
        woke,
        WallMillis(0),
        Command::SendAll {
            text: "back".into(),
        },
    );
    let out = drain_at(&mut n, woke);
    assert_eq!(sequenced_to(&out, addr(2)), 0, "not before confirmation");
    let out = confirm(&mut n, woke, (CAROL, 3, 3));
    assert_eq!(
        sequenced_to(&out, addr(2)),
        1,
        "sequenced at once, not at the next resubmission"
    );
}
