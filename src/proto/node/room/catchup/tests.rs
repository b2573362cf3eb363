//! Catch-up's memory of the members asked.

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The members asked just before the current one stay taken at their word, the last
/// [`FETCHES_REMEMBERED`] of them; one asked before a pause in the fetching does not.
#[test]
fn only_the_members_asked_just_before_are_remembered() {
    let mut room = Room::new(&NodeConfig::new("ann", addr(9), None));
    let (a, b, c, d) = (addr(1), addr(2), addr(3), addr(4));
    room.fetch_of(Some(a));
    room.fetch_upto = Seq(10);
    room.fetch_of(Some(b));
    assert_eq!(room.asked_of(a), Some(Seq(10)));
    room.fetch_upto = Seq(12);
    room.fetch_of(Some(b));
    assert_eq!(room.asked_of(b), Some(Seq(12)), "the one asked now");
    room.fetch_of(Some(c));
    assert_eq!(room.asked_of(a), Some(Seq(10)), "two changes ago");
    assert_eq!(room.asked_of(b), Some(Seq(12)));
    room.fetch_of(Some(d));
    assert_eq!(room.asked_of(a), None, "three changes ago");
    assert_eq!(room.asked_of(addr(7)), None, "never asked");
    room.fetch_of(None);
    assert_eq!(room.asked_of(d), None, "nobody is asked now");
    room.fetch_of(Some(a));
    assert_eq!(room.asked_of(d), None, "d was asked before the pause");
    assert_eq!(room.asked_of(c), None);
    room.stop_fetch();
    assert_eq!(room.asked_of(a), None);
}
