use super::*;
use crate::proto::ShownDirect;
use crate::wire::{DirectMessage, Presence, Stamp};

mod shown;

/// The identity the test databases belong to.
pub(crate) const KEY: [u8; 32] = [7; 32];

/// A fresh directory for a test's database.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ringchat-store-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A room message from bob numbered `seq`.
pub(crate) fn entry(seq: u64, text: &str) -> ChatEntry {
    ChatEntry {
        seq: Seq(seq),
        origin: NodeId(9),
        name: "bob".into(),
        origin_seq: OriginSeq(seq),
        lamport: Lamport(100 + seq),
        sent_at: WallMillis(1_700_000_000_000 + seq),
        text: text.into(),
        term: 0,
        proof: Default::default(),
    }
}

fn kept(id: u64, to: &str) -> QueuedDm {
    QueuedDm {
        origin: NodeId(3),
        to: 0,
        dm: DirectMessage {
            id: DmId(id),
            from_name: "y".into(),
            to: vec![to.into()],
            sealed: format!("kept {id}").into_bytes(),
        },
    }
}

fn member(id: u64, name: &str) -> Member {
    Member {
        id: NodeId(id),
        name: name.into(),
        addr: format!("127.0.0.1:{}", 5000 + id).parse().unwrap(),
        presence: Presence::Online,
        key: [id as u8; 32],
        stamp: Stamp {
            lamport: Lamport(id),
            by: NodeId(id),
        },
    }
}

#[test]
fn writes_come_back_after_reopening() {
    let dir = scratch("roundtrip");
    {
        let mut s = Store::open(&dir, &KEY).unwrap();
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
        s.apply(&[
            Write::Delivered(entry(1, "hello")),
            Write::Delivered(ChatEntry::filler(Seq(2))),
            Write::Delivered(entry(3, "lunch at noon")),
            Write::Kept(kept(1, "x")),
            Write::Kept(kept(2, "x")),
            Write::Kept(kept(2, "x")), // a retry is kept once
            Write::HandedOver {
                to: "x".into(),
                origin: NodeId(3),
                id: DmId(1),
            },
            Write::DirectShown {
                origin: NodeId(3),
                id: DmId(5),
                message: direct("hi"),
            },
            Write::Room {
                members: vec![member(1, "a"), member(2, "b")],
                epoch: Some(Epoch {
                    term: 4,
                    leader: NodeId(2),
                }),
                lamport: Lamport(70),
            },
            Write::Clock(Lamport(77)),
        ])
        .unwrap();
    }
    let s = Store::open(&dir, &KEY).unwrap();
    let r = s.load(10).unwrap();
    let seqs: Vec<u64> = r.history.iter().map(|e| e.seq.0).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(r.history[2], entry(3, "lunch at noon"));
    assert_eq!(r.kept, vec![kept(2, "x")]);
    assert_eq!(r.handed_over, vec![("x".to_string(), NodeId(3), DmId(1))]);
    assert_eq!(r.directs_shown, vec![(NodeId(3), DmId(5))]);
    assert_eq!(r.members, vec![member(1, "a"), member(2, "b")]);
    assert_eq!(r.epoch.map(|e| e.term), Some(4));
    assert_eq!(r.lamport, Lamport(77));
    assert_eq!(r.next_seq(), Seq(4));
    // Only the last `history_limit` are loaded; `history` reads past memory.
    assert_eq!(s.load(1).unwrap().history.len(), 1);
    let shown: Vec<String> = s
        .history(10, None)
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(
        shown,
        vec!["hello", "lunch at noon"],
        "fillers are not shown"
    );
    let found = s.history(10, Some("LUNCH")).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        s.history(10, Some("bob")).unwrap().len(),
        2,
        "sender matches"
    );
    assert!(
        s.history(10, Some("%")).unwrap().is_empty(),
        "wildcards are literal"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_process_is_refused_while_the_first_holds_it() {
    let dir = scratch("locked");
    let _first = Store::open(&dir, &KEY).unwrap();
    let err = Store::open(&dir, &KEY).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_is_a_clear_error_and_stays_untouched() {
    let dir = scratch("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = vec![0x42u8; 8192];
    std::fs::write(dir.join(DB_FILE), &junk).unwrap();
    let err = Store::open(&dir, &KEY).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(std::fs::read(dir.join(DB_FILE)).unwrap(), junk);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_newer_schema_is_refused_and_not_rewritten() {
    let dir = scratch("newer");
    drop(Store::open(&dir, &KEY).unwrap());
    {
        let c = Connection::open(dir.join(DB_FILE)).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&dir, &KEY).unwrap_err();
    assert!(
        matches!(err, StoreError::Newer { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    let c = Connection::open(dir.join(DB_FILE)).unwrap();
    let v: u32 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1, "left as it was");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_identity_cannot_use_the_directory() {
    let dir = scratch("identity");
    drop(Store::open(&dir, &KEY).unwrap());
    let err = Store::open(&dir, &[8; 32]).unwrap_err();
    assert!(matches!(err, StoreError::OtherIdentity { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_first_version_database_is_migrated_with_its_data() {
    let dir = scratch("migrate");
    std::fs::create_dir_all(&dir).unwrap();
    {
        // A database exactly as the first schema version wrote it.
        let c = Connection::open(dir.join(DB_FILE)).unwrap();
        c.execute_batch(schema::V1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO history (seq, origin, origin_seq, name, lamport, sent_at, text) \
             VALUES (1, 9, 1, 'bob', 101, 5, 'from version one')",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO kept (recipient, origin, dm_id, item) VALUES ('x', 3, 2, ?1)",
            params![postcard::to_allocvec(&kept(2, "x")).unwrap()],
        )
        .unwrap();
    }
    let mut s = Store::open(&dir, &KEY).unwrap();
    assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
    let r = s.load(10).unwrap();
    assert_eq!(r.history.len(), 1);
    assert_eq!(r.history[0].text, "from version one");
    assert_eq!(
        r.history[0].proof,
        Provenance::default(),
        "kept without a proof"
    );
    // A copy kept in the clear cannot be checked by its recipient: version four drops it.
    assert!(r.kept.is_empty());
    // What versions two to four added works on the migrated database.
    s.apply(&[Write::Kept(kept(2, "x"))]).unwrap();
    assert_eq!(s.load(10).unwrap().kept, vec![kept(2, "x")]);
    s.apply(&[Write::HandedOver {
        to: "x".into(),
        origin: NodeId(3),
        id: DmId(2),
    }])
    .unwrap();
    let r = s.load(10).unwrap();
    assert!(r.kept.is_empty());
    assert_eq!(r.handed_over.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A room message's proof of origin (its link, and the seal on the last of a run) is kept
/// with it and read back as it was, so the history it answers from can be proven by
/// whoever asks, and so is a held copy's; a version-three database keeps its messages,
/// read without a proof, and drops its held copies (they carry none).
#[test]
fn a_room_message_keeps_its_proof() {
    let dir = scratch("proof");
    {
        std::fs::create_dir_all(&dir).unwrap();
        let c = Connection::open(dir.join(DB_FILE)).unwrap();
        c.execute_batch(schema::V1).unwrap();
        c.execute_batch(schema::V2).unwrap();
        c.execute_batch(schema::V3).unwrap();
        c.pragma_update(None, "user_version", 3).unwrap();
        c.execute(
            "INSERT INTO history (seq, origin, origin_seq, name, lamport, sent_at, text) \
             VALUES (1, 9, 1, 'bob', 101, 5, 'from version three')",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO held (seq, entry) VALUES (7, x'0102030405')",
            [],
        )
        .unwrap();
    }
    let mut s = Store::open(&dir, &KEY).unwrap();
    assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
    assert!(
        s.load(10).unwrap().held.is_empty(),
        "version three's held copies dropped"
    );
    let follower = ChatEntry {
        proof: Provenance {
            link: Some([3; 32]),
            seal: None,
        },
        ..entry(2, "in a run")
    };
    let closing = ChatEntry {
        proof: Provenance {
            link: Some([4; 32]),
            seal: Some(Box::new(SignatureBytes([5; 64]))),
        },
        ..entry(3, "closes it")
    };
    let held = ChatEntry {
        seq: Seq(4),
        term: 4,
        ..closing.clone()
    };
    s.apply(&[
        Write::Delivered(follower.clone()),
        Write::Delivered(closing.clone()),
        Write::Held(held.clone()),
    ])
    .unwrap();
    drop(s);
    let r = Store::open(&dir, &KEY).unwrap().load(10).unwrap();
    assert_eq!(r.history.len(), 3);
    assert_eq!(r.history[0].text, "from version three");
    assert_eq!(r.history[0].proof, Provenance::default());
    assert_eq!(r.history[1], follower);
    assert_eq!(r.history[2], closing);
    assert_eq!(r.held, vec![held]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Skipping the held row of a copy delivered later in the same batch leaves what writing
/// and deleting it would: no row for it, while a copy held after its number was
/// delivered (a new numbering) is kept, and one held in an earlier batch is deleted.
#[test]
fn a_copy_delivered_in_its_own_batch_is_not_kept_as_held() {
    let dir = scratch("held-delivered");
    let mut s = Store::open(&dir, &KEY).unwrap();
    let held = |seq, text| {
        Write::Held(ChatEntry {
            term: 3,
            ..entry(seq, text)
        })
    };
    s.apply(&[held(1, "one"), held(2, "two")]).unwrap();
    s.apply(&[
        held(3, "three"),
        Write::Delivered(entry(1, "one")),
        Write::Delivered(entry(3, "three")),
        Write::Delivered(entry(4, "four")),
        held(4, "four again"),
        held(5, "five"),
    ])
    .unwrap();
    drop(s);
    let r = Store::open(&dir, &KEY).unwrap().load(10).unwrap();
    let texts = |v: &[ChatEntry]| v.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&r.history), ["one", "three", "four"]);
    assert_eq!(texts(&r.held), ["two", "four again", "five"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The held rows are those a plain table would keep, over random batches of holds,
/// deliveries and runs of deliveries, across reopenings (the store knows which numbers have a row and deletes
/// only those: it must never miss one, nor one written before it was opened).
#[test]
fn held_rows_are_those_every_write_in_turn_would_leave() {
    let dir = scratch("held-model");
    let mut s = Store::open(&dir, &KEY).unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..200 {
        let mut batch = Vec::new();
        for _ in 0..(next() % 8) {
            let seq = 1 + next() % 24;
            if next() % 5 == 0 {
                // A run delivered one after the other.
                for seq in seq..seq + 1 + next() % 5 {
                    batch.push(Write::Delivered(entry(seq, "shown")));
                    model.remove(&seq);
                }
            } else if next() % 3 == 0 {
                batch.push(Write::Delivered(entry(seq, "shown")));
                model.remove(&seq);
            } else {
                let text = format!("held {seq} in round {round}");
                batch.push(Write::Held(ChatEntry {
                    term: 2,
                    ..entry(seq, &text)
                }));
                model.insert(seq, text);
            }
        }
        s.apply(&batch).unwrap();
        if next() % 10 == 0 {
            drop(s);
            s = Store::open(&dir, &KEY).unwrap();
        }
        let held: Vec<(u64, String)> = s
            .load(0)
            .unwrap()
            .held
            .into_iter()
            .map(|e| (e.seq.0, e.text))
            .collect();
        let want: Vec<(u64, String)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(held, want, "after round {round}: {batch:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A delivery point moved without a delivery (a welcome, a skip) is where a restart goes
/// on, until a room message is delivered after it; also in a database whose log holds an
/// earlier numbering with higher numbers.
#[test]
fn a_delivery_point_counts_until_the_next_delivery() {
    let dir = scratch("delivery-point");
    let mut s = Store::open(&dir, &KEY).unwrap();
    let loaded = |s: &Store| s.load(10).unwrap();
    s.apply(&[Write::Delivered(entry(500, "old room"))])
        .unwrap();
    assert_eq!(loaded(&s).next_seq(), Seq(501));
    s.apply(&[Write::DeliveryPoint(Seq(40))]).unwrap();
    let r = loaded(&s);
    assert_eq!(r.delivery_point, Some(Seq(40)));
    assert_eq!(
        r.next_seq(),
        Seq(40),
        "nothing was delivered since the welcome"
    );
    s.apply(&[Write::Delivered(entry(40, "new room"))]).unwrap();
    let r = loaded(&s);
    assert_eq!(r.delivery_point, None);
    assert_eq!(
        r.next_seq(),
        Seq(41),
        "delivered since: the log goes on after it"
    );
    s.apply(&[
        Write::DeliveryPoint(Seq(90)),
        Write::Delivered(entry(90, "after a skip")),
        Write::DeliveryPoint(Seq(200)),
    ])
    .unwrap();
    assert_eq!(loaded(&s).next_seq(), Seq(200), "the last point written");
    drop(s);
    let r = Store::open(&dir, &KEY).unwrap().load(10).unwrap();
    assert_eq!(r.delivery_point, Some(Seq(200)), "kept across a reopening");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Within one batch, a delivery point and a delivery count in the order written: a skip
/// then its first delivery goes on after the delivery; a delivery then a skip goes on
/// at the skip. Also after a reopening, and with only one history row loaded.
#[test]
fn a_delivery_point_and_a_delivery_in_one_batch_keep_their_order() {
    let dir = scratch("delivery-point-batch");
    let mut s = Store::open(&dir, &KEY).unwrap();
    s.apply(&[Write::Delivered(entry(5, "five"))]).unwrap();
    s.apply(&[
        Write::DeliveryPoint(Seq(9)),
        Write::Delivered(entry(9, "nine")),
    ])
    .unwrap();
    assert_eq!(s.load(1).unwrap().next_seq(), Seq(10));
    s.apply(&[
        Write::Delivered(entry(10, "ten")),
        Write::DeliveryPoint(Seq(20)),
    ])
    .unwrap();
    assert_eq!(s.load(1).unwrap().next_seq(), Seq(20));
    drop(s);
    let mut s = Store::open(&dir, &KEY).unwrap();
    assert_eq!(s.load(1).unwrap().next_seq(), Seq(20));
    s.apply(&[Write::Delivered(entry(20, "twenty"))]).unwrap();
    let r = s.load(1).unwrap();
    assert_eq!((r.next_seq(), r.delivery_point), (Seq(21), None));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A private message from carol to bob as shown, with `text`.
fn direct(text: &str) -> ShownDirect {
    ShownDirect {
        from: "carol".into(),
        to: vec!["bob".into()],
        lamport: Lamport(4),
        sent_at: WallMillis(9),
        text: text.into(),
        offline: false,
    }
}
