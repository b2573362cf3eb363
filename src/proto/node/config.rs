//! [`NodeConfig`]: a node's settings and their defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// A node's settings. [`NodeConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This user's name.
    pub name: String,
    /// The address other members reach this node at.
    pub addr: SocketAddr,
    /// A member to join through; `None` creates a new room with this node as leader.
    pub join: Option<SocketAddr>,
    /// Time before an unacked reliable message is resent to a peer whose round trip is not
    /// measured yet, and the longest wait between resends to a peer measured faster
    /// (500 ms); a slower path's own timeout may reach 4 times it (see `proto::reliable`).
    pub ack_timeout: Duration,
    /// Resends before a reliable message is given up (8).
    pub max_retries: u32,
    /// How long joining may take before it fails (3 s).
    pub join_timeout: Duration,
    /// How long a gap in the room's sequence may stay open before asking the leader (300 ms).
    pub gap_repair_after: Duration,
    /// How long an own room message may wait for its commit before it is resubmitted (3 s).
    pub resubmit_after: Duration,
    /// How long a graceful leave waits for confirmations and acks (2 s).
    pub leave_timeout: Duration,
    /// The secret of this user's ed25519 identity. [`NodeConfig::new`] derives a stand-in
    /// from the name, good for tests and simulations only: the program loads or creates
    /// a real one (`--identity`).
    pub identity: [u8; 32],
    /// Seed of the node's own random generator (challenge nonces).
    pub rng_seed: u64,
    /// Room messages kept in history (10 000).
    pub history_limit: usize,
    /// Recent room messages a newcomer is shown as history when it joins (100).
    pub join_history: usize,
    /// Interval between heartbeats to the ring successor (100 ms).
    pub heartbeat_interval: Duration,
    /// Heartbeat intervals of silence before a neighbour is suspected and probed (3); it
    /// is declared dead after one and a half times as long.
    pub suspect_after: u32,
    /// How long a started election may take before it is started again (2 s).
    pub election_timeout: Duration,
    /// How long a new leader waits for survivors' room messages before it goes on (1.5 s).
    pub recovery_timeout: Duration,
    /// How long the leader keeps a departed member in the member table: once it has
    /// been offline this long and nobody holds messages for it, the leader drops it and
    /// tells every member to (1 h; see `ring/departed.rs`).
    pub forget_after: Duration,
    /// Whether the driver keeps state on disk: the node then queues a
    /// [`Write`](crate::proto::Write) for every change worth keeping (off).
    pub persist: bool,
    /// Whether room messages carry their origin's signature and are shown only once it
    /// checks (on; see `proto::seal`). Off only to measure what the checks cost
    /// (`ringchat-bench throughput --compare-seal`): every member of a room must agree.
    pub seal_room: bool,
    /// Bytes the guard adds to every datagram on the wire (its seal in a keyed room, none
    /// in an open one): counted in each direction by the anti-amplification budget, so
    /// that the bound holds for what travels, not for what the node wrote (0).
    pub wire_overhead: usize,
}

/// A deterministic identity for `name` (tests and simulations).
fn stand_in_identity(name: &str) -> [u8; 32] {
    let mut seed = [0x5a; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b.rotate_left(i as u32 % 8);
    }
    seed
}

impl NodeConfig {
    /// Default settings for `name` at `addr`, joining through `join` if given.
    pub fn new(name: impl Into<String>, addr: SocketAddr, join: Option<SocketAddr>) -> Self {
        let name = name.into();
        NodeConfig {
            name: name.clone(),
            addr,
            join,
            ack_timeout: Duration::from_millis(500),
            max_retries: 8,
            join_timeout: Duration::from_secs(3),
            gap_repair_after: Duration::from_millis(300),
            resubmit_after: Duration::from_secs(3),
            leave_timeout: Duration::from_secs(2),
            identity: stand_in_identity(&name),
            rng_seed: 0,
            history_limit: 10_000,
            join_history: 100,
            heartbeat_interval: Duration::from_millis(100),
            suspect_after: 3,
            election_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_millis(1500),
            forget_after: Duration::from_secs(3600),
            persist: false,
            seal_room: true,
            wire_overhead: 0,
        }
    }

    /// Silence after which a neighbour is suspected.
    pub fn suspect_after(&self) -> Duration {
        self.heartbeat_interval * self.suspect_after
    }

    /// Silence after which a neighbour is declared dead.
    pub fn dead_after(&self) -> Duration {
        self.suspect_after().mul_f64(1.5)
    }
}
