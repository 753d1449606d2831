//! What the client handles, the driver thread and the I/O threads share: the topology behind
//! one mutex, two condition variables, the subscribers and a count of live threads.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use sdam::{Input, Topology};

use sdam_adapter::subscribers::Subscribers;

/// The topology and the flags around it.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) topology: Topology,
    /// Something fed the topology since the driver last drained its outputs.
    pub(crate) dirty: bool,
    /// Bumped on every `Command::WakeSelections`.
    pub(crate) wake_generation: u64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Wakes the driver: new outputs to drain, or a new deadline.
    pub(crate) driver_wake: Condvar,
    /// Wakes waiting selections: the description changed or the client closed.
    pub(crate) selection_wake: Condvar,
    pub(crate) subscribers: Subscribers,
    live_threads: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(topology: Topology, event_buffer_bytes: usize) -> Self {
        Self {
            core: Mutex::new(Core { topology, dirty: true, wake_generation: 0 }),
            driver_wake: Condvar::new(),
            selection_wake: Condvar::new(),
            subscribers: Subscribers::new(event_buffer_bytes),
            live_threads: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // The core never panics on input; a panicking thread elsewhere must not wedge the rest.
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Feeds one input at the current time and wakes the driver to carry out what follows.
    pub(crate) fn handle(&self, input: Input<'_>) {
        let mut core = self.lock();
        core.topology.handle(input, Instant::now());
        core.dirty = true;
        drop(core);
        self.driver_wake.notify_one();
    }

    /// Threads of this client still running.
    #[cfg(test)]
    pub(crate) fn live_threads(&self) -> usize {
        self.live_threads.load(Ordering::SeqCst)
    }

    /// Spawns a named thread counted in [`live_threads`](Self::live_threads).
    pub(crate) fn spawn<F>(self: &std::sync::Arc<Self>, name: String, f: F) -> io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        struct Live(std::sync::Arc<Shared>);
        impl Drop for Live {
            fn drop(&mut self) {
                self.0.live_threads.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.live_threads.fetch_add(1, Ordering::SeqCst);
        let live = Live(std::sync::Arc::clone(self));
        thread::Builder::new().name(name).spawn(move || {
            let _live = live;
            f();
        })
    }
}

impl sdam_adapter::InputSink for Shared {
    fn handle_input(&self, input: Input<'_>) {
        self.handle(input);
    }
}
