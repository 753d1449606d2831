//! `sdam`: shows a MongoDB deployment the way a driver sees it.
//!
//! - `sdam watch URI`: the live topology, one row per server, and the SDAM event log.
//! - `sdam select URI`: one server selection, with why each server was or was not eligible.
//! - `sdam replay FILE`: an SDAM spec-format scenario replayed through the core.
//! - `sdam demo`: `watch` against an in-process scripted replica set, no server needed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod connect;
mod demo;
mod drops;
mod render;
mod replay;
mod select;
mod watch;

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
    /// Connect to a deployment and show it live the way a driver sees it: one row per server
    /// (type, set, RTT, tags, staleness, wire versions, last error) and the SDAM event log.
    Watch(watch::Args),
    /// Run one server selection and print the chosen server and, for every server, why it
    /// was or was not eligible; exits 1 with the explained error on timeout.
    Select(select::Args),
    /// Replay a scenario in the SDAM spec-test format and print each phase's topology and
    /// events, and where the file carries expected outcomes, the differences.
    Replay(replay::Args),
    /// Watch an in-process scripted replica set while a storyline runs on it (failover,
    /// rejoin, tag change, reconfig): no server needed.
    Demo(demo::Args),
}

/// Prints `error: {message}` and returns the exit code for bad input (2).
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = render::Style::for_stdout();
    let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    match &cli.command {
        Command::Replay(args) => replay::run(args, style),
        Command::Watch(args) => match runtime() {
            Ok(rt) => rt.block_on(watch::run(args, style)),
            Err(e) => fail(&format!("cannot start the runtime: {e}")),
        },
        Command::Select(args) => match runtime() {
            Ok(rt) => rt.block_on(select::run(args, style)),
            Err(e) => fail(&format!("cannot start the runtime: {e}")),
        },
        Command::Demo(args) => match runtime() {
            Ok(rt) => rt.block_on(demo::run(args, style)),
            Err(e) => fail(&format!("cannot start the runtime: {e}")),
        },
    }
}
