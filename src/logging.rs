//! Logging: every line of `chat_<port>.log` starts with the node's Lamport time,
//! `<lamport>: <level> <message>`.
//!
//! One file per run: a run starts `chat_<port>.log` afresh, and the previous run's file
//! on that port is kept beside it as `chat_<port>.log.1` (one generation, so a log
//! directory does not grow without bound and the run before a crash is still there).
//!
//! Protocol code passes its clock as a `lamport` field. Any other line written while a
//! node's task runs takes that node's clock: the node task runs inside the span from
//! [`node_span`], which carries the node's [`NodeClock`], and the formatter reads the
//! clock of the innermost such span. Several nodes in one process (tests, the benchmark)
//! each stamp their own lines. A line outside any node shows 0.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::{Event, Span, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::LevelFilter};

/// One node's Lamport time as its node task last published it; clones share the value.
#[derive(Clone, Debug, Default)]
pub struct NodeClock(Arc<AtomicU64>);

impl NodeClock {
    /// Publishes the node's time; call after each input the node took.
    pub fn set(&self, lamport: u64) {
        self.0.store(lamport, Ordering::Relaxed);
    }

    /// The time last published.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The span a node's task runs in (named after the node's address), carrying `clock`
/// for the lines logged inside it. Without a subscriber it is disabled and costs nothing.
pub fn node_span(addr: SocketAddr, clock: &NodeClock) -> Span {
    // At the error level so that it is enabled whatever level the log is filtered to.
    let span = tracing::error_span!("node", %addr);
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>();
        if let Some(data) = registry.and_then(|r| r.span(id)) {
            data.extensions_mut().insert(clock.clone());
        }
    });
    span
}

/// Formats an event as `<lamport>: <LEVEL> <message> <other fields>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LamportFormat;

#[derive(Default)]
struct Fields {
    lamport: Option<u64>,
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "lamport" {
            self.lamport = Some(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    /// Text fields are written as they are, without Rust's quotes and escapes.
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for LamportFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let lamport = f.lamport.unwrap_or_else(|| {
            // The innermost node span's clock.
            ctx.event_scope()
                .and_then(|mut spans| {
                    spans.find_map(|s| s.extensions().get::<NodeClock>().map(NodeClock::get))
                })
                .unwrap_or(0)
        });
        writeln!(
            writer,
            "{lamport}: {} {}{}",
            event.metadata().level(),
            f.message,
            f.rest
        )
    }
}

/// The level from `RINGCHAT_LOG` (error, warn, info, debug, trace), info by default.
fn level() -> LevelFilter {
    std::env::var("RINGCHAT_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// The log file's name for a node on `port`.
pub fn file_name(port: u16) -> String {
    format!("chat_{port}.log")
}

/// Opens `dir/chat_<port>.log` for this run: an existing file (the previous run's) is
/// moved to `chat_<port>.log.1` first, replacing the one before it.
pub fn open_run_file(dir: &Path, port: u16) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(port));
    if path.exists() {
        std::fs::rename(&path, dir.join(format!("{}.1", file_name(port))))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

/// Installs the global subscriber: the log file `dir/chat_<port>.log` for this run (none
/// without a `dir`; see [`open_run_file`]), and stderr too when `verbose`. Keep the
/// returned guard alive until exit so the file is flushed.
pub fn init(
    dir: Option<&Path>,
    port: u16,
    verbose: bool,
) -> std::io::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    let level = level();
    let (file_layer, guard) = match dir {
        None => (None, None),
        Some(dir) => {
            let file = open_run_file(dir, port)?;
            let (writer, guard) = tracing_appender::non_blocking(file);
            let layer = tracing_subscriber::fmt::layer()
                .event_format(LamportFormat)
                .with_writer(writer)
                .with_filter(level);
            (Some(layer), Some(guard))
        }
    };
    let stderr_layer = verbose.then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(LamportFormat)
            .with_writer(std::io::stderr)
            .with_filter(level)
    });
    tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's file starts empty; the run before it is kept as `.1`, and only that one.
    #[test]
    fn each_run_has_its_own_file_and_the_previous_is_kept() {
        let dir = std::env::temp_dir().join(format!("ringchat-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for run in ["first", "second", "third"] {
            use std::io::Write;
            let mut f = open_run_file(&dir, 7).expect("open");
            writeln!(f, "{run}").expect("write");
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
        assert_eq!(read("chat_7.log"), "third\n");
        assert_eq!(read("chat_7.log.1"), "second\n");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["chat_7.log", "chat_7.log.1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Text fields are written plainly: no quotes, no `Some(..)`.
    #[test]
    fn text_fields_are_plain() {
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("sink").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(LamportFormat)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(lamport = 3u64, name = "eve", "peer {} unreachable", "x");
        });
        let text = String::from_utf8_lossy(&sink.0.lock().expect("sink")).into_owned();
        assert_eq!(text, "3: WARN peer x unreachable name=eve\n");
    }
}
