//! Runner for the server selection logic tests (`server-selection/tests/server_selection`)
//! and, through `run_selection_file`, the max staleness tests, which share the format.
//!
//! Each file describes a topology, an operation and a read preference, and expects either an
//! error or the suitable servers and the servers in the latency window. The runner checks
//! both sets with the pure functions, that [`sdam::selection::select_server`] picks a server
//! in the window, that a [`Selection`] agrees (selects, waits, or fails), and that the
//! explanation agrees with the sets.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use sdam::rng::Rng;
use sdam::selection::{
    explain, in_latency_window, select_server, suitable_servers, NoOperations, Selection, SelectionCriteria,
    SelectionOptions, SelectionPoll, Verdict,
};
use sdam::{
    ReadPreference, ReadPreferenceError, ReadPreferenceMode, ServerAddress, ServerDescription, ServerType,
    TagSet, Tags, TopologyDescription, TopologyType,
};

/// Runs one server selection logic test file.
pub fn run(test_file: &Value) -> Result<(), String> {
    run_selection_file(test_file)
}

/// Runs a file in the server selection / max staleness format.
pub(crate) fn run_selection_file(test: &Value) -> Result<(), String> {
    #[allow(clippy::disallowed_methods)] // the runner gives the file's relative times a base
    let base = Instant::now();
    let mut topology = parse_topology(field(test, "topology_description")?, base)?;
    if let Some(hb) = test.get("heartbeatFrequencyMS") {
        topology.heartbeat_frequency = Duration::from_millis(as_u64(hb, "heartbeatFrequencyMS")?);
    }
    let expect_error = test.get("error").and_then(Value::as_bool).unwrap_or(false);
    let criteria = match parse_criteria(test)? {
        Ok(c) => c,
        // The read preference itself is invalid: a caller mistake caught at construction.
        Err(_) if expect_error => return Ok(()),
        Err(e) => return Err(format!("expected a valid read preference, got error: {e}")),
    };

    let suitable = suitable_servers(&topology, &criteria);
    let window = in_latency_window(&topology, &criteria);
    if expect_error {
        return match (&suitable, &window) {
            (Err(_), Err(_)) => check_selection_fails(&topology, &criteria, base),
            _ => Err(format!(
                "expected an error, got suitable {:?} and in window {:?}",
                suitable.map(|l| names(&l)),
                window.map(|l| names(&l))
            )),
        };
    }
    let suitable = suitable.map_err(|e| format!("expected servers, got error: {e}"))?;
    let window = window.map_err(|e| format!("expected servers, got error: {e}"))?;

    if let Some(expected) = test.get("suitable_servers") {
        compare("suitable_servers", &addresses(expected)?, &names(&suitable))?;
    }
    let expected_window = addresses(field(test, "in_latency_window")?)?;
    compare("in_latency_window", &expected_window, &names(&window))?;

    // The spec's MUST: selection returns one of the servers in the window.
    let mut rng = Rng::new(0x5e1ec7);
    for _ in 0..20 {
        let chosen = select_server(&topology, &criteria, &NoOperations, &mut rng)
            .map_err(|e| format!("select_server failed: {e}"))?;
        match chosen {
            Some(sd) if expected_window.contains(&sd.address.to_string()) => {}
            Some(sd) => {
                return Err(format!(
                    "selected {} outside the expected window {expected_window:?}",
                    sd.address
                ))
            }
            None if expected_window.is_empty() => {}
            None => return Err(format!("selected nothing; expected one of {expected_window:?}")),
        }
    }

    // The waiting loop agrees: it selects at once, or waits for a topology change.
    let mut selection = Selection::new(criteria.clone(), SelectionOptions::new("test"), base);
    match selection.poll(&topology, &NoOperations, &mut rng, base) {
        SelectionPoll::Selected(s) if expected_window.contains(&s.address.to_string()) => {}
        SelectionPoll::Wait { .. } if expected_window.is_empty() => {}
        other => {
            return Err(format!("Selection::poll returned {other:?}; expected window {expected_window:?}"))
        }
    }

    // The explanation agrees: exactly the window's servers are in the window.
    let explanation = explain(&topology, &criteria, None);
    for server in &explanation.servers {
        let in_window = server.verdict == Verdict::InWindow;
        if in_window != expected_window.contains(&server.address.to_string()) {
            return Err(format!(
                "explanation says {}: {}; expected window {expected_window:?}",
                server.address, server.verdict
            ));
        }
    }
    Ok(())
}

/// An expected error must also fail a `Selection` at once rather than make it wait.
fn check_selection_fails(
    topology: &TopologyDescription,
    criteria: &SelectionCriteria,
    now: Instant,
) -> Result<(), String> {
    let mut selection = Selection::new(criteria.clone(), SelectionOptions::new("test"), now);
    match selection.poll(topology, &NoOperations, &mut Rng::new(1), now) {
        SelectionPoll::Failed(_) => Ok(()),
        other => Err(format!("expected Selection::poll to fail, got {other:?}")),
    }
}

fn compare(what: &str, expected: &BTreeSet<String>, actual: &BTreeSet<String>) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, actual {actual:?}"))
    }
}

fn names(list: &[&std::sync::Arc<ServerDescription>]) -> BTreeSet<String> {
    list.iter().map(|sd| sd.address.to_string()).collect()
}

fn addresses(list: &Value) -> Result<BTreeSet<String>, String> {
    list.as_array()
        .ok_or("expected an array of servers")?
        .iter()
        .map(|s| Ok(parse_address(field(s, "address")?)?.to_string()))
        .collect()
}

pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field {name:?}"))
}

fn as_u64(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("{what}: expected a non-negative integer, got {v}"))
}

fn as_i64(v: &Value, what: &str) -> Result<i64, String> {
    // Extended JSON `{"$numberLong": "1"}` or a plain number.
    if let Some(s) = v.get("$numberLong").and_then(Value::as_str) {
        return s.parse().map_err(|_| format!("{what}: bad $numberLong {s:?}"));
    }
    v.as_i64().ok_or_else(|| format!("{what}: expected an integer, got {v}"))
}

/// Milliseconds, integer or fractional, as a `Duration`.
pub(crate) fn millis(v: &Value, what: &str) -> Result<Duration, String> {
    let ms = v
        .as_f64()
        .filter(|m| m.is_finite() && *m >= 0.0)
        .ok_or_else(|| format!("{what}: bad milliseconds {v}"))?;
    Ok(Duration::from_nanos((ms * 1_000_000.0).round() as u64))
}

pub(crate) fn parse_address(v: &Value) -> Result<ServerAddress, String> {
    let s = v.as_str().ok_or("address is not a string")?;
    ServerAddress::parse(s).map_err(|e| format!("address {s:?}: {e}"))
}

/// A `topology_description` object: type and servers.
pub(crate) fn parse_topology(v: &Value, base: Instant) -> Result<TopologyDescription, String> {
    let type_name = field(v, "type")?.as_str().ok_or("topology type is not a string")?;
    let topology_type =
        TopologyType::parse(type_name).ok_or_else(|| format!("unknown topology type {type_name}"))?;
    let mut topology = TopologyDescription::new(topology_type);
    for s in field(v, "servers")?.as_array().ok_or("servers is not an array")? {
        topology.insert_server(parse_server(s, base)?);
    }
    Ok(topology)
}

fn parse_server(v: &Value, base: Instant) -> Result<ServerDescription, String> {
    let mut sd = ServerDescription::unknown(parse_address(field(v, "address")?)?);
    let type_name = field(v, "type")?.as_str().ok_or("server type is not a string")?;
    sd.server_type =
        ServerType::parse(type_name).ok_or_else(|| format!("unknown server type {type_name}"))?;
    if let Some(rtt) = v.get("avg_rtt_ms") {
        sd.round_trip_time = Some(millis(rtt, "avg_rtt_ms")?);
    }
    if let Some(tags) = v.get("tags") {
        sd.tags = Tags::new(string_pairs(tags)?);
    }
    if let Some(t) = v.get("lastUpdateTime") {
        sd.last_update_time = base.checked_add(Duration::from_millis(as_u64(t, "lastUpdateTime")?));
    }
    if let Some(date) = v.get("lastWrite").and_then(|w| w.get("lastWriteDate")) {
        sd.last_write_date = Some(bson::DateTime::from_millis(as_i64(date, "lastWriteDate")?));
    }
    if let Some(w) = v.get("maxWireVersion") {
        sd.max_wire_version = i32::try_from(as_i64(w, "maxWireVersion")?).map_err(|e| e.to_string())?;
    }
    Ok(sd)
}

fn string_pairs(v: &Value) -> Result<Vec<(String, String)>, String> {
    v.as_object()
        .ok_or_else(|| format!("expected a document of tags, got {v}"))?
        .iter()
        .map(|(k, val)| {
            let val = val.as_str().ok_or_else(|| format!("tag {k:?} is not a string"))?;
            Ok((k.clone(), val.to_owned()))
        })
        .collect()
}

/// The operation, read preference and deprioritized servers of a test. The outer `Err` is a
/// malformed file; the inner one a read preference the core rejects.
fn parse_criteria(test: &Value) -> Result<Result<SelectionCriteria, ReadPreferenceError>, String> {
    let is_write = match test.get("operation").and_then(Value::as_str) {
        None | Some("read") => false,
        Some("write") => true,
        Some(other) => return Err(format!("unknown operation {other:?}")),
    };
    let mut criteria = if is_write {
        SelectionCriteria::write()
    } else {
        match parse_read_preference(test.get("read_preference"))? {
            Ok(rp) => SelectionCriteria::read(rp),
            Err(e) => return Ok(Err(e)),
        }
    };
    if let Some(list) = test.get("deprioritized_servers") {
        for s in list.as_array().ok_or("deprioritized_servers is not an array")? {
            criteria.deprioritize(parse_address(field(s, "address")?)?);
        }
    }
    Ok(Ok(criteria))
}

/// A `read_preference` document. The outer `Err` is a malformed document; the inner one a
/// read preference the core rejects.
pub(crate) fn parse_read_preference(
    v: Option<&Value>,
) -> Result<Result<ReadPreference, ReadPreferenceError>, String> {
    let Some(v) = v else { return Ok(Ok(ReadPreference::primary())) };
    let mode = match v.get("mode").and_then(Value::as_str) {
        None => ReadPreferenceMode::Primary,
        Some(m) => ReadPreferenceMode::parse(m).ok_or_else(|| format!("unknown mode {m:?}"))?,
    };
    let mut rp = ReadPreference::new(mode);
    if let Some(sets) = v.get("tag_sets") {
        let sets = sets
            .as_array()
            .ok_or("tag_sets is not an array")?
            .iter()
            .map(|s| Ok(TagSet(string_pairs(s)?)))
            .collect::<Result<Vec<_>, String>>()?;
        rp = match rp.with_tag_sets(sets) {
            Ok(rp) => rp,
            Err(e) => return Ok(Err(e)),
        };
    }
    if let Some(max) = v.get("maxStalenessSeconds") {
        rp = match rp.with_max_staleness_seconds(Some(as_i64(max, "maxStalenessSeconds")?)) {
            Ok(rp) => rp,
            Err(e) => return Ok(Err(e)),
        };
    }
    Ok(Ok(rp))
}
