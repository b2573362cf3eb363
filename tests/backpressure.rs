//! Sender back-pressure in the node task: while a member has `driver::MAX_UNCONFIRMED` of
//! its own room messages unconfirmed, its task takes no more requests from the command
//! channel; once the room confirms them, it takes the rest, in order.
//!
//! Two node tasks in this process: alice leads, bob joins. Every datagram alice sends is
//! dropped (`driver::Loss`), so bob's messages reach her but none is committed (that takes
//! bob's copy too) and bob sees none confirmed. Bob is handed one message short of the
//! bound and `status`: he answers it, with that many unconfirmed. Then more than the bound
//! and `status` again: that one waits behind the bound, however long. When alice's
//! datagrams flow again, she shows all of them, and bob answers.
//! Failure detection and resends are slowed so that the silence of alice is not taken for
//! a death during the test.

mod common;

use common::node_task::{self, LIMIT};
use ringchat::driver::{Loss, MAX_UNCONFIRMED, NodeHandle, Output, Request};
use ringchat::proto::{Command, Event};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

/// Messages handed to bob: past the bound.
const HANDED: usize = MAX_UNCONFIRMED + 200;

/// Starts a node (joining through `join` if given) that takes a long silence for a pause,
/// not a death, with `loss` on its outgoing datagrams.
async fn start(name: &str, join: Option<SocketAddr>, loss: Loss) -> NodeHandle {
    node_task::in_room(name, join, loss, |cfg| {
        cfg.suspect_after = 600; // a minute of silence before suspicion
        cfg.max_retries = 30;
    })
    .await
}

/// Takes `node`'s events until `bob`'s room messages among them reach `count`; returns
/// how many there were, or fails after `limit`.
async fn shown_from_bob(node: &mut NodeHandle, seen: &mut usize, count: usize, limit: Duration) {
    let got = timeout(limit, async {
        while *seen < count {
            match node.events.recv().await {
                Some(Output::Event(Event::Room { entry, .. })) if entry.name == "bob" => {
                    *seen += 1;
                }
                Some(_) => {}
                None => panic!("alice's task ended"),
            }
        }
    })
    .await;
    assert!(
        got.is_ok(),
        "alice shows {seen} of bob's messages after {limit:?}, not {count}"
    );
}

/// Bob's next answer to `status` within `limit`, if any.
async fn status_of(bob: &mut NodeHandle, limit: Duration) -> Option<ringchat::proto::StatusView> {
    timeout(limit, async {
        loop {
            match bob.events.recv().await {
                Some(Output::Event(Event::Status(s))) => return *s,
                Some(_) => {}
                None => panic!("bob's task ended"),
            }
        }
    })
    .await
    .ok()
}

fn send_all(bob: &NodeHandle, k: usize) {
    bob.commands
        .send(Request::Command(Command::SendAll {
            text: format!("m{k}"),
        }))
        .expect("bob is running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_at_its_bound_of_unconfirmed_messages_takes_no_more_commands() {
    let alice_loss = Loss::default();
    let mut alice = start("alice", None, alice_loss.clone()).await;
    let mut bob = start("bob", Some(alice.local_addr), Loss::default()).await;
    alice_loss.set(1.0);

    // Below the bound, bob takes every request.
    for k in 1..MAX_UNCONFIRMED {
        send_all(&bob, k);
    }
    bob.commands
        .send(Request::Command(Command::Status))
        .expect("bob is running");
    let below = status_of(&mut bob, LIMIT)
        .await
        .unwrap_or_else(|| panic!("bob answers `status` below the bound within {LIMIT:?}"));
    assert_eq!(below.unconfirmed, MAX_UNCONFIRMED - 1);

    // At the bound, he takes nothing more, however long the room is silent.
    for k in MAX_UNCONFIRMED..=HANDED {
        send_all(&bob, k);
    }
    bob.commands
        .send(Request::Command(Command::Status))
        .expect("bob is running");
    if let Some(s) = status_of(&mut bob, Duration::from_millis(1500)).await {
        panic!(
            "bob answered `status` queued behind the bound ({} unconfirmed)",
            s.unconfirmed
        );
    }

    // Alice's datagrams flow again: bob's messages are committed, he takes the rest, and
    // his answer to `status` comes after all of them.
    alice_loss.set(0.0);
    let mut seen = 0;
    shown_from_bob(&mut alice, &mut seen, HANDED, 3 * LIMIT).await;
    let after = status_of(&mut bob, LIMIT)
        .await
        .unwrap_or_else(|| panic!("bob answers `status` within {LIMIT:?} once the room moves"));
    assert!(
        after.unconfirmed <= MAX_UNCONFIRMED,
        "bob had {} unconfirmed",
        after.unconfirmed
    );
}
