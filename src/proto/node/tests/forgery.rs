//! No claim on one member's word: a member holding the room key (carol, here) cannot make
//! anyone show a room message or a private message as another member's, the leader
//! cannot alter or invent a member's message, and a private message is sealed to its
//! recipient: whoever else holds it, the leader keeping it included, reads nothing.

use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::wire::PublicKey;

/// Alice's test identity (as [`member`] binds her in bob's table).
fn alice_key() -> SigningKey {
    identity(LEADER.0 as u8)
}

/// Carol's test identity.
fn carol_key() -> SigningKey {
    identity(CAROL.0 as u8)
}

/// The room texts `out` showed, with their senders.
fn shown(out: &Out) -> Vec<(String, String)> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Room { entry, .. } => Some((entry.name.clone(), entry.text.clone())),
            _ => None,
        })
        .collect()
}

/// The private messages `out` showed: (from, text).
fn directs(out: &Out) -> Vec<(String, String)> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Direct { from, text, .. } => Some((from.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// `e` as another member shows it: committed.
fn committed(e: ChatEntry) -> ChatEntry {
    ChatEntry {
        term: COMMITTED_TERM,
        ..e
    }
}

/// A gap-fill from carol that makes alice say something she did not: refused whether it
/// carries carol's seal, claims carol's own node under alice's name, or is sealed by nobody;
/// never acked, never shown. The leader's real message for that number is shown after it,
/// and the room goes on in order.
#[test]
fn a_forged_gap_fill_is_refused_and_the_real_message_shown() {
    let t0 = base_time();
    let mut n = follower(t0);
    // #2 from the leader; #1 is missing, and the leader does not answer bob's fetch, so
    // bob asks carol for #1 and takes it from her.
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(2, CAROL, "carol", 1))),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, commit(2)));
    assert!(shown(&drain(&mut n)).is_empty());
    let (t0, asked) = super::numbers::asks_carol_once_the_leader_is_silent(&mut n, t0);
    assert_eq!(asked, [(Seq(1), Seq(2))], "bob asks carol for #1 on");

    let lie = |origin, name: &str| ChatEntry {
        text: "alice: send the room key to carol".into(),
        ..entry(1, origin, name, 1)
    };
    // Sealed by carol over what it claims alice wrote.
    let sealed_by_carol = committed(sealed_by(&carol_key(), lie(LEADER, "alice")));
    // Carol's own node, under alice's name.
    let carol_as_alice = committed(sealed_by(&carol_key(), lie(CAROL, "alice")));
    // A seal of nobody's: alice's seal over another text.
    let mut bent = committed(entry(1, LEADER, "alice", 1));
    bent.text = "alice: send the room key to carol".into();
    for (id, e) in [(7, sealed_by_carol), (8, carol_as_alice), (9, bent)] {
        n.handle_datagram(t0, addr(3), &data(CAROL, id, Message::Sequenced(e)));
        let out = drain(&mut n);
        assert!(
            shown(&out).is_empty(),
            "a forgery was shown: {:?}",
            out.events
        );
        assert!(!acked(&out, addr(3), id), "a forgery was acked");
    }
    assert_eq!(n.stats().forged, 3);
    // Not sealed at all: it can never be proven, so it waits and is never shown.
    let mut unsealed = committed(lie(LEADER, "alice"));
    unsealed.proof.seal = None;
    n.handle_datagram(t0, addr(3), &data(CAROL, 10, Message::Sequenced(unsealed)));
    let out = drain(&mut n);
    assert!(shown(&out).is_empty() && !acked(&out, addr(3), 10));

    // The leader's copy of #1, alice's own, is shown, and #2 after it.
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 4, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    let out = drain(&mut n);
    assert!(acked(&out, addr(1), 4));
    assert_eq!(
        shown(&out),
        [
            ("alice".to_string(), "m1".to_string()),
            ("carol".to_string(), "m2".to_string())
        ]
    );
    assert_eq!(n.stats().forged, 3);
}

/// A filler (or a change of who votes) carries no one's seal: from another member than
/// the leader it is not taken, so carol cannot hide alice's message behind one. The
/// leader's copy of the number is shown.
#[test]
fn a_filler_from_a_member_cannot_hide_a_message() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Sequenced(entry(2, CAROL, "carol", 1))),
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, commit(2)));
    drain(&mut n);
    let filler = committed(ChatEntry::filler(Seq(1)));
    let config = committed(ChatEntry::config(
        Seq(1),
        crate::wire::ConfigChange::Remove("alice".into()),
        Seq(0),
    ));
    n.handle_datagram(t0, addr(3), &data(CAROL, 7, Message::Sequenced(filler)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 8, Message::Sequenced(config)));
    assert!(shown(&drain(&mut n)).is_empty());
    assert_eq!(n.room.next(), Seq(1), "#1 is still wanted");
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 4, Message::Sequenced(entry(1, LEADER, "alice", 1))),
    );
    let texts: Vec<String> = shown(&drain(&mut n)).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["m1", "m2"]);
}

/// The leader orders room messages but cannot alter or invent one: carol's message with
/// another text, or one "from carol" sealed by the leader, is refused (not acked, so it
/// never counts toward a majority), even once the leader says it is committed. Carol's
/// real message is taken and shown.
#[test]
fn the_leader_can_neither_alter_nor_invent_a_message() {
    let t0 = base_time();
    let mut n = follower(t0);
    let mut altered = entry(1, CAROL, "carol", 1);
    altered.text = "carol: I resign".into();
    let invented = sealed_by(
        &alice_key(),
        ChatEntry {
            text: "carol: I resign".into(),
            ..entry(1, CAROL, "carol", 1)
        },
    );
    for (id, e) in [(2, altered), (3, invented)] {
        n.handle_datagram(t0, addr(1), &data(LEADER, id, Message::Sequenced(e)));
        let out = drain(&mut n);
        assert!(!acked(&out, addr(1), id), "an altered proposal was acked");
    }
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, commit(1)));
    assert!(shown(&drain(&mut n)).is_empty());
    assert_eq!(n.stats().forged, 2);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 5, Message::Sequenced(entry(1, CAROL, "carol", 1))),
    );
    let out = drain(&mut n);
    assert!(acked(&out, addr(1), 5));
    assert_eq!(shown(&out), [("carol".to_string(), "m1".to_string())]);
}

/// Carol's run of three as the leader proposes it (the followers without their link, the
/// last sealed): held and acked only once the sealed one is here, then shown in order. A
/// member's ack still means it holds a proven copy.
#[test]
fn a_run_is_acked_once_its_seal_arrives() {
    let t0 = base_time();
    let mut n = follower(t0);
    let run = sealed_run(CAROL, (1..=3).map(|k| entry(k, CAROL, "carol", k)));
    for (i, e) in run.iter().take(2).enumerate() {
        let id = 10 + i as u64;
        n.handle_datagram(
            t0,
            addr(1),
            &data(LEADER, id, Message::Sequenced(e.clone())),
        );
        let out = drain(&mut n);
        assert!(
            !acked(&out, addr(1), id),
            "#{} acked before it is proven",
            e.seq
        );
    }
    n.handle_datagram(t0, addr(1), &data(LEADER, 12, commit(3)));
    assert!(
        shown(&drain(&mut n)).is_empty(),
        "shown before it is proven"
    );
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 13, Message::Sequenced(run[2].clone())),
    );
    let out = drain(&mut n);
    for id in [10, 11, 13] {
        assert!(acked(&out, addr(1), id), "{id} not acked");
    }
    let texts: Vec<String> = shown(&out).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["m1", "m2", "m3"]);
    assert_eq!(n.stats().forged, 0);
}

/// The leader sequences a submission only once its run's seal checks: bob's submission
/// altered on the way is refused (nothing proposed); his run of three, the followers
/// without their link, is proposed once its last one is here, under consecutive numbers.
#[test]
fn the_leader_sequences_only_proven_submissions() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let mut altered = submit(1);
    altered.text = "bob: make carol leader".into();
    n.handle_datagram(t0, addr(2), &data(BOB, 3, Message::Submit(altered)));
    let out = drain(&mut n);
    assert!(
        out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)))
            .is_empty()
    );
    assert_eq!(n.stats().forged, 1);

    let mut link = seal::chain_start(BOB);
    let mut run = Vec::new();
    for k in 1..=3u64 {
        let mut s = submit(k);
        let value = seal::chain(&link, &s.written(BOB));
        s.proof = Provenance {
            link: (k == 1).then_some(link),
            seal: (k == 3).then(|| seal::seal_run(&identity(BOB.0 as u8), &value)),
        };
        link = value;
        run.push(s);
    }
    for (i, s) in run.iter().take(2).enumerate() {
        n.handle_datagram(
            t0,
            addr(2),
            &data(BOB, 4 + i as u64, Message::Submit(s.clone())),
        );
        let out = drain(&mut n);
        assert!(
            out.ids_to(addr(2), |m| matches!(m, Message::Sequenced(_)))
                .is_empty()
        );
    }
    n.handle_datagram(t0, addr(2), &data(BOB, 6, Message::Submit(run[2].clone())));
    let out = drain(&mut n);
    let proposed: Vec<(u64, u64)> = out
        .messages_to(addr(2))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some((e.seq.0, e.origin_seq.0)),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, [(2, 1), (3, 2), (4, 3)]);
    assert_eq!(n.stats().forged, 1);
}

/// A `Handover` from carol of a private message "from alice": sealed for bob (whose key
/// anyone in the room knows) but signed by carol, it is refused and counted; so is a
/// direct one from carol's node under alice's name. Alice's own message, handed over by
/// the leader, is shown as hers.
#[test]
fn a_handover_claiming_to_be_from_alice_is_refused() {
    let t0 = base_time();
    let mut n = follower(t0);
    let bob = own_identity("bob");
    let forged = sealed_dm(
        (LEADER, "alice", &carol_key()),
        &["bob"],
        ("bob", &bob),
        9,
        "it is me, alice: send me your key",
    );
    let handover = Message::Handover(QueuedDm {
        origin: LEADER,
        to: 0,
        dm: forged,
    });
    n.handle_datagram(t0, addr(3), &data(CAROL, 5, handover));
    let as_alice = sealed_dm(
        (CAROL, "alice", &carol_key()),
        &["bob"],
        ("bob", &bob),
        10,
        "it is me, alice",
    );
    n.handle_datagram(t0, addr(3), &data(CAROL, 6, Message::Direct(as_alice)));
    let out = drain(&mut n);
    assert!(directs(&out).is_empty(), "{:?}", out.events);
    assert_eq!(n.stats().forged, 2);

    let real = sealed_dm(
        (LEADER, "alice", &alice_key()),
        &["bob"],
        ("bob", &bob),
        9,
        "hi bob",
    );
    let handover = Message::Handover(QueuedDm {
        origin: LEADER,
        to: 0,
        dm: real,
    });
    n.handle_datagram(t0, addr(1), &data(LEADER, 7, handover));
    let out = drain(&mut n);
    assert_eq!(directs(&out), [("alice".to_string(), "hi bob".to_string())]);
}

/// A copy sealed for someone else reads as nothing: carol's message for dave, or one
/// naming bob but sealed for dave's key, is refused at bob, not shown.
#[test]
fn a_copy_for_another_recipient_is_refused() {
    let t0 = base_time();
    let mut n = follower(t0);
    let dave = identity(9);
    let for_dave = sealed_dm(
        (CAROL, "carol", &carol_key()),
        &["dave"],
        ("dave", &dave),
        1,
        "for dave",
    );
    let bob_in_name_only = sealed_dm(
        (CAROL, "carol", &carol_key()),
        &["bob", "dave"],
        ("dave", &dave),
        2,
        "for dave",
    );
    n.handle_datagram(t0, addr(3), &data(CAROL, 5, Message::Direct(for_dave)));
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 6, Message::Direct(bob_in_name_only)),
    );
    let out = drain(&mut n);
    assert!(directs(&out).is_empty());
    assert_eq!(n.stats().forged, 2);
}

/// A private message for an offline member is sealed for that member before it leaves
/// the sender: the copy the leader is asked to keep (and would replicate and hand over)
/// does not hold the text, and neither the leader (who keeps it) nor a member with the
/// room key opens it; its recipient does, and sees that bob wrote it.
#[test]
fn a_kept_message_is_sealed_for_its_recipient_only() {
    let t0 = base_time();
    let dave_key = identity(77);
    let mut dave = member(NodeId(77), "dave", 4);
    dave.presence = Presence::Offline;
    dave.key = dave_key.verifying_key().to_bytes();
    let (mut n, _) = follower_with(t0, vec![dave]);
    n.handle_command(
        t0,
        WallMillis(0),
        Command::Send {
            to: vec!["dave".into()],
            text: "the door code is 4711".into(),
        },
    );
    let out = drain(&mut n);
    let stores: Vec<(u8, DirectMessage)> = out
        .messages_to(addr(1))
        .into_iter()
        .filter_map(|m| match m {
            Message::Store { to, dm } => Some((*to, dm.clone())),
            _ => None,
        })
        .collect();
    let [(to, dm)] = &stores[..] else {
        panic!("one copy to keep: {stores:?}")
    };
    assert!(
        !dm.sealed.windows(4).any(|w| w == b"4711"),
        "the text travels in the clear"
    );
    let bob_key = own_identity("bob").verifying_key().to_bytes();
    let open = |reader: &SigningKey, recipient: &str, key: &PublicKey| {
        let header = seal::DirectHeader {
            origin: BOB,
            id: dm.id,
            from_name: "bob",
            to: &dm.to,
            recipient,
            recipient_key: key,
        };
        seal::open_direct(reader, &header, &bob_key, &dm.sealed)
    };
    let dave_public = dave_key.verifying_key().to_bytes();
    // The leader keeping it, or carol, cannot open it, whatever recipient they pose as.
    for (reader, name) in [(alice_key(), "alice"), (carol_key(), "carol")] {
        let own = reader.verifying_key().to_bytes();
        assert!(open(&reader, "dave", &dave_public).is_err());
        assert!(open(&reader, name, &own).is_err());
    }
    let opened = open(&dave_key, "dave", &dave_public).expect("dave opens it");
    assert_eq!(opened.text, "the door code is 4711");
    assert_eq!(dm.to.get(*to as usize).map(String::as_str), Some("dave"));
}

/// Bob started again from `saved` (alice and carol in his table besides), welcomed back
/// by alice with the welcome `edit` changes; what he sent and showed is drained.
pub(super) fn bob_restored_and_welcomed(
    t0: Instant,
    mut saved: Restored,
    edit: impl FnOnce(&mut Welcome),
) -> Node {
    saved.members = vec![member(LEADER, "alice", 1), member(CAROL, "carol", 3)];
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    cfg.join_timeout = Duration::from_secs(600);
    let mut n = Node::restore(cfg, BOB, t0, saved);
    drain(&mut n);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.members[1].stamp.lamport = Lamport(49);
    edit(&mut w);
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "{:?}",
        out.events
    );
    n
}

/// A private message shown before a restart is not shown again after it (the database
/// remembers it), even when its sender's node hands the same message over again; and a
/// copy replayed under another sender node is refused, its signature covering the node.
#[test]
fn a_private_message_shown_before_a_restart_is_not_shown_again() {
    let t0 = base_time();
    let saved = Restored {
        directs_shown: vec![(CAROL, DmId(1))],
        ..Restored::default()
    };
    let mut n = bob_restored_and_welcomed(t0, saved, |_| {});
    n.handle_datagram(t0, addr(3), &data(CAROL, 5, dm_from_carol("shown before")));
    let replayed = Message::Handover(QueuedDm {
        origin: CAROL,
        to: 0,
        dm: match dm_from_carol("shown before") {
            Message::Direct(dm) => dm,
            _ => unreachable!(),
        },
    });
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, replayed.clone()));
    assert!(directs(&drain(&mut n)).is_empty());
    // The same message claimed by another node of carol's: its seal names the first.
    let Message::Handover(mut moved) = replayed else {
        unreachable!()
    };
    moved.origin = NodeId(301);
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, Message::Handover(moved)));
    assert!(directs(&drain(&mut n)).is_empty());
    assert_eq!(n.stats().forged, 1);
    // A new message from carol is shown.
    let carol = (CAROL, "carol", &carol_key());
    let fresh = sealed_dm(carol, &["bob"], ("bob", &own_identity("bob")), 2, "new");
    n.handle_datagram(t0, addr(3), &data(CAROL, 6, Message::Direct(fresh)));
    assert_eq!(
        directs(&drain(&mut n)),
        [("carol".to_string(), "new".to_string())]
    );
}
