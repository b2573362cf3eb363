//! Runs the `room_burst` harness on random inputs without libFuzzer (on the stable
//! toolchain): `cargo run --release --example room_burst_loop -- [RUNS] [SEED]` from
//! `fuzz/`. Prints how many inputs ran and how fast; a failing input is written to
//! `room_burst-crash-<seed>-<n>` and the run stops with it.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1) | 1;
    let mut state = seed;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let started = Instant::now();
    for n in 0..runs {
        let len = (next() % 600) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let ok = std::panic::catch_unwind(|| ringchat_fuzz::run_room_burst(&input)).is_ok();
        if !ok {
            let file = format!("room_burst-crash-{seed}-{n}");
            std::fs::write(&file, &input).expect("write the failing input");
            eprintln!("input {n} failed; written to {file}");
            std::process::exit(1);
        }
        if (n + 1) % 10_000 == 0 {
            let s = started.elapsed().as_secs_f64();
            eprintln!("{} inputs, {:.0}/s", n + 1, (n + 1) as f64 / s);
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "{runs} inputs in {s:.1} s ({:.0}/s), seed {seed}, no failure",
        runs as f64 / s
    );
}
