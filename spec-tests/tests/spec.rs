//! Every official spec test file as its own named test, so a failure names the file.
#![allow(clippy::print_stderr)] // a test harness reports on stderr

use libtest_mimic::{Arguments, Failed, Trial};
use sdam_spec_tests::unified::adapter::AdapterKind;
use sdam_spec_tests::{corpus_root, json_files, run_file, suites, unified_status, Format};

#[path = "spec/reply_cache.rs"]
mod reply_cache;

fn main() {
    let args = Arguments::from_args();
    let root = match corpus_root() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut trials = Vec::new();
    for suite in suites() {
        let dir = root.join(suite.dir);
        let files = match json_files(&dir) {
            Ok(files) if !files.is_empty() => files,
            Ok(_) | Err(_) => {
                eprintln!("error: no spec test files in {} (is the corpus complete?)", dir.display());
                std::process::exit(2);
            }
        };
        for path in files {
            let name = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
            let format = suite.format;
            if format == Format::Unified {
                trials.extend(unified_trials(&name, &path));
                continue;
            }
            let trial = Trial::test(name, move || {
                run_file(&path, Some(format)).map_err(Failed::from)?;
                if format == Format::Sdam {
                    reply_cache::check_file(&path)?;
                }
                Ok(())
            });
            trials.push(match suite.ignored {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason),
                None => trial,
            });
        }
    }
    // The runner's own unified files, which prove it can fail.
    let own = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/unified");
    for path in json_files(&own).unwrap_or_default() {
        let name = format!("runner/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        trials.extend(unified_trials(&name, &path));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// One trial per adapter: `<file> [tokio]`, `<file> [std]`. A file the scripted servers
/// cannot run is ignored with the reason ("skipped: ..." or "pending: ...") as its kind.
/// A file whose name starts with `must-fail-` (the runner's own, wrong on purpose) passes
/// only if the runner reports a failure containing its `_expectedFailure` text.
fn unified_trials(name: &str, path: &std::path::Path) -> Vec<Trial> {
    let doc = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    let must_fail = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("must-fail-"));
    AdapterKind::ALL
        .into_iter()
        .map(|kind| {
            let trial_name = format!("{name} [{}]", kind.name());
            let Some(doc) = doc.clone() else {
                let path = path.to_path_buf();
                return Trial::test(trial_name, move || {
                    Err(format!("cannot read {} as JSON", path.display()).into())
                });
            };
            let status = unified_status(path, &doc);
            let expected_failure = doc.get("_expectedFailure").and_then(|v| v.as_str()).map(str::to_owned);
            let trial = Trial::test(trial_name, move || {
                match (sdam_spec_tests::unified::run(&doc, kind), must_fail) {
                    (Ok(()), false) => Ok(()),
                    (Err(e), false) => Err(Failed::from(e)),
                    (Err(e), true) => match &expected_failure {
                        Some(want) if e.contains(want.as_str()) => Ok(()),
                        _ => Err(format!("failed, but not with {expected_failure:?}: {e}").into()),
                    },
                    (Ok(()), true) => {
                        Err("this file's expectations are wrong on purpose, yet it passed".into())
                    }
                }
            });
            match status {
                Ok(()) => trial,
                Err((reason, _)) => trial.with_ignored_flag(true).with_kind(reason),
            }
        })
        .collect()
}
