//! What the program prints, parsed: room-message lines, `list` lines, and `status`.

use super::Proc;

/// One room-message line: `[#<seq> L<lamport>] <name>[ (you)]: <text>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomLine {
    pub seq: u64,
    pub lamport: u64,
    pub name: String,
    pub mine: bool,
    pub text: String,
}

impl RoomLine {
    pub fn parse(line: &str) -> Option<RoomLine> {
        // `[HH:MM:SS #seq Llamport] name: text`
        let rest = line.strip_prefix('[')?;
        let (time, rest) = rest.split_once(" #")?;
        if time.len() != 8 || time.matches(':').count() != 2 {
            return None;
        }
        let (seq, rest) = rest.split_once(" L")?;
        let (lamport, rest) = rest.split_once("] ")?;
        let (who, text) = rest.split_once(": ")?;
        let (name, mine) = match who.strip_suffix(" (you)") {
            Some(name) => (name, true),
            None => (who, false),
        };
        Some(RoomLine {
            seq: seq.parse().ok()?,
            lamport: lamport.parse().ok()?,
            name: name.to_string(),
            mine,
            text: text.to_string(),
        })
    }

    /// The message as every member must see it: all but the `(you)` marker.
    pub fn shared(&self) -> (u64, u64, &str, &str) {
        (self.seq, self.lamport, &self.name, &self.text)
    }
}

/// One `list` line: name, address, `ONLINE`/`OFFLINE`, then `leader` and/or `(you)`.
#[derive(Debug)]
pub struct MemberLine {
    pub name: String,
    pub addr: String,
    pub online: bool,
    pub leader: bool,
    pub me: bool,
}

impl MemberLine {
    /// Parses a `list` line; `None` for any other line.
    pub fn parse(line: &str) -> Option<MemberLine> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, addr, presence, flags @ ..] = words.as_slice() else {
            return None;
        };
        addr.parse::<std::net::SocketAddr>().ok()?;
        let online = match *presence {
            "ONLINE" => true,
            "OFFLINE" => false,
            _ => return None,
        };
        Some(MemberLine {
            name: name.to_string(),
            addr: addr.to_string(),
            online,
            leader: flags.contains(&"leader"),
            me: flags.contains(&"(you)"),
        })
    }
}

/// Types `list` at `p` and parses the `n` member lines, sorted by name. Other lines
/// printed meanwhile (a member coming online, say) are skipped.
#[track_caller]
pub fn list(p: &mut Proc, n: usize) -> Vec<MemberLine> {
    p.send("list");
    let mut members = Vec::with_capacity(n);
    for i in 1..=n {
        let what = format!("`list` line {i} of {n}");
        let line = p.expect(|l| MemberLine::parse(l).is_some(), &what);
        members.extend(MemberLine::parse(&line));
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members
}

/// Types `status` at `p` and returns its lines, from `me:` to `pending:`.
#[track_caller]
pub fn status(p: &mut Proc) -> Vec<String> {
    p.send("status");
    let mut lines = vec![p.expect(|l| l.starts_with("me:"), "the `status` output")];
    while !lines.last().is_some_and(|l| l.starts_with("pending:")) {
        lines.push(p.next_line("the rest of the `status` output"));
    }
    lines
}
