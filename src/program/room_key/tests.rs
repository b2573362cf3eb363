//! What [`super::choose`] and [`super::settle`] decide, with key files in a scratch
//! directory.

use super::*;
use crate::guard;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("ringchat-room-key-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777 == 0o600
}

fn key_of(access: &Access) -> [u8; KEY_BYTES] {
    access.key().expect("keyed")
}

#[test]
fn a_creator_makes_a_key_in_its_data_directory_and_uses_it_again() {
    let d = Dir::new("creator");
    let src = KeySources::default();
    let choice = choose(&src, Some(&d.0)).unwrap();
    assert_eq!(choice, Choice::DataDir);
    let first = settle(choice, &src, Some(&d.0)).unwrap();
    let path = d.0.join(DATA_DIR_KEY);
    assert_eq!(
        first,
        Access::Keyed {
            key: key_of(&first),
            origin: KeyOrigin::Made(Some(path.clone()))
        }
    );
    assert!(private(&path));
    assert!(first.note().unwrap().contains("room.key"));
    let again = settle(choose(&src, Some(&d.0)).unwrap(), &src, Some(&d.0)).unwrap();
    assert_eq!(
        key_of(&again),
        key_of(&first),
        "a restart uses the same key"
    );
    assert!(matches!(
        again,
        Access::Keyed {
            origin: KeyOrigin::Kept(_),
            ..
        }
    ));
    assert_eq!(again.note(), None);
}

#[test]
fn an_ephemeral_creator_keeps_its_key_in_memory() {
    let src = KeySources::default();
    let access = settle(choose(&src, None).unwrap(), &src, None).unwrap();
    assert!(matches!(
        access,
        Access::Keyed {
            origin: KeyOrigin::Made(None),
            ..
        }
    ));
    assert!(access.note().unwrap().contains("this run only"));
}

#[test]
fn a_joiner_with_an_address_only_is_refused_with_how_to_get_in() {
    let d = Dir::new("joiner");
    let src = KeySources {
        contact: Some("127.0.0.1:5001"),
        ..KeySources::default()
    };
    for dir in [None, Some(d.0.as_path())] {
        let err = choose(&src, dir).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), 2);
        for needle in [
            "127.0.0.1:5001",
            "keyed",
            "invite",
            "--join <invitation>",
            "--insecure",
        ] {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
    }
    // Not decided early (the port was 0): refused once the directory is known.
    let err = settle(Choice::DataDir, &src, Some(&d.0)).unwrap_err();
    assert!(matches!(err, KeyProblem::NoKey(_)), "{err}");
    // A joiner whose data directory keeps a key (a restart) uses it.
    let (kept, _) = read_or_make(&d.0.join(DATA_DIR_KEY)).unwrap();
    let access = settle(choose(&src, Some(&d.0)).unwrap(), &src, Some(&d.0)).unwrap();
    assert_eq!(key_of(&access), kept);
}

#[test]
fn an_invitation_is_kept_for_a_restart_and_replaces_an_older_key() {
    let d = Dir::new("invited");
    let path = d.0.join(DATA_DIR_KEY);
    let (old, _) = read_or_make(&path).unwrap();
    let invitation = Invitation {
        contact: "127.0.0.1:5001".into(),
        key: [9; KEY_BYTES],
        once: false,
    };
    let src = KeySources {
        invitation: Some(&invitation),
        ..KeySources::default()
    };
    let access = settle(choose(&src, Some(&d.0)).unwrap(), &src, Some(&d.0)).unwrap();
    assert_ne!(old, [9; KEY_BYTES]);
    assert_eq!(key_of(&access), [9; KEY_BYTES]);
    assert_eq!(guard::read_key(&path).unwrap(), [9; KEY_BYTES]);
    assert!(private(&path));
    // With --ephemeral nothing is written.
    let e = Dir::new("invited-ephemeral");
    let access = settle(choose(&src, None).unwrap(), &src, None).unwrap();
    assert_eq!(key_of(&access), [9; KEY_BYTES]);
    assert_eq!(std::fs::read_dir(&e.0).unwrap().count(), 0);
}

#[test]
fn insecure_and_a_key_contradict_each_other() {
    let d = Dir::new("contradict");
    let file = d.0.join("room.key");
    read_or_make(&file).unwrap();
    let invitation = Invitation {
        contact: "127.0.0.1:5001".into(),
        key: [1; KEY_BYTES],
        once: false,
    };
    let open = KeySources {
        insecure: true,
        local_key: Some(&file),
        ..KeySources::default()
    };
    assert_eq!(
        choose(&open, None).unwrap(),
        Choice::Open,
        "the local key yields"
    );
    for src in [
        KeySources {
            room_key_file: Some(&file),
            ..open
        },
        KeySources {
            invitation: Some(&invitation),
            ..open
        },
    ] {
        let err = choose(&src, None).unwrap_err();
        assert!(matches!(err, KeyProblem::Contradiction(_)), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
    let two = KeySources {
        invitation: Some(&invitation),
        room_key_file: Some(&file),
        ..KeySources::default()
    };
    assert!(matches!(choose(&two, None), Err(KeyProblem::TwoKeys(_))));
}

#[test]
fn given_keys_win_over_the_local_and_the_kept_one() {
    let d = Dir::new("order");
    let local = d.0.join("local-room.key");
    let file = d.0.join("given.key");
    let data = d.0.join("node");
    std::fs::create_dir_all(&data).unwrap();
    let (kept, _) = read_or_make(&data.join(DATA_DIR_KEY)).unwrap();
    let src = KeySources {
        local_key: Some(&local),
        ..KeySources::default()
    };
    let shared = settle(choose(&src, Some(&data)).unwrap(), &src, Some(&data)).unwrap();
    assert!(private(&local), "the local key is made on first use");
    assert!(shared.note().unwrap().contains("./s1"));
    assert_ne!(
        key_of(&shared),
        kept,
        "the local key wins over the kept one"
    );
    let again = settle(choose(&src, Some(&data)).unwrap(), &src, Some(&data)).unwrap();
    assert_eq!(key_of(&again), key_of(&shared));
    assert_eq!(again.note(), None);
    // A creator's --room-key-file is made when missing; a joiner's must exist.
    let with_file = KeySources {
        room_key_file: Some(&file),
        ..src
    };
    let joining = KeySources {
        contact: Some("127.0.0.1:5001"),
        ..with_file
    };
    assert!(matches!(
        choose(&joining, None),
        Err(KeyProblem::Read { .. })
    ));
    let made = settle(choose(&with_file, None).unwrap(), &with_file, None).unwrap();
    assert!(made.note().unwrap().contains("given.key"));
    let joined = settle(choose(&joining, None).unwrap(), &joining, None).unwrap();
    assert_eq!(key_of(&joined), key_of(&made));
    assert_ne!(key_of(&joined), key_of(&shared));
}

#[test]
fn a_damaged_key_file_is_an_error_not_a_new_key() {
    let d = Dir::new("damaged");
    std::fs::write(d.0.join(DATA_DIR_KEY), "not a key").unwrap();
    let src = KeySources::default();
    let err = settle(choose(&src, Some(&d.0)).unwrap(), &src, Some(&d.0)).unwrap_err();
    assert!(matches!(err, KeyProblem::Read { .. }), "{err}");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("64 hex digits"), "{err}");
}

#[test]
fn many_processes_making_the_local_key_at_once_agree_on_one() {
    let d = Dir::new("race");
    let path = d.0.join("sub").join(LOCAL_KEY);
    let keys: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| read_or_make(&path).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(keys.iter().filter(|(_, made)| *made).count(), 1);
    assert!(keys.iter().all(|(k, _)| *k == keys[0].0));
}

#[test]
fn a_one_time_invitation_is_kept_instead_of_a_room_key_and_found_on_a_restart() {
    let d = Dir::new("invited-once");
    let stale = d.0.join(DATA_DIR_KEY);
    read_or_make(&stale).unwrap();
    let invitation = Invitation {
        contact: "127.0.0.1:5001".into(),
        key: [4; KEY_BYTES],
        once: true,
    };
    let src = KeySources {
        invitation: Some(&invitation),
        ..KeySources::default()
    };
    let access = settle(choose(&src, Some(&d.0)).unwrap(), &src, Some(&d.0)).unwrap();
    assert_eq!(access.key(), None, "no room key");
    assert_eq!(access.invitation(), Some([4; KEY_BYTES]));
    assert!(access.is_keyed());
    let kept = d.0.join(DATA_DIR_INVITATION);
    assert_eq!(guard::read_key(&kept).unwrap(), [4; KEY_BYTES]);
    assert!(private(&kept));
    assert!(!stale.exists(), "another room's key is not kept beside it");
    // Started again with an address alone: the kept invitation, still no room key.
    let again = KeySources {
        contact: Some("127.0.0.1:5001"),
        ..KeySources::default()
    };
    let access = settle(choose(&again, Some(&d.0)).unwrap(), &again, Some(&d.0)).unwrap();
    assert_eq!(access.invitation(), Some([4; KEY_BYTES]));
    assert_eq!(access.key(), None);
    // With a room key file as well: a contradiction, said as such.
    let file = d.0.join("other.key");
    read_or_make(&file).unwrap();
    let both = KeySources {
        invitation: Some(&invitation),
        room_key_file: Some(&file),
        ..KeySources::default()
    };
    assert!(matches!(
        choose(&both, Some(&d.0)),
        Err(KeyProblem::InvitationAndKey(_))
    ));
}
