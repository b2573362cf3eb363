//! The `room_burst` harness: a room of three real nodes in memory (alice leads, bob and
//! carol joined through her, with their identity proofs), a burst of mutated valid
//! datagrams forged with bob's id from bob's own address (so they would pass any key
//! check) into alice and carol, then the room left to itself. It must come back: all
//! three name one leader of the room, exactly one node sequences, and a message from
//! alice and one from carol are shown at every node, bob included, within the bounds
//! below (virtual time).
//!
//! # Input
//!
//! Read as a stream (bytes past the end read as zero). Byte 0: how many datagrams the
//! burst has (modulo 65, at least one). Each datagram: a control byte (bit 0: into
//! alice or carol; bits 1-3: time that passes first, 0 to 500 ms; bits 4-7: how its
//! numbers are drawn), a template (one of every message kind, a heartbeat or an ack),
//! then its mutations: numbers drawn from the input (often at a limit: 0, 2^62, 2^63,
//! `u64::MAX`), then bytes flipped, set or cut.

use ed25519_dalek::SigningKey;
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, OriginSeq, Seq, WallMillis};
use ringchat::proto::{Command, Event, Node, NodeConfig, seal};
use ringchat::wire::{
    Ack, ChatEntry, DirectMessage, Envelope, Epoch, Heartbeat, MAX_PLAIN, Member, Message, Packet,
    Presence, Provenance, QueuedDm, Refusal, Stamp, Submit, decode, encode,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One-way delay of every datagram between the nodes.
const LATENCY: Duration = Duration::from_millis(1);
/// How long the room may take to come back after the burst, at most (virtual time).
pub const SETTLE: Duration = Duration::from_secs(40);
/// How long a message may take to be shown everywhere once sent, at most.
const SHOW: Duration = Duration::from_secs(30);
/// Datagrams in one burst, at most.
const MAX_BURST: usize = 64;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];
const IDS: [NodeId; 3] = [NodeId(0xa11ce), NodeId(0xb0b), NodeId(0xca401)];

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

/// The input as a stream of numbers; past its end, zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| v << 8 | u64::from(self.byte()))
    }

    /// A number as a mutation picks one: often one at a limit.
    fn number(&mut self) -> u64 {
        match self.byte() % 10 {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 62,
            3 => (1 << 63) + u64::from(self.byte() % 3),
            4 => u64::from(self.byte()),
            5 => 1 << (self.byte() % 64),
            6 => (1 << 62) + (1 << 61),
            _ => self.u64(),
        }
    }
}

/// A datagram in flight, or a node's timer.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Timer(usize),
}

/// Three nodes and the datagrams between them.
pub struct Room {
    nodes: Vec<Node>,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64, Due)>>,
    order: u64,
    /// The room messages each node showed, by text.
    shown: [Vec<String>; 3],
}

fn config(i: usize) -> NodeConfig {
    let join = (i > 0).then(|| addr(0));
    let mut cfg = NodeConfig::new(NAMES[i], addr(i), join);
    cfg.rng_seed = i as u64;
    cfg
}

impl Room {
    /// alice creates the room; bob and carol join through her. Panics if they do not.
    pub fn new() -> Room {
        let t0 = Instant::now();
        let nodes = (0..3).map(|i| Node::new(config(i), IDS[i], t0)).collect();
        let mut room = Room {
            nodes,
            now: t0,
            queue: BinaryHeap::new(),
            order: 0,
            shown: Default::default(),
        };
        for i in 0..3 {
            room.drain(i);
        }
        let formed = room.run_until(t0 + Duration::from_secs(10), |r| {
            (0..3)
                .all(|i| r.nodes[i].is_member() && r.nodes[i].members().online_peers().count() == 2)
        });
        assert!(formed, "harness: the room did not form");
        room
    }

    fn push(&mut self, at: Instant, due: Due) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, due)));
    }

    /// Sends what node `i` has to send, records what it showed, arms its timer.
    fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            assert!(
                t.bytes.len() <= MAX_PLAIN,
                "{} sent {} bytes, over the limit",
                NAMES[i],
                t.bytes.len()
            );
            if let Err(e) = decode(&t.bytes) {
                panic!("{} sent an invalid datagram: {e}", NAMES[i]);
            }
            if let Some(to) = (0..3).find(|&j| addr(j) == t.to) {
                self.push(
                    self.now + LATENCY,
                    Due::Deliver {
                        to,
                        from: i,
                        bytes: t.bytes,
                    },
                );
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            if let Event::Room { entry, .. } = e {
                self.shown[i].push(entry.text);
            }
        }
        if let Some(at) = self.nodes[i].poll_timeout() {
            self.push(at.max(self.now), Due::Timer(i));
        }
    }

    /// Runs the room until `done` holds (checked after every step) or `deadline`.
    fn run_until(&mut self, deadline: Instant, done: impl Fn(&Room) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some(Reverse((at, _, due))) = self.queue.pop() else {
                return false;
            };
            if at > deadline {
                self.queue.push(Reverse((at, 0, due)));
                return false;
            }
            self.now = self.now.max(at);
            match due {
                Due::Deliver { to, from, bytes } => {
                    self.nodes[to].handle_datagram(self.now, addr(from), &bytes);
                    self.drain(to);
                }
                Due::Timer(i) => {
                    if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                        self.nodes[i].handle_timeout(self.now);
                        self.drain(i);
                    }
                }
            }
        }
    }

    /// Whether all three name one leader of the room, and exactly one sequences.
    fn has_one_leader(&self) -> bool {
        let leaders: Vec<Option<NodeId>> = self.nodes.iter().map(Node::leader).collect();
        leaders.iter().all(|l| *l == leaders[0])
            && leaders[0].is_some_and(|l| IDS.contains(&l))
            && self.nodes.iter().filter(|n| n.is_sequencing()).count() == 1
    }

    /// Injects `bytes` into node `to` as if from bob's address.
    fn inject(&mut self, to: usize, bytes: &[u8]) {
        self.nodes[to].handle_datagram(self.now, addr(1), bytes);
        self.drain(to);
    }

    /// The room after the burst: panics unless it comes back (see the module docs).
    pub fn check_comes_back(&mut self) {
        let settle = self.now + SETTLE;
        let settled = self.run_until(settle, Room::has_one_leader);
        assert!(
            settled,
            "no single leader {SETTLE:?} after the burst: {}",
            self.describe()
        );
        for (i, text) in [
            (0, "from alice after the burst"),
            (2, "from carol after the burst"),
        ] {
            self.nodes[i].handle_command(
                self.now,
                WallMillis(1_700_000_000_000),
                Command::SendAll { text: text.into() },
            );
            self.drain(i);
            let shown = self.run_until(self.now + SHOW, |r| {
                r.shown.iter().all(|s| s.iter().any(|t| t == text))
            });
            assert!(
                shown,
                "{text:?} not shown everywhere within {SHOW:?}: {}",
                self.describe()
            );
        }
    }

    fn describe(&self) -> String {
        (0..3)
            .map(|i| {
                let n = &self.nodes[i];
                format!(
                    "{}: epoch {:?}, sequencing {}, member {}, online {}",
                    NAMES[i],
                    n.epoch(),
                    n.is_sequencing(),
                    n.is_member(),
                    n.members().online_peers().count()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The epoch node `i` follows.
    fn epoch_of(&self, i: usize) -> Epoch {
        self.nodes[i].epoch().unwrap_or(Epoch {
            term: 0,
            leader: IDS[0],
        })
    }
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

/// One valid message of every kind bob could send; numbers drawn from `input` if `wild`.
fn templates(room: &Room, to: usize, input: &mut Input, wild: bool) -> Vec<Message> {
    let epoch = room.epoch_of(to);
    let mut n = |normal: u64| if wild { input.number() } else { normal };
    let bob = SigningKey::from_bytes(&config(1).identity);
    // Sealed by bob for the node it goes to, as bob's node would (a mutation breaks it).
    let dm_id = DmId(n(100));
    let recipients = vec![NAMES[to].to_string()];
    let recipient_key = room.nodes[to]
        .members()
        .get(IDS[to])
        .map_or([0; 32], |m| m.key);
    let header = seal::DirectHeader {
        origin: IDS[1],
        id: dm_id,
        from_name: "bob",
        to: &recipients,
        recipient: NAMES[to],
        recipient_key: &recipient_key,
    };
    let content = seal::DirectContent {
        lamport: Lamport(50),
        sent_at: WallMillis(1_700_000_000_000),
        text: "fuzz".into(),
    };
    let dm = DirectMessage {
        id: dm_id,
        from_name: "bob".into(),
        sealed: seal::seal_direct(&bob, &header, &content, [7; 32]).unwrap_or_default(),
        to: recipients,
    };
    // Room messages carry bob's own proof: a run of one, from the start of his chain.
    let proven = |origin_seq: OriginSeq, lamport: Lamport| {
        let written = seal::Written {
            origin: IDS[1],
            name: "bob",
            origin_seq,
            lamport,
            sent_at: WallMillis(1_700_000_000_000),
            text: "fuzz",
        };
        let link = seal::chain_start(IDS[1]);
        let value = seal::chain(&link, &written);
        Provenance {
            link: Some(link),
            seal: Some(seal::seal_run(&bob, &value)),
        }
    };
    let entry_seq = OriginSeq(n(1));
    let entry = ChatEntry {
        seq: Seq(n(3)),
        origin: IDS[1],
        name: "bob".into(),
        origin_seq: entry_seq,
        lamport: Lamport(60),
        sent_at: WallMillis(1_700_000_000_000),
        text: "fuzz".into(),
        term: n(epoch.term),
        proof: proven(entry_seq, Lamport(60)),
    };
    let submit_seq = OriginSeq(n(1));
    let member = |i: usize, presence: Presence, lamport: u64| Member {
        id: IDS[i],
        name: NAMES[i].into(),
        addr: addr(i),
        presence,
        key: room.nodes[i]
            .members()
            .get(IDS[i])
            .map_or([0; 32], |m| m.key),
        stamp: Stamp {
            lamport: Lamport(lamport),
            by: IDS[1],
        },
    };
    let presence = if n(0) % 2 == 0 {
        Presence::Offline
    } else {
        Presence::Online
    };
    vec![
        Message::Members(vec![member(1, presence, n(40))]),
        Message::Members(vec![member(n(2) as usize % 3, presence, n(45))]),
        Message::Elected(Epoch {
            term: n(epoch.term + 1),
            leader: IDS[n(2) as usize % 3],
        }),
        Message::Election {
            term: n(epoch.term + 1),
            candidate: IDS[n(1) as usize % 3],
            log: Seq(n(1)),
        },
        Message::PreVote {
            term: n(epoch.term + 1),
            follows: None,
        },
        Message::PreVoteReply {
            term: n(epoch.term + 1),
            granted: n(0) % 2 == 0,
            follows: Some(epoch),
        },
        Message::SyncRequest {
            epoch: Epoch {
                term: n(epoch.term + 1),
                leader: IDS[1],
            },
            from: Seq(n(1)),
        },
        Message::SyncReply {
            epoch,
            next: Seq(n(1)),
            high: Seq(n(2)),
            sent: n(0) as u32, votes: Vec::new(),
        },
        Message::Commit {
            term: n(epoch.term),
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
        Message::Submit(Submit {
            origin_seq: submit_seq,
            committed_below: OriginSeq(n(1)),
            name: "bob".into(),
            lamport: Lamport(70),
            sent_at: WallMillis(1_700_000_000_000),
            text: "fuzz".into(),
            proof: proven(submit_seq, Lamport(70)),
        }),
        Message::Direct(dm.clone()),
        Message::Store {
            to: n(0) as u8,
            dm: dm.clone(),
        },
        Message::Queued(QueuedDm {
            origin: NodeId(n(IDS[1].0)),
            to: 0,
            dm: dm.clone(),
        }),
        Message::Handover(QueuedDm {
            origin: IDS[1],
            to: 0,
            dm: dm.clone(),
        }),
        Message::Dequeued {
            origin: IDS[1],
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
            name: "bob".into(),
            key: [1; 32],
        },
        Message::Challenge {
            nonce: [9; 16],
            newcomer: IDS[1],
            of_member: false,
        },
        Message::Proof {
            signature: vec![7; 64],
        },
        Message::JoinRefused {
            reason: Refusal::NoLeader,
        },
    ]
}

/// The next mutated datagram of the burst, for node `to`.
fn mutated(room: &Room, to: usize, k: u64, input: &mut Input) -> Vec<u8> {
    let wild = input.byte() & 1 == 1;
    let lamport = if input.byte().is_multiple_of(4) {
        input.number()
    } else {
        1_000 + k
    };
    let epoch = room.epoch_of(to);
    let choice = input.below(24);
    let packet = match choice {
        0 => Packet::Heartbeat(Heartbeat {
            epoch: Some(Epoch {
                term: if wild { input.number() } else { epoch.term },
                leader: IDS[input.below(3)],
            }),
            delivered: Seq(if wild { input.number() } else { 0 }),
            digest: input.u64(),
            probe: input.byte() & 1 == 1,
            unknown: input.byte() & 1 == 1,
        }),
        1 => Packet::Ack(Ack {
            of: IDS[to],
            stream: input.u64() as u32,
            upto: input.number(),
            ranges: vec![(input.number(), input.number())],
        }),
        _ => {
            let mut all = templates(room, to, input, wild);
            let msg = all.swap_remove((choice - 2) % all.len());
            Packet::Data {
                id: MsgId::new(4000, k),
                msg,
            }
        }
    };
    let Ok(mut bytes) = encode(&Envelope {
        from: IDS[1],
        lamport: Lamport(lamport),
        packets: vec![packet],
    }) else {
        return vec![2];
    };
    for _ in 0..input.below(4) {
        let i = input.below(bytes.len());
        match input.byte() % 3 {
            0 => bytes[i] ^= input.byte() | 1,
            1 => bytes[i] = input.byte(),
            _ => bytes.truncate(i.max(1)),
        }
    }
    bytes
}

/// The `room_burst` harness (the input format is in the module documentation).
pub fn run_room_burst(data: &[u8]) {
    let mut input = Input(data);
    let count = 1 + input.below(MAX_BURST);
    let mut room = Room::new();
    for k in 1..=count as u64 {
        let ctl = input.byte();
        let to = if ctl & 1 == 0 { 0 } else { 2 };
        let advance = [0, 0, 1, 10, 50, 100, 200, 500][usize::from(ctl >> 1 & 7)];
        if advance > 0 {
            let until = room.now + Duration::from_millis(advance);
            room.run_until(until, |_| false);
            room.now = room.now.max(until);
        }
        let bytes = mutated(&room, to, k, &mut input);
        room.inject(to, &bytes);
    }
    room.check_comes_back();
}
