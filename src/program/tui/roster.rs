//! The member sidebar's state: who is in the room, online or not, and who leads, as the
//! node's events tell it; replaced whole by each member list the node gives.

use crate::proto::MemberView;
use std::collections::BTreeMap;

/// One member as the sidebar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// Online or not.
    pub online: bool,
    /// Whether it leads the room.
    pub leader: bool,
    /// Whether it is you.
    pub me: bool,
}

/// The members known, by name.
#[derive(Debug, Default)]
pub struct Roster {
    members: BTreeMap<String, Member>,
    me: String,
}

impl Roster {
    /// An empty roster for the member named `me`.
    pub fn new(me: &str) -> Roster {
        Roster {
            members: BTreeMap::new(),
            me: me.to_string(),
        }
    }

    /// Takes the node's member list as the whole truth.
    pub fn replace(&mut self, list: &[MemberView]) {
        self.members = list
            .iter()
            .map(|m| {
                let member = Member {
                    name: m.name.clone(),
                    online: m.online,
                    leader: m.leader,
                    me: m.me || m.name == self.me,
                };
                (m.name.clone(), member)
            })
            .collect();
    }

    fn entry(&mut self, name: &str) -> &mut Member {
        let me = name == self.me;
        self.members
            .entry(name.to_string())
            .or_insert_with(|| Member {
                name: name.to_string(),
                online: false,
                leader: false,
                me,
            })
    }

    /// `name` is online (or offline).
    pub fn set_online(&mut self, name: &str, online: bool) {
        self.entry(name).online = online;
    }

    /// `name` leads the room now (and nobody else does).
    pub fn set_leader(&mut self, name: &str) {
        for m in self.members.values_mut() {
            m.leader = false;
        }
        let leader = self.entry(name);
        leader.leader = true;
        leader.online = true;
    }

    /// The leader's name, if known.
    pub fn leader(&self) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.leader)
            .map(|m| m.name.as_str())
    }

    /// Members online (you included) and members known.
    pub fn counts(&self) -> (usize, usize) {
        let online = self.members.values().filter(|m| m.online).count();
        (online, self.members.len())
    }

    /// The members as the sidebar lists them: online first, then by name.
    pub fn sorted(&self) -> Vec<&Member> {
        let mut list: Vec<&Member> = self.members.values().collect();
        list.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
        list
    }

    /// Names for completion: others online, others offline, then you.
    pub fn names_for_completion(&self) -> Vec<String> {
        let mut list = self.sorted();
        list.sort_by_key(|m| m.me);
        list.into_iter().map(|m| m.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, online: bool, leader: bool) -> MemberView {
        MemberView {
            name: name.into(),
            addr: "127.0.0.1:1".parse().expect("addr"),
            online,
            leader,
            me: false,
        }
    }

    #[test]
    fn online_first_then_by_name_and_one_leader() {
        let mut r = Roster::new("bob");
        r.replace(&[
            view("dave", false, false),
            view("carol", true, false),
            view("alice", true, true),
            view("bob", true, false),
        ]);
        let names: Vec<&str> = r.sorted().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol", "dave"]);
        assert!(r.sorted()[1].me);
        assert_eq!(r.counts(), (3, 4));
        r.set_online("alice", false);
        r.set_leader("carol");
        assert_eq!(r.leader(), Some("carol"));
        let names: Vec<&str> = r.sorted().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["bob", "carol", "alice", "dave"]);
        r.set_online("erin", true);
        assert_eq!(r.counts(), (3, 5));
        assert_eq!(
            r.names_for_completion(),
            ["carol", "erin", "alice", "dave", "bob"]
        );
    }
}
