//! What the client handles, the driver thread and the I/O threads share: the topology and the
//! waiting selections' waiters behind one mutex, the driver's condition variable, the
//! published selection snapshot, the subscribers and a count of live threads.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use sdam::selection::{SelectedServer, SelectionError, SelectionId};
use sdam::{Input, Topology};
use sdam_adapter::PublishedSnapshot;

use sdam_adapter::subscribers::Subscribers;

/// The topology and the flags around it.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) topology: Topology,
    /// Something fed the topology since the driver last drained its outputs.
    pub(crate) dirty: bool,
    /// Selections the topology is waiting on, and who waits for each.
    pub(crate) waiters: HashMap<SelectionId, SyncSender<Outcome>>,
}

/// How a waiting selection ends: the core's outcome.
pub(crate) type Outcome = Result<SelectedServer, Box<SelectionError>>;

#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Wakes the driver: new outputs to drain, or a new deadline.
    pub(crate) driver_wake: Condvar,
    /// The selection snapshot, published by the driver after every change: immediate
    /// selections read it without the lock.
    pub(crate) snapshot: PublishedSnapshot,
    /// Whether anyone subscribed: selection log events are built only then.
    pub(crate) subscribed: AtomicBool,
    pub(crate) subscribers: Subscribers,
    live_threads: AtomicUsize,
    /// The specs' log messages of the events published.
    log: sdam_adapter::LogPublisher,
}

impl Shared {
    pub(crate) fn new(topology: Topology, event_buffer_bytes: usize) -> Self {
        let log = sdam_adapter::LogPublisher::new(topology.id());
        Self {
            snapshot: PublishedSnapshot::new(topology.selection_snapshot()),
            subscribed: AtomicBool::new(false),
            core: Mutex::new(Core { topology, dirty: true, waiters: HashMap::new() }),
            driver_wake: Condvar::new(),
            subscribers: Subscribers::new(event_buffer_bytes),
            live_threads: AtomicUsize::new(0),
            log,
        }
    }

    /// Publishes an SDAM event, then its log message (SDAM logging, "Log Messages").
    pub(crate) fn publish_event(&self, event: sdam::Event) {
        match self.log.topology(&event) {
            Some(log) => self
                .subscribers
                .publish_all([sdam_adapter::ClientEvent::Sdam(event), sdam_adapter::ClientEvent::Log(log)]),
            None => self.subscribers.publish(sdam_adapter::ClientEvent::Sdam(event)),
        }
    }

    /// Publishes a selection log event, then its log message (server-selection.md, "Logging").
    pub(crate) fn publish_selection(&self, event: sdam::selection::SelectionLogEvent) {
        let log = self.log.selection(&event);
        self.subscribers
            .publish_all([sdam_adapter::ClientEvent::Selection(event), sdam_adapter::ClientEvent::Log(log)]);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // The core never panics on input; a panicking thread elsewhere must not wedge the rest.
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Feeds one input at the current time and wakes the driver to carry out what follows.
    pub(crate) fn handle(&self, input: Input<'_>) {
        let mut core = self.lock();
        core.topology.handle(input, Instant::now());
        self.snapshot.refresh(&core.topology);
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
