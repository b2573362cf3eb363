//! Tab completion for the input line: a command name in the first word, a member's name
//! anywhere (`hello ca` -> `hello carol`), recipients after `send` and `/msg` without
//! your own name (you cannot write to yourself).

/// Command words offered in the first word, without a slash.
const COMMANDS: [&str; 12] = [
    "send_all", "send", "list", "status", "history", "dereg", "reg", "help", "exit", "quit",
    "clear", "invite",
];

/// Command words offered after a slash.
const SLASH_COMMANDS: [&str; 14] = [
    "me", "msg", "quit", "clear", "list", "status", "history", "send", "send_all", "dereg", "reg",
    "help", "exit", "invite",
];

/// What Tab offers at a place in the line: the text from `start` to the cursor is
/// replaced by one of `candidates`, each with what follows it (a space, or `: ` after a
/// name that starts the line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Byte offset where the word being completed starts.
    pub start: usize,
    /// Replacements, the most likely first.
    pub candidates: Vec<String>,
}

/// What to offer for `line` with the cursor at byte `cursor`. `names` are the members
/// known, in the order to offer them (see `Roster::names_for_completion`); `me` is your
/// name.
pub fn offer(line: &str, cursor: usize, names: &[String], me: &str) -> Offer {
    let before = line.get(..cursor).unwrap_or(line);
    // The word being completed: back to a space or a comma.
    let start = before
        .rfind(|c: char| c.is_whitespace() || c == ',')
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    let first_word = before[..start].trim().is_empty();
    let matching = |list: &mut dyn Iterator<Item = &String>, suffix: &str| -> Vec<String> {
        list.filter(|n| n.starts_with(word))
            .map(|n| format!("{n}{suffix}"))
            .collect()
    };
    if first_word {
        if let Some(bare) = word.strip_prefix('/') {
            let candidates = SLASH_COMMANDS
                .iter()
                .filter(|c| c.starts_with(bare))
                .map(|c| format!("/{c} "))
                .collect();
            return Offer { start, candidates };
        }
        let mut candidates: Vec<String> = COMMANDS
            .iter()
            .filter(|c| c.starts_with(word) && !word.is_empty())
            .map(|c| format!("{c} "))
            .collect();
        candidates.extend(matching(&mut names.iter(), ": "));
        return Offer { start, candidates };
    }
    // After `send`, `/send` or `/msg`, the second word is the recipients.
    let (command, rest) = before
        .trim_start()
        .split_once(char::is_whitespace)
        .unwrap_or((before, ""));
    let in_recipients = matches!(command, "send" | "/send" | "/msg")
        && !rest.trim_start().contains(char::is_whitespace);
    if in_recipients {
        let others = &mut names.iter().filter(|n| n.as_str() != me);
        return Offer {
            start,
            candidates: matching(others, " "),
        };
    }
    Offer {
        start,
        candidates: matching(&mut names.iter(), " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["carol", "cass", "bob", "alice"].map(String::from).to_vec()
    }

    fn at_end(line: &str) -> Offer {
        offer(line, line.len(), &names(), "alice")
    }

    #[test]
    fn a_name_anywhere_in_the_line() {
        assert_eq!(
            at_end("hello ca"),
            Offer {
                start: 6,
                candidates: vec!["carol ".into(), "cass ".into()]
            }
        );
        // In the middle of a line: only what is before the cursor counts.
        let line = "hello bo and more";
        assert_eq!(offer(line, 8, &names(), "alice").candidates, ["bob "]);
        assert_eq!(at_end("hi zed").candidates, Vec::<String>::new());
    }

    #[test]
    fn recipients_never_offer_yourself() {
        let o = at_end("send ");
        assert_eq!(o.start, 5);
        assert_eq!(o.candidates, ["carol ", "cass ", "bob "]);
        assert_eq!(at_end("/msg a").candidates, Vec::<String>::new());
        let o = at_end("send bob,c");
        assert_eq!((o.start, o.candidates.len()), (9, 2));
        // In the text, every name is offered.
        assert_eq!(at_end("send bob hi a").candidates, ["alice "]);
    }

    #[test]
    fn commands_in_the_first_word() {
        assert_eq!(at_end("se").candidates, ["send_all ", "send "]);
        assert_eq!(at_end("/cl").candidates, ["/clear "]);
        assert_eq!(at_end("/m").candidates, ["/me ", "/msg "]);
        // A name that starts the line is addressed, irssi-style.
        assert_eq!(at_end("bo").candidates, ["bob: "]);
        assert_eq!(
            at_end("").candidates.len(),
            4,
            "names only on an empty line"
        );
    }

    #[test]
    fn odd_cursors_do_not_panic() {
        let line = "héllo ça";
        for cursor in 0..=line.len() + 2 {
            let _ = offer(line, cursor, &names(), "alice");
        }
    }
}
