//! The node task keeps its outputs in the order of the requests that caused them, also
//! when several requests wait at once and are taken in one burst.

mod common;

use common::node_task::{LIMIT, room_of_one};
use ringchat::driver::{Output, Request, Security};
use ringchat::proto::{Command, Event};

/// What one output is, for the order check.
fn kind(out: &Output) -> Option<String> {
    match out {
        Output::Event(Event::Members(_)) => Some("members".into()),
        Output::Event(Event::Status(_)) => Some("status".into()),
        Output::Say(lines) => Some(lines.join(" ")),
        _ => None,
    }
}

#[tokio::test]
async fn lines_to_print_stay_behind_the_answers_to_earlier_commands() {
    let mut node = room_of_one("alice", Security::default()).await;
    let limit = LIMIT;
    // All of these wait in the channel before the node task next wakes, so it takes
    // them in one burst.
    let requests = [
        Request::Command(Command::List),
        Request::Say(vec!["one".into()]),
        Request::Command(Command::Status),
        Request::Say(vec!["two".into()]),
    ];
    for r in requests {
        node.commands.send(r).expect("the node is running");
    }
    let mut order = Vec::new();
    tokio::time::timeout(limit, async {
        while order.len() < 4 {
            let out = node.events.recv().await.expect("the node is running");
            order.extend(kind(&out));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("four answers within 10 s, got {order:?}"));
    assert_eq!(order, ["members", "one", "status", "two"]);
}
