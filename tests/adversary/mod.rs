//! What an attacker on the same machine has, built from the project's own wire code: a
//! member of the room that is only a test socket ([`FakeMember`], with an identity, the
//! room key where there is one, and the guard's sessions), datagrams sent from a forged
//! source address ([`send_forged`], a raw socket: root only), and a capture of every UDP
//! datagram on the loopback interface ([`Capture`], a packet socket: root only).

#![allow(dead_code)]

pub mod room;

use ed25519_dalek::{Signer, SigningKey};
use ringchat::guard::frame::TRANSPORT_OVERHEAD;
use ringchat::guard::{Guard, KEY_BYTES, SEAL_OVERHEAD};
use ringchat::ids::{Lamport, MsgId, NodeId};
use ringchat::wire::{Ack, Envelope, Member, Message, Packet, decode, encode, proof_message};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Whether this process may open raw and packet sockets (the forged-source and capture
/// tests need it; without it they say they were skipped).
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A plain datagram from `from` carrying reliable message `msg` with id `id`.
pub fn plain(from: NodeId, id: u64, msg: Message) -> Vec<u8> {
    encode(&Envelope {
        from,
        lamport: Lamport(id),
        packets: vec![Packet::Data { id: MsgId(id), msg }],
    })
    .expect("fits a datagram")
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("{addr}: IPv4 only"),
    }
}

/// Sends `payload` to `to` as a UDP datagram whose source is `from` (any address and
/// port, a member's included), through a raw IPv4 socket. Root only.
pub fn send_forged(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> std::io::Result<()> {
    let (from, to) = (v4(from), v4(to));
    let total = 20 + 8 + payload.len();
    let mut packet = Vec::with_capacity(total);
    packet.extend_from_slice(&[0x45, 0]);
    packet.extend_from_slice(&(total as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, libc::IPPROTO_UDP as u8, 0, 0]);
    packet.extend_from_slice(&from.ip().octets());
    packet.extend_from_slice(&to.ip().octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    packet.extend_from_slice(payload);
    // SAFETY: plain socket calls on a descriptor we own, with buffers that outlive them.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut dst: libc::sockaddr_in = std::mem::zeroed();
        dst.sin_family = libc::AF_INET as libc::sa_family_t;
        dst.sin_addr.s_addr = u32::from_ne_bytes(to.ip().octets());
        let sent = libc::sendto(
            fd,
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&dst as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if sent < 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// One UDP datagram seen on the loopback interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Its source.
    pub from: SocketAddr,
    /// Its destination.
    pub to: SocketAddr,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Every UDP datagram over `lo` while it runs (each once), read by a packet socket on a
/// thread of its own. Root only.
pub struct Capture {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Captured>>>,
    reader: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing.
    pub fn start() -> std::io::Result<Capture> {
        // SAFETY: plain socket calls on a descriptor we own.
        let fd = unsafe {
            let proto = (libc::ETH_P_IP as u16).to_be() as i32;
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut ll: libc::sockaddr_ll = std::mem::zeroed();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = proto as u16;
            ll.sll_ifindex = libc::if_nametoindex(c"lo".as_ptr()) as i32;
            let bound = libc::bind(
                fd,
                (&ll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            if bound < 0 {
                let e = std::io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            fd
        };
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (stop, seen) = (stop.clone(), seen.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                    // SAFETY: the buffers outlive the call.
                    let n = unsafe {
                        libc::recvfrom(
                            fd,
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            0,
                            (&mut from as *mut libc::sockaddr_ll).cast(),
                            &mut len,
                        )
                    };
                    // Each datagram over lo shows up going out and coming in: keep one.
                    if n <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
                        continue;
                    }
                    if let Some(c) = parse_udp(&buf[..n as usize]) {
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                    }
                }
                // SAFETY: our descriptor, closed once.
                unsafe { libc::close(fd) };
            })
        };
        Ok(Capture {
            stop,
            seen,
            reader: Some(reader),
        })
    }

    /// Everything captured so far.
    pub fn seen(&self) -> Vec<Captured> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What went from `from` to `to`.
    pub fn between(&self, from: SocketAddr, to: SocketAddr) -> Vec<Captured> {
        self.seen()
            .into_iter()
            .filter(|c| c.from == from && c.to == to)
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn parse_udp(ip: &[u8]) -> Option<Captured> {
    if ip.len() < 28 || ip[0] >> 4 != 4 || ip[9] != libc::IPPROTO_UDP as u8 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..)?;
    let at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let src = IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
    let dst = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
    let len = usize::from(at(udp, 4));
    Some(Captured {
        from: SocketAddr::new(src, at(udp, 0)),
        to: SocketAddr::new(dst, at(udp, 2)),
        payload: udp.get(8..len)?.to_vec(),
    })
}

/// Datagrams with where they went, shared between threads.
pub type Log = Arc<Mutex<Vec<(SocketAddr, Vec<u8>)>>>;

/// A member that is only a test socket: it has an identity (and the room key, if any)
/// and a guard with sessions, as a node has. It joins (answering the leader's identity
/// challenge), takes the leader's session and welcome, acks what it is sent, and sends
/// hand-built datagrams in its sessions. Everything it sends is kept in [`FakeMember::sent`].
pub struct FakeMember {
    /// Its node id.
    pub id: NodeId,
    /// Its identity.
    pub identity: SigningKey,
    socket: UdpSocket,
    guard: Arc<Guard>,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// Every datagram it received that opened and decoded.
    pub received: Arc<Mutex<Vec<(SocketAddr, Envelope)>>>,
    /// Every datagram it put on the wire.
    pub sent: Log,
}

/// Sends what `guard` has for the wire, keeping a copy in `sent`.
fn flush(guard: &Guard, socket: &UdpSocket, sent: &Mutex<Vec<(SocketAddr, Vec<u8>)>>) {
    while let Some((to, bytes)) = guard.poll_transmit() {
        let _ = socket.send_to(&bytes, to);
        sent.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((to, bytes));
    }
}

impl FakeMember {
    /// A fake member `name` with node id `id`, outside the room until welcomed.
    pub fn new(
        id: NodeId,
        name: &str,
        room_key: Option<[u8; KEY_BYTES]>,
        identity: SigningKey,
    ) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let guard =
            Arc::new(Guard::new(id, room_key, u32::MAX).with_identity(&identity.to_bytes()));
        guard.set_table(true, &[] as &[Member]);
        let next_id = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let socket = socket.try_clone().expect("clone the socket");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
            let (guard, next_id, stop, received, sent) = (
                guard.clone(),
                next_id.clone(),
                stop.clone(),
                received.clone(),
                sent.clone(),
            );
            let name = name.to_string();
            let identity = identity.clone();
            let me = id;
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut table: Vec<Member> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    guard.handle_timeout(Instant::now());
                    flush(&guard, &socket, &sent);
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let opened = guard.receive(Instant::now(), from, &buf[..n]);
                    flush(&guard, &socket, &sent);
                    let Some(env) = opened.ok().flatten().and_then(|o| decode(&o.plain).ok())
                    else {
                        continue;
                    };
                    for packet in &env.packets {
                        let Packet::Data { id, msg } = packet else {
                            continue;
                        };
                        if let Message::Welcome(w) = msg {
                            for m in &w.members {
                                table.retain(|t| t.id != m.id);
                                table.push(m.clone());
                            }
                            guard.set_table(false, &table);
                        }
                        let ack = encode(&Envelope {
                            from: me,
                            lamport: Lamport(1),
                            packets: vec![Packet::Ack(Ack::of_one(env.from, *id))],
                        })
                        .expect("fits");
                        guard.send(Instant::now(), from, &ack);
                        if let Message::Challenge { nonce, .. } = msg {
                            let signature = identity
                                .sign(&proof_message(nonce, me, &name))
                                .to_bytes()
                                .to_vec();
                            let n = next_id.fetch_add(1, Ordering::Relaxed);
                            let proof = plain(me, n, Message::Proof { signature });
                            guard.send(Instant::now(), from, &proof);
                        }
                        flush(&guard, &socket, &sent);
                    }
                    received
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((from, env));
                }
            })
        };
        FakeMember {
            id,
            identity,
            socket,
            guard,
            next_id,
            stop,
            reader: Some(reader),
            received,
            sent,
        }
    }

    /// Its guard, with every key it was given.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Stops reading and answering: to the room, it went silent (a crash, a cable cut).
    pub fn go_silent(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// A fresh transport id for a message of its own.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("bound")
    }

    /// Sends bytes as they are (no guard).
    pub fn send_raw(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).expect("send");
    }

    /// Sends plain datagram `plain` to `to` through its guard (in its session with the
    /// member there, or as the join exchange) and returns what went on the wire for it
    /// once its session carried it (the handshake first, if need be, within 5 s).
    pub fn send(&self, plain: &[u8], to: SocketAddr) -> Vec<Vec<u8>> {
        let before = self.sent.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.guard.send(Instant::now(), to, plain);
        flush(&self.guard, &self.socket, &self.sent);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            let mine: Vec<Vec<u8>> = sent[before..]
                .iter()
                .filter(|(t, b)| {
                    let grown = b.len().checked_sub(plain.len());
                    *t == to && matches!(grown, Some(0 | TRANSPORT_OVERHEAD | SEAL_OVERHEAD))
                })
                .map(|(_, b)| b.clone())
                .collect();
            if !mine.is_empty() || Instant::now() > deadline {
                return mine;
            }
            drop(sent);
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every reliable message it was sent, in order.
    pub fn messages(&self) -> Vec<Message> {
        let got = self.received.lock().unwrap_or_else(|e| e.into_inner());
        got.iter()
            .flat_map(|(_, e)| &e.packets)
            .filter_map(|p| match p {
                Packet::Data { msg, .. } => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// The newest member table entry for `name`, from the tables it was sent, waiting up
    /// to 10 s for one to name it (the welcome may still be on its way, or resent after a
    /// loss, when the room already shows the fake as online).
    pub fn member(&self, name: &str) -> Option<Member> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let newest = self
                .messages()
                .into_iter()
                .flat_map(|m| match m {
                    Message::Welcome(w) => w.members,
                    Message::Members(list) => list,
                    _ => Vec::new(),
                })
                .filter(|m| m.name == name)
                .max_by_key(|m| m.stamp);
            if newest.is_some() || Instant::now() > deadline {
                return newest;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The identity the room binds `name` to, as the member tables it was sent say.
    pub fn key_of(&self, name: &str) -> Option<[u8; 32]> {
        self.member(name).map(|m| m.key)
    }

    /// Waits (up to 10 s) until it was sent a message that `want` picks; returns it.
    #[track_caller]
    pub fn wait_for<T>(&self, what: &str, want: impl Fn(&Message) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(t) = self.messages().iter().find_map(&want) {
                return t;
            }
            assert!(Instant::now() < deadline, "never sent {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many identity challenges it was sent.
    pub fn challenges(&self) -> usize {
        self.count(|m| matches!(m, Message::Challenge { .. }))
    }

    /// How many received messages satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Message) -> bool) -> usize {
        let got = self.received.lock().unwrap_or_else(|e| e.into_inner());
        got.iter()
            .flat_map(|(_, e)| &e.packets)
            .filter(|p| matches!(p, Packet::Data { msg, .. } if pred(msg)))
            .count()
    }
}

impl Drop for FakeMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
