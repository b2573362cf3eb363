//! Node tasks run in the test process itself (`driver::NodeTask`), for the tests that
//! look at the node task rather than at the program.

use ringchat::driver::{self, Loss, NodeHandle, Output, Request, Security};
use ringchat::proto::{Command, Event, NodeConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How long any one expected output may take.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Starts a node that creates its own room (with `security`) and waits until it has.
pub async fn room_of_one(name: &str, security: Security) -> NodeHandle {
    let socket = driver::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        .await
        .expect("a free port");
    let addr = socket.local_addr().expect("bound");
    let node = driver::NodeTask::new(socket, NodeConfig::new(name, addr, None))
        .security(security)
        .start()
        .expect("nothing to read without a store");
    joined(node, &format!("{name}'s room is created")).await
}

/// `node` once it is in the room (its `Joined`), or a failure saying `what` did not
/// happen within [`LIMIT`].
async fn joined(mut node: NodeHandle, what: &str) -> NodeHandle {
    tokio::time::timeout(LIMIT, async {
        while !matches!(
            node.events.recv().await,
            Some(Output::Event(Event::Joined { .. }))
        ) {}
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {LIMIT:?}"));
    node
}

/// Starts a node (joining through `join` if given, its configuration edited by `edit`)
/// with `loss` on its outgoing datagrams, and waits until it is in the room.
pub async fn in_room(
    name: &str,
    join: Option<SocketAddr>,
    loss: Loss,
    edit: impl FnOnce(&mut NodeConfig),
) -> NodeHandle {
    let socket = driver::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        .await
        .expect("a free port");
    let addr = socket.local_addr().expect("bound");
    let mut cfg = NodeConfig::new(name, addr, join);
    edit(&mut cfg);
    let node = driver::NodeTask::new(socket, cfg)
        .loss(loss)
        .start()
        .expect("nothing to read without a store");
    joined(node, &format!("{name} is in the room")).await
}

/// Asks `node` for `status` and returns its Lamport time.
pub async fn lamport_of(node: &mut NodeHandle) -> u64 {
    node.commands
        .send(Request::Command(Command::Status))
        .expect("the node is running");
    tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(Output::Event(Event::Status(s))) = node.events.recv().await {
                return s.lamport.0;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a status within {LIMIT:?}"))
}
