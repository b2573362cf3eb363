//! The full-screen client, the real binary under a pseudo-terminal, its screen read
//! through a terminal emulator (`vt100`): joining, chatting, completion, a resize, keys
//! typed during resizes, Ctrl-L, a message arriving while typing, scrolling and the unread marker, `dereg`/`reg` with
//! every refused command shown, the leader killed, a departed member ageing out of the
//! sidebar, a split shown in the status bar, 50 joins in a row, a failed join, and
//! colours. Every step waits for what proves the one before happened on the screen
//! (15 s at most, a split and its heal longer); none sleeps.

mod common;
#[path = "fullscreen/vt.rs"]
mod vt;

use common::{Proc, Scratch};
use std::time::Duration;
use vt::VtProc;

/// The pane's part of a row: the sidebar (after `│`) cut off, trailing blanks trimmed.
fn pane(row: &str) -> &str {
    row.split('│').next().unwrap_or("").trim_end()
}

/// Starts the full-screen client as `name` (creating a room, or joining through `join`),
/// ephemeral, and waits until it is in the room.
#[track_caller]
fn client(scratch: &Scratch, name: &str, join: Option<u16>, env: &[(&str, &str)]) -> VtProc {
    let contact = join.map(|p| format!("127.0.0.1:{p}"));
    let mut args = vec!["--name", name, "--port", "0", "--ephemeral"];
    if let Some(c) = &contact {
        args.extend(["--join", c.as_str()]);
    }
    let mut p = VtProc::spawn(name, scratch, &args, env);
    p.wait_row("the line saying it is in the room", |r| {
        let r = pane(r);
        r.starts_with("created a new room;") || r.starts_with("joined the room:")
    });
    p
}

/// The port the client listens on, from its first line.
#[track_caller]
fn port_of(p: &VtProc) -> u16 {
    p.rows()
        .iter()
        .find_map(|r| {
            pane(r)
                .strip_prefix("listening on 127.0.0.1:")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| p.fail("no `listening on` line"))
}

/// The status bar (the row above the input line).
fn status(p: &VtProc) -> String {
    p.row_from_bottom(1)
}

/// The input line.
fn input(p: &VtProc) -> String {
    p.row_from_bottom(0)
}

/// Whether, below the last pane row that is exactly `marker`, some row satisfies `pred`.
fn after(p: &VtProc, marker: &str, pred: impl Fn(&str) -> bool) -> bool {
    let rows = p.rows();
    let Some(at) = rows.iter().rposition(|r| pane(r) == marker) else {
        return false;
    };
    rows[at + 1..].iter().any(|r| pred(pane(r)))
}

#[test]
fn join_chat_complete_and_leave() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[]);
    let port = port_of(&a);
    let bar = format!(" alice@127.0.0.1:{port} · leader alice · 1/1 online · room key");
    a.wait("the status bar", |p| status(p).starts_with(&bar));
    assert_eq!(input(&a), "[alice]");
    // The new room's invitation, below the line saying it was created.
    let token = format!("ringchat2:127.0.0.1:{port}/");
    a.wait("the invitation", |p| {
        after(p, "created a new room; you (alice) are the leader", |r| {
            r.starts_with("invitation: a friend starts ringchat with --join")
        }) && p.has_row(|r| pane(r).starts_with(&token))
    });

    let mut b = Proc::start(&scratch, "bob", Some(port));
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    a.wait("bob online, in the sidebar and the count", |p| {
        p.has_row(|r| pane(r) == "bob is online")
            && p.has_row(|r| r.ends_with("│ bob"))
            && p.has_row(|r| r.ends_with("│@alice"))
            && status(p).contains("· 2/2 online ·")
    });

    b.send("hi alice");
    a.wait_row("bob's message", |r| pane(r).ends_with(" bob: hi alice"));
    // The first message of the day comes under a separator naming the day.
    let rows = a.rows();
    let at = rows
        .iter()
        .position(|r| pane(r).ends_with(" bob: hi alice"))
        .unwrap_or_else(|| a.fail("bob's message moved"));
    if !(rows[at - 1].starts_with('─') && rows[at - 1].contains(" 20")) {
        a.fail("no day separator above the first message");
    }
    // bob's name is in a colour.
    let col = rows[at].find("bob").unwrap_or(0) as u16;
    let cell = a.screen().cell(at as u16, col).map(|c| c.fgcolor());
    if cell.is_none_or(|c| c == vt100::Color::Default) {
        a.fail(&format!("bob's name has no colour: {cell:?}"));
    }

    a.type_line("hello bob");
    b.expect(|l| l.ends_with("alice: hello bob"), "alice's message");
    a.wait_row("alice's own message", |r| {
        pane(r).ends_with(" alice: hello bob")
    });

    // Tab completes a name anywhere in the line, and recipients without yourself.
    a.keys("see you b\t");
    a.wait("the completed name", |p| input(p) == "[alice] see you bob");
    a.keys("\r");
    b.expect(|l| l.ends_with("alice: see you bob"), "the completed line");
    a.keys("send \t");
    a.wait("bob offered first", |p| input(p) == "[alice] send bob");
    a.keys("psst\r");
    b.expect(
        |l| l.contains(" private") && l.ends_with("alice: psst"),
        "the private message",
    );
    a.wait("the own private line and its receipt", |p| {
        p.has_row(|r| pane(r).ends_with("[private to bob] alice: psst"))
            && p.has_row(|r| pane(r) == "[Message received by bob.]")
    });

    // Up brings back the line before; Ctrl-U empties the input line.
    a.keys("\x1b[A");
    a.wait("the line before", |p| input(p) == "[alice] send bob psst");
    a.keys("\x15");
    a.wait("an empty input line", |p| input(p) == "[alice]");

    // status says the room has a key; invite shows a new invitation.
    a.type_line("status");
    a.wait_row("the key line", |r| pane(r).starts_with("key:     keyed"));
    a.type_line("invite");
    a.wait("a new invitation", |p| {
        after(p, "> invite", |r| {
            r.starts_with("invitation: a friend starts")
        }) && after(p, "> invite", |r| r.starts_with(&token))
    });

    a.type_line("/quit");
    let code = a.wait_exit();
    assert_eq!(code, 0, "alice's exit code");
    // Back on the main screen, the last line stays, with its newline.
    if !a.rows().iter().any(|r| r == "left the room") {
        a.fail("no `left the room` after the terminal was put back");
    }
    b.expect_line("alice is offline");
}

#[test]
fn typing_survives_a_message_and_resizes() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[]);
    let mut b = Proc::start(&scratch, "bob", Some(port_of(&a)));
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    a.wait_row("bob online", |r| pane(r) == "bob is online");

    a.keys("half a li");
    a.wait("the half line", |p| input(p) == "[alice] half a li");
    b.send("incoming while alice types");
    a.wait("the message, and the half line intact", |p| {
        p.has_row(|r| pane(r).ends_with("bob: incoming while alice types"))
            && input(p) == "[alice] half a li"
    });

    a.resize(50, 12);
    a.wait("the small layout: no sidebar", |p| {
        p.rows().len() == 12
            && input(p) == "[alice] half a li"
            && status(p).starts_with(" alice@127.0.0.1:")
            && p.has_row(|r| r.ends_with("bob: incoming while alice types"))
            && !p.has_row(|r| r.contains('│'))
    });
    a.resize(120, 40);
    a.wait("the large layout: the sidebar back", |p| {
        p.rows().len() == 40
            && input(p) == "[alice] half a li"
            && p.has_row(|r| r.ends_with("│@alice"))
            && p.has_row(|r| pane(r).ends_with("bob: incoming while alice types"))
    });

    a.keys("ne\r");
    b.expect(|l| l.ends_with("alice: half a line"), "the finished line");
    a.type_line("exit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}

/// A key typed while the terminal is being resized is taken at once, not held back
/// until the next key: every key typed right after a resize shows on the input line.
#[test]
fn keys_typed_during_a_resize_are_taken() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[]);
    let mut typed = String::new();
    for i in 0..40u16 {
        // The resize and the key reach the client together, as when a window is dragged
        // while typing; the key must not wait for another one.
        a.resize(80 + i % 2 * 20, 24 + i % 3);
        a.keys("x");
        typed.push('x');
        let want = format!("[alice] {typed}");
        a.wait_within(
            Duration::from_secs(5),
            &format!("key {} after a resize", i + 1),
            |p| input(p) == want,
        );
    }
    a.keys("\r");
    a.wait_row("the line sent", |r| {
        pane(r).ends_with(&format!("alice: {typed}"))
    });
    a.type_line("exit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}

/// Ctrl-L paints the whole screen again: what another program scribbled over the client
/// (here fed straight into the emulated screen) is gone, the layout intact.
#[test]
fn ctrl_l_draws_the_screen_again() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[]);
    a.keys("draft");
    a.wait("the draft", |p| input(p) == "[alice] draft");
    a.screen
        .process(b"\x1b[3;3Hscribbled over\x1b[1;1Hscribbled over");
    if !a.has_row(|r| r.contains("scribbled over")) {
        a.fail("the scribble did not reach the emulated screen");
    }
    a.keys("\x0c");
    a.wait("the screen drawn again", |p| {
        !p.has_row(|r| r.contains("scribbled over"))
            && p.has_row(|r| r.ends_with("│@alice"))
            && input(p) == "[alice] draft"
            && status(p).starts_with(" alice@127.0.0.1:")
    });
    a.keys("\x15");
    a.type_line("exit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}

#[test]
fn scrolling_and_the_unread_marker() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[]);
    let mut b = Proc::start(&scratch, "bob", Some(port_of(&a)));
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    for i in 1..=40 {
        b.send(&format!("line {i}"));
    }
    a.wait_row("the 40th line", |r| pane(r).ends_with("bob: line 40"));

    // PageUp: older lines; what arrives meanwhile is counted, not shown.
    a.keys("\x1b[5~");
    a.wait("scrolled up", |p| {
        status(p).contains("scrolled up") && !p.has_row(|r| pane(r).ends_with("bob: line 40"))
    });
    b.send("late news");
    a.wait("one new line below", |p| status(p).contains("1 new below"));
    if a.has_row(|r| pane(r).ends_with("bob: late news")) {
        a.fail("the view moved to the new line while scrolled up");
    }
    // PageDown back to the bottom: the marker stands above what came meanwhile.
    for _ in 0..3 {
        a.keys("\x1b[6~");
    }
    a.wait("back at the bottom, under the marker", |p| {
        let rows = p.rows();
        let marker = rows.iter().position(|r| r.contains("new since you looked"));
        let late = rows
            .iter()
            .position(|r| pane(r).ends_with("bob: late news"));
        matches!((marker, late), (Some(m), Some(l)) if m + 1 == l)
            && !status(p).contains("scrolled")
            && !status(p).contains("below")
    });
    // The mouse wheel scrolls too (SGR mouse reports: 64 up, 65 down).
    a.keys("\x1b[<64;5;5M");
    a.wait("scrolled up by the wheel", |p| {
        status(p).contains("scrolled up")
    });
    a.keys("\x1b[<65;5;5M");
    a.wait("down again by the wheel", |p| {
        !status(p).contains("scrolled")
    });
    // Typing a line means the user has read: the marker goes.
    a.type_line("read it");
    a.wait("no marker", |p| {
        !p.has_row(|r| r.contains("new since you looked"))
            && p.has_row(|r| pane(r).ends_with("alice: read it"))
    });
    a.type_line("exit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}

/// An open room (`--insecure`) says so on the full screen: the warning in the pane, the
/// status bar, `status`, and `invite`.
#[test]
fn an_open_room_says_so_on_the_full_screen() {
    let scratch = Scratch::new();
    let args = [
        "--name",
        "olivia",
        "--port",
        "0",
        "--ephemeral",
        "--insecure",
    ];
    let mut o = VtProc::spawn("olivia", &scratch, &args, &[]);
    o.wait("the warning and the bar", |p| {
        p.has_row(|r| pane(r).starts_with("warning: --insecure: this room is OPEN"))
            && status(p).contains("· 1/1 online · OPEN: no key")
    });
    o.type_line("status");
    o.wait_row("the key line", |r| {
        pane(r).starts_with("key:     none: an OPEN room (--insecure)")
    });
    o.type_line("invite");
    o.wait("no invitation for an open room", |p| {
        after(p, "> invite", |r| {
            r.starts_with("this room is open (--insecure)")
        })
    });
    o.type_line("/quit");
    assert_eq!(o.wait_exit(), 0, "olivia's exit code");
}

/// Offline after `dereg`, every command typed is refused and every refusal shows, right
/// below the command; `reg` brings the client back, as the status bar says.
#[test]
fn dereg_reg_and_every_refusal_shows() {
    let scratch = Scratch::new();
    let host = Proc::create(&scratch, "host");
    let mut pc = client(&scratch, "pc", Some(host.port), &[]);
    for round in 1..=2 {
        pc.type_line("dereg");
        pc.wait("offline", |p| {
            after(p, "> dereg", |r| r.starts_with("you are offline"))
                && status(p).contains("OFFLINE")
                && p.has_row(|r| r.ends_with("│ pc (off)"))
        });
        for i in 0..15 {
            let typed = format!("send_all {round}.{i}");
            pc.type_line(&typed);
            pc.wait(&format!("the refusal of {typed:?}"), |p| {
                after(p, &format!("> {typed}"), |r| {
                    r.starts_with("error: not in the room")
                })
            });
        }
        pc.type_line("reg");
        pc.wait("back in the room", |p| {
            after(p, "> reg", |r| r.starts_with("joined the room"))
                && !status(p).contains("OFFLINE")
                && status(p).contains("· 2/2 online ·")
        });
    }
    pc.type_line("back again");
    pc.wait_row("the room message", |r| pane(r).ends_with("pc: back again"));
    pc.type_line("exit");
    assert_eq!(pc.wait_exit(), 0, "pc's exit code");
}

/// The leader is killed: the client shows it offline, the new leader in the status bar
/// and the sidebar, and the room goes on.
#[test]
fn the_leader_killed() {
    let scratch = Scratch::new();
    let mut alice = Proc::create(&scratch, "alice");
    let mut bob = Proc::join(&scratch, "bob", &alice, 2, "alice");
    let mut carol = client(&scratch, "carol", Some(alice.port), &[]);
    carol.wait("three online, alice leading", |p| {
        status(p).contains("· leader alice · 3/3 online ·") && p.has_row(|r| r.ends_with("│@alice"))
    });
    // Carol is told she is in once alice admits her, before the room has committed her
    // as a voter; a message of hers that bob shows is ordered after that change, so bob
    // holds it and the room has three voters.
    // (Killed before then, alice would leave a room of two voters with one alive, which
    // no majority rule lets go on.)
    carol.type_line("in");
    bob.expect(|l| l.ends_with("carol: in"), "carol's message");
    alice.kill();
    carol.wait("alice offline and a new leader", |p| {
        let s = status(p);
        let leader = ["bob", "carol"]
            .into_iter()
            .find(|n| s.contains(&format!("· leader {n} ·")));
        leader.is_some_and(|n| {
            p.has_row(|r| r.ends_with(&format!("│@{n}")))
                && p.has_row(|r| pane(r) == format!("leader is now {n}"))
        }) && s.contains("· 2/3 online ·")
            && p.has_row(|r| pane(r) == "alice is offline")
            && p.has_row(|r| r.ends_with("│ alice (off)"))
    });
    bob.send("after the crash");
    carol.wait_row("the room goes on", |r| {
        pane(r).ends_with("bob: after the crash")
    });
    carol.type_line("exit");
    assert_eq!(carol.wait_exit(), 0, "carol's exit code");
}

/// A member that left ages out of the member table (`--forget-after 1`), and so out of
/// the sidebar and the count in the status bar.
#[test]
fn a_departed_member_leaves_the_sidebar() {
    let scratch = Scratch::new();
    let args = [
        "--name",
        "alice",
        "--port",
        "0",
        "--ephemeral",
        "--forget-after",
        "1",
    ];
    let mut a = VtProc::spawn("alice", &scratch, &args, &[]);
    a.wait_row("the room created", |r| {
        pane(r).starts_with("created a new room;")
    });
    let mut b = Proc::start(&scratch, "bob", Some(port_of(&a)));
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    a.wait("bob in the sidebar", |p| {
        p.has_row(|r| r.ends_with("│ bob"))
    });
    b.send("exit");
    b.wait_exit(vt::WAIT);
    a.wait("bob offline in the sidebar", |p| {
        p.has_row(|r| r.ends_with("│ bob (off)")) && status(p).contains("· 1/2 online ·")
    });
    a.wait("bob gone from the sidebar", |p| {
        !p.has_row(|r| r.contains("│ bob")) && status(p).contains("· 1/1 online ·")
    });
    a.type_line("/quit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}

/// Sends `signal` (`STOP`, `CONT`) to `p`.
fn signal(p: &Proc, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), p.pid().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill -{signal}: {e}"));
    assert!(
        status.success(),
        "kill -{signal} {} failed: {status}",
        p.pid()
    );
}

/// A split: the two other members stop (SIGSTOP), and the client's node reaches one
/// voter. The status bar says the room waits for a majority, with how many voters it
/// reaches; once they go on (SIGCONT) it says so no more, and the room goes on.
#[test]
fn a_split_shows_in_the_status_bar() {
    let scratch = Scratch::new();
    let mut carol = client(&scratch, "carol", None, &[]);
    let port = port_of(&carol);
    let mut alice = Proc::start(&scratch, "alice", Some(port));
    alice.expect(|l| l.starts_with("joined the room"), "alice's join");
    let mut bob = Proc::start(&scratch, "bob", Some(port));
    bob.expect(|l| l.starts_with("joined the room"), "bob's join");
    let voters = "voters:  alice, bob, carol (2 make a majority, 3 reachable)";
    let deadline = std::time::Instant::now() + vt::WAIT;
    loop {
        alice.send("status");
        if alice.expect(|l| l.starts_with("voters:"), "the voters line") == voters {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice's `status` never said {voters:?}"
        );
    }
    carol.wait("three online, none waiting", |p| {
        status(p).contains("· leader carol · 3/3 online ·")
    });

    signal(&alice, "STOP");
    signal(&bob, "STOP");
    let split = std::time::Duration::from_secs(30);
    carol.wait_within(split, "the bar saying the room waits", |p| {
        let s = status(p);
        s.starts_with(&format!(
            " carol@127.0.0.1:{port} · waiting for a majority: 1 of "
        )) && !s.contains(" online ")
    });
    signal(&alice, "CONT");
    signal(&bob, "CONT");
    let heal = std::time::Duration::from_secs(60);
    carol.wait_within(heal, "the bar back to the members online", |p| {
        let s = status(p);
        !s.contains("waiting") && s.contains("· 3/3 online ·")
    });
    carol.type_line("after the split");
    alice.expect_within(
        heal,
        |l| l.ends_with("carol: after the split"),
        "carol's message after the split",
    );
    carol.type_line("exit");
    assert_eq!(carol.wait_exit(), 0, "carol's exit code");
}

/// 50 joins in a row: each shows its joined line, answers a refused command with its
/// error line, and leaves with `left the room` on the main screen.
#[test]
fn fifty_joins_in_a_row() {
    let scratch = Scratch::new();
    let host = Proc::create(&scratch, "host");
    for i in 0..50 {
        let name = format!("pc{i}");
        let mut p = client(&scratch, &name, Some(host.port), &[]);
        if !p.has_row(|r| {
            pane(r).starts_with("joined the room: ") && pane(r).ends_with("leader is host")
        }) {
            p.fail("no joined line naming the leader");
        }
        p.type_line(&format!("/nope{i}"));
        let error = format!("error: unknown command /nope{i} (type help)");
        p.wait_row("the refusal", |r| pane(r) == error);
        p.type_line("/quit");
        assert_eq!(p.wait_exit(), 0, "{name}'s exit code");
        if !p.rows().iter().any(|r| r == "left the room") {
            p.fail("no `left the room` on the main screen");
        }
    }
}

/// A join that fails says why once the terminal is back, and exits 1.
#[test]
fn a_failed_join_says_why_on_the_main_screen() {
    let scratch = Scratch::new();
    // A port that is taken but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
    let port = silent.local_addr().expect("its address").port();
    let contact = format!("127.0.0.1:{port}");
    let args = [
        "--name",
        "x",
        "--port",
        "0",
        "--ephemeral",
        "--join",
        &contact,
    ];
    let mut p = VtProc::spawn("x", &scratch, &args, &[]);
    let code = p.wait_exit();
    assert_eq!(code, 1, "the exit code of a failed join");
    let why = format!("error: cannot join: no answer from {contact}");
    if !p.rows().iter().any(|r| r.starts_with(&why)) {
        p.fail("the failed join does not say why on the main screen");
    }
}

/// With `NO_COLOR`, no cell has a colour.
#[test]
fn no_color_means_no_colour() {
    let scratch = Scratch::new();
    let mut a = client(&scratch, "alice", None, &[("NO_COLOR", "1")]);
    let mut b = Proc::start(&scratch, "bob", Some(port_of(&a)));
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    b.send("hi");
    a.type_line("/nope");
    a.wait("bob's message and an error", |p| {
        p.has_row(|r| pane(r).ends_with("bob: hi"))
            && p.has_row(|r| pane(r).starts_with("error: unknown command /nope"))
    });
    let (rows, cols) = a.screen().size();
    for y in 0..rows.get() {
        for x in 0..cols.get() {
            let Some(cell) = a.screen().cell(y, x) else {
                continue;
            };
            if cell.fgcolor() != vt100::Color::Default || cell.bgcolor() != vt100::Color::Default {
                a.fail(&format!("a coloured cell at row {y}, column {x}: {cell:?}"));
            }
        }
    }
    a.type_line("exit");
    assert_eq!(a.wait_exit(), 0, "alice's exit code");
}
