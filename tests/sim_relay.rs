//! Simulated large rooms: more members than voters, so the leader sends its proposals to
//! the seven voters only and every other member (a learner) gets the committed entries
//! from a relay (see `src/proto/node/room/relay.rs`). Relays, learners and the leader
//! crash, pause and come back mid-burst, on lossy links, and voters are replaced.
//!
//! Afterwards whole histories are checked ([`Sim::check_histories`]): one leader and one
//! ring; no sequence number with two entries; no message shown twice, one order
//! everywhere; every message its sender was shown as its own shown at every live member.
//! And the room keeps seven voters, all of them live.

mod sim;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sim::{Link, Sim, for_sims};
use std::time::Duration;

/// The most voters a room keeps (`MAX_VOTERS` in the core).
const MAX_VOTERS: usize = 7;

/// Names `n0`, `n1`, ... for a room of `n`.
fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}

/// Forms a room of `n` and waits until the leader's configuration holds seven voters.
fn form_large_room(sim: &mut Sim, rng: &mut StdRng, n: usize) -> Result<Vec<String>, String> {
    let names = names(n);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    sim.form_room(rng, &refs)?;
    let capped = |s: &Sim| {
        s.leader()
            .is_some_and(|l| s.node(l).voters().len() == MAX_VOTERS.min(s.live().len()))
    };
    if !sim.run_until(Duration::from_secs(20), capped) {
        let voters = sim.leader().map(|l| sim.node(l).voters());
        return Err(format!(
            "the room of {n} never settled on 7 voters: {voters:?}"
        ));
    }
    Ok(names)
}

/// The hosts that vote, as the leader's configuration says, and those that do not.
fn voters_and_learners(sim: &Sim, names: &[String]) -> Result<(Vec<usize>, Vec<usize>), String> {
    let leader = sim.leader().ok_or("no leader")?;
    let voters = sim.node(leader).voters();
    Ok(sim
        .live()
        .into_iter()
        .partition(|&i| voters.contains(&names[i])))
}

/// What goes wrong mid-burst.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// A voter other than the leader (a relay) crashes; in half the runs it restarts.
    RelayCrash,
    /// A voter other than the leader pauses for 1.5 to 3 s.
    RelayPause,
    /// A learner (which may relay to other learners) crashes or pauses.
    Learner,
    /// The leader crashes.
    Leader,
    /// The room splits in two at random for 1 to 3 s (either side, or neither, may hold a
    /// majority of the voters).
    Split,
}

/// A room of 9 to 14 on links losing 0 to 10% chats for 6 s, in single messages and
/// bursts of 20 to 60, while one fault (see [`Fault`]) strikes 0.3 to 2 s in; a second
/// one strikes in half the runs. After 30 s more, whole histories are
/// checked, and the room is back at seven voters, all live.
fn relay_scenario(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4E1A7);
    let n = rng.random_range(9..=14);
    sim.default_link = Link::lan([0, 0, 5, 10][rng.random_range(0..4)]);
    let names = form_large_room(sim, &mut rng, n)?;
    let kinds = [
        Fault::RelayCrash,
        Fault::RelayPause,
        Fault::Learner,
        Fault::Leader,
        Fault::Split,
    ];
    let mut faults = vec![(
        Duration::from_millis(rng.random_range(300..2000)),
        kinds[rng.random_range(0..kinds.len())],
    )];
    if rng.random_bool(0.5) {
        faults.push((
            Duration::from_millis(rng.random_range(1000..4000)),
            kinds[rng.random_range(0..kinds.len())],
        ));
    }
    let mut restarts: Vec<(Duration, usize)> = Vec::new();
    let mut heal_at = None;
    let start = sim.elapsed();
    let mut k = 0;
    while sim.elapsed() < start + Duration::from_secs(6) {
        let t = sim.elapsed() - start;
        if let Some(&(at, fault)) = faults.first()
            && t >= at
        {
            faults.remove(0);
            if let Fault::Split = fault {
                let live = sim.live();
                let (left, right): (Vec<usize>, Vec<usize>) =
                    live.into_iter().partition(|_| rng.random_bool(0.5));
                sim.partition(&left, &right);
                heal_at = Some(t + Duration::from_millis(rng.random_range(1000..=3000)));
            } else {
                strike(sim, &mut rng, &names, fault, &mut restarts)?;
            }
        }
        if heal_at.is_some_and(|h| t >= h) {
            heal_at = None;
            sim.heal();
        }
        if let Some(&(at, i)) = restarts.first()
            && sim.elapsed() >= at
        {
            restarts.remove(0);
            let via = sim.live()[0];
            sim.restart(i, via);
        }
        let live: Vec<usize> = sim
            .live()
            .into_iter()
            .filter(|&i| !sim.is_paused(i))
            .collect();
        let from = live[rng.random_range(0..live.len())];
        let burst = if rng.random_bool(0.1) {
            rng.random_range(20..=60)
        } else {
            1
        };
        for _ in 0..burst {
            k += 1;
            sim.send_all(from, format!("m{k} from {}", names[from]));
        }
        sim.run_for(Duration::from_millis(rng.random_range(10..120)));
    }
    if heal_at.take().is_some() {
        sim.heal();
    }
    sim.run_for(Duration::from_secs(30));
    sim.check_histories()?;
    let live = sim.live().len();
    let (voters, _) = voters_and_learners(sim, &names)?;
    let leader = sim.leader().ok_or("no leader")?;
    let configured = sim.node(leader).voters().len();
    if configured != MAX_VOTERS.min(live) || voters.len() != configured {
        return Err(format!(
            "{configured} voters configured, {} of them live, {live} members live",
            voters.len()
        ));
    }
    Ok(())
}

/// Makes `fault` happen now; a crashed host to restart later goes into `restarts`, with
/// the virtual time to restart it at.
fn strike(
    sim: &mut Sim,
    rng: &mut StdRng,
    names: &[String],
    fault: Fault,
    restarts: &mut Vec<(Duration, usize)>,
) -> Result<(), String> {
    let Some(leader) = sim.leader() else {
        // Still electing after the first fault: this one waits for nothing.
        return Ok(());
    };
    let (voters, learners) = voters_and_learners(sim, names)?;
    let relays: Vec<usize> = voters.into_iter().filter(|&i| i != leader).collect();
    let pick = |rng: &mut StdRng, of: &[usize]| of[rng.random_range(0..of.len())];
    let pause_for = Duration::from_millis(rng.random_range(1500..=3000));
    match fault {
        Fault::RelayCrash if !relays.is_empty() => {
            let victim = pick(rng, &relays);
            sim.crash(victim);
            if rng.random_bool(0.5) {
                let later = sim.elapsed() + Duration::from_millis(rng.random_range(500..3000));
                restarts.push((later, victim));
            }
        }
        Fault::RelayPause if !relays.is_empty() => sim.pause(pick(rng, &relays), pause_for),
        Fault::Learner if !learners.is_empty() => {
            let victim = pick(rng, &learners);
            if rng.random_bool(0.5) {
                sim.crash(victim);
            } else {
                sim.pause(victim, pause_for);
            }
        }
        Fault::Leader => sim.crash(leader),
        _ => {}
    }
    Ok(())
}

#[test]
fn a_large_room_loses_nothing_when_relays_fail() {
    for_sims(
        "a_large_room_loses_nothing_when_relays_fail",
        60,
        relay_scenario,
    );
}

/// Seeds that once failed. A relay crashed and came back under a new id at its address;
/// the leader let it in again and died before one member heard of it, and that member,
/// which takes a new member only on a leader's word, dropped everything from it. It was
/// the restarted relay's ring successor, so every election token stopped there, and no
/// round ended in 30 s (6131): a ring message not acked within a quarter of the election
/// timeout now also goes to the member after the successor. A member back from a split
/// refuted its watcher's verdict at the others, not at the watcher, and crashed: the
/// watcher held it offline and so did not watch it, the others held it online, and it
/// stayed online at them for good (1871): a member held offline here that another says
/// is online is probed, and declared offline again if it does not answer. A relay
/// restarted and was let in by a leader cut off with a minority; after the heal it followed
/// the newer leader on the voters' word, but that leader had never heard of it and dropped
/// all it said, so it stayed out for good (501132, 501471 and 501499; 501471 failed on
/// `6c959f7` too): a leader answers such a stranger with
/// a heartbeat marked `unknown`, and a member its leader does not know asks to be taken in.
/// A learner held a deposed leader's proposals at its delivery point and was then sent
/// committed copies from far past it: its hold-back queue saw no gap, no commit notice
/// reaches a learner, and its predecessor's heartbeats said "delivered 0" (it waited for
/// a welcome from a leader that lost its round), so it waited for good (1892191); now a
/// committed copy tells how far the room committed.
#[test]
fn relay_seeds_that_once_failed() {
    sim::for_listed_sims(
        &[6131, 1871, 501132, 501471, 501499, 1892191],
        relay_scenario,
    );
}

/// The leader of a room of 10 to 20 dies; a learner then says one message every 10 ms.
/// The first of them is shown at every survivor within 1 s of the death (finding it dead
/// and electing take about 0.45 s). Meanwhile the new leader replaces the dead voter:
/// the voters hold that change before it commits, the learners do not, and while the
/// relay tree followed the configuration as held, learners refused their relays' copies
/// as not from their own relay and waited for gap repair (300 ms, twice over for some:
/// 1 s and more in rooms of 50).
fn leader_death(sim: &mut Sim, seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1EAD);
    let n = rng.random_range(10..=20);
    sim.default_link = Link::lan(0);
    let names = form_large_room(sim, &mut rng, n)?;
    sim.run_for(Duration::from_secs(1));
    let leader = sim.leader().ok_or("no leader")?;
    let (_, learners) = voters_and_learners(sim, &names)?;
    let from = learners[rng.random_range(0..learners.len())];
    sim.crash(leader);
    let died = sim.elapsed();
    let everywhere = |s: &Sim| {
        s.live()
            .iter()
            .all(|&i| s.room_log(i).iter().any(|(_, t)| t == "probe1"))
    };
    let mut k = 0;
    while !everywhere(sim) {
        if sim.elapsed() > died + Duration::from_secs(1) {
            let missing: Vec<&str> = sim
                .live()
                .into_iter()
                .filter(|&i| !sim.room_log(i).iter().any(|(_, t)| t == "probe1"))
                .map(|i| names[i].as_str())
                .collect();
            return Err(format!(
                "1 s after the leader died, the first message since was not shown at {missing:?}"
            ));
        }
        k += 1;
        sim.send_all(from, format!("probe{k}"));
        sim.run_for(Duration::from_millis(10));
    }
    sim.run_for(Duration::from_secs(5));
    sim.check_histories()
}

#[test]
fn after_the_leader_dies_every_learner_hears_within_a_second() {
    for_sims(
        "after_the_leader_dies_every_learner_hears_within_a_second",
        20,
        leader_death,
    );
}

/// Datagrams each host sent while `count` messages, one every 50 ms from learners in
/// turn (from every member but the leader in a room of 7), were shown everywhere in a lossless room of `n`: `(leader's, most of any other
/// host's)`.
fn sends_per_host(seed: u64, n: usize, count: usize) -> Result<(u64, u64), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = Sim::new(seed);
    let names = form_large_room(&mut sim, &mut rng, n)?;
    sim.run_for(Duration::from_secs(2));
    let (_, learners) = voters_and_learners(&sim, &names)?;
    let leader = sim.leader().ok_or("no leader")?;
    // Learners type (in a room of 7, whoever does not lead).
    let typists: Vec<usize> = if learners.is_empty() {
        (0..n).filter(|&i| i != leader).collect()
    } else {
        learners
    };
    let sent = |s: &Sim| -> Vec<u64> { (0..n).map(|i| s.node(i).stats().sent).collect() };
    let before = sent(&sim);
    for k in 0..count {
        let from = typists[k % typists.len()];
        sim.send_all(from, format!("m{k}"));
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(Duration::from_secs(2));
    sim.check_all_showed(n, "m", count, "after the chat")?;
    let after = sent(&sim);
    let by = |i: usize| after[i] - before[i];
    let others = (0..n).filter(|&i| i != leader).map(by).max().unwrap_or(0);
    Ok((by(leader), others))
}

/// The leader's cost per message does not grow with the room: in rooms of 8 to 30 its
/// datagrams per message stay within a few of the 7-member room's, and no other member
/// sends more than the leader's share.
#[test]
fn the_leader_sends_to_the_voters_only() {
    let count = 100;
    let (base, _) = sends_per_host(1, 7, count).expect("room of 7");
    for n in [8, 14, 30] {
        let (leader, other) = sends_per_host(n as u64, n, count).expect("large room");
        println!(
            "room of {n}: leader {:.1} datagrams a message (7 members: {:.1}), busiest other {:.1}",
            leader as f64 / count as f64,
            base as f64 / count as f64,
            other as f64 / count as f64
        );
        assert!(
            leader <= base + base / 4,
            "room of {n}: the leader sent {leader} datagrams for {count} messages, the leader of 7 {base}"
        );
    }
}

/// A learner's configuration is the committed one only, which may lag the voters' by a
/// change, so a voter wins the election after the leader dies: rooms of 8 to 14 (in a
/// room of 8 the survivors are 7, a small room: the learner still stands as having shown
/// nothing), a few messages, the leader crashed, the new leader checked.
#[test]
fn a_voter_wins_the_election_in_a_large_room() {
    for_sims(
        "a_voter_wins_the_election_in_a_large_room",
        20,
        |sim, seed| voter_wins(sim, seed, None),
    );
}

/// [`a_voter_wins_the_election_in_a_large_room`] over slow paths ([`Link::far`]: 100 to
/// 400 ms each way). A round there takes longer than the configured 2 s election timeout
/// (the winner's token and its announcement each go round the ring, a hop of 250 ms on
/// average), and a successor's ack longer than the 500 ms a node waited before passing a
/// token past it. Before both followed the measured paths, 3 of these 12 seeds failed: in
/// two every round was given up before it ended and no leader came within 20 s, and in
/// one tokens that went past slow successors made a learner leader.
#[test]
fn a_voter_wins_the_election_in_a_large_room_over_slow_paths() {
    for_sims(
        "a_voter_wins_the_election_in_a_large_room_over_slow_paths",
        12,
        |sim, seed| voter_wins(sim, seed, Some(Link::far(2))),
    );
}

/// Seed 570285 of [`a_voter_wins_the_election_in_a_large_room_over_slow_paths`]: two
/// members won term 1 on a ring that changed under the round; the one a majority followed
/// let learner n10 vote in the dead leader's place, then stood down for a round above both,
/// which n10 won. The test read the voters before the crash only and called n10 a learner;
/// it now reads each winner's own configuration as it wins.
#[test]
fn a_learner_let_vote_after_the_crash_may_win_a_later_round() {
    sim::for_listed_sims(&[570285], |sim, seed| {
        voter_wins(sim, seed, Some(Link::far(2)))
    });
}

/// See [`a_voter_wins_the_election_in_a_large_room`]; `link`, if given, is every link's.
fn voter_wins(sim: &mut Sim, seed: u64, link: Option<Link>) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5E1EC7);
    if let Some(link) = link {
        sim.default_link = link;
    }
    let n = rng.random_range(8..=14);
    let names = form_large_room(sim, &mut rng, n)?;
    for k in 0..5 {
        let from = sim.live()[k % n];
        sim.send_all(from, format!("m{k}"));
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(Duration::from_secs(2));
    let leader = sim.leader().ok_or("no leader")?;
    let (voters, _) = voters_and_learners(sim, &names)?;
    sim.crash(leader);
    let bound = Duration::from_secs(if link.is_some() { 20 } else { 10 });
    // Every member that wins a round must vote when it wins: in the configuration before
    // the crash, or in its own log's (a leader of the new term may have let a learner
    // vote in the dead leader's place before it, too, lost a round). Its own log's
    // configuration is read the first time it is seen leading, 10 ms of virtual time at
    // most after it won: before its take-over can have committed a change of its own.
    let mut seen_leading = std::collections::BTreeSet::new();
    let mut learner_won = None;
    let new_leader = sim.run_until(bound, |s| {
        for i in s.live() {
            let node = s.node(i);
            let Some(epoch) = node.epoch().filter(|e| e.leader == node.id()) else {
                continue;
            };
            if seen_leading.insert((epoch.term, i))
                && !voters.contains(&i)
                && !node.log_voters().contains(&names[i])
            {
                learner_won.get_or_insert((names[i].clone(), epoch.term, node.log_voters()));
            }
        }
        s.leader().is_some_and(|l| l != leader)
    });
    if let Some((name, term, own)) = learner_won {
        return Err(format!(
            "{name} won term {term}, a learner (voters before the crash {voters:?}, in its log {own:?})"
        ));
    }
    if !new_leader {
        return Err(format!("no new leader {bound:?} after the crash"));
    }
    // Converged views and every committed message shown everywhere: a member that
    // missed the dead leader's last entries fetches them once the room has a leader
    // again, which takes a few round trips more on far links.
    if !sim.run_until(bound, |s| s.check_histories().is_ok()) {
        return Err(format!(
            "{bound:?} after {} led: {}",
            names[sim.leader().unwrap_or(leader)],
            sim.check_histories().err().unwrap_or_default()
        ));
    }
    Ok(())
}
