//! Log lines carry the Lamport time of the node that wrote them, also when several nodes
//! share one process. (Its own test binary: the subscriber is installed for this test's
//! thread only, and a test running beside it without one would make `tracing` cache the
//! node span as disabled.)

mod common;

use common::node_task::{LIMIT, lamport_of, room_of_one};
use ringchat::driver::{Request, Security};
use ringchat::logging::{LamportFormat, NodeClock, node_span};
use ringchat::proto::Command;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("sink").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// A subscriber that formats as the log file does, into this sink.
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(LamportFormat)
                .with_writer(move || writer.clone()),
        )
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("sink")).into_owned()
    }
}

/// The rules of the stamp: a `lamport` field wins; otherwise the innermost node span's
/// clock as it is when the line is written; outside any node, 0.
#[test]
fn the_stamp_is_the_field_else_the_node_spans_clock() {
    let sink = Sink::default();
    tracing::subscriber::with_default(sink.subscriber(), || {
        let (a, b) = (NodeClock::default(), NodeClock::default());
        let span_a = node_span("127.0.0.1:1".parse().expect("addr"), &a);
        let span_b = node_span("127.0.0.1:2".parse().expect("addr"), &b);
        a.set(7);
        b.set(40);
        span_a.in_scope(|| tracing::warn!("from a"));
        span_b.in_scope(|| {
            tracing::warn!("from b");
            tracing::warn!(lamport = 3u64, "from the protocol");
        });
        a.set(8);
        span_a.in_scope(|| tracing::info!(peer = 2u64, "a again"));
        tracing::warn!("outside any node");
    });
    let text = sink.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "7: WARN from a",
            "40: WARN from b",
            "3: WARN from the protocol",
            "8: INFO a again peer=2",
            "0: WARN outside any node",
        ]
    );
}

/// Two nodes in one process, far apart in Lamport time: a line the guard logs (it passes
/// no clock of its own) carries the time of the node whose guard wrote it, not of
/// whichever node ran last.
#[tokio::test]
async fn log_lines_carry_their_own_nodes_lamport_time() {
    let sink = Sink::default();
    // The test runtime has one thread, so every node task logs through this subscriber.
    let _default = tracing::subscriber::set_default(sink.subscriber());

    let mut busy = room_of_one("alice", Security::default()).await;
    for i in 0..40 {
        let text = format!("tick {i}");
        busy.commands
            .send(Request::Command(Command::SendAll { text }))
            .expect("alice is running");
    }
    let keyed = Security {
        room_key: Some([7; ringchat::guard::KEY_BYTES]),
        ..Security::default()
    };
    let mut quiet = room_of_one("carol", keyed).await;
    let carol_before = lamport_of(&mut quiet).await;
    let alice = lamport_of(&mut busy).await;
    assert!(
        alice > carol_before + 20,
        "alice ({alice}) must be well ahead of carol ({carol_before}) for this test to mean anything"
    );

    // Unsealed bytes: carol's guard refuses them and logs it.
    let stranger = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a socket");
    stranger
        .send_to(b"not sealed", quiet.local_addr)
        .expect("send");
    let refused = tokio::time::timeout(LIMIT, async {
        loop {
            // A round trip through carol's task: by its answer, an earlier datagram has
            // usually been taken too; ask again until the log shows it.
            let now = lamport_of(&mut quiet).await;
            let log = sink.text();
            if let Some(line) = log.lines().find(|l| l.contains("refused a datagram")) {
                return (line.to_string(), now);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no refusal logged within {LIMIT:?}:\n{}", sink.text()));
    let (line, carol_after) = refused;
    let stamp: u64 = line
        .split_once(": ")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no Lamport prefix: {line:?}"));
    assert!(
        (carol_before..=carol_after).contains(&stamp),
        "{line:?} carries {stamp}, not carol's time ({carol_before}..={carol_after}; alice is at {alice})"
    );
}
