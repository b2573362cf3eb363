//! A member acks a leader's change of the voters only once it holds every number before
//! it, in the leader's term or committed (`room/deliver.rs`): its ack helps make a
//! configuration whose majority must be able to take over with what it holds.

use super::terms::{carols_win_announced, epoch, follower_with_dave};
use super::*;
use crate::wire::ConfigChange;

/// Whether `out` acks `from`'s data packet `id`.
fn acked(out: &Out, to: SocketAddr, id: u64) -> bool {
    out.acks_to(to).iter().any(|a| a.covers(id))
}

/// `entry` proposed in `term`.
fn in_term(term: u64, e: ChatEntry) -> ChatEntry {
    ChatEntry { term, ..e }
}

/// Alice's change at #2 reaches bob before her #1: he takes and acks the room message
/// after it (acks count number by number), not the change; once #1 is here, the change
/// sent again is acked. Without the rule he acked it at once, and a change that left him
/// a majority alone could commit while he lacked what was committed before it
/// (`sim_chaos` majority seed 88).
#[test]
fn a_change_of_the_voters_is_acked_only_with_every_number_before_it() {
    let t0 = base_time();
    let mut n = follower(t0);
    let change = ChatEntry::config(Seq(2), ConfigChange::Add("carol".into()), Seq(0));
    let proposal = |id, e: ChatEntry| data(LEADER, id, Message::Sequenced(e));
    n.handle_datagram(t0, addr(1), &proposal(2, change.clone()));
    assert!(
        !acked(&drain(&mut n), addr(1), 2),
        "the change is not acked while #1 is missing"
    );
    n.handle_datagram(t0, addr(1), &proposal(3, entry(3, CAROL, "carol", 1)));
    assert!(
        acked(&drain(&mut n), addr(1), 3),
        "a room message past the gap is acked"
    );
    n.handle_datagram(t0, addr(1), &proposal(4, entry(1, LEADER, "alice", 1)));
    assert!(acked(&drain(&mut n), addr(1), 4));
    n.handle_datagram(t0, addr(1), &proposal(2, change));
    assert!(
        acked(&drain(&mut n), addr(1), 2),
        "the change sent again, #1 held: acked"
    );
}

/// A copy of an earlier term does not count: bob holds alice's #1 of term 0, and follows
/// carol in term 1. Her change at #2 waits until she proposes #1 again in her term.
#[test]
fn a_copy_of_an_earlier_term_before_a_change_does_not_count() {
    let t0 = base_time();
    let mut n = follower_with_dave(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    assert!(acked(&drain(&mut n), addr(1), 2), "alice's #1 held");
    carols_win_announced(&mut n, t0);
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    let change = in_term(
        1,
        ChatEntry::config(Seq(2), ConfigChange::Remove("dave".into()), Seq(0)),
    );
    let proposal = |id, e: ChatEntry| data(CAROL, id, Message::Sequenced(e));
    n.handle_datagram(t0, addr(3), &proposal(7, change.clone()));
    assert!(
        !acked(&drain(&mut n), addr(3), 7),
        "#1 is held in term 0 only: the change of term 1 is not acked"
    );
    n.handle_datagram(
        t0,
        addr(3),
        &proposal(8, in_term(1, entry(1, LEADER, "alice", 1))),
    );
    assert!(acked(&drain(&mut n), addr(3), 8), "#1 again, in term 1");
    n.handle_datagram(t0, addr(3), &proposal(7, change));
    assert!(acked(&drain(&mut n), addr(3), 7), "now the change is acked");
}
