//! Hosts in network namespaces wired through a user-space switch in the test process
//! (`tests/lan/switch.rs`), which can delay, jitter, reorder, drop and partition frames
//! while the hosts talk; the kernel here has no netem, and nftables cannot delay.
//!
//! Needs root, `ip` (iproute2) and `/dev/net/tun`; without them each test prints one
//! `skipped: <reason>` line to stderr and passes. The namespaces are always deleted.
//! `LAN_SEED=<n>` seeds the switch's random draws (default 1).

mod common;

/// The switch, the namespaces around it and the room run on them.
mod lan {
    /// Host namespaces wired to a switch.
    pub mod net;
    /// A room of real nodes on a LAN, and the judgement of what they showed.
    pub mod room;
    /// The user-space switch and its fault policy.
    pub mod switch;
    /// TAPs and sockets made inside a namespace.
    pub mod tap;
}

use common::{Proc, Scratch};
use lan::net::{Host, Lan};
use lan::room::{
    Verdict, chatter, form_room, leader_by_status, name, restart_node, settle, shown,
    voters_by_status,
};
use lan::switch::Link;
use lan::tap::in_namespace;
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The UDP port of the plain sockets in the switch test.
const PROBE_PORT: u16 = 9000;

/// The seed of the switch's random draws: `LAN_SEED`, else 1.
fn seed() -> u64 {
    std::env::var("LAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// A UDP socket of `host`'s namespace, bound to its address, reads timing out after 50 ms.
fn probe_socket(host: &Host) -> UdpSocket {
    let socket = in_namespace(&host.ns, || UdpSocket::bind((host.ip, PROBE_PORT)))
        .unwrap_or_else(|e| panic!("cannot bind a socket in {}: {e}", host.ns));
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("set a read timeout");
    socket
}

/// Datagrams `to` receives until it has been quiet for `quiet`, with their arrival times.
fn drain(to: &UdpSocket, quiet: Duration) -> Vec<(Vec<u8>, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        if let Ok(n) = to.recv(&mut buf) {
            last = Instant::now();
            got.push((buf[..n].to_vec(), last));
        }
    }
    got
}

/// Sends `text` from `from` to `to` and says whether `to` received it within `limit`
/// (other datagrams that arrive meanwhile are skipped).
fn arrives(from: &UdpSocket, to: &UdpSocket, text: &str, limit: Duration) -> bool {
    let dest = to.local_addr().expect("a bound socket");
    from.send_to(text.as_bytes(), dest)
        .expect("send a datagram");
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        if to
            .recv(&mut buf)
            .is_ok_and(|n| &buf[..n] == text.as_bytes())
        {
            return true;
        }
    }
    false
}

/// Sends `count` numbered datagrams from `from` to `to`, 1 ms apart, and returns the
/// number and one-way time of each that arrived, in arrival order.
fn stream(from: &UdpSocket, to: &UdpSocket, count: u64) -> Vec<(u64, Duration)> {
    let dest = to.local_addr().expect("a bound socket");
    let start = Instant::now();
    // Received on another thread while this one sends, so arrival times are true.
    let got = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| drain(to, Duration::from_millis(500)));
        for k in 0..count {
            let mut payload = k.to_be_bytes().to_vec();
            payload.extend((start.elapsed().as_micros() as u64).to_be_bytes());
            from.send_to(&payload, dest).expect("send a datagram");
            std::thread::sleep(Duration::from_millis(1));
        }
        receiver.join().expect("the receiving thread")
    });
    let word = |bytes: &[u8], i: usize| {
        u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
    };
    got.iter()
        .map(|(payload, at)| {
            assert_eq!(payload.len(), 16, "a stray datagram");
            let sent = start + Duration::from_micros(word(payload, 1));
            (word(payload, 0), at.duration_since(sent))
        })
        .collect()
}

#[test]
fn switch_forwards_udp_a_partition_cuts_it_and_links_delay_drop_and_reorder() {
    let Some(lan) = Lan::for_test(2, Link::PERFECT, seed()) else {
        return;
    };
    let a = probe_socket(&lan.hosts[0]);
    let b = probe_socket(&lan.hosts[1]);
    let switch = lan.switch();

    // Both ways, which needs ARP through the switch first.
    let wait = Duration::from_secs(2);
    assert!(arrives(&a, &b, "hello b", wait), "a to b");
    assert!(arrives(&b, &a, "hello a", wait), "b to a");

    switch.partition(&[&[0], &[1]]);
    let before = switch.stats().total();
    let dest = b.local_addr().expect("a bound socket");
    for k in 0..10 {
        a.send_to(format!("cut {k}").as_bytes(), dest)
            .expect("send a datagram");
    }
    let leaked = drain(&b, Duration::from_millis(300));
    assert!(
        leaked.is_empty(),
        "{} datagrams crossed the partition",
        leaked.len()
    );
    let cut = switch.stats().total().cut - before.cut;
    assert!(cut >= 10, "only {cut} frames cut");
    switch.heal();
    assert!(arrives(&a, &b, "healed", wait), "a to b after the heal");

    // A link is one direction.
    let dead = Link {
        loss: 100,
        ..Link::PERFECT
    };
    switch.set_link(0, 1, dead);
    let short = Duration::from_millis(300);
    assert!(!arrives(&a, &b, "one way", short), "a to b on a dead link");
    assert!(
        arrives(&b, &a, "other way", wait),
        "b to a beside a dead link"
    );

    // 20% loss, 20 ± 10 ms, 30% held back by another 30 ms.
    let link = Link::lossy(20, 20, 10, 30);
    switch.set_all(link);
    let before = switch.stats().total();
    const SENT: u64 = 300;
    let arrived = stream(&a, &b, SENT);
    let after = switch.stats().total();
    let (least, most) = link.bounds();
    let latencies: Vec<Duration> = arrived.iter().map(|(_, l)| *l).collect();
    let overtaken = arrived
        .iter()
        .scan(0, |highest, (k, _)| {
            let late = *k < *highest;
            *highest = (*highest).max(*k);
            Some(late)
        })
        .filter(|late| *late)
        .count();
    let fastest = latencies.iter().min().copied().unwrap_or_default();
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    let summary = format!(
        "lan switch: {} of {SENT} datagrams arrived, {overtaken} after a later one, one way \
         {fastest:?} to {slowest:?} (link {least:?} to {most:?}); switch: {} lost, {} held back, \
         {} cut before",
        arrived.len(),
        after.lost - before.lost,
        after.reordered - before.reordered,
        cut,
    );
    eprintln!("{summary}");
    // 300 draws at 20%: the expected 60 losses have a standard deviation of 7.
    assert!((200..=280).contains(&arrived.len()), "{summary}");
    assert!(fastest >= least, "faster than the link allows: {summary}");
    // The bound leaves room for a busy machine to schedule the switch late.
    assert!(slowest <= most + Duration::from_millis(150), "{summary}");
    assert!(overtaken > 0, "nothing reordered: {summary}");
}

/// The rough LAN of the room tests: 10% loss, 20 ± 10 ms, and a quarter of the frames held
/// back by another 30 ms.
fn rough() -> Link {
    Link::lossy(10, 20, 10, 25)
}

/// Machines far apart: 5% loss, 110 ± 70 ms each way, and one frame in twenty held back
/// by another 180 ms.
fn far() -> Link {
    Link::lossy(5, 110, 70, 5)
}

/// How often each node sends a room message.
const TICK: Duration = Duration::from_millis(250);

/// How long a partition lasts.
const SPLIT: Duration = Duration::from_secs(5);

/// Bound for the room to settle after the last message.
const SETTLE: Duration = Duration::from_secs(20);

/// Room runs take turns: two rooms at once on a small machine would measure the machine.
static ROOMS: Mutex<()> = Mutex::new(());

/// What happens to the rough LAN for [`SPLIT`] in the middle of a room run.
#[derive(Clone, Copy)]
enum Fault<'a> {
    /// Nothing.
    None,
    /// The hosts are partitioned into these groups.
    Split(&'a [&'a [usize]]),
    /// The link between the leader and the last host is cut both ways; every other link
    /// works. The last host gets the others' messages from the other members meanwhile
    /// (how many it showed before the link comes back is printed).
    LeaderCut,
}

/// How long the host cut from the leader is given to show the others' messages typed
/// while cut, before the link comes back.
const CUT_WAIT: Duration = Duration::from_secs(10);

/// A room of `hosts` nodes chatting through the rough switch for 2 s, then `fault` for
/// [`SPLIT`], healed, then 2 s more, every node sending throughout; waits for the room to
/// settle and judges it. Prints a one-line summary; `None` when the machine cannot run it.
fn chat_run(hosts: usize, fault: Fault) -> Option<Verdict> {
    chat_run_on(hosts, fault, rough())
}

/// [`chat_run`] with every link as `link`.
fn chat_run_on(hosts: usize, fault: Fault, link: Link) -> Option<Verdict> {
    let _turn = ROOMS.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    let lan = Lan::for_test(hosts, link, seed)?;
    let scratch = Scratch::new();
    let start = Instant::now();
    let mut procs = form_room(&scratch, &lan);
    let formed = start.elapsed();
    let (mut sent, mut next) = (BTreeSet::new(), 1);
    let ticks = |d: Duration| (d.as_millis() / TICK.as_millis()) as usize;
    let phase = ticks(Duration::from_secs(2));
    chatter(&mut procs, phase, TICK, &mut next, &mut sent);
    match fault {
        Fault::None => {}
        Fault::Split(groups) => {
            lan.switch().partition(groups);
            chatter(&mut procs, ticks(SPLIT), TICK, &mut next, &mut sent);
            lan.switch().heal();
        }
        Fault::LeaderCut => {
            let chat = (ticks(SPLIT), &mut next, &mut sent);
            cut_run(&lan, &mut procs, chat, link)
        }
    }
    chatter(&mut procs, phase, TICK, &mut next, &mut sent);
    let (took, settled) = settle(&mut procs, &sent, Duration::from_secs(1), SETTLE);
    let verdict = Verdict::judge(&mut procs, &sent);
    let shape = match fault {
        Fault::None => "unsplit".to_string(),
        Fault::Split(groups) => {
            let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
            sizes.join("+")
        }
        Fault::LeaderCut => "leader-member cut".to_string(),
    };
    let t = lan.switch().stats().total();
    eprintln!(
        "lan room {shape} seed {seed}: {hosts} nodes formed in {formed:.1?}; {verdict}; {} \
         {took:.1?} after the last send; switch {} delivered, {} lost, {} held back, {} cut, \
         {} overflow",
        if settled { "settled" } else { "not settled" },
        t.delivered,
        t.lost,
        t.reordered,
        t.cut,
        t.overflow
    );
    Some(verdict)
}

/// [`Fault::LeaderCut`]: cuts the leader's link to the last host both ways, chats for
/// `ticks`, waits up to [`CUT_WAIT`] for the last host to show the others' messages typed
/// meanwhile (and prints how many it showed: a configuration entry, which only the leader
/// gives, holds it up; README, Known limits), then the link comes back as `link`.
fn cut_run(
    lan: &Lan,
    procs: &mut [Proc],
    (ticks, next, sent): (usize, &mut usize, &mut BTreeSet<String>),
    link: Link,
) {
    let last = procs.len() - 1;
    let leader_name = leader_by_status(&mut procs[0]);
    let leader = (0..procs.len())
        .find(|&i| name(i) == leader_name)
        .unwrap_or_else(|| panic!("the leader {leader_name} is not a host"));
    assert_ne!(leader, last, "the last host joined last: it does not lead");
    let cut = Link {
        loss: 100,
        ..Link::PERFECT
    };
    lan.switch().set_link(leader, last, cut);
    lan.switch().set_link(last, leader, cut);
    let before = sent.clone();
    chatter(procs, ticks, TICK, next, sent);
    let label = procs[last].label.clone();
    let others: BTreeSet<String> = sent
        .difference(&before)
        .filter(|t| !t.ends_with(&format!("from {label}")))
        .cloned()
        .collect();
    let start = Instant::now();
    let mut got = 0;
    while start.elapsed() < CUT_WAIT && got < others.len() {
        std::thread::sleep(Duration::from_millis(100));
        procs[last].pump();
        got = shown(&procs[last], &others).len();
    }
    eprintln!(
        "lan room leader-member cut: {label}, cut from the leader {leader_name}, showed {got} \
         of the {} messages the others typed while cut, {:.1?} after",
        others.len(),
        start.elapsed()
    );
    lan.switch().set_link(leader, last, link);
    lan.switch().set_link(last, leader, link);
}

#[test]
fn room_of_four_chats_through_a_rough_switch() {
    let Some(verdict) = chat_run(4, Fault::None) else {
        return;
    };
    assert!(verdict.clean() && verdict.own == verdict.sent, "{verdict}");
}

#[test]
fn room_of_four_split_two_and_two_for_5_s_heals_into_one_history() {
    let Some(verdict) = chat_run(4, Fault::Split(&[&[0, 1], &[2, 3]])) else {
        return;
    };
    assert!(verdict.clean() && verdict.own == verdict.sent, "{verdict}");
}

#[test]
fn room_of_five_split_three_and_two_for_5_s_heals_into_one_history() {
    let Some(verdict) = chat_run(5, Fault::Split(&[&[0, 1, 2], &[3, 4]])) else {
        return;
    };
    assert!(verdict.clean() && verdict.own == verdict.sent, "{verdict}");
}

/// The leader's link to one member cut both ways for 5 s while every node chats, then
/// back: what the member typed meanwhile waited for the leader, and everything typed is
/// shown everywhere, once, in one order.
#[test]
fn room_of_four_with_one_member_cut_from_the_leader_shows_everything() {
    let Some(verdict) = chat_run(4, Fault::LeaderCut) else {
        return;
    };
    assert!(verdict.clean() && verdict.own == verdict.sent, "{verdict}");
}

/// [`room_of_four_with_one_member_cut_from_the_leader_shows_everything`] between machines
/// far apart ([`far`]): the cut member keeps its neighbours on indirect probes, which take
/// four legs of up to 180 ms to answer (see README, "Failure detection").
#[test]
fn room_of_four_far_apart_with_one_member_cut_from_the_leader_shows_everything() {
    let Some(verdict) = chat_run_on(4, Fault::LeaderCut, far()) else {
        return;
    };
    assert!(verdict.clean() && verdict.own == verdict.sent, "{verdict}");
}

/// Polls `procs`' `status` every 200 ms until `done` holds for what `look` reads from
/// each, or panics with `what` after `limit`.
fn poll_status<T: std::fmt::Debug>(
    procs: &mut [&mut Proc],
    limit: Duration,
    what: &str,
    look: impl Fn(&mut Proc) -> T,
    done: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let start = Instant::now();
    loop {
        let seen: Vec<T> = procs.iter_mut().map(|p| look(p)).collect();
        if done(&seen) {
            return seen;
        }
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A room of three loses its leader. The new leader lets the old one's user back in (a
/// new process at the same address, with the same identity) while cut off from the third
/// member: the returning member's addition to the voters commits with the leader's ack
/// and its own. The leader dies before the third ever hears of the newcomer, whose
/// datagrams it would drop; each of the two left counts a majority of another
/// configuration. The newcomer shows the third its voucher from the dead leader (sealed
/// under their pair key: the third's table holds only the old process), and the two go
/// on: one leader, and everything typed after is shown at both, once, in one order.
#[test]
fn a_member_let_back_in_by_a_leader_that_died_is_taken_on_its_voucher() {
    let _turn = ROOMS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lan) = Lan::for_test(3, Link::PERFECT, seed()) else {
        return;
    };
    let scratch = Scratch::new();
    let mut procs = form_room(&scratch, &lan);
    let wait = Duration::from_secs(20);
    // Host 0 made the room and leads; it dies.
    procs[0].kill();
    let (dead, a, b) = (name(0), name(1), name(2));
    let leaders = {
        let (first, rest) = procs.split_at_mut(2);
        poll_status(
            &mut [&mut first[1], &mut rest[0]],
            wait,
            "a new leader of the two, voting alone",
            |p| (leader_by_status(p), voters_by_status(p)),
            |s| {
                s[0].0 == s[1].0
                    && (s[0].0 == a || s[0].0 == b)
                    && s.iter().all(|(_, v)| v.len() == 2 && !v.contains(&dead))
            },
        )
    };
    let leader = if leaders[0].0 == a { 1 } else { 2 };
    let third = 3 - leader;
    let cut = Link {
        loss: 100,
        ..Link::PERFECT
    };
    lan.switch().set_link(leader, third, cut);
    lan.switch().set_link(third, leader, cut);
    procs[0] = restart_node(&scratch, &lan, 0, leader);
    {
        let (first, rest) = procs.split_at_mut(1);
        let led = &mut rest[leader - 1];
        poll_status(
            &mut [&mut first[0], led],
            wait,
            "the returning member votes, at the leader and at itself",
            voters_by_status,
            |s| s.iter().all(|v| v.contains(&dead) && v.len() == 3),
        );
    }
    let third_voters = voters_by_status(&mut procs[third]);
    assert!(
        !third_voters.contains(&dead),
        "the third heard of the newcomer through the cut: {third_voters:?}"
    );
    procs[leader].kill();
    lan.switch().set_link(leader, third, Link::PERFECT);
    lan.switch().set_link(third, leader, Link::PERFECT);
    {
        let (first, rest) = procs.split_at_mut(1);
        poll_status(
            &mut [&mut first[0], &mut rest[third - 1]],
            Duration::from_secs(30),
            "the newcomer and the third agree on a leader",
            leader_by_status,
            |s| s[0] == s[1] && s[0] != "none" && s[0] != name(leader),
        );
    }
    let third_proc = procs.remove(third);
    let mut two: Vec<Proc> = vec![procs.remove(0), third_proc];
    let (mut sent, mut next) = (BTreeSet::new(), 1);
    chatter(&mut two, 8, TICK, &mut next, &mut sent);
    let (took, settled) = settle(&mut two, &sent, Duration::from_secs(1), SETTLE);
    let verdict = Verdict::judge(&mut two, &sent);
    eprintln!(
        "lan room, a member let back in by a leader that died: {verdict}; {} {took:.1?} after \
         the last send",
        if settled { "settled" } else { "not settled" }
    );
    assert!(
        settled && verdict.clean() && verdict.own == verdict.sent,
        "{verdict}"
    );
}
