//! The driver task: the one place that drains the core's outputs, carries out its commands,
//! feeds back what the connection and DNS tasks report, and sleeps until the core's next
//! deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam::selection::{SelectedServer, SelectionError, SelectionId};
use sdam::{Command, ConnectionId, FailureKind, Input, Output, RequestId, ServerAddress, Topology};
use sdam_adapter::subscribers::Subscribers;
use sdam_adapter::PublishedSnapshot;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::{AbortHandle, JoinError, JoinSet};

use crate::connection::{self, Deadline, Op, Reply, Settings};
#[cfg(feature = "dns")]
use crate::dns::Resolver;
use crate::ClientEvent;

/// The current time for the core, from tokio's clock (so tests with a paused clock work).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// How a waiting selection ends: the core's outcome.
pub(crate) type Outcome = Result<SelectedServer, Box<SelectionError>>;

/// What the client handles and the driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    topology: Mutex<Topology>,
    /// Wakes the driver after someone else fed the topology an input.
    pub(crate) wake_driver: Notify,
    /// The selection snapshot, published by the driver after every change: immediate
    /// selections read it without the topology's lock.
    pub(crate) snapshot: PublishedSnapshot,
    /// Selections the topology is waiting on, and who waits for each. Locked only while the
    /// topology is (topology first).
    pub(crate) waiters: Mutex<HashMap<SelectionId, oneshot::Sender<Outcome>>>,
    /// Whether anyone subscribed: selection log events are built only then.
    pub(crate) subscribed: AtomicBool,
    /// Bumped when the driver ends: concurrent `close` calls see it.
    pub(crate) selections: watch::Sender<u64>,
    /// Where events go; closed (so subscriptions end) once the topology closed.
    pub(crate) events: Subscribers,
    pub(crate) stats: Arc<Stats>,
    /// The specs' log messages of the events published.
    log: sdam_adapter::LogPublisher,
}

impl Shared {
    pub(crate) fn new(topology: Topology, event_buffer_bytes: usize) -> Self {
        let events = Subscribers::new(event_buffer_bytes);
        let log = sdam_adapter::LogPublisher::new(topology.id());
        Self {
            snapshot: PublishedSnapshot::new(topology.selection_snapshot()),
            waiters: Mutex::new(HashMap::new()),
            subscribed: AtomicBool::new(false),
            topology: Mutex::new(topology),
            wake_driver: Notify::new(),
            selections: watch::Sender::new(0),
            events,
            stats: Arc::new(Stats::default()),
            log,
        }
    }

    /// The topology, locked. Never held across an await.
    pub(crate) fn topology(&self) -> MutexGuard<'_, Topology> {
        // The core never panics on input; if a caller's thread panicked while holding the
        // lock, the topology itself is still consistent.
        self.topology.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Feeds `input` from outside the driver, then wakes the driver to carry out the outputs.
    pub(crate) fn handle(&self, input: Input<'_>) {
        let mut topology = self.topology();
        topology.handle(input, now());
        self.snapshot.refresh(&topology);
        drop(topology);
        self.wake_driver.notify_one();
    }

    /// Hands a waiting selection's outcome to its waiter (an operation nobody waits for any
    /// more is ended at once).
    fn deliver(&self, id: SelectionId, outcome: Outcome) {
        let waiter = self.waiters.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        let unsent = match waiter {
            Some(waiter) => waiter.send(outcome).err(),
            None => Some(outcome),
        };
        if let Some(Ok(mut selected)) = unsent {
            selected.finish_operation();
        }
    }

    pub(crate) fn publish(&self, event: ClientEvent) {
        self.events.publish(event);
    }

    /// Publishes an SDAM event, then its log message (SDAM logging, "Log Messages").
    pub(crate) fn publish_event(&self, event: sdam::Event) {
        match self.log.topology(&event) {
            Some(log) => self.events.publish_all([ClientEvent::Sdam(event), ClientEvent::Log(log)]),
            None => self.events.publish(ClientEvent::Sdam(event)),
        }
    }

    /// Publishes a selection log event, then its log message (server-selection.md, "Logging").
    pub(crate) fn publish_selection(&self, event: sdam::selection::SelectionLogEvent) {
        let log = self.log.selection(&event);
        self.events.publish_all([ClientEvent::Selection(event), ClientEvent::Log(log)]);
    }
}

/// Counters for tests and the idle-overhead measurement.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) wakeups: AtomicU64,
    pub(crate) live_tasks: Arc<AtomicUsize>,
    pub(crate) open_connections: Arc<AtomicUsize>,
    pub(crate) hellos_sent: AtomicU64,
}

impl Stats {
    pub(crate) fn task(&self) -> Counted {
        Counted::new(&self.live_tasks)
    }

    pub(crate) fn open_connection(&self) -> Counted {
        Counted::new(&self.open_connections)
    }
}

/// Counts one live thing (a task, a socket) until dropped.
#[derive(Debug)]
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection or DNS task reports to the driver.
#[derive(Debug)]
pub(crate) enum Report {
    Monitor { connection: ConnectionId, request: RequestId, result: Result<Reply, (FailureKind, String)> },
    Srv { request: RequestId, result: Result<Vec<SrvRecord>, String> },
    Txt { request: RequestId, result: Result<Vec<TxtRecord>, String> },
}

/// What a task is for, so that a task that panicked is still answered.
#[derive(Debug, Clone, Copy)]
enum TaskPurpose {
    Connection(ConnectionId),
    #[cfg_attr(not(feature = "dns"), allow(dead_code))]
    Srv(RequestId),
    #[cfg_attr(not(feature = "dns"), allow(dead_code))]
    Txt(RequestId),
}

#[derive(Debug)]
struct OpenConnection {
    ops: mpsc::UnboundedSender<Op>,
    abort: AbortHandle,
    /// The exchange in flight on it.
    pending: Option<RequestId>,
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    #[cfg(feature = "dns")]
    resolver: Arc<Resolver>,
    connections: HashMap<ConnectionId, OpenConnection>,
    purposes: HashMap<tokio::task::Id, TaskPurpose>,
    tasks: JoinSet<()>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        settings: Settings,
        #[cfg(feature = "dns")] dns: sdam_adapter::DnsOptions,
    ) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        Self {
            shared,
            settings: Arc::new(settings),
            #[cfg(feature = "dns")]
            resolver: Arc::new(Resolver::new(dns)),
            connections: HashMap::new(),
            purposes: HashMap::new(),
            tasks: JoinSet::new(),
            reports_tx,
            reports,
        }
    }

    /// The loop: drain outputs, carry them out, sleep until an input or the core's deadline.
    pub(crate) async fn run(mut self) {
        let alive = self.shared.stats.task();
        loop {
            let (outputs, deadline, closed) = {
                let mut topology = self.shared.topology();
                let outputs: Vec<Output> = std::iter::from_fn(|| topology.poll_output()).collect();
                // Every change is published where it happens; this catches any other.
                self.shared.snapshot.refresh(&topology);
                (outputs, topology.poll_timeout(), topology.is_closed())
            };
            for output in outputs {
                self.execute(output);
            }
            if closed {
                break;
            }
            let sleep =
                tokio::time::sleep_until(deadline.map_or_else(far_future, tokio::time::Instant::from_std));
            tokio::select! {
                biased;
                Some(report) = self.reports.recv() => self.apply(report),
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => self.reap(joined),
                () = self.shared.wake_driver.notified() => {}
                () = sleep, if deadline.is_some() => {
                    let mut topology = self.shared.topology();
                    topology.handle_timeout(now());
                    self.shared.snapshot.refresh(&topology);
                }
            }
            self.shared.stats.wakeups.fetch_add(1, Ordering::Relaxed);
        }
        // Closed: every connection and lookup ends here, and with them every socket.
        self.connections.clear();
        self.tasks.shutdown().await;
        self.purposes.clear();
        // The resolver's own background tasks (its name server connections) are aborted
        // when it is dropped: drop it now rather than whenever the driver's memory goes.
        #[cfg(feature = "dns")]
        {
            self.resolver = Arc::new(Resolver::default());
        }
        self.shared.events.close();
        drop(alive);
        // Last: waiting selections and concurrent `close` calls see the end.
        self.shared.selections.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Event(event) => self.shared.publish_event(event),
            Output::Command(command) => self.command(command),
            Output::Selection { id, result } => self.shared.deliver(id, result),
            // The selection log event and its message (server-selection.md, "Logging"), as the
            // lock-free path publishes them.
            Output::SelectionLog { event, .. } => self.shared.publish_selection(event),
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::SendHello { request, connection, address, open, command, exhaust_allowed, deadline } => {
                self.shared.stats.hellos_sent.fetch_add(1, Ordering::Relaxed);
                // One deadline for connect + TLS + hello when opening, else for the reply.
                let op =
                    Op::Send { request, command, exhaust_allowed, deadline: Deadline::new(deadline, now()) };
                if open {
                    self.open(connection, address, op);
                } else {
                    self.send(connection, op);
                }
            }
            Command::ReadReply { request, connection, deadline } => {
                self.send(connection, Op::Read { request, deadline: Deadline::new(deadline, now()) });
            }
            Command::CloseConnection { connection } => {
                if let Some(c) = self.connections.remove(&connection) {
                    c.abort.abort(); // the socket is dropped with the task
                }
            }
            Command::ClearPool { address, service_id, generation, interrupt_in_use_connections } => {
                self.shared.publish(ClientEvent::PoolCleared {
                    address,
                    service_id,
                    generation,
                    interrupt_in_use_connections,
                });
            }
            Command::MarkPoolReady { address, generation } => {
                self.shared.publish(ClientEvent::PoolReady { address, generation });
            }
            #[cfg(not(feature = "dns"))]
            Command::ResolveSrv { request, .. } => {
                self.apply(Report::Srv { request, result: Err(sdam_adapter::no_dns("sdam-tokio")) });
            }
            #[cfg(not(feature = "dns"))]
            Command::ResolveTxt { request, .. } => {
                self.apply(Report::Txt { request, result: Err(sdam_adapter::no_dns("sdam-tokio")) });
            }
            #[cfg(feature = "dns")]
            Command::ResolveSrv { request, name, deadline } => {
                let timeout = time_left(Some(deadline)).unwrap_or(MIN_TIME_LEFT);
                let (resolver, reports) = (Arc::clone(&self.resolver), self.reports_tx.clone());
                let alive = self.shared.stats.task();
                let task = self.tasks.spawn(async move {
                    let _alive = alive;
                    let result = resolver.srv(&name, timeout).await;
                    let _ = reports.send(Report::Srv { request, result });
                });
                self.purposes.insert(task.id(), TaskPurpose::Srv(request));
            }
            #[cfg(feature = "dns")]
            Command::ResolveTxt { request, name, deadline } => {
                let timeout = time_left(Some(deadline)).unwrap_or(MIN_TIME_LEFT);
                let (resolver, reports) = (Arc::clone(&self.resolver), self.reports_tx.clone());
                let alive = self.shared.stats.task();
                let task = self.tasks.spawn(async move {
                    let _alive = alive;
                    let result = resolver.txt(&name, timeout).await;
                    let _ = reports.send(Report::Txt { request, result });
                });
                self.purposes.insert(task.id(), TaskPurpose::Txt(request));
            }
            // The adapter runs the core's monitors (MonitorOwner::Core): these are only sent
            // to a driver that owns its monitors.
            Command::RequestCheck { .. } | Command::CancelCheck { .. } => {}
        }
    }

    /// Starts a connection task for `connection`; `op` is its handshake.
    fn open(&mut self, connection: ConnectionId, address: ServerAddress, op: Op) {
        let (ops, rx) = mpsc::unbounded_channel();
        let pending = Some(op.request());
        let (settings, stats, reports) =
            (Arc::clone(&self.settings), Arc::clone(&self.shared.stats), self.reports_tx.clone());
        let alive = stats.task();
        let abort = self.tasks.spawn(async move {
            let _alive = alive;
            connection::run(settings, stats, connection, address, op, rx, reports).await;
        });
        self.purposes.insert(abort.id(), TaskPurpose::Connection(connection));
        self.connections.insert(connection, OpenConnection { ops, abort, pending });
    }

    /// Hands `op` to the task of an open connection.
    fn send(&mut self, connection: ConnectionId, op: Op) {
        let request = op.request();
        let sent = match self.connections.get_mut(&connection) {
            Some(c) => {
                c.pending = Some(request);
                c.ops.send(op).is_ok()
            }
            None => false,
        };
        if !sent {
            // The connection's task already ended (it reported why); this exchange cannot run.
            self.connections.remove(&connection);
            let error = format!("monitoring connection {connection} is closed");
            self.shared.handle(Input::MonitorFailed { request, kind: FailureKind::Network, error });
        }
    }

    fn apply(&mut self, report: Report) {
        let mut topology = self.shared.topology();
        let now = now();
        match report {
            Report::Monitor { connection, request, result } => {
                if let Some(c) = self.connections.get_mut(&connection) {
                    c.pending = None;
                }
                match result {
                    Ok(Reply { reply, round_trip_time, more_to_come }) => topology
                        .handle(Input::MonitorReply { request, reply, round_trip_time, more_to_come }, now),
                    Err((kind, error)) => topology.handle(Input::MonitorFailed { request, kind, error }, now),
                }
            }
            Report::Srv { request, result } => {
                topology.handle(
                    Input::SrvResolved { request, result: result.as_deref().map_err(Clone::clone) },
                    now,
                );
            }
            Report::Txt { request, result } => {
                topology.handle(
                    Input::TxtResolved { request, result: result.as_deref().map_err(Clone::clone) },
                    now,
                );
            }
        }
        self.shared.snapshot.refresh(&topology);
    }

    /// A task ended. One that panicked never reported: answer its exchange or lookup for it.
    fn reap(&mut self, joined: Result<(tokio::task::Id, ()), JoinError>) {
        let (id, error) = match joined {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), e.is_panic().then(|| "the monitoring task panicked".to_owned())),
        };
        let Some(purpose) = self.purposes.remove(&id) else { return };
        let Some(error) = error else { return };
        let report = match purpose {
            TaskPurpose::Connection(connection) => {
                let Some(request) = self.connections.remove(&connection).and_then(|c| c.pending) else {
                    return;
                };
                Report::Monitor { connection, request, result: Err((FailureKind::Network, error)) }
            }
            TaskPurpose::Srv(request) => Report::Srv { request, result: Err(error) },
            TaskPurpose::Txt(request) => Report::Txt { request, result: Err(error) },
        };
        self.apply(report);
    }
}

/// The least time a DNS lookup is given: a deadline already due still gets a (failing)
/// attempt; the core fails the exchange at its deadline anyway.
#[cfg(feature = "dns")]
const MIN_TIME_LEFT: Duration = Duration::from_millis(1);

/// The time left until a command's deadline (`None`: no limit), on tokio's clock, at least
/// [`MIN_TIME_LEFT`].
#[cfg(feature = "dns")]
fn time_left(deadline: Option<std::time::Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now()).max(MIN_TIME_LEFT))
}

/// A deadline that never comes (the sleep arm is disabled when there is no deadline).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}
