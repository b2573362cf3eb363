//! Two leaders of one term: one that won its round alone and never sequenced there gives
//! way to the other, which took it in, and so do the members that followed it, and a
//! member whose leader of the term is gone and left it nothing of that term (see
//! `Node::yields_term_to`).

use super::lost_processes::is_join_to;
use super::terms::{beat_naming, epoch, flushed};
use super::*;

/// Whether `sent` holds a join to `to`.
fn joins(sent: &[(SocketAddr, Packet)], to: SocketAddr) -> bool {
    sent.iter().any(is_join_to(to))
}

/// Carol's welcome for bob as leader of term 0 (the term bob follows alice in).
fn carols_welcome(n: &Node) -> Vec<u8> {
    let mut w = welcome_for_bob(bob_as_written_by_leader(n, 40));
    w.epoch = epoch(0, CAROL);
    data(CAROL, 9000, Message::Welcome(w))
}

/// Bob follows alice in term 0. Carol, another leader of term 0 (she won it while alice
/// won it alone), says so in her beats: not our leader's word, nothing moves. Alice's own
/// beat naming carol's epoch shows she gave way: bob asks carol to take him in, and
/// follows her welcome in the same term. Before, bob followed alice, who led nothing, for
/// good (`sim_chaos` majority seed 693: ann gave way to eve, ben went on following ann).
#[test]
fn a_follower_whose_leader_gave_way_follows_the_other_leader_of_the_term() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(3), &beat_naming(CAROL, epoch(0, CAROL), false));
    assert!(!joins(&flushed(&mut n, t0), addr(3)), "not on carol's word");
    let t1 = t0 + Duration::from_millis(100);
    n.handle_datagram(t1, addr(1), &beat_naming(LEADER, epoch(0, CAROL), false));
    assert!(
        joins(&flushed(&mut n, t1), addr(3)),
        "alice gave way: bob asks carol to take him in"
    );
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)), "nothing followed yet");
    let t2 = t1 + Duration::from_millis(100);
    let welcome = carols_welcome(&n);
    n.handle_datagram(t2, addr(3), &welcome);
    drain(&mut n);
    assert_eq!(
        n.epoch(),
        Some(epoch(0, CAROL)),
        "carol's welcome is followed"
    );
}

/// The control: a welcome from another leader of bob's term, with his leader not known
/// to have given way, is not followed (one leader per term).
#[test]
fn a_welcome_of_the_same_term_is_not_followed_on_its_own() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(t0, addr(3), &beat_naming(CAROL, epoch(0, CAROL), false));
    drain(&mut n);
    let welcome = carols_welcome(&n);
    n.handle_datagram(t0, addr(3), &welcome);
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(0, LEADER)));
}

/// The leader's side: bob wins round 2 while the others are out of reach, so he
/// sequences nothing there; carol, another winner of round 2, takes him in, and he gives
/// way. He tells every member at once, naming carol's epoch: one he let in meanwhile
/// follows him, and his beats reach only his ring successor (`sim_chaos` majority seed
/// 1881168: cat followed ann, who had given way to eve, for good).
#[test]
fn a_leader_giving_way_tells_every_member() {
    use super::prevote::{bob_asking_the_voters, grant_prevotes};
    let (mut n, at, sent) = bob_asking_the_voters(base_time());
    let sent = grant_prevotes(&mut n, at, &sent);
    let token = sent
        .iter()
        .find_map(|(_, p)| match p {
            Packet::Data {
                msg: msg @ Message::Election { term: 2, .. },
                ..
            } => Some(msg.clone()),
            _ => None,
        })
        .expect("bob starts round 2");
    let t1 = at + Duration::from_millis(50);
    n.handle_datagram(t1, addr(1), &data(LEADER, 7000, token));
    flushed(&mut n, t1);
    assert_eq!(n.epoch(), Some(epoch(2, BOB)), "bob's token came back");
    let t2 = t1 + Duration::from_millis(10);
    // Nobody answers his take-over; he knocks at carol's (as `ring/prevote.rs` does
    // after three unanswered asks).
    n.resync_with(t2, addr(3));
    assert!(joins(&flushed(&mut n, t2), addr(3)), "bob asks carol");
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 40));
    w.epoch = epoch(2, CAROL);
    n.handle_datagram(t2, addr(3), &data(CAROL, 9000, Message::Welcome(w)));
    let sent = flushed(&mut n, t2);
    assert_eq!(n.epoch(), Some(epoch(2, CAROL)), "bob gave way");
    for to in [addr(1), addr(4)] {
        assert!(
            sent.iter().any(|(a, p)| *a == to
                && matches!(p, Packet::Heartbeat(hb) if hb.epoch == Some(epoch(2, CAROL)))),
            "{to} is told bob follows carol: {sent:?}"
        );
    }
}

/// What bob took part in of alice's term 0 before she went.
#[derive(Clone, Copy, Debug)]
enum PartInTerm {
    Nothing,
    /// He holds a proposal of hers.
    Holding,
    /// He answered her sync request (her take-over may count it).
    Synced,
}

/// Bob follows alice in term 0, took `part` in her term, and holds her offline (she
/// said so). He asks carol to take him in (as `ring/prevote.rs` does after unanswered
/// asks), and carol welcomes him as leader of term 0. Returns whom he follows then.
fn bob_welcomed_by_carol_with_alice_offline(part: PartInTerm) -> Option<Epoch> {
    let t0 = base_time();
    let mut n = follower(t0);
    match part {
        PartInTerm::Nothing => {}
        PartInTerm::Holding => {
            let mut e = entry(1, LEADER, "alice", 1);
            e.term = 0;
            assert!(n.hold(e));
        }
        PartInTerm::Synced => {
            let ask = Message::SyncRequest {
                epoch: epoch(0, LEADER),
                from: Seq(1),
            };
            n.handle_datagram(t0, addr(1), &data(LEADER, 800, ask));
            let answered = flushed(&mut n, t0).iter().any(|(a, p)| {
                *a == addr(1)
                    && matches!(
                        p,
                        Packet::Data {
                            msg: Message::SyncReply { .. },
                            ..
                        }
                    )
            });
            assert!(answered, "bob answers alice's sync request");
        }
    }
    n.handle_datagram(
        t0,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Offline, 1000),
    );
    drain(&mut n);
    assert!(!n.ring.members().is_online(LEADER), "alice is offline here");
    let t1 = t0 + Duration::from_millis(100);
    n.resync_with(t1, addr(3));
    assert!(joins(&flushed(&mut n, t1), addr(3)), "bob asks carol");
    let welcome = carols_welcome(&n);
    n.handle_datagram(t1, addr(3), &welcome);
    drain(&mut n);
    n.epoch()
}

/// A follower whose leader of the term is offline here, and that took no part in that
/// term, follows the other leader of the term that takes it in: it never acked a copy
/// in it, nor answered for it. Before, it refused that leader for good, while the
/// voters, following it, refused the rounds that would move it on (`sim_chaos` majority
/// seed 19419). Holding a proposal of its leader's term, or having answered its sync
/// request, it follows no other leader of that term: a member that answered both
/// leaders' sync requests let both take over, and one number got two entries
/// (`sim_chaos` minority seed 6222).
#[test]
fn a_follower_of_a_leader_gone_in_its_term_follows_the_leader_that_takes_it_in() {
    for (part, follows) in [
        (PartInTerm::Nothing, CAROL),
        (PartInTerm::Holding, LEADER),
        (PartInTerm::Synced, LEADER),
    ] {
        assert_eq!(
            bob_welcomed_by_carol_with_alice_offline(part),
            Some(epoch(0, follows)),
            "bob took part in alice's term: {part:?}"
        );
    }
}
