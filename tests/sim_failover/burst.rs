//! A leader lost in a burst longer than one take-over answer carries: crashed (and
//! perhaps started again on its disk), paused, cut off alone or with one member that
//! types on.

use super::NAMES;
use crate::sim::{Link, Sim, for_sims};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// A burst longer than one take-over answer carries (`SYNC_BATCH`, 512 room messages)
/// piped into one member, and the leader is lost while it is being committed: it
/// crashes (with a database, half the time, and then perhaps starts again on it later),
/// pauses (as `SIGSTOP` or a closed laptop) or is cut off from everyone, for
/// long enough that the others elect a new one, or with one other member that types on
/// meanwhile (in a room of 5 they are a minority, in one of 4 neither side is a majority,
/// in one of 3 they are the majority and the third is cut off). Survivors may hold
/// hundreds of proposals the leader committed, and showed, before telling them, and the
/// new leader far fewer. A second burst from another member follows.
fn leader_lost_in_a_burst(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xB025);
    let n = rng.random_range(3..=5);
    sim.default_link = Link::lan([0, 0, 2, 5][rng.random_range(0..4)]);
    sim.persist = rng.random_bool(0.5);
    sim.form_room(&mut rng, &NAMES[..n])?;
    // Every member votes (else losing the leader may leave a minority of the voters,
    // and the room rightly waits).
    let all_vote = |sim: &Sim| sim.live().iter().all(|&i| sim.node(i).voters().len() == n);
    if !sim.run_until(Duration::from_secs(10), all_vote) {
        return Err("the members were not all voters within 10 s".into());
    }
    let leader = sim.leader().ok_or("no leader after forming the room")?;
    let live = sim.live();
    let sender = live[rng.random_range(0..live.len())];
    // Half the time one other member hears none of the burst from the leader: it may
    // win the election holding far fewer proposals than the others (an election ranks
    // by what a node showed, then by id).
    let others: Vec<usize> = live.iter().copied().filter(|&i| i != leader).collect();
    if rng.random_bool(0.5) {
        sim.cut(leader, others[rng.random_range(0..others.len())]);
    }
    let count = rng.random_range(600..2500);
    sim.send_all_at_once(sender, (0..count).map(|k| format!("b{k}")));
    sim.run_for(Duration::from_millis(rng.random_range(0..80)));
    let away = Duration::from_millis(rng.random_range(1500..6000));
    match rng.random_range(0..5) {
        0 => {
            sim.crash(leader);
            sim.heal();
        }
        4 if sim.persist => {
            // Crashed, and started again on its own disk once the others moved on.
            sim.crash(leader);
            sim.heal();
            sim.run_for(away);
            sim.restart_from_disk(leader);
        }
        1 => {
            sim.heal();
            sim.pause(leader, away);
            sim.run_for(away);
        }
        2 | 4 => {
            sim.heal();
            sim.isolate(leader);
            sim.run_for(away);
            sim.heal();
        }
        _ => {
            // Cut off with one other member, which types meanwhile: a minority whose
            // messages wait (nothing commits there) and go through once it heals.
            sim.heal();
            let buddy = others[rng.random_range(0..others.len())];
            let rest: Vec<usize> = others.iter().copied().filter(|&i| i != buddy).collect();
            sim.partition(&[leader, buddy], &rest);
            let typed = (0..rng.random_range(50..800)).map(|k| format!("p{k}"));
            sim.send_all_at_once(buddy, typed);
            sim.run_for(away);
            sim.heal();
        }
    }
    let live = sim.live();
    let second = live[rng.random_range(0..live.len())];
    sim.send_all_at_once(
        second,
        (0..rng.random_range(100..1500)).map(|k| format!("c{k}")),
    );
    sim.run_for(Duration::from_secs(40));
    sim.check_converged()?;
    sim.check_order()?;
    sim.check_committed_everywhere()
}

#[test]
fn a_leader_lost_in_a_long_burst_loses_nothing_committed() {
    for_sims(
        "a_leader_lost_in_a_long_burst_loses_nothing_committed",
        40,
        leader_lost_in_a_burst,
    );
}
