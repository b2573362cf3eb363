//! `ringchat-bench`: figures from real nodes on real UDP sockets on 127.0.0.1.
//!
//! `ringchat-bench failover --nodes 4 --trials 20`: time from the leader's sudden death
//! (its task aborted: no goodbye, no further datagrams) to the first room message sent
//! after the death being shown at every survivor. Prints each trial, the median and the
//! worst, with the parameters.

use clap::{Parser, Subcommand};
use ringchat::driver::{self, NodeHandle, Output, Request};
use ringchat::proto::{Command, Event, NodeConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "ringchat-bench",
    about = "Measure ringchat on real UDP sockets on 127.0.0.1"
)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Leader crash to the first new message shown at all survivors.
    Failover {
        /// Nodes in the room.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Trials (a fresh room each).
        #[arg(long, default_value_t = 20)]
        trials: usize,
    },
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Every node's events, stamped with when the bench saw them.
struct Room {
    nodes: Vec<NodeHandle>,
    seen: Vec<Vec<(Instant, Event)>>,
}

impl Room {
    fn pump(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            while let Ok(out) = n.events.try_recv() {
                if let Output::Event(e) = out {
                    self.seen[i].push((Instant::now(), e));
                }
            }
        }
    }

    async fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Room) -> bool,
    ) -> Result<(), String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.pump();
            if done(self) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!("timed out waiting for {what}"))
    }

    fn joined(&self, i: usize) -> bool {
        self.seen[i]
            .iter()
            .any(|(_, e)| matches!(e, Event::Joined { .. }))
    }
}

async fn start(name: String, join: Option<std::net::SocketAddr>) -> Result<NodeHandle, String> {
    let socket = driver::bind(LOCALHOST, 0)
        .await
        .map_err(|e| e.to_string())?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    Ok(driver::spawn(socket, NodeConfig::new(name, addr, join)))
}

async fn form_room(n: usize) -> Result<Room, String> {
    let mut room = Room {
        nodes: Vec::new(),
        seen: Vec::new(),
    };
    for i in 0..n {
        let join = room.nodes.last().map(|h: &NodeHandle| h.local_addr);
        room.nodes.push(start(format!("n{i}"), join).await?);
        room.seen.push(Vec::new());
        room.wait_for(Duration::from_secs(10), "a join", |r| r.joined(i))
            .await?;
    }
    // Let every member be heard from by its neighbours before anything dies.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    room.pump();
    Ok(room)
}

async fn failover_trial(n: usize) -> Result<Duration, String> {
    let mut room = form_room(n).await?;
    room.nodes[0].task.abort();
    let killed = Instant::now();
    let survivors: Vec<usize> = (1..n).collect();
    let mut k = 0u64;
    let mut next_send = Instant::now();
    let shown_everywhere = |r: &Room, text: &str| -> Option<Instant> {
        survivors
            .iter()
            .map(|&i| {
                r.seen[i].iter().find_map(|(t, e)| match e {
                    Event::Room { entry, .. } if entry.text == text => Some(*t),
                    _ => None,
                })
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|ts| ts.into_iter().max())
    };
    let deadline = killed + Duration::from_secs(20);
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            k += 1;
            let text = format!("probe{k}");
            let _ = room.nodes[1]
                .commands
                .send(Request::Command(Command::SendAll { text }));
            next_send += Duration::from_millis(10);
        }
        room.pump();
        let first = (1..=k).find_map(|j| shown_everywhere(&room, &format!("probe{j}")));
        if let Some(t) = first {
            for h in &room.nodes {
                h.task.abort();
            }
            return Ok(t - killed);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err("no message reached every survivor within 20 s".into())
}

fn summarize(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let median = v[v.len() / 2];
    let worst = v[v.len() - 1];
    println!(
        "{label}: trials {} median {:.0} ms worst {:.0} ms best {:.0} ms",
        v.len(),
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        v[0].as_secs_f64() * 1e3
    );
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match args.what {
            What::Failover { nodes, trials } => {
                if nodes < 2 || trials == 0 {
                    eprintln!("error: need at least 2 nodes and 1 trial");
                    std::process::exit(2);
                }
                println!("failover: {nodes} nodes on 127.0.0.1, default timings (heartbeat 100 ms, suspect after 3), leader task aborted");
                let mut times = Vec::new();
                for t in 0..trials {
                    match failover_trial(nodes).await {
                        Ok(d) => {
                            println!("  trial {:>2}: {:.0} ms", t + 1, d.as_secs_f64() * 1e3);
                            times.push(d);
                        }
                        Err(e) => println!("  trial {:>2}: failed: {e}", t + 1),
                    }
                }
                if !times.is_empty() {
                    summarize("failover", times);
                }
            }
        }
    });
}
