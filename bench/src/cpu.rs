//! CPU and wake-up counters from `/proc`, for every thread of a process or
//! of the client inside this one.

use std::time::Duration;

/// Clock ticks of a `stat` file's utime + stime, in seconds.
fn stat_cpu(stat: &str) -> f64 {
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU seconds (user + system, every thread) process `pid` has used.
pub fn process_cpu(pid: u32) -> f64 {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// How many times the threads of process `pid` have been woken (voluntary
/// and involuntary context switches, summed over its threads).
pub fn process_wakeups(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Whether a thread of this process works for a headless client: the main
/// thread (where the benchmarks run its updates), its network runtime
/// (`hush-net`) and Bevy's task pools, the async compute pool included
/// (its thread name is cut to `Async Compute T`, without `Task Po`; the
/// key derivation runs there). Not the in-process relay
/// (`hush-relay*`, sqlx's workers) nor the benchmarks' own raw peers.
fn client_thread(tid: &str, comm: &str) -> bool {
    tid == std::process::id().to_string()
        || comm.starts_with("hush-net")
        || comm.contains("Task Po")
        || comm.starts_with("Async Compute")
}

/// CPU seconds every thread of the client in this process has used (threads
/// that ended are not counted: the client's do not end while it runs).
pub fn client_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            client_thread(&t.file_name().to_string_lossy(), comm.trim())
        })
        .map(|t| task_cpu(&t.path()))
        .sum()
}

/// CPU seconds of one thread (`/proc/…/task/TID`): `schedstat`'s time on
/// CPU, in nanoseconds, where the kernel keeps it; else `stat`'s clock
/// ticks, whose 10 ms steps are a tenth of a 20 000-message burst.
fn task_cpu(task: &std::path::Path) -> f64 {
    let ns = std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match ns {
        Some(ns) => ns as f64 / 1e9,
        None => stat_cpu(&std::fs::read_to_string(task.join("stat")).unwrap_or_default()),
    }
}

/// CPU time of the calling thread (precise, for one pass of a loop).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
