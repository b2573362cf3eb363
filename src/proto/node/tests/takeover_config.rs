//! A take-over and the voting configuration (`room/answers.rs`, `room/config.rs`): the
//! undoing of an addition proposed again goes before the new leader's term settles, and
//! a take-over whose log holds a change overtaken by a later term needs a majority of the
//! committed configuration as well as of the one its log ends with.

use super::takeover::{answer_to_bob, bob_taking_over_with};
use super::terms::DAVE;
use super::*;
use crate::proto::node::room::COMMITTED_TERM;
use crate::wire::ConfigChange;

/// Bob (voters alice, bob, carol; dave a newcomer, online, not voting) wins round 1 and
/// asks alice, carol and dave what they hold; alice is gone.
fn bob_taking_over_with_dave(t0: Instant) -> (Node, Out) {
    bob_taking_over_with(t0, vec![member(DAVE, "dave", 4)])
}

/// The entries `out` proposes to `to`.
fn proposed(out: &Out, to: SocketAddr) -> Vec<ChatEntry> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Alice (term 0) proposed #1 Add(dave); carol and dave hold it, bob does not. Alice
/// dies; bob takes over with carol and dave (3 of the 4 of {alice, bob, carol, dave}) and
/// proposes Add(dave) again in term 1. Dave crashes before acking it. Bob and carol, 2 of
/// the 3 committed voters, go on: bob undoes the addition at once (Remove(dave) at #2;
/// both commit by bob and carol), without waiting for #1 to commit first, which needs 3
/// of 4 (it waited for good).
#[test]
fn a_take_over_whose_newcomer_goes_before_its_addition_commits_goes_on() {
    let t0 = base_time();
    let (mut n, asked) = bob_taking_over_with_dave(t0);
    for (to, who) in [(addr(3), CAROL), (addr(4), DAVE)] {
        let ids = asked.ids_to(to, |m| matches!(m, Message::SyncRequest { .. }));
        assert!(!ids.is_empty(), "{to} asked");
        n.handle_datagram(t0, to, &ack_of(n.id(), who, &ids));
    }
    n.handle_datagram(
        t0,
        addr(1),
        &member_says((LEADER, "alice", 1), Presence::Offline, 1000),
    );
    drain(&mut n);
    let add = ChatEntry::config(Seq(1), ConfigChange::Add("dave".into()));
    for (from, who) in [(addr(3), CAROL), (addr(4), DAVE)] {
        n.handle_datagram(t0, from, &data(who, 2, Message::SyncEntry(add.clone())));
        n.handle_datagram(t0, from, &data(who, 3, answer_to_bob(1, 1)));
    }
    let out = drain_after_hold(&mut n, t0);
    assert!(!n.room.is_recovering(), "bob, carol and dave answered");
    assert!(
        n.room.log_voters().contains("dave"),
        "Add(dave) proposed again: {:?}",
        proposed(&out, addr(3))
    );
    let mut to_carol = proposed(&out, addr(3));
    // Dave crashes before acking anything of term 1 (the ring declares him gone).
    n.handle_datagram(
        t0,
        addr(4),
        &member_says((DAVE, "dave", 4), Presence::Offline, 1001),
    );
    let out2 = drain_after_hold(&mut n, t0);
    to_carol.extend(proposed(&out2, addr(3)));
    // Carol acks everything she is sent, for a while (heartbeats, retries).
    let mut t = t0;
    let mut outs = vec![out, out2];
    for _ in 0..40 {
        for o in &outs {
            let ids = o.ids_to(addr(3), |m| matches!(m, Message::Sequenced(_)));
            if !ids.is_empty() {
                n.handle_datagram(t, addr(3), &ack_of(n.id(), CAROL, &ids));
            }
        }
        t += Duration::from_millis(250);
        n.handle_timeout(t);
        let o = drain_after_hold(&mut n, t);
        to_carol.extend(proposed(&o, addr(3)));
        outs = vec![o];
    }
    let shown: Vec<(u64, u64, Option<ConfigChange>)> = to_carol
        .iter()
        .map(|e| (e.seq.0, e.term, e.config_change()))
        .collect();
    assert!(
        n.room.next() > Seq(1),
        "bob and carol, 2 of the 3 committed voters, still commit nothing after {:?}: \
         log voters {:?}, proposed to carol {shown:?}",
        t - t0,
        n.room.log_voters()
    );
}

const ERIN: NodeId = NodeId(500);

/// Raft's one-change-at-a-time bug, by the per-number merge of a take-over. Voters
/// C0 = {alice, bob, carol, dave}.
/// - Term 1, bob leads: he proposes #1 (a text) and #2 Add(erin); only bob and erin get
///   them (the rest are cut off from bob).
/// - Term 2, alice leads with carol and dave: nobody of them holds #1 or #2, so she
///   proposes a filler at #1, which commits by alice, carol and dave; then Remove(bob) at
///   #2, which commits by alice and carol (2 of {alice, carol, dave}, the configuration
///   it ends with). Dave missed #2.
/// - Alice and carol crash. Bob wins round 3, holding his #1 and #2 of term 1; erin holds
///   them too; dave holds the filler #1 of term 2.
///
/// Bob's log ends with Add(erin) (C0 + erin, 5 voters): bob, erin and dave are a majority
/// of it, and none of them holds #2 = Remove(bob). Taking over with them, he would keep
/// of #2 his own Add(erin) of term 1 and commit it again: #2 would be Remove(bob) at
/// alice and carol and Add(erin) at bob, erin and dave. Bob and dave are only 2 of the 4
/// committed voters: he waits for one more, whose answer brings Remove(bob).
#[test]
fn a_take_over_holding_an_overtaken_change_needs_the_committed_voters_too() {
    let t0 = base_time();
    let (mut n, _) = follower_with(t0, vec![member(DAVE, "dave", 4), member(ERIN, "erin", 5)]);
    let voters = ["alice", "bob", "carol", "dave"]
        .map(String::from)
        .into_iter()
        .collect();
    n.room.set_voters(voters, Seq(0));
    // Bob's own proposals of term 1 (kept on disk as held entries).
    let mut text = entry(1, BOB, "bob", 1);
    text.term = 1;
    let mut add = ChatEntry::config(Seq(2), ConfigChange::Add("erin".into()));
    add.term = 1;
    assert!(n.hold(text.clone()) && n.hold(add.clone()));
    assert!(n.room.log_voters().contains("erin"));
    // Alice and carol are gone.
    for (id, name, port) in [(LEADER, "alice", 1), (CAROL, "carol", 3)] {
        n.handle_datagram(
            t0,
            addr(port),
            &member_says((id, name, port), Presence::Offline, 1000),
        );
    }
    drain(&mut n);
    let token = Message::Election {
        term: 3,
        candidate: BOB,
        log: Seq(1000),
    };
    n.handle_datagram(t0, addr(5), &data(ERIN, 1, token));
    let asked = drain_after_hold(&mut n, t0);
    assert!(n.room.is_recovering(), "bob won round 3: {:?}", asked.sent);
    let epoch = Epoch {
        term: 3,
        leader: BOB,
    };
    let reply = |high: u64, sent: u32| Message::SyncReply {
        epoch,
        next: Seq(1),
        high: Seq(high),
        sent,
    };
    for (port, who) in [(4, DAVE), (5, ERIN)] {
        let ids = asked.ids_to(addr(port), |m| matches!(m, Message::SyncRequest { .. }));
        assert!(!ids.is_empty(), "{who} asked");
        n.handle_datagram(t0, addr(port), &ack_of(n.id(), who, &ids));
    }
    // Dave: the filler #1 of term 2. Erin: bob's #1 and #2 of term 1.
    let mut filler = ChatEntry::filler(Seq(1));
    filler.term = 2;
    n.handle_datagram(t0, addr(4), &data(DAVE, 2, Message::SyncEntry(filler)));
    n.handle_datagram(t0, addr(4), &data(DAVE, 3, reply(1, 1)));
    n.handle_datagram(t0, addr(5), &data(ERIN, 2, Message::SyncEntry(text)));
    n.handle_datagram(t0, addr(5), &data(ERIN, 3, Message::SyncEntry(add)));
    n.handle_datagram(t0, addr(5), &data(ERIN, 4, reply(2, 2)));
    let out = drain_after_hold(&mut n, t0);
    assert!(
        n.room.is_recovering(),
        "bob, dave and erin are 3 of the 5 of bob's log, but 2 of the 4 committed voters: \
         bob waits; proposed {:?}",
        proposed(&out, addr(4))
    );
    // Carol is back: she is asked, and answers that she showed #1 and #2 (committed, so
    // sent as such).
    n.handle_datagram(
        t0,
        addr(3),
        &member_says((CAROL, "carol", 3), Presence::Online, 1001),
    );
    let asked = drain_after_hold(&mut n, t0);
    let ids = asked.ids_to(addr(3), |m| matches!(m, Message::SyncRequest { .. }));
    assert!(!ids.is_empty(), "carol, back, is asked what she holds");
    n.handle_datagram(t0, addr(3), &ack_of(n.id(), CAROL, &ids));
    let mut removal = ChatEntry::config(Seq(2), ConfigChange::Remove("bob".into()));
    removal.term = COMMITTED_TERM;
    let mut shown_filler = ChatEntry::filler(Seq(1));
    shown_filler.term = COMMITTED_TERM;
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 1902, Message::SyncEntry(shown_filler)),
    );
    n.handle_datagram(t0, addr(3), &data(CAROL, 1903, Message::SyncEntry(removal)));
    n.handle_datagram(t0, addr(3), &data(CAROL, 1904, reply(2, 2)));
    // Whatever bob does from here (carol's answer shows him removed), he never
    // proposes his stale addition again.
    let mut sent = drain_after_hold(&mut n, t0).sent;
    let mut t = t0;
    for _ in 0..20 {
        t += Duration::from_millis(500);
        n.handle_timeout(t);
        sent.extend(drain_after_hold(&mut n, t).sent);
    }
    let out = Out {
        sent,
        datagrams: Vec::new(),
        events: Vec::new(),
    };
    let stale: Vec<ChatEntry> = [addr(3), addr(4), addr(5)]
        .iter()
        .flat_map(|a| proposed(&out, *a))
        .filter(|e| matches!(e.config_change(), Some(ConfigChange::Add(u)) if u == "erin"))
        .collect();
    assert!(
        stale.is_empty(),
        "bob's stale Add(erin) is not proposed again: {stale:?}"
    );
    let voters: Vec<&str> = n.room.voters().iter().map(String::as_str).collect();
    assert_eq!(
        voters,
        ["alice", "carol", "dave"],
        "as alice and carol committed"
    );
}
