//! A flood of garbage, from elsewhere and from a member's own address: the node neither
//! crashes nor stops the room, and its guard counts what it refused.

use super::*;

/// A small seeded generator for the flood (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// How a flood is sent.
#[derive(Clone, Copy)]
struct FloodPlan {
    /// Where it comes from.
    source: IpAddr,
    /// Datagrams per flooded node, at most.
    per_node: usize,
    /// Datagrams per second per flooded node; `None`: as fast as the socket takes them.
    rate: Option<u32>,
    /// It stops after this long in any case.
    limit: Duration,
}

/// What a flood did, for the report.
struct Flooded {
    sent: usize,
    took: Duration,
    seed: u64,
}

/// Floods `targets` as `plan` says with datagrams of random bytes, random lengths 1 to
/// 1500. Signals `underway` after the first 3000.
fn flood(plan: FloodPlan, targets: Vec<SocketAddr>, underway: mpsc::Sender<()>) -> Flooded {
    let socket = UdpSocket::bind(SocketAddr::new(plan.source, 0))
        .unwrap_or_else(|e| panic!("cannot bind the flood socket to {}: {e}", plan.source));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let mut buf = [0u8; 1500];
    let started = Instant::now();
    let mut sent = 0usize;
    for i in 0..plan.per_node * targets.len() {
        if started.elapsed() > plan.limit {
            break;
        }
        if let Some(rate) = plan.rate {
            // Paced: never ahead of `rate` per node since the start.
            let due = Duration::from_secs_f64(i as f64 / (f64::from(rate) * targets.len() as f64));
            while started.elapsed() < due {
                thread::sleep(Duration::from_micros(200));
            }
        }
        let len = 1 + (rng.next() % 1500) as usize;
        for chunk in buf[..len].chunks_mut(8) {
            let r = rng.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        // A full socket buffer may refuse a send; the flood goes on.
        if socket
            .send_to(&buf[..len], targets[i % targets.len()])
            .is_ok()
        {
            sent += 1;
        }
        if i == 3_000 {
            let _ = underway.send(());
        }
    }
    Flooded {
        sent,
        took: started.elapsed(),
        seed,
    }
}

/// A keyless room of three (alice leads; bob, carol); a flood at all three as `plan`
/// says; a room message typed at bob once the flood is under way must reach all three,
/// and so must one typed at carol after it, each shown once and in order; every node
/// counts what it threw away (dropped + refused > 0); nobody may be reported offline and
/// the leader must not change.
fn flood_scenario(plan: FloodPlan) {
    let scratch = Scratch::new();
    let mut alice = create(&scratch, "alice", None);
    let mut bob = join(&scratch, "bob", &alice, None, (2, "alice"));
    alice.expect_line("bob is online");
    let mut carol = join(&scratch, "carol", &bob, None, (3, "alice"));
    alice.expect_line("carol is online");
    bob.expect_line("carol is online");
    alice.send("send_all before the flood");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect(
            |l| RoomLine::parse(l).is_some_and(|r| r.text == "before the flood"),
            "the message typed before the flood",
        );
    }

    let targets = vec![addr_of(&alice), addr_of(&bob), addr_of(&carol)];
    let (underway_tx, underway) = mpsc::channel();
    let flooder = thread::spawn(move || flood(plan, targets, underway_tx));
    underway
        .recv_timeout(WAIT)
        .expect("the flood did not get under way");
    bob.send("send_all during the flood");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_within(
            2 * WAIT,
            |l| RoomLine::parse(l).is_some_and(|r| r.text == "during the flood"),
            "the message typed during the flood",
        );
    }
    let f = flooder.join().expect("the flood thread");
    eprintln!(
        "flood from {} (seed {}): {} datagrams in {:?} ({:.0}/s)",
        plan.source,
        f.seed,
        f.sent,
        f.took,
        f.sent as f64 / f.took.as_secs_f64()
    );
    assert!(f.sent > 0);

    carol.send("send_all after the flood");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect(
            |l| RoomLine::parse(l).is_some_and(|r| r.text == "after the flood"),
            "the message typed after the flood",
        );
    }
    for p in [&mut alice, &mut bob, &mut carol] {
        let c = counters(p);
        eprintln!("{}: {c:?}", p.label);
        assert!(
            c["dropped"] + c["refused"] > 0,
            "{}: threw nothing away: {c:?}",
            p.label
        );
        if let Some(l) = p
            .seen
            .iter()
            .find(|l| l.ends_with(" is offline") || l.starts_with("leader is now"))
        {
            p.fail(&format!("the flood disturbed the room: {l:?}"));
        }
        let texts: Vec<String> = p.room_seen().into_iter().map(|r| r.text).collect();
        assert_eq!(
            texts,
            ["before the flood", "during the flood", "after the flood"],
            "{}",
            p.label
        );
    }
}

/// d. Flood: about 20 000 datagrams of garbage to each node, as fast as one socket sends
/// them (at most 5 s), from another loopback address (127.0.0.2) than the members'. The
/// per-source rate limit takes the excess, and the room goes on undisturbed: messages
/// typed during and after the flood reach everyone, nobody is reported offline, and the
/// leader stays.
#[test]
fn a_flood_of_garbage_from_elsewhere_does_not_disturb_the_room() {
    flood_scenario(FloodPlan {
        source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        per_node: 20_000,
        rate: None,
        limit: Duration::from_secs(5),
    });
}

/// d'. The same from 127.0.0.1, the members' own address, as a spoofed source address
/// (or a member behind the same NAT) would send it, paced at 20 000 datagrams a second
/// per node for 2 s. The rate limit counts per source address (IP and port), so the
/// members, each on its own port, keep their share; an earlier per-IP limit let such a
/// flood cut every member off and split the room.
#[test]
fn a_flood_of_garbage_from_the_members_address_does_not_disturb_the_room() {
    flood_scenario(FloodPlan {
        source: LOCALHOST,
        per_node: 40_000,
        rate: Some(20_000),
        limit: Duration::from_secs(5),
    });
}
