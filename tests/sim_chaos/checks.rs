//! Whole-history checks of the mixed-fault simulation taken over every process of each
//! host: a process started from disk carries its predecessor's log on.

use super::NAMES;
use super::sim::Sim;
use ringchat::proto::Event;
use std::collections::BTreeSet;
use std::time::Duration;

/// Every room message each host showed, over all its processes, in order.
pub fn whole_log(sim: &Sim, i: usize) -> Vec<(String, String)> {
    let h = &sim.hosts[i];
    h.past_events
        .iter()
        .chain(&h.events)
        .filter_map(|(_, e)| match e {
            Event::Room { entry, .. } if !entry.is_filler() => {
                Some((entry.name.clone(), entry.text.clone()))
            }
            _ => None,
        })
        .collect()
}

/// [`Sim::check_order`] over all the processes of each live host: a process started from
/// disk carries on its predecessor's log, so no message is shown twice across them either,
/// and any two messages appear in one order at every host that showed both.
pub fn check_order_across_restarts(sim: &Sim) -> Result<(), String> {
    let live = sim.live();
    let logs: Vec<Vec<(String, String)>> = live.iter().map(|&i| whole_log(sim, i)).collect();
    for (k, log) in logs.iter().enumerate() {
        let unique: BTreeSet<&(String, String)> = log.iter().collect();
        if unique.len() != log.len() {
            let mut seen = BTreeSet::new();
            let twice = log.iter().find(|m| !seen.insert(*m));
            return Err(format!(
                "{} showed {twice:?} twice over its processes",
                sim.hosts[live[k]].name
            ));
        }
    }
    for (a, la) in logs.iter().enumerate() {
        for (b, lb) in logs.iter().enumerate().skip(a + 1) {
            let sa: BTreeSet<&(String, String)> = la.iter().collect();
            let sb: BTreeSet<&(String, String)> = lb.iter().collect();
            let ca: Vec<_> = la.iter().filter(|m| sb.contains(m)).collect();
            let cb: Vec<_> = lb.iter().filter(|m| sa.contains(m)).collect();
            if ca != cb {
                let at = ca.iter().zip(&cb).position(|(x, y)| x != y);
                return Err(format!(
                    "{} and {} show common messages in different orders (first difference at \
                     common message {at:?}: {:?} / {:?})",
                    sim.hosts[live[a]].name,
                    sim.hosts[live[b]].name,
                    at.map(|p| ca[p]),
                    at.map(|p| cb[p]),
                ));
            }
        }
    }
    Ok(())
}

/// [`Sim::check_committed_everywhere`] with each host's processes taken together: every
/// room message its sender was shown as its own (in any process) is shown at every live
/// host, by some process of it, if numbered at or after the first number the host's
/// current process holds (a process started from disk holds its predecessors' numbers).
pub fn check_committed_across_restarts(sim: &Sim) -> Result<(), String> {
    let mut committed = Vec::new();
    for h in &sim.hosts {
        for (t, e) in h.past_events.iter().chain(&h.events) {
            if let Event::Room {
                entry, mine: true, ..
            } = e
            {
                committed.push((entry.seq, *t, (entry.name.clone(), entry.text.clone())));
            }
        }
    }
    for i in sim.live() {
        let shown: BTreeSet<(String, String)> = whole_log(sim, i).into_iter().collect();
        let first = sim.node(i).first_seq();
        if let Some((seq, t, m)) = committed
            .iter()
            .find(|(seq, _, m)| *seq >= first && !shown.contains(m))
        {
            return Err(format!(
                "{} never showed committed message {m:?} (#{}, shown to its sender at {:.3}s)",
                sim.hosts[i].name,
                seq.0,
                t.as_secs_f64()
            ));
        }
    }
    Ok(())
}

/// Texts typed into a process still running (accepted, not refused) that its sender was
/// not shown as its own.
pub fn unconfirmed(
    sim: &Sim,
    typed: &[(usize, usize, String, Duration)],
    incarnation: &[usize],
) -> Vec<String> {
    let mut mine: BTreeSet<(usize, &str)> = BTreeSet::new();
    for (i, h) in sim.hosts.iter().enumerate() {
        for (_, e) in &h.events {
            if let Event::Room {
                entry, mine: true, ..
            } = e
            {
                mine.insert((i, entry.text.as_str()));
            }
        }
    }
    typed
        .iter()
        .filter(|(i, inc, text, _)| incarnation[*i] == *inc && !mine.contains(&(*i, text.as_str())))
        .map(|(i, _, text, at)| format!("{text} by {} at {:.3}s", NAMES[*i], at.as_secs_f64()))
        .collect()
}
