//! What a child process cost, from /proc: time on CPU and context switches of each of its
//! threads.

use std::collections::BTreeMap;
use std::fs;

/// One thread's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TaskCounters {
    /// Time on CPU, ns (`schedstat`'s first field).
    pub(crate) cpu_ns: u64,
    /// Voluntary context switches (the thread went to sleep: one wakeup each).
    pub(crate) voluntary: u64,
    /// Involuntary context switches (the thread was preempted).
    pub(crate) involuntary: u64,
}

/// Every thread of process `pid`, by thread id.
pub(crate) fn tasks(pid: u32) -> std::io::Result<BTreeMap<u32, TaskCounters>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        // A thread may end between the listing and the reads: skip it.
        let Ok(schedstat) = fs::read_to_string(entry.path().join("schedstat")) else { continue };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else { continue };
        out.insert(tid, parse(&schedstat, &status));
    }
    Ok(out)
}

fn parse(schedstat: &str, status: &str) -> TaskCounters {
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    TaskCounters {
        cpu_ns: schedstat.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0),
        voluntary: field("voluntary_ctxt_switches:"),
        involuntary: field("nonvoluntary_ctxt_switches:"),
    }
}

/// What the threads of `after` did since `before` (a thread absent from `before` started
/// in between and counts from zero; one that ended in between is lost, so the caller
/// reports the thread counts beside).
pub(crate) fn delta(
    before: &BTreeMap<u32, TaskCounters>,
    after: &BTreeMap<u32, TaskCounters>,
) -> TaskCounters {
    let mut total = TaskCounters::default();
    for (tid, a) in after {
        let b = before.get(tid).copied().unwrap_or_default();
        total.cpu_ns += a.cpu_ns.saturating_sub(b.cpu_ns);
        total.voluntary += a.voluntary.saturating_sub(b.voluntary);
        total.involuntary += a.involuntary.saturating_sub(b.involuntary);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = tasks(std::process::id()).unwrap();
        assert!(!me.is_empty());
        assert!(me.values().any(|t| t.cpu_ns > 0));
        let parsed =
            parse("123 4 5\n", "Name:\tx\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t2\n");
        assert_eq!(parsed, TaskCounters { cpu_ns: 123, voluntary: 7, involuntary: 2 });
        let mut later = BTreeMap::new();
        later.insert(1, TaskCounters { cpu_ns: 200, voluntary: 9, involuntary: 3 });
        later.insert(2, TaskCounters { cpu_ns: 50, voluntary: 1, involuntary: 0 });
        let mut earlier = BTreeMap::new();
        earlier.insert(1, parsed);
        assert_eq!(delta(&earlier, &later), TaskCounters { cpu_ns: 127, voluntary: 3, involuntary: 1 });
    }
}
