//! The machine and the processes being measured: CPU model, cores and kernel (for the
//! report's heading), CPU time used by this process, and resident memory of a process,
//! all read from `/proc` (Linux only; elsewhere the readings are `None`).

use std::time::Duration;

/// What the figures were taken on.
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Cores the process may use.
    pub cores: usize,
    /// Kernel release from `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// The 1-minute load average when read (others compiling show up here).
    pub load: String,
}

impl Machine {
    /// Reads the machine's description now.
    pub fn read() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            kernel,
            load,
        }
    }

    /// One line for a report's heading.
    pub fn describe(&self) -> String {
        format!(
            "{} cores, {}, Linux {}, load average {} at the start, {}",
            self.cores,
            self.cpu,
            self.kernel,
            self.load,
            chrono::Local::now().format("%Y-%m-%d %H:%M %Z")
        )
    }
}

/// CPU time (user and system, every thread) this process has used so far: see
/// [`cpu_time_of`].
pub fn process_cpu_time() -> Option<Duration> {
    cpu_time_of("self")
}

/// CPU time (user and system, every thread) process `pid` (`"self"` for this one) has
/// used so far: the sum of the on-CPU nanoseconds in `/proc/<pid>/task/*/schedstat`
/// (finer than the 10 ms ticks of `/proc/<pid>/stat`). Threads that have already exited
/// are not counted, so take both readings of an interval while the same threads run.
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // the thread exited meanwhile
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Resident memory of process `pid` (`"self"` for this one), in bytes: `VmRSS` from
/// `/proc/<pid>/status`.
pub fn resident_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}
