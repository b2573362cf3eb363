//! The full-screen client's state, apart from any terminal: what the node said
//! ([`State::apply`]) and what the user did ([`State::act`]) change it, and each returns
//! the [`Effect`]s for the loop to carry out (requests for the node). The view draws it.
//!
//! Every line the line mode would print for an event or a reply goes into the pane;
//! nothing is dropped. The exceptions are member lists and `status` answers the client
//! asked for itself to keep the sidebar and the status bar true (after a join, a member
//! coming or going, a new leader, a notice; the status also about once a second): those
//! only update the sidebar and the bar.

use super::entries::{self, Private};
use super::keys::Action;
use super::pane::{Entry, Pane, Tone};
use super::roster::Roster;
use super::{editor::Editor, view};
use crate::driver::{Output, Request};
use crate::program::line::{Typed, Typist, classify};
use crate::proto::{Command, Event};
use crate::ui::{Narrator, Style};
use std::net::SocketAddr;

/// What the client knows before the node says anything.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Your name.
    pub me: String,
    /// Where your node listens.
    pub addr: SocketAddr,
    /// The member you join through, if any.
    pub join: Option<SocketAddr>,
    /// Whether the room is keyed.
    pub keyed: bool,
    /// The invitation shown when the node creates a room (a keyed room's).
    pub invitation: Option<String>,
    /// What mints `invite`'s one-time invitations (a keyed room's).
    pub inviter: Option<super::super::invitation::Inviter>,
    /// Colours (off with `NO_COLOR`).
    pub colour: bool,
}

/// Where your node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Starting: creating or joining the room, or finding it again after a restart.
    Joining,
    /// In the room.
    InRoom,
    /// Offline after `dereg`, still running.
    Offline,
    /// Leaving, on the user's word.
    Leaving,
    /// Out of the room for good (left, or the join failed).
    Gone,
}

/// The room's health as the node last said it (its answer to a quiet `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Voters the node reaches (itself included).
    pub reachable: usize,
    /// Voters in all.
    pub voters: usize,
    /// Whether the room waits for a majority, as the node sees it.
    pub waiting: bool,
}

/// What the loop should do for the state.
#[derive(Debug)]
pub enum Effect {
    /// Hand this to the node.
    Send(Request),
    /// Draw the whole screen again (Ctrl-L).
    Redraw,
    /// Exit at once, without leaving (a second Ctrl-C).
    ExitNow,
}

/// The client's state.
#[derive(Debug)]
pub struct State {
    /// What the client was started with.
    pub setup: Setup,
    /// Where your node is.
    pub phase: Phase,
    /// The members, for the sidebar.
    pub roster: Roster,
    /// The message pane.
    pub pane: Pane,
    /// The input line.
    pub editor: Editor,
    narrator: Narrator,
    /// Requests typed before the node was in the room: sent once it is.
    pending: Vec<Request>,
    /// Member lists the user asked for and has not seen yet.
    asked_lists: usize,
    /// `status` answers the user asked for and has not seen yet.
    asked_status: usize,
    /// Whether a quiet `status` is on its way (one at a time).
    health_asked: bool,
    /// The room's health, once the node has said it since the client was last in the room.
    pub health: Option<Health>,
    /// Ctrl-C was pressed once.
    interrupted: bool,
    /// The terminal's size, columns and rows.
    size: (u16, u16),
}

impl State {
    /// A new client, on a terminal of `columns` x `rows`.
    pub fn new(setup: Setup, columns: u16, rows: u16) -> State {
        let mut state = State {
            roster: Roster::new(&setup.me),
            narrator: Narrator::new(setup.keyed).inviting(setup.invitation.clone()),
            setup,
            phase: Phase::Joining,
            pane: Pane::default(),
            editor: Editor::default(),
            pending: Vec::new(),
            asked_lists: 0,
            asked_status: 0,
            health_asked: false,
            health: None,
            interrupted: false,
            size: (columns, rows),
        };
        state.resize(columns, rows);
        state
    }

    /// The terminal's size, columns and rows.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// The terminal is now `columns` x `rows`.
    pub fn resize(&mut self, columns: u16, rows: u16) {
        self.size = (columns, rows);
        let areas = view::layout(ratatui::layout::Rect::new(0, 0, columns, rows));
        self.pane.resize(
            usize::from(areas.pane.width),
            usize::from(areas.pane.height),
        );
    }

    /// Adds a line the program says itself (not from the node).
    pub fn say(&mut self, line: &str) {
        self.pane.push(entries::said(line), None);
    }

    fn notice_lines(&mut self, lines: Vec<String>) {
        for l in lines {
            self.pane.push(entries::said(&l), None);
        }
    }

    /// Takes what the node gave out.
    pub fn apply(&mut self, output: Output) -> Vec<Effect> {
        match output {
            Output::Say(lines) => {
                self.notice_lines(lines);
                Vec::new()
            }
            Output::Stopped(line) => {
                self.notice_lines(vec![line]);
                Vec::new()
            }
            Output::Event(ev) => self.event(ev),
        }
    }

    /// A quiet member list, to keep the sidebar true.
    fn refresh_members() -> Effect {
        Effect::Send(Request::Command(Command::List))
    }

    /// What the loop does about once a second: asks for the room's health and, while
    /// the sidebar lists members offline (who may age out of the member table, which
    /// says nothing), for the members again; both quietly.
    pub fn tick(&mut self) -> Vec<Effect> {
        let mut effects = self.check_health();
        let (online, known) = self.roster.counts();
        if !effects.is_empty() && online < known {
            effects.push(Self::refresh_members());
        }
        effects
    }

    /// Asks the node for the room's health (a quiet `status`) while in the room, unless
    /// one such question is on its way already. The loop calls it about once a second
    /// (see [`State::tick`]); the state calls it when the room may have changed.
    pub fn check_health(&mut self) -> Vec<Effect> {
        if self.phase != Phase::InRoom || self.health_asked {
            return Vec::new();
        }
        self.health_asked = true;
        vec![Effect::Send(Request::Command(Command::Status))]
    }

    fn event(&mut self, ev: Event) -> Vec<Effect> {
        let mut effects = Vec::new();
        match &ev {
            Event::Room {
                entry,
                mine,
                history,
            } => {
                let (e, day) = entries::room(entry, *mine, *history);
                self.pane.push(e, day);
                return effects;
            }
            Event::History { entries, own, .. } if !entries.is_empty() => {
                for entry in entries {
                    let (e, day) = entries::room(entry, entry.origin == *own, true);
                    self.pane.push(e, day);
                }
                return effects;
            }
            Event::Direct {
                from,
                to,
                sent_at,
                text,
                offline,
                mine,
                history,
                ..
            } => {
                let p = Private {
                    from,
                    to,
                    sent_at: *sent_at,
                    text,
                    offline: *offline,
                    mine: *mine,
                    history: *history,
                };
                let (e, day) = entries::private(&p);
                self.pane.push(e, day);
                return effects;
            }
            Event::Members(list) => {
                self.roster.replace(list);
                if self.asked_lists == 0 {
                    return effects;
                }
                self.asked_lists -= 1;
            }
            Event::Status(s) => {
                self.health = Some(Health {
                    reachable: s.reachable,
                    voters: s.voters.len(),
                    waiting: s.waiting_for_majority,
                });
                if self.asked_status == 0 {
                    self.health_asked = false;
                    return effects;
                }
                self.asked_status -= 1;
            }
            Event::Joined { leader, .. } => {
                if self.phase != Phase::Leaving {
                    self.phase = Phase::InRoom;
                }
                self.health = None;
                self.roster.set_online(&self.setup.me.clone(), true);
                self.roster.set_leader(leader);
                effects.extend(self.pending.drain(..).map(Effect::Send));
                effects.push(Self::refresh_members());
                effects.extend(self.check_health());
            }
            Event::MemberOnline { name } => {
                self.roster.set_online(name, true);
                effects.push(Self::refresh_members());
                effects.extend(self.check_health());
            }
            Event::MemberOffline { name } => {
                self.roster.set_online(name, false);
                effects.push(Self::refresh_members());
                effects.extend(self.check_health());
            }
            Event::LeaderChanged { name } => {
                self.roster.set_leader(name);
                effects.push(Self::refresh_members());
                effects.extend(self.check_health());
            }
            Event::Notice(_) => effects.extend(self.check_health()),
            Event::Deregistered { .. } => {
                self.phase = Phase::Offline;
                self.roster.set_online(&self.setup.me.clone(), false);
            }
            Event::JoinFailed(_) | Event::Left => {
                self.phase = Phase::Gone;
                self.roster.set_online(&self.setup.me.clone(), false);
            }
            _ => {}
        }
        let lines = self.narrator.lines(&ev, &Style::plain());
        self.notice_lines(lines);
        effects
    }

    /// Does what the user asked for.
    pub fn act(&mut self, action: Action) -> Vec<Effect> {
        let e = &mut self.editor;
        match action {
            Action::Insert(s) => e.insert(&s),
            Action::Submit => return self.submit(),
            Action::Backspace => e.backspace(),
            Action::Delete => e.delete(),
            Action::Left => e.left(),
            Action::Right => e.right(),
            Action::Home => e.home(),
            Action::End => e.end(),
            Action::KillToStart => e.kill_to_start(),
            Action::KillToEnd => e.kill_to_end(),
            Action::KillWord => e.kill_word(),
            Action::Older => e.older(),
            Action::Newer => e.newer(),
            Action::Complete { forward } => {
                let names = self.roster.names_for_completion();
                e.complete(&names, &self.setup.me, forward);
            }
            Action::ScrollUp(rows) => {
                let rows = rows.unwrap_or_else(|| self.pane.page());
                self.pane.scroll_up(rows);
            }
            Action::ScrollDown(rows) => {
                let rows = rows.unwrap_or_else(|| self.pane.page());
                self.pane.scroll_down(rows);
            }
            Action::ScrollBottom => self.pane.scroll_to_bottom(),
            Action::ScrollTop => self.pane.scroll_to_top(),
            Action::Interrupt if self.interrupted => return vec![Effect::ExitNow],
            Action::Interrupt => {
                self.interrupted = true;
                self.say("leaving (Ctrl-C again exits at once)");
                return self.leave();
            }
            Action::EndOfInput if e.text().is_empty() => return self.leave(),
            Action::EndOfInput => e.delete(),
            Action::Redraw => return vec![Effect::Redraw],
            Action::Focus(focused) => self.pane.set_focus(focused),
            Action::Resize(columns, rows) => self.resize(columns, rows),
            Action::Ignore => {}
        }
        Vec::new()
    }

    fn leave(&mut self) -> Vec<Effect> {
        if self.phase == Phase::Gone {
            return Vec::new();
        }
        self.phase = Phase::Leaving;
        vec![Effect::Send(Request::Command(Command::Leave))]
    }

    /// Enter: the line goes to the node as the line mode would send it.
    fn submit(&mut self) -> Vec<Effect> {
        let line = self.editor.take();
        self.pane.mark_read();
        self.pane.scroll_to_bottom();
        let s = &self.setup;
        let typed = classify(&line, &Typist::new(&s.me, s.inviter.clone(), s.addr));
        // Commands are shown above their answers. Messages show once sent, so they are
        // shown as typed only when they cannot go out now (refused offline, or waiting
        // for the join), so that the refusal says what it refused.
        let echo = match &typed {
            Typed::Nothing => false,
            Typed::Room(_) | Typed::Private { .. } => self.phase != Phase::InRoom,
            _ => true,
        };
        if echo {
            self.pane.push(
                Entry::plain(Tone::Typed, format!("> {}", line.trim())),
                None,
            );
        }
        match typed {
            Typed::Nothing => Vec::new(),
            Typed::Exit => self.leave(),
            Typed::Clear => {
                self.pane.clear();
                Vec::new()
            }
            Typed::Request(request) => {
                match request {
                    Request::Command(Command::List) => self.asked_lists += 1,
                    Request::Command(Command::Status) => self.asked_status += 1,
                    _ => {}
                }
                self.send(request)
            }
            typed @ (Typed::Room(_) | Typed::Private { .. }) => typed
                .into_commands()
                .into_iter()
                .flat_map(|c| self.send(Request::Command(c)))
                .collect(),
        }
    }

    /// Sends `request` now, or once in the room if the node is still joining.
    fn send(&mut self, request: Request) -> Vec<Effect> {
        if self.phase == Phase::Joining {
            self.pending.push(request);
            return Vec::new();
        }
        vec![Effect::Send(request)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MemberView;

    fn setup() -> Setup {
        Setup {
            me: "alice".into(),
            addr: "127.0.0.1:5001".parse().expect("addr"),
            join: None,
            keyed: false,
            invitation: None,
            inviter: None,
            colour: false,
        }
    }

    fn ev(e: Event) -> Output {
        Output::Event(e)
    }

    fn texts(s: &State) -> Vec<String> {
        s.pane.entries().map(Entry::text).collect()
    }

    fn typed(s: &mut State, line: &str) -> Vec<Effect> {
        s.act(Action::Insert(line.into()));
        s.act(Action::Submit)
    }

    fn sent(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Send(Request::Command(c)) => format!("{c:?}"),
                Effect::Send(Request::Say(l)) => format!("say {l:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn joined(s: &mut State) -> Vec<Effect> {
        s.apply(ev(Event::Joined {
            leader: "alice".into(),
            is_leader: true,
            members: 1,
        }))
    }

    #[test]
    fn typed_before_joining_goes_out_once_in() {
        let mut s = State::new(setup(), 80, 24);
        assert!(typed(&mut s, "hello").is_empty());
        assert!(typed(&mut s, "list").is_empty());
        let effects = joined(&mut s);
        assert_eq!(
            sent(&effects),
            [
                "SendAll { text: \"hello\" }".to_string(),
                "List".into(),
                "List".into(),
                "Status".into()
            ]
        );
        assert_eq!(s.phase, Phase::InRoom);
        assert!(texts(&s).contains(&"created a new room; you (alice) are the leader".into()));
    }

    /// The list the user asked for is shown; the client's own only fill the sidebar.
    #[test]
    fn asked_lists_show_quiet_ones_do_not() {
        let mut s = State::new(setup(), 80, 24);
        joined(&mut s);
        let list = vec![MemberView {
            name: "alice".into(),
            addr: "127.0.0.1:5001".parse().expect("addr"),
            online: true,
            leader: true,
            me: true,
        }];
        let before = texts(&s).len();
        s.apply(ev(Event::Members(list.clone())));
        assert_eq!(texts(&s).len(), before, "a quiet list shows nothing");
        typed(&mut s, "list");
        s.apply(ev(Event::Members(list)));
        let t = texts(&s);
        assert_eq!(t[t.len() - 2], "> list");
        assert!(t[t.len() - 1].starts_with("alice") && t[t.len() - 1].contains("ONLINE"));
    }

    /// Every line the node or the parser gives shows: errors, notices, refusals.
    #[test]
    fn every_line_shows() {
        let mut s = State::new(setup(), 80, 24);
        joined(&mut s);
        let effects = typed(&mut s, "lsit");
        assert_eq!(sent(&effects).len(), 1);
        let Some(Effect::Send(Request::Say(lines))) = effects.into_iter().next() else {
            panic!("a typo is answered by the program");
        };
        s.apply(Output::Say(lines));
        s.apply(ev(Event::Error(crate::proto::CommandError::NotInRoom)));
        s.apply(ev(Event::MemberOnline { name: "bob".into() }));
        let t = texts(&s);
        assert!(
            t.iter()
                .any(|l| l.starts_with("error: unknown command lsit"))
        );
        assert!(t.contains(&"error: not in the room (offline? type reg)".into()));
        assert!(t.contains(&"bob is online".into()));
        assert_eq!(s.roster.counts(), (2, 2));
    }

    #[test]
    fn dereg_reg_and_leaving() {
        let mut s = State::new(setup(), 80, 24);
        joined(&mut s);
        s.apply(ev(Event::Deregistered { pending: 0 }));
        assert_eq!(s.phase, Phase::Offline);
        assert_eq!(
            sent(&typed(&mut s, "hi")),
            ["SendAll { text: \"hi\" }"],
            "offline, commands still go to the node, which refuses them"
        );
        assert_eq!(texts(&s).last().map(String::as_str), Some("> hi"));
        joined(&mut s);
        assert_eq!(s.phase, Phase::InRoom);
        assert_eq!(sent(&s.act(Action::Interrupt)), ["Leave"]);
        assert_eq!(s.phase, Phase::Leaving);
        assert_eq!(sent(&s.act(Action::Interrupt)), ["ExitNow"]);
        s.apply(ev(Event::Left));
        assert_eq!(s.phase, Phase::Gone);
        assert!(s.act(Action::EndOfInput).is_empty());
    }

    #[test]
    fn clear_and_typed_commands() {
        let mut s = State::new(setup(), 80, 24);
        joined(&mut s);
        typed(&mut s, "/clear");
        assert!(texts(&s).is_empty());
        assert_eq!(sent(&typed(&mut s, "/quit")), ["Leave"]);
        assert_eq!(texts(&s), ["> /quit"]);
    }
}
