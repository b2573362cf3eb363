//! A restarted node looking for its room (see `life/restart.rs`): what it saved stays on
//! disk until it is in, so a crash during the search loses neither the members to ask
//! nor the leader it followed.

use super::*;
use crate::proto::durable::{Restored, Write};

/// Alice saved bob and carol as members and followed carol in term 2; restarted, she
/// asks them, and nobody has answered yet.
fn alice_searching(t0: Instant) -> Node {
    let mut me = member(LEADER, "alice", 1);
    me.presence = Presence::Offline;
    let saved = Restored {
        history: vec![entry(1, CAROL, "carol", 1)],
        members: vec![me, member(BOB, "bob", 2), member(CAROL, "carol", 3)],
        epoch: Some(Epoch {
            term: 2,
            leader: CAROL,
        }),
        voters: Some((Seq(0), vec!["alice".into(), "bob".into(), "carol".into()])),
        ..Restored::default()
    };
    let mut cfg = NodeConfig::new("alice", addr(1), None);
    cfg.persist = true;
    let mut n = Node::restore(cfg, NodeId(77), t0, saved);
    n.handle_timeout(t0 + Duration::from_millis(100));
    n
}

/// Before, the first write after the restart held alice's table as it was in memory (her
/// new process alone) and no leader: a crash before she found the room left a disk from
/// which the next start knew nobody to ask, carried on alone and waited for good (the
/// `sim_chaos` runs, seeds 0 and 6, among others).
#[test]
fn a_node_looking_for_its_room_keeps_its_saved_members_and_leader_on_disk() {
    let t0 = base_time();
    let mut n = alice_searching(t0);
    drain(&mut n);
    assert_saved_room_on_disk(&mut n, Vec::new());
}

/// The last member table and leader `n` writes (after `rooms`, written before) hold bob,
/// carol and carol's term 2, as alice saved them.
pub(super) fn assert_saved_room_on_disk(
    n: &mut Node,
    mut rooms: Vec<(Vec<Member>, Option<Epoch>)>,
) {
    while let Some(w) = n.poll_write() {
        if let Write::Room { members, epoch, .. } = w {
            rooms.push((members, epoch));
        }
    }
    let Some((members, epoch)) = rooms.last() else {
        panic!("the restarted node writes its table")
    };
    let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert!(
        names.contains("bob") && names.contains("carol"),
        "bob and carol stay on disk: {names:?}"
    );
    assert_eq!(
        epoch.map(|e| (e.term, e.leader)),
        Some((2, CAROL)),
        "the leader followed stays on disk"
    );
}

/// Bob restarted holding the voters {bob, carol} as of #9 (alice removed there) and
/// carol's term 3. Alice, still leading term 0 from an old disk, lets him in with the
/// voters as of #2 (alice, bob, carol). Bob keeps his: the changes up to #9 are committed
/// and would not be applied again, so taking hers would count majorities in a
/// configuration the room left (in the `sim_chaos` runs, bob then won a round with
/// alice's help and numbered his messages where the room had committed others: a fork).
#[test]
fn a_welcome_naming_older_voters_than_held_leaves_them_as_they_are() {
    let t0 = base_time();
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    cfg.join_timeout = Duration::from_secs(600);
    let saved = Restored {
        members: vec![member(LEADER, "alice", 1), member(CAROL, "carol", 3)],
        epoch: Some(Epoch {
            term: 3,
            leader: CAROL,
        }),
        voters: Some((Seq(9), vec!["bob".into(), "carol".into()])),
        ..Restored::default()
    };
    let mut n = Node::restore(cfg, BOB, t0, saved);
    drain(&mut n);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    w.voting = vec![0b111];
    w.voters_at = Seq(2);
    n.handle_datagram(t0, addr(1), &data(LEADER, 1, Message::Welcome(w)));
    let out = drain(&mut n);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "bob takes the welcome: {:?}",
        out.events
    );
    let (voters, at) = n.room.committed_voters();
    assert_eq!(
        (voters.into_iter().collect::<Vec<_>>(), at),
        (vec!["bob".to_string(), "carol".to_string()], Seq(9)),
        "bob's voters as of #9 stay"
    );
}
