//! Departed members age out of the member table (see `ring/departed.rs`): the leader
//! drops those offline for `forget_after` that nobody holds messages for, every member
//! follows, and a departed user who comes back just joins again. Real nodes passing
//! datagrams in virtual time.

use super::membership::exchange;
use super::*;

/// How long departed members stay in these tests.
const FORGET_AFTER: Duration = Duration::from_secs(5);

/// A room of real nodes, node i at port i + 1, and the virtual time.
struct Room {
    nodes: Vec<Node>,
    now: Instant,
}

impl Room {
    /// Alice creates the room at port 1; `others` join through her, one after another.
    fn new(others: &[&str]) -> Room {
        let now = base_time();
        let mut room = Room {
            nodes: Vec::new(),
            now,
        };
        room.add("alice", None);
        for name in others {
            room.add(name, Some(addr(1)));
            let i = room.nodes.len() - 1;
            room.run_until(&format!("{name} in the room"), |r| r.nodes[i].in_ring());
        }
        room
    }

    fn add(&mut self, name: &str, join: Option<SocketAddr>) {
        let port = self.nodes.len() as u16 + 1;
        let mut cfg = NodeConfig::new(name, addr(port), join);
        cfg.forget_after = FORGET_AFTER;
        let id = NodeId(1000 + u64::from(port));
        self.nodes.push(Node::new(cfg, id, self.now));
    }

    /// 50 ms of virtual time: due timers fire, datagrams pass until none is left.
    fn step(&mut self) {
        self.now += Duration::from_millis(50);
        let now = self.now;
        for n in &mut self.nodes {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        let mut refs: Vec<&mut Node> = self.nodes.iter_mut().collect();
        exchange(&mut refs, now);
        for n in &mut self.nodes {
            while n.poll_event().is_some() {}
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Steps until `done` holds; fails after a minute of virtual time saying `what`.
    #[track_caller]
    fn run_until(&mut self, what: &str, done: impl Fn(&Room) -> bool) {
        let end = self.now + Duration::from_secs(60);
        while !done(self) {
            assert!(self.now < end, "no {what} within a minute of virtual time");
            self.step();
        }
    }

    fn command(&mut self, i: usize, cmd: Command) {
        let now = self.now;
        self.nodes[i].handle_command(now, WallMillis(1), cmd);
    }

    /// The names node `i`'s table holds.
    fn names(&self, i: usize) -> Vec<String> {
        let mut names: Vec<String> = self.nodes[i]
            .members()
            .entries()
            .map(|m| m.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn holds(&self, i: usize, name: &str) -> bool {
        self.names(i).iter().any(|n| n == name)
    }
}

/// An ephemeral member that left and a member offline for long go from every table
/// once `forget_after` has passed, and not before; one with a kept message stays until
/// it has it; a forgotten user who comes back is admitted again, online everywhere.
#[test]
fn departed_members_age_out_everywhere_unless_messages_wait_for_them() {
    // alice 0 (leader), bob 1, carol 2, dave 3, erin 4.
    let mut r = Room::new(&["bob", "carol", "dave", "erin"]);
    r.command(2, Command::Leave);
    r.command(3, Command::Dereg { name: None });
    r.command(4, Command::Dereg { name: None });
    r.run_until("carol, dave and erin offline at alice and bob", |r| {
        [0, 1].iter().all(|&i| {
            ["carol", "dave", "erin"].iter().all(|name| {
                r.nodes[i]
                    .members()
                    .by_name(name)
                    .is_some_and(|m| m.presence == Presence::Offline)
            })
        })
    });
    let gone_at = r.now;
    r.command(
        1,
        Command::Send {
            to: vec!["dave".into()],
            text: "kept for dave".into(),
        },
    );
    r.run_for(FORGET_AFTER - Duration::from_secs(1));
    for i in [0, 1] {
        for name in ["carol", "dave", "erin"] {
            assert!(r.holds(i, name), "node {i} dropped {name} too early");
        }
    }
    r.run_until("carol and erin dropped at alice and bob", |r| {
        [0, 1]
            .iter()
            .all(|&i| !r.holds(i, "carol") && !r.holds(i, "erin"))
    });
    let waited = r.now - gone_at;
    assert!(
        waited >= FORGET_AFTER && waited <= FORGET_AFTER + Duration::from_secs(3),
        "dropped after {waited:?}"
    );
    assert!(
        r.holds(0, "dave") && r.holds(1, "dave"),
        "dave has a kept message"
    );
    let listed: Vec<String> = r.nodes[1]
        .member_views()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(listed, ["alice", "bob", "dave"]);
    assert_eq!(r.nodes[0].members().digest(), r.nodes[1].members().digest());

    // Dave comes back for his message, and is dropped no more.
    r.command(
        3,
        Command::Reg {
            name: None,
            via: None,
        },
    );
    r.run_until("dave back, his message handed over", |r| {
        r.nodes[3].in_ring() && !r.nodes[0].mail.holds_for("dave")
    });
    // Erin, forgotten, comes back: she just joins again, and is online everywhere.
    r.command(
        4,
        Command::Reg {
            name: None,
            via: None,
        },
    );
    r.run_until("erin back and online everywhere", |r| {
        r.nodes[4].in_ring()
            && [0, 1, 3, 4]
                .iter()
                .all(|&i| r.nodes[i].members().is_online(NodeId(1005)))
    });
    r.run_for(FORGET_AFTER * 2);
    for i in [0, 1, 3, 4] {
        assert_eq!(
            r.names(i),
            ["alice", "bob", "dave", "erin"],
            "node {i}: the members back stay, carol stays gone"
        );
        assert_eq!(r.nodes[i].members().digest(), r.nodes[0].members().digest());
    }
}

/// Only the leader's word makes a member drop an entry, and only an entry that is still
/// offline and no newer than the one the leader dropped.
#[test]
fn only_the_leaders_word_drops_an_entry_and_never_a_newer_one() {
    let t0 = base_time();
    let mut n = follower(t0);
    let carol = n.members().by_name("carol").cloned().expect("carol");
    let mut offline = carol.clone();
    offline.presence = Presence::Offline;
    offline.stamp = Stamp {
        lamport: Lamport(10),
        by: LEADER,
    };
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 2, Message::Members(vec![offline])),
    );
    drain(&mut n);
    let older = Stamp {
        lamport: Lamport(9),
        by: LEADER,
    };
    let same = Stamp {
        lamport: Lamport(10),
        by: LEADER,
    };
    // Carol (a member, not the leader) may not say it.
    n.handle_datagram(
        t0,
        addr(3),
        &data(CAROL, 1, Message::Forget(vec![(CAROL, same)])),
    );
    assert!(n.members().get(CAROL).is_some(), "not on carol's word");
    // The leader naming an older version of the entry: it stays.
    n.handle_datagram(
        t0,
        addr(1),
        &data(LEADER, 3, Message::Forget(vec![(CAROL, older)])),
    );
    assert!(n.members().get(CAROL).is_some(), "a newer entry stays");
    // The leader, naming the entry held: it goes; the leader's own entry never does.
    let alice = n.members().get(LEADER).map(|m| m.stamp).expect("alice");
    let forget = Message::Forget(vec![(CAROL, same), (LEADER, alice), (BOB, same)]);
    n.handle_datagram(t0, addr(1), &data(LEADER, 4, forget));
    assert!(
        n.members().get(CAROL).is_none(),
        "dropped on the leader's word"
    );
    assert!(n.members().get(LEADER).is_some() && n.members().get(BOB).is_some());
}

/// A [`Message::Forget`] of as many entries as one carries, every id and stamp at its
/// largest, fits one packet.
#[test]
fn a_full_forget_fits_one_packet() {
    let largest = (
        NodeId(u64::MAX),
        Stamp {
            lamport: Lamport(u64::MAX),
            by: NodeId(u64::MAX),
        },
    );
    let msg = Message::Forget(vec![largest; super::ring::FORGET_PER_MESSAGE]);
    assert!(data_packet(MsgId(u64::MAX), msg).is_ok());
}

/// An entry a newer one of the same user replaced (a restart gives a new node id) goes
/// at the leader's next look, without waiting, and every member is told.
#[test]
fn a_replaced_entry_goes_at_once() {
    let t0 = base_time();
    let mut n = leader_with_bob(t0);
    let old = Member {
        id: NodeId(201),
        presence: Presence::Offline,
        ..member(BOB, "bob", 2)
    };
    n.ring.merge(old.clone());
    n.age_out(t0);
    assert!(
        n.members().get(NodeId(201)).is_none(),
        "the old entry is gone"
    );
    assert!(n.members().is_online(BOB), "the one standing for bob stays");
    let out = drain(&mut n);
    assert!(
        out.messages_to(addr(2))
            .contains(&&Message::Forget(vec![(old.id, old.stamp)])),
        "{:?}",
        out.sent
    );
}
