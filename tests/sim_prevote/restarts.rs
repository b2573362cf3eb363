//! Small rooms with disks whose leader (and more) crash and restart one after another:
//! the room must come back to one leader, and chat must go through.

use super::NAMES;
use crate::sim::leaders::{env_u64, one_leader_per_term, run_watching};
use crate::sim::{Sim, for_sims};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// Rooms of 2 or 3 with disks: K members (the leader among them when LEADER=1, default)
/// crash, wait, and restart from disk one after another. The room must come back to one
/// leader and chat must go through.
fn small_room_restarts(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x2002);
    sim.persist = true;
    let n = env_u64("N", 2) as usize;
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(rng.random_range(1..6)));
    for k in 0..5 {
        let from = rng.random_range(0..n);
        sim.send_all(from, format!("before{k}"));
        sim.run_for(Duration::from_millis(rng.random_range(10..200)));
    }
    let leader = sim.leader().ok_or("no leader")?;
    let k = (env_u64("K", 1) as usize).min(n);
    let mut victims = vec![];
    if env_u64("LEADER", 1) == 1 {
        victims.push(leader);
    }
    while victims.len() < k {
        let v = rng.random_range(0..n);
        if !victims.contains(&v) {
            victims.push(v);
        }
    }
    for &v in &victims {
        sim.crash(v);
        sim.run_for(Duration::from_millis(rng.random_range(0..1500)));
    }
    sim.run_for(Duration::from_millis(rng.random_range(0..5000)));
    let mut seen = Default::default();
    let fresh = env_u64("FRESH", 0) == 1;
    for &v in &victims {
        // FRESH=1: a new process without its disk, joining through a member that is up.
        let up: Vec<usize> = (0..n).filter(|&i| sim.is_up(i)).collect();
        if fresh && !up.is_empty() {
            sim.restart(v, up[rng.random_range(0..up.len())]);
        } else {
            sim.restart_from_disk(v);
        }
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(0..2000)),
            &mut seen,
        );
    }
    run_watching(sim, Duration::from_secs(20), &mut seen);
    if env_u64("SAFETY_ONLY", 0) == 1 && env_u64("NO_TERM_CHECK", 0) == 0 {
        one_leader_per_term(&seen)?;
    }
    let ok = sim.run_until(Duration::from_secs(20), |s| {
        s.live().len() == n && s.check_converged().is_ok()
    });
    if env_u64("SAFETY_ONLY", 0) == 1 {
        return sim.check_no_fork();
    }
    if !ok {
        return Err(format!(
            "no one leader after the restarts: {:?} live {:?}",
            sim.check_converged(),
            sim.live()
        ));
    }
    for j in 0..5 {
        let from = rng.random_range(0..n);
        sim.send_all(from, format!("after{j}"));
        sim.run_for(Duration::from_millis(rng.random_range(10..200)));
    }
    sim.run_for(Duration::from_secs(10));
    sim.check_all_showed(n, "after", 5, "messages after the restarts")?;
    sim.check_no_fork()
}

#[test]
fn small_room_restarts_from_disk() {
    for_sims("small_room_restarts_from_disk", 40, small_room_restarts);
}
