//! What a keyed room keeps across restarts and scripts: a creator started again uses
//! the key it kept, an invited member comes back without one, and the local scripts
//! share one key.

use super::*;

/// A keyed creator started again (same name, port and data directory) uses the key it
/// kept: the member that joined with its invitation finds it again and they talk; that
/// member, which holds no room key, started again with the address alone, comes back as
/// the member it is.
#[test]
fn a_keyed_creator_restarted_keeps_its_key() {
    let scratch = Scratch::new();
    let (a_port, b_port) = (
        common::fixed_port().to_string(),
        common::fixed_port().to_string(),
    );
    let mut alice = start(&scratch, "alice", &["--port", &a_port]);
    alice.expect_line("created a new room; you (alice) are the leader");
    let token = invitation(&mut alice);
    let mut bob = start(&scratch, "bob", &["--port", &b_port, "--join", &token]);
    bob.expect_line("joined the room: 2 members, leader is alice");
    alice.expect_line("bob is online");

    // alice leaves; bob carries the room on.
    leave(&mut alice);
    bob.expect_line("leader is now bob");
    // Her invitation, used by bob, expires (as it would after a day): from now on bob
    // gets in as the member he is, not with it.
    let minted = data_dir(&scratch, "alice", a_port.parse().expect("port")).join("invitations");
    expire_all(&minted);

    // alice again, with nothing but her name and port: she finds bob, with her kept key.
    let mut alice = start(&scratch, "alice", &["--port", &a_port]);
    alice.expect(
        |l| l.starts_with("joined the room: 2 members"),
        "alice's return",
    );
    alice.send("alice is back");
    bob.expect(
        |l| l.ends_with("] alice: alice is back"),
        "alice's message at bob",
    );
    bob.send("welcome back");
    alice.expect(|l| l.ends_with("] bob: welcome back"), "bob's answer");
    alice.send("invite");
    assert_ne!(invitation(&mut alice), token, "a new invitation");

    // bob again, with the address alone: he comes back as a member.
    leave(&mut bob);
    let a_addr = format!("127.0.0.1:{a_port}");
    let mut bob = start(&scratch, "bob", &["--port", &b_port, "--join", &a_addr]);
    bob.expect(
        |l| l.starts_with("joined the room: 2 members"),
        "bob's return",
    );
    bob.send("bob too");
    alice.expect(|l| l.ends_with("] bob: bob too"), "bob's message at alice");

    // Both leave by their own word, alice first; she comes back alone and carries the
    // room on, and bob, whose saved table says she left, still asks her as a member.
    leave(&mut alice);
    bob.expect_line("leader is now bob");
    leave(&mut bob);
    let mut alice = start(&scratch, "alice", &["--port", &a_port]);
    alice.expect(
        |l| l.starts_with("you (alice) lead the room again"),
        "alice carrying the room on",
    );
    let mut bob = start(&scratch, "bob", &["--port", &b_port, "--join", &a_addr]);
    bob.expect(
        |l| l.starts_with("joined the room: 2 members"),
        "bob's return after both left",
    );
    bob.send("both back");
    alice.expect(|l| l.ends_with("] bob: both back"), "bob's message");
    leave(&mut bob);
    leave(&mut alice);
    assert!(
        !alice.stderr_text().contains("made a room key"),
        "no new key on a restart: {:?}",
        alice.stderr_text()
    );
}

/// Makes every invitation in a node's `invitations` file expired (the node must not be
/// running: it reads the file when it starts).
fn expire_all(path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(!text.is_empty(), "alice minted invitations");
    let expired: String = text
        .lines()
        .map(|l| {
            let mut parts: Vec<&str> = l.split(' ').collect();
            parts[1] = "1";
            format!("{}\n", parts.join(" "))
        })
        .collect();
    std::fs::write(path, expired).expect("rewrite the invitations");
}

/// `./s1`, `./s2` and `./s3` as they are, from a copy of the clone whose `./ringchat`
/// runs the binary under test, with HOME in scratch: the first makes the local room key
/// (mode 0600) in HOME's data folder, the others use it, and the three chat in a keyed
/// room; `./s1 invite` prints alice's invitation with that key. Their ports are moved
/// off 5001-5003 by flags that pass through, so that nothing else on the machine is in
/// the way.
#[test]
fn the_scripts_share_the_local_key() {
    let scratch = Scratch::new();
    let clone = scratch.path().join("clone");
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&clone).expect("the clone");
    std::fs::create_dir_all(&home).expect("home");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for script in ["s1", "s2", "s3"] {
        std::fs::copy(root.join(script), clone.join(script)).expect("copy a script");
    }
    let stub = clone.join("ringchat");
    std::fs::write(&stub, format!("#!/bin/sh\nexec '{}' \"$@\"\n", common::BIN)).expect("the stub");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let script = |name: &str, who: &str, extra: &[&str]| -> Proc {
        let mut cmd = Command::new(clone.join(name));
        cmd.args(extra)
            .arg("--log-dir")
            .arg(scratch.path())
            .current_dir(scratch.path())
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("RINGCHAT_ROOM_KEY_FILE")
            .env_remove("RINGCHAT_DATA_DIR")
            .env(
                "RINGCHAT_IDENTITY",
                scratch.path().join(format!("{who}.identity")),
            );
        let mut p = Proc::spawn_command(who, cmd);
        p.read_listening(LOCALHOST);
        p
    };
    let key_file = home.join(".local/share/ringchat/local-room.key");
    let mut alice = script("s1", "alice", &["--port", "0"]);
    alice.expect_line("created a new room; you (alice) are the leader");
    let token = invitation(&mut alice);
    assert_ne!(
        key_of(&token),
        key_in(&key_file),
        "what alice shows is a one-time invitation, not the local key"
    );
    assert_eq!(mode(&key_file), 0o600);
    let a = format!("127.0.0.1:{}", alice.port);
    let mut bob = script("s2", "bob", &["--port", "0", "--join", &a]);
    bob.expect_line("joined the room: 2 members, leader is alice");
    let b = format!("127.0.0.1:{}", bob.port);
    let mut carol = script("s3", "carol", &["--port", "0", "--join", &b]);
    carol.expect_line("joined the room: 3 members, leader is alice");
    carol.send("carol says hi");
    for p in [&mut alice, &mut bob] {
        p.expect(|l| l.ends_with("] carol: carol says hi"), "carol's message");
    }
    bob.send("status");
    bob.expect(|l| l.starts_with("key:     keyed"), "a keyed room");
    for p in [&mut carol, &mut bob, &mut alice] {
        leave(p);
    }
    assert!(
        alice.stderr_text().contains(&format!(
            "made the local room key {} (readable by you only), which ./s1, ./s2 and ./s3 share",
            key_file.display()
        )),
        "{:?}",
        alice.stderr_text()
    );
    for p in [&bob, &carol] {
        assert!(
            !p.stderr_text().contains("made"),
            "{}: {:?}",
            p.label,
            p.stderr_text()
        );
    }

    // `./s1 invite`: a standing invitation, alice's usual address and the local key.
    let out = Command::new(clone.join("s1"))
        .arg("invite")
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("run ./s1 invite");
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    let printed = printed.trim_end();
    assert!(
        printed.starts_with("ringchat1:127.0.0.1:5001/"),
        "{printed}"
    );
    assert_eq!(key_of(printed), key_in(&key_file));
    assert_eq!(
        printed.lines().count(),
        1,
        "the invitation alone: {printed:?}"
    );
}
