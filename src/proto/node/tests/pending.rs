//! What waits for a majority when a member comes in: a newcomer holds all of it, so that
//! every proposal it acks is one it holds; a member let in again is sent it, so that a
//! majority waiting for it is found.

use super::*;

/// A newcomer acks only what it holds: welcomed while the leader's proposals from #150
/// to #299 wait for a majority, bob holds the log from #150 (not from #200, where the
/// last 100 messages he is shown begin). An ack of #150 without its copy would count
/// towards a majority that does not hold it, here or for the next leader re-proposing
/// it. Once committed, only the last 100 are shown, as history.
#[test]
fn a_newcomer_holds_every_proposal_that_waits_for_a_majority() {
    let t0 = base_time();
    let (mut n, _) = follower_welcomed_as(t0, |w| {
        w.next_seq = Seq(300);
        w.pending_from = Seq(150);
    });
    assert_eq!(n.room.next(), Seq(150), "bob holds the log from #150");
    let proposals: Vec<u64> = (150..300).collect();
    let mut acked = BTreeSet::new();
    for (k, seq) in proposals.iter().enumerate() {
        let id = 2 + k as u64;
        let e = entry(*seq, CAROL, "carol", k as u64 + 1);
        n.handle_datagram(t0, addr(1), &data(LEADER, id, Message::Sequenced(e)));
        for ack in drain(&mut n).acks_to(addr(1)) {
            for (a, b) in &ack.ranges {
                acked.extend(*a..=*b);
            }
            acked.extend(1..=ack.upto);
        }
    }
    let ids: Vec<u64> = (0..proposals.len() as u64)
        .map(|k| MsgId(2 + k).seq())
        .collect();
    assert!(
        ids.iter().all(|id| acked.contains(id)),
        "every proposal is held and acked"
    );
    n.handle_datagram(t0, addr(1), &data(LEADER, 400, commit(299)));
    let out = drain(&mut n);
    assert_eq!(room_seqs(&out), (200..300).collect::<Vec<_>>());
    assert!(
        out.events
            .iter()
            .all(|e| !matches!(e, Event::Room { history: false, .. })),
        "shown as history"
    );
    assert_eq!(n.room.next(), Seq(300));
}

/// A member let in again gets what waits for a majority: a leader of five voters whose
/// proposal only bob holds (dave and erin are cut off) finds its majority in carol,
/// restarted under a new id after she was held offline. Her welcome names the leader's
/// delivery point, at or before the proposal; she asks from there, as any member behind
/// does, and is sent it as a proposal, whose ack counts.
#[test]
fn a_member_let_in_again_gets_what_waits_for_a_majority() {
    let t0 = base_time();
    let mut n = super::commit::leader_of_five(t0);
    let (dave, erin) = (NodeId(400), NodeId(500));
    let offline = super::recounts::says(CAROL, "carol", 3, Presence::Offline, 1000);
    n.handle_datagram(t0, addr(3), &offline);
    let out = drain(&mut n);
    ack_proposals(&mut n, t0, &out, &[(BOB, 2), (dave, 4), (erin, 5)]);

    // From here on dave and erin hear nothing and say nothing.
    n.handle_command(t0, WallMillis(1), Command::SendAll { text: "hi".into() });
    let out = flushed(&mut n, t0);
    let hi = |m: &Message| matches!(m, Message::Sequenced(e) if e.text == "hi");
    let to_bob = out.ids_to(addr(2), hi);
    assert_eq!(to_bob.len(), 1);
    n.handle_datagram(t0, addr(2), &ack_of(n.id(), BOB, &to_bob));
    assert!(
        room_seqs(&drain(&mut n)).is_empty(),
        "alice and bob: 2 of 5"
    );
    let seq = n.room.next();

    let carol2 = NodeId(301);
    let key = identity(CAROL.0 as u8);
    assert!(!n.members().is_online(CAROL), "carol is held offline");
    let out = join_as(&mut n, t0, (carol2, 7, "carol"), &key, &key);
    assert!(n.members().is_online(carol2));
    let welcome = out
        .messages_to(addr(7))
        .into_iter()
        .find_map(|m| match m {
            Message::Welcome(w) => Some(w.clone()),
            _ => None,
        })
        .expect("carol is welcomed");
    assert!(
        welcome.pending_from <= seq && seq < welcome.next_seq,
        "the welcome names where what waits begins: {:?} for #{seq}",
        (welcome.pending_from, welcome.next_seq)
    );
    acked_through(&mut n, t0, out, &[(carol2, 7)]);
    let fetch = Message::Fetch {
        from: welcome.pending_from,
        to: Seq(welcome.next_seq.0 - 1),
    };
    n.handle_datagram(t0, addr(7), &data(carol2, 10, fetch));
    let out = flushed(&mut n, t0);
    assert_eq!(
        out.ids_to(addr(7), hi).len(),
        1,
        "carol is sent the proposal"
    );
    let shown = acked_through(&mut n, t0, out, &[(carol2, 7), (BOB, 2)]);
    assert!(
        shown.contains(&"hi".to_string()),
        "alice, bob and carol hold it: shown ({shown:?})"
    );
}

/// What the node sent, its held sends included.
fn flushed(n: &mut Node, t0: Instant) -> Out {
    let mut out = drain(n);
    if let Some(due) = n.transport.held_until() {
        n.handle_timeout(due.max(t0));
        let more = drain(n);
        out.sent.extend(more.sent);
        out.events.extend(more.events);
    }
    out
}

/// `members` ack everything the leader sends them from `out` on, until it sends them
/// nothing more; the texts of the room messages it showed meanwhile.
fn acked_through(
    n: &mut Node,
    t0: Instant,
    mut out: Out,
    members: &[(NodeId, u16)],
) -> Vec<String> {
    let mut shown = Vec::new();
    for _ in 0..8 {
        let mut any = false;
        for &(id, port) in members {
            let ids = out.ids_to(addr(port), |_| true);
            if !ids.is_empty() {
                any = true;
                n.handle_datagram(t0, addr(port), &ack_of(n.id(), id, &ids));
            }
        }
        out = flushed(n, t0);
        shown.extend(out.events.iter().filter_map(|e| match e {
            Event::Room { entry, .. } => Some(entry.text.clone()),
            _ => None,
        }));
        if !any {
            break;
        }
    }
    shown
}

// ----- review of 4d3fee0 -----

/// Bob welcomed while #150 to #299 wait for a majority (so shown from #200), who then
/// follows carol: she took over without those proposals (her majority never held them)
/// and numbers on from #150. Her #150 is a message written after bob came in, not one of
/// the history he was meant to be spared: it must be shown.
#[test]
fn a_number_a_new_leader_gives_again_is_not_hidden() {
    use super::terms::{DAVE, epoch};
    let t0 = base_time();
    let (mut n, _) = follower_welcomed_as(t0, |w| {
        w.next_seq = Seq(300);
        w.pending_from = Seq(150);
        w.members.push(member(DAVE, "dave", 4));
        w.voting = vec![0xff; w.members.len().div_ceil(8)];
    });
    // Carol wins round 1: bob passed her token on, and dave announces her win.
    super::terms::pass_carols_token(&mut n, t0);
    let elected = Message::Elected(epoch(1, CAROL));
    n.handle_datagram(t0, addr(4), &data(DAVE, 1, elected));
    drain(&mut n);
    assert_eq!(n.epoch(), Some(epoch(1, CAROL)));
    let mut e = entry(150, DAVE, "dave", 1);
    e.term = 1;
    n.handle_datagram(t0, addr(3), &data(CAROL, 2, Message::Sequenced(e)));
    drain(&mut n);
    let notice = Message::Commit {
        term: 1,
        upto: Seq(150),
    };
    n.handle_datagram(t0, addr(3), &data(CAROL, 3, notice));
    let out = drain(&mut n);
    assert_eq!(n.room.next(), Seq(151), "#150 is delivered");
    assert_eq!(room_seqs(&out), vec![150], "and shown: {:?}", out.events);
}

/// A member back from `dereg` whose delivery point the leader no longer keeps skips to
/// the first number it keeps, and keeps what it holds from there: copies it acked, which
/// the leader counts again once it is back (see `member_back`) and does not send again.
/// Bob holds #5 (acked) behind a gap at #1; welcomed back while alice keeps #3 on and #5
/// waits for a majority, he still holds #5 when #3 and #4 come and #5 commits.
#[test]
fn a_member_back_after_a_skip_keeps_what_it_acked() {
    let t0 = base_time();
    let mut n = follower(t0);
    let held = entry(5, CAROL, "carol", 3);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(held)));
    let out = drain(&mut n);
    assert!(!out.acks_to(addr(1)).is_empty(), "bob acks #5 (holds it)");
    assert_eq!(n.room.next(), Seq(1));

    // Bob goes offline: his word that he leaves reaches alice and carol.
    // And back: alice keeps #3 on (#1 and #2 are gone), #5 waits for a majority.
    let t1 = bob_deregs_and_regs_through_alice(&mut n, t0);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 45));
    w.next_seq = Seq(6);
    w.oldest = Seq(3);
    w.pending_from = Seq(5);
    n.handle_datagram(t1, addr(1), &data(LEADER, 40, Message::Welcome(w)));
    let out = drain(&mut n);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "bob is back: {:?}",
        out.events
    );
    for (k, seq) in [3u64, 4].into_iter().enumerate() {
        let mut e = entry(seq, CAROL, "carol", 1 + k as u64);
        e.term = super::super::room::COMMITTED_TERM;
        n.handle_datagram(
            t1,
            addr(1),
            &data(LEADER, 41 + k as u64, Message::Sequenced(e)),
        );
    }
    drain(&mut n);
    let notice = Message::Commit {
        term: 0,
        upto: Seq(5),
    };
    n.handle_datagram(t1, addr(1), &data(LEADER, 45, notice));
    drain(&mut n);
    assert_eq!(n.room.next(), Seq(6), "#5, acked before, is still held");
}

/// What bob's driver keeps on disk of `w` (the writes these tests need).
fn keep(disk: &mut crate::proto::durable::Restored, w: crate::proto::durable::Write) {
    use crate::proto::durable::Write;
    match w {
        Write::Delivered(e) => {
            disk.held.retain(|h| h.seq != e.seq);
            disk.history.push(e);
            disk.delivery_point = None;
        }
        Write::Held(e) => {
            disk.held.retain(|h| h.seq != e.seq);
            disk.held.push(e);
        }
        Write::DeliveryPoint(seq) => disk.delivery_point = Some(seq),
        Write::Voters { voters, at } => disk.voters = Some((at, voters)),
        Write::Room { members, epoch, .. } => {
            disk.members = members;
            disk.epoch = epoch.or(disk.epoch);
        }
        _ => {}
    }
}

/// A newcomer that crashes before it shows anything holds again, once restarted, what it
/// acked: its welcome's delivery point (#19901 here) is on disk, so it does not start again
/// at #1, from where the copy of #20000 it acked lies past what it may hold. Without it, a
/// majority that counted its ack would miss a copy.
#[test]
fn a_newcomer_restarted_before_it_showed_anything_holds_what_it_acked() {
    let t0 = base_time();
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    cfg.join_timeout = Duration::from_secs(600);
    cfg.persist = true;
    let mut disk = crate::proto::durable::Restored::default();
    let mut n = Node::new(cfg.clone(), BOB, t0);
    drain(&mut n);
    let welcomed = |n: &mut Node, disk: &mut crate::proto::durable::Restored, id: u64| {
        let mut w = welcome_for_bob(bob_as_written_by_leader(n, 2));
        w.next_seq = Seq(20_001);
        w.pending_from = Seq(20_000);
        n.handle_datagram(t0, addr(1), &join_answered(w, id));
        while let Some(w) = n.poll_write() {
            keep(disk, w);
        }
        drain(n)
    };
    let out = welcomed(&mut n, &mut disk, 1);
    assert!(matches!(out.events[0], Event::Joined { .. }));
    let proposal = entry(20_000, CAROL, "carol", 1);
    n.handle_datagram(t0, addr(1), &data(LEADER, 2, Message::Sequenced(proposal)));
    while let Some(w) = n.poll_write() {
        keep(&mut disk, w);
    }
    let acks = drain(&mut n);
    assert!(
        acks.acks_to(addr(1)).iter().any(|a| a.upto >= 2),
        "bob acked the proposal"
    );
    // The last 100 messages are shown to a newcomer: it holds the log from #19901.
    assert_eq!(
        disk.delivery_point,
        Some(Seq(19_901)),
        "the welcome's point"
    );
    // Bob crashes; his driver starts him again from the disk.
    let mut n = Node::restore(cfg, BOB, t0, disk.clone());
    drain(&mut n);
    assert_eq!(
        n.room.next(),
        Seq(19_901),
        "bob goes on at his delivery point"
    );
    welcomed(&mut n, &mut disk, 1);
    let ask = Message::SyncRequest {
        epoch: super::terms::epoch(0, LEADER),
        from: Seq(20_000),
    };
    n.handle_datagram(t0, addr(1), &data(LEADER, 3, ask));
    let answered: Vec<u64> = drain(&mut n)
        .messages_to(addr(1))
        .iter()
        .filter_map(|m| match m {
            Message::SyncEntry(e) => Some(e.seq.0),
            _ => None,
        })
        .collect();
    assert_eq!(answered, vec![20_000], "bob still holds #20000");
}
