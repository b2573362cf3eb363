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

/// Sends a join for `name` from `id` at `port` with identity `key`, and answers the
/// leader's challenge by signing with `signer`, both outside a session (as a newcomer
/// does). Returns what the node sent after the proof.
fn join_as(
    n: &mut Node,
    t0: Instant,
    (id, port, name): (NodeId, u16, &str),
    key: &SigningKey,
    signer: &SigningKey,
) -> Out {
    let join = Message::Join {
        name: name.into(),
        key: key.verifying_key().to_bytes(),
    };
    n.handle_outside_datagram(t0, addr(port), &data(id, 1, join));
    let out = drain(n);
    let nonce = match out.messages_to(addr(port)).first() {
        Some(Message::Challenge { nonce, .. }) => *nonce,
        _ => return out,
    };
    let signature = signer
        .sign(&proof_message(&nonce, id, name))
        .to_bytes()
        .to_vec();
    let proof = data(id, 2, Message::Proof { signature });
    n.handle_outside_datagram(t0, addr(port), &proof);
    drain(n)
}

fn join_bob(n: &mut Node, t0: Instant) -> Out {
    let key = identity(BOB.0 as u8);
    join_as(n, t0, (BOB, 2, "bob"), &key, &key)
}

/// The identity the test node named `name` runs with (see [`NodeConfig::new`]).
fn own_identity(name: &str) -> SigningKey {
    SigningKey::from_bytes(&NodeConfig::new(name, addr(1), None).identity)
}

/// Direct message `id` from `from` (node `origin`, signing with `signer`) to `to`, the
/// copy sealed for `recipient` (whose identity is `recipient_key`).
fn sealed_dm(
    (origin, from, signer): (NodeId, &str, &SigningKey),
    to: &[&str],
    (recipient, recipient_key): (&str, &SigningKey),
    id: u64,
    text: &str,
) -> DirectMessage {
    let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    let key = recipient_key.verifying_key().to_bytes();
    let header = seal::DirectHeader {
        origin,
        id: DmId(id),
        from_name: from,
        to: &to,
        recipient,
        recipient_key: &key,
    };
    let content = seal::DirectContent {
        lamport: Lamport(3),
        sent_at: WallMillis(0),
        text: text.into(),
    };
    let sealed = seal::seal_direct(signer, &header, &content, [7; 32]).expect("sealed");
    DirectMessage {
        id: DmId(id),
        from_name: from.into(),
        to,
        sealed,
    }
}

/// A direct message from carol to bob (the follower), id 1.
fn dm_from_carol(text: &str) -> Message {
    let carol = (CAROL, "carol", &identity(CAROL.0 as u8));
    Message::Direct(sealed_dm(
        carol,
        &["bob"],
        ("bob", &own_identity("bob")),
        1,
        text,
    ))
}

/// "bob" at port 2 asking to join through alice (port 1), its join drained.
fn joining_bob(t0: Instant) -> Node {
    let mut cfg = NodeConfig::new("bob", addr(2), Some(addr(1)));
    // These tests send no heartbeats: keep the failure detector's newcomer grace long.
    cfg.join_timeout = Duration::from_secs(600);
    let mut n = Node::new(cfg, BOB, t0);
    drain(&mut n);
    n
}

/// Bob's own entry as the leader wrote it, at Lamport time `lamport`.
fn bob_as_written_by_leader(n: &Node, lamport: u64) -> Member {
    let mut bob = n.members().get(BOB).cloned().expect("own entry");
    bob.stamp = Stamp {
        lamport: Lamport(lamport),
        by: LEADER,
    };
    bob
}

/// Alice's welcome for bob into a room of alice, bob (entry `bob`) and carol (port 3).
fn welcome_for_bob(bob: Member) -> Welcome {
    Welcome {
        newcomer: BOB,
        epoch: Epoch {
            term: 0,
            leader: LEADER,
        },
        next_seq: Seq(1),
        oldest: Seq(1),
        pending_from: Seq(1),
        part: 0,
        parts: 1,
        voting: Vec::new(),
        unlisted_voters: Vec::new(),
        voters_at: Seq(0),
        settling: vec![],
        voucher: None,
        members: vec![member(LEADER, "alice", 1), bob, member(CAROL, "carol", 3)],
    }
}

/// The leader's answer to bob's join: its ack (the first message of bob's join-exchange
/// stream to it, stream 1: stream 0 is the session's) with welcome `w`, as message `id`.
fn join_answered(w: Welcome, id: u64) -> Vec<u8> {
    let packets = vec![
        Packet::Ack(Ack {
            of: BOB,
            stream: 1,
            upto: 1,
            ranges: Vec::new(),
        }),
        Packet::Data {
            id: MsgId(id),
            msg: Message::Welcome(w),
        },
    ];
    datagram(LEADER, packets)
}

/// Bob (node `n`) goes offline as [`bob_deregs`], then types `reg` through alice a
/// second later; returns that time (outputs drained).
fn bob_deregs_and_regs_through_alice(n: &mut Node, t0: Instant) -> Instant {
    bob_deregs(n, t0);
    let t1 = t0 + Duration::from_secs(1);
    n.handle_command(
        t1,
        WallMillis(2),
        Command::Reg {
            name: None,
            via: Some(addr(1)),
        },
    );
    drain(n);
    t1
}

/// Bob (node `n`) types `dereg`; alice (port 1) and carol (port 3) ack all he sends
/// them, until he is out of the ring.
fn bob_deregs(n: &mut Node, t0: Instant) {
    n.handle_command(t0, WallMillis(1), Command::Dereg { name: None });
    let mut out = drain(n);
    for _ in 0..4 {
        for (id, port) in [(LEADER, 1), (CAROL, 3)] {
            let ids = out.ids_to(addr(port), |_| true);
            if !ids.is_empty() {
                n.handle_datagram(t0, addr(port), &ack_of(BOB, id, &ids));
            }
        }
        out = drain(n);
    }
    assert!(!n.in_ring(), "bob is offline: {:?}", n.life.phase());
}

/// Bob's own word about himself (port 2): `presence`, stamped and sent at `lamport`.
fn bob_says(presence: Presence, lamport: u64) -> Vec<u8> {
    member_says((BOB, "bob", 2), presence, lamport)
}

/// Member `id` (`name`, at `port`) says it is `presence`, its own word stamped `lamport`.
fn member_says((id, name, port): (NodeId, &str, u16), presence: Presence, lamport: u64) -> Vec<u8> {
    let mut m = member(id, name, port);
    m.presence = presence;
    m.stamp = Stamp {
        lamport: Lamport(lamport),
        by: id,
    };
    let env = Envelope {
        from: id,
        lamport: Lamport(lamport),
        packets: vec![Packet::Data {
            id: MsgId(900 + lamport),
            msg: Message::Members(vec![m]),
        }],
    };
    encode(&env).unwrap()
}

/// A follower "bob" at port 2 in a room led by alice (port 1), carol at port 3.
fn follower(t0: Instant) -> Node {
    follower_with(t0, Vec::new()).0
}

/// [`follower`], with `more` members in the welcome's table; also what the join showed.
fn follower_with(t0: Instant, more: Vec<Member>) -> (Node, Out) {
    follower_welcomed(t0, more, false)
}

/// As [`follower_with`]; with `all_vote`, every member named is a voter.
fn follower_welcomed(t0: Instant, more: Vec<Member>, all_vote: bool) -> (Node, Out) {
    follower_welcomed_as(t0, |w| {
        w.members.extend(more);
        if all_vote {
            w.voting = vec![0xff; w.members.len().div_ceil(8)];
        }
    })
}

/// Bob welcomed by [`welcome_for_bob`] as `edit` changes it; also what the join showed
/// and what bob sent then (nothing acked).
fn welcomed_as(t0: Instant, edit: impl FnOnce(&mut Welcome)) -> (Node, Out) {
    let mut n = joining_bob(t0);
    let mut w = welcome_for_bob(bob_as_written_by_leader(&n, 2));
    edit(&mut w);
    n.handle_datagram(t0, addr(1), &join_answered(w, 1));
    let out = drain(&mut n);
    (n, out)
}

/// [`welcomed_as`], alice acking bob's word that he holds his welcome (and nothing else
/// in flight).
fn follower_welcomed_as(t0: Instant, edit: impl FnOnce(&mut Welcome)) -> (Node, Out) {
    let (mut n, out) = welcomed_as(t0, edit);
    assert!(matches!(out.events[0], Event::Joined { .. }));
    // It tells the leader it holds its welcome; the leader acks.
    let taken = out.ids_to(addr(1), |m| matches!(m, Message::WelcomeTaken));
    assert_eq!(taken.len(), 1, "the newcomer says it holds its welcome");
    n.handle_datagram(t0, addr(1), &ack_of(BOB, LEADER, &taken));
    assert_eq!(n.transport.in_flight(), 0, "nothing awaits an ack");
    (n, out)
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
mod takeover;
mod takeover_answers;
mod takeover_config;
mod takeover_fetch;
mod terms;
mod transport;
mod views;
mod vouchers;
mod welcome_taken;
mod welcomed;
