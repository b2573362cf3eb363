//! Nodes behind their guards: real nodes, each behind a real `Guard` with sessions, in
//! virtual time, wired as `driver.rs` wires them (the member table goes to the guard
//! before the node's datagrams go out; a datagram opened in a session goes to
//! `handle_datagram`, any other to `handle_outside_datagram`). What only shows with both
//! (acks a joining node sends outside sessions, say) is tested here.

use super::*;
use crate::guard::Guard;

/// A room of real nodes, each behind a real guard with sessions (or, as a control,
/// without guards), in virtual time.
struct GRoom {
    nodes: Vec<Node>,
    guards: Vec<Guard>,
    known: Vec<Option<(u64, bool)>>,
    now: Instant,
    events: Vec<(usize, Event)>,
    /// Whether datagrams go through the guards at all (else straight to handle_datagram).
    guarded: bool,
    /// A node drained after every single datagram it takes (datagrams arriving apart).
    one_by_one: Option<usize>,
    /// (from, to, message kind) of every data packet a node sent (first sends and resends).
    sent: Vec<(usize, SocketAddr, Message)>,
    /// Unguarded: the nodes' datagrams as they are.
    plain_out: Vec<(usize, SocketAddr, Vec<u8>)>,
}

impl GRoom {
    fn new(guarded: bool, others: &[&str]) -> GRoom {
        let mut r = GRoom {
            nodes: Vec::new(),
            guards: Vec::new(),
            known: Vec::new(),
            now: base_time(),
            events: Vec::new(),
            guarded,
            one_by_one: None,
            sent: Vec::new(),
            plain_out: Vec::new(),
        };
        r.add("alice", None);
        for name in others {
            r.add(name, Some(addr(1)));
            let i = r.nodes.len() - 1;
            r.run_until(&format!("{name} in"), |r| r.nodes[i].in_ring());
        }
        r.run_for(Duration::from_secs(2));
        r
    }

    fn add(&mut self, name: &str, join: Option<SocketAddr>) {
        let port = self.nodes.len() as u16 + 1;
        let cfg = NodeConfig::new(name, addr(port), join);
        let identity = cfg.identity;
        let id = NodeId(1000 + u64::from(port));
        self.nodes.push(Node::new(cfg, id, self.now));
        self.guards
            .push(Guard::new(id, None, 1_000_000).with_identity(&identity));
        self.known.push(None);
    }

    /// As `driver::drain`: the table to the guard, then the node's datagrams through it.
    fn drain_node(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let state = (n.members().digest(), n.is_outside_room());
        if self.known[i] != Some(state) {
            self.known[i] = Some(state);
            self.guards[i].set_table(state.1, n.members().entries());
        }
        while let Some(t) = n.poll_transmit() {
            if let Ok(env) = decode(&t.bytes) {
                for p in env.packets {
                    if let Packet::Data { msg, .. } = p {
                        self.sent.push((i, t.to, msg));
                    }
                }
            }
            if self.guarded {
                self.guards[i].send(now, t.to, &t.bytes);
            } else {
                self.plain_out.push((i, t.to, t.bytes));
            }
        }
        while let Some(e) = n.poll_event() {
            self.events.push((i, e));
        }
    }

    fn deliver(&mut self, from: usize, to: SocketAddr, bytes: &[u8]) {
        let now = self.now;
        let j = usize::from(to.port()) - 1;
        if j >= self.nodes.len() {
            return;
        }
        let src = addr(from as u16 + 1);
        if !self.guarded {
            self.nodes[j].handle_datagram(now, src, bytes);
        } else {
            match self.guards[j].receive(now, src, bytes) {
                Ok(Some(o)) if o.in_session => self.nodes[j].handle_datagram(now, src, &o.plain),
                Ok(Some(o)) => self.nodes[j].handle_outside_datagram(now, src, &o.plain),
                Ok(None) | Err(_) => {}
            }
        }
        if self.one_by_one == Some(j) {
            self.drain_node(j);
        }
    }

    fn step(&mut self) {
        self.now += Duration::from_millis(50);
        let now = self.now;
        for i in 0..self.nodes.len() {
            self.guards[i].handle_timeout(now);
            if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[i].handle_timeout(now);
            }
        }
        for round in 0.. {
            assert!(round < 200, "kept talking");
            for i in 0..self.nodes.len() {
                self.drain_node(i);
            }
            let mut wire = Vec::new();
            for i in 0..self.nodes.len() {
                if self.guarded {
                    while let Some((to, b)) = self.guards[i].poll_transmit() {
                        wire.push((i, to, b));
                    }
                }
            }
            wire.append(&mut self.plain_out);
            if wire.is_empty() {
                break;
            }
            for (i, to, b) in wire {
                self.deliver(i, to, &b);
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    #[track_caller]
    fn run_until(&mut self, what: &str, done: impl Fn(&GRoom) -> bool) {
        let end = self.now + Duration::from_secs(60);
        while !done(self) {
            assert!(self.now < end, "no {what} within a minute");
            self.step();
        }
    }

    fn count_sent(&self, from: usize, to: usize, want: impl Fn(&Message) -> bool) -> usize {
        let to = addr(to as u16 + 1);
        self.sent
            .iter()
            .filter(|(f, t, m)| *f == from && *t == to && want(m))
            .count()
    }
}

/// A room forms through the guards, sessions and all.
#[test]
fn a_room_forms_through_the_guards() {
    let r = GRoom::new(true, &["bob", "carol"]);
    assert!(r.nodes.iter().all(Node::in_ring));
}

/// A newcomer takes a welcome in parts (eight entries or more), its datagrams arriving
/// apart. It acks the first parts while still joining, so its guard sends those acks
/// outside a session: they settle the parts all the same (a welcome's acks may come
/// outside a session), and no part is sent again. Against the same room without guards.
#[test]
fn welcome_parts_acked_while_joining_are_not_sent_again() {
    // Names of 24 bytes: a part of the welcome (7 entries) fills most of a datagram.
    let names: Vec<String> = (1..20)
        .map(|i| format!("member-number-{i:02}-abcdefghijklmno"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for guarded in [false, true] {
        let mut r = GRoom::new(guarded, &names);
        let z = r.nodes.len();
        r.add("ivan", Some(addr(1)));
        r.one_by_one = Some(z);
        r.run_until("ivan in", |r| r.nodes[z].in_ring());
        r.run_for(Duration::from_secs(5));
        let welcomes = r.count_sent(0, z, |m| matches!(m, Message::Welcome(_)));
        let parts = match r.sent.iter().find_map(|(f, t, m)| match m {
            Message::Welcome(w) if *f == 0 && *t == addr(z as u16 + 1) => Some(w.parts),
            _ => None,
        }) {
            Some(p) => usize::from(p),
            None => panic!("no welcome"),
        };
        assert!(parts >= 2, "a welcome in parts");
        assert_eq!(
            welcomes, parts,
            "guarded={guarded}: welcome parts sent again"
        );
    }
}
