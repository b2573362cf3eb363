//! What every part of the node uses: the settings, the node's id, its Lamport clock, the
//! protocol timers, and the outputs other than datagrams (events for the user, changes to
//! make durable), which every part adds to through one [`Outputs`] value.

use super::*;

/// Logs a line stamped with the node's Lamport time: `log_at!(info, self, "...")`.
macro_rules! log_at {
    ($level:ident, $node:expr, $($arg:tt)+) => {
        tracing::$level!(lamport = $node.ctx.clock.now().0, $($arg)+)
    };
}

/// The context every part of a [`Node`] shares.
pub(super) struct Context {
    /// The node's settings.
    pub(super) cfg: NodeConfig,
    /// The node's id.
    pub(super) id: NodeId,
    /// The node's Lamport clock.
    pub(super) clock: LamportClock,
    /// The protocol timers.
    pub(super) timers: TimerTable,
    /// The time of the latest input (what is held back in the transport is judged by it).
    pub(super) now: Instant,
    /// Events and durable changes produced, drained by the driver.
    pub(super) out: Outputs,
    /// This user's identity: it signs own room messages and opens direct messages.
    pub(super) identity: SigningKey,
}

impl Context {
    /// The context of a node created at `now`.
    pub(super) fn new(cfg: NodeConfig, id: NodeId, clock: LamportClock, now: Instant) -> Self {
        Context {
            identity: SigningKey::from_bytes(&cfg.identity),
            cfg,
            id,
            clock,
            timers: TimerTable::default(),
            now,
            out: Outputs::default(),
        }
    }
}

/// Events for the user and changes to make durable, in the order produced.
#[derive(Default)]
pub(super) struct Outputs {
    events: VecDeque<Event>,
    /// Changes to make durable (only with [`NodeConfig::persist`]).
    writes: VecDeque<Write>,
    /// The member table digest and epoch last written (to write the table on change).
    written_room: Option<(u64, Option<Epoch>)>,
    /// The Lamport time last written.
    written_clock: Lamport,
}

impl Outputs {
    /// Queues an event for the user or driver.
    pub(super) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Queues a change to make durable.
    pub(super) fn write(&mut self, w: Write) {
        self.writes.push_back(w);
    }

    /// The next event, oldest first.
    pub(super) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next change to make durable, oldest first.
    pub(super) fn next_write(&mut self) -> Option<Write> {
        self.writes.pop_front()
    }

    /// Writes the member table (made by `entries`) when its digest or the epoch changed,
    /// else the Lamport time every [`CLOCK_WRITE_STEP`](crate::proto::durable::CLOCK_WRITE_STEP) ticks.
    pub(super) fn note_room(
        &mut self,
        digest: u64,
        epoch: Option<Epoch>,
        lamport: Lamport,
        entries: impl FnOnce() -> Vec<Member>,
    ) {
        let room = (digest, epoch);
        if self.written_room != Some(room) {
            self.written_room = Some(room);
            self.written_clock = lamport;
            self.write(Write::Room {
                members: entries(),
                epoch,
                lamport,
            });
        } else if lamport.0 >= self.written_clock.0 + crate::proto::durable::CLOCK_WRITE_STEP {
            self.written_clock = lamport;
            self.write(Write::Clock(lamport));
        }
    }
}
