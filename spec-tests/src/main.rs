//! `sdam-spec-tests PATH...`: runs spec test files (or folders of them) in the SDAM and
//! server selection formats against the sdam core, and prints one line per failing file.
//! With no path, runs the whole pinned corpus.

use std::path::PathBuf;
use std::process::ExitCode;

use sdam_spec_tests::{corpus_root, json_files, run_file, suites, unified_status, Format};

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: sdam-spec-tests [PATH...]\n\nRuns spec test files or folders (SDAM and server selection JSON formats).\nWith no PATH, runs the official corpus (SDAM_SPEC_CORPUS or ../shared/specifications).");
        return ExitCode::SUCCESS;
    }
    // (path, format, ignored reason)
    let mut files: Vec<(PathBuf, Option<Format>, Option<&'static str>)> = Vec::new();
    if args.is_empty() {
        let root = match corpus_root() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for suite in suites() {
            for f in json_files(&root.join(suite.dir)).unwrap_or_default() {
                files.push((f, Some(suite.format), suite.ignored));
            }
        }
    } else {
        for arg in &args {
            let path = PathBuf::from(arg);
            if path.is_dir() {
                match json_files(&path) {
                    Ok(found) => files.extend(found.into_iter().map(|f| (f, None, None))),
                    Err(e) => {
                        eprintln!("error: cannot read {arg}: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else if path.is_file() {
                files.push((path, None, None));
            } else {
                eprintln!("error: {arg}: no such file or directory");
                return ExitCode::from(2);
            }
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (path, format, ignored) in files {
        if ignored.is_some() {
            skipped += 1;
            continue;
        }
        // A unified file the scripted servers cannot run (or pending on another branch)
        // is skipped with its reason.
        let unified = format == Some(Format::Unified)
            || (format.is_none() && path.extension().is_some_and(|e| e == "json") && {
                let doc = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
                doc.as_ref().and_then(Format::sniff) == Some(Format::Unified)
            });
        if unified {
            let doc: Option<serde_json::Value> =
                std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
            if let Some(Err((reason, _))) = doc.as_ref().map(|d| unified_status(&path, d)) {
                println!("SKIP {}: {reason}", path.display());
                skipped += 1;
                continue;
            }
        }
        match run_file(&path, format) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", path.display());
            }
        }
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
