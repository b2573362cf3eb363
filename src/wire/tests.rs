//! Wire format tests: round trips, worst-case sizes, batching, hostile bytes.

use super::*;
use std::net::SocketAddr;

fn longest_name() -> String {
    "n".repeat(MAX_NAME_BYTES)
}

fn v6() -> SocketAddr {
    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
        .parse()
        .unwrap()
}

#[test]
fn round_trip() {
    let env = Envelope {
        from: NodeId(7),
        lamport: Lamport(3),
        packets: vec![
            Packet::Data {
                id: MsgId(9),
                msg: Message::Join {
                    name: "bob".into(),
                    key: [3; 32],
                },
            },
            Packet::Ack(Ack {
                of: NodeId(8),
                stream: 2,
                upto: 40,
                ranges: vec![(42, 44), (50, 50)],
            }),
        ],
    };
    assert_eq!(decode(&encode(&env).unwrap()).unwrap(), env);
}

/// The documented largest text fits in every message kind that carries text,
/// with every other field at its worst case.
#[test]
fn largest_text_fits_one_datagram() {
    let text = "é".repeat(MAX_TEXT_BYTES / 2); // multi-byte chars, exactly MAX_TEXT_BYTES
    assert_eq!(text.len(), MAX_TEXT_BYTES);
    let big = u64::MAX;
    let worst_proof = Provenance {
        link: Some([0xff; 32]),
        seal: Some(Box::new(SignatureBytes([0xff; 64]))),
    };
    // A direct message's copy, really sealed, with its longest text.
    let to = vec![longest_name(); MAX_RECIPIENTS];
    let sender = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let recipient = ed25519_dalek::SigningKey::from_bytes(&[2; 32])
        .verifying_key()
        .to_bytes();
    let direct_text = "é".repeat(MAX_DIRECT_TEXT_BYTES / 2);
    assert_eq!(direct_text.len(), MAX_DIRECT_TEXT_BYTES);
    let sealed = crate::proto::seal::seal_direct(
        &sender,
        &crate::proto::seal::DirectHeader {
            origin: NodeId(big),
            id: DmId(big),
            from_name: &longest_name(),
            to: &to,
            recipient: &longest_name(),
            recipient_key: &recipient,
        },
        &crate::proto::seal::DirectContent {
            lamport: Lamport(big),
            sent_at: WallMillis(big),
            text: direct_text,
        },
        [0; 32],
    )
    .unwrap();
    let worst_dm = DirectMessage {
        id: DmId(big),
        from_name: longest_name(),
        to: to.clone(),
        sealed,
    };
    let msgs = vec![
        Message::Sequenced(ChatEntry {
            seq: Seq(big),
            origin: NodeId(big),
            name: longest_name(),
            origin_seq: OriginSeq(big),
            lamport: Lamport(big),
            sent_at: WallMillis(big),
            text: text.clone(),
            term: 0,
            proof: worst_proof.clone(),
        }),
        Message::Submit(Submit {
            origin_seq: OriginSeq(big),
            committed_below: OriginSeq(big),
            name: longest_name(),
            lamport: Lamport(big),
            sent_at: WallMillis(big),
            text: text.clone(),
            proof: worst_proof.clone(),
        }),
        Message::Direct(worst_dm.clone()),
        Message::Store {
            to: u8::MAX,
            dm: worst_dm.clone(),
        },
        Message::Queued(QueuedDm {
            origin: NodeId(big),
            to: u8::MAX,
            dm: worst_dm.clone(),
        }),
        Message::Handover(QueuedDm {
            origin: NodeId(big),
            to: u8::MAX,
            dm: worst_dm,
        }),
    ];
    for msg in msgs {
        let packet = Packet::Data {
            id: MsgId(big),
            msg,
        };
        let one = encode_packet(&packet).expect("worst case must fit alone");
        let bytes = assemble(NodeId(big), Lamport(big), &[one]);
        assert!(
            bytes.len() + SEAL_OVERHEAD <= MAX_DATAGRAM,
            "{} bytes",
            bytes.len()
        );
    }
}

#[test]
fn one_member_entry_worst_case_size_is_known() {
    // The welcome chunker relies on this bound (see proto::MEMBER_WIRE_MAX).
    let n = postcard::to_allocvec(&worst_member()).unwrap().len();
    assert!(n <= crate::proto::MEMBER_WIRE_MAX, "{n}");
}

/// A welcome part with every field at its largest but `members`, `voting`, `settling`
/// and `unlisted_voters` as given, and the newcomer's voucher: whether it fits a
/// datagram (and its size).
fn welcome_part_fits(
    members: Vec<Member>,
    flags: Vec<u8>,
    unlisted_voters: Vec<String>,
) -> (bool, usize) {
    let big = u64::MAX;
    let epoch = Epoch {
        term: big,
        leader: NodeId(big),
    };
    let w = Welcome {
        newcomer: NodeId(big),
        epoch,
        next_seq: Seq(big),
        oldest: Seq(big),
        pending_from: Seq(big),
        part: u16::MAX,
        parts: u16::MAX,
        members,
        voting: flags.clone(),
        unlisted_voters,
        voters_at: Seq(big),
        settling: flags,
        voucher: Some(Box::new(Voucher {
            entry: worst_member(),
            epoch,
            signature: vec![255; 64],
        })),
    };
    let packet = Packet::Data {
        id: MsgId(big),
        msg: Message::Welcome(w),
    };
    let one = encode_packet(&packet).expect("a welcome part fits alone");
    let bytes = assemble(NodeId(big), Lamport(big), &[one]);
    (bytes.len() + SEAL_OVERHEAD <= MAX_DATAGRAM, bytes.len())
}

/// A welcome part as large as the chunker makes one (every entry at its largest, every
/// field and flag at its largest, the newcomer's voucher too) fits a datagram.
#[test]
fn a_worst_case_welcome_part_fits_a_datagram() {
    let n = crate::proto::MEMBERS_PER_DATAGRAM;
    let flags = vec![255; n.div_ceil(8)];
    let (fits, len) = welcome_part_fits(vec![worst_member(); n], flags, Vec::new());
    assert!(fits, "{len} bytes");
}

/// The part naming the voters the leader's table holds no entry for, at its largest (as
/// many names as the receiver takes, each at its longest, and the voucher) fits a
/// datagram: it carries no members.
#[test]
fn a_worst_case_part_naming_voters_fits_a_datagram() {
    let names = vec![longest_name(); 16];
    let (fits, len) = welcome_part_fits(Vec::new(), Vec::new(), names);
    assert!(fits, "{len} bytes");
}

fn worst_member() -> Member {
    Member {
        id: NodeId(u64::MAX),
        name: longest_name(),
        addr: v6(),
        presence: Presence::Offline,
        key: [255; 32],
        stamp: Stamp {
            lamport: Lamport(u64::MAX),
            by: NodeId(u64::MAX),
        },
    }
}

#[test]
fn rejects_bad_input_without_panicking() {
    assert_eq!(decode(&[]), Err(WireError::Empty));
    let other = PROTOCOL_VERSION + 1;
    assert_eq!(decode(&[other, 0, 0]), Err(WireError::Version(other)));
    assert!(matches!(
        decode(&[PROTOCOL_VERSION, 0xff]),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        decode(&vec![1u8; 5000]),
        Err(WireError::TooLarge(5000))
    ));
    let mut ok = encode(&Envelope {
        from: NodeId(1),
        lamport: Lamport(1),
        packets: vec![Packet::Ack(Ack::of_one(NodeId(2), MsgId(1)))],
    })
    .unwrap();
    ok.push(0);
    assert_eq!(decode(&ok), Err(WireError::Trailing(1)));
    let empty = encode(&Envelope {
        from: NodeId(1),
        lamport: Lamport(1),
        packets: vec![],
    })
    .unwrap();
    assert!(
        matches!(decode(&empty), Err(WireError::Malformed(_))),
        "an envelope without packets is refused"
    );
    assert!(
        matches!(decode(&[1, 1, 1, 1, 0]), Err(WireError::Version(1))),
        "the one-packet format of version 1 is refused"
    );
}

#[test]
fn names() {
    assert!(valid_name("alice"));
    assert!(valid_name("zoë"));
    assert!(!valid_name(""));
    assert!(!valid_name("a b"));
    assert!(!valid_name("a,b"));
    assert!(!valid_name(&"x".repeat(MAX_NAME_BYTES + 1)));
}

/// A datagram assembled from packets encoded one by one is byte for byte the postcard
/// encoding of the envelope, for small and largest header values.
#[test]
fn assembled_equals_encoded() {
    for (from, lamport) in [(1, 0), (u64::MAX, u64::MAX), (300, 1 << 40)] {
        let packets: Vec<Packet> = (0..200)
            .map(|i| match i % 3 {
                0 => Packet::Ack(Ack::of_one(NodeId(i), MsgId(i * 1000))),
                1 => Packet::Heartbeat(Heartbeat {
                    epoch: None,
                    delivered: Seq(i),
                    digest: i,
                    probe: false,
                    unknown: false,
                }),
                _ => Packet::Data {
                    id: MsgId(i),
                    msg: Message::Fetch {
                        from: Seq(i),
                        to: Seq(i + 1),
                    },
                },
            })
            .collect();
        let env = Envelope {
            from: NodeId(from),
            lamport: Lamport(lamport),
            packets,
        };
        let encoded: Vec<Vec<u8>> = env
            .packets
            .iter()
            .map(|p| encode_packet(p).unwrap())
            .collect();
        let bytes = assemble(env.from, env.lamport, &encoded);
        assert_eq!(
            bytes,
            [vec![PROTOCOL_VERSION], postcard::to_allocvec(&env).unwrap()].concat()
        );
        assert!(bytes.len() - encoded.iter().map(Vec::len).sum::<usize>() <= HEADER_MAX);
    }
}

/// A packet that cannot travel alone is refused before it is sent.
#[test]
fn oversized_packet_is_refused() {
    let packet = Packet::Data {
        id: MsgId(1),
        msg: Message::Proof {
            signature: vec![7; MAX_PLAIN],
        },
    };
    assert!(matches!(
        encode_packet(&packet),
        Err(WireError::TooLarge(n)) if n > MAX_PLAIN
    ));
}

#[test]
fn ack_covers_its_prefix_and_ranges() {
    let ack = Ack {
        of: NodeId(1),
        stream: 0,
        upto: 3,
        ranges: vec![(5, 6), (9, 9)],
    };
    let covered: Vec<u64> = (0..12).filter(|&s| ack.covers(s)).collect();
    assert_eq!(covered, vec![1, 2, 3, 5, 6, 9]);
}
