//! What the client knows about the whole deployment (server-discovery-and-monitoring.md,
//! "TopologyDescription").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;

use crate::address::ServerAddress;
use crate::server_description::ServerDescription;

pub use crate::server_map::{Iter as ServerIter, ServerMap};

/// The kind of deployment (server-discovery-and-monitoring.md, "TopologyType").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TopologyType {
    /// Not known yet.
    #[default]
    Unknown,
    /// One server, connected to directly.
    Single,
    /// A replica set whose primary is not known.
    ReplicaSetNoPrimary,
    /// A replica set with a known primary.
    ReplicaSetWithPrimary,
    /// One or more mongoses.
    Sharded,
    /// A load balancer in front of mongoses.
    LoadBalanced,
}

impl TopologyType {
    /// The spec's name of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Single => "Single",
            Self::ReplicaSetNoPrimary => "ReplicaSetNoPrimary",
            Self::ReplicaSetWithPrimary => "ReplicaSetWithPrimary",
            Self::Sharded => "Sharded",
            Self::LoadBalanced => "LoadBalanced",
        }
    }

    /// Parses a spec name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Unknown" => Self::Unknown,
            "Single" => Self::Single,
            "ReplicaSetNoPrimary" => Self::ReplicaSetNoPrimary,
            "ReplicaSetWithPrimary" => Self::ReplicaSetWithPrimary,
            "Sharded" => Self::Sharded,
            "LoadBalanced" => Self::LoadBalanced,
            _ => return None,
        })
    }

    /// Whether this is one of the two replica set types.
    pub fn is_replica_set(self) -> bool {
        matches!(self, Self::ReplicaSetNoPrimary | Self::ReplicaSetWithPrimary)
    }
}

impl fmt::Display for TopologyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An immutable snapshot of the deployment as the client sees it.
///
/// [`crate::Topology`] publishes one behind an `Arc` after every change; hold it as long as
/// you like, it never changes under you.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopologyDescription {
    /// The topology type.
    pub topology_type: TopologyType,
    /// The replica set name, given or discovered.
    pub set_name: Option<Arc<str>>,
    /// The largest electionId reported by a primary (part of the (electionId, setVersion) tuple).
    pub max_election_id: Option<ObjectId>,
    /// The largest setVersion reported by a primary, as ordered with electionId.
    pub max_set_version: Option<i64>,
    /// The servers.
    pub servers: ServerMap,
    /// Why the topology is incompatible with this client's wire versions; `None` if compatible.
    pub compatibility_error: Option<String>,
    /// The smallest `logicalSessionTimeoutMinutes` among data-bearing servers (null if any is null).
    pub logical_session_timeout_minutes: Option<i64>,
    /// heartbeatFrequencyMS: selection uses it to estimate staleness.
    pub heartbeat_frequency: Duration,
    /// localThresholdMS: the width of the latency window.
    pub local_threshold: Duration,
    /// For `mongodb+srv`: why the seed list is not known yet, i.e. the last failure of initial
    /// DNS seedlist discovery (a failed or timed-out SRV or TXT lookup, or answers that fail
    /// validation). The topology has no servers meanwhile and keeps retrying; a server
    /// selection that times out quotes this. `None` once the seed list is resolved, and for
    /// `mongodb://` topologies. Failures of later SRV rescans never show here (they must not
    /// change the topology).
    pub srv_error: Option<String>,
}

impl TopologyDescription {
    /// An empty description of the given type with default settings.
    pub fn new(topology_type: TopologyType) -> Self {
        Self {
            topology_type,
            set_name: None,
            max_election_id: None,
            max_set_version: None,
            servers: ServerMap::default(),
            compatibility_error: None,
            logical_session_timeout_minutes: None,
            heartbeat_frequency: Duration::from_secs(10),
            local_threshold: Duration::from_millis(15),
            srv_error: None,
        }
    }

    /// Whether every known server's wire version range overlaps this client's.
    pub fn is_compatible(&self) -> bool {
        self.compatibility_error.is_none()
    }

    /// The description of the server at `address`.
    pub fn server(&self, address: &ServerAddress) -> Option<&Arc<ServerDescription>> {
        self.servers.get(address)
    }

    /// The primary, if one is known.
    pub fn primary(&self) -> Option<&Arc<ServerDescription>> {
        self.servers.primary()
    }

    /// Whether a server of a data-bearing type is known (handy for "is the deployment up?").
    pub fn has_data_bearing_server(&self) -> bool {
        self.servers.has_data_bearing()
    }

    /// Inserts or replaces a server description (for tests and tools that build a
    /// description by hand; the topology's update rules are not applied).
    pub fn insert_server(&mut self, sd: ServerDescription) {
        self.servers.insert(Arc::new(sd));
    }
}
