//! The server selection loop, sans-IO (server-selection.md, "Multi-threaded or asynchronous
//! server selection").
//!
//! A [`Selection`] holds one operation's criteria and deadline. The caller polls it with the
//! current topology whenever the topology changes or its wake-up time arrives; it answers
//! with a server, a time to wait until, or an explained failure. It never reads a clock and
//! never blocks.

use std::collections::VecDeque;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::address::ServerAddress;
use crate::read_preference::ReadPreferenceError;
use crate::rng::Rng;
use crate::server_description::ServerDescription;
use crate::topology_description::{SrvError, TopologyDescription};

use super::criteria::SelectionCriteria;
use super::explanation::{explain_shared, Explanation};
use super::in_window::{choose_in_window, OperationCounts};
use super::log_events::{describe_topology, SelectionLogEvent, SelectionLogKind};
use super::operation_counts::OperationCounter;
use super::pipeline::{in_latency_window, ImmediateFailure};

/// serverSelectionTimeoutMS's default (server-selection.md, "serverSelectionTimeoutMS").
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-operation settings of a selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SelectionOptions {
    /// How long selection may wait for a suitable server. `None` (the default): the topology's
    /// serverSelectionTimeoutMS ([`TopologyConfig::server_selection_timeout`](crate::TopologyConfig::server_selection_timeout))
    /// for [`Topology::start_selection`](crate::Topology::start_selection), and
    /// [`DEFAULT_SERVER_SELECTION_TIMEOUT`] for a [`Selection`] polled by hand (it has no
    /// topology to ask). Set it for the value client-side operation timeouts compute.
    pub timeout: Option<Duration>,
    /// The operation (command) name, for log messages.
    pub operation_name: String,
    /// The driver-generated operation id, for log messages.
    pub operation_id: Option<i64>,
}

impl SelectionOptions {
    /// Options for the operation `name`, with the topology's serverSelectionTimeoutMS.
    pub fn new(operation_name: impl Into<String>) -> Self {
        Self { operation_name: operation_name.into(), ..Self::default() }
    }

    /// Overrides the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the operation id.
    pub fn with_operation_id(mut self, id: i64) -> Self {
        self.operation_id = Some(id);
        self
    }
}

/// Names one selection started with [`Topology::start_selection`](crate::Topology::start_selection);
/// its outcome ([`Output::Selection`](crate::Output::Selection)) carries it. Opaque; never
/// reused within a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SelectionId(u64);

impl SelectionId {
    pub(crate) fn new(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for SelectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "selection {}", self.0)
    }
}

/// The server a selection chose.
///
/// Chosen by a [`Topology`](crate::Topology) (a waiting selection's outcome, or
/// [`SelectionSnapshot::select_now`](super::SelectionSnapshot::select_now)), it carries the
/// operation the choice counted on that server: call [`finish_operation`](Self::finish_operation)
/// when the operation ends (an adapter's guard does it when dropped). A clone does not carry
/// the operation (only the original can finish it), so an operation is counted and finished
/// exactly once. Chosen by a [`Selection`] polled by hand, it carries none: the caller counts.
#[derive(Debug)]
pub struct SelectedServer {
    description: Arc<ServerDescription>,
    operation: Option<OperationCounter>,
}

impl SelectedServer {
    pub(crate) fn new(description: Arc<ServerDescription>, operation: Option<OperationCounter>) -> Self {
        Self { description, operation }
    }

    /// Its address.
    pub fn address(&self) -> &ServerAddress {
        &self.description.address
    }

    /// Its description in the topology the choice was made on.
    pub fn description(&self) -> &Arc<ServerDescription> {
        &self.description
    }

    /// Whether this value carries an operation still in flight.
    pub fn counts_an_operation(&self) -> bool {
        self.operation.is_some()
    }

    /// Ends the operation the choice counted (the in-window choice of later selections sees
    /// one operation fewer on this server). Lock-free; a second call does nothing.
    pub fn finish_operation(&mut self) {
        if let Some(counter) = self.operation.take() {
            counter.finished();
        }
    }
}

impl Clone for SelectedServer {
    /// The same server, without the operation (see the type's documentation).
    fn clone(&self) -> Self {
        Self { description: Arc::clone(&self.description), operation: None }
    }
}

impl PartialEq for SelectedServer {
    /// The same server description (the operation is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.description == other.description
    }
}

impl Eq for SelectedServer {}

/// What the caller should do next.
///
/// Exhaustive on purpose: a caller matches every case.
#[must_use = "a poll result says whether to use a server, wait, or fail the operation"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionPoll {
    /// Use this server; count one more operation on it until the operation ends.
    Selected(SelectedServer),
    /// Nothing suitable yet. Poll again when the topology changes, or at `until` (the
    /// deadline) at the latest; never sooner is needed.
    Wait {
        /// When to poll again if the topology does not change first.
        until: Instant,
        /// Whether to ask the monitors for an immediate check (server-selection.md, step 9);
        /// the monitor layer throttles these by minHeartbeatFrequencyMS.
        request_immediate_check: bool,
    },
    /// Selection failed; the error explains why for each server.
    Failed(Box<SelectionError>),
}

/// Why a selection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectionErrorKind {
    /// No suitable server appeared before the timeout.
    TimedOut {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The topology is incompatible with this client's wire versions (selection fails at
    /// once: server-selection.md, "Server Selection Algorithm", step 2).
    IncompatibleTopology(String),
    /// The read preference is invalid for this topology (a caller mistake found only once
    /// the topology type is known, e.g. `maxStalenessSeconds` below 90 against a replica set).
    InvalidReadPreference(ReadPreferenceError),
    /// `mongodb+srv` seed list discovery failed for good
    /// ([`SrvError::Permanent`], the error the seedlist spec says
    /// MUST be raised): no server will ever appear, so selection fails at once.
    SeedListDiscoveryFailed(String),
    /// The topology was closed while the selection waited.
    TopologyClosed,
}

impl fmt::Display for SelectionErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut { timeout } => {
                write!(f, "server selection timed out after {} ms", timeout.as_millis())
            }
            Self::IncompatibleTopology(e) => write!(f, "incompatible topology: {e}"),
            Self::InvalidReadPreference(e) => write!(f, "invalid read preference: {e}"),
            Self::SeedListDiscoveryFailed(e) => f.write_str(e),
            Self::TopologyClosed => f.write_str("the topology was closed"),
        }
    }
}

/// A failed selection: what went wrong, and for each server of the topology snapshot the
/// selection last saw, why it was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelectionError {
    /// What went wrong.
    pub kind: SelectionErrorKind,
    /// The topology snapshot and the per-server reasons.
    pub explanation: Explanation,
}

impl SelectionError {
    /// The topology the selection last saw.
    pub fn topology(&self) -> &Arc<TopologyDescription> {
        &self.explanation.topology
    }

    /// The message for a "Server selection failed" log entry: the error and each server's
    /// reason, without the topology description the entry already carries.
    pub fn failure_message(&self) -> String {
        let mut s = format!("{}: {}", self.kind, self.explanation.summary());
        for server in &self.explanation.servers {
            let _ = write!(s, "; {}: {}", server.address, server.verdict);
            if let Some(e) = &server.last_error {
                let _ = write!(s, " (last check error: {e})");
            }
        }
        s
    }
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n{}", self.kind, self.explanation.summary(), self.explanation)
    }
}

impl std::error::Error for SelectionError {}

/// One operation's server selection, driven by the caller.
///
/// `now` is the driver's clock reading; the core never reads the time itself.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sdam::rng::Rng;
/// use sdam::selection::{NoOperations, Selection, SelectionCriteria, SelectionOptions, SelectionPoll};
/// use sdam::{ServerAddress, ServerDescription, ServerType, TopologyDescription, TopologyType};
///
/// fn select_once(now: Instant) {
/// let mut topology = TopologyDescription::new(TopologyType::Sharded);
/// let mut mongos = ServerDescription::unknown(ServerAddress::parse("a:27017").unwrap());
/// mongos.server_type = ServerType::Mongos;
/// mongos.max_wire_version = 21;
/// mongos.round_trip_time = Some(Duration::from_millis(3));
/// topology.insert_server(mongos);
///
/// let mut rng = Rng::new(42);
/// let mut selection = Selection::new(SelectionCriteria::write(), SelectionOptions::new("insert"), now);
/// match selection.poll(&topology, &NoOperations, &mut rng, now) {
///     SelectionPoll::Selected(server) => assert_eq!(server.address().to_string(), "a:27017"),
///     other => panic!("unexpected {other:?}"),
/// }
/// while let Some(event) = selection.poll_event() {
///     println!("{event}"); // "Server selection started ...", "Server selection succeeded ..."
/// }
/// }
/// # select_once(Instant::now()); // the reading of the driver's clock
/// ```
#[derive(Debug, Clone)]
pub struct Selection {
    criteria: SelectionCriteria,
    timeout: Duration,
    options: SelectionOptions,
    selector: String,
    deadline: Instant,
    started_logged: bool,
    waiting_logged: bool,
    finished: Option<SelectionPoll>,
    events: VecDeque<SelectionLogEvent>,
}

impl Selection {
    /// Starts selecting for `criteria` at `now`; the deadline is `now + options.timeout`
    /// ([`DEFAULT_SERVER_SELECTION_TIMEOUT`] when the options leave it to the topology: a
    /// selection polled by hand has none to ask; [`Topology::start_selection`](crate::Topology::start_selection)
    /// uses the topology's serverSelectionTimeoutMS).
    ///
    /// The "started" log event is produced by the first [`Selection::poll`], which knows
    /// the topology.
    pub fn new(criteria: SelectionCriteria, options: SelectionOptions, now: Instant) -> Self {
        let timeout = options.timeout.unwrap_or(DEFAULT_SERVER_SELECTION_TIMEOUT);
        Self::with_timeout(criteria, options, timeout, now)
    }

    /// [`new`](Self::new) with the timeout resolved by the caller (the topology).
    pub(crate) fn with_timeout(
        criteria: SelectionCriteria,
        options: SelectionOptions,
        timeout: Duration,
        now: Instant,
    ) -> Self {
        let deadline = add_saturating(now, timeout);
        Self {
            timeout,
            selector: criteria.to_string(),
            criteria,
            options,
            deadline,
            started_logged: false,
            waiting_logged: false,
            finished: None,
            events: VecDeque::new(),
        }
    }

    /// One step of server-selection.md, "Server Selection Algorithm", against the current
    /// topology.
    ///
    /// Returns `Selected` (the caller increments that server's operation count), `Wait`
    /// (poll again on the next topology change, or at `until`), or `Failed`. Once it has
    /// returned `Selected` or `Failed`, later polls return the same result again.
    pub fn poll<C: OperationCounts + ?Sized>(
        &mut self,
        topology: &TopologyDescription,
        counts: &C,
        rng: &mut Rng,
        now: Instant,
    ) -> SelectionPoll {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        // Step 1: log "Server selection started".
        if !self.started_logged {
            self.started_logged = true;
            self.log(SelectionLogKind::Started, topology);
        }
        // initial-dns-seedlist-discovery.md: a permanent discovery error "MUST be raised";
        // waiting for serverSelectionTimeoutMS would only delay it.
        if let Some(SrvError::Permanent(e)) = &topology.srv_error {
            return self.fail(SelectionErrorKind::SeedListDiscoveryFailed(e.clone()), topology);
        }
        let window = match in_latency_window(topology, &self.criteria) {
            Ok(window) => window,
            // Step 2 (and the maxStalenessSeconds check): fail at once.
            Err(failure) => {
                let kind = match failure {
                    ImmediateFailure::IncompatibleTopology(e) => SelectionErrorKind::IncompatibleTopology(e),
                    ImmediateFailure::InvalidReadPreference(e) => {
                        SelectionErrorKind::InvalidReadPreference(e)
                    }
                };
                return self.fail(kind, topology);
            }
        };
        // Steps 6 to 8: choose in the window and succeed.
        if let Some(chosen) = choose_in_window(&window, counts, rng) {
            let selected = SelectedServer::new(Arc::clone(chosen), None);
            self.log(
                SelectionLogKind::Succeeded {
                    server_host: selected.address().host().to_owned(),
                    server_port: selected.address().port(),
                },
                topology,
            );
            return self.finish(SelectionPoll::Selected(selected));
        }
        // Step 10: out of time.
        if now >= self.deadline {
            return self.fail(SelectionErrorKind::TimedOut { timeout: self.timeout }, topology);
        }
        // Step 5: log "waiting" once per operation; step 9: request a check and wait.
        if !self.waiting_logged {
            self.waiting_logged = true;
            let remaining = self.deadline.saturating_duration_since(now);
            let remaining_time_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
            self.log(SelectionLogKind::Waiting { remaining_time_ms }, topology);
        }
        SelectionPoll::Wait { until: self.deadline, request_immediate_check: true }
    }

    /// The next log event, oldest first.
    pub fn poll_event(&mut self) -> Option<SelectionLogEvent> {
        self.events.pop_front()
    }

    /// When this selection times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The criteria.
    pub fn criteria(&self) -> &SelectionCriteria {
        &self.criteria
    }

    /// Whether a poll has returned `Selected` or `Failed`.
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Explains this selection's decision on `topology` ("why this server"): pass the
    /// selected address, or `None` while waiting to see why nothing is suitable.
    pub fn explain(&self, topology: &TopologyDescription, chosen: Option<&ServerAddress>) -> Explanation {
        super::explanation::explain(topology, &self.criteria, chosen)
    }

    /// Ends the selection with `kind` (also for the topology: [`SelectionErrorKind::TopologyClosed`]).
    pub(crate) fn fail(&mut self, kind: SelectionErrorKind, topology: &TopologyDescription) -> SelectionPoll {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        if !self.started_logged {
            self.started_logged = true;
            self.log(SelectionLogKind::Started, topology);
        }
        let explanation = explain_shared(Arc::new(topology.clone()), &self.criteria, None);
        let error = SelectionError { kind, explanation };
        self.log(SelectionLogKind::Failed { failure: error.failure_message() }, topology);
        self.finish(SelectionPoll::Failed(Box::new(error)))
    }

    fn finish(&mut self, poll: SelectionPoll) -> SelectionPoll {
        self.finished = Some(poll.clone());
        poll
    }

    fn log(&mut self, kind: SelectionLogKind, topology: &TopologyDescription) {
        self.events.push_back(log_event(kind, self.selector.clone(), &self.options, topology));
    }
}

/// One log event with the selection's common fields.
pub(crate) fn log_event(
    kind: SelectionLogKind,
    selector: String,
    options: &SelectionOptions,
    topology: &TopologyDescription,
) -> SelectionLogEvent {
    SelectionLogEvent {
        kind,
        selector,
        operation: options.operation_name.clone(),
        operation_id: options.operation_id,
        topology_description: describe_topology(topology),
    }
}

/// `now + d`, or the latest representable instant not after it.
fn add_saturating(now: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        if d.is_zero() {
            return now;
        }
        d /= 2;
    }
}
