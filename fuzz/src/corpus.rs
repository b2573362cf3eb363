//! The seed inputs: one valid datagram of every kind a member or a leader may be sent
//! ([`sample_datagrams`]), and the starting corpus of each target ([`seeds`]).

use super::*;

/// Room message `seq` from `origin`, a run of its own sealed with [`signer`]`(origin)`
/// (sealed once per process: the same entries come back on every run).
fn entry(seq: u64, origin: NodeId, origin_seq: u64) -> ChatEntry {
    type Sealed = Mutex<HashMap<(u64, NodeId, u64), ChatEntry>>;
    static SEALED: OnceLock<Sealed> = OnceLock::new();
    let mut sealed = SEALED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    sealed
        .entry((seq, origin, origin_seq))
        .or_insert_with(|| {
            let mut e = ChatEntry {
                seq: Seq(seq),
                origin,
                name: name_of(origin).into(),
                origin_seq: OriginSeq(origin_seq),
                lamport: Lamport(seq + 10),
                sent_at: WallMillis(1_700_000_000_000),
                text: format!("message {seq}"),
                term: 0,
                proof: Provenance::default(),
            };
            let link = seal::chain_start(origin);
            let written = seal::Written {
                origin,
                name: &e.name,
                origin_seq: e.origin_seq,
                lamport: e.lamport,
                sent_at: e.sent_at,
                text: &e.text,
            };
            let value = seal::chain(&link, &written);
            e.proof = Provenance {
                link: Some(link),
                seal: Some(seal::seal_run(&signer(origin), &value)),
            };
            e
        })
        .clone()
}

fn dm(id: u64, from: NodeId, to: &[&str]) -> DirectMessage {
    DirectMessage {
        id: DmId(id),
        from_name: name_of(from).into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        // Sealed for nobody in particular: it is refused, and counted, where it arrives.
        sealed: vec![0x5a; 64 + 48],
    }
}

fn submit(origin_seq: u64, name: &str) -> Submit {
    let origin = [BOB, CAROL, ALICE]
        .into_iter()
        .find(|id| name_of(*id) == name)
        .unwrap_or(DAN);
    let mut s = Submit {
        origin_seq: OriginSeq(origin_seq),
        committed_below: OriginSeq(origin_seq),
        name: name.into(),
        lamport: Lamport(12),
        sent_at: WallMillis(1_700_000_000_000),
        text: format!("hello {origin_seq}"),
        proof: Provenance::default(),
    };
    // A run of its own, sealed by its origin.
    let link = seal::chain_start(origin);
    let written = seal::Written {
        origin,
        name,
        origin_seq: s.origin_seq,
        lamport: s.lamport,
        sent_at: s.sent_at,
        text: &s.text,
    };
    let value = seal::chain(&link, &written);
    s.proof = Provenance {
        link: Some(link),
        seal: Some(seal::seal_run(&signer(origin), &value)),
    };
    s
}

fn heartbeat(leader: NodeId, delivered: u64, probe: bool) -> Packet {
    Packet::Heartbeat(Heartbeat {
        epoch: Some(Epoch { term: 0, leader }),
        delivered: Seq(delivered),
        digest: 0,
        probe,
        unknown: false,
    })
}

/// One valid datagram of every kind, as a member of either test room could receive it.
pub fn sample_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    let epoch1 = Epoch {
        term: 1,
        leader: CAROL,
    };
    let offline_bob = Member {
        presence: Presence::Offline,
        stamp: Stamp {
            lamport: Lamport(60),
            by: BOB,
        },
        ..member(BOB, public_key(BOB))
    };
    vec![
        (
            "join",
            data(
                DAN,
                1,
                Message::Join {
                    name: "dan".into(),
                    key: public_key(DAN),
                },
            ),
        ),
        (
            "challenge",
            data(ALICE, 2, Message::Challenge {
                    nonce: [7; 16],
                    newcomer: BOB,
                    of_member: false,
                }),
        ),
        (
            "proof",
            data(
                DAN,
                2,
                Message::Proof {
                    signature: vec![1; 64],
                },
            ),
        ),
        (
            "join_forward",
            data(
                CAROL,
                3,
                Message::JoinForward(ringchat::wire::Newcomer {
                    id: DAN,
                    name: "dan".into(),
                    key: public_key(DAN),
                    addr: addr(9),
                }),
            ),
        ),
        (
            "welcome",
            data(
                ALICE,
                4,
                Message::Welcome(Welcome {
                    newcomer: BOB,
                    epoch: Epoch {
                        term: 0,
                        leader: ALICE,
                    },
                    next_seq: Seq(5),
                    pending_from: Seq(5),
                    oldest: Seq(1),
                    part: 0,
                    parts: 2,
                    voting: Vec::new(),
                    unlisted_voters: Vec::new(),
                    voters_at: Seq(0),
                    settling: vec![],
                    voucher: None,
                    members: vec![member(ALICE, public_key(ALICE))],
                }),
            ),
        ),
        (
            "join_refused",
            data(
                ALICE,
                5,
                Message::JoinRefused {
                    reason: ringchat::wire::Refusal::NameTaken,
                },
            ),
        ),
        ("members", data(BOB, 6, Message::Members(vec![offline_bob]))),
        ("submit", data(BOB, 7, Message::Submit(submit(1, "bob")))),
        (
            "sequenced",
            data(ALICE, 8, Message::Sequenced(entry(1, CAROL, 1))),
        ),
        (
            "fetch",
            data(
                CAROL,
                9,
                Message::Fetch {
                    from: Seq(1),
                    to: Seq(3),
                },
            ),
        ),
        (
            "direct",
            data(CAROL, 10, Message::Direct(dm(1, CAROL, &["bob", "alice"]))),
        ),
        (
            "election",
            data(
                CAROL,
                11,
                Message::Election {
                    term: 1,
                    candidate: CAROL,
                    log: Seq(1),
                },
            ),
        ),
        ("elected", data(CAROL, 12, Message::Elected(epoch1))),
        (
            "sync_request",
            data(
                CAROL,
                13,
                Message::SyncRequest {
                    epoch: epoch1,
                    from: Seq(1),
                },
            ),
        ),
        (
            "store",
            data(
                CAROL,
                14,
                Message::Store {
                    to: 0,
                    dm: dm(2, CAROL, &["bob"]),
                },
            ),
        ),
        (
            "saved",
            data(
                ALICE,
                15,
                Message::Saved {
                    id: DmId(1),
                    to: 0,
                    full: None,
                },
            ),
        ),
        (
            "queued",
            data(
                ALICE,
                16,
                Message::Queued(QueuedDm {
                    origin: CAROL,
                    to: 0,
                    dm: dm(3, CAROL, &["dan"]),
                }),
            ),
        ),
        (
            "dequeued",
            data(
                ALICE,
                17,
                Message::Dequeued {
                    origin: CAROL,
                    id: DmId(3),
                    to: 0,
                },
            ),
        ),
        (
            "handover",
            data(
                ALICE,
                18,
                Message::Handover(QueuedDm {
                    origin: CAROL,
                    to: 0,
                    dm: dm(4, CAROL, &["bob"]),
                }),
            ),
        ),
        (
            "forget",
            data(
                ALICE,
                19,
                Message::Forget(vec![(
                    CAROL,
                    Stamp {
                        lamport: Lamport(3),
                        by: ALICE,
                    },
                )]),
            ),
        ),
        (
            "sync_reply",
            data(
                BOB,
                19,
                Message::SyncReply {
                    epoch: epoch1,
                    next: Seq(2),
                    high: Seq(3),
                    sent: 1, votes: Vec::new(),
                },
            ),
        ),
        (
            "prevote",
            data(
                BOB,
                20,
                Message::PreVote {
                    term: 2,
                    follows: None,
                },
            ),
        ),
        (
            "prevote_reply",
            data(
                BOB,
                21,
                Message::PreVoteReply {
                    term: 2,
                    granted: true,
                    follows: None,
                },
            ),
        ),
        (
            "ack",
            datagram(ALICE, Packet::Ack(Ack::of_one(BOB, MsgId(1)))),
        ),
        ("heartbeat", datagram(ALICE, heartbeat(ALICE, 0, true))),
    ]
}

/// The seed inputs: `(target, file name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out: Vec<(&'static str, String, Vec<u8>)> = sample_datagrams()
        .into_iter()
        .map(|(name, bytes)| ("decode", name.to_string(), bytes))
        .collect();

    // A follower: room messages out of order with a gap, a heartbeat, a private message,
    // an ack, commands.
    let mut chat = vec![0u8];
    for (port, adv, bytes) in [
        (0, 0, data(ALICE, 2, Message::Sequenced(entry(1, CAROL, 1)))),
        (0, 1, data(ALICE, 3, Message::Sequenced(entry(3, ALICE, 1)))),
        (0, 3, datagram(ALICE, heartbeat(ALICE, 3, false))),
        (0, 4, data(ALICE, 4, Message::Sequenced(entry(2, CAROL, 2)))),
        (
            2,
            0,
            data(CAROL, 2, Message::Direct(dm(1, CAROL, &["bob"]))),
        ),
        (
            0,
            0,
            datagram(ALICE, Packet::Ack(Ack::of_one(BOB, MsgId(1)))),
        ),
    ] {
        chat.extend(frame(port, adv, &bytes));
    }
    chat.extend(command_frame(0, "hi all"));
    chat.extend(command_frame(1, "hi carol"));
    chat.extend(command_frame(4, ""));
    out.push(("node_datagram", "follower_chat".into(), chat));

    // A follower: the leader falls silent, carol runs an election and takes over.
    let mut failover = vec![0u8];
    let epoch1 = Epoch {
        term: 1,
        leader: CAROL,
    };
    for (port, adv, bytes) in [
        (0, 0, data(ALICE, 2, Message::Sequenced(entry(1, ALICE, 1)))),
        (2, 5, datagram(CAROL, heartbeat(ALICE, 1, false))),
        (
            2,
            0,
            data(
                CAROL,
                2,
                Message::Election {
                    term: 1,
                    candidate: CAROL,
                    log: Seq(1),
                },
            ),
        ),
        (2, 1, data(CAROL, 3, Message::Elected(epoch1))),
        (
            2,
            0,
            data(
                CAROL,
                4,
                Message::SyncRequest {
                    epoch: epoch1,
                    from: Seq(1),
                },
            ),
        ),
        (2, 2, data(CAROL, 5, Message::Sequenced(entry(2, CAROL, 1)))),
    ] {
        failover.extend(frame(port, adv, &bytes));
    }
    out.push(("node_datagram", "follower_failover".into(), failover));

    // The leader: submissions, a gap repair request, a private message kept for an
    // offline member, a newcomer with a bad proof, dereg and reg.
    let mut lead = vec![1u8];
    let offline_bob = Member {
        presence: Presence::Offline,
        stamp: Stamp {
            lamport: Lamport(60),
            by: BOB,
        },
        ..member(BOB, public_key(BOB))
    };
    for (port, adv, bytes) in [
        (1, 0, data(BOB, 3, Message::Submit(submit(1, "bob")))),
        (2, 1, data(CAROL, 3, Message::Submit(submit(1, "carol")))),
        (1, 0, data(BOB, 4, Message::Submit(submit(2, "bob")))),
        (
            2,
            2,
            data(
                CAROL,
                4,
                Message::Fetch {
                    from: Seq(1),
                    to: Seq(3),
                },
            ),
        ),
        (1, 3, datagram(BOB, heartbeat(ALICE, 3, false))),
        (1, 0, data(BOB, 5, Message::Members(vec![offline_bob]))),
        (
            2,
            0,
            data(
                CAROL,
                5,
                Message::Store {
                    to: 0,
                    dm: dm(1, CAROL, &["bob"]),
                },
            ),
        ),
        (
            3,
            1,
            data(
                DAN,
                1,
                Message::Join {
                    name: "dan".into(),
                    key: public_key(DAN),
                },
            ),
        ),
        (
            3,
            0,
            data(
                DAN,
                2,
                Message::Proof {
                    signature: vec![0; 64],
                },
            ),
        ),
    ] {
        lead.extend(frame(port, adv, &bytes));
    }
    lead.extend(command_frame(0, "from the leader"));
    lead.extend(command_frame(6, ""));
    lead.extend(command_frame(7, ""));
    out.push(("node_datagram", "leader_room".into(), lead));

    // room_burst: one datagram of each kind, plain and with wild numbers, and bursts
    // with time passing between the datagrams.
    for kind in 0..24u8 {
        for wild in [0u8, 1] {
            let one = vec![0, kind & 1, wild, 1, kind, 0];
            out.push(("room_burst", format!("kind{kind}_wild{wild}"), one));
        }
    }
    let burst: Vec<u8> = std::iter::once(63)
        .chain((0..64u8).flat_map(|k| [k & 0x0f, k % 2, k % 4, k % 24, k, k / 2, 3]))
        .collect();
    out.push(("room_burst", "burst64".into(), burst));
    out
}
