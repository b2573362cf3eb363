//! The real binary under a pseudo-terminal: the line editor keeps what is being typed
//! intact while messages arrive, completes names after `send`, and leaves on `exit`.

mod common;

use common::{Proc, Scratch};
use expectrl::{Expect, Regex, Session};
use std::process::Command;
use std::time::Duration;

#[test]
fn typing_survives_incoming_messages() {
    let scratch = Scratch::new();
    let id = |who: &str| scratch.path().join(format!("{who}.identity"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringchat"));
    cmd.args(["--name", "alice", "--port", "0", "--log-dir"])
        .arg(scratch.path())
        .arg("--identity")
        .arg(id("alice"))
        .env("NO_COLOR", "1")
        // The line editor keeps its history under the data directory: keep it in scratch.
        .env("XDG_DATA_HOME", scratch.path());
    let mut a = Session::spawn(cmd).expect("spawn under a pty");
    a.set_expect_timeout(Some(Duration::from_secs(15)));
    let found = a
        .expect(Regex(r"listening on 127\.0\.0\.1:(\d+)"))
        .expect("the listening line");
    let port: u16 = String::from_utf8_lossy(found.get(1).expect("a port"))
        .parse()
        .expect("a port number");
    a.expect(format!("alice@127.0.0.1:{port}> "))
        .expect("the prompt names who and where");

    let mut b = Proc::start_with(
        &scratch,
        "bob",
        Some(port),
        &["--identity", id("bob").to_str().expect("utf-8 path")],
    );
    b.expect(|l| l.starts_with("joined the room"), "bob's join");
    a.expect("bob is online").expect("bob online at alice");

    // Half a line typed, then a message arrives: it is printed above, and the half line
    // is still there to finish.
    a.send("send_all hello wor").expect("type");
    b.send("incoming while alice types");
    a.expect("bob: incoming while alice types")
        .expect("the incoming line shows");
    a.expect("hello wor")
        .expect("the typed text is drawn again");
    a.send("ld\r").expect("finish the line");
    b.expect(
        |l| l.ends_with("alice: hello world"),
        "alice's line, intact",
    );

    // Tab completes a member name after `send`.
    a.send("send b\t").expect("type and complete");
    a.send(" psst\r").expect("finish");
    b.expect(
        |l| l.contains(" private") && l.ends_with("alice: psst"),
        "the private message to the completed name",
    );

    a.send("exit\r").expect("exit");
    a.expect("left the room").expect("a graceful leave");
    b.expect_line("alice is offline");
}
