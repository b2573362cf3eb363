//! Fan-out off the leader in a room larger than its voters can be (see `room/relay.rs`):
//! the relay tree's layout, a learner taking committed copies from its relay, and a voter
//! passing what it shows on to its learners.

use super::*;
use crate::proto::node::room::{COMMITTED_TERM, MAX_VOTERS, RELAY_DEGREE, tree_children};

/// Members 4 to `last` (ports and ids from the number: `m4` at port 4, id 400, ...).
fn more_members(last: u16) -> Vec<Member> {
    (4..=last)
        .map(|k| member(NodeId(u64::from(k) * 100), &format!("m{k}"), k))
        .collect()
}

/// Bob welcomed into a room of alice, bob, carol and m4..=m11 (11 members), where the
/// members at positions `voting` of the welcome's table vote (alice is 0, bob 1, carol 2,
/// m4 3, ...).
pub(super) fn bob_in_large_room(t0: Instant, voting: &[usize]) -> Node {
    let (n, _) = follower_welcomed_as(t0, |w| {
        w.members.extend(more_members(11));
        w.voting = vec![0; w.members.len().div_ceil(8)];
        for &i in voting {
            w.voting[i / 8] |= 1 << (i % 8);
        }
    });
    n
}

/// What `n` shows when `from` (id, port) sends it, unasked, a committed copy of carol's
/// message #1: the numbers shown.
fn shows_unasked_copy(n: &mut Node, t0: Instant, (id, port): (NodeId, u16)) -> Vec<u64> {
    let e = ChatEntry {
        term: COMMITTED_TERM,
        ..entry(1, CAROL, "carol", 1)
    };
    n.handle_datagram(t0, addr(port), &data(id, 1, Message::Sequenced(e)));
    room_seqs(&drain(n))
}

/// Every learner has exactly one parent, no relay feeds more than [`RELAY_DEGREE`], and
/// a learner's parent is a root or a learner laid out before it (no cycle); the tree is
/// at most a few hops deep even for a room of hundreds.
#[test]
fn the_relay_tree_feeds_every_learner_once() {
    for roots in 1..=MAX_VOTERS - 1 {
        for learners in [1usize, 2, 5, 17, 18, 19, 60, 250] {
            let root_ids: Vec<NodeId> = (0..roots as u64).map(NodeId).collect();
            let learner_ids: Vec<NodeId> = (0..learners as u64).map(|k| NodeId(1000 + k)).collect();
            let mut parent_of: BTreeMap<NodeId, NodeId> = BTreeMap::new();
            for &p in root_ids.iter().chain(&learner_ids) {
                let children = tree_children(p, &root_ids, &learner_ids);
                assert!(children.len() <= RELAY_DEGREE, "{p} feeds {children:?}");
                for c in children {
                    assert!(learner_ids.contains(&c), "{p} feeds a voter {c}");
                    assert!(parent_of.insert(c, p).is_none(), "{c} is fed twice");
                }
            }
            assert_eq!(parent_of.len(), learners, "every learner is fed");
            // Hops from a root, following parents: never a cycle, and few.
            for &l in &learner_ids {
                let (mut at, mut hops) = (l, 0);
                while let Some(&p) = parent_of.get(&at) {
                    assert!(p < at || root_ids.contains(&p), "{p} is fed after {at}");
                    at = p;
                    hops += 1;
                }
                assert!(root_ids.contains(&at), "{l} hangs off no root");
                assert!(hops <= 5, "{l} is {hops} hops from a root");
            }
        }
    }
}

/// A learner takes a committed copy from the member that relays to it (carol, the first
/// voter by id), though it knew of no gap there (a member not fed by a relay takes such a
/// copy only when it asked).
#[test]
fn a_learner_takes_what_its_relay_passes_on() {
    let t0 = base_time();
    // Bob (position 1) does not vote: alice, carol, m4..m8 do.
    let mut n = bob_in_large_room(t0, &[0, 2, 3, 4, 5, 6, 7]);
    assert_eq!(n.voters().len(), MAX_VOTERS);
    let shown = shows_unasked_copy(&mut n, t0, (CAROL, 3));
    assert_eq!(shown, vec![1], "bob shows carol's relayed #1");
}

/// A learner takes no copy it did not ask for from a member other than its relay: the
/// seal proves the entry, not its number, so another member could put a genuine
/// message at any number (a fork) or repeat one it showed (hiding the next).
#[test]
fn a_learner_takes_no_unasked_copy_from_a_member_not_its_relay() {
    let t0 = base_time();
    let mut n = bob_in_large_room(t0, &[0, 2, 3, 4, 5, 6, 7]);
    // m9 (port 9) is a learner like bob; carol relays to bob.
    let shown = shows_unasked_copy(&mut n, t0, (NodeId(900), 9));
    assert!(shown.is_empty(), "nothing shown: {shown:?}");
}

/// The same copy, unasked, at a voter of a small room, is not taken: only a learner
/// takes committed copies it did not ask for.
#[test]
fn a_member_of_a_small_room_takes_no_copy_it_did_not_ask_for() {
    let t0 = base_time();
    let mut n = follower(t0);
    let shown = shows_unasked_copy(&mut n, t0, (CAROL, 3));
    assert!(shown.is_empty(), "nothing shown: {shown:?}");
}

/// A voter shows a committed entry from the leader and passes it on, as a committed
/// copy, to the learners the tree gives it, and to nobody else; a filler it does not
/// pass on.
#[test]
fn a_voter_passes_what_it_shows_on_to_its_learners() {
    let t0 = base_time();
    // Voters: alice (the leader), bob, carol, m4..m7; learners: m8..m11 (ids 800..1100).
    let mut n = bob_in_large_room(t0, &[0, 1, 2, 3, 4, 5, 6]);
    let e = entry(1, CAROL, "carol", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(e)));
    // A filler (as a take-over leaves): shown, not passed on (a member takes one from the
    // leader only, which sends it to every learner itself).
    let filler = ChatEntry::filler(Seq(2));
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, Message::Sequenced(filler)));
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, commit(2)));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), vec![1]);
    assert_eq!(n.room.next(), Seq(3), "the filler is taken in too");
    // Roots by id: bob (200), carol, m4..m7; learners m8..m11: bob feeds the first and
    // (six roots) no other.
    let roots: Vec<NodeId> = [200, 300, 400, 500, 600, 700].map(NodeId).to_vec();
    let learners: Vec<NodeId> = [800, 900, 1000, 1100].map(NodeId).to_vec();
    assert_eq!(tree_children(BOB, &roots, &learners), vec![NodeId(800)]);
    for port in 3..=11u16 {
        let relayed: Vec<ChatEntry> = out
            .messages_to(addr(port))
            .into_iter()
            .filter_map(|m| match m {
                Message::Sequenced(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        if port == 8 {
            assert_eq!(relayed.len(), 1, "m8 is passed #1");
            assert_eq!((relayed[0].seq, relayed[0].term), (Seq(1), COMMITTED_TERM));
        } else {
            assert!(relayed.is_empty(), "port {port} is passed {relayed:?}");
        }
    }
}
