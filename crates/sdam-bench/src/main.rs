//! Times the W1–W4 workloads with its own loop and a counting allocator, and prints one JSON
//! object:
//!
//! ```text
//! {"W1":{"ns":812.4,"min_ns":790.2,"allocs":9},"W2":{...},...,"W4_1000":{...}}
//! ```
//!
//! `ns` is the median over batches of the mean time of one operation in the batch, `min_ns`
//! the fastest batch, `allocs` the heap allocations (and reallocations) per operation, counted
//! on the timing thread. Keys: `W1`, `W2`, `W3_10`, `W3_100`, `W3_1000`, `W4_10`, `W4_100`,
//! `W4_1000`, and `adapter_throughput`: selections per second of 64 tokio tasks
//! (`tokio_per_s`), 8 std threads (`std_per_s`) and the core on one thread (`core_per_s`),
//! each the median of 5 runs of the time budget against a 7-member scripted replica set on
//! loopback (see `sdam_bench::adapter_throughput`), with every run (`*_runs`).
//!
//! Usage: `sdam-bench [--time-ms MS] [WORKLOAD ...]` (default: every workload, about 1 s of
//! timed batches each). The fixture folder is `$SDAM_BENCH_DIR` or `shared/bench` beside the
//! workspace.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool reports on stdout/stderr

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sdam_bench::alloc_count::{allocations, CountingAllocator};
use sdam_bench::{ApplyHello, Fixtures, SelectInWindow, WorkloadError, SIZES};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The figures of one workload.
#[derive(Debug, Clone, Copy)]
struct Figures {
    median_ns: f64,
    min_ns: f64,
    allocs: f64,
}

/// How long one timed batch should take.
const BATCH: Duration = Duration::from_micros(50);

/// Times `op` in batches of operations, each prepared by `setup` before its batch's clock
/// starts (and dropped after it stops), for about `budget` of timed batches.
fn measure<S, R>(budget: Duration, mut setup: impl FnMut() -> S, mut op: impl FnMut(&mut S) -> R) -> Figures {
    // Calibrate: double the batch until one takes BATCH.
    let mut size = 1usize;
    loop {
        let mut states: Vec<S> = (0..size).map(|_| setup()).collect();
        let start = Instant::now();
        for s in &mut states {
            black_box(op(s));
        }
        if start.elapsed() >= BATCH || size >= 1 << 20 {
            break;
        }
        size *= 2;
    }
    let mut per_op = Vec::new();
    let mut allocs = 0u64;
    let mut ops = 0u64;
    let mut timed = Duration::ZERO;
    while timed < budget || per_op.len() < 11 {
        let mut states: Vec<S> = (0..size).map(|_| setup()).collect();
        let mut results = Vec::with_capacity(size);
        let before = allocations();
        let start = Instant::now();
        for s in &mut states {
            results.push(black_box(op(s)));
        }
        let elapsed = start.elapsed();
        allocs += allocations() - before;
        ops += size as u64;
        timed += elapsed;
        per_op.push(elapsed.as_nanos() as f64 / size as f64);
        drop(results);
        drop(states);
    }
    per_op.sort_by(f64::total_cmp);
    Figures { median_ns: per_op[per_op.len() / 2], min_ns: per_op[0], allocs: allocs as f64 / ops as f64 }
}

fn apply(budget: Duration, w: &ApplyHello) -> Figures {
    measure(budget, || w.fresh(), |t| w.run(t).map(|a| a.outputs).unwrap_or(0))
}

fn select(budget: Duration, w: &SelectInWindow) -> Figures {
    measure(budget, || (), |()| w.run())
}

fn run(budget: Duration, only: &[String]) -> Result<Vec<(String, Figures)>, WorkloadError> {
    let f = Fixtures::load_default()?;
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut out = Vec::new();
    if wanted("W1") {
        out.push(("W1".to_owned(), apply(budget, &ApplyHello::w1(&f)?)));
    }
    if wanted("W2") {
        out.push(("W2".to_owned(), select(budget, &SelectInWindow::w2(&f)?)));
    }
    for n in SIZES {
        let name = format!("W3_{n}");
        if wanted(&name) {
            out.push((name, select(budget, &SelectInWindow::w3(&f, n)?)));
        }
    }
    for n in SIZES {
        let name = format!("W4_{n}");
        if wanted(&name) {
            out.push((name, apply(budget, &ApplyHello::w4(&f, n)?)));
        }
    }
    Ok(out)
}

/// Runs of each adapter-throughput measurement.
const THROUGHPUT_RUNS: usize = 5;

/// The adapter-throughput figures as a JSON object.
fn adapter_throughput(budget: Duration) -> String {
    use sdam_bench::adapter_throughput as at;
    let mut parts = Vec::new();
    type Measure = fn(Duration) -> f64;
    let measures: [(&str, Measure); 3] = [
        ("tokio", at::tokio_selections_per_second),
        ("std", at::std_selections_per_second),
        ("core", at::core_selections_per_second),
    ];
    for (name, measure) in measures {
        let mut runs: Vec<f64> = (0..THROUGHPUT_RUNS).map(|_| measure(budget)).collect();
        let shown: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
        runs.sort_by(f64::total_cmp);
        parts.push(format!(
            "\"{name}_per_s\":{:.0},\"{name}_runs\":[{}]",
            runs[runs.len() / 2],
            shown.join(",")
        ));
    }
    format!("{{{}}}", parts.join(","))
}

fn main() -> ExitCode {
    let mut budget = Duration::from_secs(1);
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--time-ms" {
            match args.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) => budget = Duration::from_millis(ms),
                None => {
                    eprintln!("--time-ms needs a number of milliseconds");
                    return ExitCode::from(2);
                }
            }
        } else if arg.starts_with('-') {
            eprintln!(
                "usage: sdam-bench [--time-ms MS] [W1|W2|W3_10|W3_100|W3_1000|W4_10|W4_100|W4_1000|adapter_throughput ...]"
            );
            return ExitCode::from(2);
        } else {
            only.push(arg);
        }
    }
    match run(budget, &only) {
        Ok(results) => {
            let mut fields: Vec<String> = results
                .iter()
                .map(|(name, f)| {
                    format!(
                        "\"{name}\":{{\"ns\":{:.1},\"min_ns\":{:.1},\"allocs\":{}}}",
                        f.median_ns,
                        f.min_ns,
                        round2(f.allocs)
                    )
                })
                .collect();
            if only.is_empty() || only.iter().any(|o| o == "adapter_throughput") {
                fields.push(format!("\"adapter_throughput\":{}", adapter_throughput(budget)));
            }
            println!("{{{}}}", fields.join(","));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sdam-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Allocations per operation: an integer when exact, else two decimals.
fn round2(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}
