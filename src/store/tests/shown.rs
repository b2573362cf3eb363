//! What the user was shown: the last room message printed, and the private messages
//! taken but not printed before the program stopped.

use super::*;

/// The last room message the program printed is kept with the writes it rides on, stays
/// when a batch does not move it, and is read back after a reopening.
#[test]
fn the_shown_point_is_kept_with_its_batch_and_across_a_reopening() {
    let dir = scratch("shown-point");
    let mut s = Store::open(&dir, &KEY).unwrap();
    assert_eq!(s.shown_point().unwrap(), None, "never written");
    s.apply_shown(&[Write::Delivered(entry(1, "a"))], Some(room_mark(1)))
        .unwrap();
    assert_eq!(s.shown_point().unwrap(), Some(Seq(1)));
    s.apply_shown(&[Write::Delivered(entry(2, "b"))], None)
        .unwrap();
    assert_eq!(s.shown_point().unwrap(), Some(Seq(1)), "not moved");
    s.apply_shown(&[], Some(room_mark(2))).unwrap();
    assert_eq!(s.shown_point().unwrap(), Some(Seq(2)), "a mark alone");
    drop(s);
    let s = Store::open(&dir, &KEY).unwrap();
    assert_eq!(s.shown_point().unwrap(), Some(Seq(2)), "kept");
    assert_eq!(s.load(10).unwrap().history.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

fn room_mark(seq: u64) -> ShownPoint {
    ShownPoint {
        room: Seq(seq),
        direct_row: 0,
    }
}

fn shown_direct(id: u64, text: &str) -> Write {
    Write::DirectShown {
        origin: NodeId(3),
        id: DmId(id),
        message: direct(text),
    }
}

fn texts(u: &UnprintedDirects) -> Vec<&str> {
    u.messages.iter().map(|m| m.text.as_str()).collect()
}

/// Private messages shown after the last one the program printed come back, in order,
/// with the row the mark starts at; a database never marked gives none.
#[test]
fn private_messages_not_printed_are_read_back() {
    let dir = scratch("directs-unprinted");
    let mut s = Store::open(&dir, &KEY).unwrap();
    s.apply(&[shown_direct(1, "d1"), shown_direct(2, "d2")])
        .unwrap();
    let never = s.directs_not_shown().unwrap();
    assert_eq!((never.start, texts(&never)), (2, vec![]), "never marked");
    let printed_one = ShownPoint {
        room: Seq(0),
        direct_row: 1,
    };
    s.apply_shown(&[shown_direct(3, "d3")], Some(printed_one))
        .unwrap();
    drop(s);
    let s = Store::open(&dir, &KEY).unwrap();
    let after = s.directs_not_shown().unwrap();
    assert_eq!((after.start, texts(&after)), (1, vec!["d2", "d3"]));
    assert_eq!(after.messages[0], direct("d2"));
    assert_eq!(s.load(1).unwrap().directs_shown.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A row that cannot be read back, or a damaged mark, never leaves a message unshown:
/// the mark falls behind (some may come twice) rather than run ahead.
#[test]
fn damaged_private_message_rows_or_mark_show_more_rather_than_less() {
    let dir = scratch("directs-damaged");
    let mut s = Store::open(&dir, &KEY).unwrap();
    s.apply(&[
        shown_direct(1, "d1"),
        shown_direct(2, "d2"),
        shown_direct(3, "d3"),
    ])
    .unwrap();
    let none_printed = ShownPoint {
        room: Seq(0),
        direct_row: 0,
    };
    s.apply_shown(&[], Some(none_printed)).unwrap();
    s.conn
        .execute("UPDATE directs_shown SET item = x'ff' WHERE row = 2", [])
        .unwrap();
    let u = s.directs_not_shown().unwrap();
    assert_eq!((u.start, texts(&u)), (0, vec!["d1", "d3"]), "row 2 skipped");
    // Printing those two moves the mark to row 2, not past d3.
    let printed_two = ShownPoint {
        room: Seq(0),
        direct_row: u.start + 2,
    };
    s.apply_shown(&[], Some(printed_two)).unwrap();
    assert_eq!(texts(&s.directs_not_shown().unwrap()), vec!["d3"]);
    s.conn
        .execute(
            "UPDATE meta SET value = 'x' WHERE key = 'directs_shown_row'",
            [],
        )
        .unwrap();
    let u = s.directs_not_shown().unwrap();
    assert_eq!(
        (u.start, texts(&u)),
        (0, vec!["d3"]),
        "every row kept, read again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Once printed, a private message keeps its id on disk but not its text.
#[test]
fn a_printed_private_message_keeps_no_text() {
    let dir = scratch("directs-printed");
    let mut s = Store::open(&dir, &KEY).unwrap();
    s.apply(&[shown_direct(1, "d1"), shown_direct(2, "d2")])
        .unwrap();
    let printed_one = ShownPoint {
        room: Seq(0),
        direct_row: 1,
    };
    s.apply_shown(&[], Some(printed_one)).unwrap();
    let texts_kept: i64 = s
        .conn
        .query_row(
            "SELECT COUNT(*) FROM directs_shown WHERE item IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(texts_kept, 1, "only d2, not printed yet, keeps its text");
    assert_eq!(s.load(1).unwrap().directs_shown.len(), 2, "both ids kept");
    let _ = std::fs::remove_dir_all(&dir);
}
