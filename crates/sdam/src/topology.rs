//! The `Topology` state machine: inputs in, outputs drained, time passed in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::raw::RawDocument;
use smallvec::SmallVec;

use crate::address::ServerAddress;
use crate::app_error::{
    classify, ApplicationError, ApplicationErrorKind, ErrorPhase, StateChange, SYSTEM_OVERLOADED_LABEL,
};
use crate::events::{Command, Event, Output, TopologyId};
use crate::handshake::{check_command, handshake_command, ClientMetadata};
use crate::hello::ReplyCache;
use crate::monitor::{ConnectionId, FailureKind, Monitor, Phase, RequestId, RttTask, ServerMonitoringMode};
use crate::rng::Rng;
use crate::selection::{Selection, SelectionPoll};
use crate::server_description::{ServerDescription, ServerType};
use crate::topology_description::{ServerMap, TopologyDescription, TopologyType};
use crate::update_rules::{Changes, RuleSettings};

mod seedlist;

pub use seedlist::{DEFAULT_DNS_TIMEOUT, SRV_RETRY_BACKOFF};

/// The smallest heartbeat frequency accepted (server-monitoring.md, "heartbeatFrequencyMS").
pub const MIN_HEARTBEAT_FREQUENCY: Duration = crate::monitor::MIN_HEARTBEAT_FREQUENCY;

/// The most seeds a configuration may list: far beyond any real deployment, small enough
/// that per-input work stays bounded.
pub const MAX_SEEDS: usize = 10_000;

/// How a topology is set up. Build it by hand or from a connection string.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TopologyConfig {
    /// The seed list.
    pub seeds: Vec<ServerAddress>,
    /// `replicaSet`: the required replica set name.
    pub replica_set_name: Option<String>,
    /// `directConnection`: `Some(true)` connects to the one seed only (TopologyType Single).
    pub direct_connection: Option<bool>,
    /// `loadBalanced`: the one seed is a load balancer.
    pub load_balanced: bool,
    /// `heartbeatFrequencyMS` (default 10 s, at least 500 ms).
    pub heartbeat_frequency: Duration,
    /// `localThresholdMS` (default 15 ms).
    pub local_threshold: Duration,
    /// `serverSelectionTimeoutMS` (default 30 s).
    pub server_selection_timeout: Duration,
    /// `connectTimeoutMS` (default 10 s), for monitoring connections; zero means no limit.
    pub connect_timeout: Duration,
    /// `serverMonitoringMode` (default auto: stream unless `metadata.env` names a FaaS).
    pub server_monitoring_mode: ServerMonitoringMode,
    /// The handshake's client metadata (`appName` goes in `metadata.app_name`).
    pub metadata: ClientMetadata,
    /// `compressors` offered in the handshake.
    pub compressors: Vec<String>,
    /// The seed of the topology's random number generator (the adapters seed it from the OS).
    pub rng_seed: u64,
    /// For `mongodb+srv`: the SRV query. With no `seeds`, [`Topology::new`] resolves the seed
    /// list itself: it sends [`Command::ResolveSrv`] and [`Command::ResolveTxt`], and the
    /// topology has no servers until their answers arrive and pass validation. With `seeds`
    /// (a seed list already resolved, e.g. by
    /// [`ConnectionString::resolve_srv`](crate::ConnectionString::resolve_srv)), it only polls.
    /// Either way the SRV records are polled while the topology is Unknown or Sharded.
    pub srv: Option<crate::connection_string::srv::SrvQuery>,
    /// `srvMaxHosts`: the most hosts taken from SRV records (0: no limit).
    pub srv_max_hosts: u32,
    /// The connection string's options, when the configuration came from one. Only
    /// `mongodb+srv` discovery reads them: a TXT record's `authSource`, `replicaSet` and
    /// `loadBalanced` apply only where the connection string (or the fields above) left them
    /// unset, and the merged options are published by [`Topology::srv_resolution`].
    pub uri_options: Option<Arc<crate::connection_string::Options>>,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            replica_set_name: None,
            direct_connection: None,
            load_balanced: false,
            heartbeat_frequency: Duration::from_secs(10),
            local_threshold: Duration::from_millis(15),
            server_selection_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            server_monitoring_mode: ServerMonitoringMode::Auto,
            metadata: ClientMetadata::default(),
            compressors: Vec::new(),
            rng_seed: 0,
            srv: None,
            srv_max_hosts: 0,
            uri_options: None,
        }
    }
}

impl TopologyConfig {
    /// A configuration with these seeds and every other option at its default.
    pub fn with_seeds(seeds: impl IntoIterator<Item = ServerAddress>) -> Self {
        Self { seeds: seeds.into_iter().collect(), ..Self::default() }
    }

    /// The topology options of a parsed connection string: its hosts and every SDAM option it
    /// sets; the rest keep their defaults. For `mongodb+srv` the hosts are empty, so the
    /// topology resolves them (see [`srv`](Self::srv)), unless the connection string is one
    /// [`ConnectionString::resolve_srv`](crate::ConnectionString::resolve_srv) returned.
    pub fn from_connection_string(cs: &crate::ConnectionString) -> Self {
        let o = cs.options();
        let defaults = Self::default();
        let mut metadata = ClientMetadata::default();
        metadata.app_name.clone_from(&o.app_name);
        Self {
            seeds: cs.hosts().to_vec(),
            replica_set_name: o.replica_set.clone(),
            direct_connection: o.direct_connection,
            load_balanced: o.load_balanced.unwrap_or(false),
            heartbeat_frequency: o.heartbeat_frequency.unwrap_or(defaults.heartbeat_frequency),
            local_threshold: o.local_threshold.unwrap_or(defaults.local_threshold),
            server_selection_timeout: o.server_selection_timeout.unwrap_or(defaults.server_selection_timeout),
            connect_timeout: o.connect_timeout.unwrap_or(defaults.connect_timeout),
            server_monitoring_mode: o.server_monitoring_mode.unwrap_or_default(),
            metadata,
            compressors: o.compressors.iter().flatten().map(|c| c.as_str().to_owned()).collect(),
            rng_seed: defaults.rng_seed,
            srv: cs.srv_query(),
            srv_max_hosts: o.srv_max_hosts.unwrap_or(0),
            uri_options: cs.is_srv().then(|| Arc::new(o.clone())),
        }
    }

    /// The initial topology type ("Initial TopologyType").
    pub fn initial_topology_type(&self) -> TopologyType {
        if self.load_balanced {
            TopologyType::LoadBalanced
        } else if self.direct_connection == Some(true) {
            TopologyType::Single
        } else if self.replica_set_name.is_some() {
            TopologyType::ReplicaSetNoPrimary
        } else {
            TopologyType::Unknown
        }
    }

    /// Whether monitors may use the streaming protocol (server-monitoring.md, "Streaming disabled").
    pub fn streaming_enabled(&self) -> bool {
        match self.server_monitoring_mode {
            ServerMonitoringMode::Stream => true,
            ServerMonitoringMode::Poll => false,
            ServerMonitoringMode::Auto => self.metadata.env.is_none(),
        }
    }

    /// Checks the combinations the spec forbids ("Allowed configuration combinations").
    ///
    /// A `mongodb+srv` configuration ([`srv`](Self::srv) set) may have no seeds: they are
    /// resolved later and checked again then.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.seeds.is_empty() && self.srv.is_none() {
            return Err(ConfigError::NoSeeds);
        }
        if self.srv.is_some() && self.direct_connection == Some(true) {
            return Err(ConfigError::DirectConnectionWithSrv);
        }
        if self.seeds.len() > MAX_SEEDS {
            return Err(ConfigError::TooManySeeds(self.seeds.len()));
        }
        if self.direct_connection == Some(true) && self.seeds.len() > 1 {
            return Err(ConfigError::DirectConnectionWithMultipleSeeds);
        }
        if self.load_balanced {
            if self.seeds.len() > 1 {
                return Err(ConfigError::LoadBalancedWithMultipleSeeds);
            }
            if self.replica_set_name.is_some() {
                return Err(ConfigError::LoadBalancedWithReplicaSet);
            }
            if self.direct_connection == Some(true) {
                return Err(ConfigError::LoadBalancedWithDirectConnection);
            }
        }
        if self.heartbeat_frequency < MIN_HEARTBEAT_FREQUENCY {
            return Err(ConfigError::HeartbeatFrequencyTooShort(self.heartbeat_frequency));
        }
        if let Some(name) = &self.metadata.app_name {
            if name.len() > crate::handshake::MAX_APP_NAME_BYTES {
                return Err(ConfigError::AppNameTooLong(name.len()));
            }
        }
        Ok(())
    }
}

/// A configuration the spec does not allow (a caller mistake, reported by [`Topology::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The seed list is empty.
    NoSeeds,
    /// More than [`MAX_SEEDS`] seeds.
    TooManySeeds(usize),
    /// `directConnection=true` with more than one seed.
    DirectConnectionWithMultipleSeeds,
    /// `directConnection=true` with `mongodb+srv`, which may resolve to several hosts.
    DirectConnectionWithSrv,
    /// `loadBalanced=true` with more than one seed.
    LoadBalancedWithMultipleSeeds,
    /// `loadBalanced=true` with `replicaSet`.
    LoadBalancedWithReplicaSet,
    /// `loadBalanced=true` with `directConnection=true`.
    LoadBalancedWithDirectConnection,
    /// `heartbeatFrequencyMS` below 500 ms.
    HeartbeatFrequencyTooShort(Duration),
    /// `appName` longer than 128 bytes.
    AppNameTooLong(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSeeds => f.write_str("the seed list is empty"),
            Self::TooManySeeds(n) => write!(f, "{n} seeds given, at most {MAX_SEEDS} are accepted"),
            Self::DirectConnectionWithMultipleSeeds => {
                f.write_str("directConnection=true requires exactly one seed")
            }
            Self::DirectConnectionWithSrv => f.write_str(
                "directConnection=true cannot be used with mongodb+srv, which may resolve to several hosts",
            ),
            Self::LoadBalancedWithMultipleSeeds => f.write_str("loadBalanced=true requires exactly one seed"),
            Self::LoadBalancedWithReplicaSet => {
                f.write_str("loadBalanced=true cannot be used with replicaSet")
            }
            Self::LoadBalancedWithDirectConnection => {
                f.write_str("loadBalanced=true cannot be used with directConnection=true")
            }
            Self::HeartbeatFrequencyTooShort(d) => {
                write!(f, "heartbeatFrequencyMS is {} ms, at least 500 ms is required", d.as_millis())
            }
            Self::AppNameTooLong(n) => write!(f, "appName is {n} bytes long, at most 128 are allowed"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One input to the topology.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A server answered `hello` (or legacy hello): the reply's raw bytes as they arrived and
    /// the round trip measured for it.
    HelloReply {
        /// The server that was checked.
        address: ServerAddress,
        /// The reply document.
        reply: &'a RawDocument,
        /// The measured round-trip time of this check.
        round_trip_time: Duration,
    },
    /// A check of a server failed (network error, timeout, handshake error).
    CheckFailed {
        /// The server that was checked.
        address: ServerAddress,
        /// What went wrong, for the server description's `error`.
        error: String,
    },
    /// The reply to a [`Command::SendHello`] or [`Command::ReadReply`], with the OP_MSG
    /// moreToCome flag it carried and the measured round trip.
    MonitorReply {
        /// The exchange the reply belongs to.
        request: RequestId,
        /// The reply document.
        reply: &'a RawDocument,
        /// Time from sending the command (or starting to read) to the reply.
        round_trip_time: Duration,
        /// Whether the OP_MSG moreToCome flag was set.
        more_to_come: bool,
    },
    /// A [`Command::SendHello`] or [`Command::ReadReply`] failed: connect, write or read error,
    /// a malformed frame, or no reply within the timeout.
    MonitorFailed {
        /// The exchange that failed.
        request: RequestId,
        /// Network error or timeout.
        kind: FailureKind,
        /// What went wrong.
        error: String,
    },
    /// An application operation saw an error on one of a server's connections.
    ApplicationError(ApplicationError),
    /// The answer to a [`Command::ResolveSrv`]: the records, or
    /// why the lookup failed (including its timeout). An empty answer is treated as the spec
    /// says for "no SRV records". Answers to lookups that are not in flight are ignored.
    SrvResolved {
        /// The lookup this answers.
        request: RequestId,
        /// The records found, or the lookup's error.
        result: Result<&'a [crate::connection_string::srv::SrvRecord], String>,
    },
    /// The answer to a [`Command::ResolveTxt`]: the records (empty
    /// when the name has none), or why the lookup failed.
    TxtResolved {
        /// The lookup this answers.
        request: RequestId,
        /// The records found, or the lookup's error.
        result: Result<&'a [crate::connection_string::srv::TxtRecord], String>,
    },
    /// Check every server as soon as the monitors allow (a server selection is waiting).
    RequestImmediateCheck,
    /// An operation started on `address` (counts for the in-window choice).
    OperationStarted(ServerAddress),
    /// An operation on `address` ended.
    OperationFinished(ServerAddress),
    /// Close the topology: every server is closed and `TopologyClosed` is the last event.
    Close,
}

/// Per-server state the topology keeps beside the published description.
#[derive(Debug, Clone, Default)]
struct ServerState {
    /// The connection pool generation (bumped on every clear).
    pool_generation: u32,
    /// Pool generations of each service behind a load balancer.
    service_generations: BTreeMap<ObjectId, u32>,
    /// Operations in flight on this server.
    operations: u32,
    /// The server's monitor (none in load-balanced mode).
    monitor: Option<Monitor>,
    /// The monitor's deadline as recorded in `Topology::timers`.
    timer: Option<Instant>,
    /// What the server's earlier hello replies parsed to (its member lists, tags, `me`,
    /// `primary`), reused when a reply repeats them.
    replies: ReplyCache,
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
/// Methods fall in four groups, called in this order by an I/O loop:
///
/// - **getters** — [`description`](Self::description) returns the current immutable snapshot
///   (an `Arc`, cheap to clone and safe to send to other threads); [`pool_generation`](Self::pool_generation),
///   [`operation_count`](Self::operation_count); for `mongodb+srv`,
///   [`srv_resolution`](Self::srv_resolution) and [`srv_last_error`](Self::srv_last_error).
/// - **`handle_*`** — [`handle`](Self::handle) feeds one [`Input`] (a monitor's reply or
///   failure, an application error, a hello from an application handshake, a request to
///   check, close) with the current time; [`handle_timeout`](Self::handle_timeout) tells it the
///   deadline it asked for has come. Nothing blocks; nothing is returned.
/// - **`poll_*`** — drain [`poll_output`](Self::poll_output) until it returns `None` (SDAM and
///   heartbeat events to publish, [`Command`]s to carry out), then ask
///   [`poll_timeout`](Self::poll_timeout) when to call `handle_timeout` next.
///
/// An adapter's whole loop:
///
/// ```text
/// loop {
///     while let Some(output) = topology.poll_output() {
///         match output {
///             Output::Event(e) => publish(e),
///             Output::Command(Command::SendHello { request, connection, open, command, exhaust_allowed, timeout, .. }) =>
///                 // open `connection` first if `open` is Some(connect timeout); frame `command`
///                 // as OP_MSG (sdam-wire), send, read one reply, time it; later report
///                 // Input::MonitorReply { request, reply, round_trip_time, more_to_come }
///                 // or Input::MonitorFailed { request, kind, error }.
///                 spawn_exchange(...),
///             Output::Command(Command::ReadReply { request, connection, timeout }) => read_next(...),
///             Output::Command(Command::CloseConnection { connection }) => close(connection),
///             Output::Command(Command::ClearPool { address, generation, .. }) => pool(address).clear(generation),
///             Output::Command(Command::WakeSelections) => wake_waiting_selections(topology.description()),
///             Output::Command(Command::ResolveSrv { request, name, timeout }) =>
///                 // later: Input::SrvResolved { request, result: Ok(&records) or Err(why) }
///                 spawn_srv_lookup(request, name, timeout),
///             Output::Command(Command::ResolveTxt { request, name, timeout }) => spawn_txt_lookup(...),
///             _ => {}
///         }
///     }
///     let deadline = topology.poll_timeout();
///     match wait_for_io_or(deadline) {                 // the only place that sleeps
///         // `clock` is the adapter's: the core never reads the time itself.
///         Woken::Io(input) => topology.handle(input, clock.now()),
///         Woken::Deadline => topology.handle_timeout(clock.now()),
///     }
/// }
/// ```
///
/// The same loop, fed by hand (`now` is the time the adapter read from its clock):
///
/// ```
/// use std::time::{Duration, Instant};
/// use sdam::{Input, Output, ServerAddress, Topology, TopologyConfig, TopologyType};
///
/// fn feed_by_hand(now: Instant) {
/// let seed = ServerAddress::parse("db1.example.com:27017").unwrap();
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
///     Input::HelloReply { address: seed, reply: &reply, round_trip_time: Duration::from_millis(3) },
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
/// }
/// # feed_by_hand(sdam_bench::clock::now());
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
    /// [`Command::ResolveTxt`] (timeout: `connectTimeoutMS`, or [`DEFAULT_DNS_TIMEOUT`] if
    /// that is 0). Once both answers are in and valid, the TXT options are applied (replicaSet
    /// makes it ReplicaSetNoPrimary with that set name, loadBalanced makes it LoadBalanced)
    /// and the seeds open. A failed, timed-out or invalid answer is retried after
    /// [`SRV_RETRY_BACKOFF`], doubling up to `heartbeatFrequencyMS`; meanwhile
    /// [`TopologyDescription::srv_error`] says what went wrong, and selections that time out
    /// quote it.
    pub fn new(config: TopologyConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = Rng::new(config.rng_seed);
        let mut oid = [0u8; 12];
        for chunk in oid.chunks_mut(4) {
            chunk.copy_from_slice(&rng.next_u32().to_be_bytes());
        }
        let id = TopologyId(ObjectId::from_bytes(oid));

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
        self.replace_servers(now, |td, _| {
            td.insert_server(lb);
            true
        });
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

    /// The current description: an immutable snapshot, cheap to clone.
    pub fn description(&self) -> Arc<TopologyDescription> {
        Arc::clone(&self.description)
    }

    /// The connection pool generation of `address`, if it is in the topology.
    pub fn pool_generation(&self, address: &ServerAddress) -> Option<u32> {
        self.servers.get(address).map(|s| s.pool_generation)
    }

    /// The number of operations in flight on `address` (reported with
    /// [`Input::OperationStarted`] and [`Input::OperationFinished`]).
    pub fn operation_count(&self, address: &ServerAddress) -> u32 {
        self.servers.get(address).map_or(0, |s| s.operations)
    }

    /// The next moment the topology must be woken with [`handle_timeout`](Self::handle_timeout)
    /// (a check or RTT measurement due), or `None` if nothing is scheduled. Never earlier than
    /// the last `now` it was given.
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
        earliest.into_iter().chain(srv).min().map(|t| t.max(self.last_now))
    }

    /// Starts whatever is due at `now`: checks, RTT measurements and SRV lookups (and counts
    /// SRV and TXT lookups unanswered past their timeout as failed).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.closed {
            self.run_timers(now);
        }
    }

    /// Every server the topology tracks, with whether its monitor exists: for the invariant
    /// checks of [`crate::testing`] (each described server has a monitor, no other does).
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn monitor_census(&self) -> Vec<(ServerAddress, bool)> {
        self.servers.iter().map(|(a, s)| (a.clone(), s.monitor.is_some())).collect()
    }

    /// Whether the topology was closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The topology's random number generator (selection draws from it).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Polls a server selection against the current description with this topology's
    /// operation counts and random number generator.
    ///
    /// On `Selected`, the chosen server's operation count is incremented: report
    /// [`Input::OperationFinished`] when the operation ends. On `Wait` with
    /// `request_immediate_check`, the monitors are asked for an immediate check (throttled by
    /// minHeartbeatFrequencyMS), so the caller only has to wait for the next
    /// [`Command::WakeSelections`] or the `until` deadline.
    pub fn select(&mut self, selection: &mut Selection, now: Instant) -> SelectionPoll {
        let counts = |address: &ServerAddress| self.servers.get(address).map_or(0, |s| s.operations);
        let poll = selection.poll(&self.description, &counts, &mut self.rng, now);
        match &poll {
            SelectionPoll::Selected(chosen) => {
                if let Some(s) = self.servers.get_mut(&chosen.address) {
                    s.operations = s.operations.saturating_add(1);
                }
            }
            SelectionPoll::Wait { request_immediate_check: true, .. } if !self.closed => {
                self.handle(Input::RequestImmediateCheck, now);
            }
            _ => {}
        }
        poll
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
        match input {
            Input::HelloReply { address, reply, round_trip_time } => {
                let previous = self.description.server(&address).cloned();
                let cache = self.servers.get_mut(&address).map(|s| &mut s.replies);
                let parsed = ServerDescription::from_hello_after(
                    address.clone(),
                    reply,
                    now,
                    previous.as_deref(),
                    cache,
                );
                let new = match parsed {
                    Ok(mut sd) => {
                        if sd.server_type != ServerType::Unknown {
                            sd.round_trip_time = Some(round_trip_time);
                            sd.min_round_trip_time = Some(round_trip_time);
                        }
                        sd
                    }
                    Err(e) => {
                        let mut sd = ServerDescription::unknown_with_error(address, e.to_string());
                        sd.last_update_time = Some(now);
                        sd
                    }
                };
                self.apply_server_description(new, now);
            }
            Input::CheckFailed { address, error } => {
                let mut sd = ServerDescription::unknown_with_error(address, error);
                sd.last_update_time = Some(now);
                self.apply_server_description(sd, now);
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
            Input::RequestImmediateCheck => {
                for (address, state) in &mut self.servers {
                    if let Some(m) = state.monitor.as_mut() {
                        m.request_check(now);
                        self.touched.push(address.clone());
                    }
                }
            }
            Input::OperationStarted(address) => {
                if let Some(s) = self.servers.get_mut(&address) {
                    s.operations = s.operations.saturating_add(1);
                }
            }
            Input::OperationFinished(address) => {
                if let Some(s) = self.servers.get_mut(&address) {
                    s.operations = s.operations.saturating_sub(1);
                }
            }
            Input::Close => {
                self.close(now);
                return;
            }
        }
        self.run_timers(now);
    }

    /// Applies a server description through the update rules, publishing events.
    fn apply_server_description(&mut self, sd: ServerDescription, now: Instant) {
        if self.description.topology_type == TopologyType::LoadBalanced {
            // Load balancers are never monitored; nothing a check says changes them.
            return;
        }
        let settings = RuleSettings { single_seed: self.config.seeds.len() == 1 };
        let sd = Arc::new(sd);
        self.replace_servers(now, |td, changes| td.apply(sd, settings, changes));
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
            // selections may still care about the new RTTs).
            self.description = Arc::new(next);
            self.outputs.push_back(Output::Command(Command::WakeSelections));
            return;
        }
        let next = Arc::new(next);
        let id = self.id;
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
                    self.stop_monitor(state.monitor);
                }
                self.emit(Event::ServerClosed { topology_id: id, address: gone.address.clone() });
            }
        }
        self.description = Arc::clone(&next);
        self.emit(Event::TopologyDescriptionChanged { topology_id: id, previous, new: next });
        self.outputs.push_back(Output::Command(Command::WakeSelections));
        for address in changes.check_now {
            self.request_check(&address, _now);
        }
    }

    /// "Error handling pseudocode" (handleError).
    fn handle_application_error(&mut self, error: ApplicationError, now: Instant) {
        let Some(state) = self.servers.get(&error.address) else { return };
        let Some(current) = self.description.servers.get(&error.address).cloned() else { return };
        let load_balanced = self.description.topology_type == TopologyType::LoadBalanced;
        // isStaleError: an error from a connection of an older pool generation is stale.
        let current_generation = match (load_balanced, error.service_id) {
            (true, Some(service)) => state.service_generations.get(&service).copied().unwrap_or(0),
            _ => state.pool_generation,
        };
        if error.generation.is_some_and(|g| g < current_generation) {
            return;
        }
        let overloaded = error.has_label(SYSTEM_OVERLOADED_LABEL);
        match &error.kind {
            ApplicationErrorKind::Command { code, message, topology_version } => {
                let class = classify(*code, message);
                if class == StateChange::None {
                    // "MongoDB Handshake errors": any other error while establishing the
                    // connection (authentication) marks the server Unknown and clears its pool.
                    if error.phase == ErrorPhase::BeforeHandshakeCompletes && !overloaded {
                        self.mark_unknown_and_clear(&error, load_balanced, now);
                    }
                    return;
                }
                // isStaleError: the current description's topologyVersion is not older.
                if crate::server_description::TopologyVersion::compare(
                    current.topology_version.as_ref(),
                    topology_version.as_ref(),
                ) != std::cmp::Ordering::Less
                {
                    return;
                }
                if !load_balanced {
                    let mut unknown =
                        ServerDescription::unknown_with_error(error.address.clone(), error.to_string());
                    unknown.topology_version = *topology_version;
                    unknown.last_update_time = Some(now);
                    self.apply_server_description(unknown, now);
                }
                // Clear the pool if and only if the node is shutting down.
                if class == (StateChange::Recovering { shutdown: true }) {
                    self.clear_pool(
                        &error.address,
                        load_balanced.then_some(error.service_id).flatten(),
                        false,
                    );
                }
                self.request_check(&error.address, now);
            }
            // A timeout never marks a server Unknown: it may be a slow operation (and the
            // handshake timeouts of error_handling_handshake.json are ignored too).
            ApplicationErrorKind::Timeout => {}
            ApplicationErrorKind::Network => {
                // Errors carrying the backpressure label are ignored.
                if !overloaded {
                    self.mark_unknown_and_clear(&error, load_balanced, now);
                }
            }
        }
    }

    /// Marks the server Unknown (unless load balanced) and clears its pool.
    fn mark_unknown_and_clear(&mut self, error: &ApplicationError, load_balanced: bool, now: Instant) {
        if load_balanced {
            if let Some(service) = error.service_id {
                self.clear_pool(&error.address, Some(service), false);
            }
            return;
        }
        let mut unknown = ServerDescription::unknown_with_error(error.address.clone(), error.to_string());
        unknown.last_update_time = Some(now);
        self.apply_server_description(unknown, now);
        self.clear_pool(&error.address, None, false);
        // "hello or legacy hello Cancellation": cancel the check in flight and close the
        // monitoring connection; the monitor sleeps a heartbeat (or until a check is requested).
        self.cancel_check(&error.address, now);
    }

    /// Bumps the pool generation and tells the I/O layer to clear the pool.
    fn clear_pool(&mut self, address: &ServerAddress, service_id: Option<ObjectId>, interrupt: bool) {
        let Some(state) = self.servers.get_mut(address) else { return };
        let generation = match service_id {
            Some(service) => {
                let g = state.service_generations.entry(service).or_insert(0);
                *g += 1;
                *g
            }
            None => {
                state.pool_generation += 1;
                state.pool_generation
            }
        };
        self.outputs.push_back(Output::Command(Command::ClearPool {
            address: address.clone(),
            service_id,
            generation,
            interrupt_in_use_connections: interrupt,
        }));
    }

    /// Closes every server, then the topology ("Client closing").
    fn close(&mut self, _now: Instant) {
        let id = self.id;
        let addresses: Vec<ServerAddress> = self.description.servers.addresses().cloned().collect();
        for address in addresses {
            if let Some(state) = self.remove_server_state(&address) {
                self.stop_monitor(state.monitor);
            }
            self.emit(Event::ServerClosed { topology_id: id, address });
        }
        self.servers.clear();
        self.timers.clear();
        self.touched.clear();
        self.requests.clear();
        self.emit(Event::TopologyClosed { topology_id: id });
        self.closed = true;
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// Monitoring: the monitor schedules turned into commands (server-monitoring.md).
impl Topology {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts monitoring a server that entered the topology: its first check is due now.
    fn start_monitor(&mut self, address: &ServerAddress, now: Instant) {
        if self.config.load_balanced {
            return; // load balancers are not monitored
        }
        let streaming = self.config.streaming_enabled();
        if let Some(state) = self.servers.get_mut(address) {
            state.monitor.get_or_insert_with(|| Monitor::new(now, streaming));
            self.touched.push(address.clone());
        }
    }

    /// Stops a monitor: closes its connections; late replies are then dropped.
    fn stop_monitor(&mut self, monitor: Option<Monitor>) {
        let Some(m) = monitor else { return };
        let rtt_connection = m.rtt_task.and_then(|t| t.connection);
        for connection in [m.connection, rtt_connection].into_iter().flatten() {
            self.command(Command::CloseConnection { connection });
        }
        if let Phase::Checking { request, .. } = m.phase {
            self.requests.remove(&request);
        }
        if let Some(request) = m.rtt_task.and_then(|t| t.request) {
            self.requests.remove(&request);
        }
    }

    /// Asks the monitor of `address` for an immediate check.
    fn request_check(&mut self, address: &ServerAddress, now: Instant) {
        if let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) {
            m.request_check(now);
        }
    }

    /// Cancels the check in flight on `address` and closes its monitoring connection.
    fn cancel_check(&mut self, address: &ServerAddress, now: Instant) {
        let heartbeat = self.config.heartbeat_frequency;
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let cancelled = match m.phase {
            Phase::Checking { request, .. } => Some(request),
            Phase::Idle { .. } => None,
        };
        let connection = m.connection.take();
        if cancelled.is_some() {
            m.sleep(now, heartbeat);
        }
        m.rtt.reset();
        if let Some(request) = cancelled {
            self.requests.remove(&request);
        }
        if let Some(connection) = connection {
            self.command(Command::CloseConnection { connection });
        }
    }

    /// Starts every check and RTT measurement due at `now`.
    fn run_timers(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.update_timers();
        let mut due: SmallVec<[ServerAddress; 4]> =
            self.timers.iter().take_while(|(t, _)| *t <= now).map(|(_, a)| a.clone()).collect();
        // In address order, as a scan of the servers would find them.
        due.sort_unstable();
        for address in due {
            self.start_check_if_due(&address, now);
            self.start_rtt_if_due(&address, now);
        }
        self.run_srv_timers(now);
        self.update_timers();
    }

    /// Brings `timers` up to date with the monitors touched since the last call.
    fn update_timers(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for address in touched {
            let Some(state) = self.servers.get_mut(&address) else { continue };
            let deadline = state.monitor.as_ref().and_then(Monitor::next_deadline);
            if deadline != state.timer {
                if let Some(t) = state.timer {
                    self.timers.remove(&(t, address.clone()));
                }
                if let Some(t) = deadline {
                    self.timers.insert((t, address));
                }
                state.timer = deadline;
            }
        }
    }

    /// Removes a server's state and its timer.
    fn remove_server_state(&mut self, address: &ServerAddress) -> Option<ServerState> {
        let state = self.servers.remove(address)?;
        if let Some(t) = state.timer {
            self.timers.remove(&(t, address.clone()));
        }
        Some(state)
    }

    fn start_check_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let heartbeat = self.config.heartbeat_frequency;
        let connect_timeout = nonzero(self.config.connect_timeout);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        if !matches!(m.phase, Phase::Idle { next_check } if next_check <= now) {
            return;
        }
        let request = RequestId(id);
        let (connection, open, command, awaited) = match m.connection {
            // A new connection: its handshake is the check ("Clients update the topology from
            // each handshake").
            None => {
                let c = ConnectionId(connection_id);
                m.connection = Some(c);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, Some(connect_timeout.unwrap_or(Duration::ZERO)), cmd, false)
            }
            // Streaming: an awaitable hello from the last topologyVersion.
            Some(c) if m.streaming_allowed && m.topology_version.is_some() => {
                let tv = m.topology_version.map(|tv| (tv, heartbeat));
                (c, None, check_command(m.hello_ok, tv), true)
            }
            Some(c) => (c, None, check_command(m.hello_ok, None), false),
        };
        m.phase = Phase::Checking { request, started: now, awaited, handshake: open.is_some() };
        // "Socket timeout": connectTimeoutMS, plus heartbeatFrequencyMS for awaitable hellos.
        let timeout = connect_timeout.map(|t| if awaited { t + heartbeat } else { t });
        self.requests.insert(request, (address.clone(), Purpose::Check));
        self.emit(Event::ServerHeartbeatStarted {
            address: address.clone(),
            connection_id: connection,
            awaited,
        });
        self.command(Command::SendHello {
            request,
            connection,
            address: address.clone(),
            open,
            command,
            exhaust_allowed: awaited,
            timeout,
        });
    }

    fn start_rtt_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let connect_timeout = nonzero(self.config.connect_timeout);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let hello_ok = m.hello_ok;
        let Some(task) = m.rtt_task.as_mut().filter(|t| t.request.is_none() && t.next_at <= now) else {
            return;
        };
        let request = RequestId(id);
        task.request = Some(request);
        let (connection, open, command) = match task.connection {
            Some(c) => (c, None, check_command(hello_ok, None)),
            None => {
                let c = ConnectionId(connection_id);
                task.connection = Some(c);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, Some(connect_timeout.unwrap_or(Duration::ZERO)), cmd)
            }
        };
        self.requests.insert(request, (address.clone(), Purpose::Rtt));
        // No events for RTT commands ("Measuring RTT").
        self.command(Command::SendHello {
            request,
            connection,
            address: address.clone(),
            open,
            command,
            exhaust_allowed: false,
            timeout: connect_timeout,
        });
    }

    fn on_monitor_reply(
        &mut self,
        request: RequestId,
        reply: &RawDocument,
        round_trip_time: Duration,
        more_to_come: bool,
        now: Instant,
    ) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        let heartbeat = self.config.heartbeat_frequency;
        if purpose == Purpose::Rtt {
            self.requests.remove(&request);
            if let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, &address) {
                // The reply's content is ignored; only its duration counts ("Measuring RTT").
                m.rtt.add_sample(round_trip_time);
                if let Some(task) = m.rtt_task.as_mut() {
                    task.request = None;
                    task.next_at = now + heartbeat;
                }
            }
            return;
        }
        let Some(state) = self.servers.get_mut(&address) else { return };
        let Some(m) = state.monitor.as_mut() else { return };
        self.touched.push(address.clone());
        let Phase::Checking { started, awaited, handshake, .. } = m.phase else { return };
        let connection = m.connection.unwrap_or(ConnectionId(0));
        let previous = self.description.server(&address).map(Arc::clone);
        let parsed = ServerDescription::from_hello_after(
            address.clone(),
            reply,
            now,
            previous.as_deref(),
            Some(&mut state.replies),
        );
        let failure = match &parsed {
            Ok(sd) if sd.server_type == ServerType::Unknown => sd.error.as_deref().map(str::to_owned),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failure {
            // A command error (ok: 0) or a malformed reply: the check failed.
            self.fail_check(request, &address, FailureKind::Network, error, false, now);
            return;
        }
        let Ok(mut sd) = parsed else { return };
        // RTT comes from the handshake and from polling checks, never from streamed replies.
        if handshake || !awaited {
            m.rtt.add_sample(round_trip_time);
        }
        sd.round_trip_time = m.rtt.average().or(Some(round_trip_time));
        sd.min_round_trip_time = Some(m.rtt.minimum());
        m.hello_ok = sd.hello_ok;
        m.topology_version = sd.topology_version;
        let supports_streaming = sd.topology_version.is_some();
        let duration = if awaited { now.saturating_duration_since(started) } else { round_trip_time };

        if more_to_come {
            // The next streamed reply is already on its way: wait for it.
            m.phase = Phase::Checking { request, started: now, awaited: true, handshake: false };
        } else if awaited {
            // A server that answers an awaitable hello without moreToCome does not really
            // stream: poll it instead, or it would be checked in a hot loop.
            m.streaming_allowed = false;
            let rtt_task = m.rtt_task.take();
            m.sleep(now, heartbeat);
            self.requests.remove(&request);
            if let Some(task) = rtt_task {
                if let Some(r) = task.request {
                    self.requests.remove(&r);
                }
                if let Some(connection) = task.connection {
                    self.command(Command::CloseConnection { connection });
                }
            }
        } else if m.streaming_allowed && supports_streaming {
            // "Heartbeat frequency": after an ok reply the streaming protocol checks again at once.
            m.check_now(now);
            if m.rtt_task.is_none() {
                m.rtt_task = Some(RttTask { connection: None, request: None, next_at: now + heartbeat });
            }
            self.requests.remove(&request);
        } else {
            m.sleep(now, heartbeat);
            self.requests.remove(&request);
        }
        self.emit(Event::ServerHeartbeatSucceeded {
            address: address.clone(),
            connection_id: connection,
            duration,
            reply: reply.to_owned(),
            awaited,
        });
        if more_to_come {
            self.emit(Event::ServerHeartbeatStarted {
                address: address.clone(),
                connection_id: connection,
                awaited: true,
            });
            let timeout = nonzero(self.config.connect_timeout).map(|t| t + heartbeat);
            self.command(Command::ReadReply { request, connection, timeout });
        }
        self.apply_server_description(sd, now);
    }

    fn on_monitor_failed(&mut self, request: RequestId, kind: FailureKind, error: String, now: Instant) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        if purpose == Purpose::Rtt {
            // RTT failures never touch the topology ("Why don't clients mark a server unknown
            // when an RTT command fails?"): close that connection and try again later.
            self.requests.remove(&request);
            let heartbeat = self.config.heartbeat_frequency;
            let mut close = None;
            if let Some(task) =
                monitor_mut(&mut self.servers, &mut self.touched, &address).and_then(|m| m.rtt_task.as_mut())
            {
                task.request = None;
                close = task.connection.take();
                task.next_at = now + heartbeat;
            }
            if let Some(connection) = close {
                self.command(Command::CloseConnection { connection });
            }
            return;
        }
        self.fail_check(request, &address, kind, error, true, now);
    }

    /// "Network or command error during server check".
    fn fail_check(
        &mut self,
        request: RequestId,
        address: &ServerAddress,
        kind: FailureKind,
        error: String,
        network: bool,
        now: Instant,
    ) {
        self.requests.remove(&request);
        let heartbeat = self.config.heartbeat_frequency;
        let was_known =
            self.description.server(address).is_some_and(|sd| sd.server_type != ServerType::Unknown);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let Phase::Checking { started, awaited, .. } = m.phase else { return };
        // 1. Close the monitoring connection (the RTT one stays: it has its own schedule).
        let connection = m.connection.take();
        m.rtt.reset();
        m.topology_version = None;
        // 4./5. One immediate retry after a network error on a server that was known;
        // otherwise sleep a heartbeat.
        if network && was_known {
            m.check_now(now);
        } else {
            m.sleep(now, heartbeat);
        }
        let connection_id = connection.unwrap_or(ConnectionId(0));
        if let Some(c) = connection {
            self.command(Command::CloseConnection { connection: c });
        }
        self.emit(Event::ServerHeartbeatFailed {
            address: address.clone(),
            connection_id,
            duration: now.saturating_duration_since(started),
            failure: error.clone(),
            awaited,
        });
        // 2. Mark the server Unknown, 3. then clear its pool (interrupting in-use connections
        // after a timeout).
        let mut sd = ServerDescription::unknown_with_error(address.clone(), error);
        sd.last_update_time = Some(now);
        self.apply_server_description(sd, now);
        self.clear_pool(address, None, kind == FailureKind::Timeout);
    }

    fn command(&mut self, command: Command) {
        self.outputs.push_back(Output::Command(command));
    }
}

/// The monitor of `address`, recorded as touched so its timer is brought up to date.
fn monitor_mut<'s>(
    servers: &'s mut BTreeMap<ServerAddress, ServerState>,
    touched: &mut SmallVec<[ServerAddress; 4]>,
    address: &ServerAddress,
) -> Option<&'s mut Monitor> {
    let monitor = servers.get_mut(address)?.monitor.as_mut()?;
    touched.push(address.clone());
    Some(monitor)
}

/// A zero duration means "no limit" for connectTimeoutMS.
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn rs_topology() -> (Topology, Instant) {
        let now = crate::test_instant();
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.replica_set_name = Some("rs".into());
        (Topology::new(config, now).unwrap(), now)
    }

    fn hello(t: &mut Topology, a: &str, reply: &RawDocument, now: Instant) {
        t.handle(
            Input::HelloReply { address: addr(a), reply, round_trip_time: Duration::from_millis(1) },
            now,
        );
        while t.poll_output().is_some() {}
    }

    fn commands(t: &mut Topology) -> Vec<Command> {
        std::iter::from_fn(|| t.poll_output())
            .filter_map(|o| match o {
                Output::Command(c) => Some(c),
                Output::Event(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_pool_clear_cancels_the_check_in_flight_and_drops_its_late_reply() {
        let (mut t, now) = rs_topology();
        let first = commands(&mut t);
        let Some(Command::SendHello { request, connection, .. }) =
            first.iter().find(|c| matches!(c, Command::SendHello { .. })).cloned()
        else {
            panic!("no check started: {first:?}");
        };
        // An operation's network error marks the server Unknown and clears its pool: the check
        // in flight is cancelled and its connection closed.
        let later = now + Duration::from_millis(100);
        t.handle(
            Input::ApplicationError(ApplicationError::new(addr("a"), ApplicationErrorKind::Network)),
            later,
        );
        let after = commands(&mut t);
        assert!(after.iter().any(|c| matches!(c, Command::ClearPool { .. })), "{after:?}");
        assert!(
            after.iter().any(|c| matches!(c, Command::CloseConnection { connection: c } if *c == connection)),
            "{after:?}"
        );
        // The cancelled exchange's late reply is dropped.
        let reply = rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21};
        t.handle(
            Input::MonitorReply {
                request,
                reply: &reply,
                round_trip_time: Duration::ZERO,
                more_to_come: false,
            },
            later,
        );
        assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
        // The server is checked again, on a new connection.
        let next = t.poll_timeout().expect("a check is scheduled");
        assert!(next > later, "no immediate hot retry");
        t.handle_timeout(next);
        let again = commands(&mut t);
        assert!(
            again.iter().any(
                |c| matches!(c, Command::SendHello { connection: c, open: Some(_), .. } if *c != connection)
            ),
            "{again:?}"
        );
    }

    #[test]
    fn rejects_forbidden_configurations() {
        let now = crate::test_instant();
        let two = TopologyConfig::with_seeds([addr("a"), addr("b")]);
        assert_eq!(Topology::new(TopologyConfig::default(), now).unwrap_err(), ConfigError::NoSeeds);
        let mut c = two.clone();
        c.direct_connection = Some(true);
        assert_eq!(Topology::new(c, now).unwrap_err(), ConfigError::DirectConnectionWithMultipleSeeds);
        let mut c = TopologyConfig::with_seeds([addr("a")]);
        c.load_balanced = true;
        c.replica_set_name = Some("rs".into());
        assert_eq!(Topology::new(c, now).unwrap_err(), ConfigError::LoadBalancedWithReplicaSet);
        let many = TopologyConfig::with_seeds((0..=MAX_SEEDS).map(|i| addr(&format!("h{i}"))));
        assert_eq!(Topology::new(many, now).unwrap_err(), ConfigError::TooManySeeds(MAX_SEEDS + 1));
        let mut c = TopologyConfig::with_seeds([addr("a")]);
        c.heartbeat_frequency = Duration::from_millis(10);
        assert!(Topology::new(c, now).unwrap_err().to_string().contains("500 ms"));
    }

    #[test]
    fn ten_thousand_seeds_are_fine() {
        let now = crate::test_instant();
        let config = TopologyConfig::with_seeds((0..MAX_SEEDS).map(|i| addr(&format!("h{i}"))));
        let mut t = Topology::new(config, now).unwrap();
        let mut openings = 0;
        while let Some(o) = t.poll_output() {
            openings += usize::from(matches!(o, Output::Event(Event::ServerOpening { .. })));
        }
        assert_eq!(openings, MAX_SEEDS);
    }

    #[test]
    fn hostile_hosts_list_marks_the_server_unknown() {
        let (mut t, now) = rs_topology();
        let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}:27017")).collect();
        let doc = bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": hosts, "maxWireVersion": 21};
        let reply = bson::RawDocumentBuf::try_from(&doc).unwrap();
        hello(&mut t, "a", &reply, now);
        let td = t.description();
        assert_eq!(td.servers.len(), 1);
        let a = td.server(&addr("a")).unwrap();
        assert_eq!(a.server_type, ServerType::Unknown);
        assert!(a.error.as_deref().unwrap().contains("\"hosts\""), "{:?}", a.error);
    }

    #[test]
    fn election_id_going_backwards_is_a_stale_primary() {
        let (mut t, now) = rs_topology();
        let eid = |n: u8| ObjectId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
        let primary = |n: u8| {
            rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"],
            "setVersion": i64::MAX, "electionId": eid(n), "maxWireVersion": 21}
        };
        hello(&mut t, "a", &primary(5), now);
        assert_eq!(t.description().topology_type, TopologyType::ReplicaSetWithPrimary);
        assert_eq!(t.description().max_set_version, Some(i64::MAX));
        hello(&mut t, "a", &primary(4), now);
        let td = t.description();
        assert_eq!(td.topology_type, TopologyType::ReplicaSetNoPrimary);
        assert_eq!(td.max_election_id, Some(eid(5)));
        let a = td.server(&addr("a")).unwrap();
        assert!(a.error.as_deref().unwrap().contains("primary marked stale"));
    }

    #[test]
    fn replies_for_unknown_servers_and_after_close_are_ignored() {
        let (mut t, now) = rs_topology();
        let before = t.description();
        hello(&mut t, "zzz", &rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs"}, now);
        assert!(Arc::ptr_eq(&before, &t.description()));
        t.handle(Input::Close, now);
        let mut last = None;
        while let Some(o) = t.poll_output() {
            last = Some(o);
        }
        assert!(matches!(last, Some(Output::Event(Event::TopologyClosed { .. }))));
        hello(&mut t, "a", &rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs"}, now);
        assert!(t.poll_output().is_none());
    }

    /// Drains outputs, returning the SendHello/ReadReply commands (request, exhaust, open).
    fn sends(t: &mut Topology) -> Vec<(RequestId, bool, bool)> {
        let mut out = Vec::new();
        while let Some(o) = t.poll_output() {
            match o {
                Output::Command(Command::SendHello { request, exhaust_allowed, open, .. }) => {
                    out.push((request, exhaust_allowed, open.is_some()));
                }
                Output::Command(Command::ReadReply { request, .. }) => out.push((request, true, false)),
                _ => {}
            }
        }
        out
    }

    fn tv(counter: i64) -> bson::Document {
        bson::doc! {"processId": ObjectId::from_bytes([7; 12]), "counter": counter}
    }

    fn reply(t: &mut Topology, request: RequestId, doc: &bson::Document, more: bool, now: Instant) {
        let raw = bson::RawDocumentBuf::try_from(doc).unwrap();
        t.handle(
            Input::MonitorReply {
                request,
                reply: &raw,
                round_trip_time: Duration::from_millis(5),
                more_to_come: more,
            },
            now,
        );
    }

    fn standalone(config: TopologyConfig) -> (Topology, Instant) {
        let now = crate::test_instant();
        (Topology::new(config, now).unwrap(), now)
    }

    #[test]
    fn polling_checks_every_heartbeat_and_never_two_at_once() {
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.server_monitoring_mode = ServerMonitoringMode::Poll;
        let (mut t, t0) = standalone(config);
        let first = sends(&mut t);
        assert_eq!(first.len(), 1, "one handshake at start");
        assert!(first[0].2, "the first check opens the connection");
        assert_eq!(t.poll_timeout(), None, "nothing is due while the check runs");
        t.handle(Input::RequestImmediateCheck, t0);
        assert!(sends(&mut t).is_empty(), "an immediate check is ignored while one runs");
        let hello =
            bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
        reply(&mut t, first[0].0, &hello, false, t0);
        assert_eq!(t.description().topology_type, TopologyType::Single);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        // An immediate request 100 ms later waits for minHeartbeatFrequencyMS.
        t.handle(Input::RequestImmediateCheck, t0 + Duration::from_millis(100));
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        t.handle_timeout(t0 + Duration::from_millis(500));
        let second = sends(&mut t);
        assert_eq!(second.len(), 1);
        assert!(!second[0].1 && !second[0].2, "a plain hello on the same connection, not awaitable");
    }

    #[test]
    fn streaming_uses_awaitable_hello_and_falls_back_when_the_server_does_not_stream() {
        let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a")]));
        let hs = sends(&mut t);
        let hello = bson::doc! {"ok": 1, "isWritablePrimary": true, "helloOk": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
        reply(&mut t, hs[0].0, &hello, false, t0);
        let next = sends(&mut t);
        assert_eq!(next.len(), 1, "streaming: the next check starts at once");
        assert!(next[0].1, "awaitable hello with exhaustAllowed");
        // RTT runs beside it, a heartbeat later.
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        // A real streaming server answers with moreToCome: keep reading.
        reply(&mut t, next[0].0, &hello, true, t0 + Duration::from_secs(1));
        let more = sends(&mut t);
        assert_eq!(more, vec![(next[0].0, true, false)], "a ReadReply for the same exchange");
        // The same reply without moreToCome: this server does not stream; poll it.
        reply(&mut t, next[0].0, &hello, false, t0 + Duration::from_secs(2));
        assert!(sends(&mut t).is_empty(), "no hot loop");
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(12)));
        t.handle_timeout(t0 + Duration::from_secs(12));
        let polled = sends(&mut t);
        assert_eq!(polled.len(), 1);
        assert!(!polled[0].1, "a plain hello: polling from now on");
    }

    #[test]
    fn network_error_on_a_known_server_retries_once_then_sleeps() {
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.server_monitoring_mode = ServerMonitoringMode::Poll;
        let (mut t, t0) = standalone(config);
        let hs = sends(&mut t);
        let hello = bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21};
        reply(&mut t, hs[0].0, &hello, false, t0);
        t.handle_timeout(t0 + Duration::from_secs(10));
        let check = sends(&mut t);
        let fail = |t: &mut Topology, r, at| {
            t.handle(
                Input::MonitorFailed { request: r, kind: FailureKind::Network, error: "reset".into() },
                at,
            );
        };
        let at = t0 + Duration::from_secs(10);
        fail(&mut t, check[0].0, at);
        assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
        let retry = sends(&mut t);
        assert_eq!(retry.len(), 1, "one immediate retry");
        assert!(retry[0].2, "on a new connection");
        fail(&mut t, retry[0].0, at);
        assert!(sends(&mut t).is_empty(), "no second immediate retry");
        assert_eq!(t.poll_timeout(), Some(at + Duration::from_secs(10)));
        // A late reply to the failed exchange is dropped.
        reply(&mut t, retry[0].0, &hello, false, at);
        assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
        assert_eq!(t.pool_generation(&addr("a")), Some(2), "the pool was cleared on each failure");
    }

    #[test]
    fn removed_servers_stop_their_monitors() {
        let mut config = TopologyConfig::with_seeds([addr("a"), addr("b")]);
        config.server_monitoring_mode = ServerMonitoringMode::Poll;
        let (mut t, t0) = standalone(config);
        let checks = sends(&mut t);
        assert_eq!(checks.len(), 2);
        let primary = bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21};
        reply(&mut t, checks[0].0, &primary, false, t0);
        let mut closed = false;
        while let Some(o) = t.poll_output() {
            closed |= matches!(o, Output::Command(Command::CloseConnection { .. }));
        }
        assert!(closed, "b's monitoring connection is closed");
        assert_eq!(t.description().servers.len(), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)), "only a's schedule remains");
    }
}
