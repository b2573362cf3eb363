//! The simulator's own verbs do what they say: a paused host takes no input until its
//! pause ends, then its whole backlog at once; its socket holds only so much.

mod sim;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sim::{Sim, for_sims};
use std::time::Duration;

/// A room of three; `ben` stops for 2 s while `ann` sends a message every 50 ms.
fn pause_ben(sim: &mut Sim, seed: u64) -> Result<(Duration, Duration), String> {
    sim.form_room(&mut StdRng::seed_from_u64(seed), &["ann", "ben", "cat"])?;
    sim.run_for(Duration::from_secs(1));
    let from = sim.elapsed();
    sim.pause(1, Duration::from_secs(2));
    for k in 0..40 {
        sim.send_all(0, format!("m{k}"));
        sim.send_all(1, format!("typed while stopped {k}"));
        sim.run_for(Duration::from_millis(50));
    }
    let until = from + Duration::from_secs(2);
    if sim.is_paused(1) || sim.elapsed() < until {
        return Err("the pause did not end".into());
    }
    sim.run_for(Duration::from_secs(10));
    Ok((from, until))
}

#[test]
fn a_paused_host_takes_no_input_then_its_backlog_at_once() {
    for_sims(
        "a_paused_host_takes_no_input_then_its_backlog_at_once",
        20,
        |sim, seed| {
            let (from, until) = pause_ben(sim, seed)?;
            let events = &sim.hosts[1].events;
            if let Some((t, e)) = events.iter().find(|(t, _)| *t > from && *t < until) {
                return Err(format!("ben produced {e:?} at {t:?}, while stopped"));
            }
            if !events.iter().any(|(t, _)| *t == until) {
                return Err("ben produced nothing the moment it resumed".into());
            }
            if let Some((_, t)) = sim.room_log(1).iter().find(|(_, t)| t.contains("stopped")) {
                return Err(format!("ben's stopped user typed {t:?}"));
            }
            if sim.overflowed > 0 {
                return Err(format!("{} datagrams overflowed", sim.overflowed));
            }
            Ok(())
        },
    );
}

#[test]
fn a_paused_hosts_socket_holds_only_so_much() {
    for_sims(
        "a_paused_hosts_socket_holds_only_so_much",
        5,
        |sim, seed| {
            sim.socket_buffer = 1000;
            pause_ben(sim, seed)?;
            if sim.overflowed == 0 {
                return Err("nothing overflowed a 1000-byte socket in 2 s of chat".into());
            }
            Ok(())
        },
    );
}
