//! Watching who leads while a scenario runs: every term's sequencing leaders, so that a
//! scenario can check one leader per term; and the environment knobs scenarios read.

#![allow(dead_code)]

use super::Sim;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The live nodes that sequenced as leader of each term: (id, host name).
pub type Seen = BTreeMap<u64, BTreeSet<(u64, String)>>;

/// A scenario knob: the environment variable `k` as a number, else `d`.
pub fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

/// Notes the live nodes that sequence as leader of the term they follow.
pub fn watch(sim: &Sim, seen: &mut Seen) {
    for i in sim.live() {
        let node = sim.node(i);
        if let Some(e) = node.epoch()
            && e.leader == node.id()
            && node.is_sequencing()
        {
            seen.entry(e.term)
                .or_default()
                .insert((node.id().0, sim.hosts[i].name.clone()));
        }
    }
}

/// Runs `d` in 10 ms steps, watching the leaders.
pub fn run_watching(sim: &mut Sim, d: Duration, seen: &mut Seen) {
    let end = sim.elapsed() + d;
    while sim.elapsed() < end {
        watch(sim, seen);
        sim.run_for(Duration::from_millis(10));
    }
}

/// At most one sequencing leader per term.
pub fn one_leader_per_term(seen: &Seen) -> Result<(), String> {
    for (t, ls) in seen {
        if ls.len() > 1 {
            return Err(format!(
                "term {t} has {} sequencing leaders: {ls:?}",
                ls.len()
            ));
        }
    }
    Ok(())
}
