//! Tests of the message cryptography: what a seal covers, and who can open what.

use super::*;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn public(k: &SigningKey) -> PublicKey {
    k.verifying_key().to_bytes()
}

fn written(text: &str) -> Written<'_> {
    Written {
        origin: NodeId(7),
        name: "alice",
        origin_seq: OriginSeq(3),
        lamport: Lamport(40),
        sent_at: WallMillis(1_700_000_000_000),
        text,
    }
}

/// The chain value covers every field the origin wrote, and the link.
#[test]
fn the_chain_value_covers_every_field() {
    let link = chain_start(NodeId(7));
    let base = chain(&link, &written("hello"));
    let variants = [
        Written {
            origin: NodeId(8),
            ..written("hello")
        },
        Written {
            name: "alicf",
            ..written("hello")
        },
        Written {
            origin_seq: OriginSeq(4),
            ..written("hello")
        },
        Written {
            lamport: Lamport(41),
            ..written("hello")
        },
        Written {
            sent_at: WallMillis(1),
            ..written("hello")
        },
        written("hellp"),
    ];
    for w in variants {
        assert_ne!(chain(&link, &w), base, "{w:?}");
    }
    assert_ne!(chain(&[0; 32], &written("hello")), base);
    // Fields cannot run into each other: the name and the text are framed.
    let a = Written {
        name: "ab",
        ..written("c")
    };
    let b = Written {
        name: "a",
        ..written("bc")
    };
    assert_ne!(chain(&link, &a), chain(&link, &b));
}

/// A run's seal checks under its origin's key only, and only over its own value.
#[test]
fn a_run_seal_checks_for_its_origin_and_value_only() {
    let alice = key(1);
    let value = chain(&chain_start(NodeId(7)), &written("hello"));
    let seal = seal_run(&alice, &value);
    assert!(check_run(&public(&alice), &value, &seal));
    assert!(!check_run(&public(&key(2)), &value, &seal));
    let other = chain(&chain_start(NodeId(7)), &written("hellp"));
    assert!(!check_run(&public(&alice), &other, &seal));
    let mut bent = seal;
    bent.0[5] ^= 1;
    assert!(!check_run(&public(&alice), &value, &bent));
    assert!(!check_run(&[0xff; 32], &value, &seal), "not a key");
}

/// Checking several runs at once says yes only if each one checks.
#[test]
fn runs_checked_together_fail_if_any_fails() {
    let (alice, bob) = (key(1), key(2));
    let v1 = chain(&chain_start(NodeId(7)), &written("one"));
    let v2 = chain(&chain_start(NodeId(7)), &written("two"));
    let good = vec![
        (public(&alice), v1, seal_run(&alice, &v1)),
        (public(&bob), v2, seal_run(&bob, &v2)),
    ];
    assert!(check_runs(&good));
    let mut bad = good.clone();
    bad[1].2 = seal_run(&alice, &v2);
    assert!(!check_runs(&bad));
}

fn to() -> Vec<String> {
    vec!["bob".into(), "carol".into()]
}

fn header<'a>(to: &'a [String], recipient: &'a str, key: &'a PublicKey) -> DirectHeader<'a> {
    DirectHeader {
        origin: NodeId(7),
        id: DmId(4),
        from_name: "alice",
        to,
        recipient,
        recipient_key: key,
    }
}

fn content() -> DirectContent {
    DirectContent {
        lamport: Lamport(9),
        sent_at: WallMillis(1_700_000_000_000),
        text: "meet at the old mill".into(),
    }
}

/// The recipient opens its copy and learns the sender's content; the text is nowhere in
/// the sealed bytes.
#[test]
fn the_recipient_opens_its_copy() {
    let (alice, bob) = (key(1), key(2));
    let to = to();
    let bob_key = public(&bob);
    let sealed = seal_direct(&alice, &header(&to, "bob", &bob_key), &content(), [3; 32]).unwrap();
    assert!(
        !sealed.windows(b"old mill".len()).any(|w| w == b"old mill"),
        "the text travels in the clear"
    );
    assert!(sealed.len() <= content().text.len() + DIRECT_OVERHEAD);
    let opened = open_direct(
        &bob,
        &header(&to, "bob", &bob_key),
        &public(&alice),
        &sealed,
    );
    assert_eq!(opened, Ok(content()));
}

/// Another recipient, whoever keeps the copy, or anyone with another key reads nothing.
#[test]
fn nobody_else_opens_a_copy() {
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let to = to();
    let (bob_key, carol_key) = (public(&bob), public(&carol));
    let sealed = seal_direct(&alice, &header(&to, "bob", &bob_key), &content(), [3; 32]).unwrap();
    // Carol, with her own key, posing as the recipient of bob's copy.
    for h in [
        header(&to, "bob", &bob_key),
        header(&to, "carol", &carol_key),
    ] {
        assert_eq!(
            open_direct(&carol, &h, &public(&alice), &sealed),
            Err(SealError::Unopened)
        );
    }
}

/// Anything of the header changed on the way (sender, id, recipients, recipient), or the
/// sealed bytes, and the copy does not open.
#[test]
fn an_altered_copy_does_not_open() {
    let (alice, bob) = (key(1), key(2));
    let to = to();
    let bob_key = public(&bob);
    let good = header(&to, "bob", &bob_key);
    let sealed = seal_direct(&alice, &good, &content(), [3; 32]).unwrap();
    let fewer = vec!["bob".to_string()];
    let altered = [
        DirectHeader {
            origin: NodeId(8),
            ..good
        },
        DirectHeader {
            id: DmId(5),
            ..good
        },
        DirectHeader {
            from_name: "mallory",
            ..good
        },
        DirectHeader { to: &fewer, ..good },
    ];
    for h in altered {
        assert_eq!(
            open_direct(&bob, &h, &public(&alice), &sealed),
            Err(SealError::Unopened),
            "{h:?}"
        );
    }
    for at in [0, 31, 32, 40, sealed.len() - 1] {
        let mut bent = sealed.clone();
        bent[at] ^= 0x40;
        assert!(open_direct(&bob, &good, &public(&alice), &bent).is_err());
    }
    assert_eq!(
        open_direct(&bob, &good, &public(&alice), &sealed[..40]),
        Err(SealError::Short)
    );
}

/// Mallory can seal a copy for bob (bob's key is public) claiming to be alice, but it
/// carries mallory's signature: checked against alice's key, it is refused.
#[test]
fn a_copy_signed_by_another_identity_is_forged() {
    let (alice, bob, mallory) = (key(1), key(2), key(4));
    let to = vec!["bob".to_string()];
    let bob_key = public(&bob);
    let h = header(&to, "bob", &bob_key);
    let sealed = seal_direct(&mallory, &h, &content(), [3; 32]).unwrap();
    assert_eq!(
        open_direct(&bob, &h, &public(&alice), &sealed),
        Err(SealError::Forged)
    );
    assert_eq!(
        open_direct(&bob, &h, &public(&mallory), &sealed),
        Ok(content())
    );
}

/// Two seals of the same message differ (fresh ephemeral keys), and a key that is no
/// key cannot be sealed for.
#[test]
fn seals_are_fresh_and_need_a_real_key() {
    let (alice, bob) = (key(1), key(2));
    let to = to();
    let bob_key = public(&bob);
    let h = header(&to, "bob", &bob_key);
    let a = seal_direct(&alice, &h, &content(), [3; 32]).unwrap();
    let b = seal_direct(&alice, &h, &content(), [4; 32]).unwrap();
    assert_ne!(a[..32], b[..32]);
    // The neutral point: a valid encoding, but of a point of small order.
    let mut bad = [0u8; 32];
    bad[0] = 1;
    assert_eq!(
        seal_direct(&alice, &header(&to, "bob", &bad), &content(), [3; 32]),
        Err(SealError::BadKey)
    );
}
