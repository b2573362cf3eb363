//! A hostile member fuzzing the real binary from inside its own sessions: mallory (a
//! [`FakeMember`], built from the project's own wire and guard code) joins a keyed room of
//! three real nodes like anyone, so every datagram it sends opens at the member it is for
//! and reaches the protocol. What it sends is mutated and hostile (wild terms, stamps and
//! numbers, flipped and cut bytes); afterwards the room has one leader and still chats.
//!
//! Each step waits for the line or counter that proves the previous one happened, with a
//! generous bound; nothing sleeps and hopes, except where a test must show that something
//! does not happen (then it watches for a stated time).

mod adversary;
mod common;

use adversary::room::{
    FORGED_STREAM, Room, chats, datagram, forged, leader_never_changed, one_leader,
    room_with_mallory, seen,
};
use common::*;
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, Seq, WallMillis};
use ringchat::wire::{
    DirectMessage, Epoch, Heartbeat, Member, Message, Packet, Presence, QueuedDm, Stamp,
};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// A heartbeat from `from` naming `epoch`.
fn beat(from: NodeId, lamport: u64, epoch: Epoch) -> Vec<u8> {
    let hb = Heartbeat {
        epoch: Some(epoch),
        delivered: Seq(0),
        digest: 0,
        probe: false,
        unknown: false,
    };
    datagram(from, lamport, vec![Packet::Heartbeat(hb)])
}

/// Row "`Elected` / heartbeat with term 2^62 naming any id" (issue 17): the room followed
/// a non-existent or departed leader for ever, and a keyed member could do it. mallory,
/// in its sessions with alice and carol: announcements and heartbeats of term 2^62
/// naming a ghost, a sync request for a ghost, an announcement of term 1 naming a ghost
/// and one naming carol, a heartbeat naming carol. The far terms are dropped (counted),
/// the rest is one member's word: alice stays leader everywhere, no leader change is ever
/// printed, and the room chats. The wait covers a whole election timeout (a leader check
/// would have fired).
#[test]
fn forged_terms_from_a_member_cannot_capture_the_room() {
    let scratch = Scratch::new();
    let Room {
        mut alice,
        mut bob,
        mut carol,
        mallory,
        seen: [a, _, c],
    } = room_with_mallory(&scratch);
    let before: Vec<u64> = [&mut alice, &mut carol]
        .into_iter()
        .map(|p| counter(p, "dropped"))
        .collect();
    let me = mallory.id;
    let ghost = NodeId(0x6057);
    let far = 1u64 << 62;
    let msg = |m: Message| forged(me, mallory.next_id(), 5_000, m);
    let attacks = [
        msg(Message::Elected(Epoch {
            term: far,
            leader: ghost,
        })),
        beat(
            me,
            5_000,
            Epoch {
                term: far,
                leader: ghost,
            },
        ),
        msg(Message::SyncRequest {
            epoch: Epoch {
                term: 3,
                leader: ghost,
            },
            from: Seq(1),
        }),
        msg(Message::Elected(Epoch {
            term: 1,
            leader: ghost,
        })),
        msg(Message::Elected(Epoch {
            term: 1,
            leader: c.id,
        })),
        beat(
            me,
            5_000,
            Epoch {
                term: 1,
                leader: c.id,
            },
        ),
    ];
    for d in &attacks {
        for to in [a.addr, c.addr] {
            assert!(!mallory.send(d, to).is_empty(), "sent in a session to {to}");
        }
    }
    // The far-term announcement reached the protocol at both (it opened) and was dropped.
    for (p, was) in [&mut alice, &mut carol].into_iter().zip(before) {
        wait_counter_above(p, "dropped", was);
    }
    thread::sleep(Duration::from_millis(2500));
    for p in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(seen(p).leader, "alice", "{}", p.label);
    }
    leader_never_changed(&[&alice, &bob, &carol]);
    chats(
        &mut bob,
        &mut [&mut alice, &mut carol],
        "still alice's room",
    );
}

/// Waits (up to [`WAIT`]) until counter `name` of `p` is above `was`.
#[track_caller]
fn wait_counter_above(p: &mut Proc, name: &str, was: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = counter(p, name);
        if now > was {
            return now;
        }
        if Instant::now() > deadline {
            p.fail(&format!("`{name}` stayed at {now} (was {was})"));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A small seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number as a mutation would pick it: often one at a limit.
    fn number(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 62,
            3 => (1 << 63) + self.below(3) as u64,
            4 => self.below(100) as u64,
            5 => 1 << self.below(64),
            _ => self.next(),
        }
    }
}

/// The room as mallory sees it: the three real members, and itself.
struct Ids {
    alice: NodeId,
    carol: NodeId,
    me: NodeId,
    my_addr: SocketAddr,
    carol_addr: SocketAddr,
}

/// One valid message of each kind mallory could send, some numbers drawn by `rng` (a
/// mutation may keep them valid and still be hostile: a term, a stamp, a number far off).
fn templates(r: &Ids, rng: &mut Rng, wild: bool) -> Vec<Message> {
    let mut n = |normal: u64| if wild { rng.number() } else { normal };
    let epoch = |term: u64, leader: NodeId| Epoch { term, leader };
    let dm = DirectMessage {
        id: DmId(5_000),
        from_name: "mallory".into(),
        to: vec!["alice".into(), "carol".into()],
        sealed: b"fuzz".to_vec(),
    };
    let own_entry = Member {
        id: r.me,
        name: "mallory".into(),
        addr: r.my_addr,
        presence: Presence::Online,
        key: [1; 32],
        stamp: Stamp {
            lamport: Lamport(40),
            by: r.me,
        },
    };
    let entry = ringchat::wire::ChatEntry {
        seq: Seq(n(3)),
        origin: r.me,
        name: "mallory".into(),
        origin_seq: ringchat::ids::OriginSeq(n(2)),
        lamport: Lamport(60),
        sent_at: WallMillis(1_700_000_000_000),
        text: "fuzz".into(),
        term: n(0),
        proof: Default::default(),
    };
    vec![
        Message::Members(vec![Member {
            presence: if wild {
                Presence::Offline
            } else {
                Presence::Online
            },
            stamp: Stamp {
                lamport: Lamport(n(40)),
                by: NodeId(n(r.me.0)),
            },
            ..own_entry.clone()
        }]),
        Message::Members(vec![Member {
            id: r.carol,
            name: "carol".into(),
            addr: r.carol_addr,
            presence: Presence::Offline,
            key: [3; 32],
            stamp: Stamp {
                lamport: Lamport(n(45)),
                by: r.me,
            },
        }]),
        Message::Elected(epoch(n(1), r.carol)),
        Message::Election {
            term: n(1),
            candidate: r.alice,
            log: Seq(n(1)),
        },
        Message::SyncRequest {
            epoch: epoch(n(1), r.me),
            from: Seq(n(1)),
        },
        Message::SyncReply {
            epoch: epoch(0, r.alice),
            next: Seq(n(1)),
            high: Seq(n(2)),
            sent: n(0) as u32,
            votes: Vec::new(),
        },
        Message::Commit {
            term: n(0),
            upto: Seq(n(2)),
        },
        Message::Sequenced(entry),
        Message::Fetch {
            from: Seq(n(1)),
            to: Seq(n(5)),
        },
        Message::Forgotten {
            from: Seq(n(1)),
            to: Seq(n(3)),
        },
        Message::Submit(ringchat::wire::Submit {
            origin_seq: ringchat::ids::OriginSeq(n(1)),
            committed_below: ringchat::ids::OriginSeq(n(1)),
            name: "mallory".into(),
            lamport: Lamport(70),
            sent_at: WallMillis(1_700_000_000_000),
            text: "fuzz".into(),
            proof: Default::default(),
        }),
        Message::Direct(dm.clone()),
        Message::Store {
            to: n(0) as u8,
            dm: dm.clone(),
        },
        Message::Queued(QueuedDm {
            origin: NodeId(n(r.me.0)),
            to: 0,
            dm: dm.clone(),
        }),
        Message::Handover(QueuedDm {
            origin: r.me,
            to: 1,
            dm: dm.clone(),
        }),
        Message::Dequeued {
            origin: r.me,
            id: DmId(n(1)),
            to: 0,
        },
        Message::Saved {
            id: DmId(n(1)),
            to: 0,
            full: None,
        },
        Message::Leave,
        Message::Join {
            name: "mallory".into(),
            key: [1; 32],
        },
        Message::Challenge {
            nonce: [9; 16],
            newcomer: NodeId(1),
            of_member: true,
        },
        Message::Proof {
            signature: vec![7; 64],
        },
        Message::JoinRefused {
            reason: ringchat::wire::Refusal::NoLeader,
        },
    ]
}

/// One mutated datagram from mallory: a template (or a heartbeat, or an ack), its numbers
/// perhaps drawn wild, then its bytes perhaps flipped, set or cut (before it is sealed in
/// mallory's session: what is tested is what the node makes of it once it opened).
fn mutated(r: &Ids, rng: &mut Rng, n: u64, to: NodeId) -> Vec<u8> {
    let wild = rng.below(2) == 0;
    let lamport = if rng.below(4) == 0 {
        rng.number()
    } else {
        1_000 + n
    };
    let packet = match rng.below(24) {
        0 => Packet::Heartbeat(Heartbeat {
            epoch: Some(Epoch {
                term: if wild { rng.number() } else { 0 },
                leader: [r.alice, r.me, r.carol, NodeId(rng.next())][rng.below(4)],
            }),
            delivered: Seq(if wild { rng.number() } else { 0 }),
            digest: rng.next(),
            probe: rng.below(2) == 0,
            unknown: rng.below(2) == 0,
        }),
        1 => Packet::Ack(ringchat::wire::Ack {
            of: to,
            stream: rng.next() as u32,
            upto: rng.number(),
            ranges: vec![(rng.number(), rng.number())],
        }),
        _ => {
            let mut all = templates(r, rng, wild);
            let msg = all.swap_remove(rng.below(all.len()));
            Packet::Data {
                id: MsgId::new(FORGED_STREAM, n),
                msg,
            }
        }
    };
    let mut bytes = datagram(r.me, lamport.min((1 << 63) - 1), vec![packet]);
    match rng.below(4) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] ^= rng.next() as u8 | 1;
            }
        }
        1 => {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        2 => bytes.truncate(1 + rng.below(bytes.len())),
        _ => {} // valid, numbers perhaps wild
    }
    bytes
}

/// Fuzzing with a member's own valid session (issue 17: one mutated heartbeat of a
/// 20 000-run made the room follow a leader for ever). 20 000 mutated datagrams of every
/// kind, sealed in mallory's sessions with alice and carol of a 3-node ephemeral room:
/// they open (the protocol counts thousands of them as dropped), and afterwards every
/// node still runs, all three name one leader of the room, and a message from alice and
/// one from carol are shown at every node.
#[test]
fn twenty_thousand_mutated_datagrams_in_a_members_sessions_leave_the_room_chatting() {
    let scratch = Scratch::new();
    let Room {
        mut alice,
        mut bob,
        mut carol,
        mallory,
        seen: [a, _, c],
    } = room_with_mallory(&scratch);
    let ids = Ids {
        alice: a.id,
        carol: c.id,
        me: mallory.id,
        my_addr: mallory.addr(),
        carol_addr: c.addr,
    };
    let before: u64 = [&mut alice, &mut carol]
        .into_iter()
        .map(|p| counter(p, "dropped"))
        .sum();
    // A new seed each run (`FUZZ_SEED=n` replays one; it is printed either way).
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    let mut rng = Rng(seed);
    let started = Instant::now();
    const SENT: u64 = 20_000;
    for n in 1..=SENT {
        let (to, to_id) = if n % 2 == 0 {
            (a.addr, a.id)
        } else {
            (c.addr, c.id)
        };
        mallory.send(&mutated(&ids, &mut rng, n, to_id), to);
        if n % 200 == 0 {
            thread::sleep(Duration::from_millis(10));
        }
    }
    let took = started.elapsed();
    let leader = one_leader(
        &mut [&mut alice, &mut bob, &mut carol],
        &["alice", "bob", "carol"],
    );
    let dropped: u64 = [&mut alice, &mut carol]
        .into_iter()
        .map(|p| counter(p, "dropped"))
        .sum::<u64>()
        - before;
    eprintln!(
        "{SENT} mutated datagrams (FUZZ_SEED={seed}) in {took:?}; leader after: {leader}; \
         dropped by the protocol at alice and carol: {dropped}"
    );
    // About half are cut or flipped (the protocol cannot decode them) and many more carry
    // wild values: had the guard refused them, the protocol would have counted none.
    assert!(
        dropped >= SENT / 5,
        "only {dropped} of {SENT} reached the protocol and were dropped there (FUZZ_SEED={seed})"
    );
    chats(
        &mut alice,
        &mut [&mut bob, &mut carol],
        "after the fuzz, from alice",
    );
    chats(
        &mut carol,
        &mut [&mut alice, &mut bob],
        "after the fuzz, from carol",
    );
}
