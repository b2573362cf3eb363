//! Drawing the state: the message pane with the member sidebar on its right, a status
//! bar, and the input line at the bottom.
//!
//! ```text
//! 12:03 bob: lunch at noon?               │@alice
//! 12:03 alice: sure                       │ bob
//!                                         │ carol (off)
//!  alice@127.0.0.1:5001 · leader alice · 2/3 online · room key
//! [alice] hello ca_
//! ```
//!
//! When the room waits for a majority, the bar says so right after you, with how many
//! voters your node reaches: ` alice@127.0.0.1:5001 · waiting for a majority: 1 of 3 ·
//! leader alice · room key`.
//!
//! Pure: [`draw`] renders a [`State`] into a ratatui frame, so the tests draw on a
//! `TestBackend` and read the buffer.

use super::pane::{Row, Tone};
use super::roster::Member;
use super::state::{Phase, State};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

/// Columns of the member sidebar (its separator included).
const SIDEBAR: u16 = 18;
/// Below this many columns there is no sidebar.
const SIDEBAR_FROM: u16 = 56;

/// Where each part goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The message pane.
    pub pane: Rect,
    /// The member sidebar, when the terminal is wide enough.
    pub sidebar: Option<Rect>,
    /// The status bar.
    pub status: Rect,
    /// The input line.
    pub input: Rect,
}

/// Splits the terminal's area.
pub fn layout(area: Rect) -> Areas {
    let [top, status, input] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if area.width < SIDEBAR_FROM {
        return Areas {
            pane: top,
            sidebar: None,
            status,
            input,
        };
    }
    let [pane, sidebar] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(SIDEBAR)]).areas(top);
    Areas {
        pane,
        sidebar: Some(sidebar),
        status,
        input,
    }
}

/// Nick colours: one per name, the same on every node and in every run (errors keep red).
const NICK_COLOURS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
];

/// The colour of `name`: FNV-1a of its bytes picks one of [`NICK_COLOURS`].
pub fn nick_colour(name: &str) -> Color {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    NICK_COLOURS[hash as usize % NICK_COLOURS.len()]
}

/// How the parts look, with colours or (`NO_COLOR`) with attributes only.
#[derive(Clone, Copy, Debug)]
struct Look {
    colour: bool,
}

impl Look {
    fn fg(&self, c: Color) -> Style {
        if self.colour {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    fn tone(&self, tone: &Tone) -> Style {
        let dim = Style::new().add_modifier(Modifier::DIM);
        match tone {
            Tone::Time | Tone::History => dim,
            Tone::Nick(name) => self.fg(nick_colour(name)),
            Tone::Own(name) => self.fg(nick_colour(name)).add_modifier(Modifier::BOLD),
            Tone::Text => Style::new(),
            Tone::Private => self.fg(Color::Magenta).add_modifier(Modifier::ITALIC),
            Tone::Notice | Tone::Typed => dim,
            Tone::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Tone::Day => self.fg(Color::Blue),
            Tone::Marker => self.fg(Color::Red),
        }
    }

    fn bar(&self) -> Style {
        if self.colour {
            Style::new().fg(Color::White).bg(Color::Blue)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}

/// Draws the whole client.
pub fn draw(frame: &mut Frame<'_>, state: &State) {
    let look = Look {
        colour: state.setup.colour,
    };
    let areas = layout(frame.area());
    let rows: Vec<Line<'_>> = state
        .pane
        .visible()
        .iter()
        .map(|row| pane_line(row, look))
        .collect();
    frame.render_widget(Paragraph::new(rows), areas.pane);
    if let Some(area) = areas.sidebar {
        frame.render_widget(Paragraph::new(sidebar(state, area, look)), area);
    }
    frame.render_widget(
        Paragraph::new(Line::from(status_text(state, areas.status.width))).style(look.bar()),
        areas.status,
    );
    let prompt = format!("[{}] ", state.setup.me);
    let prompt_width = prompt.width().min(usize::from(areas.input.width) / 2);
    let room = usize::from(areas.input.width).saturating_sub(prompt_width);
    let (shown, cursor) = state.editor.window(room);
    let input = Line::from(vec![
        Span::styled(prompt, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(shown),
    ]);
    frame.render_widget(Paragraph::new(input), areas.input);
    if state.phase != Phase::Gone {
        let x = areas.input.x + u16::try_from(prompt_width + cursor).unwrap_or(u16::MAX);
        let x = x.min(areas.input.right().saturating_sub(1));
        frame.set_cursor_position(Position::new(x, areas.input.y));
    }
}

fn pane_line(row: &Row, look: Look) -> Line<'static> {
    Line::from(
        row.iter()
            .map(|(tone, text)| Span::styled(text.clone(), look.tone(tone)))
            .collect::<Vec<_>>(),
    )
}

/// The sidebar: a separator, then one member a row (`@` marks the leader, offline
/// members are dim and say so), as many as fit; the last row says how many more.
fn sidebar(state: &State, area: Rect, look: Look) -> Vec<Line<'static>> {
    let sep = Span::styled("│", look.fg(Color::DarkGray));
    let width = usize::from(area.width).saturating_sub(1);
    let members = state.roster.sorted();
    let height = usize::from(area.height);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        if lines.len() + 1 == height && i + 1 < members.len() {
            let more = format!(" +{} more", members.len() - i);
            lines.push(Line::from(vec![sep.clone(), Span::raw(fit(&more, width))]));
            break;
        }
        lines.push(Line::from(vec![sep.clone(), member_span(m, width, look)]));
    }
    while lines.len() < height {
        lines.push(Line::from(sep.clone()));
    }
    lines
}

fn member_span(m: &Member, width: usize, look: Look) -> Span<'static> {
    let mark = if m.leader { "@" } else { " " };
    let off = if m.online { "" } else { " (off)" };
    let name_room = width.saturating_sub(1 + off.len());
    let text = format!("{mark}{}{off}", fit(&m.name, name_room));
    let mut style = look.fg(nick_colour(&m.name));
    if m.me {
        style = style.add_modifier(Modifier::BOLD);
    }
    if !m.online {
        style = Style::new().add_modifier(Modifier::DIM);
    }
    Span::styled(text, style)
}

/// `s` cut to `width` columns, with `…` where it was cut.
fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if (out.clone() + &c.to_string()).width() + 1 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The status bar's text: you, where your node is (or, when the room waits for a
/// majority, how many voters your node reaches of how many), the leader, members
/// online, the key; on the right, when scrolled up, how many lines came meanwhile.
pub fn status_text(state: &State, width: u16) -> String {
    let s = &state.setup;
    let mut parts = vec![format!("{}@{}", s.me, s.addr)];
    let waiting = state
        .health
        .filter(|h| h.waiting && state.phase == Phase::InRoom);
    match state.phase {
        Phase::Joining => parts.push(match s.join {
            Some(via) => format!("joining through {via}…"),
            None => "starting…".into(),
        }),
        Phase::InRoom => {
            if let Some(h) = waiting {
                parts.push(format!(
                    "waiting for a majority: {} of {}",
                    h.reachable, h.voters
                ));
            }
        }
        Phase::Offline => parts.push("OFFLINE, type reg".into()),
        Phase::Leaving => parts.push("leaving…".into()),
        Phase::Gone => parts.push("out of the room".into()),
    }
    if let Some(leader) = state.roster.leader() {
        parts.push(format!("leader {leader}"));
    }
    let (online, known) = state.roster.counts();
    if known > 0 && waiting.is_none() {
        parts.push(format!("{online}/{known} online"));
    }
    parts.push(if s.keyed { "room key" } else { "OPEN: no key" }.into());
    let left = format!(" {}", parts.join(" · "));
    let right = match (state.pane.scrolled(), state.pane.unseen()) {
        (0, _) => String::new(),
        (_, 0) => "scrolled up · PgDn ".into(),
        (_, n) => format!("{n} new below · PgDn "),
    };
    let width = usize::from(width);
    let gap = width.saturating_sub(left.width() + right.width());
    if gap == 0 && !right.is_empty() {
        return fit(&format!("{right}·{left}"), width);
    }
    format!("{left}{}{right}", " ".repeat(gap))
}

#[cfg(test)]
mod tests {
    use super::super::keys::Action;
    use super::super::state::{Effect, Setup};
    use super::*;
    use crate::driver::Output;
    use crate::driver::Request;
    use crate::ids::{Lamport, NodeId, OriginSeq, Seq, WallMillis};
    use crate::proto::Command;
    use crate::proto::{Event, MemberView};
    use crate::wire::ChatEntry;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn state(colour: bool, columns: u16, rows: u16) -> State {
        let setup = Setup {
            me: "alice".into(),
            addr: "127.0.0.1:5001".parse().expect("addr"),
            join: None,
            keyed: false,
            invitation: None,
            inviter: None,
            colour,
        };
        let mut s = State::new(setup, columns, rows);
        s.apply(Output::Event(Event::Joined {
            leader: "alice".into(),
            is_leader: true,
            members: 1,
        }));
        let member = |name: &str, online, leader| MemberView {
            name: name.into(),
            addr: "127.0.0.1:1".parse().expect("addr"),
            online,
            leader,
            me: name == "alice",
        };
        s.apply(Output::Event(Event::Members(vec![
            member("alice", true, true),
            member("bob", true, false),
            member("carol", false, false),
        ])));
        s
    }

    fn room(s: &mut State, name: &str, text: &str) {
        s.apply(Output::Event(Event::Room {
            entry: ChatEntry {
                seq: Seq(1),
                origin: NodeId(2),
                name: name.into(),
                origin_seq: OriginSeq(1),
                lamport: Lamport(1),
                sent_at: WallMillis(1_700_000_000_000),
                text: text.into(),
                term: 0,
                proof: Default::default(),
            },
            mine: name == "alice",
            history: false,
        }));
    }

    /// The screen as text rows.
    fn screen(s: &State) -> (Vec<String>, ratatui::buffer::Buffer) {
        let (w, h) = s.size();
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| draw(f, s)).expect("draw");
        let buf = t.backend().buffer().clone();
        let rows = (0..h)
            .map(|y| {
                let mut row = String::new();
                let mut x = 0;
                while x < w {
                    let cell = &buf[(x, y)];
                    row.push_str(cell.symbol());
                    x += u16::try_from(cell.symbol().width().max(1)).unwrap_or(1);
                }
                row.trim_end().to_string()
            })
            .collect();
        (rows, buf)
    }

    #[test]
    fn pane_sidebar_status_and_input() {
        let mut s = state(true, 70, 8);
        room(&mut s, "bob", "lunch at noon?");
        s.act(Action::Insert("hello ca".into()));
        let (rows, buf) = screen(&s);
        let text = rows.join("\n");
        assert!(rows[0].ends_with("│@alice"), "{text}");
        assert!(rows[1].ends_with("│ bob"), "{text}");
        assert!(rows[2].ends_with("│ carol (off)"), "{text}");
        assert!(text.contains("bob: lunch at noon?"), "{text}");
        assert!(
            rows[6].starts_with(" alice@127.0.0.1:5001 · leader alice · 2/3 online · OPEN: no key"),
            "{text}"
        );
        assert_eq!(rows[7], "[alice] hello ca");
        // bob's name in bob's colour, in the pane and the sidebar.
        let y = rows
            .iter()
            .position(|r| r.contains("bob: lunch"))
            .expect("row");
        let x = rows[y].find("bob").expect("bob") as u16;
        assert_eq!(buf[(x, y as u16)].fg, nick_colour("bob"));
        assert_eq!(buf[(53, 1)].fg, nick_colour("bob"));
    }

    /// A `status` answer with `reachable` of `voters` voters reached.
    fn status_event(reachable: usize, voters: usize, waiting: bool) -> Output {
        Output::Event(Event::Status(Box::new(crate::proto::StatusView {
            ring: Vec::new(),
            name: "alice".into(),
            id: NodeId(1),
            addr: "127.0.0.1:5001".parse().expect("addr"),
            prev: None,
            next: None,
            leader: Some("alice".into()),
            suspected: Vec::new(),
            lamport: Lamport(1),
            stats: Default::default(),
            in_flight: 0,
            unconfirmed: 0,
            history: 0,
            voters: (0..voters).map(|i| format!("v{i}")).collect(),
            reachable,
            waiting_for_majority: waiting,
        })))
    }

    /// The room's health comes in quiet `status` answers: they fill the bar, not the
    /// pane. While the room waits for a majority the bar says so, with how many voters
    /// are reached, in place of the members online; a `status` typed shows as ever.
    #[test]
    fn the_bar_says_when_the_room_waits_for_a_majority() {
        let mut s = state(false, 90, 8);
        assert!(
            s.check_health().is_empty(),
            "asked on joining, and one question at a time"
        );
        let shown = s.pane.entries().count();
        s.apply(status_event(1, 3, true));
        assert_eq!(
            s.pane.entries().count(),
            shown,
            "a quiet answer shows nothing"
        );
        let (rows, _) = screen(&s);
        assert_eq!(
            rows[6],
            " alice@127.0.0.1:5001 · waiting for a majority: 1 of 3 · leader alice · OPEN: no key"
        );
        let asked = s.check_health();
        assert!(
            matches!(
                asked.as_slice(),
                [Effect::Send(Request::Command(Command::Status))]
            ),
            "answered: the next one may go: {asked:?}"
        );
        s.apply(status_event(3, 3, false));
        let (rows, _) = screen(&s);
        assert_eq!(
            rows[6],
            " alice@127.0.0.1:5001 · leader alice · 2/3 online · OPEN: no key"
        );
        s.act(Action::Insert("status".into()));
        assert_eq!(s.act(Action::Submit).len(), 1);
        s.apply(status_event(3, 3, false));
        assert!(
            s.pane.entries().any(|e| e
                .text()
                .starts_with("voters:  v0, v1, v2 (2 make a majority, 3 reachable)")),
            "the status typed is shown"
        );
    }

    /// While the sidebar lists members offline, the tick asks for the members too
    /// (quietly): one that aged out of the member table leaves the sidebar.
    #[test]
    fn the_tick_keeps_the_sidebar_true() {
        let mut s = state(false, 70, 8);
        s.apply(status_event(2, 2, false));
        let asked: Vec<String> = s.tick().iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(asked, ["Send(Command(Status))", "Send(Command(List))"]);
        assert!(
            s.tick().is_empty(),
            "nothing more while the status is on its way"
        );
        s.apply(Output::Event(Event::Members(vec![
            MemberView {
                name: "alice".into(),
                addr: "127.0.0.1:1".parse().expect("addr"),
                online: true,
                leader: true,
                me: true,
            },
            MemberView {
                name: "bob".into(),
                addr: "127.0.0.1:2".parse().expect("addr"),
                online: true,
                leader: false,
                me: false,
            },
        ])));
        let (rows, _) = screen(&s);
        assert!(!rows.join("\n").contains("carol"), "{rows:#?}");
        s.apply(status_event(2, 2, false));
        let asked: Vec<String> = s.tick().iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(asked, ["Send(Command(Status))"], "nobody offline: no list");
    }

    #[test]
    fn no_colour_means_no_colour() {
        let mut s = state(false, 70, 8);
        room(&mut s, "bob", "hi");
        s.apply(Output::Say(vec!["error: no such user zed".into()]));
        let (_, buf) = screen(&s);
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
    }

    #[test]
    fn narrow_terminals_drop_the_sidebar_and_scrolling_shows_in_the_bar() {
        let mut s = state(false, 40, 6);
        for i in 0..10 {
            room(&mut s, "bob", &format!("message {i}"));
        }
        let (rows, _) = screen(&s);
        assert!(rows[3].ends_with("bob: message 9"), "{rows:#?}");
        assert!(!rows.join("").contains('│'));
        s.act(Action::ScrollUp(None));
        room(&mut s, "bob", "message 10");
        let (rows, _) = screen(&s);
        assert!(!rows[..4].join("").contains("message 10"), "{rows:#?}");
        assert!(rows[4].contains("1 new below"), "{rows:#?}");
        s.act(Action::ScrollBottom);
        let (rows, _) = screen(&s);
        assert!(rows[3].ends_with("bob: message 10"), "{rows:#?}");
    }

    #[test]
    fn nick_colours_are_stable_and_spread() {
        assert_eq!(nick_colour("bob"), nick_colour("bob"));
        let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
        let distinct: std::collections::BTreeSet<String> = names
            .iter()
            .map(|n| format!("{:?}", nick_colour(n)))
            .collect();
        assert!(distinct.len() >= 4, "{distinct:?}");
    }

    /// Tiny terminals draw without panicking.
    #[test]
    fn any_size_draws() {
        for (w, h) in [(1, 1), (2, 3), (10, 2), (0, 0), (300, 100)] {
            let mut s = state(true, w, h);
            room(
                &mut s,
                "bob",
                "a message long enough to wrap on a small screen",
            );
            s.act(Action::Insert("typed text".into()));
            let _ = screen(&s);
        }
    }
}
