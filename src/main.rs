//! The `ringchat` binary: parse flags, set up logging, run the driver.

use clap::Parser;
use ringchat::cli::Args;
use ringchat::{driver, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
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
        let socket = match driver::bind(args.addr, args.port).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}:{}: {e}", args.addr, args.port);
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
        let _log = match logging::init(&args.log_dir, local.port(), args.verbose) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!(
                    "error: cannot open the log in {}: {e}",
                    args.log_dir.display()
                );
                return ExitCode::FAILURE;
            }
        };
        driver::run(args.node_config(local, join), socket).await
    });
    // The stdin reader may still be blocked in a read; do not wait for it.
    rt.shutdown_background();
    code
}
