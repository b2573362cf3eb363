//! What a key, a paste or a mouse wheel means to the client, apart from the terminal
//! library's event types: [`action`] maps a crossterm event to an [`Action`].

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};

/// Rows one turn of the mouse wheel scrolls.
pub const WHEEL_ROWS: usize = 3;

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Insert text at the cursor (a key or a paste).
    Insert(String),
    /// Enter: hand the line over.
    Submit,
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    /// Cursor one character left.
    Left,
    /// Cursor one character right.
    Right,
    /// Cursor to the start of the line.
    Home,
    /// Cursor to the end of the line.
    End,
    /// Ctrl-U: delete to the start of the line.
    KillToStart,
    /// Ctrl-K: delete to the end of the line.
    KillToEnd,
    /// Ctrl-W: delete the word before the cursor.
    KillWord,
    /// Up: the line typed before.
    Older,
    /// Down: the line typed after.
    Newer,
    /// Tab: complete (Shift-Tab: the candidate before).
    Complete {
        /// Towards the next candidate.
        forward: bool,
    },
    /// Scroll the pane up (towards older lines) by this many rows; `None` is a page.
    ScrollUp(Option<usize>),
    /// Scroll the pane down by this many rows; `None` is a page.
    ScrollDown(Option<usize>),
    /// Back to the newest line.
    ScrollBottom,
    /// Up to the first line kept.
    ScrollTop,
    /// Ctrl-C: leave (a second one: exit at once).
    Interrupt,
    /// Ctrl-D: leave if the line is empty, else delete under the cursor.
    EndOfInput,
    /// Ctrl-L: draw the whole screen again.
    Redraw,
    /// The terminal window gained (`true`) or lost focus.
    Focus(bool),
    /// The terminal's new size, columns and rows.
    Resize(u16, u16),
    /// Nothing the client does anything with.
    Ignore,
}

/// The action for a terminal event.
pub fn action(event: &Event) -> Action {
    match event {
        Event::Key(key) => key_action(key),
        Event::Paste(text) => Action::Insert(text.clone()),
        Event::Mouse(mouse) => mouse_action(mouse),
        Event::FocusGained => Action::Focus(true),
        Event::FocusLost => Action::Focus(false),
        Event::Resize(w, h) => Action::Resize(*w, *h),
    }
}

fn mouse_action(mouse: &MouseEvent) -> Action {
    match mouse.kind {
        MouseEventKind::ScrollUp => Action::ScrollUp(Some(WHEEL_ROWS)),
        MouseEventKind::ScrollDown => Action::ScrollDown(Some(WHEEL_ROWS)),
        _ => Action::Ignore,
    }
}

fn key_action(key: &KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::Ignore;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            'c' => Action::Interrupt,
            'd' => Action::EndOfInput,
            'a' => Action::Home,
            'e' => Action::End,
            'b' => Action::Left,
            'f' => Action::Right,
            'h' => Action::Backspace,
            'u' => Action::KillToStart,
            'k' => Action::KillToEnd,
            'w' => Action::KillWord,
            'p' => Action::Older,
            'n' => Action::Newer,
            'l' => Action::Redraw,
            _ => Action::Ignore,
        },
        KeyCode::Char(_) if alt => Action::Ignore,
        KeyCode::Char(c) => Action::Insert(c.to_string()),
        KeyCode::Enter => Action::Submit,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Delete => Action::Delete,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home if ctrl => Action::ScrollTop,
        KeyCode::End if ctrl => Action::ScrollBottom,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Up if key.modifiers.contains(KeyModifiers::SHIFT) => Action::ScrollUp(Some(1)),
        KeyCode::Down if key.modifiers.contains(KeyModifiers::SHIFT) => Action::ScrollDown(Some(1)),
        KeyCode::Up => Action::Older,
        KeyCode::Down => Action::Newer,
        KeyCode::Tab => Action::Complete { forward: true },
        KeyCode::BackTab => Action::Complete { forward: false },
        KeyCode::PageUp => Action::ScrollUp(None),
        KeyCode::PageDown => Action::ScrollDown(None),
        KeyCode::Esc => Action::ScrollBottom,
        _ => Action::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Action {
        action(&Event::Key(KeyEvent::new(code, modifiers)))
    }

    #[test]
    fn keys_map_to_actions() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(key(KeyCode::Char('x'), none), Action::Insert("x".into()));
        assert_eq!(
            key(KeyCode::Char('X'), KeyModifiers::SHIFT),
            Action::Insert("X".into())
        );
        assert_eq!(key(KeyCode::Char('u'), ctrl), Action::KillToStart);
        assert_eq!(key(KeyCode::Char('w'), ctrl), Action::KillWord);
        assert_eq!(key(KeyCode::Char('c'), ctrl), Action::Interrupt);
        assert_eq!(key(KeyCode::PageUp, none), Action::ScrollUp(None));
        assert_eq!(key(KeyCode::End, ctrl), Action::ScrollBottom);
        assert_eq!(key(KeyCode::End, none), Action::End);
        assert_eq!(key(KeyCode::Tab, none), Action::Complete { forward: true });
        assert_eq!(key(KeyCode::F(5), none), Action::Ignore);
        assert_eq!(
            action(&Event::Paste("a\nb".into())),
            Action::Insert("a\nb".into())
        );
        let wheel = MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 1,
            row: 1,
            modifiers: none,
        };
        assert_eq!(
            action(&Event::Mouse(wheel)),
            Action::ScrollUp(Some(WHEEL_ROWS))
        );
        assert_eq!(action(&Event::Resize(100, 30)), Action::Resize(100, 30));
    }
}
