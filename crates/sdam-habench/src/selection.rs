//! H5: concurrent server selection in this project's adapters (64 tokio tasks; 8 std
//! threads) against a 7-member set, beside the core's single-thread rate on the same kind of
//! topology: `sdam_bench::adapter_throughput` (issue #13's benchmark, also printed by
//! `cargo run --release -p sdam-bench`), repeated for a median and spread. The peers have no
//! public selection call: PyMongo's `Topology.select_server` and the Rust driver's server
//! selection are internal, reached only through an operation, so they have no figure here.

use std::time::Duration;

use sdam_bench::adapter_throughput as at;
use serde_json::{json, Value};

use crate::stats::summary;
use crate::workloads::Plan;

/// How long one timed run lasts.
const RUN: Duration = Duration::from_millis(1_000);

/// H5's section of the report.
pub(crate) fn h5(plan: &Plan) -> Value {
    match run(plan) {
        Ok(v) => v,
        Err(e) => json!({ "error": e }),
    }
}

/// One run of a measurement of `sdam_bench::adapter_throughput`, which panics when its
/// scripted set does not start or is not discovered: that panic becomes this figure's error.
fn measure(f: fn(Duration) -> f64) -> Result<f64, String> {
    std::panic::catch_unwind(|| f(RUN)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the measurement panicked".to_owned())
    })
}

fn run(plan: &Plan) -> Result<Value, String> {
    let (mut tokio_rates, mut std_rates, mut core_rates) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.repeats {
        tokio_rates.push(measure(at::tokio_selections_per_second)?);
        std_rates.push(measure(at::std_selections_per_second)?);
        core_rates.push(measure(at::core_selections_per_second)?);
    }
    Ok(json!({
        "criteria": format!(
            "read, mode secondaryPreferred, {}-member replica set (the six secondaries in the latency window)",
            at::MEMBERS
        ),
        "peers": "no figure: PyMongo and the Rust driver have no public server selection call",
        "implementation": "sdam_bench::adapter_throughput (a fresh scripted set and client per run; discovery not timed)",
        "sdam-tokio": { "tasks": at::TOKIO_TASKS, "runtime_workers": std::thread::available_parallelism().map_or(1, |n| n.get()), "selections_per_s": summary(&tokio_rates) },
        "sdam-std": { "threads": at::STD_THREADS, "selections_per_s": summary(&std_rates) },
        "core_single_thread": { "what": "SelectionSnapshot::select_now + finish_operation (what both adapters run per selection), the median batch of 1,024", "selections_per_s": summary(&core_rates) },
    }))
}
