//! What may travel outside a session: the join exchange. Before a newcomer is a member
//! nobody holds a session with it, so its join, the leader's challenge, its proof, a
//! refusal, and acks of these travel plain (sealed with the room key in a keyed room).
//! Anything else found in such a datagram is refused on arrival and never sent: the
//! welcome (the member table and history), room messages, private messages and the
//! ring's traffic travel only in sessions, between members.

use super::Refused;
use crate::ids::NodeId;
use crate::wire::{Envelope, Message, PROTOCOL_VERSION, Packet, decode, encode};

fn allowed(packet: &Packet) -> bool {
    match packet {
        Packet::Ack(_) => true,
        Packet::Data { msg, .. } => msg.is_join_exchange(),
        Packet::Heartbeat(_) => false,
    }
}

/// The kind of a packet, for a refusal's log line.
fn kind(packet: &Packet) -> &'static str {
    match packet {
        Packet::Ack(_) => "an ack",
        Packet::Heartbeat(_) => "a heartbeat",
        Packet::Data { msg, .. } => match msg {
            Message::Welcome(_) => "a welcome",
            Message::Members(_) => "member entries",
            Message::Submit(_) | Message::Sequenced(_) | Message::SyncEntry(_) => "a room message",
            Message::Direct(_) | Message::Handover(_) | Message::Store { .. } => {
                "a private message"
            }
            _ => "a member's message",
        },
    }
}

/// Checks a datagram that arrived outside a session: it may carry only the join
/// exchange. One that does not decode is let through (the node drops and counts it, as
/// any malformed input).
pub fn check_arrival(plain: &[u8]) -> Result<(), Refused> {
    let Ok(env) = decode(plain) else {
        return Ok(());
    };
    match env.packets.iter().find(|p| !allowed(p)) {
        None => Ok(()),
        Some(p) => Err(Refused::OutsideSession(kind(p))),
    }
}

/// What of `plain` may be sent outside a session: the datagram itself when it is all join
/// exchange, the join exchange alone re-encoded when it is mixed, `None` when nothing is
/// left; and how many packets were held back.
pub fn for_departure(plain: &[u8]) -> (Option<Vec<u8>>, usize) {
    let Ok(env) = decode(plain) else {
        return (None, 1);
    };
    let total = env.packets.len();
    if env.packets.iter().all(allowed) {
        return (Some(plain.to_vec()), 0);
    }
    let packets: Vec<Packet> = env.packets.into_iter().filter(allowed).collect();
    let kept = packets.len();
    if kept == 0 {
        return (None, total);
    }
    let env = Envelope {
        from: env.from,
        lamport: env.lamport,
        packets,
    };
    (encode(&env).ok(), total - kept)
}

/// Splits a datagram for the member `member`'s address, where a join exchange was heard
/// lately (a new process at that address, say a restart, asking to join): the join
/// exchange, and acks of what another node than `member` sent, go outside the session
/// (the first part); the rest goes in it (the second). Either part may be empty.
pub fn split_for(plain: &[u8], member: NodeId) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let Ok(env) = decode(plain) else {
        return (None, None);
    };
    let outside = |p: &Packet| match p {
        Packet::Ack(a) => a.of != member,
        Packet::Data { msg, .. } => msg.is_join_exchange(),
        Packet::Heartbeat(_) => false,
    };
    if !env.packets.iter().any(outside) {
        return (None, Some(plain.to_vec()));
    }
    let (out, ins): (Vec<Packet>, Vec<Packet>) = env.packets.into_iter().partition(outside);
    let part = |packets: Vec<Packet>| {
        (!packets.is_empty())
            .then(|| {
                encode(&Envelope {
                    from: env.from,
                    lamport: env.lamport,
                    packets,
                })
                .ok()
            })
            .flatten()
    };
    (part(out), part(ins))
}

/// The sender a plain datagram claims (its envelope's `from`), read without decoding the
/// rest: the version byte, then the id as a postcard varint.
pub fn sender_of(plain: &[u8]) -> Option<NodeId> {
    let (&version, rest) = plain.split_first()?;
    if version != PROTOCOL_VERSION {
        return None;
    }
    postcard::take_from_bytes::<u64>(rest)
        .ok()
        .map(|(id, _)| NodeId(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DmId, Lamport, MsgId};
    use crate::wire::{Ack, DirectMessage, Heartbeat};

    fn datagram(from: u64, packets: Vec<Packet>) -> Vec<u8> {
        encode(&Envelope {
            from: NodeId(from),
            lamport: Lamport(3),
            packets,
        })
        .unwrap()
    }

    fn data(id: u64, msg: Message) -> Packet {
        Packet::Data { id: MsgId(id), msg }
    }

    fn dm() -> Message {
        Message::Direct(DirectMessage {
            id: DmId(1),
            from_name: "alice".into(),
            to: vec!["bob".into()],
            sealed: b"hi".to_vec(),
        })
    }

    #[test]
    fn only_the_join_exchange_travels_outside_a_session() {
        let join = data(
            1,
            Message::Challenge {
                nonce: [1; 16],
                newcomer: NodeId(1),
                of_member: false,
            },
        );
        let ack = Packet::Ack(Ack::of_one(NodeId(9), MsgId(4)));
        let ok = datagram(7, vec![join.clone(), ack.clone()]);
        assert_eq!(check_arrival(&ok), Ok(()));
        assert_eq!(for_departure(&ok), (Some(ok.clone()), 0));
        let mixed = datagram(7, vec![join.clone(), data(2, dm())]);
        assert_eq!(
            check_arrival(&mixed),
            Err(Refused::OutsideSession("a private message"))
        );
        let (kept, held) = for_departure(&mixed);
        assert_eq!(held, 1);
        assert_eq!(decode(&kept.unwrap()).unwrap().packets, vec![join]);
        let beat = Packet::Heartbeat(Heartbeat {
            epoch: None,
            delivered: crate::ids::Seq(0),
            digest: 0,
            probe: true,
            unknown: false,
        });
        assert_eq!(for_departure(&datagram(7, vec![beat])), (None, 1));
        // A member's voucher goes to a member that holds no session with it (it never
        // heard of it): the join exchange.
        let entry = crate::wire::Member {
            id: NodeId(7),
            name: "dan".into(),
            addr: "127.0.0.1:4".parse().unwrap(),
            presence: crate::wire::Presence::Online,
            key: [4; 32],
            stamp: crate::wire::Stamp {
                lamport: Lamport(2),
                by: NodeId(1),
            },
        };
        let vouched = datagram(
            7,
            vec![data(
                3,
                Message::Vouched(crate::wire::Voucher {
                    entry,
                    epoch: crate::wire::Epoch {
                        term: 1,
                        leader: NodeId(1),
                    },
                    signature: vec![0; 64],
                }),
            )],
        );
        assert_eq!(check_arrival(&vouched), Ok(()));
        assert_eq!(for_departure(&vouched), (Some(vouched.clone()), 0));
        assert_eq!(check_arrival(b"\x02garbage"), Ok(()), "left to the node");
    }

    #[test]
    fn the_claimed_sender_is_read_from_the_envelope() {
        for id in [0, 1, 127, 128, 300, u64::MAX] {
            let d = datagram(id, vec![Packet::Ack(Ack::of_one(NodeId(1), MsgId(1)))]);
            assert_eq!(sender_of(&d), Some(NodeId(id)));
        }
        assert_eq!(sender_of(b""), None);
        assert_eq!(sender_of(&[PROTOCOL_VERSION, 0x80]), None);
        assert_eq!(sender_of(&[PROTOCOL_VERSION + 1, 1]), None);
    }
}
