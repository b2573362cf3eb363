//! The node task's loop: it sleeps until a datagram, a request or a deadline, takes that
//! and whatever else already waits (a burst: up to [`BURST`] datagrams and
//! [`BURST_REQUESTS`] requests), then drains the node's outputs; with the bounds on what
//! it takes (sender back-pressure, the database writer's backlog).

use super::*;

/// Datagrams the node task takes, when they are already waiting, before it drains the
/// node's outputs: the acks and answers to a burst then share datagrams (see
/// `proto::batch`), while the wait for the first answer stays short.
const BURST: usize = 64;
/// Requests (typed lines) the node task takes in one burst besides its datagrams, when
/// they are already waiting: the own room messages of one burst are sealed as one run
/// (`proto::node::room::proof`), so a pipe's lines cost one signature per this many.
const BURST_REQUESTS: usize = 256;

/// Whether the node may take another request: the command channel is open and, while the
/// node is in the room, fewer than [`MAX_UNCONFIRMED`] of its own room messages are
/// unconfirmed. Out of the room (joining, offline after `dereg`, leaving) the node refuses
/// room messages itself, so requests flow: `reg` must get through.
fn takes_requests(node: &Node, commands_open: bool) -> bool {
    commands_open && (!node.is_member() || node.unconfirmed() < MAX_UNCONFIRMED)
}

/// Has the guard check and open one received datagram (the rate limit first, so a flood
/// costs no decryption) and hands a plain one to the node; handshakes stay with the guard.
fn take_datagram(guard: &Guard, node: &mut Node, from: SocketAddr, datagram: &[u8]) {
    let now = Instant::now();
    match guard.receive(now, from, datagram) {
        Ok(Some(opened)) if opened.in_session => node.handle_datagram(now, from, &opened.plain),
        Ok(Some(opened)) => node.handle_outside_datagram(now, from, &opened.plain),
        Ok(None) => {}
        Err(why) => guard.note_refused(from, &why),
    }
}

/// Whether the node loop answers `request` itself (lines to print) rather than the node:
/// then everything the node owes from earlier inputs must be sent or queued first, or
/// the answer would overtake theirs.
fn answered_by_the_loop(request: &Request) -> bool {
    matches!(request, Request::Say(_))
}

/// Hands one request to the node: a command (with the database to answer `history`
/// from, once every write handed over is on disk, and the guard's refusals for
/// `status`), or lines to print in turn.
async fn take_request(request: Request, node: &mut Node, io: &mut Io) {
    match request {
        Request::Command(cmd) => {
            if matches!(cmd, Command::Status) {
                node.note_guard_refused(io.guard.refused_total());
            }
            let now = Instant::now();
            if !matches!(cmd, Command::History { .. }) || io.disk.is_none() {
                node.handle_command_with(now, wall_now(), cmd, None);
                return;
            }
            // `history` reads the database once everything shown before it is there.
            persist(io, node);
            let Some(w) = io.disk.as_mut() else { return };
            let gone = match w.settled().await {
                Ok(disk) => {
                    let source = &disk.store as &dyn HistorySource;
                    node.handle_command_with(now, wall_now(), cmd, Some(source));
                    false
                }
                Err(WriterGone) => {
                    node.handle_command_with(now, wall_now(), cmd, None);
                    true
                }
            };
            if gone {
                writer_gone(io, node).await;
            }
        }
        Request::Say(lines) => owe(io, node, Owed::Output(Output::Say(lines))).await,
    }
}

/// Whether the node task takes inputs: they wait (in the kernel's buffer, the command
/// channel) while the database writer is far behind.
fn takes_input(io: &Io) -> bool {
    let writing = io.disk.as_ref().is_some_and(|w| w.in_flight().is_some());
    !(writing && io.held.is_full())
}

/// Takes one request: when the loop answers it itself, what the node owes from earlier
/// inputs goes out first. `true` once the node is done.
async fn take_request_in_order(request: Request, node: &mut Node, io: &mut Io) -> bool {
    if io.input_room.available_permits() < INPUT_QUEUE {
        io.input_room.add_permits(1);
    }
    if answered_by_the_loop(&request) && drain(io, node).await {
        return true;
    }
    take_request(request, node, io).await;
    false
}

/// The node task. It sleeps until a datagram, a request or the node's deadline; then it
/// takes that and everything else already waiting (up to [`BURST`] datagrams and
/// [`BURST_REQUESTS`] requests) before it drains the node's outputs, so that answers to a
/// burst share datagrams. Datagrams are read here, with no task or queue in between: one
/// wake-up per burst, not two per datagram. Requests wait in their channel while the node has [`MAX_UNCONFIRMED`] own
/// messages unconfirmed.
pub(super) async fn node_loop(
    mut io: Io,
    mut node: Node,
    mut commands: mpsc::UnboundedReceiver<Request>,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut commands_open = true;
    // One timer for the node's life, moved when its deadline moves: cheaper than a new
    // one per turn of the loop.
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    loop {
        if drain(&mut io, &mut node).await {
            return;
        }
        let (urgent, lazy) = io.guard.poll_timers();
        let deadline =
            next_wake(node.poll_timeout(), urgent, lazy).map(tokio::time::Instant::from_std);
        if let Some(d) = deadline
            && d != sleep.deadline()
        {
            sleep.as_mut().reset(d);
        }
        let writing = io.disk.as_ref().is_some_and(|w| w.in_flight().is_some());
        let open = takes_input(&io);
        // What this burst took: datagrams, requests.
        let mut burst = (0, 0);
        tokio::select! {
            received = io.socket.recv_from(&mut buf), if open => match received {
                Ok((n, from)) => {
                    burst.0 = 1;
                    take_datagram(&io.guard, &mut node, from, &buf[..n]);
                }
                // ICMP errors surface here on some systems; the protocol's timeouts cover them.
                Err(e) => warn!(lamport = node.lamport().0, "receive failed: {e}"),
            },
            c = commands.recv(), if open && takes_requests(&node, commands_open) => match c {
                Some(request) => {
                    burst.1 = 1;
                    if take_request_in_order(request, &mut node, &mut io).await {
                        return;
                    }
                }
                None => {
                    commands_open = false;
                    node.handle_command(Instant::now(), wall_now(), Command::Leave);
                }
            },
            () = &mut sleep, if open && deadline.is_some() => {
                let now = Instant::now();
                io.guard.handle_timeout(now);
                node.handle_timeout(now);
            }
            word = next_applied(&mut io.disk), if writing => {
                match word {
                    Ok(()) => pay_ready(&mut io, &node).await,
                    Err(WriterGone) => {
                        writer_gone(&mut io, &node).await;
                        return;
                    }
                }
                continue;
            }
        }
        // Whatever else is already waiting joins this burst.
        let (mut datagrams, mut requests) = burst;
        while takes_input(&io) {
            let mut any = false;
            if datagrams < BURST
                && let Ok((n, from)) = io.socket.try_recv_from(&mut buf)
            {
                take_datagram(&io.guard, &mut node, from, &buf[..n]);
                datagrams += 1;
                any = true;
            }
            if requests < BURST_REQUESTS
                && takes_requests(&node, commands_open)
                && let Ok(request) = commands.try_recv()
            {
                if take_request_in_order(request, &mut node, &mut io).await {
                    return;
                }
                requests += 1;
                any = true;
            }
            if !any {
                break;
            }
        }
    }
}
