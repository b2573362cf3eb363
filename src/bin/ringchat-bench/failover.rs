//! Failover: the time from the leader's sudden death (its task aborted: no goodbye, no
//! further datagrams; the in-process equivalent of SIGKILL) to the first room message
//! sent after the death being shown at every survivor. A survivor (n1) offers a probe
//! message every 10 ms from the moment of the death. Default timings and the program's
//! default rate limit, as a user runs it.

use crate::room::{self, Room, Setup};
use ringchat::proto::{Command, Event};
use std::time::{Duration, Instant};

/// How long after the death a probe must reach every survivor.
const LIMIT: Duration = Duration::from_secs(20);

/// One trial in a fresh room of `n` nodes.
pub async fn trial(n: usize) -> Result<Duration, String> {
    trial_with(n, &Setup::defaults()).await
}

/// One trial in a fresh room of `n` nodes set up as `setup` says.
pub async fn trial_with(n: usize, setup: &Setup) -> Result<Duration, String> {
    let mut room = Room::form(n, setup).await?;
    room.forget();
    room.kill(0);
    let killed = Instant::now();
    let survivors = n - 1;
    // Survivors that have shown probe k, and when the last of them did.
    let mut shown: Vec<(usize, Instant)> = Vec::new();
    let mut next_send = killed;
    let mut k = 0usize;
    let deadline = killed + LIMIT;
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            k += 1;
            room.send(
                1,
                Command::SendAll {
                    text: format!("probe{k}"),
                },
            );
            shown.push((0, killed));
            next_send += Duration::from_millis(10);
        }
        let wait = next_send.saturating_duration_since(Instant::now());
        let Some(s) = room.next(wait.max(Duration::from_micros(100))).await else {
            continue;
        };
        if let Event::Room { entry, .. } = &s.event
            && s.node != 0
            && let Some(j) = entry
                .text
                .strip_prefix("probe")
                .and_then(|t| t.parse::<usize>().ok())
            && let Some(p) = shown.get_mut(j.wrapping_sub(1))
        {
            p.0 += 1;
            p.1 = p.1.max(s.at);
            if p.0 == survivors {
                return Ok(p.1 - killed);
            }
        }
    }
    Err(format!("no probe reached every survivor within {LIMIT:?}"))
}

/// Runs `trials` trials in rooms of `n`; prints each; returns the times of those that
/// finished.
pub async fn trials(n: usize, trials: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for t in 0..trials {
        match trial(n).await {
            Ok(d) => {
                println!("  {n} nodes trial {:>2}: {}", t + 1, room::ms(d));
                times.push(d);
            }
            Err(e) => println!("  {n} nodes trial {:>2}: failed: {e}", t + 1),
        }
    }
    times
}

/// The `failover` subcommand.
pub async fn command(nodes: &[usize], n_trials: usize) {
    for &n in nodes {
        println!(
            "failover: {n} nodes on 127.0.0.1, default timings (heartbeat 100 ms, suspect \
             after 3, dead after 450 ms), default rate limit, leader task aborted, \
             {n_trials} trial(s)"
        );
        let mut times = trials(n, n_trials).await;
        let ok = times.len();
        if let Some((median, worst)) = room::median_worst(&mut times) {
            println!(
                "failover {n} nodes: {ok}/{n_trials} trials, median {} worst {} best {}",
                room::ms(median),
                room::ms(worst),
                room::ms(times[0])
            );
        }
    }
}
