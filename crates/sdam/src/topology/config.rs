//! How a topology is set up: [`TopologyConfig`] and the combinations the spec forbids.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::address::ServerAddress;
use crate::handshake::ClientMetadata;
use crate::monitor::{MonitorOwner, ServerMonitoringMode};
use crate::topology_description::TopologyType;
#[cfg(doc)]
use crate::{events::Command, Topology};

/// The smallest heartbeat frequency accepted (server-monitoring.md, "heartbeatFrequencyMS").
pub const MIN_HEARTBEAT_FREQUENCY: Duration = crate::monitor::MIN_HEARTBEAT_FREQUENCY;

/// The most seeds a configuration may list: far beyond any real deployment, small enough
/// that per-input work stays bounded.
pub const MAX_SEEDS: usize = 10_000;

// Every accepted seed list fits in a topology.
const _: () = assert!(MAX_SEEDS <= crate::topology_description::MAX_SERVERS);

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
    /// `connectTimeoutMS` (default 10 s), for monitoring connections: the deadline of a
    /// handshake (connect, TLS and the first hello) and of a polling hello; awaitable hellos
    /// get it plus `heartbeatFrequencyMS` (server-monitoring.md, "Socket timeout"). `None` is
    /// no limit (`connectTimeoutMS=0` in a connection string); a zero duration is not "no
    /// limit" but an immediate timeout, and [`Topology::new`] refuses it.
    pub connect_timeout: Option<Duration>,
    /// Who runs the monitors: the core (the default) or the driver, which then reports its
    /// check results by address. See [`MonitorOwner`].
    pub monitor_owner: MonitorOwner,
    /// `serverMonitoringMode` (default auto: stream unless `metadata.env` names a FaaS).
    pub server_monitoring_mode: ServerMonitoringMode,
    /// The handshake's client metadata (`appName` goes in `metadata.app_name`).
    pub metadata: ClientMetadata,
    /// `compressors` offered in the handshake.
    pub compressors: Vec<String>,
    /// The seed of the topology's random number generator (the topology id, the in-window
    /// choice, `srvMaxHosts`). `None` (the default): a seed from std's OS-seeded hash keys,
    /// different in every topology; set it to make a run reproducible (tests, simulation).
    pub rng_seed: Option<u64>,
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
            connect_timeout: Some(Duration::from_secs(10)),
            monitor_owner: MonitorOwner::Core,
            server_monitoring_mode: ServerMonitoringMode::Auto,
            metadata: ClientMetadata::default(),
            compressors: Vec::new(),
            rng_seed: None,
            srv: None,
            srv_max_hosts: 0,
            uri_options: None,
        }
    }
}

impl TopologyConfig {
    /// The deadline of a monitoring exchange started at `now`: `connectTimeoutMS`, plus
    /// `heartbeatFrequencyMS` for awaitable hellos (server-monitoring.md, "Socket timeout");
    /// no limit when `connectTimeoutMS` is 0.
    pub(crate) fn exchange_deadline(&self, now: Instant, awaited: bool) -> Option<Instant> {
        self.connect_timeout.map(|t| now + if awaited { t + self.heartbeat_frequency } else { t })
    }

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
            // connectTimeoutMS=0: no limit.
            connect_timeout: o
                .connect_timeout
                .map_or(defaults.connect_timeout, |d| (!d.is_zero()).then_some(d)),
            monitor_owner: defaults.monitor_owner,
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
        if self.connect_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroConnectTimeout);
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
    /// `connect_timeout` is `Some(0)`: no exchange could ever succeed (`None` is no limit).
    ZeroConnectTimeout,
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
            Self::ZeroConnectTimeout => f.write_str(
                "connect_timeout is zero, which would time out every check; use None for no limit",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
