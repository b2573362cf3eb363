//! Runs of the checker: how far a search goes ([`Search`]), the run itself with its
//! progress reports, and what it found (the broken properties' runs, printed).

use super::*;

/// How a run of the checker is bounded beyond the model's own bounds.
pub(crate) struct Search {
    /// Only the states within so many steps of the start.
    depth: Option<usize>,
    /// Stop after so long.
    time: Option<Duration>,
    /// Depth first instead of breadth first.
    dfs: bool,
    /// When to stop early.
    finish: HasDiscoveries,
}

impl Search {
    /// Every reachable state, breadth first, until a property breaks.
    pub(crate) fn exhaustive() -> Search {
        Search {
            depth: None,
            time: None,
            dfs: false,
            finish: HasDiscoveries::AnyFailures,
        }
    }

    /// This search, with `MODEL_DEPTH`, `MODEL_SECONDS` and `MODEL_DFS` if set.
    pub(crate) fn with_env(self) -> Search {
        let depth: usize = env_or("MODEL_DEPTH", 0);
        let seconds: u64 = env_or("MODEL_SECONDS", 0);
        Search {
            depth: (depth > 0).then_some(depth).or(self.depth),
            time: (seconds > 0)
                .then(|| Duration::from_secs(seconds))
                .or(self.time),
            dfs: env_or("MODEL_DFS", u8::from(self.dfs)) == 1,
            ..self
        }
    }
}

/// Runs the checker on `m` and says how far it went, and whether it stopped at the time
/// limit. One thread: the machine is shared, and breadth first with one thread meets
/// every state first at its least depth, so every state within the depth is expanded
/// (`target_max_depth` counts the initial state as depth 1 and does not expand states at
/// the target depth). With `MODEL_PROGRESS=1`, reports progress every few seconds.
pub(crate) fn check(
    what: &str,
    m: &ConfigLog,
    search: Search,
) -> (Box<dyn Checker<ConfigLog>>, bool) {
    let start = Instant::now();
    let deadline = search.time.map(|t| start + t);
    let timed = ConfigLog {
        deadline,
        stopped: Arc::new(AtomicBool::new(false)),
        ..m.clone()
    };
    let mut b = timed
        .clone()
        .checker()
        .threads(1)
        .finish_when(search.finish);
    if let Some(depth) = search.depth {
        b = b.target_max_depth(depth + 2);
    }
    let progress = env_or("MODEL_PROGRESS", 0) == 1;
    let mut err = std::io::stderr();
    let mut w = stateright::report::WriteReporter::new(&mut err);
    let c: Box<dyn Checker<ConfigLog>> = match (search.dfs, progress) {
        (false, false) => Box::new(b.spawn_bfs().join()),
        (false, true) => Box::new(b.spawn_bfs().join_and_report(&mut w)),
        (true, false) => Box::new(b.spawn_dfs().join()),
        (true, true) => Box::new(b.spawn_dfs().join_and_report(&mut w)),
    };
    // Stopped or not, the runs found are replayed with every step.
    let stopped = timed.stopped.swap(false, Ordering::Relaxed);
    let reach = match (search.depth, stopped) {
        (_, true) => "(stopped at the time limit)".to_string(),
        (Some(depth), false) => format!("within {depth} steps"),
        (None, false) => "(every reachable one unless a property broke)".into(),
    };
    eprintln!(
        "{what}: {:?}, {} nodes, voters {:#b}, campaigners {:#b}, terms {}, values {}, \
         changes {}, log {}, crashes {}, catch-up {}\n  {} states {reach}, {} generated, \
         the farthest {} steps from the start, in {:.1?}",
        m.rules,
        m.nodes,
        m.initial,
        m.campaigners,
        m.max_term,
        m.max_values,
        m.max_changes,
        m.max_log,
        m.crashes,
        m.catch_up,
        c.unique_state_count(),
        c.state_count(),
        c.max_depth().saturating_sub(1),
        start.elapsed()
    );
    (c, stopped)
}

/// Prints every broken property's run, renumbered to the nodes' first numbers, up to the
/// first state that breaks it, and the nodes there; returns the broken properties' names.
pub(crate) fn broken(m: &ConfigLog, c: &dyn Checker<ConfigLog>) -> Vec<&'static str> {
    let props = m.properties();
    let mut names = Vec::new();
    for (name, path) in c.discoveries() {
        let path: Path<State, Action> = path;
        let prop = props.iter().find(|p| p.name == name).expect("a property");
        if prop.expectation != Expectation::Always {
            continue;
        }
        let cond = prop.condition;
        let (run, end) = symmetry::original_numbers(m, path.into_actions(), |s| !cond(m, s));
        eprintln!("broken: {name:?}, after {} steps:", run.len());
        for a in run {
            eprintln!("  {a:?}");
        }
        for (k, n) in end.nodes.iter().enumerate().take(usize::from(m.nodes)) {
            eprintln!(
                "  {}: term {} leader {} next {} log {:?} role {:?}",
                state::NAMES[k],
                n.term,
                n.leader,
                n.next,
                n.log,
                n.role
            );
        }
        let committed: Vec<_> = end
            .committed
            .iter()
            .map(|c| (c.index, state::WithParent(c.value, c.parent), c.term))
            .collect();
        eprintln!("  committed (index, value, term) {committed:?}");
        names.push(prop.name);
    }
    names
}

/// Checks that `m` breaks no property in `search`, and, if the search was complete,
/// that it reached every `sometimes` property.
pub(crate) fn holds(what: &str, m: &ConfigLog, search: Search) {
    let (c, stopped) = check(what, m, search);
    let broken = broken(m, &*c);
    assert!(broken.is_empty(), "{what}: broken {broken:?}");
    if !stopped {
        for p in m.properties() {
            if p.expectation == Expectation::Sometimes {
                assert!(c.discovery(p.name).is_some(), "{what}: never {:?}", p.name);
            }
        }
    } else {
        eprintln!("{what}: stopped by the time limit; nothing broken so far");
    }
}

/// Checks `m` within `depth` steps until one of `names` breaks, and asserts one did.
pub(crate) fn counterexample(what: &str, m: &ConfigLog, depth: usize, names: &[&'static str]) {
    let search = Search {
        depth: Some(depth),
        time: None,
        dfs: false,
        finish: HasDiscoveries::AnyOf(names.iter().copied().collect()),
    };
    let (c, _) = check(what, m, search);
    let found = broken(m, &*c);
    assert!(
        names.iter().any(|n| found.contains(n)),
        "{what}: no run within {depth} steps breaks any of {names:?}"
    );
}
