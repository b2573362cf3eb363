//! Reliable data packets made from a message encoded once: a message sent to many
//! destinations (the leader's broadcast of a sequenced room message) is serialised once,
//! and each destination's packet is that body behind its own id.
//!
//! The bytes are exactly those of [`crate::wire::encode_packet`] for
//! `Packet::Data { id, msg }`: postcard writes an enum as its variant index (a varint)
//! followed by its fields, and a `MsgId` as its `u64` (a varint). The tests check this
//! against the wire encoder for every kind of message the hot paths send.

use crate::ids::MsgId;
use crate::wire::{ChatEntry, HEADER_MAX, MAX_PACKET, Message, Packet, WireError};

/// The variant index of [`Packet::Data`] in postcard's encoding.
const DATA_VARIANT: u8 = 0;
/// The variant index of [`Message::Sequenced`] in postcard's encoding.
const SEQUENCED_VARIANT: u8 = 8;

/// Room for a typical message without growing the buffer while encoding.
const TYPICAL: usize = 128;

/// A message serialised once, to be sent in several data packets.
#[derive(Debug, Clone)]
pub struct EncodedMessage {
    body: Vec<u8>,
}

impl EncodedMessage {
    /// Serialises `msg`. Fails if no packet could carry it (limits are checked before;
    /// the refusal is never silent).
    pub fn new(msg: &Message) -> Result<Self, WireError> {
        let body = postcard::to_extend(msg, Vec::with_capacity(TYPICAL))
            .map_err(|e| WireError::Malformed(e.to_string()))?;
        Self::checked(body)
    }

    /// Serialises `Message::Sequenced(e)` without building the message (no copy of the
    /// entry). Fails as [`EncodedMessage::new`] does.
    pub fn sequenced(e: &ChatEntry) -> Result<Self, WireError> {
        let mut body = Vec::with_capacity(TYPICAL);
        body.push(SEQUENCED_VARIANT);
        let body = postcard::to_extend(e, body).map_err(|e| WireError::Malformed(e.to_string()))?;
        Self::checked(body)
    }

    fn checked(body: Vec<u8>) -> Result<Self, WireError> {
        // The packet adds at least two bytes (the variant and the id).
        if body.len() + 2 > MAX_PACKET {
            return Err(WireError::TooLarge(body.len() + 2 + HEADER_MAX));
        }
        Ok(EncodedMessage { body })
    }

    /// The encoded `Packet::Data { id, msg }`. Fails if it is over [`MAX_PACKET`], as
    /// [`crate::wire::encode_packet`] would.
    pub fn packet(&self, id: MsgId) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(1 + 10 + self.body.len());
        out.push(DATA_VARIANT);
        let mut v = id.0;
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out.extend_from_slice(&self.body);
        if out.len() > MAX_PACKET {
            return Err(WireError::TooLarge(out.len() + HEADER_MAX));
        }
        Ok(out)
    }
}

/// The encoded `Packet::Data { id, msg }`, as [`crate::wire::encode_packet`] makes it,
/// written into a buffer sized for a typical message.
pub fn data_packet(id: MsgId, msg: Message) -> Result<Vec<u8>, WireError> {
    let bytes = postcard::to_extend(&Packet::Data { id, msg }, Vec::with_capacity(TYPICAL))
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_PACKET {
        return Err(WireError::TooLarge(bytes.len() + HEADER_MAX));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Lamport, NodeId, OriginSeq, Seq, WallMillis};
    use crate::wire::{MAX_TEXT_BYTES, Submit, encode_packet};

    fn entry(text: String) -> ChatEntry {
        ChatEntry {
            seq: Seq(u64::MAX / 3),
            origin: NodeId(u64::MAX),
            name: "carol".into(),
            origin_seq: OriginSeq(300),
            lamport: Lamport(1 << 40),
            sent_at: WallMillis(1_700_000_000_000),
            text,
            term: 0,
            proof: Default::default(),
        }
    }

    fn messages() -> Vec<Message> {
        vec![
            Message::Sequenced(entry("hello".into())),
            Message::Sequenced(entry("é".repeat(MAX_TEXT_BYTES / 2))),
            Message::Submit(Submit {
                origin_seq: OriginSeq(1),
                committed_below: OriginSeq(1),
                name: "bob".into(),
                lamport: Lamport(0),
                sent_at: WallMillis(0),
                text: "x".repeat(MAX_TEXT_BYTES),
                proof: Default::default(),
            }),
            Message::Fetch {
                from: Seq(1),
                to: Seq(64),
            },
            Message::Elected(crate::wire::Epoch {
                term: 7,
                leader: NodeId(9),
            }),
        ]
    }

    /// The packet made from a message encoded once is byte for byte the wire encoder's.
    #[test]
    fn packets_from_one_encoding_match_the_wire_encoder() {
        let ids = [
            MsgId(0),
            MsgId(1),
            MsgId(127),
            MsgId(128),
            MsgId::new(3, 1),
            MsgId::new(MsgId::MAX_STREAM, MsgId::MAX_SEQ),
        ];
        for msg in messages() {
            let once = EncodedMessage::new(&msg).unwrap();
            for id in ids {
                let expected = encode_packet(&Packet::Data {
                    id,
                    msg: msg.clone(),
                })
                .unwrap();
                assert_eq!(once.packet(id).unwrap(), expected, "{msg:?} {id:?}");
                if let Message::Sequenced(e) = &msg {
                    let direct = EncodedMessage::sequenced(e).unwrap();
                    assert_eq!(direct.packet(id).unwrap(), expected);
                }
                assert_eq!(data_packet(id, msg.clone()).unwrap(), expected);
            }
        }
    }

    /// A message too large for any packet is refused, as by the wire encoder.
    #[test]
    fn an_oversized_message_is_refused() {
        let msg = Message::Sequenced(entry("x".repeat(MAX_PACKET)));
        assert!(EncodedMessage::new(&msg).is_err());
        if let Message::Sequenced(e) = &msg {
            assert!(EncodedMessage::sequenced(e).is_err());
        }
        assert!(data_packet(MsgId(1), msg.clone()).is_err());
        assert!(encode_packet(&Packet::Data { id: MsgId(1), msg }).is_err());
    }
}
