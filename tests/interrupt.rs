//! Ctrl-C with a stdout nobody reads: the first leaves in good order (as far as it can),
//! the second exits at once (code 130), even though every write to stdout blocks.

mod common;

use common::{BIN, Scratch};
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn interrupt(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "SIGINT sent");
}

/// Ctrl-C twice while the node runs, its leave under way.
#[test]
fn a_second_ctrl_c_exits_even_with_stdout_blocked() {
    second_ctrl_c_exits(false);
}

/// Ctrl-C twice after the node left (its stdin ended), while the program only waits for
/// its last lines to get out. Before, it waited for them on the thread that also had to
/// take the signal, and hung for good (so did the test above, in about one run of ten,
/// when the leave was over before the second Ctrl-C).
#[test]
fn a_second_ctrl_c_exits_after_the_leave_with_stdout_blocked() {
    second_ctrl_c_exits(true);
}

fn second_ctrl_c_exits(end_stdin: bool) {
    let scratch = Scratch::new();
    let mut child = Command::new(BIN)
        .args([
            "--name",
            "solo",
            "--port",
            "0",
            "--local-key",
            "--ephemeral",
        ])
        .arg("--log-dir")
        .arg(scratch.path())
        .env("XDG_DATA_HOME", scratch.path())
        .env("RINGCHAT_IDENTITY", scratch.path().join("solo.identity"))
        .env_remove("RINGCHAT_ROOM_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    // Stdout is never read: far more than a pipe holds (64 KiB) is shown.
    let _stdout = child.stdout.take();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let filler = "x".repeat(200);
    let writer = thread::spawn(move || {
        for k in 0..2000 {
            if writeln!(stdin, "send_all m{k} {filler}").is_err() {
                break;
            }
        }
        // Stdin stays open unless asked (its end makes the node leave): handed back.
        (!end_stdin).then_some(stdin)
    });
    // Long enough for the room to show what fills the pipe.
    thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "still running with its stdout full"
    );
    interrupt(child.id());
    thread::sleep(Duration::from_millis(500));
    interrupt(child.id());
    let started = Instant::now();
    let limit = Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {limit:?} after the second Ctrl-C");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status}");
    drop(writer);
}
