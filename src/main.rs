//! The `ringchat` binary: parse flags, set up logging, run the program.

use clap::Parser;
use ringchat::cli::{Args, Terminals, Tool};
use ringchat::driver::{self, Security};
use ringchat::program;
use ringchat::{guard, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    let (mode, note) = args.mode(Terminals::of_process());
    if let Some(note) = note {
        eprintln!("{note}");
    }
    if let Some(Tool::Keygen { room }) = &args.command {
        return match guard::write_new_key(room) {
            Ok(()) => {
                println!("wrote a new room key to {}", room.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write a room key to {}: {e}", room.display());
                ExitCode::FAILURE
            }
        };
    }
    let room_key = match &args.room_key_file {
        None => None,
        Some(path) => match guard::read_key(path) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: cannot read the room key {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
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
    let security = Security {
        room_key,
        per_source_per_second: args.rate_limit,
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
        let store = match args.data_dir(local.port()) {
            None => None,
            Some(dir) => {
                let public = ed25519_dalek::SigningKey::from_bytes(&identity)
                    .verifying_key()
                    .to_bytes();
                match ringchat::store::Store::open(&dir, &public) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let mut cfg = args.node_config(local, join);
        cfg.identity = identity;
        let settings = program::Settings {
            mode,
            editor_history: args.editor_history(),
        };
        program::run(cfg, socket, security, store, settings).await
    });
    // The stdin reader may still be blocked in a read; do not wait for it.
    rt.shutdown_background();
    code
}
