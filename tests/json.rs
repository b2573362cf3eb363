//! `--json` end to end with three real nodes: every stdout line is one JSON object with an
//! `event` field, commands still come from stdin, and the objects carry what a bot needs.

mod common;

use common::{Proc, Scratch};
use serde_json::{Value, json};

/// Starts a node in JSON mode; returns it and its port.
fn start(scratch: &Scratch, name: &str, join: Option<u16>) -> (Proc, u16) {
    let id = scratch.path().join(format!("{name}.identity"));
    let contact = join.map(|p| format!("127.0.0.1:{p}"));
    let mut args = vec!["--name", name, "--port", "0", "--json"];
    let id = id.to_str().expect("utf-8 path").to_string();
    args.extend(["--identity", id.as_str()]);
    if let Some(c) = &contact {
        args.extend(["--join", c.as_str()]);
    }
    let mut p = Proc::spawn(name, scratch, &args);
    let first = p.next_line("the listening object");
    let v: Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(v["event"], "listening");
    let port = v["addr"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a port");
    (p, port)
}

/// Waits for the next object whose `event` is `kind` (and that satisfies `pred`).
fn next_event(p: &mut Proc, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let line = p.expect(
        |l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == kind && pred(&v)),
        &format!("a {kind:?} event"),
    );
    serde_json::from_str(&line).expect("JSON")
}

#[test]
fn a_room_of_three_speaks_json() {
    let scratch = Scratch::new();
    let (mut a, pa) = start(&scratch, "alice", None);
    let joined = next_event(&mut a, "joined", |_| true);
    assert_eq!(joined["is_leader"], true);
    let (mut b, _) = start(&scratch, "bob", Some(pa));
    next_event(&mut b, "joined", |v| v["leader"] == "alice");
    let (mut c, _) = start(&scratch, "carol", Some(pa));
    next_event(&mut c, "joined", |v| v["members"] == 3);
    next_event(&mut a, "member_online", |v| v["name"] == "carol");

    b.send("send_all hello, machines ✓");
    let mut seqs = Vec::new();
    for p in [&mut a, &mut b, &mut c] {
        let v = next_event(p, "room", |v| v["text"] == "hello, machines ✓");
        assert_eq!(v["from"], "bob");
        assert!(v["lamport"].as_u64().is_some() && v["sent_at_ms"].as_u64().is_some());
        seqs.push(v["seq"].clone());
    }
    assert!(seqs.iter().all(|s| *s == seqs[0]), "{seqs:?}");
    // History marks the asker's own lines.
    for (p, mine) in [(&mut b, true), (&mut c, false)] {
        p.send("history");
        let h = next_event(p, "history", |_| true);
        assert_eq!(h["entries"][0]["mine"], mine, "{h}");
    }

    c.send("send alice psst");
    let dm = next_event(&mut a, "private", |_| true);
    assert_eq!(
        (
            dm["from"].as_str(),
            dm["text"].as_str(),
            dm["mine"].as_bool()
        ),
        (Some("carol"), Some("psst"), Some(false))
    );
    let own = next_event(&mut c, "private", |_| true);
    assert_eq!(
        (own["to"].clone(), own["mine"].clone()),
        (json!(["alice"]), json!(true))
    );
    next_event(&mut c, "receipt", |v| v["to"] == "alice");

    b.send("list");
    let members = next_event(&mut b, "members", |_| true);
    let names: Vec<&str> = members["members"]
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{members}");

    a.send("status");
    let status = next_event(&mut a, "status", |_| true);
    assert_eq!(status["leader"], "alice");
    assert_eq!(status["ring"].as_array().map(Vec::len), Some(3));

    a.send("/nonsense");
    let err = next_event(&mut a, "error", |_| true);
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown command"))
    );
    a.send("send nobody hi");
    next_event(&mut a, "error", |v| v["error"] == "no such user nobody");

    // Every line any node printed is one JSON object naming its event.
    for p in [&mut a, &mut b, &mut c] {
        p.pump();
        for l in &p.seen {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l:?}", p.label));
            assert!(v["event"].is_string(), "{l}");
        }
    }
}
