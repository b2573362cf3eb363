//! The node task: one UDP socket, one deadline timer, a command channel in and an
//! output channel out, the node's database, and its guard (pairwise sessions between
//! members, the room key for the join exchange, replay windows, rate limits). It makes no protocol decisions; it moves bytes and time into the
//! [`Node`] and its outputs out.
//!
//! [`NodeTask`] starts a node as a task behind channels; the interactive
//! program (`crate::program`) and the tests drive it through a [`NodeHandle`]. Nothing
//! here reads the terminal or prints.
//!
//! The node answers every command itself: `history` from the database, which the task
//! lends it as a [`HistorySource`] (more than memory keeps); and a member's fetch of room
//! messages older than its memory holds from the database too, which the task reads for
//! it ([`Node::poll_read`], [`Node::handle_read`]);
//! and `status` with the guard's refusals, which the task reports to it first
//! ([`Node::note_guard_refused`]): the node never sees the datagrams the guard refused.
//!
//! The database is written behind, on a thread of its own (`persist`): what the node
//! owes after a write waits, in order, until the write is on disk, while the node goes on
//! (`owing`).
//!
//! Two bounds live here, on the I/O side of the node:
//!
//! - **Members are never rate limited like strangers.** After every input the task tells
//!   the guard the member table when it changed, and whether the node is outside the
//!   room ([`Guard::set_table`]); a member's address then has a budget of its own (see
//!   `guard`), so a burst between members is never refused while floods from strangers
//!   still are. The same table says whom the guard holds sessions with: every datagram
//!   the node sends to a member goes through the guard ([`Guard::send`]), sealed in the
//!   session with that member, and every datagram that reaches the node opened in a
//!   session whose peer is its sender, or is the join exchange.
//! - **Sender back-pressure.** While the node has [`MAX_UNCONFIRMED`] of its own room
//!   messages unconfirmed, the task takes no request from the command channel: what the
//!   program hands over waits there, in order, until the room has caught up. The node's
//!   own state (the outbox, its resubmissions) stays bounded however fast the input comes.

use crate::guard::{Guard, KEY_BYTES};
use crate::ids::{NodeId, WallMillis};
use crate::logging::NodeClock;
use crate::proto::{Command, Event, HistorySource, Membership, Node, NodeConfig};
use crate::store::{Store, StoreError};
use crate::wire::Member;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{Instrument, warn};

mod inputs;
mod owing;
mod persist;
mod shown;
mod wake;

pub use shown::ShownMark;
use shown::ShownWrites;

use inputs::node_loop;

use wake::next_wake;

use owing::{next_applied, owe, pay_ready, persist, serve_reads, settle, writer_gone};
use persist::{Held, Owed, Writer, WriterGone};

/// Receive buffer: larger than any valid datagram, so oversized ones are seen as such.
const RECV_BUFFER: usize = 2048;

/// What the node loop takes in: a command, or lines to print in turn with the events
/// (the REPL's own replies, such as help or a typing error, stay in order with the
/// answers to earlier commands).
#[derive(Debug)]
pub enum Request {
    /// A command for the node.
    Command(Command),
    /// Lines to print once everything before them is out.
    Say(Vec<String>),
}

/// What the node loop gives out, in order.
// Each output is moved once through a channel; boxing events would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Output {
    /// An event from the node.
    Event(Event),
    /// Lines a [`Request::Say`] asked for.
    Say(Vec<String>),
    /// The node stopped on a fault it cannot go on from (its database failed): the line
    /// that says why. It is the last output; the program exits with an error.
    Stopped(String),
}

/// A running node: send it commands, receive its events.
pub struct NodeHandle {
    /// Requests for the node. Dropping every sender makes the node leave gracefully.
    pub commands: mpsc::UnboundedSender<Request>,
    /// The node's output; closed once the node has left or failed to join.
    pub events: mpsc::UnboundedReceiver<Output>,
    /// Where the node listens.
    pub local_addr: SocketAddr,
    /// The node's id.
    pub id: NodeId,
    /// The node's task; abort it to simulate a crash.
    pub task: JoinHandle<()>,
    /// Room in the command channel for a reader that must not run ahead of the node (a
    /// piped stdin): take a permit (and forget it) before each request; the node task
    /// gives one back for each request it takes, up to [`INPUT_QUEUE`].
    pub input_room: Arc<Semaphore>,
    /// Where the program marks the last room message it printed; the node keeps it on
    /// disk, and after a crash shows again, as history, what it took but never printed.
    pub shown: ShownMark,
}

/// Requests a paced reader may have waiting in the command channel.
pub const INPUT_QUEUE: usize = 4096;

/// Receive buffer asked of the kernel: bursts of a busy room fit while the node works.
const SOCKET_RECEIVE_BUFFER: usize = 4 << 20;

/// Binds the node's one UDP socket, with a large receive buffer (the kernel may grant
/// less; that is not an error).
pub async fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(SOCKET_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The wall clock as stamped on messages.
pub fn wall_now() -> WallMillis {
    WallMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// How a node guards its socket (members always talk in sessions keyed from their
/// identities, except with [`NodeTask::room_key_only`]).
#[derive(Clone)]
pub struct Security {
    /// The room key; without it (and without `invitation`) the room is unauthenticated.
    pub room_key: Option<[u8; KEY_BYTES]>,
    /// The secret of the one-time invitation this node joined with, when it holds no room
    /// key: the room is keyed, and the node asks its inviter with it.
    pub invitation: Option<[u8; KEY_BYTES]>,
    /// The invitations this node minted (`invite`), whose asks it answers.
    pub invitations: Option<Arc<crate::guard::Invitations>>,
    /// Datagrams let through per source IP per second.
    pub per_source_per_second: u32,
}

impl std::fmt::Debug for Security {
    /// Leaves the keys out: whether each is there, and the rate.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("room_key", &self.room_key.is_some())
            .field("invitation", &self.invitation.is_some())
            .field("invitations", &self.invitations)
            .field("per_source_per_second", &self.per_source_per_second)
            .finish()
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            room_key: None,
            invitation: None,
            invitations: None,
            per_source_per_second: DEFAULT_RATE_LIMIT,
        }
    }
}

/// Default for [`Security::per_source_per_second`].
pub const DEFAULT_RATE_LIMIT: u32 = 5000;
/// Own room messages a node may have unconfirmed (handed to the node, not yet seen
/// committed) before its task stops taking requests from the command channel; it takes
/// them again as soon as fewer are unconfirmed. Larger than any window the room needs on
/// loopback (a sender there keeps a few hundred in flight at full speed), small enough that
/// the node's outbox and resubmissions stay cheap.
pub const MAX_UNCONFIRMED: usize = 1024;

/// Injected loss for benchmarks and tests: the fraction of a node's outgoing datagrams
/// dropped just before they would be sent. Clones share one setting, which may change
/// while the node runs. The program never sets it (no loss).
#[derive(Clone, Debug, Default)]
pub struct Loss(Arc<AtomicU32>);

impl Loss {
    /// Drops `fraction` (0 to 1) of the datagrams sent from now on.
    pub fn set(&self, fraction: f64) {
        let ppm = (fraction.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.0.store(ppm, Ordering::Relaxed);
    }

    /// Whether to drop the next datagram.
    fn drops(&self) -> bool {
        let ppm = self.0.load(Ordering::Relaxed);
        ppm > 0 && rand::random_range(0..1_000_000) < ppm
    }
}

/// A node task to start: a socket and settings, with a room key and rate limit
/// ([`Security`]), a database, or injected loss (benchmarks and tests) where given.
/// [`NodeTask::start`] runs it.
pub struct NodeTask {
    socket: UdpSocket,
    cfg: NodeConfig,
    security: Security,
    store: Option<Store>,
    loss: Loss,
    sessions: bool,
}

impl NodeTask {
    /// A node on `socket` with no room key, nothing kept on disk and no injected loss.
    /// `cfg.addr` should be the socket's address as members reach it.
    pub fn new(socket: UdpSocket, cfg: NodeConfig) -> Self {
        NodeTask {
            socket,
            cfg,
            security: Security::default(),
            store: None,
            loss: Loss::default(),
            sessions: true,
        }
    }

    /// Guards the socket with `security` (room key, rate limit).
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Keeps the node's state in `store` (if given): the node starts again from what it
    /// holds, and every change is written there before anything that depends on it is sent.
    pub fn store(mut self, store: Option<Store>) -> Self {
        self.store = store;
        self
    }

    /// Drops outgoing datagrams as `loss` says (benchmarks and tests only).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// No sessions: every datagram sealed with the room key alone (or plain without one),
    /// as before sessions, so that members can read and forge each other's traffic. Only
    /// for measuring what sessions cost (`ringchat-bench throughput --compare-sessions`);
    /// the program never does this.
    pub fn room_key_only(mut self) -> Self {
        self.sessions = false;
        self
    }

    /// Starts the node with a fresh random id as a task on the current tokio runtime.
    /// Fails only if the database cannot be read.
    pub fn start(self) -> Result<NodeHandle, StoreError> {
        spawn_task(self)
    }
}

/// Starts `task`: see [`NodeTask::start`].
fn spawn_task(task: NodeTask) -> Result<NodeHandle, StoreError> {
    let NodeTask {
        socket,
        mut cfg,
        security,
        store,
        loss,
        sessions,
    } = task;
    let id = NodeId(rand::random());
    cfg.rng_seed = rand::random();
    let cfg_identity = cfg.identity;
    cfg.persist = store.is_some();
    if security.room_key.is_some() || security.invitation.is_some() {
        cfg.wire_overhead = crate::guard::SEAL_OVERHEAD;
    }
    let local_addr = cfg.addr;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    // The other members a restarted node saved: its guard knows them while it looks for
    // its room (the node holds them apart from its table until the room takes it back),
    // so that it asks them as the member it is.
    let mut saved_members = Vec::new();
    let mut shown_mark = ShownMark::default();
    let mut handed = shown::Handed::default();
    let node = match &store {
        None => Node::new(cfg, id, Instant::now()),
        Some(s) => {
            let saved = s.load(cfg.history_limit)?;
            let table = Membership::from_entries(id, saved.members.clone());
            saved_members = (table.current().into_iter())
                .filter(|m| m.name != cfg.name)
                .cloned()
                .collect();
            let restored = shown::restore(s, &saved, &cfg.name)?;
            shown_mark = restored.mark;
            handed = restored.handed;
            for ev in restored.events {
                let _ = ev_tx.send(Output::Event(ev));
            }
            Node::restore(cfg, id, Instant::now(), saved)
        }
    };
    let disk = match store {
        None => None,
        Some(store) => {
            let path = store.path().to_path_buf();
            Some(Writer::start(store).map_err(|source| StoreError::Writer { path, source })?)
        }
    };
    let mut guard = Guard::new(id, security.room_key, security.per_source_per_second)
        .with_invitation(security.invitation)
        .with_invitations(security.invitations.clone());
    if sessions {
        guard = guard.with_identity(&cfg_identity);
    }
    // Log lines written on this node's behalf carry its own Lamport time, also when
    // several nodes share the process.
    let clock = NodeClock::default();
    let span = crate::logging::node_span(local_addr, &clock);
    let io = Io {
        socket,
        guard,
        disk,
        held: Held::default(),
        stopping: false,
        events: ev_tx,
        loss,
        clock,
        members_digest: None,
        saved_members,
        input_room: Arc::new(Semaphore::new(INPUT_QUEUE)),
        shown: shown_mark,
        shown_writes: ShownWrites::default(),
        handed,
    };
    let input_room = io.input_room.clone();
    let shown = io.shown.clone();
    let task = tokio::spawn(node_loop(io, node, cmd_rx).instrument(span));
    Ok(NodeHandle {
        commands: cmd_tx,
        events: ev_rx,
        local_addr,
        id,
        task,
        input_room,
        shown,
    })
}

/// What the node task works with besides the node itself.
struct Io {
    socket: UdpSocket,
    guard: Guard,
    /// The database's writer, when the node keeps one.
    disk: Option<Writer>,
    /// What the node owes while a batch of writes is on its way to disk.
    held: Held,
    /// The database's writer stopped: the node task ends.
    stopping: bool,
    events: mpsc::UnboundedSender<Output>,
    loss: Loss,
    /// The node's Lamport time as its log lines show it.
    clock: NodeClock,
    /// The member table's digest, whether the node was outside the room, and whether it
    /// was restarting, when the table was last given to the guard.
    members_digest: Option<(u64, bool, bool)>,
    /// The other members this node saved, until it is first in the room again.
    saved_members: Vec<Member>,
    /// See [`NodeHandle::input_room`].
    input_room: Arc<Semaphore>,
    /// See [`NodeHandle::shown`].
    shown: ShownMark,
    /// What was written of it.
    shown_writes: ShownWrites,
    /// What was handed to the program (see [`shown::Handed`]).
    handed: shown::Handed,
}

/// Sends every pending datagram (sealed) and forwards every event, or keeps them in
/// order until the writes before them are on disk; `true` once the node is done (then
/// everything has gone out) or must stop.
async fn drain(io: &mut Io, node: &mut Node) -> bool {
    // Writes first: reads and everything this input produced come after them.
    persist(io, node);
    serve_reads(io, node).await;
    persist(io, node);
    learn_members(
        &io.guard,
        node,
        &mut io.members_digest,
        &mut io.saved_members,
    );
    let now = Instant::now();
    while let Some(t) = node.poll_transmit() {
        io.guard.send(now, t.to, &t.bytes);
    }
    while let Some((to, bytes)) = io.guard.poll_transmit() {
        owe(io, node, Owed::Datagram(to, bytes)).await;
    }
    let mut done = false;
    while let Some(ev) = node.poll_event() {
        done |= matches!(ev, Event::Left | Event::JoinFailed(_));
        owe(io, node, Owed::Output(Output::Event(ev))).await;
    }
    io.clock.set(node.lamport().0);
    pay_ready(io, node).await;
    if done {
        settle(io, node).await;
        shown::wait_for_screen(&io.shown, &io.handed).await;
        persist(io, node);
    }
    done || io.stopping
}

/// Gives the guard the member table when it changed since `known` (its digest then, and
/// whether the node was outside the room, and still held `saved` members), so that
/// members get their own rate budget and sessions are held with members only. Until the
/// node is first in the room, the members it saved (`saved`) are added: a restarted node
/// asks them as a member.
fn learn_members(
    guard: &Guard,
    node: &Node,
    known: &mut Option<(u64, bool, bool)>,
    saved: &mut Vec<Member>,
) {
    if !saved.is_empty() && !node.is_outside_room() {
        saved.clear();
    }
    let table = node.members();
    let now = (table.digest(), node.is_outside_room(), !saved.is_empty());
    if *known == Some(now) {
        return;
    }
    *known = Some(now);
    guard.set_table(now.1, table.entries().chain(saved.iter()));
}
