//! A nemesis, as Jepsen runs one: a room of 3 to 5 members, each with a disk, chats
//! steadily (random live members, every text unique) while a random schedule of
//! overlapping faults plays for 20 to 40 s of virtual time: processes crash and start
//! again from their disks, processes stop for 0.5 to 4 s (SIGSTOP), the network splits in
//! two, links are cut one way, lose datagrams in runs or turn slow, and members go
//! offline (`dereg`) and come back (`reg`). Then every fault ends: links heal, crashed
//! hosts start again from disk, members offline come back, pauses run out; and the room
//! gets up to 60 s to settle.
//!
//! Two nemeses: one that keeps at most a minority of the members impaired at once
//! (crashed, stopped, offline, or on the smaller side of a split), and one that may take
//! any number, a majority included, for a while.
//!
//! Then whole histories are checked. Safety: one leader and one ring
//! ([`Sim::check_converged`]); no sequence number with two entries over every process of
//! every host ([`Sim::check_no_fork`]); no message shown twice and one order, within each
//! process ([`Sim::check_order`]) and over all the processes of a host, which a restart
//! from disk carries on (its new process does not show again what its disk holds);
//! nothing lost: every message its sender was shown as its own (committed) is shown at
//! every live member from its first number on, by one of that host's processes (the
//! harness's [`Sim::check_committed_everywhere`] reads the current process only, which is
//! right for a host started afresh but not for one carried on from its disk; this is that
//! check with the host's earlier processes counted). Liveness: after the heal every host
//! is back in the room; every text typed into a process still running (accepted, not
//! refused) is committed, as a minority's waiting messages are once it is back; and a
//! fresh message is shown everywhere.

mod sim;

/// The checks over every process of a host (a restart from disk carries its predecessor on).
#[path = "sim_chaos/checks.rs"]
mod checks;
/// The failure report: what each host takes itself for.
#[path = "sim_chaos/report.rs"]
mod report;

use checks::{check_committed_across_restarts, check_order_across_restarts, unconfirmed};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use report::states;
use ringchat::proto::{Command, CommandError, Event};
use sim::{Link, Sim, for_listed_sims, for_sims};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const NAMES: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];

/// How many members the nemesis may impair at once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nemesis {
    /// At most a minority: a majority is always up, reachable and in the room.
    Minority,
    /// Anything, a majority included, for a while.
    Anything,
}

/// A fault of the network, undone by [`Sim::heal`] and applied again for those still on.
#[derive(Clone, Debug)]
enum LinkFault {
    /// Two sides that do not reach each other.
    Split(Vec<usize>, Vec<usize>),
    /// Everything from `a` to `b` lost.
    OneWay(usize, usize),
    /// Losses in runs from `a` to `b`.
    Runs(usize, usize, u32, u32),
    /// `a` to `b` takes `lo` to `hi`.
    Slow(usize, usize, Duration, Duration),
}

fn apply(sim: &mut Sim, f: &LinkFault) {
    note(sim, format_args!("link fault {f:?}"));
    match f {
        LinkFault::Split(l, r) => sim.partition(l, r),
        LinkFault::OneWay(a, b) => sim.drop(*a, *b, 100),
        LinkFault::Runs(a, b, pct, run) => sim.drop_runs(*a, *b, *pct, *run),
        LinkFault::Slow(a, b, lo, hi) => sim.slow(*a, *b, *lo, *hi),
    }
}

/// A host that went offline and is to come back: when, and what it had said when the
/// last `reg` was typed (a failed `reg` or a refused one is typed again).
struct Away {
    back_at: Duration,
    regged: Option<(usize, usize, Duration)>,
}

/// Says what the nemesis does, when one seed is replayed (`SIM_SEED`).
fn note(sim: &Sim, what: std::fmt::Arguments) {
    if std::env::var_os("SIM_SEED").is_some() {
        println!("NEMESIS t={} {what}", sim.elapsed().as_millis());
    }
}

fn count(sim: &Sim, i: usize, pred: impl Fn(&Event) -> bool) -> usize {
    sim.count_events(i, pred)
}

fn reg_failures(sim: &Sim, i: usize) -> usize {
    count(sim, i, |e| matches!(e, Event::RegFailed(_)))
}

fn errors(sim: &Sim, i: usize) -> usize {
    count(sim, i, |e| matches!(e, Event::Error(_)))
}

fn join_failed(sim: &Sim, i: usize) -> bool {
    count(sim, i, |e| matches!(e, Event::JoinFailed(_))) > 0
}

/// The faults under way, and the chat's own bookkeeping.
struct Nemeses {
    n: usize,
    kind: Nemesis,
    links: Vec<(Duration, LinkFault)>,
    crashed: BTreeMap<usize, Duration>,
    away: BTreeMap<usize, Away>,
    /// How many times each host crashed: a text typed into a process that crashed may be
    /// lost unless it was shown committed.
    incarnation: Vec<usize>,
    /// Faults begun, by kind, for the report.
    tally: BTreeMap<&'static str, usize>,
}

impl Nemeses {
    /// Hosts that do not count toward a majority now: down, stopped, outside the room, or
    /// on the smaller side of a split.
    fn impaired(&self, sim: &Sim) -> BTreeSet<usize> {
        let mut out: BTreeSet<usize> = (0..self.n)
            .filter(|&i| !sim.joined(i) || sim.is_paused(i) || self.away.contains_key(&i))
            .collect();
        for (_, f) in &self.links {
            if let LinkFault::Split(l, r) = f {
                let small = if l.len() <= r.len() { l } else { r };
                out.extend(small.iter().copied());
                if l.len() == r.len() {
                    out.extend(r.iter().copied());
                }
            }
        }
        out
    }

    /// Whether impairing `more` as well keeps within the nemesis's bound.
    fn allows(&self, sim: &Sim, more: &[usize]) -> bool {
        if self.kind == Nemesis::Anything {
            return true;
        }
        let mut set = self.impaired(sim);
        set.extend(more.iter().copied());
        set.len() <= (self.n - 1) / 2
    }

    fn relink(&self, sim: &mut Sim) {
        note(sim, format_args!("heal, then the link faults still on"));
        sim.heal();
        for (_, f) in &self.links {
            apply(sim, f);
        }
    }
}

/// The host that takes itself for the leader (the first found), if any.
fn self_leader(sim: &Sim) -> Option<usize> {
    sim.live()
        .into_iter()
        .find(|&i| sim.node(i).leader() == Some(sim.node(i).id()))
}

/// Ends every fault: links heal, crashed hosts start again from disk, a host whose start
/// failed starts again, members offline type `reg` (again, after a refusal or failure).
fn bring_back(sim: &mut Sim, nem: &mut Nemeses, now: Duration, all: bool) {
    if all && !nem.links.is_empty() {
        nem.links.clear();
        nem.relink(sim);
    }
    let due: Vec<usize> = nem
        .crashed
        .iter()
        .filter(|(_, at)| all || **at <= now)
        .map(|(&i, _)| i)
        .collect();
    for i in due {
        nem.crashed.remove(&i);
        note(sim, format_args!("restart {} from disk", NAMES[i]));
        sim.restart_from_disk(i);
    }
    // A process from disk that said it could not find the room: its user starts it again.
    for (i, name) in NAMES.iter().enumerate().take(nem.n) {
        if sim.is_up(i) && !sim.joined(i) && !nem.away.contains_key(&i) && join_failed(sim, i) {
            note(
                sim,
                format_args!("{name} failed to join: start it again from disk"),
            );
            sim.crash(i);
            nem.incarnation[i] += 1;
            sim.restart_from_disk(i);
        }
    }
    let away: Vec<usize> = nem.away.keys().copied().collect();
    for i in away {
        if sim.joined(i) && nem.away[&i].regged.is_some() {
            nem.away.remove(&i);
            continue;
        }
        let a = nem.away.get_mut(&i).unwrap();
        if !(all || a.back_at <= now) || sim.is_paused(i) {
            continue;
        }
        let again = match a.regged {
            None => true,
            Some((failed, refused, at)) => {
                (reg_failures(sim, i) > failed || errors(sim, i) > refused)
                    && now >= at + Duration::from_secs(1)
            }
        };
        if again {
            // A node that knows no member to come back through says so
            // (`CommandError::NoContact`); its user then names one, as the error asks.
            let no_contact = sim.hosts[i].events.iter().rev().find_map(|(_, e)| match e {
                Event::Error(err) => Some(matches!(err, CommandError::NoContact)),
                _ => None,
            }) == Some(true);
            let via = no_contact
                .then(|| (0..nem.n).find(|&j| j != i && sim.joined(j)))
                .flatten()
                .map(|j| sim.hosts[j].addr);
            a.regged = Some((reg_failures(sim, i), errors(sim, i), now));
            note(sim, format_args!("reg {} via {via:?}", NAMES[i]));
            sim.command(i, Command::Reg { name: None, via });
        }
    }
}

fn chaos_scenario(sim: &mut Sim, seed: u64, kind: Nemesis) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC4A0_5EED);
    let n = rng.random_range(3..=5);
    sim.persist = true;
    sim.default_link = Link::lan([0, 0, 2, 5][rng.random_range(0..4)]);
    sim.form_room(&mut rng, &NAMES[..n])?;
    if !sim.run_until(Duration::from_secs(10), |s| {
        s.leader().is_some_and(|l| s.node(l).voters().len() == n)
    }) {
        return Err("the room never had every member voting".into());
    }
    let window = Duration::from_millis(rng.random_range(20_000..=40_000));
    let start = sim.elapsed();
    let mut nem = Nemeses {
        n,
        kind,
        links: Vec::new(),
        crashed: BTreeMap::new(),
        away: BTreeMap::new(),
        incarnation: vec![0; n],
        tally: BTreeMap::new(),
    };
    // (host, incarnation, text, when) of every room message a process accepted.
    let mut typed: Vec<(usize, usize, String, Duration)> = Vec::new();
    let mut k = 0;
    while sim.elapsed() < start + window {
        let now = sim.elapsed();
        // Faults whose time is up end.
        let before = nem.links.len();
        nem.links.retain(|(end, _)| *end > now);
        if nem.links.len() != before {
            nem.relink(sim);
        }
        bring_back(sim, &mut nem, now, false);

        // Chat: a random member in the room, not stopped, types.
        let talkers: Vec<usize> = sim
            .live()
            .into_iter()
            .filter(|&i| !sim.is_paused(i) && !nem.away.contains_key(&i))
            .collect();
        if !talkers.is_empty() && rng.random_bool(0.7) {
            let from = talkers[rng.random_range(0..talkers.len())];
            k += 1;
            let text = format!("m{k} from {}", NAMES[from]);
            let refused = errors(sim, from);
            sim.send_all(from, text.clone());
            if errors(sim, from) == refused {
                typed.push((from, nem.incarnation[from], text, now));
            }
        }

        // A new fault, about one a second.
        if rng.random_bool(0.12) {
            let lasting = |rng: &mut StdRng, lo: u64, hi: u64| {
                now + Duration::from_millis(rng.random_range(lo..=hi))
            };
            // Half the process faults go to the leader, for failovers.
            let victim = match self_leader(sim) {
                Some(l) if rng.random_bool(0.5) => l,
                _ => rng.random_range(0..n),
            };
            let other = (victim + rng.random_range(1..n)) % n;
            match rng.random_range(0..100) {
                0..18 => {
                    if sim.is_up(victim)
                        && !nem.away.contains_key(&victim)
                        && nem.allows(sim, &[victim])
                    {
                        note(sim, format_args!("crash {}", NAMES[victim]));
                        sim.crash(victim);
                        nem.incarnation[victim] += 1;
                        nem.crashed.insert(victim, lasting(&mut rng, 500, 6000));
                        *nem.tally.entry("crash").or_default() += 1;
                    }
                }
                18..36 => {
                    if sim.is_up(victim) && nem.allows(sim, &[victim]) {
                        let d = Duration::from_millis(rng.random_range(500..=4000));
                        note(sim, format_args!("pause {} for {d:?}", NAMES[victim]));
                        sim.pause(victim, d);
                        *nem.tally.entry("pause").or_default() += 1;
                    }
                }
                36..50 => {
                    let mut hosts: Vec<usize> = (0..n).collect();
                    for j in (1..n).rev() {
                        hosts.swap(j, rng.random_range(0..=j));
                    }
                    let cut_at = rng.random_range(1..n);
                    let (l, r) = hosts.split_at(cut_at);
                    let small: Vec<usize> = if l.len() == r.len() {
                        hosts.clone()
                    } else if l.len() < r.len() {
                        l.to_vec()
                    } else {
                        r.to_vec()
                    };
                    if nem.allows(sim, &small) {
                        let f = LinkFault::Split(l.to_vec(), r.to_vec());
                        apply(sim, &f);
                        nem.links.push((lasting(&mut rng, 1000, 8000), f));
                        *nem.tally.entry("split").or_default() += 1;
                    }
                }
                50..62 => {
                    let f = LinkFault::OneWay(victim, other);
                    apply(sim, &f);
                    nem.links.push((lasting(&mut rng, 1000, 8000), f));
                    *nem.tally.entry("one-way cut").or_default() += 1;
                }
                62..76 => {
                    let (pct, run) = (rng.random_range(5..=40), rng.random_range(2..=16));
                    for f in [
                        LinkFault::Runs(victim, other, pct, run),
                        LinkFault::Runs(other, victim, pct, run),
                    ] {
                        apply(sim, &f);
                        nem.links.push((lasting(&mut rng, 1000, 10_000), f));
                    }
                    *nem.tally.entry("bursty loss").or_default() += 1;
                }
                76..88 => {
                    let lo = Duration::from_millis(rng.random_range(40..=300));
                    let hi = lo + Duration::from_millis(rng.random_range(0..=500));
                    for f in [
                        LinkFault::Slow(victim, other, lo, hi),
                        LinkFault::Slow(other, victim, lo, hi),
                    ] {
                        apply(sim, &f);
                        nem.links.push((lasting(&mut rng, 1000, 10_000), f));
                    }
                    *nem.tally.entry("slow link").or_default() += 1;
                }
                _ => {
                    // Someone stays in the room: with every member offline there is no
                    // room to come back to (`reg` asks the members it knew, and none
                    // welcomes it), by design.
                    let others_in =
                        (0..n).any(|j| j != victim && sim.joined(j) && !nem.away.contains_key(&j));
                    if sim.joined(victim)
                        && !sim.is_paused(victim)
                        && !nem.away.contains_key(&victim)
                        && others_in
                        && nem.allows(sim, &[victim])
                    {
                        note(sim, format_args!("dereg {}", NAMES[victim]));
                        sim.command(victim, Command::Dereg { name: None });
                        nem.away.insert(
                            victim,
                            Away {
                                back_at: lasting(&mut rng, 1000, 6000),
                                regged: None,
                            },
                        );
                        *nem.tally.entry("dereg").or_default() += 1;
                    }
                }
            }
        }
        sim.run_for(Duration::from_millis(rng.random_range(20..=150)));
    }

    // The heal: every fault ends; a pause runs out on its own (at most 4 s).
    let healed_at = sim.elapsed();
    note(sim, format_args!("the heal"));
    let faults = format!("{:?}", nem.tally);
    bring_back(sim, &mut nem, healed_at, true);
    let settled = |s: &Sim, nem: &Nemeses| {
        (0..n).all(|i| s.joined(i) && !s.is_paused(i))
            && nem.away.is_empty()
            && s.check_converged().is_ok()
            && check_committed_across_restarts(s).is_ok()
            && unconfirmed(s, &typed, &nem.incarnation).is_empty()
    };
    let limit = healed_at + Duration::from_secs(60);
    while sim.elapsed() < limit && !settled(sim, &nem) {
        sim.run_for(Duration::from_millis(50));
        let now = sim.elapsed();
        bring_back(sim, &mut nem, now, true);
    }

    // Safety, whatever happened after.
    let context = |sim: &Sim| {
        format!(
            "{n} members, {kind:?} nemesis for {:.1}s, faults {faults}, healed at {:.3}s, \
             now {:.3}s",
            window.as_secs_f64(),
            healed_at.as_secs_f64(),
            sim.elapsed().as_secs_f64()
        )
    };
    let safety = |sim: &Sim| -> Result<(), String> {
        sim.check_no_fork()?;
        sim.check_order()?;
        check_order_across_restarts(sim)
    };
    safety(sim).map_err(|e| format!("safety: {e} ({})", context(sim)))?;

    // Liveness: everyone back, one leader, nothing shown lost, nothing typed left behind.
    let out: Vec<&str> = (0..n)
        .filter(|&i| !sim.joined(i))
        .map(|i| NAMES[i])
        .collect();
    if !out.is_empty() {
        return Err(format!(
            "liveness: 60 s after the heal {out:?} not back in the room ({}) [{}]",
            context(sim),
            states(sim)
        ));
    }
    sim.check_converged().map_err(|e| {
        format!(
            "liveness: 60 s after the heal: {e} ({}) [{}]",
            context(sim),
            states(sim)
        )
    })?;
    check_committed_across_restarts(sim).map_err(|e| format!("lost: {e} ({})", context(sim)))?;
    let left = unconfirmed(sim, &typed, &nem.incarnation);
    if !left.is_empty() {
        return Err(format!(
            "liveness: {} typed texts never committed, first {:?} ({})",
            left.len(),
            &left[..left.len().min(3)],
            context(sim)
        ));
    }
    let from = rng.random_range(0..n);
    let text = format!("after the heal from {}", NAMES[from]);
    sim.send_all(from, text.clone());
    let sent_at = sim.elapsed();
    if !sim.run_until(Duration::from_secs(20), |s| {
        (0..n).all(|i| s.room_log(i).iter().any(|(_, t)| *t == text))
    }) {
        let missing: Vec<&str> = (0..n)
            .filter(|&i| !sim.room_log(i).iter().any(|(_, t)| *t == text))
            .map(|i| NAMES[i])
            .collect();
        return Err(format!(
            "liveness: {text:?} sent at {:.3}s not shown at {missing:?} 20 s later ({})",
            sent_at.as_secs_f64(),
            context(sim)
        ));
    }
    safety(sim).map_err(|e| format!("safety: {e} ({})", context(sim)))?;
    // A round may be under way right now (a member back from an older epoch starts one
    // above it, as it must): one leader again within 5 s.
    if !sim.run_until(Duration::from_secs(5), |s| s.check_converged().is_ok()) {
        sim.check_converged()
            .map_err(|e| format!("liveness: {e} ({})", context(sim)))?;
    }
    safety(sim).map_err(|e| format!("safety: {e} ({})", context(sim)))?;
    check_committed_across_restarts(sim).map_err(|e| format!("lost: {e} ({})", context(sim)))
}

/// Default seeds per test (`SIM_SEEDS` for more).
const SEEDS: u64 = 100;

/// Seeds that once failed are run too. 444: a member held a restarted member's earlier
/// process offline for good; the leader had let the new one in while it was cut off,
/// and only the leader may tell of a new member (neighbours told it in vain). Now a
/// node told of a member it never heard of asks its leader for the table. 1880091 and
/// 1880645 failed the same way. 152, 991, 1880208, 1880214, 1880380, 1880499, 1880591,
/// 1880691, 1880716: groups that did not find each other after the heal, before a node
/// that asked the voters in vain knocked on known addresses. 1880691 again, once the
/// first fix changed its timing: the leader of two voters deregistered while the other
/// was cut off, went still a voter, and the other passed its `reg` back to it for good;
/// now a member challenges its own leader asking in, and takes its proof as its yes to
/// a round.
///
/// 590 and 1880224: two leaders of one term after the heal, one that won its round
/// alone and never sequenced there refusing the other's welcome of the same term; now it
/// gives way, and so do the members that followed it (`Node::yields_term_to`).
///
/// 1533 and 2576: a leader restarted under a new id looked for the room through a member
/// that still followed its earlier process, which passed the join to the leader's
/// address, where the new process takes none; now a member challenges its leader's user
/// asking in from the leader's address, as the leader itself back by `reg` (1880691).
///
/// 1880420: a removal of the last voter, proposed by a leader of term 3 on a branch of
/// the log that lost, held after term 5's removal of another: counted, the log named no
/// voter and nothing could commit or be elected again. Now such a change is not counted
/// and a take-over fills its number (`fill_changes_leaving_no_voter`).
///
/// 1880441 (and 1880091 again, with an attempt since reverted): a member whose leader
/// was gone dropped every datagram of a voter's new process that another leader had let
/// in, so no round could end; now it asks the process to prove itself (`life/proven.rs`).
/// 3843 passes since the welcome names every voter (see majority seed 3722 below).
///
/// 1881786: a fork. A deposed leader's own message waited in a member's staging for its
/// origin's seal, and once proven was taken as another member's committed copy, at the
/// number where the next leader had committed a change; now only a copy sent as
/// committed is taken from a member that is not our leader.
///
/// Open: none of the minority nemesis in seeds 0 to 5 000 and 1880000 to 1881800.
#[test]
fn a_room_losing_a_minority_at_a_time_keeps_one_history_and_goes_on() {
    for_sims(
        "a_room_losing_a_minority_at_a_time_keeps_one_history_and_goes_on",
        SEEDS,
        |sim, seed| chaos_scenario(sim, seed, Nemesis::Minority),
    );
    for_listed_sims(
        &[
            152, 444, 590, 991, 1533, 2576, 3843, 1880091, 1880208, 1880214, 1880224, 1880380,
            1880420, 1880441, 1880499, 1880591, 1880645, 1880691, 1880716, 1881786,
        ],
        |sim, seed| chaos_scenario(sim, seed, Nemesis::Minority),
    );
}

/// Seeds that once failed are run too: 620 as 444 above; 72, 96, 177, 212, 293, 514,
/// 548, 649 and 696 before knocking; 545, 643, 693 and 1129 as 590 above (in 693 a member
/// also followed the leader that gave way: now that leader's beat, naming the other
/// leader of the term, sends it there too); 2669 as minority seed 1880420 above; 1940
/// as minority seed 1880441 above. 3722 was a fork: a leader restarted with one saved
/// member welcomed a member into a configuration of that member alone (the welcome's
/// voter bits covered only members of its table); now such voters are named.
///
/// 3663, 4318, 4656, 4923, 1880026, 1880214 and 1881272: a member back from `dereg`
/// held a restarted member's earlier process online for good. Its welcome listed the new
/// process online at that address, which drops any other held there, but the leader the
/// member followed before was spared, and that was the earlier process; now the leader
/// spared is the one welcoming it. 3235 and 3315: two leaders for good, each holding
/// the other's followers' new processes unknown, so every election token was dropped on
/// the way round; now any member's new process proves itself, not only a voter's
/// (`life/proven.rs`). 1774: a leader took a restarted member's answer to its join's
/// challenge for a bad answer to its own earlier challenge of that process, every time;
/// now it goes on to the join's check. 1881168 (found with those changes, passing
/// before them): a leader that won its term alone gave way to the other leader of the
/// term, and a member it had let in meanwhile, whose ring predecessor was not that
/// leader, never heard of it and followed a leader of nothing for good; now a leader
/// giving way beats once to every member, naming the leader it follows. 5063 was a fork:
/// a take-over whose log, merged from two branches, held two changes counted majorities
/// in the committed configuration and the last, not the one between, whose majority
/// alone held what a leader had committed in it; now a configuration where the log
/// switches branch needs its majority too.
///
/// Open (liveness after the heal: live members that follow different leaders; every run
/// keeps one history: no fork, nothing committed lost): 3722 of seeds 0 to 5 000 (two
/// members each unknown to the other). A bug still to find, not a limit.
#[test]
fn a_room_losing_a_majority_for_a_while_keeps_one_history_and_goes_on_after_the_heal() {
    for_sims(
        "a_room_losing_a_majority_for_a_while_keeps_one_history_and_goes_on_after_the_heal",
        SEEDS,
        |sim, seed| chaos_scenario(sim, seed, Nemesis::Anything),
    );
    for_listed_sims(
        &[
            72, 96, 177, 212, 293, 514, 545, 548, 620, 643, 649, 693, 696, 1129, 1774, 1940, 2669,
            3235, 3315, 3663, 4318, 4656, 4923, 5063, 1880026, 1880214, 1881168, 1881272,
        ],
        |sim, seed| chaos_scenario(sim, seed, Nemesis::Anything),
    );
}
