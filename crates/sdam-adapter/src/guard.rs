//! The guard of a selected server, ending its operation when dropped.

use std::fmt;
use std::sync::Arc;

use sdam::{Input, ServerAddress, ServerDescription};

/// Where an adapter feeds inputs to its topology (its driver's shared state). A
/// [`ServerGuard`] sends `Input::OperationFinished` there when dropped.
pub trait InputSink: fmt::Debug + Send + Sync {
    /// Hands `input` to the topology (and wakes whoever must act on the outcome).
    fn handle_input(&self, input: Input<'_>);
}

/// A selected server. Dropping it tells the topology the operation on it ended (the in-window
/// choice counts operations in progress).
#[derive(Debug)]
pub struct ServerGuard {
    sink: Arc<dyn InputSink>,
    address: ServerAddress,
    description: Arc<ServerDescription>,
}

impl ServerGuard {
    /// For adapters: the guard of the server a selection chose; `sink` is told when the
    /// operation ends.
    pub fn new(
        sink: Arc<dyn InputSink>,
        address: ServerAddress,
        description: Arc<ServerDescription>,
    ) -> Self {
        Self { sink, address, description }
    }

    /// The server's address.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// The server's description when it was selected.
    pub fn description(&self) -> &Arc<ServerDescription> {
        &self.description
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.sink.handle_input(Input::OperationFinished(self.address.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl InputSink for Recorder {
        fn handle_input(&self, input: Input<'_>) {
            self.0.lock().unwrap().push(format!("{input:?}"));
        }
    }

    #[test]
    fn dropping_the_guard_ends_the_operation_once() {
        let recorder = Arc::new(Recorder::default());
        let address = ServerAddress::tcp("db1.example.com", 27017).unwrap();
        let description = Arc::new(ServerDescription::unknown(address.clone()));
        let guard = ServerGuard::new(recorder.clone(), address.clone(), description);
        assert_eq!(guard.address(), &address);
        assert!(recorder.0.lock().unwrap().is_empty());
        drop(guard);
        let seen = recorder.0.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].starts_with("OperationFinished") && seen[0].contains("db1.example.com"), "{seen:?}");
    }
}
