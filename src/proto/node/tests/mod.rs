//! Node unit tests: hand-built datagrams in, assertions on what the polls return.

use super::*;
use crate::ids::MsgId;
use crate::ids::{DmId, OriginSeq};
use crate::proto::CommandError;
use crate::proto::seal;
use crate::wire::{
    Ack, ChatEntry, DirectMessage, Envelope, Epoch, Newcomer, Refusal, Submit, Welcome, encode,
    proof_message,
};
use ed25519_dalek::Signer;

/// The instant a test starts from. Only differences from it matter to the node, so the
/// tests stay deterministic; this is the one place they read the clock.
fn base_time() -> Instant {
    Instant::now()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

const LEADER: NodeId = NodeId(100);
const BOB: NodeId = NodeId(200);
const CAROL: NodeId = NodeId(300);

/// What a node sent and showed: every packet it sent (heartbeats left out), with its
/// destination, and the destinations of the datagrams that carried them.
#[derive(Default)]
struct Out {
    sent: Vec<(SocketAddr, Packet)>,
    datagrams: Vec<SocketAddr>,
    events: Vec<Event>,
}

impl Out {
    fn messages_to(&self, to: SocketAddr) -> Vec<&Message> {
        self.sent
            .iter()
            .filter(|(a, _)| *a == to)
            .filter_map(|(_, p)| match p {
                Packet::Data { msg, .. } => Some(msg),
                Packet::Ack(_) | Packet::Heartbeat(_) => None,
            })
            .collect()
    }

    /// The transport ids of the data packets sent to `to` whose message `want` picks.
    fn ids_to(&self, to: SocketAddr, want: impl Fn(&Message) -> bool) -> Vec<MsgId> {
        self.sent
            .iter()
            .filter(|(a, _)| *a == to)
            .filter_map(|(_, p)| match p {
                Packet::Data { id, msg } if want(msg) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn acks_to(&self, to: SocketAddr) -> Vec<&Ack> {
        self.sent
            .iter()
            .filter(|(a, _)| *a == to)
            .filter_map(|(_, p)| match p {
                Packet::Ack(ack) => Some(ack),
                _ => None,
            })
            .collect()
    }
}

fn drain(node: &mut Node) -> Out {
    let mut sent = Vec::new();
    let mut datagrams = Vec::new();
    while let Some(t) = node.poll_transmit() {
        assert!(t.bytes.len() <= crate::wire::MAX_PLAIN);
        let env = decode(&t.bytes).expect("node sends valid datagrams");
        datagrams.push(t.to);
        // Heartbeats have their own tests; here they would only be noise.
        for p in env.packets {
            if !matches!(p, Packet::Heartbeat(_)) {
                sent.push((t.to, p));
            }
        }
    }
    let mut events = Vec::new();
    while let Some(e) = node.poll_event() {
        events.push(e);
    }
    Out {
        sent,
        datagrams,
        events,
    }
}

/// The numbers of the sequenced messages in `out` to `to`.
fn sequenced(out: &Out, to: SocketAddr) -> Vec<u64> {
    out.messages_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Message::Sequenced(e) => Some(e.seq.0),
            _ => None,
        })
        .collect()
}

/// What `n` sends once everything held back for an ack may go (see `proto::batch`).
fn drain_after_hold(n: &mut Node, t: Instant) -> Out {
    let mut out = drain(n);
    n.handle_timeout(t + Duration::from_millis(2));
    let later = drain(n);
    out.sent.extend(later.sent);
    out.events.extend(later.events);
    out
}

/// `from`'s ack of the data packets `ids` that `of` sent it.
fn ack_of(of: NodeId, from: NodeId, ids: &[MsgId]) -> Vec<u8> {
    let packets = ids
        .iter()
        .map(|id| {
            Packet::Ack(Ack {
                of,
                stream: id.stream(),
                upto: 0,
                ranges: vec![(id.seq(), id.seq())],
            })
        })
        .collect();
    datagram(from, packets)
}

/// The leader's (term 0) notice that the room is committed up to `upto`.
fn commit(upto: u64) -> Message {
    Message::Commit {
        term: 0,
        upto: Seq(upto),
    }
}

/// Whether `out` acks the reliable message `id` to `to`.
fn acked(out: &Out, to: SocketAddr, id: u64) -> bool {
    out.acks_to(to).iter().any(|a| a.covers(id))
}

/// The notices among `out`'s events, in order.
fn notices(out: &Out) -> Vec<String> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Notice(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn data(from: NodeId, id: u64, msg: Message) -> Vec<u8> {
    datagram(from, vec![Packet::Data { id: MsgId(id), msg }])
}

fn datagram(from: NodeId, packets: Vec<Packet>) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(50),
        packets,
    })
    .unwrap()
}

/// A test identity: `n` repeated.
fn identity(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn member(id: NodeId, name: &str, port: u16) -> Member {
    Member {
        id,
        name: name.into(),
        addr: addr(port),
        presence: Presence::Online,
        key: identity(id.0 as u8).verifying_key().to_bytes(),
        stamp: Stamp {
            lamport: Lamport(1),
            by: id,
        },
    }
}

fn leader(t0: Instant) -> Node {
    let mut n = Node::new(NodeConfig::new("alice", addr(1), None), LEADER, t0);
    drain(&mut n);
    n
}

/// A leader "alice" (port 1) that has just admitted "bob" (port 2), who now votes (bob
/// acked the configuration entry that adds him); outputs drained.
fn leader_with_bob(t0: Instant) -> Node {
    let mut n = leader(t0);
    let out = join_bob(&mut n, t0);
    ack_proposals(&mut n, t0, &out, &[(BOB, 2)]);
    assert!(n.room.voters().contains("bob"), "bob votes");
    n
}

/// Alice leading bob (port 2) and carol (port 3); outputs drained.
fn leader_of_three(t0: Instant) -> Node {
    let mut n = leader_with_bob(t0);
    let carol = identity(CAROL.0 as u8);
    let out = join_as(&mut n, t0, (CAROL, 3, "carol"), &carol, &carol);
    ack_proposals(&mut n, t0, &out, &[(BOB, 2), (CAROL, 3)]);
    assert_eq!(n.room.voters().len(), 3, "carol votes");
    n
}

/// Each of `members` (id, port) acks everything the leader sent it in `out`, and then
/// what that brings (the configuration entry that adds a newcomer, its commit notice),
/// until the leader sends them nothing more; outputs drained.
fn ack_proposals(n: &mut Node, t0: Instant, out: &Out, members: &[(NodeId, u16)]) {
    let mut out = Out {
        sent: out.sent.clone(),
        datagrams: Vec::new(),
        events: Vec::new(),
    };
    for _ in 0..5 {
        let mut any = false;
        for &(id, port) in members {
            let ids = out.ids_to(addr(port), |_| true);
            if !ids.is_empty() {
                any = true;
                n.handle_datagram(t0, addr(port), &ack_of(n.id(), id, &ids));
            }
        }
        if !any {
            return;
        }
        out = drain(n);
    }
}

/// `e` as its origin would have written it: a run of its own, sealed with `signer`.
fn sealed_by(signer: &SigningKey, mut e: ChatEntry) -> ChatEntry {
    let link = seal::chain_start(e.origin);
    let value = seal::chain(&link, &e.written(e.origin));
    e.proof = Provenance {
        link: Some(link),
        seal: Some(seal::seal_run(signer, &value)),
    };
    e
}

/// `entries` of `origin` as one run of its own, as it seals them: the first with its
/// link (from the start of its chain), the last with the seal of its test identity.
fn sealed_run(origin: NodeId, entries: impl IntoIterator<Item = ChatEntry>) -> Vec<ChatEntry> {
    let mut link = seal::chain_start(origin);
    let mut run: Vec<ChatEntry> = entries.into_iter().collect();
    let last = run.len().saturating_sub(1);
    for (k, e) in run.iter_mut().enumerate() {
        let value = seal::chain(&link, &e.written(origin));
        e.proof = Provenance {
            link: (k == 0).then_some(link),
            seal: (k == last).then(|| seal::seal_run(&identity(origin.0 as u8), &value)),
        };
        link = value;
    }
    run
}

/// Room message `seq` from `origin` (sealed with the test identity of its id, as
/// [`member`] binds it), its text `m{seq}`.
fn entry(seq: u64, origin: NodeId, name: &str, origin_seq: u64) -> ChatEntry {
    let e = ChatEntry {
        seq: Seq(seq),
        origin,
        name: name.into(),
        origin_seq: OriginSeq(origin_seq),
        lamport: Lamport(1),
        sent_at: WallMillis(0),
        text: format!("m{seq}"),
        term: 0,
        proof: Provenance::default(),
    };
    sealed_by(&identity(origin.0 as u8), e)
}

/// Room message `seq` as the leader sequences submission `s` of `origin` (its proof too).
fn entry_of(seq: u64, origin: NodeId, s: &Submit) -> ChatEntry {
    ChatEntry {
        seq: Seq(seq),
        origin,
        name: s.name.clone(),
        origin_seq: s.origin_seq,
        lamport: s.lamport,
        sent_at: s.sent_at,
        text: s.text.clone(),
        term: 0,
        proof: s.proof.clone(),
    }
}

/// Bob's submission `n` (a run of its own, sealed with the identity he joined with).
fn submit(n: u64) -> Submit {
    let mut s = Submit {
        origin_seq: OriginSeq(n),
        committed_below: OriginSeq(n),
        name: "bob".into(),
        lamport: Lamport(1),
        sent_at: WallMillis(0),
        text: format!("s{n}"),
        proof: Provenance::default(),
    };
    let link = seal::chain_start(BOB);
    let value = seal::chain(&link, &s.written(BOB));
    s.proof = Provenance {
        link: Some(link),
        seal: Some(seal::seal_run(&identity(BOB.0 as u8), &value)),
    };
    s
}

fn room_seqs(out: &Out) -> Vec<u64> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Room { entry, .. } => Some(entry.seq.0),
            _ => None,
        })
        .collect()
}

/// A join a stranger sends under whatever id it claims (name mallory, key 99).
fn forged_join() -> Message {
    Message::Join {
        name: "mallory".into(),
        key: identity(99).verifying_key().to_bytes(),
    }
}

mod joins;
use joins::*;

mod away;
mod basics;
mod bounds;
mod catchup;
mod claims;
mod commit;
mod departed;
mod flow;
mod forgery;
mod gave_way;
mod guarded;
mod heartbeats;
mod hostile;
mod joining;
mod kept_order;
mod knocks;
mod leaving_voters;
mod links;
mod lost_processes;
mod membership;
mod missed_leaders;
mod numbers;
mod pace;
mod passes;
mod pending;
mod prevote;
mod proven;
mod recounts;
mod rejoin;
mod relays;
mod relays_leader;
mod restart_search;
mod runs;
mod skips;
mod takeover;
mod takeover_answers;
mod takeover_batches;
mod takeover_closing;
mod takeover_config;
mod takeover_fetch;
mod takeover_forged;
mod takeover_gaps;
mod takeover_lies;
mod takeover_proven;
mod terms;
mod transport;
mod views;
mod vouchers;
mod welcome_taken;
mod welcomed;
