//! Simulated crashes, leader failover and partitions.
//!
//! After the faults stop: one leader agreed by every live member and one ring; every room
//! message shown at most once per node and in one order; every message whose sender saw
//! it committed shown at every live member; elections within the Chang-Roberts bound.
//! The leader lost in a long burst is in `sim_failover/burst.rs`.

#[path = "sim_failover/burst.rs"]
mod burst;
mod sim;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ringchat::proto::{Command, Event};
use sim::{Link, Sim, for_listed_sims, for_seeds, for_sims};
use std::time::Duration;

const NAMES: [&str; 8] = ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"];

/// Room messages from random live members while the leader and others crash and restart.
fn crash_scenario(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xFA11);
    let n = rng.random_range(3..=6);
    sim.default_link = Link::lan([0, 0, 5, 10][rng.random_range(0..4)]);
    sim.form_room(&mut rng, &NAMES[..n])?;

    let first_crash = Duration::from_millis(rng.random_range(500..2500));
    let second_crash = rng
        .random_bool(0.5)
        .then(|| first_crash + Duration::from_millis(rng.random_range(0..3000)));
    let restart = rng.random_bool(0.5);
    let start = sim.elapsed();
    let mut crashed: Vec<(usize, Duration)> = Vec::new();
    let mut k = 0;
    while sim.elapsed() < start + Duration::from_secs(7) {
        let t = sim.elapsed() - start;
        if t >= first_crash && crashed.is_empty() {
            // The leader dies mid-traffic.
            if let Some(l) = sim.leader() {
                sim.crash(l);
                crashed.push((l, t));
            }
        }
        if let Some(t2) = second_crash
            && t >= t2
            && crashed.len() == 1
        {
            // Only while the survivors stay a majority of the room: the first victim may
            // still be a voter (its removal not yet committed), and a room that loses a
            // majority of its voters waits for them.
            let live = sim.live();
            let voters = sim
                .leader()
                .map(|l| sim.node(l).voters())
                .unwrap_or_default();
            let live_voters = live
                .iter()
                .filter(|&&i| voters.iter().any(|v| v == NAMES[i]))
                .count();
            if live_voters > voters.len() / 2 + 1 {
                let victim = live[rng.random_range(0..live.len())];
                sim.crash(victim);
                crashed.push((victim, t));
            }
        }
        if restart
            && let Some(&(c, at)) = crashed.first()
            && !sim.is_up(c)
            && t > at + Duration::from_secs(2)
        {
            let live = sim.live();
            if !live.is_empty() {
                sim.restart(c, live[rng.random_range(0..live.len())]);
            }
        }
        let live = sim.live();
        if !live.is_empty() {
            let from = live[rng.random_range(0..live.len())];
            k += 1;
            sim.send_all(from, format!("m{k}"));
        }
        sim.run_for(Duration::from_millis(rng.random_range(20..150)));
    }
    sim.run_for(Duration::from_secs(30));
    sim.check_converged()?;
    sim.check_order()?;
    sim.check_committed_everywhere()
}

#[test]
fn leader_crash_mid_traffic_loses_nothing_committed() {
    for_sims(
        "leader_crash_mid_traffic_loses_nothing_committed",
        150,
        crash_scenario,
    );
    // A newcomer let back in, whose addition committed on its own ack and the leader's
    // while the leader's voucher for it was still on its way; the leader then died, and
    // the survivor that never heard of it dropped all it said: the room waited for good.
    // The voucher now comes in every part of the welcome.
    for_listed_sims(&[1620379], crash_scenario);
    // The leader elected after the crash removed the dead one, committed it with one
    // survivor's ack and crashed too: that survivor alone held the removal as a vote, and
    // the room waited for good for a majority of the configuration before it. The leader
    // of the removal's term now counts as a holder of what it proposed.
    for_listed_sims(&[1781403, 1800517], crash_scenario);
}

/// Builds a lossless room of `n`, crashes the leader, returns (election messages sent by
/// the survivors, time from crash to a new leader sequencing, survivors).
fn measure_election(seed: u64, n: usize) -> Result<(u64, Duration, usize), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = Sim::new(seed);
    let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    sim.form_room(&mut rng, &names)?;
    sim.run_for(Duration::from_secs(1));
    let before: u64 = sim
        .live()
        .iter()
        .map(|&i| sim.node(i).stats().election_messages)
        .sum();
    let leader = sim.leader().ok_or("no leader")?;
    sim.crash(leader);
    let crashed_at = sim.elapsed();
    let elected = sim.run_until(Duration::from_secs(10), |s| {
        s.live()
            .iter()
            .filter(|&&i| s.node(i).is_sequencing())
            .count()
            == 1
            && s.check_converged().is_ok()
    });
    if !elected {
        return Err(format!(
            "no new leader for {n} nodes: {:?}",
            sim.check_converged()
        ));
    }
    let took = sim.elapsed() - crashed_at;
    let after: u64 = sim
        .live()
        .iter()
        .map(|&i| sim.node(i).stats().election_messages)
        .sum();
    Ok((after - before, took, n - 1))
}

/// Chang-Roberts bound: with m survivors at most m(m+1)/2 election tokens plus m
/// announcements. Prints the figures for 3, 10 and 50 nodes.
#[test]
fn election_stays_within_the_chang_roberts_bound() {
    for n in [3usize, 10, 50] {
        let seeds = if n == 50 { 3 } else { 10 };
        let mut counts = Vec::new();
        for_seeds(
            "election_stays_within_the_chang_roberts_bound",
            seeds,
            |seed| {
                let (msgs, took, m) = measure_election(seed, n)?;
                let bound = (m * (m + 1) / 2 + m) as u64;
                if msgs > bound {
                    return Err(format!(
                        "{msgs} election messages for {m} survivors, bound {bound}"
                    ));
                }
                println!(
                    "ring of {n}: {msgs} election messages (bound {bound}), leader after {took:?}"
                );
                Ok(())
            },
        );
        counts.push(n);
    }
}

/// A partitioned leader: the majority elects a new one; after the heal there is one leader
/// and one ring again, and chat goes on in one order. (Messages from the split itself are
/// not promised one order across the two sides: see README, "Partitions".)
#[test]
fn partition_heals_into_one_ring_with_one_leader() {
    for_sims(
        "partition_heals_into_one_ring_with_one_leader",
        40,
        |sim, seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let n = rng.random_range(3..=6);
            sim.form_room(&mut rng, &NAMES[..n])?;
            sim.run_for(Duration::from_secs(1));
            let leader = sim.leader().ok_or("no leader")?;
            // Split: either the leader alone, or a random cut into two groups.
            if rng.random_bool(0.5) {
                sim.isolate(leader);
            } else {
                let (left, right): (Vec<usize>, Vec<usize>) =
                    (0..n).partition(|_| rng.random_bool(0.5));
                sim.partition(&left, &right);
            }
            for k in 0..20 {
                let from = rng.random_range(0..n);
                sim.send_all(from, format!("split{k}"));
                sim.run_for(Duration::from_millis(rng.random_range(50..300)));
            }
            sim.heal();
            sim.run_for(Duration::from_secs(20));
            sim.check_converged()?;
            // Chat works after the heal: messages from anyone reach everyone, in one order.
            let live = sim.live();
            for k in 0..10 {
                let from = live[rng.random_range(0..live.len())];
                sim.send_all(from, format!("healed{k}"));
                sim.run_for(Duration::from_millis(rng.random_range(0..100)));
            }
            sim.run_for(Duration::from_secs(10));
            for &i in &live {
                let got = sim
                    .room_log(i)
                    .iter()
                    .filter(|(_, t)| t.starts_with("healed"))
                    .count();
                if got != 10 {
                    return Err(format!(
                        "{} showed {got} of 10 messages after the heal",
                        NAMES[i]
                    ));
                }
            }
            sim.check_order()
                .or_else(|_| sim.check_order_among(|t| t.starts_with("healed")))
        },
    );
}

/// A crashed neighbour is detected within the configured bound (default 0.5 s) and the
/// ring closes around it; everyone's table shows it offline. Seeds 8855, 306073, 308498
/// and 310718 took 510 to 530 ms while silence was judged only on the watcher's own
/// heartbeats: a suspicion came up to a heartbeat interval after the 300 ms bound.
#[test]
fn crashed_member_is_cut_out_quickly() {
    for_sims("crashed_member_is_cut_out_quickly", 20, crash_detection);
    for_listed_sims(&[8855, 306073, 308498, 310718], crash_detection);
}

fn crash_detection(sim: &mut Sim, seed: u64) -> Result<(), String> {
    {
        let mut rng = StdRng::seed_from_u64(seed);
        sim.form_room(&mut rng, &NAMES[..5])?;
        // Settle first: a member not yet heard from since joining gets a longer grace.
        sim.run_for(Duration::from_secs(1));
        let victim = rng.random_range(0..5);
        sim.crash(victim);
        let t0 = sim.elapsed();
        let first_detect = sim.run_until(Duration::from_secs(2), |s| {
            s.live().iter().any(|&i| {
                s.hosts[i].events.iter().any(
                    |(_, e)| matches!(e, Event::MemberOffline { name } if *name == NAMES[victim]),
                )
            })
        });
        let detected_after = sim.elapsed() - t0;
        if !first_detect || detected_after > Duration::from_millis(500) {
            return Err(format!("detection took {detected_after:?}"));
        }
        sim.run_for(Duration::from_secs(3));
        sim.check_converged()
    }
}

/// A member that crashes just after joining (it showed `joined`, the leader counts it as
/// a voter, its watcher may not have heard a heartbeat of it), or a member whose watcher
/// just joined and has not heard it yet, is cut out within 1 s. A newcomer gets the
/// newcomer's grace (the join timeout, 3 s) only until the leader saw its whole welcome
/// acked (`Welcomed`); a newcomer judges a member it met in its welcome (which may not
/// know of it yet) dead by the usual bounds once another member agreed to probe it and
/// nobody heard it. Before, 106 of the first 1 000 seeds took 3 s.
#[test]
fn a_member_crashing_just_after_a_join_is_cut_out_quickly() {
    for_sims("a_member_crashing_just_after_a_join", 200, crash_after_join);
}

fn crash_after_join(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7017);
    let n = rng.random_range(3..=5);
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(rng.random_range(0..=2)));
    let via = sim.live()[rng.random_range(0..n)];
    let newcomer = sim.join(NAMES[n], via);
    // In the room: it showed `joined`, and the leader counts it as a voter.
    let voter = |s: &Sim| {
        s.joined(newcomer)
            && s.leader()
                .is_some_and(|l| s.node(l).voters().iter().any(|v| v == NAMES[n]))
    };
    if !sim.run_until(Duration::from_secs(10), voter) {
        return Err("the newcomer never became a voter".into());
    }
    // The newcomer, or any other member (the leader perhaps, or the one it watches).
    let victim = if rng.random_bool(0.5) {
        newcomer
    } else {
        sim.live()
            .into_iter()
            .filter(|&i| i != newcomer)
            .nth(rng.random_range(0..n))
            .ok_or("no member")?
    };
    let was_leader = sim.leader() == Some(victim);
    sim.crash(victim);
    let t0 = sim.elapsed();
    let cut_out = |s: &Sim| {
        s.live().iter().all(|&i| {
            !s.node(i)
                .members()
                .online_peers()
                .any(|m| m.name == NAMES[victim])
        }) && s.live().iter().any(|&i| s.node(i).is_sequencing())
    };
    if !sim.run_until(Duration::from_secs(5), cut_out) {
        return Err(format!("{} never cut out", NAMES[victim]));
    }
    let took = sim.elapsed() - t0;
    if took > Duration::from_secs(1) {
        return Err(format!(
            "{} (leader: {was_leader}, newcomer: {}) cut out after {took:?}",
            NAMES[victim],
            victim == newcomer
        ));
    }
    sim.run_for(Duration::from_secs(3));
    sim.check_converged()
}

/// A member cut off for 2 s is found dead by its watcher; then every datagram from it to
/// its watcher is lost (a link cut one way), while the others hear it. It refutes at the
/// others, and the watcher, which holds it offline and hears the others say it is
/// online, checks it directly and through others: an answer through others ends the
/// check, and the watcher keeps its view (it holds the member offline while the link
/// stays cut) without telling the room again. When the watcher checked it directly only
/// and declared it offline again on silence, it went offline 16 and 17 times in 20 s at
/// the others (seeds 2 and 5). One order, nothing committed lost, no fork.
#[test]
fn a_member_cut_one_way_from_its_watcher_does_not_flap() {
    for_sims("a_member_cut_one_way_from_its_watcher", 20, |sim, seed| {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0f1a);
        sim.form_room(&mut rng, &NAMES[..5])?;
        sim.run_for(Duration::from_secs(4));
        let leader = sim.leader().ok_or("no leader")?;
        let live = sim.live();
        let member = *live
            .iter()
            .find(|&&i| i != leader)
            .ok_or("no member but the leader")?;
        let id = sim.node(member).id();
        let watcher = live
            .iter()
            .copied()
            .find(|&o| o != member && sim.node(o).members().prev() == Some(id))
            .ok_or("no watcher")?;
        // Cut off for 2 s, so found dead; then back, but for the link to its watcher.
        sim.isolate(member);
        sim.run_for(Duration::from_secs(2));
        sim.heal();
        sim.drop(member, watcher, 100);
        let from = sim.elapsed();
        sim.run_for(Duration::from_secs(20));
        let flaps = live
            .iter()
            .filter(|&&i| i != member && i != watcher)
            .map(|&i| {
                sim.hosts[i]
                    .events
                    .iter()
                    .filter(|(t, e)| {
                        *t >= from
                            && matches!(e, Event::MemberOffline { name } if *name == NAMES[member])
                    })
                    .count()
            })
            .max()
            .unwrap_or(0);
        println!("ONEWAY seed={seed} most offline events at a third member: {flaps}");
        if flaps > 2 {
            return Err(format!(
                "{} went offline {flaps} times in 20 s at a third member",
                NAMES[member]
            ));
        }
        sim.check_no_fork()?;
        sim.check_order()?;
        sim.check_committed_everywhere()
    });
}

/// The leader lets the member that led before it back in while the third member is cut
/// off from it, the newcomer's addition to the voters commits with the leader's ack and
/// the newcomer's, and the leader dies before the third ever hears of the newcomer (as
/// in seed 551341 of [`leader_crash_mid_traffic_loses_nothing_committed`]). The two left
/// each count a majority of a different configuration; the newcomer shows the third its
/// voucher from the dead leader, and the room goes on: one leader, every message shown.
#[test]
fn a_newcomer_only_the_dead_leader_knew_is_taken_on_its_voucher() {
    for_sims(
        "a_newcomer_only_the_dead_leader_knew_is_taken_on_its_voucher",
        12,
        |sim, seed| {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x70C4);
            sim.form_room(&mut rng, &NAMES[..3])?;
            sim.run_for(Duration::from_millis(500));
            let first = sim.leader().ok_or("no leader")?;
            sim.crash(first);
            let two_voters = |s: &Sim| {
                s.leader().is_some()
                    && s.live().iter().all(|&i| s.node(i).voters().len() == 2)
                    && s.check_converged().is_ok()
            };
            if !sim.run_until(Duration::from_secs(10), two_voters) {
                return Err("no leader of the two survivors".into());
            }
            let leader = sim.leader().ok_or("no leader")?;
            let third = sim
                .live()
                .into_iter()
                .find(|&i| i != leader)
                .ok_or("alone")?;
            sim.cut(leader, third);
            sim.restart(first, leader);
            let name = NAMES[first].to_string();
            let added = |s: &Sim| {
                s.is_up(first)
                    && s.joined(first)
                    && [leader, first]
                        .iter()
                        .all(|&i| s.node(i).voters().contains(&name))
            };
            if !sim.run_until(Duration::from_secs(5), added) {
                return Err(format!("{name} was not let in and made a voter"));
            }
            if sim.node(third).voters().contains(&name) {
                return Err("the third heard of the newcomer through the cut".into());
            }
            sim.crash(leader);
            sim.heal();
            let back = |s: &Sim| s.leader().is_some() && s.check_converged().is_ok();
            if !sim.run_until(Duration::from_secs(20), back) {
                return Err(format!(
                    "the newcomer and the third never agreed on a leader: {:?}",
                    sim.check_converged()
                ));
            }
            for (k, &i) in [first, third].iter().enumerate() {
                sim.send_all(i, format!("after {k}"));
            }
            sim.run_for(Duration::from_secs(3));
            sim.check_histories()?;
            for i in [first, third] {
                let shown = sim.room_log(i);
                for k in 0..2 {
                    if !shown.iter().any(|(_, t)| *t == format!("after {k}")) {
                        return Err(format!("{} never showed \"after {k}\"", NAMES[i]));
                    }
                }
            }
            Ok(())
        },
    );
}

/// A member leaves and the leader crashes a moment later (0 to 40 ms after, around the
/// commit of the member's removal), in a room of four (the case where the survivors
/// need the leaver's answer unless one of them was told its removal committed) or five:
/// the survivors take over and every one of them shows a message each sends after the
/// crash, within 10 s of it; nothing committed lost, one order, no number with two
/// entries. (Before, the leaver answered no pre-vote, so in a room of four nobody was
/// elected until it gave up waiting and went, and then nobody ever was.)
fn leave_as_the_leader_crashes(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1ea7e);
    let n = [4, 4, 5][rng.random_range(0..3)];
    sim.default_link = Link::lan([0, 0, 5][rng.random_range(0..3)]);
    sim.form_room(&mut rng, &NAMES[..n])?;
    // A room of n voters: every member's addition committed (a lost welcome can hold the
    // first addition back a second; a room whose only voters all go waits for good).
    let all_vote = |s: &Sim| s.live().iter().all(|&i| s.node(i).voters().len() == n);
    if !sim.run_until(Duration::from_secs(10), all_vote) {
        return Err(format!("not every member of {n} votes after 10 s"));
    }
    sim.run_for(Duration::from_millis(rng.random_range(500..1500)));
    let leader = sim.leader().ok_or("no leader")?;
    let others: Vec<usize> = sim.live().into_iter().filter(|&i| i != leader).collect();
    let leaver = others[rng.random_range(0..others.len())];
    for (k, &i) in others.iter().enumerate() {
        sim.send_all(i, format!("before{k}"));
    }
    sim.run_for(Duration::from_millis(rng.random_range(0..30)));
    sim.command(leaver, Command::Leave);
    sim.run_for(Duration::from_millis(rng.random_range(0..40)));
    sim.crash(leader);
    let crashed_at = sim.elapsed();
    let survivors: Vec<usize> = others.iter().copied().filter(|&i| i != leaver).collect();
    for (k, &i) in survivors.iter().enumerate() {
        sim.send_all(i, format!("after{k}"));
    }
    let all_shown = |s: &Sim| {
        survivors.iter().all(|&i| {
            let log = s.room_log(i);
            (0..survivors.len()).all(|k| log.iter().any(|(_, t)| *t == format!("after{k}")))
        })
    };
    if !sim.run_until(Duration::from_secs(10), all_shown) {
        return Err(format!(
            "the survivors of {n} did not all show what they sent within 10 s of the \
             leader's crash: {:?}",
            sim.check_converged()
        ));
    }
    println!(
        "LEAVECRASH seed={seed} n={n} shown_ms={}",
        (sim.elapsed() - crashed_at).as_millis()
    );
    sim.run_for(Duration::from_secs(5));
    sim.check_converged()?;
    sim.check_no_fork()?;
    sim.check_order()?;
    sim.check_committed_everywhere()
}

#[test]
fn a_member_leaving_as_the_leader_crashes_leaves_a_room_that_goes_on() {
    for_sims(
        "a_member_leaving_as_the_leader_crashes_leaves_a_room_that_goes_on",
        60,
        leave_as_the_leader_crashes,
    );
    // The leader went after telling the leaver alone that its removal committed: the
    // others, holding the removal but not knowing it committed, needed three of the four
    // voters. The leaver is now told last.
    for_listed_sims(&[132, 135, 150, 189], leave_as_the_leader_crashes);
    // The others had acked the commit notice, but both lacked an earlier number (it
    // came to them later than the removal), so neither showed the removal nor applied
    // it; the leaver was told and went, the leader crashed, and they waited for good. A
    // member now counts as told only once it acked every number up to the change.
    for_listed_sims(&[1781115], leave_as_the_leader_crashes);
    // The leaver had passed on a later candidate's token than the winner's, so it took
    // the winner's word from nobody: a node leaving sought no leader and took no
    // welcome, and stayed online and a voter in the others' tables past the test's end.
    for_listed_sims(&[1830752], leave_as_the_leader_crashes);
}
