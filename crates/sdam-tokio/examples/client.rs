//! The shortest program on `sdam-tokio`: connect, subscribe, select a server for a write and
//! one for a secondaryPreferred read, close.
//!
//! ```sh
//! cargo run -p sdam-tokio --example client -- 'mongodb://localhost:27017/?replicaSet=rs0'
//! ```
//!
//! Exits 1 when a selection fails (the error explains every server), 2 on a bad URI.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line example

use std::process::ExitCode;

use sdam::selection::SelectionCriteria;
use sdam::{ReadPreference, ReadPreferenceMode};
use sdam_tokio::{Client, SelectError};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(uri) = std::env::args().nth(1) else {
        eprintln!("usage: client URI");
        return ExitCode::from(2);
    };
    let client = match Client::from_uri(&uri) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = run(&client).await;
    client.close().await; // every task and socket gone
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("selection failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Selects a server for a write and one for a read, printing them and the events seen.
pub(crate) async fn run(client: &Client) -> Result<(), SelectError> {
    let mut events = client.subscribe();
    let server = client.select_server(SelectionCriteria::write()).await?; // waits up to serverSelectionTimeoutMS
    println!("write -> {}", server.address());
    drop(server); // the operation is over: the guard stops counting it
    let read = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::SecondaryPreferred));
    let server = client.select_server(read).await?;
    println!("read (secondaryPreferred) -> {}", server.address());
    let mut seen = 0;
    while events.try_recv().is_some() {
        seen += 1;
    }
    let topology = client.description();
    println!("{seen} events; {}:", topology.topology_type);
    for sd in topology.servers.iter() {
        println!("  {} {}", sd.address, sd.server_type);
    }
    Ok(())
}
