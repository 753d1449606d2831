//! Runner for the max staleness tests (`max-staleness/tests`).
//!
//! The format is the server selection format plus an optional `heartbeatFrequencyMS` and
//! `error: true` for read preferences that are invalid (with mode primary, or too small for a
//! replica set). The runner shares the server selection runner's checks.

use serde_json::Value;

/// Runs one max staleness test file.
pub fn run(test_file: &Value) -> Result<(), String> {
    crate::server_selection::run_selection_file(test_file)
}
