//! The attacks of issue 17 on bounds and claims, against the real binary on 127.0.0.1,
//! built from the project's own wire code: a hostile member (datagrams forged with a
//! member's id from that member's own address, through a raw socket, as a neighbour on
//! the same LAN could) and a hostile outsider (plain sockets on any 127/8 address). Each
//! attack is refused, and the room still chats.
//!
//! The rooms here are open (no room key): what is tested is what a node believes, not
//! whether a datagram opens. Forging a source address needs root (or `CAP_NET_RAW`);
//! without it the tests that need it print one `skipped: <reason>` line and pass.
//!
//! Each step waits for the line (or counter) that proves the previous one happened, with a
//! generous bound; nothing sleeps and hopes, except where a test must show that something
//! does not happen (then it watches for a stated time).

mod common;

use common::*;
use ringchat::ids::{DmId, Lamport, MsgId, NodeId, Seq, WallMillis};
use ringchat::wire::{
    DirectMessage, Envelope, Epoch, Heartbeat, Member, Message, Packet, Presence, QueuedDm, Stamp,
    decode, encode,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

/// Flags every node of these tests gets: an open room, nothing on disk.
const OPEN_ROOM: &[&str] = &["--ephemeral"];

/// The transport stream forged messages use: far from the few streams a real member
/// numbers its destinations with, so none is taken for a duplicate of the member's own.
const FORGED_STREAM: u32 = 4000;

/// Sends UDP datagrams with any source address and port: a raw IPv4 socket that writes
/// the IP header itself (`IPPROTO_RAW`).
struct Spoofer {
    socket: Socket,
}

impl Spoofer {
    /// The raw socket, or why there is none (not root).
    fn new() -> Result<Spoofer, String> {
        Socket::new(
            Domain::IPV4,
            Type::from(libc::SOCK_RAW),
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map(|socket| Spoofer { socket })
        .map_err(|e| format!("cannot open a raw socket to forge source addresses: {e}"))
    }

    /// Sends `payload` to `to` as a UDP datagram from `from`.
    fn send(&self, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
            panic!("IPv4 only");
        };
        let packet = ipv4_udp(from, to, payload);
        // A full socket buffer may refuse one; the caller counts what it meant to send.
        let _ = self
            .socket
            .send_to(&packet, &SockAddr::from(SocketAddr::V4(to)));
    }
}

/// An IPv4 packet carrying one UDP datagram (the kernel fills in the IP checksum; a UDP
/// checksum of zero means none, which IPv4 allows).
fn ipv4_udp(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// The spoofer, or `None` after printing why the test is skipped.
fn spoofer() -> Option<Spoofer> {
    match Spoofer::new() {
        Ok(s) => Some(s),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

/// A node of an open room: `--name name --port 0 [--join contact] --ephemeral`.
#[track_caller]
fn start(scratch: &Scratch, name: &str, join: Option<u16>) -> Proc {
    Proc::start_with(scratch, name, join, OPEN_ROOM)
}

/// alice creates an open room; bob joins through alice, carol through bob.
#[track_caller]
fn open_trio(scratch: &Scratch) -> (Proc, Proc, Proc) {
    let mut alice = start(scratch, "alice", None);
    alice.expect_line("created a new room; you (alice) are the leader");
    let mut bob = start(scratch, "bob", Some(alice.port));
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");
    let mut carol = start(scratch, "carol", Some(bob.port));
    carol.expect_line("joined the room: 3 members, leader is alice");
    alice.expect_line("carol is online");
    bob.expect_line("carol is online");
    (alice, bob, carol)
}

/// What `status` says of a node: its id, its address, its leader's name.
struct Seen {
    id: NodeId,
    addr: SocketAddr,
    leader: String,
}

#[track_caller]
fn seen(p: &mut Proc) -> Seen {
    let lines = status(p);
    let me = lines
        .iter()
        .find_map(|l| l.strip_prefix("me:"))
        .unwrap_or_else(|| p.fail("no `me:` line in status"));
    // `me:      alice (00f3...) at 127.0.0.1:4242`
    let id = me
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(hex, _)| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| p.fail(&format!("no id in {me:?}")));
    let addr = me
        .rsplit_once(" at ")
        .and_then(|(_, a)| a.trim().parse().ok())
        .unwrap_or_else(|| p.fail(&format!("no address in {me:?}")));
    let leader = lines
        .iter()
        .find_map(|l| l.strip_prefix("leader:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| p.fail("no `leader:` line in status"));
    Seen {
        id: NodeId(id),
        addr,
        leader,
    }
}

/// A datagram from `from` at Lamport time `lamport` carrying `packets`.
fn datagram(from: NodeId, lamport: u64, packets: Vec<Packet>) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(lamport),
        packets,
    })
    .expect("fits a datagram")
}

/// A datagram from `from` carrying reliable message `msg` as number `n` of the forged
/// stream.
fn forged(from: NodeId, n: u64, lamport: u64, msg: Message) -> Vec<u8> {
    let id = MsgId::new(FORGED_STREAM, n);
    datagram(from, lamport, vec![Packet::Data { id, msg }])
}

/// Resident memory of process `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A room message typed at `from` is shown at every node of `all` (checked by text).
#[track_caller]
fn chats(from: &mut Proc, others: &mut [&mut Proc], text: &str) {
    from.send(&format!("send_all {text}"));
    let shown = |l: &str| RoomLine::parse(l).is_some_and(|r| r.text == text);
    from.expect(shown, "our own message, committed");
    for p in others.iter_mut() {
        p.expect(shown, "the message after the attack");
    }
}

/// Fails if any of `procs` printed that the leader changed.
#[track_caller]
fn leader_never_changed(procs: &[&Proc]) {
    for p in procs {
        if let Some(l) = p.seen.iter().find(|l| l.starts_with("leader is now")) {
            p.fail(&format!("the leader changed: {l:?}"));
        }
    }
}

/// The public key of `name`'s identity (its file in the scratch directory): a member
/// reads every other member's off the member table it is welcomed with.
fn public_key(scratch: &Scratch, name: &str) -> [u8; 32] {
    let path = scratch.path().join(format!("{name}.identity"));
    let secret = ringchat::identity::load_or_create(&path).expect("the identity file");
    ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes()
}

/// Row "`Members` entry marking carol offline with stamp (2^64-1, 2^64-1)": it worked for
/// good, carol could not refute, her messages were dropped. Now the entry, forged from
/// bob's address, is dropped (a stamp later than its datagram); the same at the highest
/// stamp a datagram may carry is either checked (bob does not watch carol) or refuted by
/// carol: she stays online everywhere and her message reaches everyone.
#[test]
#[ignore = "written before pairwise sessions: its forged Members datagram is now refused by the guard (no session) before the core sees it, so the core-level drop it counts never happens; the bound itself is tested at the node (src/proto/node/tests)"]
fn a_forged_offline_stamp_cannot_silence_a_member() {
    let Some(spoof) = spoofer() else { return };
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = open_trio(&scratch);
    let (a, b, c) = (seen(&mut alice), seen(&mut bob), seen(&mut carol));
    let carol_entry = |stamp: u64| Member {
        id: c.id,
        name: "carol".into(),
        addr: c.addr,
        presence: Presence::Offline,
        key: public_key(&scratch, "carol"),
        stamp: Stamp {
            lamport: Lamport(stamp),
            by: NodeId(u64::MAX),
        },
    };
    let before = counter(&mut alice, "dropped");
    let forged_max = forged(b.id, 1, 1000, Message::Members(vec![carol_entry(u64::MAX)]));
    spoof.send(b.addr, a.addr, &forged_max);
    wait_counter(&mut alice, "dropped", |v| v > before);
    let limit = 1u64 << 62;
    let forged_limit = forged(b.id, 2, limit, Message::Members(vec![carol_entry(limit)]));
    spoof.send(b.addr, a.addr, &forged_limit);
    // A check (a probe, an answer) or a refutation settles it within a second or two.
    for p in [&mut alice, &mut bob, &mut carol] {
        all_online_soon(p, 3);
    }
    chats(&mut carol, &mut [&mut alice, &mut bob], "still here");
}

/// Polls `list` at `p` until all `n` members are online (within [`WAIT`]).
#[track_caller]
fn all_online_soon(p: &mut Proc, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let members = list(p, n);
        if members.iter().all(|m| m.online) {
            return;
        }
        if Instant::now() > deadline {
            p.fail(&format!("not all online after {WAIT:?}: {members:?}"));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `status` at `p` until counter `name` satisfies `done`.
#[track_caller]
fn wait_counter(p: &mut Proc, name: &str, done: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = counter(p, name);
        if done(v) {
            return v;
        }
        if Instant::now() > deadline {
            p.fail(&format!("counter {name} is {v} after {WAIT:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A heartbeat from `from` naming `epoch`.
fn beat(from: NodeId, lamport: u64, epoch: Epoch) -> Vec<u8> {
    let hb = Heartbeat {
        epoch: Some(epoch),
        delivered: Seq(0),
        digest: 0,
        probe: false,
    };
    datagram(from, lamport, vec![Packet::Heartbeat(hb)])
}

/// Row "`Elected` / heartbeat with term 2^62 naming any id": the room followed a
/// non-existent or departed leader for ever. Forged from bob's address to alice and
/// carol: announcements and heartbeats of term 2^62 naming a ghost, a sync request for a
/// ghost, an announcement of term 1 naming carol from bob, a heartbeat naming carol. The
/// far terms are dropped, the rest is one member's word (carol, probed, says alice
/// leads): alice stays leader everywhere, no leader change is ever printed, and the room
/// chats. The wait covers a whole election timeout (a leader check would have fired).
#[test]
fn forged_terms_cannot_capture_the_room() {
    let Some(spoof) = spoofer() else { return };
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = open_trio(&scratch);
    let (a, b, c) = (seen(&mut alice), seen(&mut bob), seen(&mut carol));
    let ghost = NodeId(0x6057);
    let far = 1u64 << 62;
    let mut n = 0;
    let mut msg = |m: Message| {
        n += 1;
        forged(b.id, n, 5_000, m)
    };
    let attacks = [
        msg(Message::Elected(Epoch {
            term: far,
            leader: ghost,
        })),
        beat(
            b.id,
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
            b.id,
            5_000,
            Epoch {
                term: 1,
                leader: c.id,
            },
        ),
    ];
    for d in &attacks {
        spoof.send(b.addr, a.addr, d);
        spoof.send(b.addr, c.addr, d);
    }
    thread::sleep(Duration::from_millis(2500));
    for p in [&mut alice, &mut bob, &mut carol] {
        let s = seen(p);
        assert_eq!(s.leader, "alice", "{}", p.label);
    }
    leader_never_changed(&[&alice, &bob, &carol]);
    chats(
        &mut bob,
        &mut [&mut alice, &mut carol],
        "still alice's room",
    );
}

/// Row "1 010 `Store` requests for dave": a real message for dave then got "queue is
/// full". Forged from carol's address to the leader: carol's share stops at 200; bob's
/// message for dave is saved; carol's own is refused with a clear error naming the limit.
#[test]
#[ignore = "written before pairwise sessions: its plain Store datagrams from a member address are refused by the guard before the queue cap is reached; the cap is tested at the node"]
fn one_member_cannot_fill_anothers_offline_queue() {
    let Some(spoof) = spoofer() else { return };
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = open_trio(&scratch);
    let mut dave = start(&scratch, "dave", Some(alice.port));
    dave.expect_line("joined the room: 4 members, leader is alice");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("dave is online");
    }
    dave.send("dereg");
    dave.expect(|l| l.starts_with("you are offline"), "the offline notice");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.expect_line("dave is offline");
    }
    let (a, c) = (seen(&mut alice), seen(&mut carol));
    let limited = counter(&mut alice, "limited");
    for k in 0..1010u64 {
        let dm = DirectMessage {
            id: DmId(1_000_000 + k),
            from_name: "carol".into(),
            to: vec!["dave".into()],
            sealed: format!("filler {k}").into_bytes(),
        };
        spoof.send(
            c.addr,
            a.addr,
            &forged(c.id, k + 1, 1_000, Message::Store { to: 0, dm }),
        );
        if k % 100 == 99 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    wait_counter(&mut alice, "limited", |v| v >= limited + 800);
    bob.send("send dave hello from bob");
    bob.expect_line("[dave is offline: message saved by alice.]");
    carol.send("send dave hello from carol");
    carol.expect(
        |l| {
            l.starts_with("error: private message to dave not delivered")
                && l.contains("200 of your messages already wait")
        },
        "the refusal naming carol's own limit",
    );
    chats(
        &mut bob,
        &mut [&mut alice, &mut carol],
        "after the store flood",
    );
}

/// Row "15 000 `Queued` items for invented names": memory grew 9.4 -> 23.1 MB. Forged to
/// bob from the leader's address for invented names, and from carol's (who does not
/// lead): none is kept, each is counted (`limited`), and bob's memory stays where it was.
#[test]
#[ignore = "written before pairwise sessions: its plain Queued datagrams are refused by the guard before the name check; the check is tested at the node"]
fn kept_messages_for_invented_names_are_not_kept() {
    let Some(spoof) = spoofer() else { return };
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = open_trio(&scratch);
    let (a, b, c) = (seen(&mut alice), seen(&mut bob), seen(&mut carol));
    let rss_before = rss_kb(bob.pid());
    let limited = counter(&mut bob, "limited");
    let item = |k: u64, to: String| {
        Message::Queued(QueuedDm {
            origin: c.id,
            to: 0,
            dm: DirectMessage {
                id: DmId(k),
                from_name: "carol".into(),
                to: vec![to],
                sealed: vec![b'x'; 600],
            },
        })
    };
    let total = 16_000u64;
    for k in 0..total {
        let d = if k < 15_000 {
            forged(a.id, k + 1, 1_000, item(k, format!("ghost{k}")))
        } else {
            forged(c.id, k + 1, 1_000, item(k, "alice".into()))
        };
        let from = if k < 15_000 { a.addr } else { c.addr };
        spoof.send(from, b.addr, &d);
        if k % 200 == 199 {
            // Paced, so that the socket's buffer takes them all.
            thread::sleep(Duration::from_millis(5));
        }
    }
    let got = wait_counter(&mut bob, "limited", |v| v >= limited + total * 9 / 10) - limited;
    let rss_after = rss_kb(bob.pid());
    eprintln!(
        "bob: {got} of {total} kept messages refused; resident {rss_before} kB -> {rss_after} kB"
    );
    assert!(
        rss_after < rss_before + 5 * 1024,
        "bob grew from {rss_before} kB to {rss_after} kB"
    );
    chats(
        &mut carol,
        &mut [&mut alice, &mut bob],
        "after the replica flood",
    );
}

/// A join from a socket bound to `ip`, as a newcomer `id` named `n<id>`.
fn join_datagram(id: u64) -> Vec<u8> {
    let join = Message::Join {
        name: format!("n{id}"),
        key: [7; 32],
    };
    datagram(
        NodeId(id),
        1,
        vec![Packet::Data {
            id: MsgId::new(0, 1),
            msg: join,
        }],
    )
}

/// How many different identity challenges (one per join taken; resends not counted)
/// arrived at `socket` within `wait`.
fn challenges_at(socket: &UdpSocket, wait: Duration) -> usize {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let end = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    let mut nonces = std::collections::BTreeSet::new();
    while Instant::now() < end {
        if let Ok((len, _)) = socket.recv_from(&mut buf)
            && let Ok(env) = decode(&buf[..len])
        {
            for p in env.packets {
                if let Packet::Data {
                    msg: Message::Challenge { nonce },
                    ..
                } = p
                {
                    nonces.insert(nonce);
                }
            }
        }
    }
    nonces.len()
}

/// Row "6 000 joins from 6 000 addresses": the per-address limit was bypassed (its table
/// was wiped at 1 024 entries), memory grew 9.3 -> 15.3 MB and stayed. An address sends
/// 20 joins, 2 000 other addresses one each, then it sends 20 more, all within a second:
/// it is challenged 20 times at most (its count survives the churn). Rounds of 6 000 new
/// addresses each then fill the leader's bounded tables, and grow it no further; a real
/// newcomer still gets in.
#[test]
#[ignore = "written before keyed-by-default rooms and sessions: its joins no longer reach the join limit the way it expects; the limit is tested at the node"]
fn address_churn_gets_no_more_joins_through() {
    let scratch = Scratch::new();
    let mut alice = start(&scratch, "alice", None);
    alice.expect_line("created a new room; you (alice) are the leader");
    let a = seen(&mut alice);
    let rss_before = rss_kb(alice.pid());
    let x = UdpSocket::bind("127.0.0.5:0").expect("bind 127.0.0.5");
    let churn = |from: u32, to: u32| {
        for k in from..to {
            let ip = Ipv4Addr::new(127, 1, (k / 250) as u8, (k % 250 + 1) as u8);
            if let Ok(s) = UdpSocket::bind((ip, 0)) {
                let _ = s.send_to(&join_datagram(10_000 + u64::from(k)), a.addr);
            }
        }
    };
    let started = Instant::now();
    for k in 0..20 {
        x.send_to(&join_datagram(1 + k), a.addr).expect("send");
    }
    churn(0, 2000);
    for k in 20..40 {
        x.send_to(&join_datagram(1 + k), a.addr).expect("send");
    }
    let sent_in = started.elapsed();
    let got = challenges_at(&x, Duration::from_millis(1500));
    assert!(
        sent_in < Duration::from_secs(1),
        "took {sent_in:?}: not one second"
    );
    assert!(got <= 20, "challenged {got} times within a second");
    // Memory: rounds of 6 000 joins from as many new addresses each. The first rounds
    // fill the bounded tables; the later ones add nothing (before, every round added).
    let mut rss = vec![rss_before];
    for round in 0..4u32 {
        churn(2000 + round * 6000, 8000 + round * 6000);
        counter(&mut alice, "received"); // the round is handled
        rss.push(rss_kb(alice.pid()));
    }
    eprintln!("alice: resident kB at start and after each round of 6 000 joins: {rss:?}");
    assert!(counter(&mut alice, "limited") > 0);
    assert!(
        rss[4] < rss[2] + 512,
        "alice still grows after two rounds: {rss:?} kB"
    );
    let mut bob = start(&scratch, "bob", Some(alice.port));
    bob.expect_line("joined the room: 2 members, leader is alice");
}

/// Row "a join's challenge resent 9 times": 6.75 times the join in all, although each
/// datagram was under three times it. A join from a socket that never answers: all the
/// leader sends it, resends included, is at most three times the join.
#[test]
#[ignore = "written before sessions and keyed-by-default rooms: the stranger traffic it counts has changed shape; the byte budget is tested at the node"]
fn a_stranger_gets_at_most_three_times_what_it_sent() {
    let scratch = Scratch::new();
    let mut alice = start(&scratch, "alice", None);
    alice.expect_line("created a new room; you (alice) are the leader");
    let a = seen(&mut alice);
    let socket = UdpSocket::bind("127.0.0.7:0").expect("bind 127.0.0.7");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let join = join_datagram(77);
    socket.send_to(&join, a.addr).expect("send");
    // The challenge's resends end within 4.5 s (eight, 500 ms apart at most).
    let end = Instant::now() + Duration::from_secs(6);
    let (mut bytes, mut datagrams) = (0, 0);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            bytes += len;
            datagrams += 1;
        }
    }
    eprintln!(
        "a join of {} bytes: {datagrams} datagrams, {bytes} bytes back ({:.2}x)",
        join.len(),
        bytes as f64 / join.len() as f64
    );
    assert!(datagrams > 0, "the join was answered");
    assert!(
        bytes <= 3 * join.len(),
        "{bytes} bytes back for a join of {}",
        join.len()
    );
    assert!(counter(&mut alice, "limited") > 0);
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

/// The members of the room as the forger sees them.
struct Room {
    alice: NodeId,
    bob: NodeId,
    carol: NodeId,
    addrs: [SocketAddr; 3],
}

/// One valid message of each kind bob could send, some numbers drawn by `rng` (a
/// mutation may keep them valid and still be hostile: a term, a stamp, a number far off).
fn templates(r: &Room, rng: &mut Rng, wild: bool) -> Vec<Message> {
    let mut n = |normal: u64| if wild { rng.number() } else { normal };
    let epoch = |term: u64, leader: NodeId| Epoch { term, leader };
    let dm = DirectMessage {
        id: DmId(5_000),
        from_name: "bob".into(),
        to: vec!["alice".into(), "carol".into()],
        sealed: b"fuzz".to_vec(),
    };
    let bob_entry = Member {
        id: r.bob,
        name: "bob".into(),
        addr: r.addrs[1],
        presence: Presence::Online,
        key: [1; 32],
        stamp: Stamp {
            lamport: Lamport(40),
            by: r.bob,
        },
    };
    let entry = ringchat::wire::ChatEntry {
        seq: Seq(n(3)),
        origin: r.bob,
        name: "bob".into(),
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
                by: NodeId(n(r.bob.0)),
            },
            ..bob_entry.clone()
        }]),
        Message::Members(vec![Member {
            id: r.carol,
            name: "carol".into(),
            addr: r.addrs[2],
            presence: Presence::Offline,
            key: [3; 32],
            stamp: Stamp {
                lamport: Lamport(n(45)),
                by: r.bob,
            },
        }]),
        Message::Elected(epoch(n(1), r.carol)),
        Message::Election {
            term: n(1),
            candidate: r.alice,
            log: Seq(n(1)),
        },
        Message::SyncRequest {
            epoch: epoch(n(1), r.bob),
            from: Seq(n(1)),
        },
        Message::SyncReply {
            epoch: epoch(0, r.alice),
            next: Seq(n(1)),
            high: Seq(n(2)),
            sent: n(0) as u32,
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
            name: "bob".into(),
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
            origin: NodeId(n(r.bob.0)),
            to: 0,
            dm: dm.clone(),
        }),
        Message::Handover(QueuedDm {
            origin: r.bob,
            to: 1,
            dm: dm.clone(),
        }),
        Message::Dequeued {
            origin: r.bob,
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
        Message::Challenge { nonce: [9; 16] },
        Message::Proof {
            signature: vec![7; 64],
        },
        Message::JoinRefused {
            reason: ringchat::wire::Refusal::NoLeader,
        },
    ]
}

/// One mutated datagram from bob: a template (or a heartbeat, or an ack), its numbers
/// perhaps drawn wild, then its bytes perhaps flipped, set or cut.
fn mutated(r: &Room, rng: &mut Rng, n: u64, to: NodeId) -> Vec<u8> {
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
                leader: [r.alice, r.bob, r.carol, NodeId(rng.next())][rng.below(4)],
            }),
            delivered: Seq(if wild { rng.number() } else { 0 }),
            digest: rng.next(),
            probe: rng.below(2) == 0,
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
    let mut bytes = datagram(r.bob, lamport.min((1 << 63) - 1), vec![packet]);
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

/// Polls `status` at every node until they all name the same leader, one of the room
/// (within [`WAIT`]); returns its name.
#[track_caller]
fn one_leader(procs: &mut [&mut Proc]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let leaders: Vec<String> = procs.iter_mut().map(|p| seen(p).leader).collect();
        if leaders.iter().all(|l| *l == leaders[0])
            && ["alice", "bob", "carol"].contains(&leaders[0].as_str())
        {
            return leaders[0].clone();
        }
        if Instant::now() > deadline {
            procs[0].fail(&format!("no one leader after {WAIT:?}: {leaders:?}"));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Fuzzing with a member's own address (issue 17: one mutated heartbeat of a 20 000-run
/// made the room follow a leader for ever). 20 000 mutated datagrams of every kind,
/// forged from bob's address with bob's id, at alice and carol of a 3-node ephemeral
/// room: afterwards every node still runs, all three name one leader of the room, and a
/// message from alice and one from carol are shown at every node, bob included. (Not
/// one of bob's own: the forged datagrams spoke as bob, numbering "his" room messages,
/// so his next one may carry a number the room took for one of them.)
#[test]
fn twenty_thousand_mutated_datagrams_from_a_member_leave_the_room_chatting() {
    let Some(spoof) = spoofer() else { return };
    let scratch = Scratch::new();
    let (mut alice, mut bob, mut carol) = open_trio(&scratch);
    let (a, b, c) = (seen(&mut alice), seen(&mut bob), seen(&mut carol));
    let room = Room {
        alice: a.id,
        bob: b.id,
        carol: c.id,
        addrs: [a.addr, b.addr, c.addr],
    };
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
    for n in 1..=20_000u64 {
        let (to, to_id) = if n % 2 == 0 {
            (a.addr, a.id)
        } else {
            (c.addr, c.id)
        };
        spoof.send(b.addr, to, &mutated(&room, &mut rng, n, to_id));
        if n % 200 == 0 {
            thread::sleep(Duration::from_millis(10));
        }
    }
    let took = started.elapsed();
    let leader = one_leader(&mut [&mut alice, &mut bob, &mut carol]);
    let counts: Vec<_> = [&mut alice, &mut carol]
        .into_iter()
        .map(|p| counters(p))
        .collect();
    eprintln!(
        "20 000 mutated datagrams (seed {seed}) in {took:?}; leader after: {leader}; \
         alice {:?}; carol {:?}",
        counts[0], counts[1]
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
