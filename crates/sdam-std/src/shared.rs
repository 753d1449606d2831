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
use sdam::{Command, ConnectionId, Input, Output, RequestId, Topology};
use sdam_adapter::PublishedSnapshot;

use sdam_adapter::subscribers::Subscribers;

/// One thing the driver does, in the core's output order.
#[derive(Debug)]
pub(crate) enum Work {
    /// An output to carry out.
    Output(Output),
    /// A waiting selection's outcome for its waiter (taken from the waiters under the lock
    /// that registered it; `None` when nobody waits any more). Handed over in order, after
    /// the selection log events before it were published, so a caller that sees its
    /// outcome has its "succeeded"/"failed" message already (server-selection.md, "Logging").
    Deliver(Option<SyncSender<Outcome>>, Outcome),
}

/// The next read of a streaming exchange on the caller's own connection: the core's
/// `Command::ReadReply` for it, carried out by the connection's thread at once.
pub(crate) type OwnRead = (RequestId, Option<Instant>);

/// The topology and the flags around it.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) topology: Topology,
    /// The core's outputs drained (under this lock, in order) and not yet carried out by the
    /// driver.
    pub(crate) pending: Vec<Work>,
    /// Selections the topology is waiting on, and who waits for each.
    pub(crate) waiters: HashMap<SelectionId, SyncSender<Outcome>>,
    /// While the driver waits on its condition variable: until when (`Some(None)`: until
    /// woken). `None` while it runs: it looks at `pending` and `poll_timeout` again before it
    /// waits, so nothing needs to wake it.
    pub(crate) driver_sleep: Option<Option<Instant>>,
}

impl Core {
    /// Drains the core's outputs into `pending`, in order, each waiting selection's waiter
    /// taken here, under the lock that registered it. `own`: the caller's connection, whose
    /// next streaming read (`ReadReply`) is returned for its thread to start at once instead
    /// of being handed back to it by the driver. `unheard`: no subscriber and no `tracing`,
    /// so the events and selection log events (which publishing would drop) are dropped here.
    pub(crate) fn take_outputs(&mut self, own: Option<ConnectionId>, unheard: bool) -> Option<OwnRead> {
        let mut read = None;
        while let Some(output) = self.topology.poll_output() {
            match output {
                Output::Selection { id, result } => {
                    let waiter = self.waiters.remove(&id);
                    self.pending.push(Work::Deliver(waiter, result));
                }
                // server-monitoring.md, "Streaming protocol": the next streamed reply is read on
                // the same connection; its thread reads it now (the core set its deadline).
                Output::Command(Command::ReadReply { request, connection, deadline })
                    if own == Some(connection) && read.is_none() =>
                {
                    read = Some((request, deadline));
                }
                // server-discovery-and-monitoring-logging-and-monitoring.md ("Events API",
                // "Log Messages") and server-selection.md ("Logging"): events nobody can
                // receive (no subscriber, no tracing) are not published at all.
                Output::Event(_) | Output::SelectionLog { .. } if unheard => {}
                other => self.pending.push(Work::Output(other)),
            }
        }
        read
    }

    /// Whether the driver, waiting, must be woken: outputs to carry out, the topology closed,
    /// or a deadline (`poll_timeout`) earlier than the one it sleeps until.
    fn driver_needed(&self) -> bool {
        let Some(until) = self.driver_sleep else { return false };
        if !self.pending.is_empty() || self.topology.is_closed() {
            return true;
        }
        match (self.topology.poll_timeout(), until) {
            (Some(next), Some(until)) => next < until,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
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
            core: Mutex::new(Core {
                topology,
                pending: Vec::new(),
                waiters: HashMap::new(),
                driver_sleep: None,
            }),
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

    /// Feeds one input at the current time and wakes the driver if it has something to do.
    pub(crate) fn handle(&self, input: Input<'_>) {
        let _ = self.handle_on(input, None);
    }

    /// [`handle`](Self::handle) for the thread of connection `own`: returns that connection's
    /// next streaming read, which the thread carries out itself.
    pub(crate) fn handle_on(&self, input: Input<'_>, own: Option<ConnectionId>) -> Option<OwnRead> {
        let mut core = self.lock();
        core.topology.handle(input, Instant::now());
        self.snapshot.refresh(&core.topology);
        self.settle(core, own)
    }

    /// After the topology was fed under `core`: drains its outputs and wakes the driver only
    /// if it has something to do (outputs, the close, an earlier deadline); an input that
    /// changes none of these (an RTT reply, a streamed reply nobody listens to) wakes nobody.
    pub(crate) fn settle(
        &self,
        mut core: MutexGuard<'_, Core>,
        own: Option<ConnectionId>,
    ) -> Option<OwnRead> {
        let read = core.take_outputs(own, self.unheard());
        let wake = core.driver_needed();
        drop(core);
        if wake {
            self.driver_wake.notify_one();
        }
        read
    }

    /// Whether no event can be received: no subscriber and no `tracing` (which emits each
    /// event's log message). Publishing would drop every event then.
    pub(crate) fn unheard(&self) -> bool {
        !cfg!(feature = "tracing") && !self.subscribers.has_subscribers()
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
