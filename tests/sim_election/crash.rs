//! Elections after the leader crashes, around its watcher: the watcher dying after it,
//! before or after its verdict went out; its verdict reaching every member but one before
//! it dies; and the dead leader's last heartbeats reaching it late (the leader must not be
//! shown online again).

use super::{NAMES, elected, elected_but, watcher_of};
use crate::sim::leaders::{Seen, env_u64, one_leader_per_term, run_watching, watch};
use crate::sim::{Sim, for_sims};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// The leader dies mid-traffic, and its watcher dies WGAP ms later (default: random in
/// 0..=700, i.e. before or after its verdict went out). The members the watcher told must
/// elect within LIMIT_MS (default 1000) of being told; with nobody told, the watcher's
/// successor finds both.
fn leader_and_watcher(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x3a7c);
    // Five or six: the survivors stay a majority of the voters.
    let n = rng.random_range(5..=6);
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(4));
    let leader = sim.leader().ok_or("no leader")?;
    let w = watcher_of(sim, leader).ok_or("no watcher")?;
    let lid = sim.node(leader).id();
    for k in 0..10 {
        let live = sim.live();
        sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        sim.run_for(Duration::from_millis(rng.random_range(20..60)));
    }
    let gap = Duration::from_millis(env_u64("WGAP", rng.random_range(0..=700)));
    sim.crash(leader);
    let crashed_at = sim.elapsed();
    let mut seen = Seen::new();
    let mut told_at = None;
    let mut w_down = false;
    let mut elected_at = None;
    while sim.elapsed() < crashed_at + Duration::from_secs(15) {
        if !w_down && sim.elapsed() >= crashed_at + gap {
            sim.crash(w);
            w_down = true;
        }
        if told_at.is_none()
            && sim
                .live()
                .iter()
                .any(|&i| i != w && !sim.node(i).members().is_online(lid))
        {
            told_at = Some(sim.elapsed() - crashed_at);
        }
        if w_down && elected_at.is_none() && elected(sim) {
            elected_at = Some(sim.elapsed() - crashed_at);
            break;
        }
        watch(sim, &mut seen);
        sim.run_for(Duration::from_millis(10));
    }
    let ms = |d: Option<Duration>| d.map_or(99999, |d| d.as_millis());
    println!(
        "LW seed={seed} n={n} wgap={} told_ms={} elected_ms={}",
        gap.as_millis(),
        ms(told_at),
        ms(elected_at)
    );
    let Some(e) = elected_at else {
        return Err(format!("no new leader: {:?}", sim.check_converged()));
    };
    let limit = Duration::from_millis(env_u64("LIMIT_MS", 1000));
    if let Some(t) = told_at
        && t < gap
        && e > t.max(gap) + limit
    {
        return Err(format!(
            "told at {t:?}, watcher down at {gap:?}, elected only at {e:?}"
        ));
    }
    run_watching(sim, Duration::from_secs(5), &mut seen);
    one_leader_per_term(&seen)?;
    sim.check_histories()
}

#[test]
fn leader_and_watcher_die() {
    for_sims("leader_and_watcher_die", 40, leader_and_watcher);
}

/// The leader dies; its watcher's verdict reaches every member but one (F: its link from
/// the watcher drops everything from the crash on), and the watcher dies WGAP2 ms
/// (default random 0..=200) after the first member was told. The told members and F must
/// elect within LIMIT_MS (default 1000) of being told. N: room size (default random 5..=6).
fn watcher_word_misses_one(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x3155);
    let n = env_u64("N", rng.random_range(5..=6)) as usize;
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(4));
    let leader = sim.leader().ok_or("no leader")?;
    let w = watcher_of(sim, leader).ok_or("no watcher")?;
    let lid = sim.node(leader).id();
    let wid = sim.node(w).id();
    // F: neither the leader, the watcher, nor the watcher's successor.
    let pool: Vec<usize> = sim
        .live()
        .into_iter()
        .filter(|&i| i != leader && i != w && sim.node(i).members().prev() != Some(wid))
        .collect();
    let f = pool[rng.random_range(0..pool.len())];
    for k in 0..10 {
        let live = sim.live();
        sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        sim.run_for(Duration::from_millis(rng.random_range(20..60)));
    }
    let gap = Duration::from_millis(env_u64("WGAP2", rng.random_range(0..=200)));
    sim.crash(leader);
    sim.drop(w, f, 100);
    let crashed_at = sim.elapsed();
    let mut seen = Seen::new();
    let mut told_at = None;
    let mut elected_at = None;
    while sim.elapsed() < crashed_at + Duration::from_secs(15) {
        if told_at.is_none()
            && sim
                .live()
                .iter()
                .any(|&i| i != w && !sim.node(i).members().is_online(lid))
        {
            told_at = Some(sim.elapsed());
        }
        if let Some(t) = told_at
            && sim.is_up(w)
            && sim.elapsed() >= t + gap
        {
            sim.crash(w);
        }
        if !sim.is_up(w) && elected(sim) {
            elected_at = Some(sim.elapsed());
            break;
        }
        watch(sim, &mut seen);
        sim.run_for(Duration::from_millis(10));
    }
    let ms = |d: Option<Duration>| d.map_or(99999, |d| (d - crashed_at).as_millis());
    println!(
        "MISS seed={seed} n={n} f={} wgap={} told_ms={} elected_ms={}",
        NAMES[f],
        gap.as_millis(),
        ms(told_at),
        ms(elected_at)
    );
    let (Some(t), Some(e)) = (told_at, elected_at) else {
        return Err(format!("no new leader: {:?}", sim.check_converged()));
    };
    let limit = Duration::from_millis(env_u64("LIMIT_MS", 1000));
    if e - t > limit {
        return Err(format!(
            "told {:?} after the crash, elected only {:?} after",
            t - crashed_at,
            e - crashed_at
        ));
    }
    run_watching(sim, Duration::from_secs(5), &mut seen);
    one_leader_per_term(&seen)?;
    sim.check_histories()
}

#[test]
fn watcher_word_misses_one_member_then_watcher_dies() {
    for_sims(
        "watcher_word_misses_one_member_then_watcher_dies",
        40,
        watcher_word_misses_one,
    );
}

/// The link from the leader to its watcher delays each datagram by 0..JITTER_MS (default
/// 900): some of the dead leader's last heartbeats reach the watcher after its verdict.
/// A dead leader must not be shown online again anywhere after the crash (its process is
/// gone), and the room must agree on a new leader and a table without it within
/// LIMIT_MS (default 1000) of the crash plus JITTER_MS.
fn jittery_watcher_link(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7177);
    let n = env_u64("N", rng.random_range(3..=6)) as usize;
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(4));
    let leader = sim.leader().ok_or("no leader")?;
    let w = watcher_of(sim, leader).ok_or("no watcher")?;
    let jitter = Duration::from_millis(env_u64("JITTER_MS", 900));
    // Only for the last stretch before the crash, so that the room stays formed.
    sim.slow(leader, w, Duration::ZERO, jitter);
    let mut seen = Seen::new();
    for k in 0..10 {
        let live = sim.live();
        sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(20..60)),
            &mut seen,
        );
    }
    sim.crash(leader);
    let crashed_at = sim.elapsed();
    let mut sequencing_at = None;
    let ok = sim.run_until(Duration::from_secs(15), |s| {
        if sequencing_at.is_none() && elected_but(s, usize::MAX) {
            sequencing_at = Some(s.elapsed() - crashed_at);
        }
        elected(s)
    });
    let took = sim.elapsed() - crashed_at;
    let ghosts: Vec<(String, Duration)> = sim
        .live()
        .into_iter()
        .flat_map(|i| {
            sim.hosts[i]
                .events
                .iter()
                .filter(|(t, e)| {
                    *t >= crashed_at
                        && matches!(e, ringchat::proto::Event::MemberOnline { name } if name == NAMES[leader])
                })
                .map(|(t, _)| (NAMES[i].to_string(), *t - crashed_at))
                .collect::<Vec<_>>()
        })
        .collect();
    println!(
        "JIT seed={seed} n={n} sequencing_ms={} converged_ms={} dead_leader_shown_online_again={ghosts:?}",
        sequencing_at.map_or(99999, |d| d.as_millis()),
        took.as_millis()
    );
    if !ok {
        return Err(format!("no new leader: {:?}", sim.check_converged()));
    }
    if !ghosts.is_empty() {
        return Err(format!(
            "{} crashed; shown online again after the crash at {ghosts:?} (converged after {took:?})",
            NAMES[leader]
        ));
    }
    if took > jitter + Duration::from_millis(env_u64("LIMIT_MS", 1000)) {
        return Err(format!("converged only {took:?} after the crash"));
    }
    run_watching(sim, Duration::from_secs(5), &mut seen);
    one_leader_per_term(&seen)?;
    sim.check_histories()
}

#[test]
fn dead_leader_late_heartbeats_at_its_watcher() {
    for_sims(
        "dead_leader_late_heartbeats_at_its_watcher",
        40,
        jittery_watcher_link,
    );
}
