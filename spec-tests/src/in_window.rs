//! Runner for the selection-within-the-latency-window tests
//! (`server-selection/tests/in_window`).
//!
//! Each file gives a topology, each server's operation count, a number of iterations and the
//! expected frequency of each server. The runner selects for a read with mode nearest that
//! many times with a seeded generator (the counts stay as given) and checks each observed
//! frequency against the expected one within `outcome.tolerance`; an expected frequency of 0
//! or 1 must be met exactly (server-selection/tests/README.md, "Selection Within Latency
//! Window YAML Tests").

use std::collections::HashMap;

use serde_json::Value;

use sdam::rng::Rng;
use sdam::selection::{select_server, SelectionCriteria};
use sdam::{ReadPreference, ReadPreferenceMode, ServerAddress};

use crate::server_selection::{field, parse_address, parse_topology};

/// The generator's seed: fixed, so a run is reproducible.
const SEED: u64 = 0x1_2345_6789;

/// Runs one in-window test file.
pub fn run(test_file: &Value) -> Result<(), String> {
    #[allow(clippy::disallowed_methods)] // the runner gives the file's relative times a base
    let base = std::time::Instant::now();
    let topology = parse_topology(field(test_file, "topology_description")?, base)?;
    let mut counts: HashMap<ServerAddress, u32> = HashMap::new();
    for entry in field(test_file, "mocked_topology_state")?
        .as_array()
        .ok_or("mocked_topology_state is not an array")?
    {
        let count = field(entry, "operation_count")?.as_u64().ok_or("operation_count is not an integer")?;
        counts.insert(
            parse_address(field(entry, "address")?)?,
            u32::try_from(count).map_err(|e| e.to_string())?,
        );
    }
    let iterations = field(test_file, "iterations")?.as_u64().ok_or("iterations is not an integer")?;
    if iterations == 0 {
        return Err("iterations must be positive".into());
    }
    let outcome = field(test_file, "outcome")?;
    let tolerance = field(outcome, "tolerance")?.as_f64().ok_or("tolerance is not a number")?;
    let expected = field(outcome, "expected_frequencies")?
        .as_object()
        .ok_or("expected_frequencies is not a document")?;

    let criteria = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest));
    let mut rng = Rng::new(SEED);
    let mut tally: HashMap<String, u64> = HashMap::new();
    for _ in 0..iterations {
        let chosen = select_server(&topology, &criteria, &counts, &mut rng)
            .map_err(|e| format!("selection failed: {e}"))?
            .ok_or("no server selected")?;
        *tally.entry(chosen.address.to_string()).or_default() += 1;
    }

    for (address, expected_frequency) in expected {
        let expected_frequency = expected_frequency.as_f64().ok_or("expected frequency is not a number")?;
        let key = parse_address(&Value::String(address.clone()))?.to_string();
        let observed = tally.get(&key).copied().unwrap_or(0) as f64 / iterations as f64;
        let exact = expected_frequency == 0.0 || expected_frequency == 1.0;
        let ok = if exact {
            observed == expected_frequency
        } else {
            (observed - expected_frequency).abs() <= tolerance
        };
        if !ok {
            return Err(format!(
                "{address}: expected frequency {expected_frequency} (tolerance {}), actual {observed}",
                if exact { 0.0 } else { tolerance }
            ));
        }
    }
    // No server outside the expectations was ever chosen.
    for address in tally.keys() {
        if !expected
            .keys()
            .any(|a| parse_address(&Value::String(a.clone())).map(|p| p.to_string()).as_ref() == Ok(address))
        {
            return Err(format!("{address} was selected but has no expected frequency"));
        }
    }
    Ok(())
}
