//! `Display` for descriptions, events and ids, and what changed between two descriptions
//! ([`server_changes`], [`topology_changes`]): the words a log line needs beyond
//! `RSSecondary -> RSSecondary`.
//!
//! Event lines name the fields that changed with the spec's names (server-discovery-and-
//! monitoring.md, "ServerDescription" and "TopologyDescription"), e.g.
//! `server a:27017 changed: topologyVersion 3 -> 4, tags {dc:ny} -> {dc:sf}`.

use std::fmt;
use std::time::Duration;

use crate::address::ServerAddress;
use crate::events::{Event, TopologyId};
use crate::monitor::{ConnectionId, RequestId};
use crate::server_description::{ServerDescription, TopologyVersion};
use crate::topology_description::TopologyDescription;

/// One field that differs between two descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldChange {
    /// A value changed: `field before -> after` (`none` for an absent value).
    Value {
        /// The spec's name of the field (`type`, `setName`, `topologyVersion`, ...).
        field: &'static str,
        /// The value before, as displayed.
        before: String,
        /// The value after, as displayed.
        after: String,
    },
    /// Addresses joined or left a list (`hosts`, `passives`, `arbiters`, the topology's
    /// `servers`): `field +added -removed`.
    Members {
        /// The spec's name of the list.
        field: &'static str,
        /// Addresses in the new list only.
        added: Vec<ServerAddress>,
        /// Addresses in the old list only.
        removed: Vec<ServerAddress>,
    },
}

impl FieldChange {
    /// The field's name.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Value { field, .. } | Self::Members { field, .. } => field,
        }
    }
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value { field, before, after } => write!(f, "{field} {before} -> {after}"),
            Self::Members { field, added, removed } => {
                f.write_str(field)?;
                for a in added {
                    write!(f, " +{a}")?;
                }
                for r in removed {
                    write!(f, " -{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// A list of changes, displayed comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes(pub Vec<FieldChange>);

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn opt<T: fmt::Display>(v: Option<&T>) -> String {
    v.map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn value<T: PartialEq + ?Sized>(
    out: &mut Vec<FieldChange>,
    field: &'static str,
    before: &T,
    after: &T,
    show: impl Fn(&T) -> String,
) {
    if before != after {
        out.push(FieldChange::Value { field, before: show(before), after: show(after) });
    }
}

fn members(
    out: &mut Vec<FieldChange>,
    field: &'static str,
    before: &[ServerAddress],
    after: &[ServerAddress],
) {
    let added: Vec<ServerAddress> = after.iter().filter(|a| !before.contains(a)).cloned().collect();
    let removed: Vec<ServerAddress> = before.iter().filter(|a| !after.contains(a)).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        out.push(FieldChange::Members { field, added, removed });
    }
}

/// The fields of a server description that differ from `previous` to `new`: every field
/// Server Description Equality compares (server-discovery-and-monitoring.md, "Server
/// Description Equality"), plus `serviceId`. Round-trip times are not listed (they change on
/// every heartbeat and do not publish events). A `topologyVersion` within one process shows
/// its counters only (`topologyVersion 3 -> 4`).
pub fn server_changes(previous: &ServerDescription, new: &ServerDescription) -> Changes {
    let (p, n) = (previous, new);
    let mut out = Vec::new();
    value(&mut out, "type", &p.server_type, &n.server_type, ToString::to_string);
    value(&mut out, "setName", &p.set_name, &n.set_name, |v| opt(v.as_ref()));
    value(&mut out, "primary", &p.primary, &n.primary, |v| opt(v.as_ref()));
    value(&mut out, "me", &p.me, &n.me, |v| opt(v.as_ref()));
    value(&mut out, "setVersion", &p.set_version, &n.set_version, |v| opt(v.as_ref()));
    value(&mut out, "electionId", &p.election_id, &n.election_id, |v| opt(v.as_ref()));
    if p.topology_version != n.topology_version {
        let (before, after) = match (&p.topology_version, &n.topology_version) {
            (Some(a), Some(b)) if a.process_id == b.process_id => {
                (a.counter.to_string(), b.counter.to_string())
            }
            (a, b) => (opt(a.as_ref()), opt(b.as_ref())),
        };
        out.push(FieldChange::Value { field: "topologyVersion", before, after });
    }
    members(&mut out, "hosts", &p.hosts, &n.hosts);
    members(&mut out, "passives", &p.passives, &n.passives);
    members(&mut out, "arbiters", &p.arbiters, &n.arbiters);
    value(&mut out, "tags", &p.tags, &n.tags, ToString::to_string);
    value(&mut out, "minWireVersion", &p.min_wire_version, &n.min_wire_version, ToString::to_string);
    value(&mut out, "maxWireVersion", &p.max_wire_version, &n.max_wire_version, ToString::to_string);
    value(
        &mut out,
        "logicalSessionTimeoutMinutes",
        &p.logical_session_timeout_minutes,
        &n.logical_session_timeout_minutes,
        |v| opt(v.as_ref()),
    );
    value(&mut out, "iscryptd", &p.iscryptd, &n.iscryptd, ToString::to_string);
    value(&mut out, "serviceId", &p.service_id, &n.service_id, |v| opt(v.as_ref()));
    value(&mut out, "error", &p.error, &n.error, |v| opt(v.as_ref()));
    Changes(out)
}

/// The fields of a topology description that differ from `previous` to `new`, with the
/// servers that joined or left (`servers +c:27017`) and, per server whose type changed,
/// `a:27017 RSSecondary -> RSPrimary` (field `servers`).
pub fn topology_changes(previous: &TopologyDescription, new: &TopologyDescription) -> Changes {
    let (p, n) = (previous, new);
    let mut out = Vec::new();
    value(&mut out, "topologyType", &p.topology_type, &n.topology_type, ToString::to_string);
    value(&mut out, "setName", &p.set_name, &n.set_name, |v| opt(v.as_ref()));
    value(&mut out, "maxSetVersion", &p.max_set_version, &n.max_set_version, |v| opt(v.as_ref()));
    value(&mut out, "maxElectionId", &p.max_election_id, &n.max_election_id, |v| opt(v.as_ref()));
    let before: Vec<ServerAddress> = p.servers.iter().map(|sd| sd.address.clone()).collect();
    let after: Vec<ServerAddress> = n.servers.iter().map(|sd| sd.address.clone()).collect();
    members(&mut out, "servers", &before, &after);
    for sd in n.servers.iter() {
        if let Some(old) = p.server(&sd.address) {
            if old.server_type != sd.server_type {
                out.push(FieldChange::Value {
                    field: "servers",
                    before: format!("{} {}", sd.address, old.server_type),
                    after: sd.server_type.to_string(),
                });
            }
        }
    }
    value(
        &mut out,
        "compatibilityError",
        &p.compatibility_error,
        &n.compatibility_error,
        |v| opt(v.as_ref()),
    );
    value(
        &mut out,
        "logicalSessionTimeoutMinutes",
        &p.logical_session_timeout_minutes,
        &n.logical_session_timeout_minutes,
        |v| opt(v.as_ref()),
    );
    value(&mut out, "srvError", &p.srv_error, &n.srv_error, |v| opt(v.as_ref()));
    value(&mut out, "heartbeatFrequencyMS", &p.heartbeat_frequency, &n.heartbeat_frequency, |d| millis(*d));
    value(&mut out, "localThresholdMS", &p.local_threshold, &n.local_threshold, |d| millis(*d));
    Changes(out)
}

/// Milliseconds with up to three decimals ("5", "12.5").
fn millis(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64() * 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl fmt::Display for TopologyId {
    /// The id's hexadecimal ObjectId.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

impl fmt::Display for ConnectionId {
    /// The connection's number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for RequestId {
    /// The exchange's number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for TopologyVersion {
    /// `processId:counter`, the process id in hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.process_id.to_hex(), self.counter)
    }
}

impl fmt::Display for ServerDescription {
    /// `address type` and what is known: `a:27017 RSSecondary (setName rs0, rtt 5 ms,
    /// tags {dc:ny}, primary b:27017)`, or `a:27017 Unknown (error: connection refused)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.address, self.server_type)?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(name) = &self.set_name {
            parts.push(format!("setName {name}"));
        }
        if let Some(rtt) = self.round_trip_time {
            parts.push(format!("rtt {} ms", millis(rtt)));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags {}", self.tags));
        }
        if let Some(primary) = &self.primary {
            if primary != &self.address {
                parts.push(format!("primary {primary}"));
            }
        }
        if let Some(me) = &self.me {
            if me != &self.address {
                parts.push(format!("me {me}"));
            }
        }
        if let Some(e) = &self.error {
            parts.push(format!("error: {e}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for TopologyDescription {
    /// The compact form of server selection log messages
    /// ([`describe_topology`](crate::selection::describe_topology)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::selection::describe_topology(self))
    }
}

impl Event {
    /// The event's name as the SDAM monitoring spec spells it (`ServerDescriptionChangedEvent`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::TopologyOpening { .. } => "TopologyOpeningEvent",
            Self::TopologyDescriptionChanged { .. } => "TopologyDescriptionChangedEvent",
            Self::ServerOpening { .. } => "ServerOpeningEvent",
            Self::ServerDescriptionChanged { .. } => "ServerDescriptionChangedEvent",
            Self::ServerClosed { .. } => "ServerClosedEvent",
            Self::TopologyClosed { .. } => "TopologyClosedEvent",
            Self::ServerHeartbeatStarted { .. } => "ServerHeartbeatStartedEvent",
            Self::ServerHeartbeatSucceeded { .. } => "ServerHeartbeatSucceededEvent",
            Self::ServerHeartbeatFailed { .. } => "ServerHeartbeatFailedEvent",
        }
    }
}

impl fmt::Display for Event {
    /// One line for a log: what happened and, for description changes, which fields
    /// changed ([`server_changes`], [`topology_changes`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TopologyOpening { topology_id } => write!(f, "topology {topology_id} opening"),
            Self::TopologyDescriptionChanged { previous, new, .. } => {
                let changes = topology_changes(previous, new);
                if changes.0.is_empty() {
                    write!(f, "topology {} changed (server details)", new.topology_type)
                } else {
                    write!(f, "topology changed: {changes}")
                }
            }
            Self::ServerOpening { address, .. } => write!(f, "server {address} opening"),
            Self::ServerDescriptionChanged { address, previous, new, .. } => {
                let changes = server_changes(previous, new);
                if changes.0.is_empty() {
                    write!(f, "server {address} {} changed", new.server_type)
                } else {
                    write!(f, "server {address} changed: {changes}")
                }
            }
            Self::ServerClosed { address, .. } => write!(f, "server {address} closed"),
            Self::TopologyClosed { topology_id } => write!(f, "topology {topology_id} closed"),
            Self::ServerHeartbeatStarted { address, connection_id, awaited } => {
                write!(f, "heartbeat started {address} on connection {connection_id}")?;
                if *awaited {
                    f.write_str(" (awaited)")?;
                }
                Ok(())
            }
            Self::ServerHeartbeatSucceeded { address, duration, awaited, .. } => {
                write!(f, "heartbeat succeeded {address} in {} ms", millis(*duration))?;
                if *awaited {
                    f.write_str(" (awaited)")?;
                }
                Ok(())
            }
            Self::ServerHeartbeatFailed { address, duration, failure, awaited, .. } => {
                write!(f, "heartbeat failed {address} after {} ms", millis(*duration))?;
                if *awaited {
                    f.write_str(" (awaited)")?;
                }
                write!(f, ": {failure}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bson::oid::ObjectId;

    use super::*;
    use crate::{ServerType, Tags, TopologyType};

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn secondary(tags: &[(&str, &str)], counter: i64) -> ServerDescription {
        let mut sd = ServerDescription::unknown(addr("a"));
        sd.server_type = ServerType::RSSecondary;
        sd.set_name = Some("rs0".into());
        sd.tags = Tags::new(tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        sd.topology_version = Some(TopologyVersion { process_id: ObjectId::from_bytes([1; 12]), counter });
        sd.hosts = vec![addr("a"), addr("b")].into();
        sd
    }

    #[test]
    fn a_change_within_one_type_names_its_fields() {
        let previous = secondary(&[("dc", "ny")], 3);
        let mut new = secondary(&[("dc", "sf")], 4);
        new.hosts = vec![addr("a"), addr("c")].into();
        let event = Event::ServerDescriptionChanged {
            topology_id: TopologyId(ObjectId::from_bytes([0; 12])),
            address: addr("a"),
            previous: Arc::new(previous),
            new: Arc::new(new),
        };
        assert_eq!(
            event.to_string(),
            "server a:27017 changed: topologyVersion 3 -> 4, hosts +c:27017 -b:27017, tags {dc:ny} -> {dc:sf}"
        );
    }

    #[test]
    fn types_errors_and_processes_are_named() {
        let mut new = secondary(&[], 1);
        new.topology_version =
            Some(TopologyVersion { process_id: ObjectId::from_bytes([2; 12]), counter: 1 });
        let old = ServerDescription::unknown_with_error(addr("a"), "refused");
        let changes = server_changes(&old, &new).to_string();
        assert!(
            changes.starts_with("type Unknown -> RSSecondary, setName none -> rs0, topologyVersion none -> ")
        );
        assert!(changes.ends_with("error refused -> none"), "{changes}");
        assert_eq!(server_changes(&new, &new), Changes::default());
        assert_eq!(server_changes(&old, &new).0[0].field(), "type");
    }

    #[test]
    fn topology_changes_list_servers_and_types() {
        let mut before = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        before.set_name = Some("rs0".into());
        before.insert_server(secondary(&[], 1));
        before.insert_server(ServerDescription::unknown(addr("b")));
        let mut after = before.clone();
        after.topology_type = TopologyType::ReplicaSetWithPrimary;
        let mut primary = secondary(&[], 1);
        primary.server_type = ServerType::RSPrimary;
        after.insert_server(primary);
        after.servers.remove(&addr("b"));
        after.insert_server(ServerDescription::unknown(addr("c")));
        assert_eq!(
            topology_changes(&before, &after).to_string(),
            "topologyType ReplicaSetNoPrimary -> ReplicaSetWithPrimary, servers +c:27017 -b:27017, \
             servers a:27017 RSSecondary -> RSPrimary"
        );
        let rendered = after.to_string();
        assert!(rendered.starts_with("{type: ReplicaSetWithPrimary, setName: rs0"), "{rendered}");
    }

    #[test]
    fn descriptions_events_and_ids_display() {
        let mut sd = secondary(&[("dc", "ny")], 1);
        sd.round_trip_time = Some(Duration::from_micros(5_500));
        sd.primary = Some(addr("b"));
        assert_eq!(
            sd.to_string(),
            "a:27017 RSSecondary (setName rs0, rtt 5.5 ms, tags {dc:ny}, primary b:27017)"
        );
        assert_eq!(
            ServerDescription::unknown_with_error(addr("x"), "refused").to_string(),
            "x:27017 Unknown (error: refused)"
        );
        let id = TopologyId(ObjectId::from_bytes([0xab; 12]));
        assert_eq!(id.to_string(), "abababababababababababab");
        assert_eq!(ConnectionId(7).to_string(), "7");
        assert_eq!(RequestId(9).to_string(), "9");
        assert_eq!(Event::TopologyOpening { topology_id: id }.to_string(), format!("topology {id} opening"));
        let failed = Event::ServerHeartbeatFailed {
            address: addr("a"),
            connection_id: ConnectionId(1),
            duration: Duration::from_millis(12),
            failure: "reset".into(),
            awaited: true,
        };
        assert_eq!(failed.to_string(), "heartbeat failed a:27017 after 12 ms (awaited): reset");
        let started = Event::ServerHeartbeatStarted {
            address: addr("a"),
            connection_id: ConnectionId(1),
            awaited: false,
        };
        assert_eq!(started.to_string(), "heartbeat started a:27017 on connection 1");
    }
}
