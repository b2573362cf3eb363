//! What a test reads of a run, and the properties it checks of whole histories.

use super::Sim;
use ringchat::ids::{NodeId, Seq};
use ringchat::proto::Event;
use ringchat::wire::ChatEntry;
use std::collections::{BTreeMap, BTreeSet};

impl Sim {
    /// Every one of the first `n` hosts showed `count` room messages whose text starts
    /// with `prefix` (sent `when`, for the error).
    pub fn check_all_showed(
        &self,
        n: usize,
        prefix: &str,
        count: usize,
        when: &str,
    ) -> Result<(), String> {
        for (i, host) in self.hosts.iter().enumerate().take(n) {
            let got = self
                .room_log(i)
                .iter()
                .filter(|(_, t)| t.starts_with(prefix))
                .count();
            if got != count {
                return Err(format!("{} showed {got}/{count} {when}", host.name));
            }
        }
        Ok(())
    }

    /// The room messages host `i` showed, as `(sender name, text)`, in order.
    pub fn room_log(&self, i: usize) -> Vec<(String, String)> {
        self.hosts[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Room { entry, .. } => Some((entry.name.clone(), entry.text.clone())),
                _ => None,
            })
            .collect()
    }

    /// The private messages host `i` received and showed, as `(sender name, text)`, in order.
    pub fn direct_log(&self, i: usize) -> Vec<(String, String)> {
        self.hosts[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Direct {
                    from,
                    text,
                    mine: false,
                    ..
                } => Some((from.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    /// Checks that the live hosts agree on one live leader and form one ring.
    pub fn check_converged(&self) -> Result<(), String> {
        let live = self.live();
        let ids: BTreeSet<NodeId> = live.iter().map(|&i| self.node(i).id()).collect();
        let leaders: BTreeSet<Option<NodeId>> =
            live.iter().map(|&i| self.node(i).leader()).collect();
        if leaders.len() != 1 {
            return Err(format!("live members disagree on the leader: {leaders:?}"));
        }
        let leader = leaders.into_iter().next().flatten().ok_or("no leader")?;
        if !ids.contains(&leader) {
            return Err(format!("leader {leader} is not a live member"));
        }
        let leading = live
            .iter()
            .filter(|&&i| self.node(i).is_sequencing())
            .count();
        if leading != 1 {
            return Err(format!("{leading} live members are sequencing"));
        }
        for &i in &live {
            let online: BTreeSet<NodeId> = self
                .node(i)
                .members()
                .online_peers()
                .map(|m| m.id)
                .chain([self.node(i).id()])
                .collect();
            if online != ids {
                return Err(format!(
                    "{} sees {} online, {} are live",
                    self.hosts[i].name,
                    online.len(),
                    ids.len()
                ));
            }
        }
        Ok(())
    }

    /// Checks that no live host showed a room message twice and that any two messages
    /// two hosts both showed appear in the same order at both.
    pub fn check_order(&self) -> Result<(), String> {
        self.check_order_among(|_| true)
    }

    /// [`Sim::check_order`] restricted to messages whose text satisfies `keep`.
    pub fn check_order_among(&self, keep: impl Fn(&str) -> bool) -> Result<(), String> {
        let live = self.live();
        for &i in &live {
            let log = self.room_log(i);
            let unique: BTreeSet<&(String, String)> = log.iter().collect();
            if unique.len() != log.len() {
                return Err(format!("{} showed a message twice", self.hosts[i].name));
            }
        }
        for &a in &live {
            for &b in &live {
                let la: Vec<_> = self
                    .room_log(a)
                    .into_iter()
                    .filter(|m| keep(&m.1))
                    .collect();
                let lb: Vec<_> = self
                    .room_log(b)
                    .into_iter()
                    .filter(|m| keep(&m.1))
                    .collect();
                let sa: BTreeSet<&(String, String)> = la.iter().collect();
                let sb: BTreeSet<&(String, String)> = lb.iter().collect();
                let common_a: Vec<_> = la.iter().filter(|m| sb.contains(m)).collect();
                let common_b: Vec<_> = lb.iter().filter(|m| sa.contains(m)).collect();
                if common_a != common_b {
                    return Err(format!(
                        "{} and {} show common messages in different orders",
                        self.hosts[a].name, self.hosts[b].name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks that every room message whose sender saw it committed (in any incarnation)
    /// is shown at every live host that was in the room when it was sequenced (by the
    /// host's current process, or by an earlier one if the current one started again
    /// from its disk).
    pub fn check_committed_everywhere(&self) -> Result<(), String> {
        self.check_committed(false).map(|_| ())
    }

    /// [`Sim::check_committed_everywhere`], except that a message is allowed to be missing
    /// at a host whose history holds a filler under its number: the known limit where every
    /// holder of a message was offline when the leader died (README, "Known limits").
    /// Returns how many such cases it let pass.
    pub fn check_committed_except_filled(&self) -> Result<usize, String> {
        self.check_committed(true)
    }

    fn check_committed(&self, allow_filled: bool) -> Result<usize, String> {
        let mut filled = 0;
        let mut committed = Vec::new();
        for h in &self.hosts {
            for (_, e) in h.past_events.iter().chain(&h.events) {
                if let Event::Room {
                    entry, mine: true, ..
                } = e
                {
                    committed.push((entry.seq, (entry.name.clone(), entry.text.clone())));
                }
            }
        }
        for i in self.live() {
            let mut shown: BTreeSet<(String, String)> = self.room_log(i).into_iter().collect();
            let h = &self.hosts[i];
            if h.restored {
                // What its earlier processes showed, its user saw (and its database keeps),
                // and the current one shows none of it again.
                for (_, e) in &h.past_events {
                    if let Event::Room { entry, .. } = e
                        && !shown.insert((entry.name.clone(), entry.text.clone()))
                    {
                        return Err(format!(
                            "{} showed {:?} again after starting from its disk",
                            h.name, entry.text
                        ));
                    }
                }
            }
            let first = self.node(i).first_seq();
            let filler_at = |seq: Seq| {
                self.node(i)
                    .history()
                    .range(seq, seq)
                    .any(|e| e.is_filler())
            };
            let mut missing = None;
            for (seq, m) in &committed {
                if *seq >= first && !shown.contains(m) {
                    if allow_filled && filler_at(*seq) {
                        filled += 1;
                    } else {
                        missing = Some(m);
                        break;
                    }
                }
            }
            if let Some(m) = missing {
                return Err(format!(
                    "{} never showed committed message {m:?}",
                    self.hosts[i].name
                ));
            }
        }
        Ok(filled)
    }

    /// Checks that no sequence number ever stood for two different entries: over every
    /// room message any process of any host showed, and every entry (fillers too) in the
    /// histories the live hosts keep.
    pub fn check_no_fork(&self) -> Result<(), String> {
        let mut at: BTreeMap<Seq, (&ChatEntry, &str)> = BTreeMap::new();
        let shown = self.hosts.iter().flat_map(|h| {
            h.past_events
                .iter()
                .chain(&h.events)
                .filter_map(move |(_, e)| match e {
                    Event::Room { entry, .. } => Some((entry, h.name.as_str())),
                    _ => None,
                })
        });
        let kept = self.live().into_iter().flat_map(|i| {
            let name = self.hosts[i].name.as_str();
            self.node(i).history().iter().map(move |e| (e, name))
        });
        for (entry, host) in shown.chain(kept) {
            let (first, first_host) = *at.entry(entry.seq).or_insert((entry, host));
            if (first.origin, first.origin_seq) != (entry.origin, entry.origin_seq) {
                return Err(format!(
                    "sequence number {} forked: {:?} from {} at {first_host}, {:?} from {} at {host}",
                    entry.seq.0, first.text, first.name, entry.text, entry.name
                ));
            }
        }
        Ok(())
    }

    /// Checks whole histories once the faults are over: one leader agreed by every live
    /// host and one ring ([`Sim::check_converged`]); no sequence number with two entries
    /// ([`Sim::check_no_fork`]); no message shown twice by a host, and one order
    /// everywhere ([`Sim::check_order`]); every message its sender was shown as its own
    /// shown at every live host ([`Sim::check_committed_everywhere`]).
    pub fn check_histories(&self) -> Result<(), String> {
        self.check_converged()?;
        self.check_no_fork()?;
        self.check_order()?;
        self.check_committed_everywhere()
    }

    /// Prints every host's events (for replaying a failing seed with `--nocapture`).
    pub fn dump(&self) {
        for h in &self.hosts {
            println!("== {} {}", h.name, h.addr);
            for (t, e) in &h.past_events {
                println!("  {:>8.3}s (before crash) {e:?}", t.as_secs_f64());
            }
            for (t, e) in &h.events {
                println!("  {:>8.3}s {e:?}", t.as_secs_f64());
            }
        }
    }

    /// Host `i`'s events matching `pred`.
    pub fn count_events(&self, i: usize, pred: impl Fn(&Event) -> bool) -> usize {
        self.hosts[i].events.iter().filter(|(_, e)| pred(e)).count()
    }
}
