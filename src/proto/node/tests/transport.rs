//! The transport as the node uses it: packets coalesced per destination, cumulative acks
//! owed only for accepted messages, resends batched.

use super::*;

/// Several room messages typed in a row go to the leader in one datagram.
#[test]
fn a_burst_of_commands_goes_out_in_one_datagram() {
    let t0 = base_time();
    let mut n = follower(t0);
    for k in 0..5 {
        n.handle_command(
            t0,
            WallMillis(0),
            Command::SendAll {
                text: format!("m{k}"),
            },
        );
    }
    let out = drain(&mut n);
    let submits = out
        .messages_to(addr(1))
        .into_iter()
        .filter(|m| matches!(m, Message::Submit(_)))
        .count();
    assert_eq!(submits, 5);
    assert_eq!(out.datagrams, [addr(1)]);
}

/// Messages from one peer handled before the outputs are drained are acked by one
/// cumulative ack.
#[test]
fn messages_handled_together_are_acked_together() {
    let t0 = base_time();
    let mut n = follower(t0);
    // The welcome (id 1) was acked when the follower was set up; 2..=4 arrive now, in
    // one datagram and in two more.
    let seq = |k: u64| Message::Sequenced(entry(k, CAROL, "carol", k));
    n.handle_datagram(
        t0,
        addr(1),
        &datagram(
            LEADER,
            vec![Packet::Data {
                id: MsgId(2),
                msg: seq(1),
            }],
        ),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, seq(3)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, seq(2)));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![1, 2, 3]);
    let acks = out.acks_to(addr(1));
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].upto, acks[0].ranges.clone()), (4, vec![]));
}

/// A message the node does not accept yet is not acked, so that its sender retries.
#[test]
fn a_message_not_accepted_is_not_acked() {
    let t0 = base_time();
    let mut n = Node::new(NodeConfig::new("bob", addr(2), Some(addr(1))), BOB, t0);
    drain(&mut n);
    // Still joining: a room message is not taken yet.
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 1, Message::Sequenced(entry(1, CAROL, "carol", 1))),
    );
    let out = drain(&mut n);
    assert!(out.acks_to(addr(1)).is_empty(), "{:?}", out.sent);
}

/// Two messages to one peer that time out together are resent in one datagram, after
/// the configured timeout while the peer's round trip is unmeasured.
#[test]
fn resends_to_one_peer_share_a_datagram() {
    let t0 = base_time();
    let mut n = follower(t0);
    for text in ["a", "b"] {
        n.handle_command(
            t0,
            WallMillis(0),
            Command::Send {
                to: vec!["carol".into()],
                text: text.into(),
            },
        );
    }
    assert_eq!(drain(&mut n).datagrams, [addr(3)]);
    n.handle_timeout(t0 + Duration::from_millis(499));
    assert!(drain(&mut n).messages_to(addr(3)).is_empty());
    n.handle_timeout(t0 + Duration::from_millis(500));
    let out = drain(&mut n);
    assert_eq!(out.messages_to(addr(3)).len(), 2);
    let to_carol = out.datagrams.iter().filter(|a| **a == addr(3)).count();
    assert_eq!(to_carol, 1);
}
