//! Flow control: the leader sends a member at most a flow window of messages in flight,
//! and the room waits for it (submissions are sequenced once it acks).

use super::*;
use crate::proto::node::transport::FLOW_WINDOW;

/// Bob acks everything the leader sent him in `out` (in datagrams of 100 ids).
fn bob_acks(n: &mut Node, t: Instant, out: &Out) {
    for ids in out.ids_to(addr(2), |_| true).chunks(100) {
        n.handle_datagram(t, addr(2), &ack_of(LEADER, BOB, ids));
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
