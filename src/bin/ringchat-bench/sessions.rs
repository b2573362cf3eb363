//! What sessions cost, in one sitting: the same measurements with every datagram sealed
//! with the room key alone (`NodeTask::room_key_only`, as before sessions) and with
//! members in pairwise sessions (the program's way; the room key then seals only the join
//! exchange and handshakes), alternating trial by trial, both keyed:
//!
//! - throughput: 3 nodes, one sender (n1), room messages shown at every member per second;
//! - join time: a third node started with `--join` to its `Joined` event (a welcome in a
//!   session: the leader's handshake to the newcomer comes first);
//! - failover: 3 nodes, the leader's task aborted, to the first new message shown at every
//!   survivor (default timings).
//!
//! Then the medians side by side and the throughput ratio (sessions / room key alone).

use crate::failover;
use crate::room::{self, Room, Setup};
use crate::throughput::{self, Load, Senders, Throughput};
use ringchat::driver::Security;
use ringchat::guard::KEY_BYTES;
use std::time::{Duration, Instant};

/// One configuration's figures over the trials.
#[derive(Default)]
struct Figures {
    throughput: Vec<Throughput>,
    join: Vec<Duration>,
    failover: Vec<Duration>,
}

/// The time for a third node to join a keyed room of two.
async fn join_time(key: [u8; KEY_BYTES], sessions: bool) -> Result<Duration, String> {
    let setup = Setup {
        security: Security {
            room_key: Some(key),
            ..Security::default()
        },
        sessions,
        ..Setup::defaults()
    };
    let mut room = Room::form(2, &setup).await?;
    let contact = room.nodes[1].local_addr;
    let started = Instant::now();
    let i = room.join(Some(contact)).await?;
    if room.join_failures > 0 {
        return Err("a join failed and was tried again".into());
    }
    let joined = room.seen[i]
        .iter()
        .find(|(_, e)| matches!(e, ringchat::proto::Event::Joined { .. }))
        .map(|(at, _)| *at)
        .ok_or("no join event")?;
    Ok(joined - started)
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied()
}

/// The `sessions` subcommand: `trials` of each configuration, `messages` room messages
/// per throughput run.
pub async fn command(messages: usize, trials: usize) {
    println!(
        "sessions against the room key alone: keyed rooms on 127.0.0.1, alternating, \
         {trials} trial(s) each; throughput: 3 nodes, {messages} room messages, one sender \
         (n1), window 64, no rate limit; join: a third node joining a room of two; \
         failover: 3 nodes, the leader's task aborted, default timings"
    );
    let mut figures = [Figures::default(), Figures::default()];
    let load = Load {
        nodes: 3,
        messages,
        senders: Senders::One,
        window: 64,
        loss: 0.0,
        persist: false,
        seal: true,
    };
    for t in 0..trials {
        for (c, sessions) in [false, true].into_iter().enumerate() {
            let label = if sessions {
                "sessions          "
            } else {
                "room key alone    "
            };
            let key: [u8; KEY_BYTES] = rand::random();
            match throughput::run_with(load, Some(key), sessions).await {
                Ok(r) => {
                    println!("{}", r.describe(&format!("trial {:>2} {label}", t + 1)));
                    figures[c].throughput.push(r);
                }
                Err(e) => println!("  trial {:>2} {label} throughput failed: {e}", t + 1),
            }
            match join_time(key, sessions).await {
                Ok(d) => {
                    println!("  trial {:>2} {label} join: {}", t + 1, room::ms(d));
                    figures[c].join.push(d);
                }
                Err(e) => println!("  trial {:>2} {label} join failed: {e}", t + 1),
            }
            let setup = Setup {
                security: Security {
                    room_key: Some(key),
                    ..Security::default()
                },
                sessions,
                ..Setup::defaults()
            };
            match failover::trial_with(3, &setup).await {
                Ok(d) => {
                    println!("  trial {:>2} {label} failover: {}", t + 1, room::ms(d));
                    figures[c].failover.push(d);
                }
                Err(e) => println!("  trial {:>2} {label} failover failed: {e}", t + 1),
            }
        }
    }
    println!("medians:");
    println!(
        "  {:<16} {:>14} {:>10} {:>10}",
        "", "messages/s", "join", "failover"
    );
    let mut rates = [None, None];
    for (c, name) in ["room key alone", "sessions"].into_iter().enumerate() {
        let f = &figures[c];
        let mut all: Vec<f64> = f.throughput.iter().map(Throughput::per_second).collect();
        all.sort_by(f64::total_cmp);
        let rate = all.get(all.len() / 2).copied();
        rates[c] = rate;
        let show = |d: Option<Duration>| d.map_or("-".to_string(), room::ms);
        println!(
            "  {:<16} {:>14} {:>10} {:>10}",
            name,
            rate.map_or("-".to_string(), |r| format!("{r:.0}")),
            show(median(&f.join)),
            show(median(&f.failover)),
        );
    }
    if let [Some(alone), Some(sessions)] = rates {
        println!(
            "throughput, sessions / room key alone: {:.2}",
            sessions / alone
        );
    }
}
