//! Elections around a paused watcher of the leader: the watcher paused in a busy room,
//! and the leader crashing during the pause (when the room needs the watcher's yes, and
//! when the others are a majority without it).

use super::{NAMES, elected, elected_but, watcher_of};
use crate::sim::leaders::{Seen, env_u64, one_leader_per_term, run_watching, watch};
use crate::sim::{Sim, for_listed_sims, for_sims};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// The leader's watcher is paused PAUSE_MS (default random 1500..3000) in a busy room; after
/// it resumes, one leader per term, one order, converged, and chat goes through.
fn paused_watcher(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9a05);
    let n = rng.random_range(2..=5);
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(rng.random_range(1..5)));
    let leader = sim.leader().ok_or("no leader")?;
    let w = watcher_of(sim, leader).ok_or("no watcher")?;
    let term0 = sim.node(leader).epoch().map(|e| e.term);
    let d = Duration::from_millis(env_u64("PAUSE_MS", rng.random_range(1500..3000)));
    sim.pause(w, d);
    let mut seen = Seen::new();
    let start = sim.elapsed();
    let mut k = 0;
    while sim.elapsed() < start + d + Duration::from_secs(3) {
        k += 1;
        let from = rng.random_range(0..n);
        if from != w || !sim.is_paused(w) {
            sim.send_all(from, format!("p{k}"));
        }
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(30..150)),
            &mut seen,
        );
    }
    let settled = sim.run_until(Duration::from_secs(20), |s| {
        s.live().len() == n && elected(s)
    });
    for j in 0..5 {
        sim.send_all(rng.random_range(0..n), format!("after{j}"));
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(50..200)),
            &mut seen,
        );
    }
    run_watching(sim, Duration::from_secs(10), &mut seen);
    let term1 = sim
        .leader()
        .and_then(|l| sim.node(l).epoch())
        .map(|e| e.term);
    println!(
        "PAUSEW seed={seed} n={n} pause={d:?} term0={term0:?} term1={term1:?} settled={settled}"
    );
    one_leader_per_term(&seen)?;
    sim.check_no_fork()?;
    sim.check_converged()?;
    sim.check_all_showed(n, "after", 5, "after the pause")?;
    sim.check_order()?;
    sim.check_committed_everywhere()
}

#[test]
fn paused_watcher_of_the_leader() {
    for_sims("paused_watcher_of_the_leader", 40, paused_watcher);
}

/// The leader's watcher is paused PAUSE_MS (default random 1000..3000), and the leader
/// crashes AT_MS into the pause (default random, anywhere in it). N: room size (default
/// random 4..=6). A new leader must lead within LIMIT_MS (default 1000) of the later of
/// the crash and the watcher's resume (when the room needs the watcher's yes), and within
/// LIMIT_MS of the crash when the others are a majority without the watcher.
/// `fixed`: room size, pause and crash time (ms) instead of random ones.
fn paused_watcher_then_leader_crash(
    sim: &mut Sim,
    seed: u64,
    fixed: Option<(u64, u64, u64)>,
) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x3c4a);
    let n = env_u64("N", rng.random_range(4..=6)) as usize;
    let n = fixed.map_or(n, |f| f.0 as usize);
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(4));
    let leader = sim.leader().ok_or("no leader")?;
    let w = watcher_of(sim, leader).ok_or("no watcher")?;
    let pause = Duration::from_millis(env_u64("PAUSE_MS", rng.random_range(1000..3000)));
    let at = Duration::from_millis(env_u64(
        "AT_MS",
        rng.random_range(0..pause.as_millis() as u64),
    ));
    let (pause, at) = fixed.map_or((pause, at), |f| {
        (Duration::from_millis(f.1), Duration::from_millis(f.2))
    });
    for k in 0..5 {
        let live = sim.live();
        sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        sim.run_for(Duration::from_millis(rng.random_range(20..60)));
    }
    sim.pause(w, pause);
    let paused_at = sim.elapsed();
    let mut seen = Seen::new();
    run_watching(sim, at, &mut seen);
    sim.crash(leader);
    let crashed_at = sim.elapsed();
    let resumed_at = paused_at + pause;
    let mut elected_at = None;
    while sim.elapsed() < crashed_at + Duration::from_secs(15) {
        if elected_but(sim, w) {
            elected_at = Some(sim.elapsed());
            break;
        }
        watch(sim, &mut seen);
        sim.run_for(Duration::from_millis(10));
    }
    // The survivors but the watcher: a majority of the n voters?
    let without_w = n - 2 > n / 2;
    let from = if without_w {
        crashed_at
    } else {
        crashed_at.max(resumed_at)
    };
    let ms = |d: Duration| d.as_millis();
    println!(
        "PWC seed={seed} n={n} pause={} at={} resumed_ms={} elected_ms={} majority_without_w={without_w}",
        ms(pause),
        ms(at),
        ms(resumed_at.saturating_sub(crashed_at)),
        elected_at.map_or(99999, |e| ms(e - crashed_at))
    );
    let Some(e) = elected_at else {
        return Err(format!("no new leader: {:?}", sim.check_converged()));
    };
    let limit = Duration::from_millis(env_u64("LIMIT_MS", 1000));
    if e > from + limit {
        return Err(format!(
            "leader crashed {:?} into the watcher's {:?} pause; new leader {:?} after the crash",
            at,
            pause,
            e - crashed_at
        ));
    }
    run_watching(sim, Duration::from_secs(5), &mut seen);
    one_leader_per_term(&seen)?;
    sim.check_histories()
}

/// Failover took about 2 s in 19 of 100 seeds with N=6 PAUSE_MS=1800 AT_MS=1350 (and in
/// seed 14 of the default): the new leader's take-over waited a recovery timeout for the
/// resumed watcher, which had missed the round and asked to be let in instead of
/// answering. A survivor that asks to be let in is now no longer waited for. (With those
/// values seed 38 still takes 1.01 s: the resumed watcher is the only member whose word
/// on the leader the others take, and it judges its neighbours afresh on waking.)
/// Seeds 304302 and 307350 took 1.01 s while silence was judged only on heartbeats: the
/// watcher's watcher cut it out, then suspected the leader up to an interval after the
/// bound counted from when it began to watch it. Seed 1760363 (four voters) took 1.03 s
/// after the resume: the watcher's removal was in flight, so the take-over needed it (a
/// majority of the committed voters), but its join was held as if it did not vote, and
/// it was asked only at the recovery timeout.
#[test]
fn leader_crashes_while_its_watcher_is_paused() {
    for_sims(
        "leader_crashes_while_its_watcher_is_paused",
        40,
        |sim, seed| paused_watcher_then_leader_crash(sim, seed, None),
    );
    for_listed_sims(&[304302, 307350, 1760363], |sim, seed| {
        paused_watcher_then_leader_crash(sim, seed, None)
    });
}

/// The leader crashes 1 350 ms into its watcher's 1 800 ms pause, in a room of six (a
/// majority without the watcher): the member that watched the leader meanwhile finds it
/// dead just as the watcher comes back, and the others no longer take its word. Took
/// 1.02 s (seeds 51, 78 and more of 100): back, the watcher counted from nothing. Now the
/// one that found the leader dead tells the watcher as it comes back, and the watcher
/// takes the word as a suspicion (dead unless it answers within 150 ms). Seed 1701390
/// took 1.02 s: the watcher, back, passed the winning token on just after its refutation,
/// the token arrived first at a member that held it offline, was dropped there, and came
/// again only with its resend 500 ms later; a ring message dropped so is now taken once
/// its sender is online again.
#[test]
fn leader_crashes_late_in_its_watchers_pause() {
    let scenario =
        |sim: &mut Sim, seed| paused_watcher_then_leader_crash(sim, seed, Some((6, 1800, 1350)));
    for_sims("leader_crashes_late_in_its_watchers_pause", 100, scenario);
    for_listed_sims(&[1701390], scenario);
}
