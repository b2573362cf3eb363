//! A leader's voucher for a member it let in (`Vouched`, see `life/voucher.rs`): the
//! leader sends it to the newcomer; a member that never heard of the newcomer takes its
//! entry on the voucher alone, and only on one its own leader signed for its own epoch.

use super::*;

/// Dan, a member alice let in whose entry never reached bob (port 4).
const DAN: NodeId = NodeId(400);

/// The epoch bob follows (see [`welcome_for_bob`]).
const EPOCH: Epoch = Epoch {
    term: 0,
    leader: LEADER,
};

/// Dan's entry as alice wrote it.
fn dan() -> Member {
    let mut m = member(DAN, "dan", 4);
    m.stamp = Stamp {
        lamport: Lamport(20),
        by: LEADER,
    };
    m
}

/// A voucher for `entry` of `epoch` signed by `signer`.
fn voucher(entry: Member, epoch: Epoch, signer: &SigningKey) -> Voucher {
    let signature = signer
        .sign(&voucher_message(&entry, &epoch))
        .to_bytes()
        .to_vec();
    Voucher {
        entry,
        epoch,
        signature,
    }
}

/// Alice's voucher for dan: alice's key is `identity(LEADER)` in bob's table.
fn alices_voucher_for_dan() -> Voucher {
    voucher(dan(), EPOCH, &identity(LEADER.0 as u8))
}

/// Bob, a follower, once alice (his predecessor, the leader) went silent long enough for
/// him to cut her out; and when that was.
fn bob_without_alice(t0: Instant) -> (Node, Instant) {
    let mut n = follower(t0);
    let at = alice_goes_silent(&mut n, t0);
    (n, at)
}

/// Runs bob from `t0` with no word from alice until he cut her out; returns when.
fn alice_goes_silent(n: &mut Node, t0: Instant) -> Instant {
    for k in 1..=100u64 {
        let at = t0 + Duration::from_millis(100 * k);
        n.handle_timeout(at);
        drain(n);
        if !n.members().is_online(LEADER) {
            return at;
        }
    }
    panic!("bob never cut alice out");
}

/// `sender` at `port` shows bob voucher `v`, outside a session, as message `id`.
fn shown(n: &mut Node, at: Instant, (sender, port): (NodeId, u16), id: u64, v: Voucher) -> Out {
    n.handle_outside_datagram(at, addr(port), &data(sender, id, Message::Vouched(v)));
    drain(n)
}

#[test]
fn a_member_shown_its_leaders_voucher_is_taken_in() {
    let (mut n, t0) = bob_without_alice(base_time());
    assert!(n.members().get(DAN).is_none());
    let out = shown(&mut n, t0, (DAN, 4), 1, alices_voucher_for_dan());
    let taken = n.members().get(DAN).expect("dan's entry taken");
    assert_eq!(taken.presence, Presence::Online);
    assert_eq!(taken.addr, addr(4));
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::MemberOnline { name } if name == "dan")),
        "the user hears dan is in: {:?}",
        out.events
    );
    assert!(!out.acks_to(addr(4)).is_empty(), "the voucher is acked");
}

/// Every voucher bob must not take: signed by another key, of another epoch, for
/// another node than its sender, for another address than the one it came from. None
/// adds an entry.
#[test]
fn a_voucher_that_does_not_check_adds_nobody() {
    let other_epoch = Epoch {
        term: 1,
        leader: LEADER,
    };
    let mut elsewhere = dan();
    elsewhere.addr = addr(9);
    let cases: Vec<(&str, NodeId, u16, Voucher)> = vec![
        (
            "signed by dan",
            DAN,
            4,
            voucher(dan(), EPOCH, &identity(DAN.0 as u8)),
        ),
        (
            "signed by carol, who does not lead",
            DAN,
            4,
            voucher(
                dan(),
                Epoch {
                    term: 0,
                    leader: CAROL,
                },
                &identity(CAROL.0 as u8),
            ),
        ),
        (
            "of an epoch bob does not follow",
            DAN,
            4,
            voucher(dan(), other_epoch, &identity(LEADER.0 as u8)),
        ),
        (
            "shown by another node",
            NodeId(500),
            4,
            alices_voucher_for_dan(),
        ),
        (
            "shown from another address",
            DAN,
            5,
            alices_voucher_for_dan(),
        ),
        (
            "for an entry elsewhere",
            DAN,
            4,
            voucher(elsewhere, EPOCH, &identity(LEADER.0 as u8)),
        ),
    ];
    for (why, sender, port, v) in cases {
        let (mut n, t0) = bob_without_alice(base_time());
        shown(&mut n, t0, (sender, port), 1, v);
        assert!(n.members().get(DAN).is_none(), "{why}: dan taken in");
    }
}

/// An address whose voucher did not check gets none checked for a second: the good one
/// after a forged one is dropped (its member shows it again at its next pre-vote), and taken a second later.
#[test]
fn a_forged_voucher_closes_its_address_for_a_second() {
    let (mut n, t0) = bob_without_alice(base_time());
    let forged = voucher(dan(), EPOCH, &identity(DAN.0 as u8));
    shown(&mut n, t0, (DAN, 4), 1, forged);
    let dropped = n.stats().dropped;
    shown(&mut n, t0, (DAN, 4), 2, alices_voucher_for_dan());
    assert!(n.members().get(DAN).is_none(), "checked within the second");
    assert_eq!(
        n.stats().dropped,
        dropped + 1,
        "the second is a counted drop"
    );
    let later = t0 + Duration::from_millis(1001);
    shown(&mut n, later, (DAN, 4), 3, alices_voucher_for_dan());
    assert!(n.members().get(DAN).is_some(), "taken a second later");
}

/// The leader vouches for the newcomer it admits once the newcomer says it holds its
/// welcome (before, the newcomer would leave it unacked): to the newcomer, with the
/// newcomer's entry and its own epoch, signed with its own key.
#[test]
fn the_leader_sends_the_newcomer_its_voucher() {
    let t0 = base_time();
    let mut n = leader(t0);
    let out = join_bob(&mut n, t0);
    assert!(
        !out.messages_to(addr(2))
            .iter()
            .any(|m| matches!(m, Message::Vouched(_))),
        "no voucher with the welcome"
    );
    n.handle_datagram(t0, addr(2), &data(BOB, 90, Message::WelcomeTaken));
    let out = drain(&mut n);
    let vouchers: Vec<&Voucher> = out
        .messages_to(addr(2))
        .into_iter()
        .filter_map(|m| match m {
            Message::Vouched(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(vouchers.len(), 1, "one voucher for bob");
    let v = vouchers[0];
    assert_eq!(v.entry.id, BOB);
    assert_eq!(Some(v.epoch), n.epoch());
    assert_eq!(Some(&v.entry), n.members().get(BOB));
    assert!(signed_by_alice(v));
}

/// Whether `v` carries alice's signature over its entry and epoch.
fn signed_by_alice(v: &Voucher) -> bool {
    let key =
        VerifyingKey::from_bytes(&own_identity("alice").verifying_key().to_bytes()).expect("a key");
    let sig = Signature::from_bytes(&v.signature.clone().try_into().expect("64 bytes"));
    key.verify_strict(&voucher_message(&v.entry, &v.epoch), &sig)
        .is_ok()
}

/// Every part of a welcome carries the leader's voucher for the newcomer, signed for its
/// epoch: the newcomer holds it before it can ack anything as a member, so before its
/// addition to the voters can commit on its ack (`sim_failover` seed 1620379: the
/// addition committed while the voucher sent later was on its way, the leader died, and
/// the survivor that never heard of the newcomer dropped all it said, for good).
#[test]
fn every_part_of_a_welcome_carries_the_newcomers_voucher() {
    let t0 = base_time();
    let mut n = leader(t0);
    let out = join_bob(&mut n, t0);
    let parts: Vec<&Welcome> = out
        .messages_to(addr(2))
        .into_iter()
        .filter_map(|m| match m {
            Message::Welcome(w) => Some(w),
            _ => None,
        })
        .collect();
    assert!(!parts.is_empty(), "bob is welcomed");
    for w in parts {
        let v = w.voucher.as_ref().expect("a voucher in every part");
        assert_eq!(Some(&v.entry), n.members().get(BOB));
        assert_eq!(Some(v.epoch), n.epoch());
        assert!(signed_by_alice(v), "signed by alice");
    }
}

/// Bob keeps the voucher his leader sends him. A member of her epoch tells him it does not
/// know him (a heartbeat marked `unknown`) while alice leads for him: he probes alice
/// first. If she answers (and beats on), nothing more; if she stays silent for a suspicion bound, he
/// shows the member his voucher and asks the voters himself. A voucher from carol, who
/// does not lead, he does not keep.
#[test]
fn a_kept_voucher_is_shown_once_the_leader_is_gone_for_us_too() {
    for (from, port, alice_answers, shown_expected) in [
        (LEADER, 1, false, true),
        (LEADER, 1, true, false),
        (CAROL, 3, false, false),
    ] {
        let t0 = base_time();
        let mut n = follower(t0);
        let bob = n.members().get(BOB).cloned().expect("own entry");
        let v = voucher(bob, EPOCH, &identity(LEADER.0 as u8));
        n.handle_datagram(t0, addr(port), &data(from, 7, Message::Vouched(v.clone())));
        // A commit notice of her term: alice shows she leads.
        n.handle_datagram(t0, addr(1), &data(LEADER, 8, commit(0)));
        drain(&mut n);
        let unknown = Packet::Heartbeat(Heartbeat {
            epoch: Some(EPOCH),
            delivered: Seq(0),
            digest: 0,
            probe: false,
            unknown: true,
        });
        n.handle_datagram(t0, addr(3), &datagram(CAROL, vec![unknown]));
        let mut showed = false;
        let mut asked = false;
        for k in 1..=20u64 {
            let at = t0 + Duration::from_millis(100 * k);
            if alice_answers {
                let beat = Packet::Heartbeat(Heartbeat {
                    epoch: Some(EPOCH),
                    delivered: Seq(0),
                    digest: 0,
                    probe: false,
                    unknown: false,
                });
                n.handle_datagram(at, addr(1), &datagram(LEADER, vec![beat]));
            }
            n.handle_timeout(at);
            let out = drain(&mut n);
            showed |= out
                .messages_to(addr(3))
                .iter()
                .any(|m| matches!(m, Message::Vouched(s) if *s == v));
            asked |= out
                .messages_to(addr(3))
                .iter()
                .any(|m| matches!(m, Message::PreVote { .. }));
            if at < t0 + n.ctx.cfg.suspect_after() {
                assert!(!showed, "shown before the probe's time was up ({from})");
            }
        }
        assert_eq!(
            showed, shown_expected,
            "voucher from {from}, alice answers: {alice_answers}"
        );
        if shown_expected {
            assert!(asked, "bob asks the voters once alice is silent");
        }
    }
}

#[test]
fn no_voucher_is_taken_while_its_leader_is_here() {
    let t0 = base_time();
    let mut n = follower(t0);
    shown(&mut n, t0, (DAN, 4), 1, alices_voucher_for_dan());
    assert!(n.members().get(DAN).is_none());
}

/// A late copy of the voucher of dan's earlier process (400, stamp 20) does not put it
/// back in place of the process that replaced it at that address (401, stamp 30).
#[test]
fn a_stale_voucher_of_an_earlier_process_does_not_replace_the_new_one() {
    let t0 = base_time();
    let mut n = follower(t0);
    let mut new = dan();
    new.id = NodeId(401);
    new.stamp = Stamp {
        lamport: Lamport(30),
        by: LEADER,
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 10, Message::Members(vec![new])));
    drain(&mut n);
    assert!(n.members().get(NodeId(401)).is_some(), "alice's word taken");
    let t1 = alice_goes_silent(&mut n, t0);
    shown(&mut n, t1, (DAN, 4), 1, alices_voucher_for_dan());
    assert!(
        n.members().get(NodeId(401)).is_some(),
        "the new process stays"
    );
    assert!(
        n.members().get(DAN).is_none(),
        "the earlier one is not back"
    );
}

/// A member alice dropped (`Forget`) before she went does not come back on her older
/// voucher.
#[test]
fn a_voucher_does_not_bring_back_a_member_dropped_since() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 10, Message::Members(vec![dan()])),
    );
    let mut gone = dan();
    gone.presence = Presence::Offline;
    gone.stamp = Stamp {
        lamport: Lamport(25),
        by: LEADER,
    };
    let forget = Message::Forget(vec![(DAN, gone.stamp)]);
    n.handle_datagram(t0, addr(1), &data(LEADER, 11, Message::Members(vec![gone])));
    n.handle_datagram(t0, addr(1), &data(LEADER, 12, forget));
    drain(&mut n);
    assert!(n.members().get(DAN).is_none(), "dropped on alice's word");
    let t1 = alice_goes_silent(&mut n, t0);
    shown(&mut n, t1, (DAN, 4), 1, alices_voucher_for_dan());
    assert!(n.members().get(DAN).is_none(), "dan is not back");
}
