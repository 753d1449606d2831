//! `sdam`: shows a MongoDB deployment the way a driver sees it.
//!
//! - `sdam watch URI`: the live topology, one row per server, and the SDAM event log.
//! - `sdam select URI`: one server selection, with why each server was or was not eligible.
//! - `sdam replay FILE`: an SDAM spec-format scenario replayed through the core.
//! - `sdam demo`: `watch` against an in-process scripted replica set, no server needed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod render;
mod replay;

/// Shows a MongoDB deployment the way a driver sees it (Server Discovery and Monitoring,
/// Server Selection).
#[derive(Debug, Parser)]
#[command(name = "sdam", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a scenario in the SDAM spec-test format and print each phase's topology and
    /// events, and where the file carries expected outcomes, the differences.
    Replay(replay::Args),
}

/// Prints `error: {message}` and returns the exit code for bad input (2).
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = render::Style::for_stdout();
    match &cli.command {
        Command::Replay(args) => replay::run(args, style),
    }
}
