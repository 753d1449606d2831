//! # sdam-habench
//!
//! High-availability figures of this project's adapters beside PyMongo and the official Rust
//! driver, in one run, against the same scripted clusters of `sdam-testserver` on loopback
//! (issue #17): discovery (H1), failover with streaming and polling monitoring (H2), mongos
//! spread in the latency window (H3), the cost of an idle client (H4) and concurrent
//! selection (H5). Prints one JSON object with every figure per implementation (median and
//! spread over repeats). BENCHMARKS.md explains the method.
//!
//! ```text
//! scripts/install-pymongo.sh                     # PyMongo into target/pymongo-venv (once)
//! cargo run --release -p sdam-habench            # everything (about 5-6 minutes)
//! cargo run --release -p sdam-habench -- --only H1,H2 --repeats 3
//! cargo run -p sdam-habench -- --smoke           # CI: one H1 run of each sdam adapter
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod child;
mod conn;
mod deploy;
mod floor;
mod impls;
mod procfs;
mod selection;
mod stats;
mod workloads;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::impls::{Env, Impl};
use crate::workloads::Plan;

/// The pinned version of the official Rust driver (Cargo.toml says `=3.9.1`).
const MONGODB_CRATE_VERSION: &str = "3.9.1";

const USAGE: &str =
    "usage: sdam-habench [--smoke] [--only H1,H2,H3,H4,H5] [--impls sdam-tokio,sdam-std,rust-driver,pymongo]
                    [--repeats N] [--spread-repeats N] [--spread-ops N] [--idle-window S] [--idle-warmup S]
       sdam-habench idle IMPL URI MEMBERS   (the idle child of H4)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("idle") {
        let result = match (
            args.get(1).and_then(|s| Impl::parse(s)),
            args.get(2),
            args.get(3).and_then(|s| s.parse().ok()),
        ) {
            (Some(which), Some(uri), Some(members)) => impls::idle_main(which, uri, members),
            _ => Err(USAGE.to_owned()),
        };
        if let Err(e) = result {
            eprintln!("sdam-habench idle: {e}");
            std::process::exit(1);
        }
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            // The smoke run (CI) fails when any measurement failed.
            if smoke && has_error(&report) {
                eprintln!("sdam-habench: a measurement failed (see \"error\" in the report)");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("sdam-habench: {e}");
            std::process::exit(2);
        }
    }
}

fn parse_list<T>(value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    value.split(',').map(|s| parse(s.trim()).ok_or_else(|| format!("unknown name {s:?}\n{USAGE}"))).collect()
}

fn run(args: &[String]) -> Result<Value, String> {
    let mut plan = Plan {
        impls: Impl::ALL.to_vec(),
        repeats: 10,
        spread_repeats: 3,
        spread_ops: 3000,
        spread_settle: Duration::from_millis(2500),
        idle_warmup: Duration::from_secs(12),
        idle_window: Duration::from_secs(30),
        idle_slices: 3,
    };
    let mut only = vec!["H1", "H2", "H3", "H4", "H5"];
    let mut smoke = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{arg} {v}: {e}"));
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--only" => {
                let v = value()?;
                only = parse_list(&v, |s| {
                    ["H1", "H2", "H3", "H4", "H5"].into_iter().find(|h| h.eq_ignore_ascii_case(s))
                })?;
            }
            "--impls" => plan.impls = parse_list(&value()?, Impl::parse)?,
            "--repeats" => plan.repeats = usize::try_from(number(value()?)?).map_err(|e| e.to_string())?,
            "--spread-repeats" => {
                plan.spread_repeats = usize::try_from(number(value()?)?).map_err(|e| e.to_string())?;
            }
            "--spread-ops" => {
                plan.spread_ops = usize::try_from(number(value()?)?).map_err(|e| e.to_string())?;
            }
            "--idle-window" => plan.idle_window = Duration::from_secs(number(value()?)?),
            "--idle-warmup" => plan.idle_warmup = Duration::from_secs(number(value()?)?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if smoke {
        plan.impls = vec![Impl::SdamTokio, Impl::SdamStd];
        plan.repeats = 1;
        only = vec!["H1"];
    }
    if plan.repeats == 0 || plan.spread_repeats == 0 || plan.idle_window.is_zero() {
        return Err("repeats and the idle window must be positive".into());
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let python =
        if plan.impls.contains(&Impl::PyMongo) { child::Python::find() } else { Err("not asked for".into()) };
    let env = Env { runtime, python };
    let mut report = Map::new();
    report.insert("versions".into(), versions(&env));
    report.insert(
        "options".into(),
        json!({
            "H1_H4": deploy::uri(&[], Some("rs0"), deploy::Options::default(), deploy::Flavour::Peer),
            "sdam_adapters": "the same without retryWrites (the adapters run no operation themselves)",
        }),
    );
    let mut ratios = Map::new();
    for h in only {
        eprintln!("sdam-habench: {h}");
        let section = match h {
            "H1" => {
                let v = workloads::h1(&env, &plan);
                ratios.insert("H1_first_write".into(), workloads::ratios(&v, &["first_write_ms"], false));
                ratios.insert("H1_all_known".into(), workloads::ratios(&v, &["all_known_ms"], false));
                v
            }
            "H2" => {
                let v = workloads::h2(&env, &plan);
                for mode in ["streaming", "polling"] {
                    if let Some(results) = v.get(mode).and_then(|m| m.get("results")) {
                        // Polling: the mean over the kill's offsets across the 500 ms schedule.
                        ratios.insert(
                            format!("H2_{mode}"),
                            workloads::ratios(results, &["ms"], mode == "polling"),
                        );
                    }
                }
                v
            }
            "H3" => workloads::h3(&env, &plan),
            "H4" => {
                let v = workloads::h4(&env, &plan);
                for deployment in ["replica_set_3", "mongoses_100"] {
                    if let Some(d) = v.get(deployment) {
                        ratios.insert(
                            format!("H4_{deployment}_cpu"),
                            workloads::ratios(d, &["cpu_ms_per_min"], false),
                        );
                        ratios.insert(
                            format!("H4_{deployment}_wakeups"),
                            workloads::ratios(d, &["wakeups_per_min"], false),
                        );
                    }
                }
                v
            }
            _ => selection::h5(&plan),
        };
        // Each section as it completes, in case a later one fails.
        eprintln!("sdam-habench: {h} done: {section}");
        report.insert(h.into(), section);
    }
    report.insert("ratios_sdam_over_better_peer".into(), Value::Object(ratios));
    Ok(Value::Object(report))
}

fn versions(env: &Env) -> Value {
    let rustc = std::process::Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let (pymongo, python, c_ext) = match &env.python {
        Ok(p) => (json!(p.pymongo), json!(p.python), json!(p.c_extensions)),
        Err(e) => (json!(null), json!(e), json!(null)),
    };
    json!({
        "mongodb_crate": MONGODB_CRATE_VERSION,
        "pymongo": pymongo,
        "python": python,
        "pymongo_c_extensions": c_ext,
        "rustc": rustc,
        "sdam": env!("CARGO_PKG_VERSION"),
    })
}

/// Whether a report holds an `"error"` anywhere.
fn has_error(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.contains_key("error") || map.values().any(has_error),
        Value::Array(items) => items.iter().any(has_error),
        _ => false,
    }
}
