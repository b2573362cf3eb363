//! Relays at the leader (see `room/relay.rs`): the fillers it sends learners itself, the
//! learners it feeds while no other voter is online, and its own numbers, which no
//! member's copy replaces.

use super::*;
use crate::proto::node::room::{COMMITTED_TERM, MAX_VOTERS};

/// The leader takes no other member's copy of a number (outside a take-over): a
/// heartbeat claiming the room delivered further, then carol's genuine message
/// relabelled with the number the leader proposed bob's at, change nothing there (it
/// would have replaced the proposal, a higher term, and been shown at that number while
/// the voters commit bob's).
#[test]
fn no_member_can_put_a_message_under_the_leaders_number() {
    let t0 = base_time();
    let mut n = super::commit::leader_of_five(t0);
    let s = n.room.next();
    // Bob's message, proposed at s (held by the leader, sent to the four voters).
    n.handle_datagram(t0, addr(2), &data(BOB, 50, Message::Submit(submit(1))));
    let out = drain(&mut n);
    let proposed: Vec<ChatEntry> = out
        .messages_to(addr(3))
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(proposed.len(), 1);
    assert_eq!((proposed[0].seq, proposed[0].text.as_str()), (s, "s1"));
    let proposed_ids: Vec<(u16, MsgId)> = [2u16, 3, 4]
        .into_iter()
        .flat_map(|p| {
            out.ids_to(addr(p), |m| matches!(m, Message::Sequenced(_)))
                .into_iter()
                .map(move |id| (p, id))
        })
        .collect();
    // Carol says the room delivered up to s + 5, then sends her own genuine message at s.
    let hb = Heartbeat {
        epoch: n.epoch(),
        digest: n.members().digest(),
        delivered: Seq(s.0 + 5),
        probe: false,
        unknown: false,
    };
    n.handle_datagram(t0, addr(3), &datagram(CAROL, vec![Packet::Heartbeat(hb)]));
    drain(&mut n);
    let mut e = ChatEntry {
        term: COMMITTED_TERM,
        ..entry(s.0 + 3, CAROL, "carol", 1)
    };
    e.seq = s;
    n.handle_datagram(t0, addr(3), &data(CAROL, 51, Message::Sequenced(e)));
    let out = drain(&mut n);
    let shown: Vec<(u64, String)> = out
        .events
        .iter()
        .filter_map(|ev| match ev {
            Event::Room { entry, .. } => Some((entry.seq.0, entry.text.clone())),
            _ => None,
        })
        .collect();
    assert!(shown.is_empty(), "carol's copy is not taken: {shown:?}");
    // The voters ack bob's s1: the leader shows it at #s.
    let mut after = Vec::new();
    for (id, port) in [(BOB, 2), (CAROL, 3), (NodeId(400), 4)] {
        let ids = out_proposals_to(&proposed_ids, port);
        n.handle_datagram(t0, addr(port), &ack_of(n.id(), id, &ids));
        for ev in drain(&mut n).events {
            if let Event::Room { entry, .. } = ev {
                after.push((entry.seq.0, entry.text));
            }
        }
    }
    assert_eq!(after, vec![(s.0, "s1".to_string())]);
}

fn out_proposals_to(ids: &[(u16, MsgId)], port: u16) -> Vec<MsgId> {
    ids.iter()
        .filter(|(p, _)| *p == port)
        .map(|(_, id)| *id)
        .collect()
}

/// Leader of `n` members (alice; bob, carol, dave, erin as in `leader_of_five`, then
/// m6.. at ports 6..), each newcomer acking what it is sent; returns the leader and
/// the (id, port) of every other member.
fn leader_of(t0: Instant, n: u16) -> (Node, Vec<(NodeId, u16)>) {
    let mut node = super::commit::leader_of_five(t0);
    let mut all = vec![(BOB, 2), (CAROL, 3), (NodeId(400), 4), (NodeId(500), 5)];
    for port in 6..=n {
        let id = NodeId(u64::from(port) * 100);
        let key = identity(id.0 as u8);
        let out = join_as(&mut node, t0, (id, port, &format!("m{port}")), &key, &key);
        all.push((id, port));
        ack_proposals(&mut node, t0, &out, &all);
    }
    (node, all)
}

/// The leader of a large room sends a committed configuration change to every learner
/// itself (relays pass no filler), the one its next change makes a voter included.
#[test]
fn the_leader_sends_a_committed_config_change_to_every_learner() {
    let t0 = base_time();
    let (mut n, all) = leader_of(t0, 10);
    assert_eq!(n.room.voters().len(), MAX_VOTERS);
    assert!(n.relays_in_use());
    let voters = n.room.voters().clone();
    let learners: Vec<(NodeId, u16)> = all
        .iter()
        .copied()
        .filter(|(id, _)| !voters.contains(&n.members().get(*id).unwrap().name))
        .collect();
    assert_eq!(learners.len(), 3, "learners: {learners:?}");
    // Dave leaves: the leader proposes his removal to the voters, then adds a learner.
    let dave = n.members().get(NodeId(400)).unwrap().clone();
    let mut gone = dave.clone();
    gone.presence = Presence::Offline;
    gone.stamp = Stamp {
        lamport: Lamport(1000),
        by: NodeId(400),
    };
    let env = Envelope {
        from: NodeId(400),
        lamport: Lamport(1000),
        packets: vec![Packet::Data {
            id: MsgId(990),
            msg: Message::Members(vec![gone]),
        }],
    };
    n.handle_datagram(t0, addr(4), &encode(&env).unwrap());
    let out = drain(&mut n);
    let live: Vec<(NodeId, u16)> = all
        .iter()
        .copied()
        .filter(|(id, _)| *id != NodeId(400))
        .collect();
    // The voters ack; the removal commits; the learners are sent it.
    let mut sent_to_learners: BTreeMap<u16, Vec<ChatEntry>> = BTreeMap::new();
    let mut out = out;
    for _ in 0..6 {
        for &(_, port) in &learners {
            for m in out.messages_to(addr(port)) {
                if let Message::Sequenced(e) = m {
                    sent_to_learners.entry(port).or_default().push(e.clone());
                }
            }
        }
        let mut any = false;
        for &(id, port) in &live {
            let ids = out.ids_to(addr(port), |_| true);
            if !ids.is_empty() {
                any = true;
                n.handle_datagram(t0, addr(port), &ack_of(n.id(), id, &ids));
            }
        }
        if !any {
            break;
        }
        out = drain(&mut n);
    }
    for &(_, port) in &learners {
        let got = sent_to_learners.get(&port).cloned().unwrap_or_default();
        assert!(
            got.iter()
                .any(|e| e.config_change().is_some() && e.term == COMMITTED_TERM),
            "learner at port {port} is sent no committed config entry: {got:?}"
        );
    }
}

/// A room forming fast: alice leads, eight members are in, none of them votes yet
/// (their acks have not come). Relays are in use and the tree hangs the learners off
/// the leader, which passes a message it commits alone on to them.
#[test]
fn a_leader_with_no_other_voter_feeds_the_learners() {
    let t0 = base_time();
    let mut n = leader(t0);
    let mut all = Vec::new();
    for port in 2..=9u16 {
        let id = NodeId(u64::from(port) * 100);
        let name = if port == 2 {
            "bob".to_string()
        } else {
            format!("m{port}")
        };
        let key = identity(id.0 as u8);
        join_as(&mut n, t0, (id, port, &name), &key, &key);
        all.push((id, port));
    }
    drain(&mut n);
    assert_eq!(n.room.voters().len(), 1, "{:?}", n.room.voters());
    assert!(n.relays_in_use());
    n.handle_datagram(t0, addr(2), &data(BOB, 50, Message::Submit(submit(1))));
    let out = drain(&mut n);
    let shown = room_seqs(&out);
    assert!(!shown.is_empty(), "committed by alice alone and shown");
    let sent: Vec<u16> = all
        .iter()
        .filter(|(_, port)| {
            out.messages_to(addr(*port))
                .iter()
                .any(|m| matches!(m, Message::Sequenced(_)))
        })
        .map(|(_, port)| *port)
        .collect();
    assert!(
        !sent.is_empty(),
        "#{shown:?} shown by alice, sent to no member"
    );
}
