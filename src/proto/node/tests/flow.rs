//! Flow control: the leader sends a member at most a flow window of messages in flight,
//! and the proposals it held back once that member acks.

use super::*;
use crate::proto::node::transport::FLOW_WINDOW;

/// The numbers of the leader's proposals in `out` to `to`.
fn proposed(out: &Out, to: SocketAddr) -> Vec<u64> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e.seq.0),
            _ => None,
        })
        .collect()
}

/// What `n` sends once everything held back for an ack may go (see `proto::batch`).
fn drain_all(n: &mut Node, t: Instant) -> Out {
    let mut out = drain(n);
    n.handle_timeout(t + Duration::from_millis(2));
    let later = drain(n);
    out.sent.extend(later.sent);
    out.events.extend(later.events);
    out
}

/// Bob acks everything the leader sent him in `out` (in datagrams of 100 ids).
fn bob_acks(n: &mut Node, t: Instant, out: &Out) {
    for ids in out.ids_to(addr(2), |_| true).chunks(100) {
        n.handle_datagram(t, addr(2), &ack_of(LEADER, BOB, ids));
    }
}

/// A member that acks nothing is sent a flow window's worth of proposals and no more;
/// as it acks them, the rest follow (no heartbeat needed), each once, and all commit.
#[test]
fn a_member_is_sent_a_flow_window_and_the_rest_as_it_acks() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let total = FLOW_WINDOW as u64 + 300;
    for k in 0..total {
        n.handle_command(
            t0,
            WallMillis(1),
            Command::SendAll {
                text: format!("m{k}"),
            },
        );
    }
    let mut out = drain_all(&mut n, t0);
    let first = proposed(&out, addr(2));
    assert!(
        first.len() <= FLOW_WINDOW && first.len() + 10 >= FLOW_WINDOW,
        "a window's worth, not {} of {total}",
        first.len()
    );
    let mut all = first;
    let mut shown = room_seqs(&out).len();
    // Within one heartbeat interval: only bob's acks open the window.
    for k in 1..=8 {
        let t = t0 + Duration::from_millis(5 * k);
        bob_acks(&mut n, t, &out);
        out = drain_all(&mut n, t);
        all.extend(proposed(&out, addr(2)));
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
