//! The core's reply cache over the SDAM files of the corpus: each server's replies in a file,
//! parsed in order with the cache, give exactly what each one parsed alone gives.
//!
//! A check of the core (its doc-hidden `testing` module, a dev-dependency here), not of the
//! spec format: it runs beside each SDAM file's trial, so the runner library and the `sdam`
//! binary that uses it are built without the core's `testing` feature.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use sdam_spec_tests::to_document;

/// Runs the check on the SDAM file at `path`.
pub(crate) fn check_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let test: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut by_server: BTreeMap<String, Vec<bson::RawDocumentBuf>> = BTreeMap::new();
    for phase in test["phases"].as_array().into_iter().flatten() {
        for response in phase["responses"].as_array().into_iter().flatten() {
            let (Some(address), Some(reply)) = (response[0].as_str(), response[1].as_object()) else {
                continue;
            };
            if !reply.is_empty() {
                let doc = to_document(&response[1])?;
                let raw = bson::RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())?;
                by_server.entry(address.to_owned()).or_default().push(raw);
            }
        }
    }
    let now = Instant::now();
    for (address, replies) in by_server {
        sdam::testing::reply_cache::check_cached_parse(&replies, now)
            .map_err(|e| format!("reply cache, replies of {address}: {e}"))?;
    }
    Ok(())
}
