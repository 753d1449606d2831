//! Every official spec test file as its own named test, so a failure names the file.
#![allow(clippy::print_stderr)] // a test harness reports on stderr

use libtest_mimic::{Arguments, Trial};
use sdam_spec_tests::{corpus_root, json_files, run_file, suites, Format};

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
            let trial = Trial::test(name, move || {
                run_file(&path, Some(format))?;
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
    libtest_mimic::run(&args, trials).exit();
}
