//! A leader lost in a burst longer than one take-over answer carries: crashed (and
//! perhaps started again on its disk), paused, cut off alone or with one member that
//! types on; or lost, and its successor lost too while it takes over.

use super::NAMES;
use crate::sim::{Link, Sim, for_listed_sims, for_sims};
use rand::Rng;
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
    let (_, leader, others) = burst_in_a_voting_room(sim, &mut rng)?;
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
    second_burst_then_check(sim, &mut rng)
}

/// A room of 3 to 5 voters ([`voting_room`]) and a burst of 600 to 2 500 lines piped
/// into one member, run for 0 to 80 ms. Half the time one other member hears none of
/// the burst from the leader: it may win the election holding far fewer proposals than
/// the others (an election ranks by what a node showed, then by id); the cut is left
/// for the caller to heal. Returns the room's size, its leader and the other members.
fn burst_in_a_voting_room(
    sim: &mut Sim,
    rng: &mut StdRng,
) -> Result<(usize, usize, Vec<usize>), String> {
    let n = rng.random_range(3..=5);
    voting_room(sim, rng, n)?;
    let leader = sim.leader().ok_or("no leader after forming the room")?;
    let live = sim.live();
    let sender = live[rng.random_range(0..live.len())];
    let others: Vec<usize> = live.iter().copied().filter(|&i| i != leader).collect();
    if rng.random_bool(0.5) {
        sim.cut(leader, others[rng.random_range(0..others.len())]);
    }
    let count = rng.random_range(600..2500);
    sim.send_all_at_once(sender, (0..count).map(|k| format!("b{k}")));
    sim.run_for(Duration::from_millis(rng.random_range(0..80)));
    Ok((n, leader, others))
}

/// A second burst, of 100 to 1 500 lines from a live member, 40 s to settle, and the
/// whole history checked: converged, one order, every committed message at every live
/// member.
fn second_burst_then_check(sim: &mut Sim, rng: &mut StdRng) -> Result<(), String> {
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

/// A room of `n` on a LAN losing 0 to 5% (a database half the time), formed with every
/// member a voter: else losing the leader may leave a minority of the voters, and the
/// room rightly waits.
fn voting_room(sim: &mut Sim, rng: &mut StdRng, n: usize) -> Result<(), String> {
    sim.default_link = Link::lan([0, 0, 2, 5][rng.random_range(0..4)]);
    sim.persist = rng.random_bool(0.5);
    sim.form_room(rng, &NAMES[..n])?;
    let all_vote = |sim: &Sim| sim.live().iter().all(|&i| sim.node(i).voters().len() == n);
    if !sim.run_until(Duration::from_secs(10), all_vote) {
        return Err("the members were not all voters within 10 s".into());
    }
    Ok(())
}

/// The live host other than `not` that leads the newest term, by its own word: elected,
/// perhaps still taking over (gathering answers, fetching), perhaps sequencing.
fn newest_leader(sim: &Sim, not: usize) -> Option<usize> {
    sim.live()
        .into_iter()
        .filter(|&i| i != not)
        .filter_map(|i| {
            let node = sim.node(i);
            let epoch = node.epoch().filter(|e| e.leader == node.id())?;
            Some((epoch.term, i))
        })
        .max()
        .map(|(_, i)| i)
}

/// Whether a live host other than `not` leads a term and is still taking over.
fn taking_over(sim: &Sim, not: usize) -> bool {
    newest_leader(sim, not).is_some_and(|i| !sim.node(i).is_sequencing())
}

/// Loses host `i` for 1.5 to 6 s: paused, or cut off from everyone (until the next heal);
/// with `may_crash`, perhaps crashed instead (started again on its disk after that time
/// when it has one). Whether it crashed for good.
fn lose(sim: &mut Sim, rng: &mut impl Rng, i: usize, may_crash: bool) -> bool {
    let away = Duration::from_millis(rng.random_range(1500..6000));
    match rng.random_range(0..3) {
        0 if may_crash => {
            sim.crash(i);
            if !sim.persist {
                return true;
            }
            sim.run_for(away);
            sim.restart_from_disk(i);
        }
        1 => sim.pause(i, away),
        _ => sim.isolate(i),
    }
    false
}

/// A burst longer than one take-over answer carries, the leader lost while it is being
/// committed (as in [`leader_lost_in_a_burst`]), and the leader elected next lost too:
/// half the time within 100 ms of its election (while it gathers the survivors' answers,
/// fetches what they showed or asks for the rest of a cut answer), else 0.2 to 2.5 s
/// after the first loss. At most
/// one of the two crashes for good, and the second only in a room of 4 or 5: a majority
/// of the voters is always left once the lost come back.
/// Everyone comes back (but a crashed leader without a disk), a second burst follows.
fn two_leaders_lost_in_a_burst(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xB026);
    let (n, first, _) = burst_in_a_voting_room(sim, &mut rng)?;
    sim.heal();
    let crashed = lose(sim, &mut rng, first, true);
    if rng.random_bool(0.5) {
        // Within 100 ms of the new leader's election, while it takes over.
        sim.run_until(Duration::from_secs(5), |sim| taking_over(sim, first));
        sim.run_for(Duration::from_millis(rng.random_range(0..100)));
    } else {
        sim.run_for(Duration::from_millis(rng.random_range(200..2500)));
    }
    if let Some(second) = newest_leader(sim, first) {
        // The room may have removed the first from its voters meanwhile: in a room of
        // three, the two left are then both needed.
        lose(sim, &mut rng, second, !crashed && n >= 4);
    }
    sim.run_for(Duration::from_millis(rng.random_range(1500..6000)));
    sim.heal();
    second_burst_then_check(sim, &mut rng)
}

#[test]
fn two_leaders_lost_in_a_long_burst_lose_nothing_committed() {
    for_sims(
        "two_leaders_lost_in_a_long_burst_lose_nothing_committed",
        40,
        two_leaders_lost_in_a_burst,
    );
}

#[test]
fn a_leader_lost_in_a_long_burst_loses_nothing_committed() {
    for_sims(
        "a_leader_lost_in_a_long_burst_loses_nothing_committed",
        40,
        leader_lost_in_a_burst,
    );
}

/// Seeds that once failed: 1463 (a run shown only in part, its seal only held: the rest
/// of a cut answer now covers what its member showed).
#[test]
fn a_leader_lost_in_a_long_burst_seeds_that_failed() {
    for_listed_sims(&[1463], leader_lost_in_a_burst);
}

/// Seeds that once failed: 663, 1434, 1726, 2380 (committed numbers skipped while their
/// committer was away), 723, 2897 (a rest asked for and refused, never asked again),
/// 1522, 2591 (a run closed by a message shown from a take-over, never proven).
#[test]
fn two_leaders_lost_in_a_long_burst_seeds_that_failed() {
    for_listed_sims(
        &[663, 723, 1434, 1522, 1726, 2380, 2591, 2897],
        two_leaders_lost_in_a_burst,
    );
}
