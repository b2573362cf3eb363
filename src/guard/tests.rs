//! The guard's own tests: the room key's seal and window, rate limits, key files.

use super::rate::IP_SHARE;
use super::*;

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

#[test]
fn sealed_datagrams_open_only_with_the_key_and_once() {
    let key = [7u8; KEY_BYTES];
    let a = Guard::new(NodeId(1), Some(key), 1000);
    let b = Guard::new(NodeId(2), Some(key), 1000);
    let other = Guard::new(NodeId(3), Some([8u8; KEY_BYTES]), 1000);
    let plain = Guard::new(NodeId(4), None, 1000);
    let d = a.seal(b"\x01hello").unwrap();
    assert_eq!(d.len(), 6 + SEAL_OVERHEAD);
    assert_eq!(&*b.open(addr(), &d).unwrap(), b"\x01hello");
    assert_eq!(b.open(addr(), &d), Err(Refused::Replayed(1, NodeId(1))));
    assert_eq!(
        other.open(addr(), &a.seal(b"x").unwrap()),
        Err(Refused::Unauthentic)
    );
    assert_eq!(
        plain.open(addr(), &a.seal(b"x").unwrap()),
        Err(Refused::NoKey)
    );
    assert_eq!(b.open(addr(), b"\x01plain"), Err(Refused::NotSealed));
    let mut tampered = a.seal(b"\x01hello").unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(b.open(addr(), &tampered), Err(Refused::Unauthentic));
    // The header is authenticated too: a changed packet number does not open.
    let mut renumbered = a.seal(b"\x01hello").unwrap();
    renumbered[9] ^= 1;
    assert_eq!(b.open(addr(), &renumbered), Err(Refused::Unauthentic));
    assert_eq!(b.open(addr(), &[SEALED, 1, 2]), Err(Refused::Unauthentic));
}

/// A flood of datagrams under invented sender ids cannot empty the replay windows: the
/// least recently used go first, a quarter at a time, so a capture of a sender used
/// lately is still refused as a replay after the flood.
#[test]
fn invented_senders_cannot_wipe_the_replay_windows() {
    let key = [7u8; KEY_BYTES];
    let b = Guard::new(NodeId(2), Some(key), u32::MAX);
    let first = Guard::new(NodeId(1), Some(key), u32::MAX);
    let early = first.seal(b"\x01early").unwrap();
    assert!(b.open(addr(), &early).is_ok());
    for id in 10..10 + MAX_WINDOWS as u64 - 2 {
        let invented = Guard::new(NodeId(id), Some(key), u32::MAX);
        assert!(b.open(addr(), &invented.seal(b"\x01x").unwrap()).is_ok());
    }
    let late = Guard::new(NodeId(3), Some(key), u32::MAX);
    let captured = late.seal(b"\x01late").unwrap();
    assert!(b.open(addr(), &captured).is_ok());
    assert_eq!(b.windows.len(), MAX_WINDOWS);
    // One more invented id: the table is full, the oldest quarter goes.
    let one_more = Guard::new(NodeId(1 << 40), Some(key), u32::MAX);
    assert!(b.open(addr(), &one_more.seal(b"\x01x").unwrap()).is_ok());
    assert!(
        b.windows.len() <= MAX_WINDOWS * 3 / 4 + 1,
        "{}",
        b.windows.len()
    );
    assert_eq!(
        b.open(addr(), &captured),
        Err(Refused::Replayed(1, NodeId(3))),
        "the window used last survives"
    );
    assert!(b.open(addr(), &early).is_ok(), "the oldest went first");
}

#[test]
fn rate_limit_per_source_address() {
    let g = Guard::new(NodeId(1), None, 3);
    for _ in 0..3 {
        assert!(g.open(addr(), b"\x01x").is_ok());
    }
    assert_eq!(g.open(addr(), b"\x01x"), Err(Refused::RateLimited));
    // Another port on the same host (another member there) keeps its own share.
    let neighbour = SocketAddr::from(([127, 0, 0, 1], 10));
    assert!(g.open(neighbour, b"\x01x").is_ok());
    // But one host over all its ports is capped too.
    let mut refused = 0;
    for port in 100..200 {
        let from = SocketAddr::from(([127, 0, 0, 1], port));
        refused += usize::from(g.open(from, b"\x01x").is_err());
    }
    assert!(refused >= 100 - 3 * IP_SHARE as usize, "{refused}");
}

/// The member budget: a member's address is never cut at a rate a stranger would be,
/// strangers on its host still are, and their flood does not use up the member's share;
/// a flood from the member's own address is still capped, at [`member_rate`].
#[test]
fn members_have_a_budget_of_their_own() {
    let g = Guard::new(NodeId(1), None, 3);
    let member = SocketAddr::from(([127, 0, 0, 1], 20));
    let stranger = SocketAddr::from(([127, 0, 0, 1], 21));
    g.set_members([member]);
    assert!(g.is_member(member) && !g.is_member(stranger));
    // Strangers on the member's host use up the IP's cap...
    for port in 100..200 {
        let _ = g.within_rate_at(SocketAddr::from(([127, 0, 0, 1], port)), 0);
    }
    assert_eq!(g.within_rate_at(stranger, 0), Err(Refused::RateLimited));
    // ...but the member goes on, far past the per-source limit, up to its budget, and
    // a flood from its own address is capped there.
    let budget = member_rate(3);
    assert_eq!(budget, MEMBER_RATE);
    for k in 0..budget {
        assert_eq!(g.within_rate_at(member, 0), Ok(()), "datagram {k}");
    }
    assert_eq!(g.within_rate_at(member, 0), Err(Refused::RateLimited));
    // The next second it has its whole budget again.
    assert_eq!(g.within_rate_at(member, 1), Ok(()));
    // Once it is no member any more, it is a stranger again (one of its three this
    // second is used).
    g.set_members([]);
    assert!(!g.is_member(member));
    for _ in 0..2 {
        assert_eq!(g.within_rate_at(member, 1), Ok(()));
    }
    assert_eq!(g.within_rate_at(member, 1), Err(Refused::RateLimited));
    assert_eq!(member_rate(u32::MAX), u32::MAX);
    assert_eq!(member_rate(50_000), 50_000 * IP_SHARE);
}

#[test]
fn key_files_round_trip_and_are_private() {
    let dir = std::env::temp_dir().join(format!("ringchat-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("room.key");
    write_new_key(&path).unwrap();
    assert!(write_new_key(&path).is_err(), "never overwrites");
    let key = read_key(&path).unwrap();
    assert_ne!(key, [0u8; KEY_BYTES]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(&path, "zz").unwrap();
    assert!(matches!(read_key(&path), Err(KeyError::Format)));
    std::fs::remove_dir_all(&dir).unwrap();
}
