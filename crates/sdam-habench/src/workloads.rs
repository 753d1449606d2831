//! H1–H4: each workload runs every implementation against fresh scripted clusters, the
//! implementations taking turns within each repeat (so a slow minute of the shared machine
//! hits them alike).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use crate::deploy::{self, Options};
use crate::impls::{self, Env, FailoverApp, Impl, When};
use crate::procfs;
use crate::stats::{round, summary};

type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How the run is sized.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) impls: Vec<Impl>,
    pub(crate) repeats: usize,
    pub(crate) spread_repeats: usize,
    pub(crate) spread_ops: usize,
    pub(crate) spread_settle: Duration,
    pub(crate) idle_warmup: Duration,
    pub(crate) idle_window: Duration,
    pub(crate) idle_slices: u32,
}

/// Runs `f` for every implementation in turn, `repeats` times; an implementation that fails
/// once is reported with its error and skipped from then on.
fn each<T>(
    plan: &Plan,
    repeats: usize,
    mut f: impl FnMut(Impl) -> Result<T>,
) -> BTreeMap<Impl, std::result::Result<Vec<T>, String>> {
    let mut out: BTreeMap<Impl, std::result::Result<Vec<T>, String>> =
        plan.impls.iter().map(|i| (*i, Ok(Vec::new()))).collect();
    for _ in 0..repeats {
        for which in &plan.impls {
            let Some(Ok(samples)) = out.get_mut(which) else { continue };
            match f(*which) {
                Ok(sample) => samples.push(sample),
                Err(e) => {
                    out.insert(*which, Err(e));
                }
            }
        }
    }
    out
}

/// The scripted servers' floor for a path (`crate::floor`), over the plan's repeats.
fn floor(plan: &Plan, run: fn() -> Result<f64>, what: &str) -> Value {
    let samples: Result<Vec<f64>> = (0..plan.repeats).map(|_| run()).collect();
    match samples {
        Ok(samples) => json!({ "what": what, "ms": summary(&samples) }),
        Err(e) => failed(&e),
    }
}

fn failed(e: &str) -> Value {
    json!({ "error": e })
}

/// H1: one seed of a 3-member set given; construction to the first successful write and to
/// all three members known.
pub(crate) fn h1(env: &Env, plan: &Plan) -> Value {
    let results = each(plan, plan.repeats, |which| {
        let set = deploy::replica_set(3).map_err(err)?;
        let seed = [set.address(0).map_err(err)?];
        let uri = deploy::uri(&seed, Some("rs0"), Options::default(), which.flavour());
        impls::discovery(env, which, &uri, 3)
    });
    let mut out = Map::new();
    out.insert(
        "scripted_floor".into(),
        floor(plan, crate::floor::discovery, "RawClient: connect to the seed, hello, connect again, insert"),
    );
    for (which, r) in results {
        out.insert(
            which.name().into(),
            match r {
                Ok(samples) => json!({
                    "first_write_ms": summary(&samples.iter().map(|s| s.first_write_ms).collect::<Vec<_>>()),
                    "all_known_ms": summary(&samples.iter().map(|s| s.all_known_ms).collect::<Vec<_>>()),
                }),
                Err(e) => failed(&e),
            },
        );
    }
    Value::Object(out)
}

/// The monitoring modes of H2.
pub(crate) fn failover_modes() -> [(&'static str, Options); 2] {
    [
        ("streaming", Options { heartbeat_ms: 10_000, ..Options::default() }),
        ("polling", Options { heartbeat_ms: 500, poll: true, ..Options::default() }),
    ]
}

/// The kill's offset moves by this much from one repeat to the next ...
const PHASE_STEP: Duration = Duration::from_millis(100);
/// ... over this many steps (5 × 100 ms: one polling period).
const PHASES: u32 = 5;

/// The pause between the kill and the election.
pub(crate) const ELECTION_DELAY: Duration = Duration::from_millis(500);

/// H2: a 3-member set, the application writing; the primary killed, member 1 elected 500 ms
/// later; the election to the first successful write.
pub(crate) fn h2(env: &Env, plan: &Plan) -> Value {
    let mut out = Map::new();
    for (mode, options) in failover_modes() {
        let mut runs: BTreeMap<Impl, u32> = BTreeMap::new();
        let results = each(plan, plan.repeats, |which| {
            let run = runs.entry(which).or_default();
            let phase = PHASE_STEP * (*run % PHASES);
            *run += 1;
            failover_once(env, which, options, phase)
        });
        let mut per = Map::new();
        for (which, r) in results {
            per.insert(
                which.name().into(),
                match r {
                    Ok(samples) => json!({
                        "ms": summary(&samples.iter().map(|s| s.0).collect::<Vec<_>>()),
                        "failed_attempts": summary(&samples.iter().map(|s| s.1).collect::<Vec<_>>()),
                        "first_errors": samples.iter().map(|s| s.2.clone()).collect::<std::collections::BTreeSet<_>>(),
                    }),
                    Err(e) => failed(&e),
                },
            );
        }
        if !options.poll {
            per.insert(
                "scripted_floor".into(),
                floor(plan, crate::floor::failover, "RawClient: an awaitable hello waiting on member 1; its pushed reply, a new connection and an insert"),
            );
        }
        out.insert(mode.into(), json!({ "heartbeatFrequencyMS": options.heartbeat_ms, "results": per }));
    }
    Value::Object(out)
}

/// One H2 run: (ms from the election to the first successful write, failed attempts, the
/// first error).
pub(crate) fn failover_once(
    env: &Env,
    which: Impl,
    options: Options,
    phase: Duration,
) -> Result<(f64, f64, String)> {
    let set = deploy::replica_set(3).map_err(err)?;
    let uri = deploy::uri(&set.addresses(), Some("rs0"), options, which.flavour());
    let mut app = FailoverApp::start(env, which, &uri)?;
    app.ready()?;
    // Steady state: the application has been writing to the primary for a while. The extra
    // wait moves the kill across the polling monitors' 500 ms schedule from one repeat to
    // the next (the same offsets for every implementation).
    std::thread::sleep(Duration::from_millis(200) + phase);
    set.crash(0).map_err(err)?;
    std::thread::sleep(ELECTION_DELAY);
    let (elected, elected_wall) = (Instant::now(), SystemTime::now());
    app.electing(elected, elected_wall)?;
    set.elect(1).map_err(err)?;
    let writes_before = set.command_count(1).map_err(err)?;
    let recovered = app.recovered()?;
    let took = match recovered.at {
        When::Instant(at) => at.checked_duration_since(elected),
        When::Wall(at) => at.duration_since(elected_wall).ok(),
    }
    .ok_or("the write succeeded before the election")?;
    if set.command_count(1).map_err(err)? <= writes_before {
        return Err("the successful write did not reach the new primary".into());
    }
    #[allow(clippy::cast_precision_loss)]
    Ok((took.as_secs_f64() * 1e3, recovered.errors as f64, recovered.first_error))
}

/// H3's mongoses: hellos answered after 20, 35 and 40 ms.
pub(crate) const SPREAD_LATENCIES_MS: [u64; 3] = [20, 35, 40];

/// H3: where `ops` writes go among three mongoses at 20 / 35 / 40 ms, with localThresholdMS
/// 15 and 30.
pub(crate) fn h3(env: &Env, plan: &Plan) -> Value {
    let latencies: Vec<Duration> = SPREAD_LATENCIES_MS.iter().map(|ms| Duration::from_millis(*ms)).collect();
    let mut out = Map::new();
    for threshold in [15u64, 30] {
        let options =
            Options { heartbeat_ms: 500, local_threshold_ms: Some(threshold), ..Options::default() };
        let results = each(plan, plan.spread_repeats, |which| {
            let mongoses = deploy::mongoses(&latencies).map_err(err)?;
            let uri = deploy::uri(&mongoses.addresses(), None, options, which.flavour());
            let mut counts = Vec::new();
            let rtts = impls::spread(
                env,
                which,
                &uri,
                &mongoses.addresses(),
                plan.spread_ops,
                plan.spread_settle,
                || {
                    counts.push(deploy::command_counts(&mongoses));
                },
            )?;
            let [before, after] = <[Vec<u64>; 2]>::try_from(counts).map_err(|_| "counts not read twice")?;
            let shares: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            let total: u64 = shares.iter().sum();
            if total != plan.spread_ops as u64 {
                return Err(format!("{total} operations arrived, {} were run", plan.spread_ops));
            }
            Ok((shares, rtts))
        });
        let mut per = Map::new();
        for (which, r) in results {
            per.insert(
                which.name().into(),
                match r {
                    Ok(runs) => {
                        #[allow(clippy::cast_precision_loss)]
                        let median: Vec<f64> = (0..SPREAD_LATENCIES_MS.len())
                            .map(|i| {
                                crate::stats::median(&summary(
                                    &runs.iter().map(|r| r.0[i] as f64).collect::<Vec<_>>(),
                                ))
                                .unwrap_or(0.0)
                            })
                            .collect();
                        let shares: Vec<&Vec<u64>> = runs.iter().map(|r| &r.0).collect();
                        let rtts: Vec<&impls::Rtts> = runs.iter().map(|r| &r.1).collect();
                        json!({ "median_shares": median, "runs": shares, "client_rtt_ms": rtts })
                    }
                    Err(e) => failed(&e),
                },
            );
        }
        out.insert(
            format!("localThresholdMS={threshold}"),
            json!({ "operations": plan.spread_ops, "latencies_ms": SPREAD_LATENCIES_MS, "results": per }),
        );
    }
    Value::Object(out)
}

/// One idle child being measured.
struct Idle {
    which: Impl,
    cluster: sdam_testserver::Cluster,
    child: crate::child::Child,
}

/// H4: the cost of an idle client per minute, on a child process per implementation, for a
/// 3-member set and 100 mongoses (default options: heartbeatFrequencyMS 10 s, streaming).
/// All implementations idle at once, each against its own cluster.
pub(crate) fn h4(env: &Env, plan: &Plan) -> Value {
    let mut out = Map::new();
    for (name, members) in [("replica_set_3", 3usize), ("mongoses_100", 100)] {
        out.insert(name.into(), idle_deployment(env, plan, members).unwrap_or_else(|e| failed(&e)));
    }
    out.insert(
        "method".into(),
        json!({
            "warmup_s": plan.idle_warmup.as_secs_f64(),
            "window_s": plan.idle_window.as_secs_f64(),
            "slices": plan.idle_slices,
            "scaled_to": "one minute; the summaries are over slices (each as long as a heartbeat: 10 s by default)",
        }),
    );
    Value::Object(out)
}

fn idle_deployment(env: &Env, plan: &Plan, members: usize) -> Result<Value> {
    let exe = std::env::current_exe().map_err(err)?;
    let mut running = Vec::new();
    let mut out = Map::new();
    for which in &plan.impls {
        let cluster = if members == 3 { deploy::replica_set(3) } else { deploy::many_mongoses(members) }
            .map_err(err)?;
        let set = (members == 3).then_some("rs0");
        let uri = deploy::uri(&cluster.addresses(), set, Options::default(), which.flavour());
        let child = match which {
            Impl::PyMongo => match &env.python {
                Ok(python) => python.spawn(&["idle".into(), uri, members.to_string()]),
                Err(e) => Err(e.clone()),
            },
            _ => crate::child::Child::spawn(
                &exe,
                &["idle".into(), which.name().into(), uri, members.to_string()],
            ),
        };
        match child {
            Ok(child) => running.push(Idle { which: *which, cluster, child }),
            Err(e) => {
                out.insert(which.name().into(), failed(&e));
            }
        }
    }
    let mut ready = Vec::new();
    for idle in running {
        match idle.child.expect("ready") {
            Ok(()) => ready.push(idle),
            Err(e) => {
                out.insert(idle.which.name().into(), failed(&e));
            }
        }
    }
    std::thread::sleep(plan.idle_warmup);
    let slice = plan.idle_window / plan.idle_slices.max(1);
    let scale = 60.0 / slice.as_secs_f64();
    let snapshot = |idle: &Idle| {
        (procfs::tasks(idle.child.pid()).unwrap_or_default(), deploy::hello_total(&idle.cluster))
    };
    let mut marks: Vec<Vec<_>> = ready.iter().map(|i| vec![snapshot(i)]).collect();
    let start_threads: Vec<usize> = marks.iter().map(|m| m[0].0.len()).collect();
    for _ in 0..plan.idle_slices.max(1) {
        std::thread::sleep(slice);
        for (idle, m) in ready.iter().zip(&mut marks) {
            m.push(snapshot(idle));
        }
    }
    for ((idle, m), threads_at_start) in ready.into_iter().zip(marks).zip(start_threads) {
        let sockets = idle.cluster.total_open_connections();
        let (mut cpu, mut wakeups, mut hellos) = (Vec::new(), Vec::new(), Vec::new());
        for pair in m.windows(2) {
            let d = procfs::delta(&pair[0].0, &pair[1].0);
            #[allow(clippy::cast_precision_loss)]
            {
                cpu.push(d.cpu_ns as f64 / 1e6 * scale);
                wakeups.push((d.voluntary + d.involuntary) as f64 * scale);
                hellos.push((pair[1].1 - pair[0].1) as f64 * scale);
            }
        }
        let threads_at_end = m.last().map_or(0, |s| s.0.len());
        let whole = match (m.first(), m.last()) {
            (Some(a), Some(b)) => (procfs::delta(&a.0, &b.0), b.1 - a.1),
            _ => (procfs::TaskCounters::default(), 0),
        };
        let minute = 60.0 / (slice.as_secs_f64() * f64::from(plan.idle_slices.max(1)));
        #[allow(clippy::cast_precision_loss)]
        let result = json!({
            "whole_window_per_min": {
                "cpu_ms": round(whole.0.cpu_ns as f64 / 1e6 * minute),
                "wakeups": round((whole.0.voluntary + whole.0.involuntary) as f64 * minute),
                "voluntary": round(whole.0.voluntary as f64 * minute),
                "hellos": round(whole.1 as f64 * minute),
            },
            "cpu_ms_per_min": summary(&cpu),
            "wakeups_per_min": summary(&wakeups),
            "hellos_per_min": summary(&hellos),
            "sockets": sockets,
            "threads": [threads_at_start, threads_at_end],
        });
        let which = idle.which;
        if let Err(e) = idle.child.finish() {
            out.insert(which.name().into(), failed(&e));
        } else {
            out.insert(which.name().into(), result);
        }
        drop(idle.cluster);
    }
    Ok(Value::Object(out))
}

/// `sdam / better peer` for the medians (`mean`: the means) at `path` (lower is better), per
/// adapter.
pub(crate) fn ratios(section: &Value, path: &[&str], mean: bool) -> Value {
    let at = |which: Impl| {
        let mut v = section.get(which.name())?;
        for key in path {
            v = v.get(key)?;
        }
        if mean {
            crate::stats::mean(v)
        } else {
            crate::stats::median(v)
        }
    };
    let peers: Vec<(Impl, f64)> =
        [Impl::RustDriver, Impl::PyMongo].into_iter().filter_map(|p| Some((p, at(p)?))).collect();
    let Some((best, best_value)) = peers.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Value::Null;
    };
    let mut out = Map::new();
    out.insert("better_peer".into(), json!(best.name()));
    out.insert("of".into(), json!(if mean { "means" } else { "medians" }));
    for which in [Impl::SdamTokio, Impl::SdamStd] {
        if let Some(v) = at(which) {
            out.insert(which.name().into(), json!(round(v / best_value)));
        }
    }
    Value::Object(out)
}
