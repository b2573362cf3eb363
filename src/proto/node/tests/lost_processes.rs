//! A node that knows none of the room's current processes (they restarted under new ids
//! while it was cut off, or it restarted itself) finds the room again, and keeps what it
//! needs to find it on disk meanwhile.

use super::restart_search::assert_saved_room_on_disk;
use super::terms::{all_packets, beat_naming, epoch, flushed};
use super::*;
use crate::proto::durable::{Restored, Write};

/// Alice's new process (she restarted while bob was cut off): same user, same identity
/// and address, a new id. Bob's table holds only her earlier one.
const ALICE_AGAIN: NodeId = NodeId(101);
/// A member admitted while bob was cut off.
const ERIN: NodeId = NodeId(500);

/// Alice's new process as a member entry: alice's identity, at her address.
fn alice_again() -> Member {
    let mut m = member(ALICE_AGAIN, "alice", 1);
    m.key = identity(LEADER.0 as u8).verifying_key().to_bytes();
    m
}

/// Whether `p` is a join (a request to be taken in) sent to `to`.
pub(super) fn is_join_to(to: SocketAddr) -> impl Fn(&(SocketAddr, Packet)) -> bool {
    move |(a, p)| {
        *a == to
            && matches!(
                p,
                Packet::Data {
                    msg: Message::Join { .. },
                    ..
                }
            )
    }
}

/// What `sent` holds, shortly: each data packet's destination port and kind.
fn kinds(sent: &[(SocketAddr, Packet)]) -> Vec<(u16, &'static str)> {
    sent.iter()
        .filter_map(|(a, p)| match p {
            Packet::Data { msg, .. } => {
                Some((a.port(), crate::proto::node::dispatch::msg_kind(msg)))
            }
            _ => None,
        })
        .collect()
}

/// Bob follows alice's term 0; carol, his neighbour, beats naming term 1 led by alice's
/// new process, which bob's table does not hold; what bob sent then.
fn carol_names_alice_again(n: &mut Node, t0: Instant) -> Vec<(SocketAddr, Packet)> {
    n.handle_datagram(
        t0,
        addr(3),
        &beat_naming(CAROL, epoch(1, ALICE_AGAIN), false),
    );
    flushed(n, t0)
}

/// Carol, a member bob knows, beats naming a leader of term 1 bob never heard of (alice
/// restarted under a new id while bob was cut off, and was elected). No table of bob's
/// gives its address: he asks carol to take him in, which she passes on to her leader.
/// (Before, bob looked the leader up in his table, found nothing, "named as a newer
/// leader, is not a member", and sent nothing: he followed the dead process for good.)
#[test]
fn a_neighbour_naming_a_leader_unknown_here_is_asked_to_take_this_node_in() {
    let t0 = base_time();
    let mut n = follower(t0);
    let sent = carol_names_alice_again(&mut n, t0);
    assert!(
        sent.iter().any(is_join_to(addr(3))),
        "bob asks carol to take him in: {:?}",
        kinds(&sent)
    );
    assert_eq!(
        n.epoch(),
        Some(epoch(0, LEADER)),
        "nothing followed on carol's word"
    );
}

/// A heartbeat from a process bob's table does not hold (alice's new one: it restarted,
/// and was elected in term 1, while bob was cut off and every member he knows restarted
/// too), naming itself leader of that newer term. While bob's leader leads (alice's old
/// process, online and shown to lead), the stranger's word moves nothing; once bob holds
/// his leader offline, he asks the stranger to take him in. (Before, a heartbeat from a
/// stranger was dropped whatever it said: bob, knowing no current process, never found
/// the room again.)
#[test]
fn a_newer_leader_unknown_here_beating_itself_is_asked_to_take_this_node_in() {
    let t0 = base_time();
    let mut n = follower(t0);
    let beat = beat_naming(ALICE_AGAIN, epoch(1, ALICE_AGAIN), false);
    // Alice's new process beats from her address, where bob's table holds her old one.
    let stranger = addr(1);
    n.handle_datagram(t0, stranger, &beat);
    let sent = flushed(&mut n, t0);
    assert!(
        !sent.iter().any(is_join_to(stranger)),
        "while alice leads, the stranger is not asked: {:?}",
        kinds(&sent)
    );
    // Bob comes to hold alice's old process offline (its own last word).
    let t1 = t0 + Duration::from_millis(10);
    n.handle_datagram(
        t1,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Offline, 60),
    );
    all_packets(&mut n);
    assert!(!n.leader_leads(), "bob holds his leader offline");
    let t2 = t1 + Duration::from_millis(10);
    n.handle_datagram(t2, stranger, &beat);
    let sent = flushed(&mut n, t2);
    assert!(
        sent.iter().any(is_join_to(stranger)),
        "bob asks the newer leader to take him in: {:?}",
        kinds(&sent)
    );
    assert_ne!(
        n.epoch(),
        Some(epoch(1, ALICE_AGAIN)),
        "nothing followed before its welcome"
    );
}

/// Bob asked carol to take him in (she named alice's new process leader of term 1), and
/// alice's new process, not in bob's table, welcomes him from her address, listing
/// herself, bob, carol and erin (admitted while bob was cut off). Bob follows her and
/// takes her table: she and erin are members here now. (Before, bob looked for the
/// leader's address in his table to take the welcome's members from, found none, and
/// took none: he followed a leader he could not reach, nor watch, nor ring.)
#[test]
fn a_welcome_from_a_leader_unknown_here_brings_its_table() {
    let t0 = base_time();
    let mut n = follower(t0);
    let sent = carol_names_alice_again(&mut n, t0);
    assert!(sent.iter().any(is_join_to(addr(3))), "bob asks carol");
    let mut bob = n.members().get(BOB).cloned().expect("own entry");
    bob.stamp = Stamp {
        lamport: Lamport(45),
        by: ALICE_AGAIN,
    };
    let w = Welcome {
        epoch: epoch(1, ALICE_AGAIN),
        members: vec![
            alice_again(),
            bob.clone(),
            member(CAROL, "carol", 3),
            member(ERIN, "erin", 5),
        ],
        ..welcome_for_bob(bob)
    };
    let welcome = data(ALICE_AGAIN, 1, Message::Welcome(w));
    let t1 = t0 + Duration::from_millis(50);
    n.handle_datagram(t1, addr(1), &welcome);
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(1, ALICE_AGAIN)), "bob follows her");
    assert_eq!(
        n.members().get(ALICE_AGAIN).map(|m| m.addr),
        Some(addr(1)),
        "the leader is in bob's table, at the address her welcome came from"
    );
    assert!(
        n.members().get(ERIN).is_some(),
        "erin, whom the welcome lists, is in bob's table"
    );
}

/// Alice saved bob and carol (online) as members and followed carol in term 2. Restarted
/// (her new process has id 77), she looks for the room through them.
fn alice_restarted(t0: Instant, persist: bool) -> Node {
    let mut me = member(LEADER, "alice", 1);
    me.presence = Presence::Offline;
    let saved = Restored {
        history: vec![entry(1, CAROL, "carol", 1)],
        members: vec![me, member(BOB, "bob", 2), member(CAROL, "carol", 3)],
        epoch: Some(epoch(2, CAROL)),
        voters: Some((Seq(0), vec!["alice".into(), "bob".into(), "carol".into()])),
        ..Restored::default()
    };
    let mut cfg = NodeConfig::new("alice", addr(1), None);
    cfg.persist = persist;
    Node::restore(cfg, NodeId(77), t0, saved)
}

/// The restarted alice asks bob first; the room refuses her, for now, with
/// [`Refusal::StillOnline`] (her earlier process still held online there) and again to
/// each join she sends, until her join's deadline makes the refusal final. Her saved
/// members and leader stay on disk: the last table she writes still holds bob and
/// carol, and carol's term 2. (Before, the final refusal dropped them: the next write
/// held alice alone and no leader, and a later start from that disk led a room of one
/// for good.)
#[test]
fn a_final_refusal_of_a_restarted_node_keeps_its_saved_members_on_disk() {
    let t0 = base_time();
    let mut n = alice_restarted(t0, true);
    let mut rooms = Vec::new();
    let mut failed = false;
    let mut refusals = 0;
    let mut now = t0;
    while now < t0 + Duration::from_secs(60) && !failed {
        while let Some(w) = n.poll_write() {
            if let Write::Room { members, epoch, .. } = w {
                rooms.push((members, epoch));
            }
        }
        let out = drain(&mut n);
        failed = out.events.iter().any(|e| {
            matches!(
                e,
                Event::JoinFailed(JoinError::Refused(Refusal::StillOnline))
            )
        });
        for (to, p) in &out.sent {
            if let Packet::Data {
                id,
                msg: Message::Join { .. },
            } = p
            {
                refusals += 1;
                let acked = Packet::Ack(Ack {
                    of: NodeId(77),
                    stream: id.stream(),
                    upto: 0,
                    ranges: vec![(id.seq(), id.seq())],
                });
                let refused = Packet::Data {
                    id: MsgId(refusals),
                    msg: Message::JoinRefused {
                        reason: Refusal::StillOnline,
                    },
                };
                let port = to.port();
                let from = NodeId(u64::from(port) * 100);
                n.handle_outside_datagram(now, *to, &datagram(from, vec![acked, refused]));
            }
        }
        let Some(next) = n.poll_timeout() else { break };
        now = next.max(now);
        n.handle_timeout(now);
    }
    assert!(failed, "alice's join failed for good ({refusals} refusals)");
    assert_saved_room_on_disk(&mut n, rooms);
}

/// The restarted alice hears from none of her saved members, and carries the room on.
/// Bob and carol, online when she saved them, are offline in her table now, under her
/// own stamp, newer than the saved one. (Before, they were marked offline under their
/// saved stamps, bob's and carol's own: a second version of the very entries the others
/// hold online, which no merge tells apart, and their subjects never refute.)
#[test]
fn carrying_the_room_on_marks_saved_members_offline_under_its_own_stamp() {
    let t0 = base_time();
    let mut n = alice_restarted(t0, false);
    let mut carried = false;
    while let Some(now) = n.poll_timeout() {
        if now > t0 + Duration::from_secs(120) {
            break;
        }
        n.handle_timeout(now);
        let out = drain(&mut n);
        if out.events.iter().any(|e| {
            matches!(
                e,
                Event::Joined {
                    is_leader: true,
                    ..
                }
            )
        }) {
            carried = true;
            break;
        }
    }
    assert!(carried, "alice carries the room on");
    for id in [BOB, CAROL] {
        let m = n.members().get(id).expect("a saved member is in the table");
        assert_eq!(m.presence, Presence::Offline, "{} is offline", m.name);
        assert_eq!(
            m.stamp.by,
            NodeId(77),
            "{} is offline on alice's word: {:?}",
            m.name,
            m.stamp
        );
        assert!(
            m.stamp.lamport > Lamport(1),
            "{}'s stamp is newer than the saved one: {:?}",
            m.name,
            m.stamp
        );
    }
}

/// Carol's new process (id 301, same identity) at carol's address.
const CAROL_AGAIN: NodeId = NodeId(301);

/// Bob holds carol's earlier process online under her own word (stamp 60), goes offline
/// (`dereg`) and comes back (`reg`); meanwhile carol restarted. Alice's welcome lists
/// carol's earlier process offline under an older stamp of alice's (40), and her new one
/// online at the same address. Bob drops the earlier one: one process runs at an
/// address. (Before, bob kept it online, his stamp being newer than alice's: a dead
/// process in his ring that nobody else watched any more, and nobody would tell him of.)
#[test]
fn a_welcome_listing_a_process_online_drops_an_earlier_one_at_its_address() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(3),
        &member_says((CAROL, "carol", 3), Presence::Online, 60),
    );
    drain(&mut n);
    let held = n.members().get(CAROL).map(|m| (m.presence, m.stamp));
    assert_eq!(
        held,
        Some((
            Presence::Online,
            Stamp {
                lamport: Lamport(60),
                by: CAROL
            }
        )),
        "bob holds carol online on her word"
    );
    // Bob goes offline: his word that he leaves reaches alice and carol.
    let t1 = bob_deregs_and_regs_through_alice(&mut n, t0);
    let welcomer = (LEADER, "alice", 1);
    welcomed_back_past_a_restart(&mut n, t1, welcomer, (CAROL, CAROL_AGAIN, "carol", 3));
}

/// Bob, back from `dereg` at `t1`, is welcomed by `welcomer` (id, name, port: the leader
/// of term 0 if alice, else of term 1), whose table lists `restarted`'s earlier process
/// (earlier id) offline under an older stamp than bob's and its new one (new id) online
/// at the same address (port). Bob drops the earlier one: one process runs at an address.
fn welcomed_back_past_a_restart(
    n: &mut Node,
    t1: Instant,
    (leader, leader_name, leader_port): (NodeId, &str, u16),
    (earlier_id, new_id, name, port): (NodeId, NodeId, &str, u16),
) {
    let mut earlier = member(earlier_id, name, port);
    earlier.presence = Presence::Offline;
    earlier.stamp = Stamp {
        lamport: Lamport(40),
        by: leader,
    };
    let mut again = member(new_id, name, port);
    again.key = identity(earlier_id.0 as u8).verifying_key().to_bytes();
    again.stamp = Stamp {
        lamport: Lamport(45),
        by: leader,
    };
    let mut w = welcome_for_bob(bob_as_written_by_leader(n, 48));
    if leader != LEADER {
        w.epoch = Epoch { term: 1, leader };
    }
    w.members = vec![
        member(leader, leader_name, leader_port),
        w.members[1].clone(),
        earlier,
        again,
    ];
    let welcome = data(leader, 40, Message::Welcome(w));
    n.handle_datagram(t1, addr(leader_port), &welcome);
    let out = drain(n);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "bob is back: {:?}",
        out.events
    );
    assert!(
        n.members().get(new_id).is_some(),
        "{name}'s new process is in bob's table"
    );
    assert_eq!(
        n.members().get(earlier_id).map(|m| (m.presence, m.stamp)),
        None,
        "{name}'s earlier process is dropped"
    );
}

/// As [`a_welcome_listing_a_process_online_drops_an_earlier_one_at_its_address`], where
/// the earlier process is the leader bob followed before he went offline: alice crashed
/// and restarted meanwhile, and carol, leader of a newer term, welcomes bob back. The
/// leader spared is the one welcoming him; before, bob spared alice's earlier process as
/// his leader and held it online for good (`sim_chaos` majority seed 3663).
#[test]
fn a_welcome_drops_the_earlier_process_of_the_leader_followed_before() {
    let t0 = base_time();
    let mut n = follower(t0);
    n.handle_datagram(
        t0,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Online, 60),
    );
    drain(&mut n);
    let t1 = bob_deregs_and_regs_through_alice(&mut n, t0);
    let welcomer = (CAROL, "carol", 3);
    welcomed_back_past_a_restart(&mut n, t1, welcomer, (LEADER, ALICE_AGAIN, "alice", 1));
}
