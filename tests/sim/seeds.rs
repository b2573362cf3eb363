//! Running a scenario over many seeds, and replaying one.

use super::Sim;

/// Runs `check` for each seed, reporting every failing seed with the command that replays
/// it. `SIM_SEED=n` runs only seed `n`; `SIM_SEEDS=k` runs `k` seeds instead of `default`,
/// `SIM_SEEDS=a..b` seeds `a` to `b - 1`.
pub fn for_seeds(test: &str, default: u64, check: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let seeds = std::env::var("SIM_SEEDS").ok();
            // `SIM_SEEDS=a..b` runs seeds a to b-1 (a sweep split into parts).
            if let Some((from, to)) = seeds.as_deref().and_then(|s| s.split_once("..")) {
                let from: u64 = from.parse().expect("SIM_SEEDS=a..b: a is a number");
                let to: u64 = to.parse().expect("SIM_SEEDS=a..b: b is a number");
                (from..to).collect()
            } else {
                let n = seeds.and_then(|s| s.parse().ok()).unwrap_or(default);
                (0..n).collect()
            }
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

/// Runs `scenario` in a fresh [`Sim`] of `seed`. When it fails while that one seed is
/// replayed (`SIM_SEED=n`), prints every host's events.
pub fn replay_on_failure(
    seed: u64,
    scenario: impl FnOnce(&mut Sim) -> Result<(), String>,
) -> Result<(), String> {
    let mut sim = Sim::new(seed);
    let r = scenario(&mut sim);
    if r.is_err() && std::env::var("SIM_SEED").is_ok() {
        sim.dump();
    }
    r
}

/// [`for_seeds`] of [`replay_on_failure`]: `scenario` gets a fresh simulation of each seed,
/// and the seed.
pub fn for_sims(test: &str, default: u64, scenario: impl Fn(&mut Sim, u64) -> Result<(), String>) {
    for_seeds(test, default, |seed| {
        replay_on_failure(seed, |sim| scenario(sim, seed))
    });
}

/// [`for_sims`] over the given seeds only (seeds that once failed, kept as regressions).
pub fn for_listed_sims(seeds: &[u64], scenario: impl Fn(&mut Sim, u64) -> Result<(), String>) {
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| {
            replay_on_failure(seed, |sim| scenario(sim, seed))
                .err()
                .map(|why| format!("seed {seed}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
