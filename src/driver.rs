//! The tokio driver: one UDP socket, one deadline timer, a command channel in and an
//! event channel out. It makes no protocol decisions; it moves bytes and time into the
//! [`Node`] and its outputs out.
//!
//! [`spawn`] runs a node as a task behind channels (the tests use this directly);
//! [`run`] is the program: it wires stdin through [`ui::parse`] and events through
//! [`ui::render`] to stdout.

use crate::guard::{Guard, KEY_BYTES};
use crate::ids::{NodeId, WallMillis};
use crate::logging::LAMPORT;
use crate::proto::{Command, Event, Node, NodeConfig};
use crate::store::{Store, StoreError};
use crate::terminal::{self, Names};
use crate::ui::{self, Input, Style};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncBufReadExt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

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
}

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

/// How a node guards its socket.
#[derive(Clone, Debug)]
pub struct Security {
    /// The room key; without it the room is unauthenticated.
    pub room_key: Option<[u8; KEY_BYTES]>,
    /// Datagrams let through per source IP per second.
    pub per_source_per_second: u32,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            room_key: None,
            per_source_per_second: DEFAULT_RATE_LIMIT,
        }
    }
}

/// Default for [`Security::per_source_per_second`].
pub const DEFAULT_RATE_LIMIT: u32 = 5000;
/// Inputs (datagrams and requests) the node task takes, when they are already waiting,
/// before it drains the node's outputs: the acks and answers to a burst then share
/// datagrams (see `proto::batch`), while the wait for the first answer stays short.
const BURST: usize = 64;

/// Starts a node on `socket` with a fresh random id and no room key. `cfg.addr` should be
/// the socket's address as members reach it.
pub fn spawn(socket: UdpSocket, cfg: NodeConfig) -> NodeHandle {
    spawn_with(socket, cfg, Security::default())
}

/// [`spawn`] with a room key and a rate limit, keeping nothing on disk.
pub fn spawn_with(socket: UdpSocket, cfg: NodeConfig, security: Security) -> NodeHandle {
    spawn_lossy(socket, cfg, security, Loss::default())
}

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

/// [`spawn_with`], dropping outgoing datagrams as `loss` says (benchmarks and tests).
pub fn spawn_lossy(
    socket: UdpSocket,
    cfg: NodeConfig,
    security: Security,
    loss: Loss,
) -> NodeHandle {
    match spawn_stored(socket, cfg, security, None, loss) {
        Ok(handle) => handle,
        Err(_) => unreachable!("without a store nothing is read"),
    }
}

/// [`spawn_lossy`], keeping the node's state in `store` (if given): the node starts
/// again from what it holds, and every change is written there before anything that
/// depends on it is sent.
pub fn spawn_stored(
    socket: UdpSocket,
    mut cfg: NodeConfig,
    security: Security,
    store: Option<Store>,
    loss: Loss,
) -> Result<NodeHandle, StoreError> {
    let id = NodeId(rand::random());
    cfg.rng_seed = rand::random();
    cfg.persist = store.is_some();
    let local_addr = cfg.addr;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let node = match &store {
        None => Node::new(cfg, id, Instant::now()),
        Some(s) => {
            let saved = s.load(cfg.history_limit)?;
            if !saved.is_empty() {
                let notice = format!(
                    "restored {} room messages and {} kept private messages from {}",
                    saved.history.iter().filter(|e| !e.is_filler()).count(),
                    saved.kept.len(),
                    s.path().display()
                );
                let _ = ev_tx.send(Output::Event(Event::Notice(notice)));
            }
            Node::restore(cfg, id, Instant::now(), saved)
        }
    };
    let guard = Guard::new(id, security.room_key, security.per_source_per_second);
    let task = tokio::spawn(node_loop(socket, guard, node, store, cmd_rx, ev_tx, loss));
    Ok(NodeHandle {
        commands: cmd_tx,
        events: ev_rx,
        local_addr,
        id,
        task,
    })
}

/// Makes the node's pending changes durable. A failure is told to the user (the node
/// goes on; what it keeps from then on may be lost on a crash).
fn persist(store: &mut Option<Store>, node: &mut Node, events: &mpsc::UnboundedSender<Output>) {
    let writes: Vec<crate::proto::Write> = std::iter::from_fn(|| node.poll_write()).collect();
    let Some(store) = store.as_mut() else {
        return;
    };
    if let Err(e) = store.apply(&writes) {
        warn!(lamport = node.lamport().0, "not kept on disk: {e}");
        let line = format!("error: not kept on disk: {e}");
        let _ = events.send(Output::Say(vec![line]));
    }
}

/// Sends every pending datagram (sealed) and forwards every event; `true` once the node
/// is done.
async fn drain(
    socket: &UdpSocket,
    guard: &Guard,
    node: &mut Node,
    store: &mut Option<Store>,
    events: &mpsc::UnboundedSender<Output>,
    loss: &Loss,
) -> bool {
    // On disk before anything of this input (an ack, say) goes out.
    persist(store, node, events);
    while let Some(t) = node.poll_transmit() {
        if loss.drops() {
            continue;
        }
        if let Err(e) = socket.send_to(&guard.seal(&t.bytes), t.to).await {
            warn!(lamport = node.lamport().0, "send to {} failed: {e}", t.to);
        }
    }
    let mut done = false;
    while let Some(mut ev) = node.poll_event() {
        done |= matches!(ev, Event::Left | Event::JoinFailed(_));
        if let Event::Status(s) = &mut ev {
            s.stats.refused = guard.refused_total();
        }
        // A closed receiver only means nobody is listening any more.
        let _ = events.send(Output::Event(ev));
    }
    LAMPORT.store(node.lamport().0, Ordering::Relaxed);
    done
}

/// Has the guard check and open one received datagram (the rate limit first, so a flood
/// costs no decryption) and hands a plain one to the node.
fn take_datagram(guard: &Guard, node: &mut Node, from: SocketAddr, datagram: &[u8]) {
    match guard.open(from, datagram) {
        Ok(plain) => node.handle_datagram(Instant::now(), from, &plain),
        Err(why) => guard.note_refused(from, &why),
    }
}

/// Whether the node loop answers `request` itself (lines to print, history from the
/// database) rather than the node: then everything the node owes from earlier inputs
/// must go out first, or the answer would overtake theirs.
fn answered_by_the_loop(request: &Request, store: &Option<Store>) -> bool {
    match request {
        Request::Say(_) => true,
        Request::Command(Command::History { .. }) => store.is_some(),
        Request::Command(_) => false,
    }
}

/// Hands one request to the node (or answers it from the database).
fn take_request(
    request: Request,
    node: &mut Node,
    store: &Option<Store>,
    events: &mpsc::UnboundedSender<Output>,
) {
    match request {
        // History comes from the database, which keeps more than memory does.
        Request::Command(Command::History { count, search }) if store.is_some() => {
            let ev = match store.as_ref().map(|s| s.history(count, search.as_deref())) {
                Some(Ok(entries)) => Output::Event(Event::History(entries)),
                Some(Err(e)) => Output::Say(vec![format!("error: reading history: {e}")]),
                None => return,
            };
            let _ = events.send(ev);
        }
        Request::Command(cmd) => node.handle_command(Instant::now(), wall_now(), cmd),
        Request::Say(lines) => {
            let _ = events.send(Output::Say(lines));
        }
    }
}

/// The node task. It sleeps until a datagram, a request or the node's deadline; then it
/// takes that and everything else already waiting (up to [`BURST`] inputs) before it
/// drains the node's outputs, so that answers to a burst share datagrams. Datagrams are
/// read here, with no task or queue in between: one wake-up per burst, not two per
/// datagram.
async fn node_loop(
    socket: UdpSocket,
    guard: Guard,
    mut node: Node,
    mut store: Option<Store>,
    mut commands: mpsc::UnboundedReceiver<Request>,
    events: mpsc::UnboundedSender<Output>,
    loss: Loss,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut commands_open = true;
    // One timer for the node's life, moved when its deadline moves: cheaper than a new
    // one per turn of the loop.
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    loop {
        if drain(&socket, &guard, &mut node, &mut store, &events, &loss).await {
            return;
        }
        let deadline = node.poll_timeout().map(tokio::time::Instant::from_std);
        if let Some(d) = deadline
            && d != sleep.deadline()
        {
            sleep.as_mut().reset(d);
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => take_datagram(&guard, &mut node, from, &buf[..n]),
                // ICMP errors surface here on some systems; the protocol's timeouts cover them.
                Err(e) => warn!(lamport = node.lamport().0, "receive failed: {e}"),
            },
            c = commands.recv(), if commands_open => match c {
                Some(request) => {
                    if answered_by_the_loop(&request, &store)
                        && drain(&socket, &guard, &mut node, &mut store, &events, &loss).await
                    {
                        return;
                    }
                    take_request(request, &mut node, &store, &events);
                }
                None => {
                    commands_open = false;
                    node.handle_command(Instant::now(), wall_now(), Command::Leave);
                }
            },
            () = &mut sleep, if deadline.is_some() => node.handle_timeout(Instant::now()),
        }
        // Whatever else is already waiting joins this burst.
        let mut taken = 1;
        while taken < BURST {
            let mut any = false;
            if let Ok((n, from)) = socket.try_recv_from(&mut buf) {
                take_datagram(&guard, &mut node, from, &buf[..n]);
                taken += 1;
                any = true;
            }
            if commands_open && let Ok(request) = commands.try_recv() {
                if answered_by_the_loop(&request, &store)
                    && drain(&socket, &guard, &mut node, &mut store, &events, &loss).await
                {
                    return;
                }
                take_request(request, &mut node, &store, &events);
                taken += 1;
                any = true;
            }
            if !any {
                break;
            }
        }
    }
}

/// Prints lines to stdout and flushes at once (readers may be a pipe). A closed stdout
/// is ignored: the node keeps running and leaves cleanly.
pub fn print_lines<S: AsRef<str>>(lines: &[S]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{}", l.as_ref());
    }
    let _ = out.flush();
}

/// Reads stdin line by line into commands; end of input or `exit` leaves.
async fn read_stdin(commands: mpsc::UnboundedSender<Request>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                let _ = commands.send(Request::Say(vec![format!("error: reading input: {e}")]));
                break;
            }
        };
        match request_for(&line) {
            Typed::Request(r) => {
                if commands.send(r).is_err() {
                    return;
                }
            }
            Typed::Nothing => {}
            Typed::Exit => break,
        }
    }
    let _ = commands.send(Request::Command(Command::Leave));
}

/// What a typed line amounts to for the node loop.
pub enum Typed {
    /// Something to send to the node loop (a command, or lines to print in order).
    Request(Request),
    /// A blank line.
    Nothing,
    /// Leave and exit.
    Exit,
}

/// Turns a typed line into what the node loop gets (shared by the plain reader and the
/// line editor).
pub fn request_for(line: &str) -> Typed {
    match ui::parse(line) {
        Ok(Input::Command(c)) => Typed::Request(Request::Command(c)),
        Ok(Input::Help) => {
            Typed::Request(Request::Say(ui::HELP.lines().map(str::to_string).collect()))
        }
        Ok(Input::Exit) => Typed::Exit,
        Ok(Input::Nothing) => Typed::Nothing,
        Err(e) => Typed::Request(Request::Say(vec![format!("error: {e}")])),
    }
}

/// The program: runs a node on `socket`, reading commands from stdin and printing events
/// to stdout, until the user leaves (exit code 0) or joining fails (exit code 1).
///
/// On a terminal it uses the line editor (`terminal`), with colour unless `NO_COLOR` is
/// set; on pipes, plain lines; with `json`, one JSON object per line.
///
/// With `store`, the node starts from what it holds and keeps its state there.
pub async fn run(
    cfg: NodeConfig,
    socket: UdpSocket,
    security: Security,
    store: Option<Store>,
    json: bool,
) -> ExitCode {
    use std::io::IsTerminal;
    let stdout_tty = std::io::stdout().is_terminal();
    let interactive = !json && stdout_tty && std::io::stdin().is_terminal();
    let mut out = UserOutput {
        json,
        style: Style::for_output(stdout_tty && !json),
        printer: None,
    };
    let prompt = format!("{}@{}> ", cfg.name, cfg.addr);
    let history = crate::identity::default_path()
        .parent()
        .map(|d| d.join(format!("history-{}", cfg.name)));
    if json {
        out.line(
            serde_json::json!({"event": "listening", "addr": cfg.addr.to_string()}).to_string(),
        );
    } else {
        out.line(format!("listening on {}", cfg.addr));
    }
    if security.room_key.is_none() {
        eprintln!(
            "warning: no room key: this room is unauthenticated (anyone who can reach it can \
             join, read and post); create a key with `ringchat keygen --room FILE` and start \
             every member with --room-key-file FILE"
        );
    }
    let mut handle = match spawn_stored(socket, cfg, security, store, Loss::default()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Typed (or piped) commands run once the node is in the room.
    let mut input = Some(handle.commands.clone());
    let ctrl_c = handle.commands.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = ctrl_c.send(Request::Command(Command::Leave));
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            print_lines(&["interrupted twice; exiting without leaving"]);
            std::process::exit(130);
        }
    });
    drop(handle.commands);
    let names = Names::default();
    let mut seeding_names = false;
    let mut code = ExitCode::SUCCESS;
    while let Some(item) = handle.events.recv().await {
        let ev = match item {
            Output::Say(lines) => {
                out.say(lines);
                continue;
            }
            Output::Event(ev) => ev,
        };
        learn_names(&names, &ev);
        match &ev {
            Event::JoinFailed(_) => code = ExitCode::FAILURE,
            Event::Joined { .. } => {
                if let Some(commands) = input.take() {
                    if interactive {
                        match terminal::start(
                            prompt.clone(),
                            names.clone(),
                            history.clone(),
                            commands.clone(),
                        ) {
                            Ok(p) => {
                                out.printer = Some(p);
                                // Learn the members' names for completion, quietly.
                                seeding_names =
                                    commands.send(Request::Command(Command::List)).is_ok();
                            }
                            Err(e) => {
                                eprintln!("warning: no line editor ({e}); reading plain lines");
                                tokio::spawn(read_stdin(commands));
                            }
                        }
                    } else {
                        tokio::spawn(read_stdin(commands));
                    }
                }
            }
            Event::Members(_) if seeding_names => {
                seeding_names = false;
                continue;
            }
            _ => {}
        }
        out.event(&ev);
    }
    code
}

/// Member names for completion, from whatever events mention them.
fn learn_names(names: &Names, ev: &Event) {
    match ev {
        Event::MemberOnline { name } | Event::MemberOffline { name } => names.add(name),
        Event::Members(list) => list.iter().for_each(|m| names.add(&m.name)),
        Event::Room { entry, .. } => names.add(&entry.name),
        Event::Direct { from, .. } => names.add(from),
        _ => {}
    }
}

/// Where the program's lines go: stdout (plain, coloured or JSON), or above the prompt.
struct UserOutput {
    json: bool,
    style: Style,
    printer: Option<terminal::Printer>,
}

impl UserOutput {
    fn line(&mut self, line: String) {
        match &mut self.printer {
            Some(p) => {
                if p.print(line.clone()).is_err() {
                    print_lines(&[line]);
                }
            }
            None => print_lines(&[line]),
        }
    }

    fn event(&mut self, ev: &Event) {
        if self.json {
            return self.line(ui::render_json(ev));
        }
        for l in ui::render_styled(ev, &self.style) {
            self.line(l);
        }
    }

    /// The REPL's own lines (help, typing errors).
    fn say(&mut self, lines: Vec<String>) {
        for l in lines {
            let l = if self.json {
                match l.strip_prefix("error: ") {
                    Some(e) => serde_json::json!({"event": "error", "error": e}).to_string(),
                    None => serde_json::json!({"event": "notice", "text": l}).to_string(),
                }
            } else {
                l
            };
            self.line(l);
        }
    }
}
