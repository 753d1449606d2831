//! Runs a [`Plan`] against a [`Topology`] the way an I/O layer would: it keeps the exchanges
//! the core asked for, answers or fails them as the plan says, moves time forward, and checks
//! every invariant of [`super::invariants`] after every step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::raw::RawDocument;

use super::invariants::{self, EventChecker, Violation};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
use super::plan::{host, srv_records, AppErrorPlan, Plan, SelectPlan, Step, ERROR_CODES};
use crate::address::ServerAddress;
use crate::app_error::{ApplicationError, ApplicationErrorKind, ErrorPhase, SYSTEM_OVERLOADED_LABEL};
use crate::events::{Command, Event, Output};
use crate::monitor::{ConnectionId, FailureKind, RequestId};
use crate::rng::Rng;
use crate::selection::{in_latency_window, SelectionId, SelectionOptions};
use crate::topology::{ConfigError, Input, Topology, TopologyConfig};
use crate::topology_description::TopologyDescription;

/// How many abandoned exchanges are kept to answer late.
const ABANDONED: usize = 4;

/// An exchange the core asked for and the I/O layer is carrying out.
#[derive(Debug, Clone)]
struct Exchange {
    request: RequestId,
    connection: ConnectionId,
    address: ServerAddress,
}

/// A topology, driven and checked.
#[derive(Debug)]
pub struct Harness {
    topology: Topology,
    t0: Instant,
    now: Instant,
    in_flight: Vec<Exchange>,
    /// The server of every open connection.
    connections: BTreeMap<ConnectionId, ServerAddress>,
    /// Exchanges whose connection was closed: a late reply must be ignored.
    abandoned: VecDeque<Exchange>,
    events: EventChecker,
    previous: Arc<TopologyDescription>,
    selection_rng: Rng,
    /// Selections started whose outcome has not come out yet.
    selections: BTreeSet<SelectionId>,
    trace: Option<String>,
    wakeups: usize,
    /// SRV and TXT lookups the core asked for and that are not answered yet.
    srv_lookups: VecDeque<RequestId>,
    txt_lookups: VecDeque<RequestId>,
    /// Servers whose pool was marked ready and not cleared since (CMAP "ready").
    ready_pools: BTreeMap<ServerAddress, u32>,
}

impl Harness {
    /// Creates the topology at `t0` and checks its first outputs; `Err` only for a
    /// configuration the spec forbids.
    pub fn new(config: TopologyConfig, t0: Instant) -> Result<Result<Self, Violation>, ConfigError> {
        Self::create(config, t0, false)
    }

    fn create(
        config: TopologyConfig,
        t0: Instant,
        trace: bool,
    ) -> Result<Result<Self, Violation>, ConfigError> {
        let seed = config.rng_seed;
        let topology = Topology::new(config, t0)?;
        let previous = topology.description();
        let mut harness = Self {
            topology,
            t0,
            now: t0,
            in_flight: Vec::new(),
            connections: BTreeMap::new(),
            abandoned: VecDeque::new(),
            events: EventChecker::new(),
            previous,
            selection_rng: Rng::new(seed.unwrap_or(0) ^ 0x005e_1ec7),
            selections: BTreeSet::new(),
            trace: trace.then(String::new),
            wakeups: 0,
            srv_lookups: VecDeque::new(),
            txt_lookups: VecDeque::new(),
            ready_pools: BTreeMap::new(),
        };
        Ok(harness.settle().map(|()| harness))
    }

    /// Runs `plan` from `t0`, checking after every step; a forbidden configuration runs
    /// nothing. Returns the harness for further inspection.
    pub fn run(plan: &Plan, t0: Instant) -> Result<Option<Self>, Violation> {
        Self::run_traced(plan, t0, false)
    }

    /// [`run`](Self::run), recording every output, description and deadline in
    /// [`trace`](Self::trace) when `trace` is set.
    pub fn run_traced(plan: &Plan, t0: Instant, trace: bool) -> Result<Option<Self>, Violation> {
        let Ok(created) = Self::create(plan.config.to_config(), t0, trace) else { return Ok(None) };
        let mut harness = created.map_err(|e| format!("after Topology::new: {e}"))?;
        for (i, step) in plan.steps.iter().enumerate() {
            harness.step(step).map_err(|e| format!("step {i} ({step:?}): {e}"))?;
        }
        Ok(Some(harness))
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// How many times the topology was woken with `handle_timeout`.
    pub fn wakeups(&self) -> usize {
        self.wakeups
    }

    /// The exchanges in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Everything recorded so far (empty unless tracing).
    pub fn trace(&self) -> &str {
        self.trace.as_deref().unwrap_or("")
    }

    /// Applies one step, then checks every invariant.
    pub fn step(&mut self, step: &Step) -> Result<(), Violation> {
        match step {
            Step::MonitorReply { exchange, reply, rtt_ms, more_to_come } => {
                if let Some(x) = self.take_exchange(*exchange) {
                    let doc = reply.to_document(&x.address);
                    let input = Input::MonitorReply {
                        request: x.request,
                        reply: doc,
                        round_trip_time: Duration::from_millis(u64::from(*rtt_ms)),
                        more_to_come: *more_to_come,
                    };
                    self.topology.handle(input, self.now);
                }
            }
            Step::MonitorFailed { exchange, timeout } => {
                if let Some(x) = self.take_exchange(*exchange) {
                    let kind = if *timeout { FailureKind::Timeout } else { FailureKind::Network };
                    self.fail(x.request, kind);
                }
            }
            Step::HelloReply { server, reply, rtt_ms } => {
                let address = host(*server);
                let doc = reply.to_document(&address);
                let rtt = Duration::from_millis(u64::from(*rtt_ms));
                self.topology.handle(
                    Input::HelloReply { address, reply: doc, round_trip_time: rtt, awaited: false },
                    self.now,
                );
            }
            Step::RawReply { server, reply } => {
                let address = host(*server);
                let input = match RawDocument::from_bytes(reply) {
                    Ok(doc) => Input::HelloReply {
                        address,
                        reply: doc.to_owned(),
                        round_trip_time: Duration::from_millis(1),
                        awaited: false,
                    },
                    Err(e) => Input::CheckFailed {
                        address,
                        kind: FailureKind::Network,
                        error: format!("invalid BSON: {e}"),
                    },
                };
                self.topology.handle(input, self.now);
            }
            Step::CheckFailed { server } => {
                let input = Input::CheckFailed {
                    address: host(*server),
                    kind: FailureKind::Network,
                    error: "generated check failure".into(),
                };
                self.topology.handle(input, self.now);
            }
            Step::AppError(plan) => {
                let error = self.application_error(plan);
                self.topology.handle(Input::ApplicationError(error), self.now);
            }
            Step::Srv { hosts, resolved } => {
                // Answer the oldest lookup the core asked for (TXT: no record), or, with none
                // pending, send an answer to a lookup it never asked for (to be ignored).
                if let Some(request) = self.txt_lookups.pop_front() {
                    self.topology.handle(Input::TxtResolved { request, result: Ok(&[]) }, self.now);
                    self.settle()?;
                }
                let records = srv_records(*hosts);
                let request = self.srv_lookups.pop_front().unwrap_or(RequestId::new(u64::MAX));
                let result =
                    if *resolved { Ok(records.as_slice()) } else { Err("generated DNS failure".to_owned()) };
                self.topology.handle(Input::SrvResolved { request, result }, self.now);
            }
            Step::Advance { ms } => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.wake();
            }
            Step::WakeAtDeadline => {
                if let Some(deadline) = self.topology.poll_timeout() {
                    self.now = self.now.max(deadline);
                    self.wake();
                }
            }
            Step::ImmediateCheck => self.topology.handle(Input::RequestImmediateCheck, self.now),
            Step::OperationStarted { server } => {
                self.topology.handle(Input::OperationStarted(host(*server)), self.now);
            }
            Step::OperationFinished { server } => {
                self.topology.handle(Input::OperationFinished(host(*server)), self.now);
            }
            Step::Select(plan) => self.select(plan)?,
            Step::Close => self.topology.handle(Input::Close, self.now),
        }
        self.settle()
    }

    /// Wakes the topology at its deadline, if it has one; `false` when it has none.
    pub fn wake_at_deadline(&mut self) -> Result<bool, Violation> {
        let Some(deadline) = self.topology.poll_timeout() else { return Ok(false) };
        self.now = self.now.max(deadline);
        self.wake();
        self.settle()?;
        Ok(true)
    }

    /// Fails every exchange in flight with a network error.
    pub fn fail_all(&mut self) -> Result<(), Violation> {
        while let Some(x) = self.in_flight.pop() {
            self.fail(x.request, FailureKind::Network);
            self.settle()?;
        }
        Ok(())
    }

    fn wake(&mut self) {
        self.wakeups += 1;
        self.topology.handle_timeout(self.now);
    }

    fn fail(&mut self, request: RequestId, kind: FailureKind) {
        let input = Input::MonitorFailed { request, kind, error: "generated failure".into() };
        self.topology.handle(input, self.now);
    }

    /// The exchange of index `i` among those in flight, then the abandoned ones.
    fn take_exchange(&mut self, i: u8) -> Option<Exchange> {
        let total = self.in_flight.len() + self.abandoned.len();
        if total == 0 {
            return None;
        }
        let i = usize::from(i) % total;
        if i < self.in_flight.len() {
            Some(self.in_flight.remove(i))
        } else {
            self.abandoned.get(i - self.in_flight.len()).cloned()
        }
    }

    fn application_error(&self, plan: &AppErrorPlan) -> ApplicationError {
        let address = host(plan.server);
        let kind = match plan.kind % 3 {
            0 => ApplicationErrorKind::Network,
            1 => ApplicationErrorKind::Timeout,
            _ => {
                let code = ERROR_CODES[usize::from(plan.code) % ERROR_CODES.len()];
                ApplicationErrorKind::Command {
                    code,
                    // Without a code, the message decides ("not master" / "node is recovering").
                    message: if plan.code.is_multiple_of(2) {
                        "not master".into()
                    } else {
                        "node is recovering".into()
                    },
                    topology_version: plan.topology_version.map(|tv| tv.to_topology_version()),
                }
            }
        };
        let current = self.topology.pool_generation(&address).unwrap_or(0);
        let generation = current.saturating_sub(u32::from(plan.generation.saturating_sub(1)));
        let mut error = ApplicationError::new(address.clone(), generation, kind);
        error.service_id = plan.service.map(|s| ObjectId::from_bytes([s % 2; 12]));
        error.max_wire_version = 21;
        if plan.before_handshake {
            error.phase = ErrorPhase::Authentication;
        }
        if plan.overloaded {
            error.labels.push(SYSTEM_OVERLOADED_LABEL.to_owned());
        }
        error
    }

    /// Checks one selection twice: the pure functions against the rules, then
    /// [`Topology::start_selection`] against the latency window (and, at `settle`, one
    /// outcome per selection, its operation counted).
    fn select(&mut self, plan: &SelectPlan) -> Result<(), Violation> {
        let criteria = plan.to_criteria();
        let td = self.topology.description();
        let topology = &self.topology;
        let counts = |a: &ServerAddress| topology.operation_count(a);
        invariants::check_selection(&td, &criteria, &counts, &mut self.selection_rng)?;
        let window: Result<Vec<ServerAddress>, _> =
            in_latency_window(&td, &criteria).map(|w| w.iter().map(|sd| sd.address.clone()).collect());
        let closed = self.topology.is_closed();
        let waiting = self.topology.waiting_selections();
        let id = self.topology.start_selection(criteria, SelectionOptions::new("harness"), self.now);
        self.selections.insert(id);
        let waits = self.topology.waiting_selections() > waiting;
        // A selection waits exactly when nothing is in the window and it cannot fail at once.
        let expected = matches!(&window, Ok(w) if w.is_empty()) && !closed;
        ensure!(
            waits == expected,
            "start_selection waits: {waits}, for window {window:?} (closed: {closed})"
        );
        if let (Some(Output::Selection { result: Ok(s), .. }), Ok(w)) = (self.peek_outcome(id), &window) {
            ensure!(w.contains(s.address()), "{} chosen outside the window {w:?}", s.address());
        }
        Ok(())
    }

    /// Cancels every waiting selection (a quiet topology is one no selection waits on: waiting
    /// selections ask for immediate checks whenever the description changes).
    pub fn cancel_selections(&mut self) {
        let ids: Vec<SelectionId> = std::mem::take(&mut self.selections).into_iter().collect();
        for id in ids {
            if !self.topology.cancel_selection(id) {
                // Its outcome is queued: keep expecting it.
                self.selections.insert(id);
            }
        }
    }

    /// The outcome of `id` if it is queued.
    fn peek_outcome(&self, id: SelectionId) -> Option<&Output> {
        self.topology.queued_outputs().find(|o| matches!(o, Output::Selection { id: i, .. } if *i == id))
    }

    /// Drains the outputs as an I/O layer would, then checks every invariant.
    fn settle(&mut self) -> Result<(), Violation> {
        while let Some(output) = self.topology.poll_output() {
            if let Some(trace) = &mut self.trace {
                let _ = writeln!(trace, "{output:?}");
            }
            match &output {
                Output::Event(event) => self.events.observe(event)?,
                Output::Command(Command::SendHello { request, connection, address, .. }) => {
                    self.connections.insert(*connection, address.clone());
                    self.in_flight.push(Exchange {
                        request: *request,
                        connection: *connection,
                        address: address.clone(),
                    });
                }
                Output::Command(Command::ReadReply { request, connection, .. }) => {
                    if let Some(address) = self.connections.get(connection).cloned() {
                        self.in_flight.push(Exchange { request: *request, connection: *connection, address });
                    }
                }
                // A pool is marked ready only while paused, with the current generation, and
                // only for a server the topology describes (CMAP, "Marking a Connection Pool
                // as Ready").
                Output::Command(Command::MarkPoolReady { address, generation }) => {
                    if let Some(before) = self.ready_pools.insert(address.clone(), *generation) {
                        return Err(format!(
                            "{address}: pool marked ready twice (generations {before}, {generation})"
                        ));
                    }
                    if !self.topology.description().servers.contains(address) {
                        return Err(format!("{address}: pool marked ready for a server not described"));
                    }
                }
                Output::Command(Command::ClearPool { address, service_id: None, generation, .. }) => {
                    self.ready_pools.remove(address);
                    if self.topology.pool_generation(address).is_some_and(|g| g < *generation) {
                        return Err(format!(
                            "{address}: pool cleared to generation {generation} ahead of the topology"
                        ));
                    }
                }
                Output::Command(Command::ResolveSrv { request, .. }) => self.srv_lookups.push_back(*request),
                Output::Command(Command::ResolveTxt { request, .. }) => self.txt_lookups.push_back(*request),
                Output::Command(Command::CloseConnection { connection }) => {
                    let (gone, kept): (Vec<_>, Vec<_>) =
                        self.in_flight.drain(..).partition(|x| x.connection == *connection);
                    self.in_flight = kept;
                    self.connections.remove(connection);
                    for x in gone {
                        if self.abandoned.len() == ABANDONED {
                            self.abandoned.pop_front();
                        }
                        self.abandoned.push_back(x);
                    }
                }
                // The harness plays the core's monitors' I/O layer: the driver-owned monitor
                // commands are not part of its plans.
                Output::Command(
                    Command::ClearPool { .. } | Command::RequestCheck { .. } | Command::CancelCheck { .. },
                )
                | Output::SelectionLog { .. } => {}
                Output::Selection { id, .. } => {
                    ensure!(self.selections.remove(id), "{id}: an outcome it was not waiting for (twice?)");
                }
            }
            if let Output::Event(Event::ServerClosed { address, .. }) = &output {
                // A server added again later starts with a new, paused pool.
                self.ready_pools.remove(address);
            }
            if let Output::Selection { result: Ok(mut selected), .. } = output {
                ensure!(selected.counts_an_operation(), "a selected server without its operation");
                selected.finish_operation();
            } else if let Output::Event(Event::TopologyClosed { .. }) = output {
                self.in_flight.clear();
            }
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), Violation> {
        ensure!(
            self.selections.len() == self.topology.waiting_selections(),
            "{} selections without an outcome, {} waiting",
            self.selections.len(),
            self.topology.waiting_selections()
        );
        let td = self.topology.description();
        let config = self.topology.config();
        invariants::check_description(&td, config)?;
        invariants::check_max_election(&self.previous, &td)?;
        invariants::check_monitors(&self.topology)?;
        invariants::check_poll_timeout(&self.topology, self.now)?;
        self.events.check_settled(&self.topology)?;
        if let Some(trace) = &mut self.trace {
            let deadline = self.topology.poll_timeout().map(|d| d.saturating_duration_since(self.t0));
            let _ = writeln!(trace, "deadline {deadline:?}\n{td:?}");
        }
        self.previous = td;
        Ok(())
    }
}
