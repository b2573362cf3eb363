//! The `ringchat` binary: parse flags, set up logging, run the program.

use clap::Parser;
use ringchat::cli::{Args, Terminals, Tool};
use ringchat::driver::{self, Security};
use ringchat::program::invitation::Invitation;
use ringchat::program::room_key::{self, KeyProblem};
use ringchat::{guard, logging, program};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: the node allocates and frees many small buffers per message, often freeing on
/// another thread than allocated them (the database and output threads); glibc's arenas
/// serialise that on a lock. Built without transparent huge pages (`no_thp`), which made
/// an idle node's resident memory 8 MiB larger.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let (mode, note) = args.mode(Terminals::of_process());
    if let Some(note) = note {
        eprintln!("{note}");
    }
    match &args.command {
        Some(Tool::Keygen { room }) => return keygen(room),
        Some(Tool::Invite {
            at,
            room,
            local_key,
        }) => return invite(at, room.as_deref(), *local_key),
        None => {}
    }
    let local_key = room_key::local_key_path();
    let sources = args.key_sources(&local_key);
    // Decided before anything is bound or written: a node that cannot have a key fails
    // at once. The data directory is known unless it depends on a port not picked yet
    // (then it is a new one, with no key in it).
    let port = args.port.unwrap_or(0);
    let known_dir = (port != 0 || args.data_dir.is_some())
        .then(|| args.data_dir(port))
        .flatten();
    let choice = match room_key::choose(&sources, known_dir.as_deref()) {
        Ok(choice) => choice,
        Err(e) => return key_problem(&e),
    };
    let identity_path = args
        .identity
        .clone()
        .unwrap_or_else(ringchat::identity::default_path);
    let identity = if args.may_create_identity() || identity_path.exists() {
        ringchat::identity::load_or_create(&identity_path)
    } else {
        // Ephemeral, with no identity file and none asked for: one for this run only.
        Ok(rand::random())
    };
    let identity = match identity {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!(
                "error: cannot use the identity {}: {e}",
                identity_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async {
        let join = match args.resolve_join() {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let port = args.port.unwrap_or(0);
        let socket = match driver::bind(args.addr, port).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}:{port}: {e}", args.addr);
                return ExitCode::FAILURE;
            }
        };
        let local = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let log_dir = args.log_dir();
        let _log = match logging::init(log_dir.as_deref(), local.port(), args.verbose) {
            Ok(guard) => guard,
            Err(e) => {
                let dir = log_dir.unwrap_or_default();
                eprintln!("error: cannot open the log in {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        };
        let data_dir = args.data_dir(local.port());
        let store = match &data_dir {
            None => None,
            Some(dir) => {
                let public = ed25519_dalek::SigningKey::from_bytes(&identity)
                    .verifying_key()
                    .to_bytes();
                match ringchat::store::Store::open(dir, &public) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let access = match room_key::settle(choice, &sources, data_dir.as_deref()) {
            Ok(access) => access,
            Err(e) => return key_problem(&e),
        };
        // The invitations this node mints (`invite`), kept beside its key.
        let invitations = match (access.is_keyed(), &data_dir) {
            (false, _) => None,
            (true, None) => Some(guard::Invitations::in_memory()),
            (true, Some(dir)) => {
                let path = dir.join(guard::invitations::INVITATIONS_FILE);
                match guard::Invitations::kept_in(&path) {
                    Ok(kept) => Some(kept),
                    Err(e) => {
                        eprintln!("error: cannot read the invitations {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let security = Security {
            room_key: access.key(),
            invitation: access.invitation(),
            invitations: invitations.map(std::sync::Arc::new),
            per_source_per_second: args.rate_limit,
        };
        let mut cfg = args.node_config(local, join);
        cfg.identity = identity;
        let settings = program::Settings {
            mode,
            editor_history: args.editor_history(),
            notes: access.note().into_iter().collect(),
        };
        program::run(cfg, socket, security, store, settings).await
    });
    // The stdin reader may still be blocked in a read; do not wait for it.
    rt.shutdown_background();
    code
}

/// `ringchat keygen --room FILE`.
fn keygen(room: &std::path::Path) -> ExitCode {
    match guard::write_new_key(room) {
        Ok(()) => {
            println!("wrote a new room key to {}", room.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write a room key to {}: {e}", room.display());
            ExitCode::FAILURE
        }
    }
}

/// `ringchat invite --at HOST:PORT (--room FILE | --local-key)`: the invitation alone on
/// stdout.
fn invite(at: &str, room: Option<&std::path::Path>, local_key: bool) -> ExitCode {
    let read = match room {
        Some(path) => guard::read_key(path).map_err(|source| KeyProblem::Read {
            path: path.to_path_buf(),
            source,
        }),
        None => {
            debug_assert!(local_key, "clap asks for one of the two");
            let path: PathBuf = room_key::local_key_path();
            room_key::read_or_make(&path).map(|(key, _)| key)
        }
    };
    match read {
        Ok(key) => {
            let contact = at.to_string();
            // A standing invitation: it carries the room key itself.
            let once = false;
            println!("{}", Invitation { contact, key, once });
            ExitCode::SUCCESS
        }
        Err(e) => key_problem(&e),
    }
}

/// Says why the node cannot start with its key, and exits.
fn key_problem(e: &KeyProblem) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
}
