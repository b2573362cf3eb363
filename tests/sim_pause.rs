//! Simulated pauses: one process stops for seconds (SIGSTOP, a garbage-collection pause, a
//! closed laptop lid) while every member chats, then goes on with its socket's backlog and
//! its clock jumped. The room judges it dead meanwhile, and (when it led) elects another
//! leader; it comes back believing what it believed before.
//!
//! Afterwards whole histories are checked ([`Sim::check_histories`]): one leader and one
//! ring; no sequence number with two different entries at any node; no message shown twice
//! by a node, and one order everywhere; every message its sender was shown as its own
//! shown at every live member.

mod sim;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ringchat::proto::Event;
use sim::{Link, Sim, for_sims};
use std::time::Duration;

const NAMES: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];

/// Whose process stops.
#[derive(Clone, Copy)]
enum Paused {
    /// The leader.
    Leader,
    /// The leader's watcher: its successor on the ring, which the leader heartbeats and
    /// which declares the leader dead when they stop.
    Watcher,
    /// A member other than the leader, at random.
    Member,
}

/// A room of 3 to 5 chats for 6 s, everyone in turn; 0.3 to 1.5 s in, one process stops
/// for 1.5 to 3 s, long enough for the room to judge it gone. After 30 s more, whole
/// histories are checked.
fn pause_scenario(sim: &mut Sim, seed: u64, paused: Paused) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x57_09);
    let n = rng.random_range(3..=5);
    sim.default_link = Link::lan([0, 0, 5][rng.random_range(0..3)]);
    sim.form_room(&mut rng, &NAMES[..n])?;
    sim.run_for(Duration::from_secs(1));
    let leader = sim.leader().ok_or("no leader before the pause")?;
    let victim = match paused {
        Paused::Leader => leader,
        Paused::Watcher => {
            let watcher = sim.node(leader).members().next().ok_or("no watcher")?;
            (0..n)
                .find(|&i| sim.node(i).id() == watcher)
                .ok_or("the watcher is no host")?
        }
        Paused::Member => (leader + rng.random_range(1..n)) % n,
    };
    let pause_at = Duration::from_millis(rng.random_range(300..1500));
    let pause_for = Duration::from_millis(rng.random_range(1500..=3000));

    let start = sim.elapsed();
    let mut k = 0;
    let mut stopped = false;
    while sim.elapsed() < start + Duration::from_secs(6) {
        if !stopped && sim.elapsed() >= start + pause_at {
            sim.pause(victim, pause_for);
            stopped = true;
        }
        // Everyone in turn; a stopped process's user types nothing.
        let from = k % n;
        k += 1;
        if !sim.is_paused(from) {
            sim.send_all(from, format!("m{k} from {}", NAMES[from]));
        }
        sim.run_for(Duration::from_millis(rng.random_range(20..150)));
    }
    sim.run_for(Duration::from_secs(30));
    let gone = |e: &Event| matches!(e, Event::MemberOffline { name } if name == NAMES[victim]);
    if (0..n).all(|i| sim.count_events(i, gone) == 0) {
        return Err("no member saw the paused one go: the pause tests nothing".into());
    }
    sim.check_histories()
        .map_err(|e| format!("{e} ({} paused for {pause_for:?})", NAMES[victim]))
}

/// [`pause_scenario`] over 200 seeds (`SIM_SEEDS`), pausing `paused`.
fn pause_test(test: &str, paused: Paused) {
    for_sims(test, 200, |sim, seed| pause_scenario(sim, seed, paused));
}

#[test]
fn a_paused_leader_comes_back_to_one_history() {
    pause_test("a_paused_leader_comes_back_to_one_history", Paused::Leader);
}

#[test]
fn a_paused_watcher_comes_back_to_one_history() {
    pause_test(
        "a_paused_watcher_comes_back_to_one_history",
        Paused::Watcher,
    );
}

#[test]
fn a_paused_member_comes_back_to_one_history() {
    pause_test("a_paused_member_comes_back_to_one_history", Paused::Member);
}
