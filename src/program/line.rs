//! Typed lines: what one amounts to for the node task, and the plain reader used when
//! stdin is not a terminal (or the line editor cannot start).

use super::invitation::Inviter;
use crate::driver::Request;
use crate::proto::Command;
use crate::ui::{self, Input};
use crate::wire::{MAX_DIRECT_TEXT_BYTES, MAX_TEXT_BYTES};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// What a typed line amounts to for the node loop.
#[derive(Debug)]
pub enum Typed {
    /// Something to send to the node loop (a command, or lines to print in order).
    Request(Request),
    /// Room messages, in order: a text over the limit, split.
    Room(Vec<String>),
    /// Private messages to `to`, in order: a text over the limit, split.
    Private {
        /// The recipients.
        to: Vec<String>,
        /// The texts, each within the limit.
        texts: Vec<String>,
    },
    /// Clear the screen: the terminal front ends do it themselves.
    Clear,
    /// A blank line.
    Nothing,
    /// Leave and exit.
    Exit,
}

impl Typed {
    /// The commands that send what was typed: one per room or private message (none
    /// for anything else).
    pub fn into_commands(self) -> Vec<Command> {
        match self {
            Typed::Room(texts) => texts
                .into_iter()
                .map(|text| Command::SendAll { text })
                .collect(),
            Typed::Private { to, texts } => texts
                .into_iter()
                .map(|text| Command::Send {
                    to: to.clone(),
                    text,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Who types, and what the program answers for them itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Typist {
    /// The member's name (for `/me`).
    pub me: String,
    /// What mints `invite`'s invitations (`None` for an open room).
    pub inviter: Option<Inviter>,
    /// What `invite` prints in an open room ([`ui::invite_lines`]).
    pub open_room: Vec<String>,
}

impl Typist {
    /// `me`, in a room whose invitations `inviter` mints (`None` for an open room) with
    /// this node at `addr`.
    pub fn new(me: &str, inviter: Option<Inviter>, addr: std::net::SocketAddr) -> Typist {
        Typist {
            me: me.to_string(),
            inviter,
            open_room: ui::invite_lines(None, addr),
        }
    }

    /// What `invite` prints: a new one-time invitation, or how to join an open room.
    pub fn invite(&self) -> Vec<String> {
        match &self.inviter {
            None => self.open_room.clone(),
            Some(inviter) => match inviter.mint() {
                Ok(token) => vec![ui::INVITATION_INTRO.to_string(), token],
                Err(why) => vec![format!("error: {why}")],
            },
        }
    }
}

/// Turns a line typed by `typist` into what it amounts to: the one parser every front
/// end shares (the plain reader, the line editor, the full-screen client).
pub fn classify(line: &str, typist: &Typist) -> Typed {
    let me = typist.me.as_str();
    match ui::parse(line) {
        Ok(Input::Command(Command::SendAll { text })) => {
            Typed::Room(ui::split_text(&text, MAX_TEXT_BYTES))
        }
        Ok(Input::Command(Command::Send { to, text })) => Typed::Private {
            to,
            texts: ui::split_text(&text, MAX_DIRECT_TEXT_BYTES),
        },
        Ok(Input::Command(c)) => Typed::Request(Request::Command(c)),
        Ok(Input::Me(action)) => {
            Typed::Room(ui::split_text(&ui::me_text(me, &action), MAX_TEXT_BYTES))
        }
        Ok(Input::Clear) => Typed::Clear,
        Ok(Input::Help) => Typed::Request(Request::Say(ui::help())),
        Ok(Input::Invite) => Typed::Request(Request::Say(typist.invite())),
        Ok(Input::Exit) => Typed::Exit,
        Ok(Input::Nothing) => Typed::Nothing,
        Err(e) => Typed::Request(Request::Say(vec![format!("error: {e}")])),
    }
}

/// Reads stdin line by line into commands, typed by `typist`; end of input
/// or `exit` leaves. It reads no further while [`crate::driver::INPUT_QUEUE`] of its lines
/// wait for the node task (`room` holds the permits), so a piped million lines take
/// bounded memory: the node task stops taking them while its own messages are unconfirmed.
pub async fn read_stdin(
    commands: mpsc::UnboundedSender<Request>,
    room: std::sync::Arc<tokio::sync::Semaphore>,
    typist: Typist,
) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        match room.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                let _ = commands.send(Request::Say(vec![format!("error: reading input: {e}")]));
                break;
            }
        };
        if !hand_over(&line, &typist, &commands) {
            break;
        }
    }
    let _ = commands.send(Request::Command(Command::Leave));
}

/// Hands a line typed by `typist` to the node task (shared by the plain reader and the
/// line editor); `false` once reading should stop: the user leaves, or the node task is
/// gone.
pub fn hand_over(line: &str, typist: &Typist, commands: &mpsc::UnboundedSender<Request>) -> bool {
    let typed = classify(line, typist);
    match typed {
        Typed::Request(r) => commands.send(r).is_ok(),
        // The line editor clears the screen itself; here there is no terminal.
        Typed::Clear => commands
            .send(Request::Say(vec![
                "error: clear works only on a terminal (input is not from one)".into(),
            ]))
            .is_ok(),
        Typed::Room(_) | Typed::Private { .. } => typed
            .into_commands()
            .into_iter()
            .all(|c| commands.send(Request::Command(c)).is_ok()),
        Typed::Nothing => true,
        Typed::Exit => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `invite` is answered by the program: a new one-time invitation to this node in a
    /// keyed room each time, or how to join an open one.
    #[test]
    fn invite_answers_with_a_new_invitation_each_time() {
        let addr = "127.0.0.1:5001".parse().unwrap();
        let minted = std::sync::Arc::new(crate::guard::Invitations::in_memory());
        let inviter = Inviter::new(minted.clone(), addr);
        let keyed = Typist::new("ann", Some(inviter), addr);
        let mut tokens = Vec::new();
        for _ in 0..2 {
            match classify("invite", &keyed) {
                Typed::Request(Request::Say(lines)) => {
                    assert_eq!(lines.len(), 2, "{lines:?}");
                    assert_eq!(lines[0], ui::INVITATION_INTRO);
                    let inv = super::super::invitation::Invitation::parse(&lines[1]).unwrap();
                    assert!(inv.once, "a one-time invitation");
                    assert_eq!(inv.contact, "127.0.0.1:5001");
                    assert!(minted.live().contains(&inv.key), "the guard answers it");
                    tokens.push(lines[1].clone());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_ne!(tokens[0], tokens[1], "each invite mints a new one");
        let open = Typist::new("ann", None, addr);
        match classify("/invite", &open) {
            Typed::Request(Request::Say(lines)) => {
                assert!(
                    lines[0].contains("--join 127.0.0.1:5001 --insecure"),
                    "{lines:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        match classify("/me waves", &open) {
            Typed::Room(texts) => assert_eq!(texts, ["* ann waves"]),
            other => panic!("{other:?}"),
        }
    }

    /// A paste over the limit is never refused: room and private messages alike go out
    /// as several, in order, each within the limit.
    #[test]
    fn long_pastes_are_split() {
        let typist = Typist::new("ann", None, "127.0.0.1:5001".parse().unwrap());
        let paste = "é".repeat(400);
        let sent = classify(&format!("send bob,cy {paste}"), &typist).into_commands();
        let half = MAX_DIRECT_TEXT_BYTES / 2;
        let to = vec!["bob".to_string(), "cy".to_string()];
        assert_eq!(
            sent,
            [
                Command::Send {
                    to: to.clone(),
                    text: "é".repeat(half)
                },
                Command::Send {
                    to,
                    text: "é".repeat(400 - half)
                },
            ]
        );
        let sent = classify(&paste, &typist).into_commands();
        assert_eq!(sent.len(), 2);
        assert!(
            sent.iter()
                .all(|c| matches!(c, Command::SendAll { text } if text.len() <= MAX_TEXT_BYTES))
        );
    }
}
