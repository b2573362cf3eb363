//! Private messages in order over a lossy network, on real sockets: three node tasks in
//! this process (alice leads, bob and carol join), a fifth of bob's and of carol's
//! outgoing datagrams dropped (`driver::Loss`), so first tries and acks are lost and
//! resends cross later messages. Bob sends carol 60 private messages as fast as he is
//! handed them; carol shows every one once, in the order written, and bob is told of
//! each (a receipt, or that the leader keeps it).

mod common;

use common::node_task::{self, LIMIT};
use ringchat::driver::{Loss, NodeHandle, Output, Request};
use ringchat::proto::{Command, Event};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

/// Messages bob sends carol.
const SENT: usize = 60;

/// Starts a node (joining through `join` if given) with `loss` on its outgoing datagrams,
/// once it is in the room.
async fn start(name: &str, join: Option<SocketAddr>, loss: Loss) -> NodeHandle {
    node_task::in_room(name, join, loss, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_messages_over_a_lossy_network_arrive_once_in_the_order_written() {
    let alice = start("alice", None, Loss::default()).await;
    let (bob_loss, carol_loss) = (Loss::default(), Loss::default());
    let mut bob = start("bob", Some(alice.local_addr), bob_loss.clone()).await;
    let mut carol = start("carol", Some(alice.local_addr), carol_loss.clone()).await;
    // Bob must know carol before he writes to her.
    bob.commands
        .send(Request::Command(Command::List))
        .expect("bob is running");
    timeout(LIMIT, async {
        loop {
            match bob.events.recv().await {
                Some(Output::Event(Event::Members(m))) if m.iter().any(|v| v.name == "carol") => {
                    break;
                }
                Some(Output::Event(Event::Members(_))) => bob
                    .commands
                    .send(Request::Command(Command::List))
                    .expect("bob is running"),
                Some(_) => {}
                None => panic!("bob's task ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("bob lists carol within {LIMIT:?}"));
    bob_loss.set(0.2);
    carol_loss.set(0.2);

    for k in 0..SENT {
        bob.commands
            .send(Request::Command(Command::Send {
                to: vec!["carol".into()],
                text: format!("dm{k}"),
            }))
            .expect("bob is running");
    }
    let limit = Duration::from_secs(120);
    let mut shown = Vec::new();
    let got = timeout(limit, async {
        while shown.len() < SENT {
            match carol.events.recv().await {
                Some(Output::Event(Event::Direct {
                    text, mine: false, ..
                })) => shown.push(text),
                Some(_) => {}
                None => panic!("carol's task ended"),
            }
        }
    })
    .await;
    let written: Vec<String> = (0..SENT).map(|k| format!("dm{k}")).collect();
    assert!(
        got.is_ok(),
        "carol showed {} of {SENT} within {limit:?}: {shown:?}",
        shown.len()
    );
    assert_eq!(shown, written, "carol shows bob's messages once, in order");

    // Bob hears of each: a receipt, or that the leader keeps it for carol.
    let mut answers = 0;
    let heard = timeout(limit, async {
        while answers < SENT {
            match bob.events.recv().await {
                Some(Output::Event(Event::Receipt { .. } | Event::Saved { .. })) => answers += 1,
                Some(Output::Event(Event::Undelivered { text, reason, .. })) => {
                    panic!("bob was told {text:?} was not delivered ({reason})")
                }
                Some(_) => {}
                None => panic!("bob's task ended"),
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "bob heard of {answers} of {SENT} within {limit:?}"
    );
    drop(alice);
}
