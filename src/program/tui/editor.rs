//! The input line: editing (Left/Right/Home/End, Backspace/Delete, Ctrl-U, Ctrl-W,
//! Ctrl-K), the lines typed before (Up/Down, kept in the same file as the line editor's
//! history), and Tab completion cycling through what [`complete::offer`] gives.

use super::complete::{self, Offer};
use std::path::Path;
use unicode_width::UnicodeWidthChar;

/// Lines kept in the history.
const HISTORY_LINES: usize = 1000;

/// A Tab press in progress: pressing Tab again offers the next candidate.
#[derive(Clone, Debug)]
struct Completing {
    offer: Offer,
    /// The candidate in the line now.
    index: usize,
    /// Where the inserted candidate ends.
    end: usize,
}

/// The input line and its history.
#[derive(Debug, Default)]
pub struct Editor {
    text: String,
    /// A byte offset on a character boundary.
    cursor: usize,
    history: Vec<String>,
    /// The history line shown, while browsing with Up/Down.
    browsing: Option<usize>,
    /// The line being typed before browsing started.
    draft: String,
    completing: Option<Completing>,
}

impl Editor {
    /// The line as typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's byte offset in [`Editor::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Lines typed before, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Any key but Tab ends a completion.
    fn edited(&mut self) {
        self.completing = None;
    }

    /// Inserts text at the cursor (a typed character or a paste; line breaks become
    /// spaces, other control characters are dropped).
    pub fn insert(&mut self, s: &str) {
        self.edited();
        let clean: String = s
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .chars()
            .next()
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }

    /// One character left.
    pub fn left(&mut self) {
        self.edited();
        self.cursor = self.prev_boundary();
    }

    /// One character right.
    pub fn right(&mut self) {
        self.edited();
        self.cursor = self.next_boundary();
    }

    /// To the start of the line.
    pub fn home(&mut self) {
        self.edited();
        self.cursor = 0;
    }

    /// To the end of the line.
    pub fn end(&mut self) {
        self.edited();
        self.cursor = self.text.len();
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        self.edited();
        let from = self.prev_boundary();
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        self.edited();
        let to = self.next_boundary();
        self.text.replace_range(self.cursor..to, "");
    }

    /// Ctrl-U: deletes from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        self.edited();
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Ctrl-K: deletes from the cursor to the end of the line.
    pub fn kill_to_end(&mut self) {
        self.edited();
        self.text.truncate(self.cursor);
    }

    /// Ctrl-W: deletes the word before the cursor (and the spaces after it).
    pub fn kill_word(&mut self) {
        self.edited();
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        let from = trimmed.rfind(char::is_whitespace).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        });
        self.text.replace_range(from..self.cursor, "");
        self.cursor = from;
    }

    /// Up: the line typed before the one shown (the line being typed is kept as a draft).
    pub fn older(&mut self) {
        self.edited();
        let at = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(i) => i.saturating_sub(1),
        };
        self.show_history(at);
    }

    /// Down: the line typed after the one shown, and past the newest, the draft again.
    pub fn newer(&mut self) {
        self.edited();
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => self.show_history(i + 1),
            Some(_) => {
                self.browsing = None;
                self.text = std::mem::take(&mut self.draft);
                self.cursor = self.text.len();
            }
        }
    }

    fn show_history(&mut self, at: usize) {
        self.browsing = Some(at);
        self.text = self.history.get(at).cloned().unwrap_or_default();
        self.cursor = self.text.len();
    }

    /// Enter: the line, now in the history (unless blank or the same as the last one),
    /// and an empty input line.
    pub fn take(&mut self) -> String {
        self.edited();
        self.browsing = None;
        self.draft.clear();
        self.cursor = 0;
        let line = std::mem::take(&mut self.text);
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY_LINES {
                self.history.remove(0);
            }
        }
        line
    }

    /// Tab: completes the word before the cursor with the first candidate; pressed again,
    /// with the next one (`forward`) or the one before. `names` and `me` as for
    /// [`complete::offer`]. Nothing to offer changes nothing.
    pub fn complete(&mut self, names: &[String], me: &str, forward: bool) {
        let (offer, index) = match self.completing.take() {
            Some(c) if !c.offer.candidates.is_empty() => {
                let n = c.offer.candidates.len();
                let next = if forward {
                    (c.index + 1) % n
                } else {
                    (c.index + n - 1) % n
                };
                self.text.replace_range(c.offer.start..c.end, "");
                self.cursor = c.offer.start;
                (c.offer, next)
            }
            _ => {
                let offer = complete::offer(&self.text, self.cursor, names, me);
                if offer.candidates.is_empty() {
                    return;
                }
                self.text.replace_range(offer.start..self.cursor, "");
                self.cursor = offer.start;
                (offer, 0)
            }
        };
        let mut chosen = offer.candidates[index].clone();
        // No second space where the line goes on with one.
        if self.text[self.cursor..].starts_with(' ') {
            chosen = chosen.trim_end().to_string();
        }
        self.text.insert_str(self.cursor, &chosen);
        self.cursor += chosen.len();
        self.completing = Some(Completing {
            offer,
            index,
            end: self.cursor,
        });
    }

    /// What to show in `width` columns: the part of the line around the cursor, and the
    /// cursor's column in it.
    pub fn window(&self, width: usize) -> (String, usize) {
        let width = width.max(2);
        let w = |s: &str| s.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
        // Drop characters from the left until the cursor fits, a few columns kept right.
        let mut start = 0;
        while w(&self.text[start..self.cursor]) >= width {
            let step = self.text[start..].chars().next().map_or(1, char::len_utf8);
            start += step;
        }
        let mut shown = String::new();
        let mut used = 0;
        for c in self.text[start..].chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                break;
            }
            shown.push(c);
            used += cw;
        }
        (shown, w(&self.text[start..self.cursor]))
    }

    /// Reads the history from `path` (the line editor's file: an optional `#V2` first
    /// line, `\n` and `\\` escaped); a missing or unreadable file gives none.
    pub fn load_history(&mut self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let mut lines = text.lines().peekable();
        if lines.peek() == Some(&"#V2") {
            lines.next();
        }
        self.history = lines.filter(|l| !l.is_empty()).map(unescape).collect();
        let extra = self.history.len().saturating_sub(HISTORY_LINES);
        self.history.drain(..extra);
    }

    /// Writes the history to `path` in the line editor's format, creating its directory.
    pub fn save_history(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = String::from("#V2\n");
        for line in &self.history {
            out.push_str(&line.replace('\\', "\\\\").replace('\n', "\\n"));
            out.push('\n');
        }
        std::fs::write(path, out)
    }
}

/// A history line as the line editor escapes it, back to text.
fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            ('\\', Some('\\')) => {
                out.push('\\');
                chars.next();
            }
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        e.insert(s);
        e
    }

    #[test]
    fn editing_moves_by_characters() {
        let mut e = typed("héllo wörld");
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "héllo wöld");
        e.home();
        e.delete();
        e.right();
        e.insert("E");
        assert_eq!(e.text(), "éEllo wöld");
        e.end();
        e.kill_word();
        assert_eq!(e.text(), "éEllo ");
        e.insert("x y");
        e.left();
        e.kill_to_start();
        assert_eq!((e.text(), e.cursor()), ("y", 0));
        e.kill_to_end();
        assert_eq!(e.text(), "");
        // Nothing to delete is no error.
        e.backspace();
        e.delete();
        e.kill_word();
        e.left();
        assert_eq!(e.text(), "");
    }

    #[test]
    fn ctrl_w_takes_the_word_and_its_spaces() {
        let mut e = typed("send bob  ");
        e.kill_word();
        assert_eq!(e.text(), "send ");
        e.kill_word();
        assert_eq!(e.text(), "");
    }

    #[test]
    fn pastes_lose_line_breaks_and_controls() {
        let e = typed("one\ntwo\r\nthree\x07");
        assert_eq!(e.text(), "one two  three");
    }

    #[test]
    fn history_up_and_down_keeps_the_draft() {
        let mut e = Editor::default();
        for l in ["first", "second", "second", " "] {
            e.insert(l);
            e.take();
        }
        assert_eq!(e.history(), ["first", "second"]);
        e.insert("draft");
        e.older();
        assert_eq!(e.text(), "second");
        e.older();
        e.older();
        assert_eq!(e.text(), "first");
        e.newer();
        assert_eq!(e.text(), "second");
        e.newer();
        assert_eq!(e.text(), "draft");
        e.newer();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn tab_cycles_through_names() {
        let names: Vec<String> = ["carol", "cass", "alice"].map(String::from).to_vec();
        let mut e = typed("hello ca");
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "hello carol ");
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "hello cass ");
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "hello carol ");
        e.complete(&names, "alice", false);
        assert_eq!(e.text(), "hello cass ");
        e.insert("!");
        assert_eq!(e.text(), "hello cass !");
        // In the middle of a line, before a space: no second space.
        let mut e = typed("hi ca there");
        for _ in 0..6 {
            e.left();
        }
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "hi carol there");
        let mut e = typed("send ");
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "send carol ", "not yourself first");
        let mut e = typed("zz");
        e.complete(&names, "alice", true);
        assert_eq!(e.text(), "zz");
    }

    #[test]
    fn the_window_follows_the_cursor() {
        let e = typed("abcdefghij");
        assert_eq!(e.window(20), ("abcdefghij".into(), 10));
        let (shown, col) = e.window(5);
        assert_eq!(col, 4);
        assert!(shown.starts_with("ghij"), "{shown}");
        let mut e = typed("你好你好");
        e.home();
        assert_eq!(e.window(4), ("你好".into(), 0));
    }

    #[test]
    fn history_file_is_the_line_editors() {
        let dir = std::env::temp_dir().join(format!("ringchat-hist-{}", std::process::id()));
        let path = dir.join("sub").join("history-ann");
        let mut e = Editor::default();
        for l in ["plain", "back\\slash", "é ✓"] {
            e.insert(l);
            e.take();
        }
        e.save_history(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "#V2\nplain\nback\\\\slash\né ✓\n");
        let mut back = Editor::default();
        back.load_history(&path);
        assert_eq!(back.history(), e.history());
        assert_eq!(unescape("a\\nb"), "a\nb");
        let mut none = Editor::default();
        none.load_history(&dir.join("missing"));
        assert!(none.history().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
