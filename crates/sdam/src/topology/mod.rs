//! The `Topology` state machine: inputs in, outputs drained, time passed in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::sync::Arc;
use std::time::Instant;

use bson::oid::ObjectId;
use smallvec::SmallVec;

use crate::address::ServerAddress;
use crate::events::{Command, Event, Output, TopologyId};
use crate::hello::ReplyCache;
use crate::monitor::{Monitor, RequestId};
use crate::rng::Rng;
use crate::selection::{OperationCounter, Selection, SelectionId};
use crate::server_description::{ServerDescription, ServerType};
use crate::server_map::Slot;
use crate::topology_description::{ServerMap, TopologyDescription, TopologyType};
use crate::update_rules::{Changes, RuleSettings};

mod seedlist;

pub use seedlist::{DEFAULT_DNS_TIMEOUT, SRV_RETRY_BACKOFF};

mod app_errors;
mod config;
mod input;
mod monitoring;
mod selection;
#[cfg(test)]
mod selection_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_error_phases;
#[cfg(test)]
mod tests_handshake;
#[cfg(test)]
mod tests_pool_ready;
#[cfg(test)]
mod tests_server_limit;

pub use config::{ConfigError, TopologyConfig, MAX_SEEDS, MIN_HEARTBEAT_FREQUENCY};
pub use input::Input;

/// The output queue's least capacity once inputs arrive.
const OUTPUT_QUEUE_CAPACITY: usize = 8;

/// Per-server state the topology keeps beside the published description.
#[derive(Debug, Default)]
struct ServerState {
    /// The connection pool generation (bumped on every clear).
    pool_generation: u32,
    /// Whether the I/O layer's pool is "ready" (CMAP): false until a check makes the server
    /// usable ([`Command::MarkPoolReady`]), and again after every clear.
    pool_ready: bool,
    /// Pool generations of each service behind a load balancer.
    service_generations: BTreeMap<ObjectId, u32>,
    /// Operations in flight on this server: shared with selection snapshots and selected
    /// servers, which count and finish operations without the topology.
    operations: OperationCounter,
    /// The server's monitor (none in load-balanced mode).
    monitor: Option<Monitor>,
    /// The monitor's deadline as recorded in `Topology::timers`.
    timer: Option<Instant>,
    /// What the server's earlier hello replies parsed to (its member lists, tags, `me`,
    /// `primary`), reused when a reply repeats them.
    replies: ReplyCache,
}

impl Clone for ServerState {
    /// A fork (see [`Topology`]'s "Cloning"): the operation count is copied, not shared.
    fn clone(&self) -> Self {
        Self {
            pool_generation: self.pool_generation,
            pool_ready: self.pool_ready,
            service_generations: self.service_generations.clone(),
            operations: self.operations.fork(),
            monitor: self.monitor.clone(),
            timer: self.timer,
            replies: self.replies.clone(),
        }
    }
}

/// What an exchange the core asked for is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Check,
    Rtt,
}

/// The SDAM state machine.
///
/// # How to drive it
///
/// The methods fall in four groups (the form of `quinn-proto`'s `Connection`):
///
/// - **getters** — [`description`](Self::description) returns the current immutable snapshot
///   (an `Arc`, cheap to clone and safe to send to other threads);
///   [`selection_snapshot`](Self::selection_snapshot) the same with the shared operation
///   counters, for selecting from many threads without this object;
///   [`id`](Self::id), [`config`](Self::config), [`pool_generation`](Self::pool_generation),
///   [`operation_count`](Self::operation_count), [`waiting_selections`](Self::waiting_selections),
///   [`is_closed`](Self::is_closed); for `mongodb+srv`, [`srv_resolution`](Self::srv_resolution)
///   and [`srv_last_error`](Self::srv_last_error).
/// - **`handle_*`** — [`handle`](Self::handle) feeds one [`Input`] (a monitor's reply or
///   failure, an application error, DNS answers, a request to check, close) with the current
///   time; [`handle_timeout`](Self::handle_timeout) tells it the deadline it asked for has
///   come. Nothing blocks; nothing is returned.
/// - **mutators** — [`start_selection`](Self::start_selection) hands it a server selection
///   (it owns the waiting: deadline, immediate checks, retries on every change) and returns its
///   [`SelectionId`]; [`cancel_selection`](Self::cancel_selection) withdraws one.
/// - **`poll_*`** — [`poll_output`](Self::poll_output) returns the next [`Output`]: an SDAM or
///   heartbeat event to publish, a [`Command`] to carry out, a selection's outcome, a
///   selection log event; [`poll_timeout`](Self::poll_timeout) says when to call
///   `handle_timeout` next.
///
/// **Drain the outputs after every call** of the `handle_*` and mutator groups (call
/// `poll_output` until it returns `None`), then ask `poll_timeout` again: a call may queue
/// outputs and move the deadline. [`Output`] and [`Command`] are exhaustive, so an I/O layer
/// that matches them fails to build when a variant is added, instead of dropping it.
///
/// An adapter's whole loop:
///
/// ```text
/// loop {
///     while let Some(output) = topology.poll_output() {
///         match output {
///             Output::Event(e) => publish(e),
///             Output::Selection { id, result } => waiters.remove(&id).send(result), // a waiting selection ended
///             Output::SelectionLog { event, .. } => log(event),
///             Output::Command(Command::SendHello { request, connection, open, command, exhaust_allowed, deadline, .. }) =>
///                 // open `connection` first if `open`; frame `command` as OP_MSG (sdam-wire),
///                 // send, read one reply, time it, all before `deadline` (None: no limit);
///                 // later report Input::MonitorReply { request, reply, round_trip_time,
///                 // more_to_come } or Input::MonitorFailed { request, kind, error }. An answer
///                 // that never comes is failed by the core itself at the deadline.
///                 spawn_exchange(...),
///             Output::Command(Command::ReadReply { request, connection, deadline }) => read_next(...),
///             Output::Command(Command::CloseConnection { connection }) => close(connection),
///             Output::Command(Command::ClearPool { address, generation, .. }) => pool(address).clear(generation),
///             Output::Command(Command::MarkPoolReady { address, .. }) => pool(address).ready(),
///             Output::Command(Command::ResolveSrv { request, name, deadline }) =>
///                 // later: Input::SrvResolved { request, result: Ok(&records) or Err(why) }
///                 spawn_srv_lookup(request, name, deadline),
///             Output::Command(Command::ResolveTxt { request, name, deadline }) => spawn_txt_lookup(...),
///             // Only with MonitorOwner::Driver (the driver runs its own monitors):
///             Output::Command(Command::RequestCheck { address, immediate }) => my_monitor(address).check(immediate),
///             Output::Command(Command::CancelCheck { address }) => my_monitor(address).cancel(),
///         }
///     }
///     let deadline = topology.poll_timeout();
///     match wait_for_io_or(deadline) {                 // the only place that sleeps
///         // `clock` is the adapter's: the core never reads the time itself.
///         Woken::Io(input) => topology.handle(input, clock.now()),
///         Woken::Select(criteria, options, waiter) => {
///             let id = topology.start_selection(criteria, options, clock.now());
///             waiters.insert(id, waiter);
///         }
///         Woken::Deadline => topology.handle_timeout(clock.now()),
///     }
/// }
/// ```
///
/// `crates/sdam/examples/driver_loop.rs` is that loop over `std::net`, complete.
///
/// The same loop, fed by hand (`now` is the time the adapter read from its clock):
///
/// ```
/// use std::time::{Duration, Instant};
/// use sdam::selection::{SelectionCriteria, SelectionOptions};
/// use sdam::{Input, Output, ServerAddress, Topology, TopologyConfig, TopologyType};
///
/// fn feed_by_hand(now: Instant) {
/// let seed = ServerAddress::parse("db1.example.com:27017").unwrap();
/// let seed_clone = seed.clone();
/// let mut config = TopologyConfig::with_seeds([seed.clone()]);
/// config.replica_set_name = Some("rs0".into());
/// let mut topology = Topology::new(config, now).unwrap();
///
/// let reply = bson::rawdoc! {
///     "ok": 1, "isWritablePrimary": true, "setName": "rs0",
///     "hosts": ["db1.example.com:27017", "db2.example.com:27017"],
///     "minWireVersion": 0, "maxWireVersion": 21,
/// };
/// topology.handle(
///     Input::HelloReply { address: seed, reply, round_trip_time: Duration::from_millis(3), awaited: false },
///     now,
/// );
/// while let Some(output) = topology.poll_output() {
///     if let Output::Event(event) = output {
///         println!("{event:?}");
///     }
/// }
/// let description = topology.description();
/// assert_eq!(description.topology_type, TopologyType::ReplicaSetWithPrimary);
/// assert_eq!(description.servers.len(), 2);
///
/// // A write: the primary is known, so the outcome is queued at once.
/// let id = topology.start_selection(SelectionCriteria::write(), SelectionOptions::new("insert"), now);
/// while let Some(output) = topology.poll_output() {
///     if let Output::Selection { id: done, result: Ok(mut server) } = output {
///         assert_eq!(done, id);
///         assert_eq!(server.address(), &seed_clone);
///         server.finish_operation(); // the operation ended
///     }
/// }
/// }
/// # feed_by_hand(Instant::now()); // the reading of the adapter's clock
/// ```
///
/// # Cloning
///
/// `clone` forks the state machine: both copies go on independently from the same state
/// (pending requests, schedules, queued outputs). Only one of them may drive real I/O; the
/// other is for what-if analysis, replay and benchmarks that start every run from the same
/// state.
#[derive(Debug, Clone)]
pub struct Topology {
    config: TopologyConfig,
    id: TopologyId,
    description: Arc<TopologyDescription>,
    servers: BTreeMap<ServerAddress, ServerState>,
    /// Every monitor's next deadline (see [`ServerState::timer`]), earliest first.
    timers: BTreeSet<(Instant, ServerAddress)>,
    /// Servers whose monitor changed since `timers` was last brought up to date.
    touched: SmallVec<[ServerAddress; 4]>,
    outputs: VecDeque<Output>,
    rng: Rng,
    closed: bool,
    /// Exchanges in flight: which server and what for.
    requests: BTreeMap<RequestId, (ServerAddress, Purpose)>,
    next_id: u64,
    last_now: Instant,
    metadata: bson::Document,
    /// `mongodb+srv` discovery and polling, when configured.
    srv: Option<seedlist::SrvDiscovery>,
    /// Waiting server selections, and their deadlines earliest first.
    selections: BTreeMap<SelectionId, Selection>,
    selection_deadlines: BTreeSet<(Instant, SelectionId)>,
    next_selection: u64,
    /// The description the waiting selections were last polled against.
    selections_seen: Option<Arc<TopologyDescription>>,
}

impl Topology {
    /// Creates the topology with its seeds as Unknown servers. Never blocks, never fails
    /// because a server is down; fails only on a configuration the spec forbids.
    ///
    /// The first outputs are `TopologyOpening`, a `TopologyDescriptionChanged` from the empty
    /// description to the seeds, and one `ServerOpening` per seed.
    ///
    /// A `mongodb+srv` configuration without seeds starts with no servers (in the initial
    /// topology type; Unknown unless `replicaSet` or `loadBalanced` is set) and its first
    /// outputs after `TopologyOpening` are a [`Command::ResolveSrv`] and a
    /// [`Command::ResolveTxt`] (deadline: `connectTimeoutMS` from now, or
    /// [`DEFAULT_DNS_TIMEOUT`] when it is no limit). Once both answers are in and valid, the
    /// TXT options are applied (replicaSet makes it ReplicaSetNoPrimary with that set name,
    /// loadBalanced makes it LoadBalanced) and the seeds open. A failed or timed-out lookup,
    /// or an empty SRV answer, is retried after [`SRV_RETRY_BACKOFF`], doubling up to
    /// `heartbeatFrequencyMS`; meanwhile
    /// [`TopologyDescription::srv_error`] says what went wrong, and selections that time out
    /// quote it. Answers that break a rule of the seedlist spec are a permanent error
    /// ([`SrvError::Permanent`](crate::SrvError::Permanent)): never retried, and selections
    /// fail with it at once.
    pub fn new(config: TopologyConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        // A configured seed makes the run reproducible (tests, the simulator); without one
        // the generator, and with it the topology id, differs in every topology.
        let mut rng = Rng::new(config.rng_seed.unwrap_or_else(crate::rng::unpredictable_seed));
        let mut oid = [0u8; 12];
        for chunk in oid.chunks_mut(4) {
            chunk.copy_from_slice(&rng.next_u32().to_be_bytes());
        }
        let id = TopologyId::new(ObjectId::from_bytes(oid));

        let topology_type = config.initial_topology_type();
        let mut description = TopologyDescription::new(topology_type);
        description.heartbeat_frequency = config.heartbeat_frequency;
        description.local_threshold = config.local_threshold;
        // "Initial setName".
        description.set_name = config.replica_set_name.as_deref().map(Arc::from);
        let mut servers = BTreeMap::new();
        for seed in &config.seeds {
            description.insert_server(ServerDescription::unknown(seed.clone()));
            servers.insert(seed.clone(), ServerState::default());
        }
        let description = Arc::new(description);

        let mut topology = Self {
            config,
            id,
            description: Arc::clone(&description),
            servers,
            timers: BTreeSet::new(),
            touched: SmallVec::new(),
            outputs: VecDeque::new(),
            rng,
            closed: false,
            requests: BTreeMap::new(),
            next_id: 0,
            last_now: now,
            metadata: bson::Document::new(),
            srv: None,
            selections: BTreeMap::new(),
            selection_deadlines: BTreeSet::new(),
            next_selection: 0,
            selections_seen: None,
        };
        topology.metadata = topology.config.metadata.to_document();
        // The first "previous" description is the empty Unknown one (SDAM monitoring tests).
        let mut empty = TopologyDescription::new(TopologyType::Unknown);
        empty.heartbeat_frequency = topology.config.heartbeat_frequency;
        empty.local_threshold = topology.config.local_threshold;
        topology.emit(Event::TopologyOpening { topology_id: id });
        // A mongodb+srv topology may start as the empty description: no change to publish.
        if *description != empty {
            topology.emit(Event::TopologyDescriptionChanged {
                topology_id: id,
                previous: Arc::new(empty),
                new: Arc::clone(&description),
            });
        }
        for seed in description.servers.addresses() {
            topology.emit(Event::ServerOpening { topology_id: id, address: seed.clone() });
            topology.start_monitor(seed, now);
        }
        if topology_type == TopologyType::LoadBalanced {
            topology.make_load_balancer(now);
        }
        topology.start_srv(now);
        topology.run_timers(now);
        Ok(topology)
    }

    /// Load balancers are not monitored: the one server is a LoadBalancer from the start
    /// (load-balancers.md, "Server Discovery Logging and Monitoring").
    fn make_load_balancer(&mut self, now: Instant) {
        let Some(seed) = self.config.seeds.first().cloned() else { return };
        let mut lb = ServerDescription::unknown(seed);
        lb.server_type = ServerType::LoadBalancer;
        let position = self.outputs.len();
        let ready = lb.clone();
        self.replace_servers(now, |td, _| {
            td.insert_server(lb);
            true
        });
        // No monitor will ever check it: its pool is ready from the start.
        self.mark_pool_ready_if_usable(&ready, position);
    }

    /// The topology's id, as it appears in events.
    pub fn id(&self) -> TopologyId {
        self.id
    }

    /// The configuration the topology was created with; for `mongodb+srv`, once the seed list
    /// is resolved, with the resolved `seeds` and the TXT record's `replica_set_name` and
    /// `load_balanced` filled in.
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The handshake's `client` document (handshake.md), at most 512 bytes: what the core's
    /// monitors send on every new connection, and what a driver's connection pool sends in
    /// its own handshakes.
    pub fn client_metadata(&self) -> &bson::Document {
        &self.metadata
    }

    /// appendMetadata (handshake.md, "Metadata updates after MongoClient initialization"):
    /// appends a wrapping library's driver info to the client metadata
    /// ([`ClientMetadata::append`](crate::ClientMetadata::append)). Connections opened from
    /// now on send the new document; established ones are left as they are. Returns whether
    /// anything changed (`false` for driver info appended before).
    pub fn append_metadata(&mut self, info: crate::DriverInfo) -> Result<bool, crate::MetadataError> {
        let changed = self.config.metadata.append(info)?;
        if changed {
            self.metadata = self.config.metadata.to_document();
        }
        Ok(changed)
    }

    /// The current description: an immutable snapshot, cheap to clone.
    pub fn description(&self) -> Arc<TopologyDescription> {
        Arc::clone(&self.description)
    }

    /// The connection pool generation of `address`, if it is in the topology.
    pub fn pool_generation(&self, address: &ServerAddress) -> Option<u32> {
        self.servers.get(address).map(|s| s.pool_generation)
    }

    /// The generation a connection made now to `address` belongs to: the pool generation, or
    /// in load-balanced mode the generation of the connection's service (`service_id`, from
    /// its handshake). Record it with the connection; an [`ApplicationError`](crate::ApplicationError)
    /// carries it. `None` if `address` is not in the topology.
    pub fn connection_generation(
        &self,
        address: &ServerAddress,
        service_id: Option<ObjectId>,
    ) -> Option<u32> {
        let state = self.servers.get(address)?;
        let load_balanced = self.description.topology_type == TopologyType::LoadBalanced;
        Some(match (load_balanced, service_id) {
            (true, Some(service)) => state.service_generations.get(&service).copied().unwrap_or(0),
            _ => state.pool_generation,
        })
    }

    /// The number of operations in flight on `address` (reported with
    /// [`Input::OperationStarted`] and [`Input::OperationFinished`]).
    pub fn operation_count(&self, address: &ServerAddress) -> u32 {
        self.servers.get(address).map_or(0, |s| s.operations.get())
    }

    /// The next moment the topology must be woken with [`handle_timeout`](Self::handle_timeout)
    /// (a check or RTT measurement due, or an exchange's deadline), or `None` if nothing is
    /// scheduled. Never earlier than the last `now` it was given.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let earliest = if self.touched.is_empty() {
            self.timers.first().map(|(t, _)| *t)
        } else {
            // Not reached: every `&mut self` entry point ends with `run_timers`. Scan instead.
            self.servers.values().filter_map(|s| s.monitor.as_ref()?.next_deadline()).min()
        };
        debug_assert_eq!(
            earliest,
            self.servers.values().filter_map(|s| s.monitor.as_ref()?.next_deadline()).min(),
            "the timer index agrees with the monitors"
        );
        let srv = self.srv.as_ref().and_then(|s| s.next_deadline(self.description.topology_type));
        let selection = self.selection_deadlines.first().map(|(t, _)| *t);
        earliest.into_iter().chain(srv).chain(selection).min().map(|t| t.max(self.last_now))
    }

    /// Starts whatever is due at `now`: checks, RTT measurements and SRV lookups; and fails
    /// every exchange whose deadline passed unanswered (see [`Command`]'s "Deadlines"): a check
    /// as a timeout (its connection closed, the server Unknown, its pool cleared, the monitor
    /// going on), an RTT measurement alone, an SRV or TXT lookup as a failed lookup; and fails the waiting selections whose deadline
    /// has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.closed {
            self.last_now = self.last_now.max(now);
            self.run_selections(now);
            self.run_timers(now);
        }
    }

    /// Every server the topology tracks, with whether its monitor exists: for the invariant
    /// checks of the doc-hidden `testing` module (each described server has a monitor, no
    /// other does).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn monitor_census(&self) -> Vec<(ServerAddress, bool)> {
        self.servers.iter().map(|(a, s)| (a.clone(), s.monitor.is_some())).collect()
    }

    /// The outputs queued, oldest first, without draining them (for the testing harness).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn queued_outputs(&self) -> impl Iterator<Item = &Output> {
        self.outputs.iter()
    }

    /// Whether the topology was closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next output, or `None` when there is nothing more to do until the next input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Feeds one input. `now` is the current monotonic time.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) {
        if self.closed {
            return;
        }
        self.last_now = self.last_now.max(now);
        // A check's reply publishes about six outputs (heartbeat started and succeeded, server
        // and topology description changed, wake, ...): grow the queue once, not twice.
        if self.outputs.capacity() < OUTPUT_QUEUE_CAPACITY {
            self.outputs.reserve(OUTPUT_QUEUE_CAPACITY);
        }
        match input {
            Input::CheckStarted { address, awaited } => self.on_check_started(&address, awaited, now),
            Input::HelloReply { address, reply, round_trip_time, awaited } => {
                self.on_hello_by_address(&address, reply, round_trip_time, awaited, now);
            }
            Input::CheckFailed { address, kind, error } => {
                self.on_check_failed_by_address(&address, kind, error, now);
            }
            Input::RoundTripTime { address, round_trip_time } => {
                self.on_rtt_sample(&address, round_trip_time);
            }
            Input::ApplicationHandshake { address, reply, round_trip_time } => {
                self.on_application_handshake(&address, reply, round_trip_time, now);
            }
            Input::MonitorReply { request, reply, round_trip_time, more_to_come } => {
                self.on_monitor_reply(request, reply, round_trip_time, more_to_come, now);
            }
            Input::MonitorFailed { request, kind, error } => {
                self.on_monitor_failed(request, kind, error, now);
            }
            Input::ApplicationError(error) => self.handle_application_error(error, now),
            Input::SrvResolved { request, result } => self.on_srv_resolved(request, result, now),
            Input::TxtResolved { request, result } => self.on_txt_resolved(request, result, now),
            Input::RequestImmediateCheck => self.request_immediate_checks(now),
            Input::OperationStarted(address) => {
                if let Some(s) = self.servers.get(&address) {
                    s.operations.started();
                }
            }
            Input::OperationFinished(address) => {
                if let Some(s) = self.servers.get(&address) {
                    s.operations.finished();
                }
            }
            Input::Close => {
                self.close(now);
                return;
            }
        }
        self.run_selections(now);
        self.run_timers(now);
    }

    /// Asks every monitor for a check as soon as minHeartbeatFrequencyMS allows.
    fn request_immediate_checks(&mut self, now: Instant) {
        let monitored: Vec<ServerAddress> =
            self.servers.iter().filter(|(_, s)| s.monitor.is_some()).map(|(a, _)| a.clone()).collect();
        for address in monitored {
            self.request_check(&address, now);
        }
    }

    /// Applies a server description through the update rules, publishing events.
    fn apply_server_description(&mut self, sd: ServerDescription, now: Instant) {
        self.apply_checked(Arc::new(sd), None, None, now);
    }

    /// [`apply_server_description`](Self::apply_server_description), given whether the
    /// server's pool is ready when the caller already looked its state up (`None`: look it up
    /// here if it matters). `slot` is where the caller found the server in the current
    /// description, if it looked (a hint: the update rules check it).
    fn apply_checked(
        &mut self,
        sd: Arc<ServerDescription>,
        slot: Option<Slot>,
        pool_ready: Option<bool>,
        now: Instant,
    ) {
        if self.description.topology_type == TopologyType::LoadBalanced {
            // Load balancers are never monitored; nothing a check says changes them.
            return;
        }
        let settings = RuleSettings { single_seed: self.config.seeds.len() == 1 };
        // Only a paused pool of a server this outcome makes usable is marked ready (checked
        // first, so the steady state costs one lookup at most).
        let readies = self.makes_usable(&sd)
            && !pool_ready.unwrap_or_else(|| self.servers.get(&sd.address).is_none_or(|s| s.pool_ready));
        let applied = readies.then(|| Arc::clone(&sd));
        let position = self.outputs.len();
        self.replace_servers(now, |td, changes| td.apply(sd, slot, settings, changes));
        // The pool is marked ready in step with the update, before its events, if the update
        // rules kept the outcome (not stale, not replaced by a setName mismatch).
        if let Some(applied) = applied {
            if self.description.server(&applied.address).is_some_and(|current| Arc::ptr_eq(current, &applied))
            {
                self.mark_pool_ready_if_usable(&applied, position);
            }
        }
    }

    /// Whether `sd` is of a type whose pool is marked ready (see
    /// [`mark_pool_ready_if_usable`](Self::mark_pool_ready_if_usable)). A server only becomes
    /// Single's by being a Standalone, which qualifies anyway, so the current topology type
    /// decides.
    fn makes_usable(&self, sd: &ServerDescription) -> bool {
        matches!(
            sd.server_type,
            ServerType::Mongos
                | ServerType::RSPrimary
                | ServerType::RSSecondary
                | ServerType::Standalone
                | ServerType::LoadBalancer
        ) || (sd.server_type != ServerType::Unknown && self.description.topology_type == TopologyType::Single)
    }

    /// server-discovery-and-monitoring.md, "Connection Pool Management" (and
    /// `onServerDescriptionChanged`): after a successful check that makes the server a
    /// Mongos, RSPrimary, RSSecondary, Standalone or LoadBalancer, or anything but Unknown in
    /// a Single topology, the server's pool MUST be marked "ready". CMAP: a pool already ready
    /// is not marked again. The command goes at `position` in the outputs (before the events
    /// of the update that made the server usable).
    fn mark_pool_ready_if_usable(&mut self, sd: &ServerDescription, position: usize) {
        let usable = self.makes_usable(sd);
        let Some(state) = self.servers.get_mut(&sd.address).filter(|s| usable && !s.pool_ready) else {
            return;
        };
        state.pool_ready = true;
        let command =
            Command::MarkPoolReady { address: sd.address.clone(), generation: state.pool_generation };
        self.outputs.insert(position.min(self.outputs.len()), Output::Command(command));
    }

    /// Runs `update` on a copy of the description, then publishes the result with its events.
    fn replace_servers(
        &mut self,
        _now: Instant,
        update: impl FnOnce(&mut TopologyDescription, &mut Changes) -> bool,
    ) {
        // `update` returns `false` when it ignored its input: nothing is published then.
        let previous = Arc::clone(&self.description);
        let mut next = (*previous).clone();
        let mut changes = Changes::default();
        if !update(&mut next, &mut changes) {
            return;
        }
        next.note_server_limit(&changes);
        // Servers whose description changed, in address order (shared chunks and descriptions
        // are skipped); with the same addresses, none changed, and the same topology-wide
        // fields, the two descriptions are equal by the spec's rules.
        let mut changed: SmallVec<[(Arc<ServerDescription>, Arc<ServerDescription>); 2]> = SmallVec::new();
        let same_addresses = ServerMap::for_each_replaced(&previous.servers, &next.servers, |old, sd| {
            if **old != **sd {
                changed.push((Arc::clone(old), Arc::clone(sd)));
            }
        });
        if same_addresses && changed.is_empty() && next.same_apart_from_servers(&previous) {
            // Keep the new round-trip times and update times, but publish no event (waiting
            // selections may still care about the new RTTs: they are polled again).
            self.description = Arc::new(next);
            return;
        }
        let next = Arc::new(next);
        let id = self.id;
        for (_, sd) in &changed {
            // server-selection.md, "Calculation of Average Round Trip Times": "When a server
            // becomes unavailable, its average RTT MUST be cleared" — whatever made it Unknown
            // (a failed check, a state-change error, a stale primary), the next sample is the
            // new average.
            if sd.server_type == ServerType::Unknown {
                if let Some(m) = self.servers.get_mut(&sd.address).and_then(|s| s.monitor.as_mut()) {
                    m.rtt.reset();
                }
            }
        }
        for (old, sd) in changed {
            self.outputs.push_back(Output::Event(Event::ServerDescriptionChanged {
                topology_id: id,
                address: sd.address.clone(),
                previous: old,
                new: sd,
            }));
        }
        for address in &changes.added {
            self.servers.entry(address.clone()).or_default();
            self.emit(Event::ServerOpening { topology_id: id, address: address.clone() });
            self.start_monitor(address, _now);
        }
        for gone in &changes.removed {
            if !next.servers.contains(&gone.address) {
                if let Some(state) = self.remove_server_state(&gone.address) {
                    self.stop_monitor(
                        &gone.address,
                        state.monitor,
                        "the server was removed from the topology",
                        _now,
                    );
                }
                self.emit(Event::ServerClosed { topology_id: id, address: gone.address.clone() });
            }
        }
        self.description = Arc::clone(&next);
        self.emit(Event::TopologyDescriptionChanged { topology_id: id, previous, new: next });
        for address in changes.check_now {
            self.request_check(&address, _now);
        }
    }

    /// SDAM "Client closing" (and load-balancers.md): every check in flight ends with its
    /// `ServerHeartbeatFailed` ("topology closed"), every server is removed (`ServerClosed`),
    /// the description becomes an Unknown one without servers (`TopologyDescriptionChanged`),
    /// and `TopologyClosed` is the last event.
    fn close(&mut self, now: Instant) {
        self.fail_waiting_selections();
        let id = self.id;
        let addresses: Vec<ServerAddress> = self.description.servers.addresses().cloned().collect();
        for address in addresses {
            if let Some(state) = self.remove_server_state(&address) {
                self.stop_monitor(&address, state.monitor, "the topology was closed", now);
            }
            self.emit(Event::ServerClosed { topology_id: id, address });
        }
        self.servers.clear();
        self.timers.clear();
        self.touched.clear();
        self.requests.clear();
        let previous = Arc::clone(&self.description);
        // Every server removed and the type Unknown; the (maxElectionId, maxSetVersion) seen
        // so far never go backwards (an Unknown topology has no set name).
        let mut closed = TopologyDescription::new(TopologyType::Unknown);
        closed.heartbeat_frequency = previous.heartbeat_frequency;
        closed.local_threshold = previous.local_threshold;
        closed.max_election_id = previous.max_election_id;
        closed.max_set_version = previous.max_set_version;
        let closed = Arc::new(closed);
        if *closed != *previous {
            self.description = Arc::clone(&closed);
            self.emit(Event::TopologyDescriptionChanged { topology_id: id, previous, new: closed });
        }
        self.emit(Event::TopologyClosed { topology_id: id });
        self.closed = true;
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}
