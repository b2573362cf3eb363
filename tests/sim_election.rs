//! Elections in the simulator, around pre-vote and the watcher's verdict: the leader and
//! its watcher dying together, a leader leaving during traffic, partitions healing, a
//! paused watcher, a verdict that misses one member before the watcher dies, and a dead
//! leader's late heartbeats at its watcher (it must not be shown online again). Figures
//! print with `-- --nocapture`; the environment variables each scenario reads are named
//! at it.

mod sim;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ringchat::proto::Command;
use sim::leaders::{Seen, env_u64, one_leader_per_term, run_watching, watch};
use sim::{Sim, for_listed_sims, for_sims};
use std::time::Duration;

const NAMES: [&str; 6] = ["ann", "ben", "cat", "dan", "eve", "fay"];

fn elected(s: &Sim) -> bool {
    s.live()
        .iter()
        .filter(|&&i| s.node(i).is_sequencing())
        .count()
        == 1
        && s.check_converged().is_ok()
}

/// One live member sequences and every live member but `but` names it leader.
fn elected_but(s: &Sim, but: usize) -> bool {
    let live: Vec<usize> = s.live().into_iter().filter(|&i| i != but).collect();
    let seq: Vec<usize> = s
        .live()
        .into_iter()
        .filter(|&i| s.node(i).is_sequencing())
        .collect();
    seq.len() == 1
        && live
            .iter()
            .all(|&i| s.node(i).leader() == Some(s.node(seq[0]).id()))
}

fn watcher_of(sim: &Sim, leader: usize) -> Option<usize> {
    let lid = sim.node(leader).id();
    sim.live()
        .into_iter()
        .find(|&o| o != leader && sim.node(o).members().prev() == Some(lid))
}

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

/// The leader leaves (`exit`) while members chat: replaced at once (within LIMIT_MS,
/// default 1000), nothing committed lost, one order.
fn leader_exits(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xe817);
    let n = env_u64("N", rng.random_range(3..=6)) as usize;
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(rng.random_range(1..5)));
    let leader = sim.leader().ok_or("no leader")?;
    let mut seen = Seen::new();
    let mut k = 0;
    for _ in 0..10 {
        let live = sim.live();
        k += 1;
        sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        sim.run_for(Duration::from_millis(rng.random_range(5..40)));
    }
    if env_u64("DEREG", 0) == 1 {
        sim.command(leader, Command::Dereg { name: None });
    } else {
        sim.command(leader, Command::Leave);
    }
    let left_at = sim.elapsed();
    let mut elected_at = None;
    while sim.elapsed() < left_at + Duration::from_secs(10) {
        let live: Vec<usize> = sim.live().into_iter().filter(|&i| i != leader).collect();
        if sim.elapsed() < left_at + Duration::from_millis(1500) {
            k += 1;
            sim.send_all(live[rng.random_range(0..live.len())], format!("m{k}"));
        }
        if elected_at.is_none() && sim.live().iter().all(|&i| i != leader) && elected(sim) {
            elected_at = Some(sim.elapsed() - left_at);
        }
        watch(sim, &mut seen);
        sim.run_for(Duration::from_millis(rng.random_range(5..40)));
    }
    println!(
        "EXIT seed={seed} n={n} elected_ms={}",
        elected_at.map_or(99999, |d| d.as_millis())
    );
    run_watching(sim, Duration::from_secs(10), &mut seen);
    one_leader_per_term(&seen)?;
    let Some(e) = elected_at else {
        return Err(format!("no new leader: {:?}", sim.check_converged()));
    };
    if e > Duration::from_millis(env_u64("LIMIT_MS", 1000)) {
        return Err(format!("leader left; new leader after {e:?}"));
    }
    sim.check_converged()?;
    sim.check_no_fork()?;
    sim.check_order()
}

#[test]
fn leader_exit_during_traffic() {
    for_sims("leader_exit_during_traffic", 40, leader_exits);
}

/// A member passed the round's token to the leaving leader just before its goodbye
/// arrived; the leader took it and went, and the round waited 2 s for its timeout. The
/// token is now passed on again when the member it went to turns out to have gone.
#[test]
fn leader_exit_seeds_that_once_failed() {
    for_listed_sims(&[340, 1450], leader_exits);
}

/// Partitions: SPLIT=22 (4 nodes, 2+2) or SPLIT=32 (5 nodes, 3+2, leader's side picked at
/// random), chat on both sides for SPLIT_MS, heal, chat; then one leader per term, one
/// ring, one order, nothing committed lost; after the heal the room elects or keeps a
/// leader within 5 s and chat from every member goes through.
fn partition_heal(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9a27);
    let split = env_u64("SPLIT", [22, 32][rng.random_range(0..2)]);
    // SPLIT=11: a room of two cut in two; SPLIT=21: three, 2+1.
    let n = (split / 10 + split % 10) as usize;
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(rng.random_range(1..5)));
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        idx.swap(i, rng.random_range(0..=i));
    }
    let a = (split / 10) as usize;
    let (left, right) = idx.split_at(a);
    sim.partition(left, right);
    let mut seen = Seen::new();
    let start = sim.elapsed();
    let mut k = 0;
    let split_ms = env_u64("SPLIT_MS", rng.random_range(500..8000));
    while sim.elapsed() < start + Duration::from_millis(split_ms) {
        k += 1;
        sim.send_all(rng.random_range(0..n), format!("s{k}"));
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(50..200)),
            &mut seen,
        );
    }
    sim.heal();
    let healed = sim.elapsed();
    for j in 0..10 {
        sim.send_all(rng.random_range(0..n), format!("h{j}"));
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(50..200)),
            &mut seen,
        );
    }
    let mut ok_at = None;
    while sim.elapsed() < healed + Duration::from_secs(30) {
        if ok_at.is_none() && sim.live().len() == n && elected(sim) {
            ok_at = Some(sim.elapsed() - healed);
        }
        run_watching(sim, Duration::from_millis(100), &mut seen);
    }
    for j in 0..5 {
        sim.send_all(rng.random_range(0..n), format!("after{j}"));
        run_watching(
            sim,
            Duration::from_millis(rng.random_range(50..200)),
            &mut seen,
        );
    }
    run_watching(sim, Duration::from_secs(10), &mut seen);
    println!(
        "SPLIT seed={seed} split={split} settled_ms={} terms={:?}",
        ok_at.map_or(99999, |d| d.as_millis()),
        seen.keys().collect::<Vec<_>>()
    );
    one_leader_per_term(&seen)?;
    sim.check_no_fork()?;
    sim.check_converged()?;
    sim.check_all_showed(n, "after", 5, "after the heal")?;
    sim.check_order()?;
    sim.check_committed_everywhere()
}

#[test]
fn partitions_heal() {
    for_sims("partitions_heal", 40, partition_heal);
}

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
