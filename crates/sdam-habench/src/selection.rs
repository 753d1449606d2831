//! H5: concurrent server selection in this project's adapters (64 tokio tasks; 8 std
//! threads) against a 7-member set, beside the core's single-thread rate on the same
//! snapshot. The peers have no public selection call: PyMongo's `Topology.select_server`
//! and the Rust driver's server selection are internal, reached only through an operation,
//! so they have no figure here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::selection::{NoOperations, SelectionCriteria};
use sdam::{ReadPreference, ReadPreferenceMode};
use serde_json::{json, Value};

use crate::deploy::{self, Options};
use crate::impls::Env;
use crate::stats::summary;
use crate::workloads::Plan;

/// The tokio tasks selecting at once.
pub(crate) const TASKS: usize = 64;
/// The std threads selecting at once.
pub(crate) const THREADS: usize = 8;
/// How long one timed run lasts.
const RUN: Duration = Duration::from_millis(1_000);

fn criteria() -> SelectionCriteria {
    SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest))
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / elapsed.as_secs_f64()
}

/// H5's section of the report.
pub(crate) fn h5(env: &Env, plan: &Plan) -> Value {
    match run(env, plan) {
        Ok(v) => v,
        Err(e) => json!({ "error": e }),
    }
}

fn run(env: &Env, plan: &Plan) -> Result<Value, String> {
    let set = deploy::replica_set(7).map_err(|e| e.to_string())?;
    let options = Options { heartbeat_ms: 500, ..Options::default() };
    let uri = deploy::uri(&set.addresses(), Some("rs0"), options, deploy::Flavour::Sdam);
    let (mut tokio_rates, mut std_rates, mut core_rates) = (Vec::new(), Vec::new(), Vec::new());
    let tokio_client = {
        let _guard = env.runtime.enter();
        sdam_tokio::Client::from_uri(&uri).map_err(|e| e.to_string())?
    };
    let std_client = sdam_std::Client::from_uri(&uri).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio_client.nodes().len() < 7 || std_client.nodes().len() < 7 {
        if Instant::now() > deadline {
            return Err("the 7-member set was not discovered in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the RTT averages settle so the window is stable.
    std::thread::sleep(Duration::from_millis(1_200));
    for _ in 0..plan.repeats {
        tokio_rates.push(tokio_run(env, &tokio_client)?);
        std_rates.push(std_run(&std_client)?);
        core_rates.push(core_run(&std_client));
    }
    env.runtime.block_on(tokio_client.close());
    std_client.close();
    Ok(json!({
        "criteria": "read, mode nearest, 7-member replica set (all in the latency window)",
        "peers": "no figure: PyMongo and the Rust driver have no public server selection call",
        "implementation": "this crate (sdam_bench::adapter_throughput was not on main)",
        "sdam-tokio": { "tasks": TASKS, "runtime_workers": std::thread::available_parallelism().map_or(1, |n| n.get()), "selections_per_s": summary(&tokio_rates) },
        "sdam-std": { "threads": THREADS, "selections_per_s": summary(&std_rates) },
        "core_single_thread": { "what": "selection::select_server (window + in-window choice) on the adapter's snapshot", "selections_per_s": summary(&core_rates) },
    }))
}

fn tokio_run(env: &Env, client: &sdam_tokio::Client) -> Result<f64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (client, stop, count) = (client.clone(), Arc::clone(&stop), Arc::clone(&count));
        tasks.push(env.runtime.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let guard = client.select_server(criteria()).await.map_err(|e| e.to_string())?;
                drop(guard);
                n += 1;
            }
            count.fetch_add(n, Ordering::Relaxed);
            Ok::<(), String>(())
        }));
    }
    // The clock runs on this thread: a selection that is ready at once never yields, so the
    // runtime's own timers would not fire while 64 tasks select.
    let start = Instant::now();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    env.runtime.block_on(async {
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), String>(())
    })?;
    Ok(per_second(count.load(Ordering::Relaxed), start.elapsed()))
}

fn std_run(client: &sdam_std::Client) -> Result<f64, String> {
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let guard = client.select_server(criteria()).map_err(|e| e.to_string())?;
                        drop(guard);
                        n += 1;
                    }
                    count.fetch_add(n, Ordering::Relaxed);
                    Ok::<(), String>(())
                })
            })
            .collect();
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "a selecting thread panicked".to_owned())?)
    })?;
    Ok(per_second(count.load(Ordering::Relaxed), start.elapsed()))
}

fn core_run(client: &sdam_std::Client) -> f64 {
    let description = client.description();
    let criteria = criteria();
    let mut rng = sdam::rng::Rng::new(7);
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < RUN {
        for _ in 0..1024 {
            let chosen = sdam::selection::select_server(&description, &criteria, &NoOperations, &mut rng);
            std::hint::black_box(&chosen);
            n += 1;
        }
    }
    per_second(n, start.elapsed())
}
