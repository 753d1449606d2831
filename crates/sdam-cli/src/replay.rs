//! `sdam replay FILE`: a scenario in the SDAM spec-test format (a `uri`, then phases of hello
//! responses and application errors) replayed through the core, phase by phase.

use std::path::PathBuf;
use std::process::ExitCode;

use sdam_spec_tests::sdam_json::Replay;

use crate::render::{event_line, topology_table, Style};

/// Arguments of `sdam replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A JSON file in the SDAM spec-test format: `uri` and `phases` of `responses` and
    /// `applicationErrors`, optionally with expected `outcome`s.
    file: PathBuf,
    /// Print only the differences from the expected outcomes (and a summary).
    #[arg(long, short)]
    quiet: bool,
}

/// Replays the file and prints each phase; exits 1 if an outcome differs, 2 on bad input.
pub(crate) fn run(args: &Args, style: Style) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => return crate::fail(&format!("cannot read {}: {e}", args.file.display())),
    };
    let test: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return crate::fail(&format!("{} is not JSON: {e}", args.file.display())),
    };
    let mut replay = match Replay::new(&test) {
        Ok(r) => r,
        Err(e) => {
            return crate::fail(&format!("{} is not an SDAM scenario: {e}", args.file.display()));
        }
    };
    let (mut checked, mut differences) = (0usize, 0usize);
    while let Some(report) = replay.next_phase() {
        let label = report.label();
        if !args.quiet {
            println!("{}", style.bold(&format!("== {label}")));
            for event in report.events.iter().filter(|e| !crate::render::is_heartbeat(e)) {
                println!("  {}", event_line(event));
            }
            print!("{}", topology_table(&report.topology, style));
        }
        if let Some(e) = &report.input_error {
            println!("{}", style.red(&format!("{label}: cannot replay this phase: {e}")));
            return ExitCode::from(2);
        }
        match &report.check {
            None => {}
            Some(Ok(())) => {
                checked += 1;
                if !args.quiet {
                    println!("{}", style.green("outcome: as expected"));
                }
            }
            Some(Err(difference)) => {
                checked += 1;
                differences += 1;
                println!("{}", style.red(&format!("{label}: outcome differs: {difference}")));
            }
        }
        if !args.quiet {
            println!();
        }
    }
    let phases = replay.phase_count();
    if differences == 0 {
        println!("{phases} phases replayed, {checked} outcomes checked, all as expected");
        ExitCode::SUCCESS
    } else {
        println!("{phases} phases replayed, {checked} outcomes checked, {differences} differ");
        ExitCode::FAILURE
    }
}
