//! Departed members age out of the member table (see `ring/departed.rs`): the leader
//! drops those offline for `forget_after` that nobody holds messages for, every member
//! follows, and a departed user who comes back just joins again; a `reg` nobody answers
//! asks again before it fails. Real nodes passing datagrams in virtual time.

use super::*;

/// How long departed members stay in these tests.
const FORGET_AFTER: Duration = Duration::from_secs(5);

/// A room of real nodes, node i at port i + 1, and the virtual time.
struct Room {
    nodes: Vec<Node>,
    now: Instant,
    /// A node cut off from the others: what it sends and what is sent to it is lost.
    cut: Option<usize>,
    /// Every event, by node.
    events: Vec<(usize, Event)>,
}

impl Room {
    /// Alice creates the room at port 1; `others` join through her, one after another.
    fn new(others: &[&str]) -> Room {
        let now = base_time();
        let mut room = Room {
            nodes: Vec::new(),
            now,
            cut: None,
            events: Vec::new(),
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

    /// 50 ms of virtual time: due timers fire, datagrams pass until none is left (but
    /// those from and to the node cut off), events are kept.
    fn step(&mut self) {
        self.now += Duration::from_millis(50);
        let now = self.now;
        for n in &mut self.nodes {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        // Datagrams pass until none is left.
        for round in 0.. {
            assert!(round < 100, "the nodes kept talking");
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    moved = true;
                    let to = usize::from(t.to.port()) - 1;
                    if self.cut.is_some_and(|c| c == i || c == to) {
                        continue;
                    }
                    if let Some(dest) = self.nodes.get_mut(to) {
                        dest.handle_datagram(now, addr(i as u16 + 1), &t.bytes);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Some(e) = n.poll_event() {
                self.events.push((i, e));
            }
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

/// A member cut off while another restarted (a new process at the same address) learns
/// of the new process once back, and drops the old one: the leader dropped it at once,
/// and its word to drop it was lost, so the old entry stayed in that member's table for
/// good (online, in its ring too, if it never saw the old process go).
#[test]
fn a_process_replaced_at_its_address_goes_where_its_going_was_missed() {
    // alice 0 (leader), bob 1, carol 2.
    let mut r = Room::new(&["bob", "carol"]);
    let old_carol = r.nodes[2].id();
    r.cut = Some(1);
    r.run_for(Duration::from_secs(3));
    // Carol's process dies; a new one starts at her address.
    let mut cfg = NodeConfig::new("carol", addr(3), Some(addr(1)));
    cfg.forget_after = FORGET_AFTER;
    let new_carol = NodeId(2003);
    r.nodes[2] = Node::new(cfg, new_carol, r.now);
    r.run_until("the new carol in, the old one dropped at alice", |r| {
        r.nodes[0].members().is_online(new_carol) && r.nodes[0].members().get(old_carol).is_none()
    });
    assert!(
        r.nodes[1].members().get(old_carol).is_some(),
        "bob, cut off, still has the old carol"
    );
    r.cut = None;
    r.run_until("bob back with the new carol", |r| {
        r.nodes[1].members().is_online(new_carol)
    });
    r.run_for(Duration::from_secs(2));
    assert!(
        r.nodes[1].members().get(old_carol).is_none(),
        "bob dropped the old carol"
    );
    assert_eq!(
        r.nodes[1].members().digest(),
        r.nodes[0].members().digest(),
        "bob's table is alice's"
    );
}

/// A `reg` that no member answers (its datagrams lost, as in a run of losses) goes round
/// the members it knows again, saying so, and is back once they answer; cut off for
/// good, it fails, said plainly, after its rounds (and 10 s at least) and within 30 s.
#[test]
fn a_reg_nobody_answers_asks_again_and_fails_only_after_its_rounds() {
    let mut r = Room::new(&["bob", "carol"]);
    let offline = |r: &Room| {
        r.events
            .iter()
            .any(|(i, e)| *i == 1 && matches!(e, Event::Deregistered { .. }))
    };
    let asked_again = |r: &Room| {
        r.events
            .iter()
            .filter(|(i, e)| {
                *i == 1 && matches!(e, Event::Notice(t) if t.contains("asking them again"))
            })
            .count()
    };
    let failed = |r: &Room| {
        r.events
            .iter()
            .filter_map(|(i, e)| match e {
                Event::RegFailed(err) if *i == 1 => Some(err.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let reg = Command::Reg {
        name: None,
        via: None,
    };

    // Lost for its first round over alice and carol, then heard: back in the room.
    r.command(1, Command::Dereg { name: None });
    r.run_until("bob offline", offline);
    r.cut = Some(1);
    r.command(1, reg.clone());
    r.run_until("bob asking again", |r| asked_again(r) == 1);
    r.cut = None;
    r.run_until("bob back in the room", |r| r.nodes[1].in_ring());
    assert_eq!(asked_again(&r), 1);
    assert!(failed(&r).is_empty(), "{:?}", failed(&r));

    // Lost for good: every round fails, then the `reg` does.
    r.events.clear();
    r.command(1, Command::Dereg { name: None });
    r.run_until("bob offline again", offline);
    r.cut = Some(1);
    let typed = r.now;
    r.command(1, reg);
    r.run_until("bob's reg failing", |r| !failed(r).is_empty());
    let took = r.now - typed;
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "failed after {took:?}: it keeps trying for 10 s, and gives up within 30 s"
    );
    assert_eq!(asked_again(&r), 1, "said once");
    assert!(matches!(failed(&r)[..], [JoinError::Unreachable(_)]));
    assert!(!r.nodes[1].in_ring());
}
