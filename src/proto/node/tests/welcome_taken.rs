//! The leader tells the members a newcomer is in (`Welcomed`) only on the newcomer's own
//! word within its session (`WelcomeTaken`), once per admission; the acks of its welcome
//! parts, which may come from outside a session, are not enough.

use super::*;

/// How many times the leader told bob (port 2) that carol is welcomed, starting from
/// `out`, over the next second, bob acking all he is sent (packets wait behind unacked
/// ones). Carol never heartbeats: she has her newcomer's grace at the leader meanwhile.
fn bob_told_of_carol(n: &mut Node, t0: Instant, mut out: Out) -> usize {
    let mut told = 0;
    for k in 1..=20 {
        told += out
            .messages_to(addr(2))
            .iter()
            .filter(|m| matches!(m, Message::Welcomed { newcomer } if newcomer.id == CAROL))
            .count();
        let ids = out.ids_to(addr(2), |_| true);
        let t = t0 + Duration::from_millis(50 * k);
        if !ids.is_empty() {
            n.handle_datagram(t, addr(2), &ack_of(LEADER, BOB, &ids));
        }
        n.handle_timeout(t);
        out = drain(n);
    }
    told
}

/// A leader with bob (port 2) that has just admitted carol (port 3); what it sent.
fn admitting_carol(t0: Instant) -> (Node, Out) {
    let mut n = leader_with_bob(t0);
    let carol = identity(CAROL.0 as u8);
    let out = join_as(&mut n, t0, (CAROL, 3, "carol"), &carol, &carol);
    (n, out)
}

#[test]
fn welcomed_only_on_the_newcomers_word_within_its_session() {
    let t0 = base_time();
    let (mut n, out) = admitting_carol(t0);
    // Every part of carol's welcome acked, from outside a session as a newcomer acks:
    // no notice.
    let parts = out.ids_to(addr(3), |m| matches!(m, Message::Welcome(_)));
    assert!(!parts.is_empty(), "carol was sent a welcome");
    n.handle_outside_datagram(t0, addr(3), &ack_of(LEADER, CAROL, &parts));
    assert_eq!(
        bob_told_of_carol(&mut n, t0, out),
        0,
        "acks of the welcome are not carol's word"
    );
    // Carol says so within her session (twice: a resend with a new id, say): bob is
    // told, once.
    let t1 = t0 + Duration::from_millis(100);
    n.handle_datagram(t1, addr(3), &data(CAROL, 90, Message::WelcomeTaken));
    n.handle_datagram(t1, addr(3), &data(CAROL, 91, Message::WelcomeTaken));
    let out = drain(&mut n);
    assert_eq!(bob_told_of_carol(&mut n, t1, out), 1, "bob is told, once");
}

/// The same word from outside a session (forged from carol's address by someone without
/// her session) is not taken.
#[test]
fn the_word_from_outside_a_session_is_not_taken() {
    let t0 = base_time();
    let (mut n, out) = admitting_carol(t0);
    n.handle_outside_datagram(t0, addr(3), &data(CAROL, 95, Message::WelcomeTaken));
    assert_eq!(bob_told_of_carol(&mut n, t0, out), 0, "outside: ignored");
    let t1 = t0 + Duration::from_millis(100);
    n.handle_datagram(t1, addr(3), &data(CAROL, 96, Message::WelcomeTaken));
    let out = drain(&mut n);
    assert_eq!(bob_told_of_carol(&mut n, t1, out), 1, "within it: taken");
}
