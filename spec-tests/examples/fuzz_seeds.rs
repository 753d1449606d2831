//! `cargo run -p sdam-spec-tests --example fuzz_seeds -- OUT_DIR` (what `fuzz/seed-corpora.sh`
//! runs): writes seed inputs for every fuzz target into `OUT_DIR/<target>/`,
//! made from the official spec tests (found like the spec runner finds them:
//! `SDAM_SPEC_CORPUS`, else `../shared/specifications`). The corpus licence forbids copying
//! its files into this repository, so the seeds are generated, never committed.
//!
//! - `hello_parse`: every hello reply of the SDAM tests, as BSON bytes;
//! - `op_msg_decode`: the same replies framed as OP_MSG messages;
//! - `monitor_connection`: the same replies as the answer to a monitoring connection's first
//!   request, read 64 bytes at a time;
//! - `topology_transitions`: each SDAM test as a plan (its URI as a configuration, its
//!   replies, network errors and application errors in order, the deadline woken between
//!   phases);
//! - `selection`: each server selection and max-staleness test as a selection case.
//!
//! The plan and case models are smaller than the spec formats (eight hosts, six tags), so the
//! translation keeps what fits and drops the rest.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use sdam::testing::bytes::Codec;
use sdam::testing::plan::{
    AppErrorPlan, ConfigKind, ConfigPlan, Plan, SelectPlan, Step, ERROR_CODES, HOSTS, SET_NAMES, TAGS,
};
use sdam::testing::selection_case::{SelectionCase, ServerCase, SERVER_TYPES, TOPOLOGY_TYPES};
use sdam::{ServerAddress, ServerType, TopologyType};
use sdam_spec_tests::{corpus_root, json_files, to_document};

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds OUT_DIR   (writes OUT_DIR/<target>/<hash> for every fuzz target)");
        return ExitCode::from(2);
    };
    match run(&out) {
        Ok(counts) => {
            for (target, n) in counts {
                println!("{target}: {n} seeds");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &Path) -> Result<Vec<(&'static str, usize)>, String> {
    let root = corpus_root()?;
    let mut seeds = Seeds::new(out);
    let sdam_dir = root.join("server-discovery-and-monitoring/tests");
    for file in json_files(&sdam_dir).map_err(|e| format!("{}: {e}", sdam_dir.display()))? {
        if file.components().any(|c| c.as_os_str() == "unified") {
            continue;
        }
        let test = read(&file)?;
        if let Some(plan) = sdam_plan(&test, &mut seeds)? {
            seeds.write("topology_transitions", &plan.to_bytes())?;
        }
    }
    for dir in ["server-selection/tests/server_selection", "max-staleness/tests"] {
        let dir = root.join(dir);
        for file in json_files(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            if let Some(case) = selection_case(&read(&file)?) {
                seeds.write("selection", &case.to_bytes())?;
            }
        }
    }
    Ok(seeds.counts)
}

fn read(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Seed files, named by a hash of their content (so reruns do not duplicate them).
struct Seeds {
    out: PathBuf,
    counts: Vec<(&'static str, usize)>,
}

impl Seeds {
    fn new(out: &Path) -> Self {
        Self { out: out.to_path_buf(), counts: Vec::new() }
    }

    fn write(&mut self, target: &'static str, bytes: &[u8]) -> Result<(), String> {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("spec-{:016x}", fnv1a(bytes)));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        match self.counts.iter_mut().find(|(t, _)| *t == target) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((target, 1)),
        }
        Ok(())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The index of `address` in [`HOSTS`].
fn host_index(address: &str) -> Option<u8> {
    let address = ServerAddress::parse(address).ok()?;
    HOSTS.iter().position(|h| ServerAddress::parse(h).is_ok_and(|h| h == address)).map(|i| i as u8)
}

/// A `monitor_connection` input: the control byte (no exhaust, the default size limit), the
/// read lengths (a quarter of the rest: 64-byte reads), then the reply to request 1.
fn monitor_connection_seed(reply: &bson::RawDocument) -> Result<Vec<u8>, String> {
    let mut message = sdam_wire::OpMsg::new(900, reply);
    message.response_to = 1;
    let message = message.to_vec().map_err(|e| e.to_string())?;
    let mut seed = vec![5 << 1];
    seed.resize(1 + message.len() / 3, 63);
    seed.extend_from_slice(&message);
    Ok(seed)
}

/// An SDAM test as a plan; its replies also become `hello_parse`, `op_msg_decode` and
/// `monitor_connection` seeds.
fn sdam_plan(test: &Value, seeds: &mut Seeds) -> Result<Option<Plan>, String> {
    let Some(uri) = test["uri"].as_str() else { return Ok(None) };
    let Ok(cs) = sdam::ConnectionString::parse(uri) else { return Ok(None) };
    let options = cs.options();
    let seed_mask = cs.hosts().iter().filter_map(|h| host_index(&h.to_string())).fold(0u8, |m, i| m | 1 << i);
    let set_name = options.replica_set.as_deref().map(|n| u8::from(n != SET_NAMES[0]));
    let kind = match (options.load_balanced, options.direct_connection, set_name) {
        (Some(true), _, _) => ConfigKind::LoadBalanced,
        (_, Some(true), Some(_)) => ConfigKind::DirectWithSetName,
        (_, Some(true), None) => ConfigKind::Direct,
        (_, _, Some(_)) => ConfigKind::ReplicaSet,
        _ => ConfigKind::Discover,
    };
    let config = ConfigPlan {
        seeds: seed_mask,
        kind,
        set_name: set_name.unwrap_or(0),
        monitoring: 2,
        heartbeat_ms: 9500,
        local_threshold_ms: 15,
        srv: false,
        srv_max_hosts: 0,
        rng_seed: 0,
    };
    let mut steps = Vec::new();
    for phase in test["phases"].as_array().into_iter().flatten() {
        for response in phase["responses"].as_array().into_iter().flatten() {
            let Some(server) = response[0].as_str().and_then(host_index) else { continue };
            if response[1].as_object().is_some_and(|o| o.is_empty()) {
                steps.push(Step::CheckFailed { server });
                continue;
            }
            let doc = to_document(&response[1])?;
            let raw = bson::RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())?;
            seeds.write("hello_parse", raw.as_bytes())?;
            let message = sdam_wire::OpMsg::new(1, &raw).to_vec().map_err(|e| e.to_string())?;
            seeds.write("op_msg_decode", &message)?;
            seeds.write("monitor_connection", &monitor_connection_seed(&raw)?)?;
            steps.push(Step::RawReply { server, reply: raw.as_bytes().to_vec() });
        }
        for error in phase["applicationErrors"].as_array().into_iter().flatten() {
            if let Some(step) = application_error(error) {
                steps.push(step);
            }
        }
        steps.push(Step::WakeAtDeadline);
    }
    Ok(Some(Plan { config, steps }))
}

fn application_error(error: &Value) -> Option<Step> {
    let server = error["address"].as_str().and_then(host_index)?;
    let response = &error["response"];
    let code = response["code"].as_i64().and_then(|c| i32::try_from(c).ok());
    let kind = match error["type"].as_str()? {
        "network" => 0,
        "timeout" => 1,
        _ => 2,
    };
    let topology_version = response.get("topologyVersion").map(|tv| sdam::testing::plan::TvPlan {
        process: 0,
        counter: tv["counter"]["$numberLong"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0),
    });
    Some(Step::AppError(AppErrorPlan {
        server,
        kind,
        code: ERROR_CODES.iter().position(|c| *c == code).unwrap_or(0) as u8,
        topology_version,
        generation: u8::from(error.get("generation").is_some()) * 2,
        before_handshake: error["when"].as_str() == Some("beforeHandshakeCompletes"),
        overloaded: false,
        service: None,
    }))
}

/// The mask over [`TAGS`] of a document of tags (pairs outside the model are dropped).
fn tag_mask(tags: &Value) -> u8 {
    tags.as_object().into_iter().flatten().fold(0, |mask, (k, v)| {
        let i = TAGS.iter().position(|(tk, tv)| tk == k && Some(*tv) == v.as_str());
        i.map_or(mask, |i| mask | 1 << i)
    })
}

fn millis(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v["$numberLong"].as_str()?.parse().ok()).or_else(|| v.as_f64().map(|f| f as i64))
}

/// A server selection or max-staleness test as a selection case.
fn selection_case(test: &Value) -> Option<SelectionCase> {
    let td = &test["topology_description"];
    let topology_type = TopologyType::parse(td["type"].as_str()?)?;
    let mut servers = Vec::new();
    for s in td["servers"].as_array()?.iter().take(8) {
        let server_type = ServerType::parse(s["type"].as_str()?)?;
        // Servers keep their order; their addresses become HOSTS[i].
        servers.push(ServerCase {
            server_type: SERVER_TYPES.iter().position(|t| *t == server_type)? as u8,
            rtt_ms: s.get("avg_rtt_ms").and_then(Value::as_f64).map(|ms| ms.clamp(0.0, 65535.0) as u16),
            tags: s.get("tags").map_or(0, tag_mask),
            last_write_s: s
                .get("lastWrite")
                .and_then(|w| millis(&w["lastWriteDate"]))
                .map(|ms| (ms / 1000).clamp(0, 65535) as u16),
            last_update_s: s
                .get("lastUpdateTime")
                .and_then(millis)
                .map(|ms| (ms / 1000).clamp(0, 65535) as u16),
        });
    }
    let rp = &test["read_preference"];
    let mode = ["Primary", "PrimaryPreferred", "Secondary", "SecondaryPreferred", "Nearest"]
        .iter()
        .position(|m| Some(*m) == rp["mode"].as_str())
        .unwrap_or(0) as u8;
    let heartbeat_ms = test["heartbeatFrequencyMS"].as_u64().unwrap_or(10_000);
    Some(SelectionCase {
        topology_type: TOPOLOGY_TYPES.iter().position(|t| *t == topology_type)? as u8,
        servers,
        heartbeat: (heartbeat_ms.saturating_sub(500) / 2).min(65535) as u16,
        threshold_ms: 15,
        incompatible: false,
        select: SelectPlan {
            write: test["operation"].as_str() == Some("write"),
            mode,
            tag_sets: rp["tag_sets"].as_array().into_iter().flatten().take(3).map(tag_mask).collect(),
            max_staleness: rp["maxStalenessSeconds"].as_i64().map(|s| (s / 2).clamp(0, 255) as u8),
            deprioritized: 0,
        },
        counts: 0,
        seed: 0,
    })
}
