//! Sender back-pressure in the node task: while a member has `driver::MAX_UNCONFIRMED` of
//! its own room messages unconfirmed, its task takes no more requests from the command
//! channel; once the room confirms them, it takes the rest, in order.
//!
//! Two node tasks in this process: alice leads, bob joins. Every datagram alice sends is
//! dropped (`driver::Loss`), so bob's messages reach her and are sequenced there (she
//! shows each one), but bob never sees one confirmed. Bob is handed more than the bound,
//! then `status`. Alice must show exactly the bound of them, however long she waits; when
//! her datagrams flow again, she shows all of them, and bob answers `status`.
//! Failure detection and resends are slowed so that the silence of alice is not taken for
//! a death during the test.

mod common;

use common::node_task::LIMIT;
use ringchat::driver::{self, Loss, MAX_UNCONFIRMED, NodeHandle, Output, Request};
use ringchat::proto::{Command, Event, NodeConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::timeout;

/// Messages handed to bob: past the bound.
const HANDED: usize = MAX_UNCONFIRMED + 200;

/// Starts a node (joining through `join` if given) that takes a long silence for a pause,
/// not a death, with `loss` on its outgoing datagrams.
async fn start(name: &str, join: Option<SocketAddr>, loss: Loss) -> NodeHandle {
    let socket = driver::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        .await
        .expect("a free port");
    let addr = socket.local_addr().expect("bound");
    let mut cfg = NodeConfig::new(name, addr, join);
    cfg.suspect_after = 600; // a minute of silence before suspicion
    cfg.max_retries = 30;
    let mut node = driver::NodeTask::new(socket, cfg)
        .loss(loss)
        .start()
        .expect("nothing to read without a store");
    timeout(LIMIT, async {
        while !matches!(
            node.events.recv().await,
            Some(Output::Event(Event::Joined { .. }))
        ) {}
    })
    .await
    .unwrap_or_else(|_| panic!("{name} is in the room within {LIMIT:?}"));
    node
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_at_its_bound_of_unconfirmed_messages_takes_no_more_commands() {
    let alice_loss = Loss::default();
    let mut alice = start("alice", None, alice_loss.clone()).await;
    let mut bob = start("bob", Some(alice.local_addr), Loss::default()).await;
    alice_loss.set(1.0);
    for k in 1..=HANDED {
        bob.commands
            .send(Request::Command(Command::SendAll {
                text: format!("m{k}"),
            }))
            .expect("bob is running");
    }
    bob.commands
        .send(Request::Command(Command::Status))
        .expect("bob is running");

    // Bob hands alice exactly the bound, and then nothing more, however long she waits.
    let mut seen = 0;
    shown_from_bob(&mut alice, &mut seen, MAX_UNCONFIRMED, LIMIT).await;
    let more = timeout(Duration::from_millis(700), async {
        loop {
            match alice.events.recv().await {
                Some(Output::Event(Event::Room { entry, .. })) if entry.name == "bob" => {
                    return entry.text;
                }
                Some(_) => {}
                None => panic!("alice's task ended"),
            }
        }
    })
    .await;
    if let Ok(text) = more {
        panic!("bob sent {text:?} while {MAX_UNCONFIRMED} of his messages were unconfirmed");
    }
    let early = std::iter::from_fn(|| bob.events.try_recv().ok())
        .any(|o| matches!(o, Output::Event(Event::Status(_))));
    assert!(!early, "bob answered `status` queued behind the bound");

    // Alice's datagrams flow again: bob's messages are confirmed, he takes the rest, and
    // his answer to `status` comes after all of them.
    alice_loss.set(0.0);
    shown_from_bob(&mut alice, &mut seen, HANDED, 3 * LIMIT).await;
    let status = timeout(LIMIT, async {
        loop {
            match bob.events.recv().await {
                Some(Output::Event(Event::Status(s))) => return s,
                Some(_) => {}
                None => panic!("bob's task ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("bob answers `status` within {LIMIT:?} once the room moves"));
    assert!(
        status.unconfirmed <= MAX_UNCONFIRMED,
        "bob had {} unconfirmed",
        status.unconfirmed
    );
}
