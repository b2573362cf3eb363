//! The failure report of the mixed-fault simulation: what each host takes itself for.

use super::sim::Sim;
use ringchat::proto::Event;

/// What each host takes itself for, for a failure's message: its leader, whether it
/// sequences, its voters, and the last notice it gave its user.
pub fn states(sim: &Sim) -> String {
    let name_of = |id| {
        (0..sim.hosts.len())
            .find(|&j| sim.is_up(j) && sim.node(j).id() == id)
            .map_or_else(|| format!("{id}"), |j| sim.hosts[j].name.clone())
    };
    (0..sim.hosts.len())
        .map(|i| {
            let h = &sim.hosts[i];
            if !sim.is_up(i) {
                return format!("{}: down", h.name);
            }
            let n = sim.node(i);
            let notice = h.events.iter().rev().find_map(|(t, e)| match e {
                Event::Notice(s) => Some(format!("{:.1}s {s:?}", t.as_secs_f64())),
                _ => None,
            });
            format!(
                "{}: {}{}, leader {}, voters {:?}, log voters {:?}, table {:?}, last notice {}",
                h.name,
                if sim.joined(i) { "in" } else { "OUT" },
                if n.is_sequencing() { " SEQUENCING" } else { "" },
                n.leader().map_or("none".into(), name_of),
                n.voters(),
                n.log_voters(),
                n.members()
                    .entries()
                    .map(|m| format!("{}:{:?}", m.name, m.presence))
                    .collect::<Vec<_>>(),
                notice.unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
