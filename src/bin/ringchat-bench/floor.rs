//! The idle floor: what heartbeat-sized traffic round a ring costs with no protocol at
//! all, the reference the scale run's idle CPU is read against (as the raw UDP blast is
//! for throughput).
//!
//! `n` tokio tasks in this process, each with its own UDP socket on 127.0.0.1, each
//! sending one datagram of the heartbeat's size to the next socket round the ring every
//! interval (all on one shared tick, the most favourable case) and reading whatever
//! comes. The figure is this process's CPU time over the measuring window divided by
//! the window: the cost of the sends, receives and wake-ups alone.

use crate::host;
use ringchat::ids::{Lamport, NodeId, Seq};
use ringchat::wire::{Envelope, Epoch, Heartbeat, Packet, encode};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Size of a heartbeat datagram of a busy room (large ids, clock and sequence numbers).
pub fn heartbeat_bytes() -> usize {
    let hb = Heartbeat {
        epoch: Some(Epoch {
            term: 3,
            leader: NodeId(u64::MAX / 3),
        }),
        delivered: Seq(1_000_000),
        digest: u64::MAX / 5,
        probe: false,
        unknown: false,
    };
    let env = Envelope {
        from: NodeId(u64::MAX / 7),
        lamport: Lamport(10_000_000),
        packets: vec![Packet::Heartbeat(hb)],
    };
    encode(&env).map_or(48, |b| b.len())
}

/// CPU share of one core used by `n` bare sockets passing one datagram each per
/// `interval` round a ring, over `window`.
pub async fn idle_floor(n: usize, interval: Duration, window: Duration) -> Result<f64, String> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        sockets.push(Arc::new(s));
    }
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr().map_err(|e| format!("local address: {e}")))
        .collect::<Result<_, _>>()?;
    let start = tokio::time::Instant::now() + interval;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let socket = sockets[i].clone();
            let next = addrs[(i + 1) % n];
            let beat = vec![0u8; heartbeat_bytes()];
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(start, interval);
                let mut buf = [0u8; 2048];
                loop {
                    tokio::select! {
                        _ = tick.tick() => { let _ = socket.send_to(&beat, next).await; }
                        r = socket.recv_from(&mut buf) => { let _ = r; }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(interval * 5).await;
    let before = host::process_cpu_time();
    let wall = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let after = host::process_cpu_time();
    let elapsed = wall.elapsed();
    for t in tasks {
        t.abort();
    }
    let (before, after) = before.zip(after).ok_or("no CPU time from /proc")?;
    Ok(after.saturating_sub(before).as_secs_f64() / elapsed.as_secs_f64())
}
