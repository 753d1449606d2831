//! Runner for the RTT calculation tests (`server-selection/tests/rtt`).
//!
//! Each file gives a previous average (`"NULL"` for none), a new sample and the expected new
//! average, all in milliseconds.

use std::time::Duration;

use serde_json::Value;

use sdam::rtt::{next_average, RttStats};

use crate::server_selection::{field, millis};

/// Runs one RTT test file.
pub fn run(test_file: &Value) -> Result<(), String> {
    let old = match field(test_file, "avg_rtt_ms")? {
        Value::String(s) if s == "NULL" => None,
        v => Some(millis(v, "avg_rtt_ms")?),
    };
    let sample = millis(field(test_file, "new_rtt_ms")?, "new_rtt_ms")?;
    let expected = millis(field(test_file, "new_avg_rtt")?, "new_avg_rtt")?;

    let actual = next_average(old, sample);
    check(expected, actual, "next_average")?;

    // The stateful tracker agrees: with no previous average the first sample is the average;
    // otherwise a tracker whose first sample was the previous average gives the same result.
    let mut stats = RttStats::new();
    if let Some(old) = old {
        stats.add_sample(old);
    }
    stats.add_sample(sample);
    check(expected, stats.average().unwrap_or(Duration::MAX), "RttStats::average")?;
    Ok(())
}

fn check(expected: Duration, actual: Duration, what: &str) -> Result<(), String> {
    // One nanosecond of slack for the millisecond fractions of the files.
    let diff = expected.abs_diff(actual);
    if diff <= Duration::from_nanos(1) {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, actual {actual:?}"))
    }
}
