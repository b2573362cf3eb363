//! The faults a test inflicts: lossy and cut links, crashed and restarted processes.

use super::Sim;
use rand::RngExt;
use ringchat::ids::NodeId;
use ringchat::proto::Node;

impl Sim {
    /// Restarts crashed host `i` as a new process from what its disk holds, with no
    /// contact given: it finds the room through the members it saved.
    pub fn restart_from_disk(&mut self, i: usize) {
        let cfg = self.config(i, None);
        let id = NodeId(self.rng.random());
        let saved = self.hosts[i].disk.clone();
        self.hosts[i].node = Some(Node::restore(cfg, id, self.now, saved));
        self.flush(i);
    }

    /// Sets loss percent on the link from `a` to `b`.
    pub fn drop(&mut self, a: usize, b: usize, pct: u32) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        let mut l = self
            .links
            .get(&(a, b))
            .copied()
            .unwrap_or(self.default_link);
        l.loss = pct;
        self.links.insert((a, b), l);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: usize, b: usize) {
        let (a, b) = (self.hosts[a].addr, self.hosts[b].addr);
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts `a` off from every other host.
    pub fn isolate(&mut self, a: usize) {
        for b in 0..self.hosts.len() {
            if b != a {
                self.cut(a, b);
            }
        }
    }

    /// Removes every cut and per-link override.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.links.clear();
    }

    /// Crashes host `i`: its state is gone, datagrams to it vanish.
    pub fn crash(&mut self, i: usize) {
        self.hosts[i].node = None;
        let events = std::mem::take(&mut self.hosts[i].events);
        self.hosts[i].past_events.extend(events);
    }

    /// Restarts crashed host `i` as a new process joining through `via`.
    pub fn restart(&mut self, i: usize, via: usize) {
        let contact = self.hosts[via].addr;
        self.spawn(i, Some(contact));
    }
}
