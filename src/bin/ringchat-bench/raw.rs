//! The raw reference: one thread sends datagrams of a given size to a second thread's
//! socket on 127.0.0.1 as fast as `send_to` returns, with nothing else (no protocol, no
//! acks, no async runtime). The rate at which the receiver gets them is what the loopback
//! and the kernel can do on this machine; every room throughput is also given as a ratio
//! to it.
//!
//! The size defaults to that of the datagram a leader sends for a typical room message of
//! the benchmarks ([`room_datagram_size`]), so both move the same bytes per message.

use ringchat::ids::{Lamport, MsgId, NodeId, OriginSeq, Seq};
use ringchat::wire::{ChatEntry, Envelope, Message, Packet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One blast's figures.
pub struct Raw {
    /// Datagram size in bytes.
    pub size: usize,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// From the first to the last datagram received.
    pub elapsed: Duration,
}

impl Raw {
    /// Datagrams received per second.
    pub fn per_second(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "{} datagrams of {} bytes received in {:.0} ms: {:.0} datagrams/s (sent {}, lost in \
             the kernel {:.1}%)",
            self.received,
            self.size,
            self.elapsed.as_secs_f64() * 1e3,
            self.per_second(),
            self.sent,
            100.0 * (1.0 - self.received as f64 / self.sent.max(1) as f64)
        )
    }
}

/// A node id with its top bit set, as half of the random ids are: the longest encoding.
const NODE_ID: NodeId = NodeId(0x9e37_79b9_7f4a_7c15);

/// The size of the datagram that carries a sequenced room message with `text` from the
/// leader to a member (no room key), with realistic field values: 64-bit node ids of the
/// longest encoding, Lamport times and numbers in the thousands, the wall clock now.
pub fn room_datagram_size(text: &str) -> usize {
    let entry = ChatEntry {
        seq: Seq(5_000),
        origin: NODE_ID,
        name: "n1".into(),
        origin_seq: OriginSeq(5_000),
        lamport: Lamport(20_000),
        sent_at: ringchat::driver::wall_now(),
        text: text.into(),
        term: 0,
        // A message in the middle of a run: its link is worked out from the one before.
        proof: Default::default(),
    };
    let env = Envelope {
        from: NODE_ID,
        lamport: Lamport(20_000),
        packets: vec![Packet::Data {
            id: MsgId(20_000),
            msg: Message::Sequenced(entry),
        }],
    };
    ringchat::wire::encode(&env).map_or(64, |b| b.len())
}

/// A socket on 127.0.0.1 with the same receive buffer the nodes ask for.
fn socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Blasts `size`-byte datagrams from one thread to another for `duration`.
pub fn blast(size: usize, duration: Duration) -> Result<Raw, String> {
    let rx = socket().map_err(|e| e.to_string())?;
    let tx = socket().map_err(|e| e.to_string())?;
    let to = rx.local_addr().map_err(|e| e.to_string())?;
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let sending = Arc::new(AtomicBool::new(true));
    let still = sending.clone();
    let receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        let mut received = 0u64;
        let mut first = None;
        let mut last = Instant::now();
        loop {
            match rx.recv_from(&mut buf) {
                Ok(_) => {
                    received += 1;
                    last = Instant::now();
                    first.get_or_insert(last);
                }
                Err(_) if still.load(Ordering::Relaxed) => {}
                Err(_) => break,
            }
        }
        (received, first.map_or(Duration::ZERO, |f| last - f))
    });
    let payload = vec![0x5au8; size];
    let mut sent = 0u64;
    let end = Instant::now() + duration;
    while Instant::now() < end {
        for _ in 0..64 {
            if tx.send_to(&payload, to).is_ok() {
                sent += 1;
            }
        }
    }
    sending.store(false, Ordering::Relaxed);
    let (received, elapsed) = receiver.join().map_err(|_| "receiver panicked")?;
    Ok(Raw {
        size,
        sent,
        received,
        elapsed,
    })
}

/// `trials` blasts; the one with the median rate.
pub fn median_blast(size: usize, duration: Duration, trials: usize) -> Result<Raw, String> {
    let mut runs = Vec::new();
    for t in 0..trials.max(1) {
        let r = blast(size, duration)?;
        println!("  raw trial {:>2}: {}", t + 1, r.describe());
        runs.push(r);
    }
    runs.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    let mid = runs.len() / 2;
    Ok(runs.swap_remove(mid))
}
