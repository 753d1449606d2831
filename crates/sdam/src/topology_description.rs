//! What the client knows about the whole deployment (server-discovery-and-monitoring.md,
//! "TopologyDescription").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;

use crate::address::ServerAddress;
use crate::server_description::ServerDescription;

pub use crate::server_map::{Iter as ServerIter, ServerMap};

/// The most servers a topology holds. Each reply may list at most
/// [`MAX_REPORTED_MEMBERS`](crate::hello::MAX_REPORTED_MEMBERS) members, but replies of
/// members that no primary contradicts add up (a secondary whose every reply names 1,023 new
/// hosts grew a topology to 20,460 servers in 10 s), and so do SRV rescans. Once a topology
/// holds this many servers, discovery adds no more: the hosts beyond it are treated as if
/// they had not been reported, and [`TopologyDescription::server_limit_error`] says how many
/// were left out and who reported them. A primary's member list is applied after removing the
/// servers it does not list, so it always fits. Equal to
/// [`MAX_SEEDS`](crate::topology::MAX_SEEDS): any accepted seed list fits.
pub const MAX_SERVERS: usize = 10_000;

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

/// Why `mongodb+srv` seed list discovery failed ([`TopologyDescription::srv_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrvError {
    /// A lookup failed or timed out, or the SRV lookup returned no record: DNS may answer
    /// differently later, so discovery is retried (with backoff, up to heartbeatFrequencyMS).
    Transient(String),
    /// The DNS answers break a rule of initial-dns-seedlist-discovery.md that "MUST raise an
    /// error" (a record outside the parent domain or not a valid address, more than one TXT
    /// record, a TXT option other than `authSource`, `replicaSet` and `loadBalanced`, options
    /// that conflict once merged, more records than accepted). Discovery stops for good; no
    /// host is contacted, and server selection fails at once with this error.
    Permanent(String),
}

impl SrvError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Self::Transient(m) | Self::Permanent(m) => m,
        }
    }

    /// Whether the error is [`SrvError::Permanent`].
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

impl fmt::Display for SrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
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
    /// For `mongodb+srv`: why the seed list is not known, i.e. the last failure of initial
    /// DNS seedlist discovery. A [`SrvError::Transient`] one (a failed or timed-out SRV or TXT
    /// lookup, or no SRV record) is retried, and a selection that times out quotes it; a
    /// [`SrvError::Permanent`] one (answers the seedlist spec says MUST be raised: a record
    /// outside the parent domain, two TXT records, a TXT option that is not allowed, options
    /// that conflict once merged) is never retried, and every selection fails with it at once.
    /// The topology has no servers meanwhile. `None` once the seed list is resolved, and for
    /// `mongodb://` topologies. Failures of later SRV rescans never show here (they must not
    /// change the topology).
    pub srv_error: Option<SrvError>,
    /// Why reported hosts are missing from the topology: the last update that left hosts out
    /// because the topology holds [`MAX_SERVERS`] servers names how many and who reported
    /// them. `None` while the topology has room (it is cleared by the first update after it
    /// drops below the limit).
    pub server_limit_error: Option<String>,
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
            server_limit_error: None,
        }
    }

    /// Whether every field but `servers` is equal (what `==` compares besides the servers).
    pub(crate) fn same_apart_from_servers(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be forgotten here.
        let Self {
            topology_type,
            set_name,
            max_election_id,
            max_set_version,
            servers: _,
            compatibility_error,
            logical_session_timeout_minutes,
            heartbeat_frequency,
            local_threshold,
            srv_error,
            server_limit_error,
        } = self;
        *topology_type == other.topology_type
            && *set_name == other.set_name
            && *max_election_id == other.max_election_id
            && *max_set_version == other.max_set_version
            && *compatibility_error == other.compatibility_error
            && *logical_session_timeout_minutes == other.logical_session_timeout_minutes
            && *heartbeat_frequency == other.heartbeat_frequency
            && *local_threshold == other.local_threshold
            && *srv_error == other.srv_error
            && *server_limit_error == other.server_limit_error
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `same_apart_from_servers` agrees with `==` on descriptions with the same servers, for
    /// a change of each field.
    #[test]
    fn same_apart_from_servers_agrees_with_eq() {
        let mut base = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
        base.insert_server(ServerDescription::unknown(ServerAddress::parse("a").unwrap()));
        let changes: [fn(&mut TopologyDescription); 10] = [
            |td| td.topology_type = TopologyType::ReplicaSetNoPrimary,
            |td| td.set_name = Some("rs".into()),
            |td| td.max_election_id = Some(ObjectId::from_bytes([1; 12])),
            |td| td.max_set_version = Some(2),
            |td| td.compatibility_error = Some("old".into()),
            |td| td.logical_session_timeout_minutes = Some(30),
            |td| td.heartbeat_frequency = Duration::from_secs(1),
            |td| td.local_threshold = Duration::from_millis(1),
            |td| td.srv_error = Some(SrvError::Transient("no answer".into())),
            |td| td.server_limit_error = Some("full".into()),
        ];
        assert!(base.same_apart_from_servers(&base.clone()));
        for (i, change) in changes.iter().enumerate() {
            let mut other = base.clone();
            change(&mut other);
            assert_ne!(base, other, "change {i}");
            assert!(!base.same_apart_from_servers(&other), "change {i}");
        }
    }
}
