//! Runs the official MongoDB spec tests (JSON) against the sdam core.
//!
//! The corpus is never part of this repository: it is found through `SDAM_SPEC_CORPUS`,
//! else `../shared/specifications` beside the workspace. [`suites`] lists what runs where;
//! [`run_file`] runs one file in any supported format.
#![cfg_attr(docsrs, feature(doc_cfg))] // feature badges on docs.rs (nightly); stable never sets `docsrs`

use std::path::{Path, PathBuf};

pub mod connection_string;
pub mod in_window;
pub mod max_staleness;
pub mod rtt;
pub mod sdam_json;
pub mod seedlist;
pub mod server_selection;
pub mod unified;
pub mod uri_options;

/// The commit of `mongodb/specifications` the corpus is pinned to.
pub const PINNED_COMMIT: &str = "92b3c0b9287bfba1b0ec4084300858d05c654f8c";

/// Runs one parsed test file; `Err` names the first difference.
pub type RunFn = fn(&serde_json::Value) -> Result<(), String>;

/// The formats this runner understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SDAM: `uri` + `phases` of responses and application errors.
    Sdam,
    /// Server selection: a topology description, an operation and a read preference.
    ServerSelection,
    /// Max staleness: the server selection format with `heartbeatFrequencyMS` and staleness.
    MaxStaleness,
    /// RTT: a previous average, a new sample and the expected new average.
    Rtt,
    /// In-window: a topology, operation counts and the expected selection frequencies.
    InWindow,
    /// Connection strings: `tests` of URIs with their hosts, auth and options, valid or not.
    ConnectionString,
    /// URI options: the connection string format, checked for typed options and warnings.
    UriOptions,
    /// mongodb+srv seed lists, resolved against the in-memory DNS records of the spec.
    Seedlist,
    /// The unified test format, run on scripted servers through both adapters.
    Unified,
}

impl Format {
    /// The function that runs a file of this format.
    pub fn runner(self) -> RunFn {
        match self {
            Self::Sdam => sdam_json::run,
            Self::ServerSelection => server_selection::run,
            Self::MaxStaleness => max_staleness::run,
            Self::Rtt => rtt::run,
            Self::InWindow => in_window::run,
            Self::ConnectionString => connection_string::run,
            Self::UriOptions => uri_options::run,
            Self::Seedlist => seedlist::run,
            Self::Unified => run_unified_both,
        }
    }

    /// Guesses the format of a test file from its keys.
    pub fn sniff(doc: &serde_json::Value) -> Option<Self> {
        let has = |k: &str| doc.get(k).is_some();
        if has("schemaVersion") && has("tests") {
            Some(Self::Unified)
        } else if has("phases") && has("uri") {
            Some(Self::Sdam)
        } else if has("tests") {
            Some(Self::ConnectionString)
        } else if has("uri") && (has("seeds") || has("hosts") || has("numSeeds")) {
            Some(Self::Seedlist)
        } else if has("mocked_topology_state") {
            Some(Self::InWindow)
        } else if has("new_rtt_ms") {
            Some(Self::Rtt)
        } else if has("topology_description") && has("heartbeatFrequencyMS") {
            Some(Self::MaxStaleness)
        } else if has("topology_description") {
            Some(Self::ServerSelection)
        } else {
            None
        }
    }
}

/// One folder of the corpus and how its files run.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// The folder, relative to the corpus root.
    pub dir: &'static str,
    /// How its files run.
    pub format: Format,
    /// Why the whole folder is not run, if it is not.
    pub ignored: Option<&'static str>,
}

/// Runs a unified file through both adapters.
fn run_unified_both(doc: &serde_json::Value) -> Result<(), String> {
    for kind in unified::adapter::AdapterKind::ALL {
        unified::run(doc, kind).map_err(|e| format!("[{}] {e}", kind.name()))?;
    }
    Ok(())
}

/// Unified files that would fail only because of behaviour not built yet (file name, what
/// is missing); listed as ignored with that reason. Empty: every runnable file runs.
pub const UNIFIED_PENDING: &[(&str, &str)] = &[];

/// How a unified file runs here: `Ok(())` it runs, `Err((reason, pending))` it is listed
/// as skipped (`pending` false: it needs what the scripted servers or this runner lack) or
/// pending on another branch (`pending` true).
pub fn unified_status(path: &Path, doc: &serde_json::Value) -> Result<(), (String, bool)> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let dir = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    if let Some((_, why)) = UNIFIED_PENDING.iter().find(|(f, _)| *f == format!("{dir}/{name}")) {
        return Err((format!("pending: {why}"), true));
    }
    match unified::classify(doc) {
        Some(reason) => Err((format!("skipped: {reason}"), false)),
        None => Ok(()),
    }
}

/// Every suite, in the order they run.
pub fn suites() -> Vec<Suite> {
    let sdam = |dir| Suite { dir, format: Format::Sdam, ignored: None };
    vec![
        sdam("server-discovery-and-monitoring/tests/single"),
        sdam("server-discovery-and-monitoring/tests/rs"),
        sdam("server-discovery-and-monitoring/tests/sharded"),
        sdam("server-discovery-and-monitoring/tests/load-balanced"),
        sdam("server-discovery-and-monitoring/tests/errors"),
        sdam("server-discovery-and-monitoring/tests/monitoring"),
        Suite {
            dir: "server-discovery-and-monitoring/tests/unified",
            format: Format::Unified,
            ignored: None,
        },
        Suite {
            dir: "server-selection/tests/server_selection",
            format: Format::ServerSelection,
            ignored: None,
        },
        Suite { dir: "server-selection/tests/rtt", format: Format::Rtt, ignored: None },
        Suite { dir: "server-selection/tests/in_window", format: Format::InWindow, ignored: None },
        Suite { dir: "server-selection/tests/logging", format: Format::Unified, ignored: None },
        Suite { dir: "max-staleness/tests", format: Format::MaxStaleness, ignored: None },
        Suite { dir: "connection-string/tests", format: Format::ConnectionString, ignored: None },
        Suite { dir: "uri-options/tests", format: Format::UriOptions, ignored: None },
        Suite { dir: "initial-dns-seedlist-discovery/tests", format: Format::Seedlist, ignored: None },
    ]
}

/// Where the corpus is: `SDAM_SPEC_CORPUS`, else `../shared/specifications` beside the
/// workspace root. `Err` explains how to get it.
pub fn corpus_root() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SDAM_SPEC_CORPUS") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(format!("SDAM_SPEC_CORPUS={} is not a directory", dir.display()))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = workspace.join("../shared/specifications");
    if shared.is_dir() {
        return Ok(shared.canonicalize().unwrap_or(shared));
    }
    Err(format!(
        "the spec test corpus was not found: set SDAM_SPEC_CORPUS to the `source` folder of a clone of \
         mongodb/specifications at commit {PINNED_COMMIT} (spec-tests/clone-corpus.sh does it), or place it \
         at {}",
        shared.display()
    ))
}

/// The `.json` files in `dir` and its subfolders, sorted.
pub fn json_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and runs one file; the format is `format`, else sniffed from the content.
pub fn run_file(path: &Path, format: Option<Format>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    let format = format.or_else(|| Format::sniff(&doc)).ok_or_else(|| {
        "unrecognised test format (expected an SDAM or server selection spec test)".to_owned()
    })?;
    format.runner()(&doc)
}

/// Converts a JSON value (extended JSON) to a BSON document.
pub fn to_document(value: &serde_json::Value) -> Result<bson::Document, String> {
    match bson::Bson::try_from(value.clone()) {
        Ok(bson::Bson::Document(d)) => Ok(d),
        Ok(other) => Err(format!("expected a document, found {other}")),
        Err(e) => Err(format!("invalid extended JSON: {e}")),
    }
}
