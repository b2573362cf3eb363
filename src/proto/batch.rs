//! [`Coalescer`]: packets queued per destination, packed into as few datagrams as the
//! size limit allows.
//!
//! The node queues every packet it sends (reliable messages, retransmissions, acks,
//! heartbeats) here instead of making a datagram of each. When its outputs are drained,
//! the packets for each destination go out together, in the order they were queued,
//! in datagrams of at most [`MAX_PLAIN`] bytes (so at most [`crate::wire::MAX_DATAGRAM`]
//! once sealed). A driver that handles several inputs before draining gets their outputs
//! coalesced too.

use crate::ids::{Lamport, NodeId};
use crate::proto::Transmit;
use crate::wire::{HEADER_MAX, MAX_PLAIN, assemble};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Packets waiting to be packed into datagrams, per destination.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Destinations in the order their first packet was queued.
    order: Vec<SocketAddr>,
    /// Each destination's encoded packets, in order.
    queued: BTreeMap<SocketAddr, Vec<Vec<u8>>>,
}

impl Coalescer {
    /// Queues an encoded packet (at most [`crate::wire::MAX_PACKET`] bytes) for `to`.
    pub fn push(&mut self, to: SocketAddr, packet: Vec<u8>) {
        self.queue(to).push(packet);
    }

    /// Queues encoded packets for `to` ahead of those already queued for it (acks go
    /// first, as they did when each was a datagram of its own sent before the answer).
    pub fn push_front(&mut self, to: SocketAddr, packets: Vec<Vec<u8>>) {
        let queue = self.queue(to);
        queue.splice(0..0, packets);
    }

    fn queue(&mut self, to: SocketAddr) -> &mut Vec<Vec<u8>> {
        if !self.queued.contains_key(&to) {
            self.order.push(to);
        }
        self.queued.entry(to).or_default()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Packs everything queued into datagrams pushed to `out`, destination by
    /// destination; a datagram is closed when the next packet would not fit. `stamp`
    /// gives each datagram's sender id and Lamport time. Returns how many datagrams.
    pub fn drain_into(
        &mut self,
        mut stamp: impl FnMut() -> (NodeId, Lamport),
        out: &mut impl Extend<Transmit>,
    ) -> usize {
        let mut datagrams = 0;
        for to in std::mem::take(&mut self.order) {
            let packets = self.queued.remove(&to).unwrap_or_default();
            let mut batch: Vec<Vec<u8>> = Vec::new();
            let mut size = 0;
            for p in packets {
                if !batch.is_empty() && size + p.len() > MAX_PLAIN - HEADER_MAX {
                    let (from, lamport) = stamp();
                    let bytes = assemble(from, lamport, &std::mem::take(&mut batch));
                    out.extend([Transmit { to, bytes }]);
                    datagrams += 1;
                    size = 0;
                }
                size += p.len();
                batch.push(p);
            }
            if !batch.is_empty() {
                let (from, lamport) = stamp();
                out.extend([Transmit {
                    to,
                    bytes: assemble(from, lamport, &batch),
                }]);
                datagrams += 1;
            }
        }
        datagrams
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::wire::{Ack, MAX_PACKET, Packet, decode, encode_packet};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn ack(n: u64) -> Vec<u8> {
        encode_packet(&Packet::Ack(Ack::of_one(NodeId(n), MsgId(n)))).unwrap()
    }

    fn drain(c: &mut Coalescer) -> Vec<Transmit> {
        let mut out = Vec::new();
        let mut lamport = 0;
        c.drain_into(
            || {
                lamport += 1;
                (NodeId(u64::MAX), Lamport(u64::MAX - 100 + lamport))
            },
            &mut out,
        );
        out
    }

    #[test]
    fn packets_for_one_destination_share_a_datagram_in_order() {
        let mut c = Coalescer::default();
        c.push(addr(2), ack(1));
        c.push(addr(1), ack(2));
        c.push(addr(2), ack(3));
        c.push_front(addr(2), vec![ack(4)]);
        let out = drain(&mut c);
        assert!(c.is_empty());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].to, addr(2), "first queued, first out");
        let ids: Vec<NodeId> = decode(&out[0].bytes)
            .unwrap()
            .packets
            .into_iter()
            .map(|p| match p {
                Packet::Ack(a) => a.of,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, [NodeId(4), NodeId(1), NodeId(3)]);
        assert_eq!(decode(&out[1].bytes).unwrap().packets.len(), 1);
    }

    #[test]
    fn datagrams_never_exceed_the_limit() {
        let mut c = Coalescer::default();
        let big = vec![0u8; MAX_PACKET];
        for k in 0..5 {
            c.push(addr(1), big.clone());
            for n in 0..40 {
                c.push(addr(1), ack(k * 100 + n));
            }
        }
        let out = drain(&mut c);
        assert!(out.iter().all(|t| t.bytes.len() <= MAX_PLAIN));
        assert!(out.len() >= 5 && out.len() <= 10, "{} datagrams", out.len());
        let total: usize = out.iter().map(|t| t.bytes.len()).sum();
        assert!(total > 5 * MAX_PACKET);
    }
}
