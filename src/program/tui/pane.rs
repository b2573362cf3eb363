//! The message pane: what the room said and what the program told the user, as entries
//! of toned text, wrapped to the pane's width, scrolled in rows counted from the bottom
//! (0 follows new lines), with a separator where the day changes and a marker above the
//! first line that came while the user was not looking (scrolled up, or the terminal
//! window without focus).
//!
//! Pure state: the view asks for [`Pane::visible`] rows; nothing here draws.

use chrono::NaiveDate;
use std::collections::VecDeque;
use unicode_width::UnicodeWidthChar;

/// Entries kept; older ones leave the pane (the database keeps the room's history, and
/// `history` shows it again).
pub const MAX_ENTRIES: usize = 5000;

/// What a piece of text is, which decides how it looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A message's time of day.
    Time,
    /// A member's name, in that member's colour.
    Nick(String),
    /// Your own name, in your colour and bold.
    Own(String),
    /// A message's text.
    Text,
    /// A room message said before you joined or while you were away.
    History,
    /// The `[private ...]` tag of a private message.
    Private,
    /// A notice from the program (`bob is online`, `list`, `status`).
    Notice,
    /// A refused command or a failure (`error: ...`).
    Error,
    /// A command you typed, shown above its answer.
    Typed,
    /// The line where the day changes.
    Day,
    /// The unread marker.
    Marker,
}

/// A run of text in one tone.
pub type Segment = (Tone, String);

/// One entry: a message or a line the program printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its text, in tones.
    pub segments: Vec<Segment>,
    /// Columns the continuation rows of a wrapped entry are indented by.
    pub indent: usize,
}

impl Entry {
    /// A one-tone entry.
    pub fn plain(tone: Tone, text: impl Into<String>) -> Entry {
        Entry {
            segments: vec![(tone, text.into())],
            indent: 0,
        }
    }

    /// The entry's text without tones.
    pub fn text(&self) -> String {
        self.segments.iter().map(|(_, s)| s.as_str()).collect()
    }
}

/// One screen row of the pane.
pub type Row = Vec<Segment>;

/// The message pane.
#[derive(Debug)]
pub struct Pane {
    /// Entries with their ids (ids grow by one per entry).
    entries: VecDeque<(u64, Entry)>,
    next_id: u64,
    /// The day of the last dated message shown.
    last_day: Option<NaiveDate>,
    /// Rows scrolled up from the bottom; 0 follows new lines.
    scroll: usize,
    /// The first entry that came while the user was not looking.
    unread: Option<u64>,
    /// Entries that came while scrolled up, not yet scrolled down to.
    unseen: usize,
    /// Whether the terminal window has focus (as the terminal reports it).
    focused: bool,
    width: usize,
    height: usize,
}

impl Default for Pane {
    fn default() -> Self {
        Pane {
            entries: VecDeque::new(),
            next_id: 0,
            last_day: None,
            scroll: 0,
            unread: None,
            unseen: 0,
            focused: true,
            width: 80,
            height: 20,
        }
    }
}

/// The text of the unread marker.
pub const MARKER: &str = "new since you looked";

impl Pane {
    /// Sets the pane's size in columns and rows (from the layout, on every resize).
    pub fn resize(&mut self, width: usize, height: usize) {
        self.width = width.max(1);
        self.height = height;
        self.scroll = self.scroll.min(self.max_scroll());
    }

    /// The pane's size: `(columns, rows)`.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Adds an entry at the bottom. A dated message (`day`) on another day than the one
    /// before it is preceded by a day separator. Scrolled up, the view stays where it is
    /// and the entry counts as unseen; scrolled up or without focus, the unread marker is
    /// put above it unless it is already up.
    pub fn push(&mut self, entry: Entry, day: Option<NaiveDate>) {
        if let Some(day) = day.filter(|d| Some(*d) != self.last_day) {
            self.last_day = Some(day);
            let text = format!(" {} ", day.format("%A %-d %B %Y"));
            self.add(Entry::plain(Tone::Day, text));
        }
        self.add(entry);
    }

    fn add(&mut self, entry: Entry) {
        let id = self.next_id;
        self.next_id += 1;
        let away = self.scroll > 0 || !self.focused;
        if away && self.unread.is_none() {
            self.unread = Some(id);
            if self.scroll > 0 {
                self.scroll += 1;
            }
        }
        if self.scroll > 0 {
            self.unseen += 1;
            self.scroll += wrap(&entry, self.width).len();
        }
        self.entries.push_back((id, entry));
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
    }

    /// Forgets every entry (`clear`); the day separator comes again with the next message.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.last_day = None;
        self.scroll = 0;
        self.unread = None;
        self.unseen = 0;
    }

    /// The user has read everything (they typed a line): the unread marker goes.
    pub fn mark_read(&mut self) {
        self.unread = None;
    }

    /// The terminal window gained (`true`) or lost focus.
    pub fn set_focus(&mut self, focused: bool) {
        self.focused = focused;
    }

    /// Scrolls up (towards older lines) by `rows`, at most to the first line.
    pub fn scroll_up(&mut self, rows: usize) {
        self.scroll = self.scroll.saturating_add(rows).min(self.max_scroll());
    }

    /// Scrolls down by `rows`; at the bottom, new lines are followed again.
    pub fn scroll_down(&mut self, rows: usize) {
        self.scroll = self.scroll.saturating_sub(rows);
        if self.scroll == 0 {
            self.unseen = 0;
        }
    }

    /// Back to the newest line.
    pub fn scroll_to_bottom(&mut self) {
        self.scroll_down(usize::MAX);
    }

    /// Up to the first line kept.
    pub fn scroll_to_top(&mut self) {
        self.scroll_up(usize::MAX);
    }

    /// Rows a page scroll moves.
    pub fn page(&self) -> usize {
        self.height.saturating_sub(2).max(1)
    }

    /// Rows scrolled up from the bottom (0: following new lines).
    pub fn scrolled(&self) -> usize {
        self.scroll
    }

    /// Entries that came while scrolled up.
    pub fn unseen(&self) -> usize {
        self.unseen
    }

    /// Whether the unread marker is up.
    pub fn has_unread_marker(&self) -> bool {
        self.unread.is_some()
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|(_, e)| e)
    }

    /// Every row at the current width, the marker included: what scrolling moves over.
    fn total_rows(&self) -> usize {
        let marker = usize::from(self.unread.is_some_and(|u| self.has_id(u)));
        self.entries
            .iter()
            .map(|(_, e)| wrap(e, self.width).len())
            .sum::<usize>()
            + marker
    }

    fn has_id(&self, id: u64) -> bool {
        self.entries.front().is_some_and(|(first, _)| *first <= id)
    }

    fn max_scroll(&self) -> usize {
        self.total_rows().saturating_sub(self.height)
    }

    /// The rows on screen, top to bottom, exactly `height` of them: blank rows above the
    /// first entry when there are fewer (new lines come in at the bottom).
    pub fn visible(&self) -> Vec<Row> {
        let want = self.scroll + self.height;
        let mut rows: Vec<Row> = Vec::new();
        // From the newest entry up, until the window is covered.
        for (id, entry) in self.entries.iter().rev() {
            if rows.len() >= want {
                break;
            }
            let mut wrapped = wrap(entry, self.width);
            if self.unread == Some(*id) {
                wrapped.insert(0, marker_row(self.width));
            }
            rows.extend(wrapped.into_iter().rev());
        }
        let end = rows.len().min(want);
        let start = self.scroll.min(end);
        let mut shown: Vec<Row> = rows[start..end].iter().rev().cloned().collect();
        while shown.len() < self.height {
            shown.insert(0, Vec::new());
        }
        shown
    }
}

/// The unread marker as a row as wide as the pane.
fn marker_row(width: usize) -> Row {
    vec![(Tone::Marker, centred(MARKER, width, '─'))]
}

/// `text` with spaces around it, centred in `fill` characters across `width` columns.
pub fn centred(text: &str, width: usize, fill: char) -> String {
    let text = format!(" {text} ");
    let w: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if w >= width {
        return text;
    }
    let left = (width - w) / 2;
    let right = width - w - left;
    let f = |n| std::iter::repeat_n(fill, n).collect::<String>();
    format!("{}{text}{}", f(left), f(right))
}

/// Wraps an entry into rows of at most `width` columns: at the last space that fits when
/// there is one, else between characters; continuation rows start with `indent` spaces
/// (when the indent leaves room). Day separators are centred instead.
pub fn wrap(entry: &Entry, width: usize) -> Vec<Row> {
    let width = width.max(1);
    if let [(Tone::Day, text)] = entry.segments.as_slice() {
        return vec![vec![(Tone::Day, centred(text.trim(), width, '─'))]];
    }
    let indent = if entry.indent * 2 < width {
        entry.indent
    } else {
        0
    };
    // Each character with its segment and width.
    let cells = entry
        .segments
        .iter()
        .enumerate()
        .flat_map(|(i, (_, s))| s.chars().map(move |c| (i, c, c.width().unwrap_or(0))))
        .filter(|(_, c, _)| !c.is_control());
    let mut rows: Vec<Vec<(usize, char)>> = Vec::new();
    let mut row: Vec<(usize, char)> = Vec::new();
    let mut used = 0;
    // Where a row's own text starts: after the indent on continuation rows.
    let mut floor = 0;
    for (seg, c, w) in cells {
        if row.len() == floor && !rows.is_empty() && c == ' ' {
            // A continuation row does not start with the space it was cut at.
            continue;
        }
        if used + w > width && row.len() > floor {
            // Full: cut at the row's last space when there is one past its start.
            let space = row
                .iter()
                .rposition(|(_, c)| *c == ' ')
                .filter(|&s| s > floor);
            let carried = match space {
                Some(s) => {
                    let tail = row.split_off(s + 1);
                    row.pop();
                    tail
                }
                None => Vec::new(),
            };
            rows.push(std::mem::take(&mut row));
            row.extend(std::iter::repeat_n((usize::MAX, ' '), indent));
            floor = indent;
            used = indent;
            for (s, c) in carried {
                used += c.width().unwrap_or(0);
                row.push((s, c));
            }
            if used + w > width && row.len() > floor {
                rows.push(std::mem::take(&mut row));
                row.extend(std::iter::repeat_n((usize::MAX, ' '), indent));
                used = indent;
            }
        }
        if used + w > width && row.len() == floor && floor > 0 {
            // Too wide to follow the indent: the row goes without it.
            row.clear();
            floor = 0;
            used = 0;
        }
        row.push((seg, c));
        used += w;
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows.into_iter()
        .map(|r| toned(&r, &entry.segments))
        .collect()
}

/// Groups a row's characters back into segments of one tone (the indent as plain text).
fn toned(row: &[(usize, char)], segments: &[Segment]) -> Row {
    let mut out: Row = Vec::new();
    let mut last: Option<usize> = None;
    for &(seg, c) in row {
        if last == Some(seg) {
            if let Some((_, s)) = out.last_mut() {
                s.push(c);
            }
            continue;
        }
        let tone = segments
            .get(seg)
            .map_or(Tone::Text, |(tone, _)| tone.clone());
        out.push((tone, c.to_string()));
        last = Some(seg);
    }
    out
}

/// A row's text without tones.
pub fn row_text(row: &Row) -> String {
    row.iter().map(|(_, s)| s.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Row]) -> Vec<String> {
        rows.iter().map(row_text).collect()
    }

    fn line(text: &str) -> Entry {
        Entry::plain(Tone::Text, text)
    }

    #[test]
    fn wraps_at_spaces_with_the_indent() {
        let e = Entry {
            segments: vec![
                (Tone::Time, "12:00 ".into()),
                (Tone::Nick("bob".into()), "bob".into()),
                (Tone::Text, ": lunch at noon today?".into()),
            ],
            indent: 6,
        };
        let rows = wrap(&e, 20);
        assert_eq!(texts(&rows), ["12:00 bob: lunch at", "      noon today?"]);
        // The tones survive the cut.
        assert_eq!(rows[0][1], (Tone::Nick("bob".into()), "bob".into()));
        for r in &rows {
            let w: usize = row_text(r).chars().map(|c| c.width().unwrap_or(0)).sum();
            assert!(w <= 20, "{r:?}");
        }
    }

    #[test]
    fn a_long_word_is_cut_and_wide_characters_fit() {
        let rows = wrap(&line("abcdefghij"), 4);
        assert_eq!(texts(&rows), ["abcd", "efgh", "ij"]);
        let rows = wrap(&line("你好你好你"), 4);
        assert_eq!(texts(&rows), ["你好", "你好", "你"]);
        // Narrower than one wide character: it still shows, one per row.
        assert_eq!(texts(&wrap(&line("你你"), 1)), ["你", "你"]);
        assert_eq!(texts(&wrap(&line(""), 10)), [""]);
        assert_eq!(texts(&wrap(&line("tab\there"), 10)), ["tabhere"]);
    }

    #[test]
    fn rows_fill_from_the_bottom_and_scroll() {
        let mut p = Pane::default();
        p.resize(20, 3);
        p.push(line("one"), None);
        assert_eq!(texts(&p.visible()), ["", "", "one"]);
        for t in ["two", "three", "four"] {
            p.push(line(t), None);
        }
        assert_eq!(texts(&p.visible()), ["two", "three", "four"]);
        p.scroll_up(1);
        assert_eq!(texts(&p.visible()), ["one", "two", "three"]);
        p.scroll_up(10);
        assert_eq!(p.scrolled(), 1, "no further than the first line");
        p.scroll_down(5);
        assert_eq!(texts(&p.visible()), ["two", "three", "four"]);
        p.scroll_to_top();
        assert_eq!(texts(&p.visible()), ["one", "two", "three"]);
        p.scroll_to_bottom();
        assert_eq!(p.scrolled(), 0);
    }

    /// Scrolled up, what arrives neither moves the view nor goes unnoticed: it counts as
    /// unseen, and the marker stands above the first of it.
    #[test]
    fn arrivals_while_scrolled_up_are_marked_and_keep_the_view() {
        let mut p = Pane::default();
        p.resize(30, 3);
        for i in 1..=6 {
            p.push(line(&format!("line {i}")), None);
        }
        p.scroll_up(2);
        let before = texts(&p.visible());
        p.push(line("line 7"), None);
        p.push(line("line 8"), None);
        assert_eq!(texts(&p.visible()), before, "the view stays put");
        assert_eq!(p.unseen(), 2);
        p.scroll_to_bottom();
        assert_eq!(p.unseen(), 0);
        let rows = texts(&p.visible());
        assert_eq!(rows[1..], ["line 7", "line 8"]);
        assert!(rows[0].contains(MARKER), "{rows:?}");
        p.mark_read();
        assert_eq!(texts(&p.visible()), ["line 6", "line 7", "line 8"]);
    }

    #[test]
    fn without_focus_new_lines_are_marked() {
        let mut p = Pane::default();
        p.resize(30, 4);
        p.push(line("seen"), None);
        p.set_focus(false);
        p.push(line("while away"), None);
        p.set_focus(true);
        p.push(line("after"), None);
        let rows = texts(&p.visible());
        assert_eq!(rows[0], "seen");
        assert!(rows[1].contains(MARKER), "{rows:?}");
        assert_eq!(rows[2..], ["while away", "after"]);
    }

    #[test]
    fn a_new_day_gets_a_separator() {
        let mut p = Pane::default();
        p.resize(40, 6);
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 29);
        let d2 = NaiveDate::from_ymd_opt(2026, 11, 30);
        p.push(line("a"), d1);
        p.push(line("b"), d1);
        p.push(line("notice"), None);
        p.push(line("c"), d2);
        let rows = texts(&p.visible());
        assert!(rows[0].contains(" Sunday 29 November 2026 "), "{rows:?}");
        assert!(rows[0].starts_with('─') && rows[0].ends_with('─'));
        assert_eq!(rows[1..4], ["a", "b", "notice"]);
        assert!(rows[4].contains(" Monday 30 November 2026 "), "{rows:?}");
        assert_eq!(rows[5], "c");
    }

    #[test]
    fn old_entries_leave_and_clear_empties() {
        let mut p = Pane::default();
        p.resize(20, 2);
        for i in 0..MAX_ENTRIES + 10 {
            p.push(line(&i.to_string()), None);
        }
        assert_eq!(p.entries().count(), MAX_ENTRIES);
        assert_eq!(p.entries().next().map(Entry::text), Some("10".into()));
        p.clear();
        assert_eq!(texts(&p.visible()), ["", ""]);
    }
}
