//! Reliability layer tests: retries and give-up, acks (cumulative and selective), the
//! adaptive timeout (RFC 6298 sampling, Karn's rule, backoff, floor and cap).

use super::*;
use crate::ids::NodeId;
use crate::wire::Ack;

const MS: Duration = Duration::from_millis(1);
const ME: NodeId = NodeId(42);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends a message with `token` whose packet is its id's bytes; returns the id.
fn send<T: Clone>(
    r: &mut Reliable<T>,
    now: Instant,
    to: SocketAddr,
    token: T,
    retries: u32,
) -> MsgId {
    let mut sent = None;
    let bytes = r
        .send(now, to, token, retries, |id| {
            sent = Some(id);
            Ok::<_, ()>(id.0.to_le_bytes().to_vec())
        })
        .unwrap();
    let id = sent.unwrap();
    assert_eq!(bytes, id.0.to_le_bytes());
    id
}

fn ack_one(id: MsgId) -> Ack {
    Ack::of_one(ME, id)
}

fn ack_upto(stream: u32, upto: u64) -> Ack {
    Ack {
        of: ME,
        stream,
        upto,
        ranges: vec![],
    }
}

/// A layer that measured a loopback-fast round trip to `to`.
fn measured(t0: Instant, to: SocketAddr) -> Reliable<u32> {
    let mut r = Reliable::new(500 * MS);
    let id = send(&mut r, t0, to, 0, 8);
    assert_eq!(
        r.on_ack(t0 + Duration::from_micros(80), to, &ack_one(id)),
        [0]
    );
    assert_eq!(r.rto(to), MIN_RTO);
    r
}

#[test]
fn unmeasured_peer_retransmits_after_the_configured_timeout_then_gives_up() {
    let t0 = Instant::now();
    let timeout = 500 * MS;
    let mut r: Reliable<&str> = Reliable::new(timeout);
    send(&mut r, t0, addr(1), "hello", 2);
    let mut out = Vec::new();
    // Not yet due.
    assert_eq!(r.poll_retransmits(t0 + timeout / 2, &mut out).0, 0);
    assert!(out.is_empty());
    // Two retries; the 500 ms initial timeout is also the cap, so no longer waits.
    assert_eq!(r.poll_retransmits(t0 + timeout, &mut out).0, 1);
    assert_eq!(r.next_deadline(), Some(t0 + timeout * 2));
    assert_eq!(r.poll_retransmits(t0 + timeout * 2, &mut out).0, 1);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].to, addr(1));
    // Out of retries: reported, not resent.
    let (resent, gave_up) = r.poll_retransmits(t0 + timeout * 3, &mut out);
    assert_eq!(resent, 0);
    assert_eq!(
        gave_up,
        vec![GaveUp {
            token: "hello",
            to: addr(1)
        }]
    );
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn ids_are_contiguous_per_destination() {
    let t0 = Instant::now();
    let mut r: Reliable<()> = Reliable::new(500 * MS);
    let a1 = send(&mut r, t0, addr(1), (), 3);
    let b1 = send(&mut r, t0, addr(2), (), 3);
    let a2 = send(&mut r, t0, addr(1), (), 3);
    assert_eq!((a1.stream(), a1.seq()), (0, 1));
    assert_eq!((a2.stream(), a2.seq()), (0, 2));
    assert_eq!((b1.stream(), b1.seq()), (1, 1));
}

#[test]
fn a_failed_encoding_uses_no_id() {
    let t0 = Instant::now();
    let mut r: Reliable<()> = Reliable::new(500 * MS);
    assert_eq!(
        r.send(t0, addr(1), (), 3, |_| Err("too large")),
        Err("too large")
    );
    assert_eq!(r.in_flight(), 0);
    assert_eq!(
        send(&mut r, t0, addr(1), (), 3).seq(),
        1,
        "no hole in the stream"
    );
}

#[test]
fn ack_only_counts_from_the_destination_and_once() {
    let t0 = Instant::now();
    let mut r: Reliable<u8> = Reliable::new(500 * MS);
    let id = send(&mut r, t0, addr(1), 7, 3);
    assert!(r.on_ack(t0, addr(2), &ack_one(id)).is_empty(), "stranger");
    assert_eq!(r.on_ack(t0, addr(1), &ack_one(id)), [7]);
    assert!(r.on_ack(t0, addr(1), &ack_one(id)).is_empty(), "second ack");
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn cumulative_and_selective_acks() {
    let t0 = Instant::now();
    let mut r: Reliable<u64> = Reliable::new(500 * MS);
    for k in 1..=6 {
        send(&mut r, t0, addr(1), k, 3);
    }
    let other = send(&mut r, t0, addr(2), 99, 3);
    let ack = Ack {
        of: ME,
        stream: 0,
        upto: 2,
        ranges: vec![(4, 5), (9, 3), (0, 0)],
    };
    assert_eq!(
        r.on_ack(t0, addr(1), &ack),
        [1, 2, 4, 5],
        "empty ranges ignored"
    );
    assert_eq!(r.on_ack(t0, addr(1), &ack_upto(0, 100)), [3, 6]);
    assert_eq!(r.in_flight(), 1);
    assert!(
        r.on_ack(t0, addr(1), &ack_upto(other.stream(), 1))
            .is_empty(),
        "another destination's stream, from the wrong address"
    );
    assert!(
        r.on_ack(t0, addr(2), &ack_upto(u32::MAX, u64::MAX))
            .is_empty(),
        "out of range values"
    );
    assert_eq!(r.on_ack(t0, addr(2), &ack_upto(1, u64::MAX)), [99]);
}

#[test]
fn rtt_is_sampled_from_the_ack_of_a_message_sent_once() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    assert_eq!(
        r.rto(addr(1)),
        500 * MS,
        "unmeasured: the configured timeout"
    );
    let id = send(&mut r, t0, addr(1), 1, 8);
    r.on_ack(t0 + 40 * MS, addr(1), &ack_one(id));
    // First sample: SRTT 40, RTTVAR 20, RTO = 40 + 4 * 20.
    assert_eq!(r.rto(addr(1)), 120 * MS);
    assert_eq!(r.rto(addr(2)), 500 * MS, "per destination");
}

#[test]
fn karn_rule_does_not_sample_an_ack_that_may_answer_the_resend() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    let id = send(&mut r, t0, addr(1), 1, 8);
    let mut out = Vec::new();
    r.poll_retransmits(t0 + 500 * MS, &mut out);
    assert_eq!(out.len(), 1);
    // The ack may answer the first copy (RTT 501 ms) or the second (1 ms): no sample,
    // so the timeout is the first one backed off, not a measured one.
    assert_eq!(r.on_ack(t0 + 501 * MS, addr(1), &ack_one(id)), [1]);
    assert_eq!(r.rto(addr(1)), 1000 * MS);
}

#[test]
fn a_cumulative_ack_samples_its_most_recent_message() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    send(&mut r, t0, addr(1), 1, 8);
    send(&mut r, t0 + 90 * MS, addr(1), 2, 8);
    // Acks both; the sample is 10 ms (the later message), not 100 ms.
    assert_eq!(r.on_ack(t0 + 100 * MS, addr(1), &ack_upto(0, 2)), [1, 2]);
    assert_eq!(r.rto(addr(1)), MIN_RTO.max(10 * MS + 4 * 5 * MS));
}

#[test]
fn each_retry_doubles_the_timeout_up_to_the_cap() {
    let t0 = Instant::now();
    let mut r = measured(t0, addr(1));
    send(&mut r, t0, addr(1), 1, 8);
    let mut out = Vec::new();
    let mut now = t0;
    let mut waits = Vec::new();
    let mut gave_up = Vec::new();
    while let Some(d) = r.next_deadline() {
        waits.push((d - now).as_millis());
        now = d;
        gave_up.extend(r.poll_retransmits(now, &mut out).1);
    }
    assert_eq!(waits, [20, 40, 80, 160, 320, 500, 500, 500, 500]);
    assert_eq!(out.len(), 8, "max_retries resends");
    assert_eq!(gave_up.len(), 1);
    assert!(
        now - t0 <= Duration::from_millis(4500),
        "give-up is never later than with the fixed timeout: {:?}",
        now - t0
    );
}

#[test]
fn a_lost_datagram_on_a_fast_link_is_resent_within_milliseconds() {
    let t0 = Instant::now();
    let mut r = measured(t0, addr(1));
    let t1 = t0 + 5 * MS;
    let id = send(&mut r, t1, addr(1), 1, 8);
    // The datagram is lost: no ack. It is resent 20 ms later, not 500 ms.
    let mut out = Vec::new();
    assert_eq!(r.poll_retransmits(t1 + 19 * MS, &mut out).0, 0);
    assert_eq!(r.poll_retransmits(t1 + 20 * MS, &mut out).0, 1);
    assert_eq!(out[0].bytes, id.0.to_le_bytes());
    assert_eq!(r.on_ack(t1 + 21 * MS, addr(1), &ack_one(id)), [1]);
}

#[test]
fn a_slow_peer_is_capped_at_four_times_the_configured_timeout() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    let id = send(&mut r, t0, addr(1), 1, 8);
    r.on_ack(t0 + 2000 * MS, addr(1), &ack_one(id));
    assert_eq!(r.rto(addr(1)), 2000 * MS);
}

/// A path whose round trip (600 ms, a satellite hop) is longer than the first timeout:
/// the first message is resent before its ack comes, so it gives no sample, but the
/// timeout doubles; the next message is acked before its timeout and measures the path.
#[test]
fn a_path_slower_than_the_first_timeout_is_learned() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    let a = send(&mut r, t0, addr(1), 1, 8);
    let mut out = Vec::new();
    assert_eq!(r.poll_retransmits(t0 + 500 * MS, &mut out).0, 1);
    assert_eq!(r.on_ack(t0 + 600 * MS, addr(1), &ack_one(a)), [1]);
    assert_eq!(
        r.rto(addr(1)),
        1000 * MS,
        "backed off, nothing measured yet"
    );
    let t1 = t0 + 700 * MS;
    let b = send(&mut r, t1, addr(1), 2, 8);
    assert_eq!(r.poll_retransmits(t1 + 999 * MS, &mut out).0, 0);
    assert_eq!(r.on_ack(t1 + 600 * MS, addr(1), &ack_one(b)), [2]);
    // SRTT 600, RTTVAR 300.
    assert_eq!(r.rto(addr(1)), 1800 * MS);
}

/// Messages sent together to an unmeasured peer time out together: the timeout doubles
/// once for that timeout, not once per message (which would jump to the cap at once).
#[test]
fn an_unmeasured_timeout_doubles_once_per_timeout_not_per_message() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    for k in 0..5 {
        send(&mut r, t0, addr(1), k, 8);
    }
    let mut out = Vec::new();
    assert_eq!(r.poll_retransmits(t0 + 500 * MS, &mut out).0, 5);
    assert_eq!(r.rto(addr(1)), 1000 * MS, "one timeout, one doubling");
    // A message sent after that timeout and timing out too doubles it again.
    let t1 = t0 + 600 * MS;
    send(&mut r, t1, addr(1), 9, 8);
    r.poll_retransmits(t1 + 1000 * MS, &mut out);
    assert_eq!(r.rto(addr(1)), 2000 * MS);
}

/// A peer that never answered backed the first timeout off to its cap (2 s); a message
/// sent to it then is still given up within (1 + retries) first timeouts, 4.5 s, as to
/// any unmeasured peer: its long first wait stands for the resends it replaces.
#[test]
fn a_message_to_a_silent_unmeasured_peer_is_given_up_within_the_fixed_bound() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    let mut out = Vec::new();
    let mut now = t0;
    for k in 0..3 {
        send(&mut r, now, addr(1), k, 3);
        while let Some(d) = r.next_deadline() {
            now = d;
            r.poll_retransmits(now, &mut out);
        }
    }
    assert_eq!(r.rto(addr(1)), 2000 * MS, "backed off to the cap");
    let t1 = now + MS;
    send(&mut r, t1, addr(1), 7, 8);
    let mut gave_up = Vec::new();
    let mut at = t1;
    while let Some(d) = r.next_deadline() {
        at = d;
        gave_up.extend(r.poll_retransmits(at, &mut out).1);
    }
    assert_eq!(gave_up.len(), 1);
    assert!(
        at - t1 <= 4500 * MS,
        "given up {:?} after it was sent, past (1 + 8) x 500 ms",
        at - t1
    );
    assert!(at - t1 >= 2000 * MS, "the first wait is the backed-off one");
}

/// Measured at 250 ms, the path slows to 850 ms: the message is resent at its 750 ms
/// timeout, and its ack comes 100 ms after the resend, sooner than half the shortest
/// round trip measured, so it answers the first copy and is a sample of 850 ms. An ack
/// 200 ms after the resend may answer either copy and is not sampled (Karn).
#[test]
fn an_ack_too_soon_after_a_resend_samples_the_first_copy() {
    for (after_resend, rto) in [(100, 1300), (200, 750)] {
        let t0 = Instant::now();
        let mut r: Reliable<u32> = Reliable::new(500 * MS);
        let a = send(&mut r, t0, addr(1), 1, 8);
        r.on_ack(t0 + 250 * MS, addr(1), &ack_one(a));
        assert_eq!(r.rto(addr(1)), 750 * MS);
        let t1 = t0 + 300 * MS;
        let b = send(&mut r, t1, addr(1), 2, 8);
        let mut out = Vec::new();
        assert_eq!(r.poll_retransmits(t1 + 750 * MS, &mut out).0, 1);
        let acked_at = t1 + (750 + after_resend) * MS;
        assert_eq!(r.on_ack(acked_at, addr(1), &ack_one(b)), [2]);
        // 850: SRTT 325, RTTVAR 243.75, so 1300.
        assert_eq!(
            r.rto(addr(1)),
            rto * MS,
            "ack {after_resend} ms after the resend"
        );
    }
}

/// A message sent before this node was away is acked after its return: the ack waited in
/// the socket, so its round trip is not sampled; one sent after is.
#[test]
fn nothing_sent_before_an_absence_is_sampled() {
    let t0 = Instant::now();
    let mut r = measured(t0, addr(1));
    let before = r.rto(addr(1));
    let t1 = t0 + 10 * MS;
    let a = send(&mut r, t1, addr(1), 1, 8);
    r.was_away(t1 + 3000 * MS);
    r.on_ack(t1 + 3001 * MS, addr(1), &ack_one(a));
    assert_eq!(r.rto(addr(1)), before, "the absence is no round trip");
    let t2 = t1 + 3002 * MS;
    let b = send(&mut r, t2, addr(1), 2, 8);
    r.on_ack(t2 + 400 * MS, addr(1), &ack_one(b));
    assert!(
        r.rto(addr(1)) > before,
        "a round trip after the return counts"
    );
}

#[test]
fn a_small_configured_timeout_lowers_the_floor() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(5 * MS);
    let id = send(&mut r, t0, addr(1), 1, 8);
    r.on_ack(t0 + Duration::from_micros(10), addr(1), &ack_one(id));
    assert_eq!(r.rto(addr(1)), 5 * MS);
}

#[test]
fn duplicates_are_suppressed_per_sender_and_still_acked() {
    let mut r: Reliable<()> = Reliable::new(500 * MS);
    let (a, b) = (addr(1), addr(2));
    assert!(r.on_data(a, NodeId(1), MsgId(5)));
    assert!(!r.on_data(a, NodeId(1), MsgId(5)));
    assert!(
        r.on_data(b, NodeId(2), MsgId(5)),
        "other sender, own window"
    );
    assert!(
        r.on_data(a, NodeId(1), MsgId(3)),
        "reordered older id still new"
    );
    assert!(r.owes_acks());
    let acks = r.take_acks();
    assert_eq!(acks.len(), 2, "one ack per sender stream");
    assert!(acks[0].1.covers(3) && acks[0].1.covers(5) && acks[0].1.of == NodeId(1));
    assert!(!r.owes_acks());
}

#[test]
fn forgetting_a_sender_resets_its_windows() {
    let mut r: Reliable<()> = Reliable::new(500 * MS);
    assert!(r.on_data(addr(1), NodeId(1), MsgId::new(2, 1)));
    r.forget_sender(NodeId(1));
    assert!(r.on_data(addr(1), NodeId(1), MsgId::new(2, 1)));
}

#[test]
fn cancel_to_returns_tokens() {
    let t0 = Instant::now();
    let mut r: Reliable<u8> = Reliable::new(500 * MS);
    for (port, tok) in [(1, 1), (2, 2), (1, 3)] {
        send(&mut r, t0, addr(port), tok, 3);
    }
    assert_eq!(r.cancel_to(addr(1)), vec![1, 3]);
    assert_eq!(r.in_flight(), 1);
    let mut out = Vec::new();
    r.poll_retransmits(t0 + 500 * MS, &mut out);
    assert_eq!(out.len(), 1, "only the message still pending is resent");
}

#[test]
fn destinations_are_bounded() {
    let t0 = Instant::now();
    let mut r: Reliable<()> = Reliable::new(500 * MS);
    let busy = send(&mut r, t0, addr(1), (), 3);
    for k in 0..MAX_PEERS as u32 + 10 {
        let to = SocketAddr::from(([10, 0, (k >> 8) as u8, k as u8], 9));
        let id = send(&mut r, t0, to, (), 3);
        r.on_ack(t0, to, &ack_one(id));
    }
    assert!(r.peers.len() <= MAX_PEERS);
    assert_eq!(
        r.on_ack(t0, addr(1), &ack_one(busy)),
        [()],
        "kept: in flight"
    );
    assert_eq!(
        send(&mut r, t0, addr(1), (), 3).stream(),
        busy.stream(),
        "stream kept"
    );
}

/// The count per destination that the hold-back rule reads: up with each send, down with
/// each message acked, given up or cancelled, never below zero, never mixed between
/// destinations.
#[test]
fn in_flight_counts_each_destination_apart() {
    let t0 = Instant::now();
    let mut r: Reliable<u32> = Reliable::new(500 * MS);
    let a: Vec<MsgId> = (0..3).map(|k| send(&mut r, t0, addr(1), k, 0)).collect();
    send(&mut r, t0, addr(2), 9, 8);
    send(&mut r, t0, addr(2), 9, 8);
    assert_eq!((r.in_flight_to(addr(1)), r.in_flight_to(addr(2))), (3, 2));
    // Acked twice, and by the wrong peer: counted once, for the right one.
    r.on_ack(t0, addr(2), &ack_upto(a[0].stream(), 2));
    assert_eq!(r.in_flight_to(addr(1)), 3);
    r.on_ack(t0, addr(1), &ack_upto(a[0].stream(), 2));
    r.on_ack(t0, addr(1), &ack_upto(a[0].stream(), 2));
    assert_eq!(r.in_flight_to(addr(1)), 1);
    // The last one to addr(1) has no retries left: given up.
    let (_, gave_up) = r.poll_retransmits(t0 + Duration::from_secs(1), &mut Vec::new());
    assert_eq!(gave_up.len(), 1);
    assert_eq!(r.in_flight_to(addr(1)), 0);
    assert_eq!(r.cancel_to(addr(2)).len(), 2);
    assert_eq!((r.in_flight_to(addr(1)), r.in_flight_to(addr(2))), (0, 0));
    assert_eq!(r.in_flight_to(addr(3)), 0);
}

/// A bulk transfer's message waits at least its patience before each resend, however
/// fast the peer's round trip measured (a receiver working through a window of them acks
/// the last only after the others); never longer than the cap.
#[test]
fn a_patient_message_is_not_resent_before_its_patience() {
    let t0 = Instant::now();
    let to = addr(1);
    let mut r = measured(t0, to);
    let patience = 100 * MS;
    r.send_patient(t0, to, 1, 8, patience, |id| {
        Ok::<_, ()>(id.0.to_le_bytes().to_vec())
    })
    .unwrap();
    send(&mut r, t0, to, 2, 8);
    let mut out = Vec::new();
    assert_eq!(
        r.poll_retransmits(t0 + 30 * MS, &mut out).0,
        1,
        "only the other"
    );
    assert_eq!(
        r.poll_retransmits(t0 + 99 * MS, &mut out).0,
        1,
        "its own backoff"
    );
    assert_eq!(
        r.poll_retransmits(t0 + 100 * MS, &mut out).0,
        1,
        "the patient one"
    );
    out.clear();
    // The second try waits its patience again, not the 40 ms of a doubled floor.
    r.poll_retransmits(t0 + 190 * MS, &mut out);
    assert!(out.iter().all(|t| t.bytes != 2u64.to_le_bytes()));
    // Never more than the cap.
    let mut r: Reliable<u32> = Reliable::new(50 * MS);
    r.send_patient(t0, to, 1, 8, patience, |id| {
        Ok::<_, ()>(id.0.to_le_bytes().to_vec())
    })
    .unwrap();
    assert_eq!(r.poll_retransmits(t0 + 50 * MS, &mut out).0, 1);
}

/// Stale deadlines (of acked messages) neither wake the owner nor pile up: one message
/// to a silent peer waits at the top while 20 000 to another, due after it, are sent and
/// acked one by one; the earliest deadline stays the silent peer's, and the heap stays
/// within twice what is pending (or its floor). When that message is given up, the next
/// deadline is the next live one, not a stale one.
#[test]
fn stale_deadlines_neither_wake_nor_pile_up() {
    let t0 = Instant::now();
    let (silent, busy) = (addr(1), addr(2));
    let mut r = measured(t0, silent);
    let id = send(&mut r, t0, busy, 0, 8);
    assert_eq!(r.on_ack(t0, busy, &ack_one(id)), [0]);
    let stuck = send(&mut r, t0, silent, 1, 0);
    let stuck_due = r.next_deadline().expect("a deadline");
    let mut most = 0;
    for i in 0..20_000u32 {
        let now = t0 + Duration::from_micros(u64::from(i));
        let id = send(&mut r, now, busy, 2, 8);
        assert_eq!(r.on_ack(now, busy, &ack_one(id)), [2]);
        assert_eq!(r.next_deadline(), Some(stuck_due), "after message {i}");
        most = most.max(r.deadlines.len());
    }
    assert!(
        most <= 1025,
        "the heap grew to {most} entries for 1 pending"
    );
    // One more to the busy peer, unacked and due after the silent one: once that is
    // given up, this is next.
    let later = stuck_due - Duration::from_millis(5);
    send(&mut r, later, busy, 3, 8);
    let mut out = Vec::new();
    let (_, gave_up) = r.poll_retransmits(stuck_due, &mut out);
    assert_eq!(gave_up.len(), 1, "{stuck:?} given up");
    assert!(out.is_empty(), "nothing else was due");
    assert_eq!(r.next_deadline(), Some(later + r.rto(busy)));
}
