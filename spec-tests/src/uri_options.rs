//! Runner for the URI options spec tests (`uri-options/tests/*.json`).
//!
//! The files use the connection string tests' format (uri-options tests README), with
//! `hosts` and `auth` always `null`: each case's `valid`, `warning` and listed `options` are
//! checked. This crate implements every option, including the ones the spec marks optional,
//! so no case is skipped.

use serde_json::Value;

/// Runs every case of a URI options test file.
///
/// Returns `Err` naming the first failing case's description and its first difference.
pub fn run(test_file: &Value) -> Result<(), String> {
    crate::connection_string::run_cases(test_file)
}
