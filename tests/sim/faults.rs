//! The faults a test inflicts, in the words of raft-rs's test harness: processes crash,
//! restart and pause; links are cut, partitioned, lossy (in runs too), and healed.

use super::Sim;
use rand::RngExt;
use ringchat::ids::NodeId;
use ringchat::proto::Node;
use std::time::Duration;

impl Sim {
    /// Crashes host `i`: its process and all it held in memory are gone; datagrams to it
    /// vanish until it restarts. Its events so far move to [`Host::past_events`].
    ///
    /// [`Host::past_events`]: super::Host::past_events
    pub fn crash(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        host.node = None;
        host.paused_until = None;
        host.backlog.clear();
        host.backlog_bytes = 0;
        let events = std::mem::take(&mut host.events);
        host.past_events.extend(events);
    }

    /// Restarts crashed host `i` as a new process joining through `via`.
    pub fn restart(&mut self, i: usize, via: usize) {
        let contact = self.hosts[via].addr;
        self.spawn(i, Some(contact));
    }

    /// Restarts crashed host `i` as a new process from what its disk holds, with no
    /// contact given: it finds the room through the members it saved.
    pub fn restart_from_disk(&mut self, i: usize) {
        let cfg = self.config(i, None);
        let id = NodeId(self.rng.random());
        let saved = self.hosts[i].disk.clone();
        self.hosts[i].node = Some(Node::restore(cfg, id, self.now, saved));
        self.hosts[i].restored = true;
        self.flush(i);
    }

    /// Pauses host `i` for `d` of virtual time, as SIGSTOP, a long garbage-collection pause
    /// or a closed laptop lid do: its process gets no input at all meanwhile, neither
    /// datagrams nor timeouts nor commands (a command given meanwhile is lost). Datagrams
    /// addressed to it queue in its socket as in a stopped process's receive buffer, up to
    /// [`Sim::socket_buffer`] bytes; the rest are dropped and counted in
    /// [`Sim::overflowed`]. When the pause ends the process is handed the whole backlog at
    /// once, oldest first, and its next timeout fires with the clock jumped by the pause.
    /// Pausing a paused host extends the pause to whichever end is later; a crashed host
    /// has nothing to pause.
    pub fn pause(&mut self, i: usize, d: Duration) {
        let until = self.now + d;
        let host = &mut self.hosts[i];
        if host.node.is_some() {
            host.paused_until = Some(host.paused_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Whether host `i` is paused ([`Sim::pause`]).
    pub fn is_paused(&self, i: usize) -> bool {
        self.hosts[i].paused_until.is_some()
    }

    /// Host `i`'s pause ends: its process takes the backlog, at once.
    pub(super) fn resume(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        host.paused_until = None;
        host.backlog_bytes = 0;
        let backlog = std::mem::take(&mut host.backlog);
        for p in backlog {
            self.take_datagram(i, p.from, &p.bytes);
        }
    }

    /// Cuts both directions between `a` and `b`. Datagrams already in flight still arrive.
    pub fn cut(&mut self, a: usize, b: usize) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts `a` off from every other host.
    pub fn isolate(&mut self, a: usize) {
        let others: Vec<usize> = (0..self.hosts.len()).filter(|&b| b != a).collect();
        self.partition(&[a], &others);
    }

    /// Splits the network: cuts every pair of one host in `left` and one in `right`
    /// ([`Sim::cut`]); hosts on one side still reach each other.
    pub fn partition(&mut self, left: &[usize], right: &[usize]) {
        for &a in left {
            for &b in right {
                self.cut(a, b);
            }
        }
    }

    /// Removes every cut and per-link override ([`Sim::drop`], [`Sim::drop_runs`]).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.links.clear();
        self.runs.clear();
        self.burst_left.clear();
    }

    /// Loses datagrams from `a` to `b` in runs: `pct` percent of them start a run of 1 to
    /// `run` lost in a row (as a full queue or a rate limiter loses them), so about
    /// `pct * (run + 1) / 2` percent are lost. One direction only; [`Sim::heal`] undoes it.
    pub fn drop_runs(&mut self, a: usize, b: usize, pct: u32, run: u32) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        let mut l = self
            .links
            .get(&(a, b))
            .copied()
            .unwrap_or(self.default_link);
        l.loss = pct;
        self.links.insert((a, b), l);
        self.runs.insert((a, b), run);
    }

    /// Loses `pct` percent of the datagrams from `a` to `b`: one direction only; the link's
    /// other settings stay. [`Sim::heal`] undoes it.
    pub fn drop(&mut self, a: usize, b: usize, pct: u32) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        let mut l = self
            .links
            .get(&(a, b))
            .copied()
            .unwrap_or(self.default_link);
        l.loss = pct;
        self.links.insert((a, b), l);
        self.runs.remove(&(a, b));
    }
}

impl Sim {
    /// Datagrams from `a` to `b` take `lo` to `hi` (one direction only; [`Sim::heal`]
    /// undoes it).
    #[allow(dead_code)]
    pub fn slow(&mut self, a: usize, b: usize, lo: Duration, hi: Duration) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        let mut l = self
            .links
            .get(&(a, b))
            .copied()
            .unwrap_or(self.default_link);
        l.latency = (lo, hi);
        self.links.insert((a, b), l);
    }
}
