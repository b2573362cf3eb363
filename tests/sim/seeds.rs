//! Running a scenario over many seeds, and replaying one.

/// Runs `check` for each seed, reporting every failing seed with the command that replays
/// it. `SIM_SEED=n` runs only seed `n`; `SIM_SEEDS=k` runs `k` seeds instead of `default`.
pub fn for_seeds(test: &str, default: u64, check: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default);
            (0..n).collect()
        }
    };
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(why) = check(seed) {
            failures.push(format!(
                "seed {seed}: {why}\n  replay: SIM_SEED={seed} cargo test --test {} {test} -- --nocapture",
                module_path!().split("::").next().unwrap_or("sim")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
