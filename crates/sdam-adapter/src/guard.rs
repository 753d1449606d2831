//! The guard of a selected server, ending its operation when dropped.

use std::sync::Arc;

use sdam::selection::SelectedServer;
use sdam::{ServerAddress, ServerDescription};

/// A selected server. Dropping it ends the operation the selection counted on it (the
/// in-window choice of later selections reads the topology's operation counts); lock-free.
#[derive(Debug)]
pub struct ServerGuard {
    selected: SelectedServer,
}

impl ServerGuard {
    /// For adapters: the guard of a server the topology chose (through
    /// [`SelectionSnapshot::select_now`](sdam::selection::SelectionSnapshot::select_now) or a
    /// waiting selection's outcome). Its operation ends when the guard is dropped.
    pub fn new(selected: SelectedServer) -> Self {
        Self { selected }
    }

    /// The server's address.
    pub fn address(&self) -> &ServerAddress {
        self.selected.address()
    }

    /// The server's description when it was selected.
    pub fn description(&self) -> &Arc<ServerDescription> {
        self.selected.description()
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.selected.finish_operation();
    }
}
