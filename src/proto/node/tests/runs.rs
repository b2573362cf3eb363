//! Own runs (`room/proof.rs`, [`Node::flush_own`]): a busy sender's burst whose first
//! line wakes the node alone costs one seal, and a message typed after a quiet spell is
//! sealed at once.

use super::*;
use crate::proto::batch::HOLD_LIMIT;

/// The submissions `out` sent the leader: (number, carries its link, carries a seal).
fn submits(out: &Out) -> Vec<(u64, bool, bool)> {
    out.messages_to(addr(1))
        .into_iter()
        .filter_map(|m| match m {
            Message::Submit(s) => Some((
                s.origin_seq.0,
                s.proof.link.is_some(),
                s.proof.seal.is_some(),
            )),
            _ => None,
        })
        .collect()
}

/// The leader acks everything `out` sent it (so Nagle's rule holds nothing back).
fn leader_acks(n: &mut Node, now: Instant, out: &Out) {
    let ids = out.ids_to(addr(1), |_| true);
    if !ids.is_empty() {
        n.handle_datagram(now, addr(1), &ack_of(BOB, LEADER, &ids));
    }
}

fn send_all(n: &mut Node, now: Instant, text: &str) {
    n.handle_command(now, WallMillis(0), Command::SendAll { text: text.into() });
}

/// After a quiet spell a message is sealed at once. One typed alone soon after goes at
/// once, unsealed; what is typed next, within the hold limit, goes sealed as the rest of
/// that run: the seal's chain runs through the first one, so it proves all three.
#[test]
fn a_burst_that_starts_alone_is_sealed_once() {
    let t0 = base_time();
    let mut n = follower(t0);
    send_all(&mut n, t0, "m1");
    let out = drain(&mut n);
    assert_eq!(submits(&out), [(1, true, true)], "after a quiet spell");
    leader_acks(&mut n, t0, &out);
    let t1 = t0 + Duration::from_micros(100);
    send_all(&mut n, t1, "m2");
    let out = drain(&mut n);
    assert_eq!(submits(&out), [(2, true, false)], "the run is left open");
    let opener = match out.messages_to(addr(1))[..] {
        [Message::Submit(s)] => s.clone(),
        ref other => panic!("{other:?}"),
    };
    leader_acks(&mut n, t1, &out);
    let t2 = t1 + Duration::from_micros(300);
    send_all(&mut n, t2, "m3");
    send_all(&mut n, t2, "m4");
    let out = drain(&mut n);
    assert_eq!(submits(&out), [(3, true, false), (4, false, true)]);
    let rest: Vec<Submit> = out
        .messages_to(addr(1))
        .into_iter()
        .filter_map(|m| match m {
            Message::Submit(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    // The chain from the opener's link through m2, m3 and m4 ends in the sealed value.
    let mut value = opener.proof.link.expect("the opener's link");
    for s in std::iter::once(&opener).chain(&rest) {
        if let Some(link) = s.proof.link {
            assert_eq!(link, value, "#{} continues the run", s.origin_seq.0);
        }
        value = seal::chain(&value, &s.written(BOB));
    }
    let key = own_identity("bob").verifying_key().to_bytes();
    let last = rest[1].proof.seal.as_deref().expect("sealed");
    assert!(
        seal::check_run(&key, &value, last),
        "one seal over m2 to m4"
    );
    assert!(n.poll_timeout().is_some());
}

/// A run left open with nothing typed after it is closed when the hold limit is up: its
/// message goes again, sealed; not before.
#[test]
fn a_run_left_alone_is_sealed_when_the_hold_ends() {
    let t0 = base_time();
    let mut n = follower(t0);
    send_all(&mut n, t0, "m1");
    let out = drain(&mut n);
    leader_acks(&mut n, t0, &out);
    let t1 = t0 + Duration::from_micros(100);
    send_all(&mut n, t1, "m2");
    let out = drain(&mut n);
    assert_eq!(submits(&out), [(2, true, false)]);
    leader_acks(&mut n, t1, &out);
    let due = t1 + HOLD_LIMIT;
    assert!(
        n.poll_timeout().is_some_and(|t| t <= due),
        "the driver is woken for it"
    );
    n.handle_timeout(due - Duration::from_micros(1));
    assert!(submits(&drain(&mut n)).is_empty(), "early: still open");
    n.handle_timeout(due);
    assert_eq!(submits(&drain(&mut n)), [(2, true, true)]);
}

/// The leader holds an unsealed first message until the rest of its run comes (nothing
/// is proposed before), then proposes the whole run, under consecutive numbers, once the
/// one seal checks; a first message sealed on its own later is proposed just the same.
#[test]
fn the_leader_proves_an_open_run_by_the_seal_that_closes_it() {
    let t0 = base_time();
    let key = identity(BOB.0 as u8);
    let run = |texts: &[&str]| {
        let mut link = seal::chain_start(BOB);
        let mut out = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let mut s = Submit {
                text: (*text).into(),
                ..submit(i as u64 + 1)
            };
            let value = seal::chain(&link, &s.written(BOB));
            s.proof = Provenance {
                link: Some(link),
                seal: (i + 1 == texts.len()).then(|| seal::seal_run(&key, &value)),
            };
            link = value;
            out.push(s);
        }
        out
    };
    let proposed = |out: &Out| -> Vec<String> {
        out.messages_to(addr(2))
            .into_iter()
            .filter_map(|m| match m {
                Message::Sequenced(e) => Some(e.text.clone()),
                _ => None,
            })
            .collect()
    };

    // A run of three whose first message came alone, unsealed.
    let mut n = leader_with_bob(t0);
    let three = run(&["a", "b", "c"]);
    let mut opener = three[0].clone();
    opener.proof.seal = None;
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(opener.clone())));
    assert!(proposed(&drain(&mut n)).is_empty(), "nothing proven yet");
    let rest = vec![
        Packet::Data {
            id: MsgId(4),
            msg: Message::Submit(three[1].clone()),
        },
        Packet::Data {
            id: MsgId(5),
            msg: Message::Submit(three[2].clone()),
        },
    ];
    n.handle_datagram(t0, addr(2), &datagram(BOB, rest));
    assert_eq!(proposed(&drain(&mut n)), ["a", "b", "c"]);
    assert_eq!(n.stats().forged, 0);

    // A first message left alone, then sent again with its own seal.
    let mut n = leader_with_bob(t0);
    let one = run(&["alone"]);
    let mut opener = one[0].clone();
    opener.proof.seal = None;
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(opener)));
    assert!(proposed(&drain(&mut n)).is_empty());
    n.handle_datagram(t0, addr(2), &data(BOB, 4, Message::Submit(one[0].clone())));
    assert_eq!(proposed(&drain(&mut n)), ["alone"]);
}
