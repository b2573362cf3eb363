//! The program's screen: the one place its lines are written, by one thread, in the
//! order they were given, each a whole line ending in a newline.
//!
//! Without the line editor, lines go straight to stdout. Once the editor is attached
//! ([`EditorLink::attach`]), they go through its printer, which draws them above the
//! prompt. How that printer (rustyline's) works shapes this module:
//!
//! - While the editor is not reading a line (before its first prompt, between two
//!   lines, after it stopped) the printer writes the text straight to the terminal, as
//!   it is, wherever the cursor stands; the next prompt is then drawn from the start of
//!   the cursor's row, erasing what stands there. That is how lines were lost: printed
//!   without their newline just before a prompt. So the writer gives the printer text
//!   only while the editor is reading (it says so from inside its read: [`Phase`]), and
//!   every text ends with a newline; lines printed before the editor exists are all out
//!   before it draws its first prompt.
//! - While the editor reads, the printer hands the text over through a one-place queue,
//!   which the editor empties between keys. If a key that ends the read (Enter) is
//!   taken first, the text waits for the next read, or is dropped with the editor if
//!   there is none. So after each batch the writer hands over a [`NO_CHANGE`] marker,
//!   which the queue takes only once the batch has been taken, and nothing else: the
//!   next batch cannot overtake a waiting one, and if the editor stops for good first,
//!   the marker is refused and the writer prints the batch itself. (Were the batch
//!   taken and the editor stopped in the instant before the writer looks again, it
//!   would show twice rather than not at all.)
//!
//! One race is left, inside rustyline: its printer checks whether the editor is in its
//! read, then writes. If the writer is descheduled right between its own check of the
//! phase and the printer's, while the editor ends its read, the text goes straight to
//! the terminal next to the line just typed: whole and not erased, but on that row (and
//! at the very end of a session, a batch waiting in the queue could then be lost).

use crate::driver::ShownMark;
use crate::ids::Seq;
use rustyline::ExternalPrinter;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Prints above the line editor's prompt.
pub type EditorPrinter = Box<dyn ExternalPrinter + Send>;

/// Up one row and down again: drawn above the prompt it changes nothing on the screen,
/// and written at the start of an empty row neither. It ends with a newline, so the
/// printer adds none.
const NO_CHANGE: &str = "\x1b[A\n";

/// Where the line editor is, as the writer needs to know it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Not reading yet, or between two lines: text would be written where the cursor
    /// stands. Lines wait.
    #[default]
    Between,
    /// Reading a line: text goes to the editor, which draws it above the prompt.
    Reading,
    /// A key that ends the read was taken; the read is about to end. Lines wait.
    Leaving,
    /// Stopped for good: lines go straight to stdout.
    Gone,
}

/// The editor's phase, shared by the editor thread and the writer.
#[derive(Default)]
struct Shared {
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Shared {
    fn set(&self, to: Phase, only_from: Option<Phase>) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if only_from.is_none_or(|from| *phase == from) {
            *phase = to;
            self.changed.notify_all();
        }
    }

    /// Waits until the editor reads (`true`) or has stopped (`false`).
    fn wait_reading(&self) -> bool {
        let phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let phase = self
            .changed
            .wait_while(phase, |p| matches!(p, Phase::Between | Phase::Leaving))
            .unwrap_or_else(|e| e.into_inner());
        *phase == Phase::Reading
    }
}

/// What the writer thread is asked to do.
enum Job {
    /// Lines to print, and what they show ([`Printed`]): once they are out, the screen's
    /// mark moves past it.
    Lines(Vec<String>, Printed),
    /// Print above the line editor's prompt from now on; say so on the sender once every
    /// earlier line is out.
    Editor(EditorPrinter, Sender<()>),
    /// Everything is out; stop.
    Close,
}

/// What a batch of lines shows, for the mark of what was printed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Printed {
    /// The number of the last room message among them, if any.
    pub room: Option<Seq>,
    /// How many private messages received are among them.
    pub directs: u64,
}

impl Printed {
    /// `later`, printed after this.
    fn then(self, later: Printed) -> Printed {
        Printed {
            room: later.room.or(self.room),
            directs: self.directs + later.directs,
        }
    }

    /// Moves `mark` past what these lines show.
    pub fn mark(self, mark: &ShownMark) {
        if let Some(seq) = self.room {
            mark.shown(seq);
        }
        mark.directs_shown(self.directs);
    }
}

/// The program's screen: hands lines to the writer thread.
pub struct Screen {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Screen {
    /// Starts the writer thread, printing to stdout; it moves `mark` past each message
    /// once its line is out.
    pub fn open(mark: ShownMark) -> Screen {
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let editor = Arc::clone(&shared);
        let writer = std::thread::spawn(move || write_jobs(queue, &editor, &mark));
        Screen {
            jobs,
            shared,
            writer: Some(writer),
        }
    }

    /// Prints lines in order (each without its newline), after every line given before;
    /// `shows` is what they show.
    pub fn lines(&self, lines: Vec<String>, shows: Printed) {
        // The writer only stops when told to, in `close`.
        let _ = self.jobs.send(Job::Lines(lines, shows));
    }

    /// What the line editor uses to attach itself and say where it is.
    pub fn link(&self) -> EditorLink {
        EditorLink {
            jobs: self.jobs.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Prints everything given so far, then stops the writer thread.
    pub fn close(mut self) {
        let _ = self.jobs.send(Job::Close);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The line editor's side of the screen.
#[derive(Clone)]
pub struct EditorLink {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

impl EditorLink {
    /// From now on lines are printed above the editor's prompt through `printer`.
    /// Returns once every line printed before is out, so the editor's first prompt comes
    /// below them; call it before the editor first reads.
    pub fn attach(&self, printer: EditorPrinter) {
        self.shared.set(Phase::Between, None);
        let (done, out) = mpsc::channel();
        if self.jobs.send(Job::Editor(printer, done)).is_ok() {
            // An error only means the writer has stopped: nothing is left to wait for.
            let _ = out.recv();
        }
    }

    /// Call from inside a read, once the editor has the terminal (any callback made while
    /// it draws the prompt): text may go to the editor now. Only the first call of a read
    /// counts.
    pub fn reading(&self) {
        self.shared.set(Phase::Reading, Some(Phase::Between));
    }

    /// Call from inside a read when a key that ends it (Enter, Ctrl-C, Ctrl-D on an empty
    /// line) is taken, before the read returns.
    pub fn leaving(&self) {
        self.shared.set(Phase::Leaving, Some(Phase::Reading));
    }

    /// Call once a read has returned, before the next one.
    pub fn between(&self) {
        self.shared.set(Phase::Between, None);
    }

    /// Call when the editor has stopped for good, after dropping it (its printer fails
    /// from then on): lines go straight to stdout again.
    pub fn detach(&self) {
        self.shared.set(Phase::Gone, None);
    }
}

/// The writer thread: takes jobs in order until told to close.
fn write_jobs(queue: Receiver<Job>, shared: &Shared, mark: &ShownMark) {
    let mut editor: Option<EditorPrinter> = None;
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        next = match job {
            Job::Lines(mut lines, mut shows) => {
                // Lines already waiting join this batch, up to a job of another kind.
                let mut other = None;
                while let Ok(job) = queue.try_recv() {
                    match job {
                        Job::Lines(more, more_shows) => {
                            lines.extend(more);
                            shows = shows.then(more_shows);
                        }
                        job => {
                            other = Some(job);
                            break;
                        }
                    }
                }
                print(&mut editor, shared, lines);
                shows.mark(mark);
                other.or_else(|| queue.recv().ok())
            }
            Job::Editor(printer, done) => {
                editor = Some(printer);
                let _ = done.send(());
                queue.recv().ok()
            }
            Job::Close => None,
        };
    }
}

/// Prints `lines` above the editor's prompt, or to stdout if there is no editor or it
/// has stopped (then it stays stopped).
fn print(editor: &mut Option<EditorPrinter>, shared: &Shared, lines: Vec<String>) {
    if let Some(printer) = editor {
        let mut text = lines.join("\n");
        text.push('\n');
        if above_prompt(printer, shared, text) {
            return;
        }
        *editor = None;
    }
    print_lines(&lines);
}

/// Hands `text` to the editor while it reads; `true` once the editor has taken it (and
/// drawn it), `false` if the editor stopped for good before.
fn above_prompt(printer: &mut EditorPrinter, shared: &Shared, text: String) -> bool {
    // The marker is taken once the text is (see the module doc); if the read ended
    // meanwhile, the text waits in the queue for the next read, and so does the marker.
    shared.wait_reading()
        && printer.print(text).is_ok()
        && shared.wait_reading()
        && printer.print(NO_CHANGE.to_string()).is_ok()
}

/// Prints lines to stdout and flushes at once (readers may be a pipe). The lines go out
/// in one write where the kernel takes them so (stdout is line-buffered: a write per line
/// would cost a system call per line in a burst). A closed stdout is ignored: the node
/// keeps running and leaves cleanly.
pub fn print_lines<S: AsRef<str>>(lines: &[S]) {
    let mut text = String::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum());
    for l in lines {
        text.push_str(l.as_ref());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
