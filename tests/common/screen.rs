//! A small model of a terminal screen, fed with the bytes a program writes to its pty:
//! enough of a VT100/xterm (cursor moves, erasing, line wrap, scrolling) to tell what a
//! person would see. The raw bytes are not enough for that: a line written and then
//! erased by the line editor's redraw is in the byte stream but not on the screen.

/// What the parser is in the middle of.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Parse {
    Ground,
    Escape,
    /// `ESC [` and the parameter bytes so far.
    Csi(String),
    /// An operating-system command, up to BEL or `ESC \`.
    Osc,
    OscEscape,
}

/// The screen: every row ever written (scrolled-off rows are kept), a cursor, and the
/// window of `height` rows the cursor moves in.
pub struct Screen {
    width: usize,
    height: usize,
    rows: Vec<Vec<char>>,
    /// The first row of the visible window.
    top: usize,
    row: usize,
    col: usize,
    /// A character was written in the last column: the next one wraps first (xterm).
    wrap_pending: bool,
    saved: (usize, usize),
    parse: Parse,
    /// An incomplete UTF-8 sequence from the end of the last chunk.
    partial: Vec<u8>,
}

impl Screen {
    /// An empty screen of `width` columns and `height` rows.
    pub fn new(width: usize, height: usize) -> Screen {
        Screen {
            width,
            height,
            rows: vec![Vec::new()],
            top: 0,
            row: 0,
            col: 0,
            wrap_pending: false,
            saved: (0, 0),
            parse: Parse::Ground,
            partial: Vec::new(),
        }
    }

    /// Applies bytes written to the terminal.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(bytes);
        let (text, rest) = match std::str::from_utf8(&data) {
            Ok(t) => (t.to_string(), Vec::new()),
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                let text = String::from_utf8_lossy(&data[..valid]).into_owned();
                (text, data[valid..].to_vec())
            }
            Err(_) => (String::from_utf8_lossy(&data).into_owned(), Vec::new()),
        };
        self.partial = rest;
        for c in text.chars() {
            self.take(c);
        }
    }

    /// The rows above the cursor's row, as text without trailing blanks: lines that are
    /// finished (a newline moved the cursor past them), which a prompt redraw on the
    /// cursor's row cannot erase.
    pub fn finished_rows(&self) -> Vec<String> {
        self.rows[..self.row].iter().map(|r| row_text(r)).collect()
    }

    /// The text of the cursor's row.
    pub fn cursor_row(&self) -> String {
        row_text(&self.rows[self.row])
    }

    /// The cursor's column (0 is the first).
    pub fn cursor_col(&self) -> usize {
        self.col
    }

    /// How many finished rows satisfy `pred`.
    pub fn count_finished(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.finished_rows().iter().filter(|r| pred(r)).count()
    }

    /// The whole screen history with the cursor marked, for failure messages.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.rows.iter().enumerate() {
            let mark = if i == self.row { '>' } else { '|' };
            out.push_str(&format!("\n    {mark} {}", row_text(r)));
        }
        out.push_str(&format!("\n    (cursor at column {})", self.col));
        out
    }

    fn take(&mut self, c: char) {
        match std::mem::replace(&mut self.parse, Parse::Ground) {
            Parse::Ground => self.ground(c),
            Parse::Escape => match c {
                '[' => self.parse = Parse::Csi(String::new()),
                ']' => self.parse = Parse::Osc,
                '7' => self.saved = (self.row - self.top, self.col),
                '8' => {
                    self.row = self.top + self.saved.0;
                    self.col = self.saved.1;
                    self.wrap_pending = false;
                }
                _ => {}
            },
            Parse::Csi(mut params) => {
                if ('\x40'..='\x7e').contains(&c) {
                    self.csi(&params, c);
                } else {
                    params.push(c);
                    self.parse = Parse::Csi(params);
                }
            }
            Parse::Osc => match c {
                '\x07' => {}
                '\x1b' => self.parse = Parse::OscEscape,
                _ => self.parse = Parse::Osc,
            },
            Parse::OscEscape => {}
        }
    }

    fn ground(&mut self, c: char) {
        match c {
            '\x1b' => self.parse = Parse::Escape,
            '\r' => {
                self.col = 0;
                self.wrap_pending = false;
            }
            '\n' => self.line_feed(),
            '\x08' => {
                self.col = self.col.saturating_sub(1);
                self.wrap_pending = false;
            }
            '\t' => self.col = ((self.col / 8 + 1) * 8).min(self.width - 1),
            c if c.is_control() => {}
            c => self.print(c),
        }
    }

    fn print(&mut self, c: char) {
        if self.wrap_pending {
            self.col = 0;
            self.line_feed();
        }
        let row = &mut self.rows[self.row];
        if row.len() <= self.col {
            row.resize(self.col + 1, ' ');
        }
        row[self.col] = c;
        if self.col + 1 == self.width {
            self.wrap_pending = true;
        } else {
            self.col += 1;
        }
    }

    fn line_feed(&mut self) {
        self.wrap_pending = false;
        if self.row + 1 == self.top + self.height {
            self.top += 1;
        }
        self.row += 1;
        if self.rows.len() <= self.row {
            self.rows.resize(self.row + 1, Vec::new());
        }
    }

    fn csi(&mut self, params: &str, command: char) {
        if params.starts_with(['?', '>', '=']) {
            // Private modes (bracketed paste, cursor visibility, synchronized output).
            return;
        }
        let numbers: Vec<usize> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let n = numbers.first().copied().unwrap_or(0);
        let count = n.max(1);
        self.wrap_pending = false;
        let bottom = self.top + self.height - 1;
        match command {
            'A' => self.row = self.row.saturating_sub(count).max(self.top),
            'B' => self.row = (self.row + count).min(bottom),
            'C' => self.col = (self.col + count).min(self.width - 1),
            'D' => self.col = self.col.saturating_sub(count),
            'G' => self.col = (count - 1).min(self.width - 1),
            'H' | 'f' => {
                let col = numbers.get(1).copied().unwrap_or(0).max(1);
                self.row = (self.top + count - 1).min(bottom);
                self.col = (col - 1).min(self.width - 1);
            }
            'K' => {
                let col = self.col;
                let row = &mut self.rows[self.row];
                match n {
                    0 => row.truncate(col),
                    1 => row.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => row.clear(),
                }
            }
            'J' => {
                let from = match n {
                    0 => {
                        self.rows[self.row].truncate(self.col);
                        self.row + 1
                    }
                    _ => self.top,
                };
                for r in self.rows.iter_mut().skip(from) {
                    r.clear();
                }
            }
            _ => {}
        }
        if self.rows.len() <= self.row {
            self.rows.resize(self.row + 1, Vec::new());
        }
    }
}

fn row_text(row: &[char]) -> String {
    row.iter().collect::<String>().trim_end().to_string()
}
