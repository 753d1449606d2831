//! `serde` support (feature `serde`) for the core's public data: addresses, server and
//! topology types, read preference modes, tags and tag sets (both ways), and server and
//! topology descriptions, SDAM events, selection explanations and selection log events
//! (serialized).
//!
//! # Representation
//!
//! - Field names are the specs' camelCase names: `topologyType`, `setName`, `maxSetVersion`,
//!   `roundTripTime`, `topologyVersion`, ... (server-discovery-and-monitoring.md,
//!   "ServerDescription", "TopologyDescription"; the events' `previousDescription` and
//!   `newDescription` as in server-discovery-and-monitoring-logging-and-monitoring.md and the
//!   monitoring JSON tests). A server's type is `type`, as in the JSON tests.
//! - Absent values are `null`, not left out.
//! - **Durations are milliseconds**, a number: an integer when whole, else a float with the
//!   microseconds (`roundTripTime: 12.5`). Durations without a spec field name carry the
//!   unit in their name as the URI options do (`heartbeatFrequencyMS`, `localThresholdMS`).
//! - **Addresses are strings** in their normalized form, `host:port` (`[::1]:27017` for IPv6,
//!   the path for a Unix socket), as in the JSON tests.
//! - ObjectIds, dates and timestamps are bson's extended JSON (`{"$oid": "..."}`), as the JSON
//!   tests write `electionId`; a heartbeat's `reply` is the reply document.
//! - Instants (`lastUpdateTime`) are not serialized: a monotonic instant means nothing
//!   outside the process.
//! - Events are objects with an `event` field naming the spec's event
//!   (`"ServerDescriptionChangedEvent"`) beside the event's fields.
//!
//! Types read back ([`Deserialize`]): [`ServerAddress`], [`ServerType`], [`TopologyType`],
//! [`ReadPreferenceMode`], [`ServerMonitoringMode`], [`Tags`], [`TagSet`]. Descriptions and
//! events are output only: the core builds them from hello replies.
//!
//! The SDAM and server selection log messages of the logging module are to follow the same
//! rules once they exist.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::ServerAddress;
use crate::events::{Event, TopologyId};
use crate::monitor::{ConnectionId, RequestId, ServerMonitoringMode};
use crate::read_preference::{ReadPreference, ReadPreferenceMode, TagSet};
use crate::selection::{
    Explanation, Rejection, SelectionLogEvent, SelectionLogKind, ServerExplanation, Verdict,
};
use crate::server_description::{AddressList, OpTime, ServerDescription, ServerType, Tags, TopologyVersion};
use crate::topology_description::{ServerMap, TopologyDescription, TopologyType};

/// A duration in milliseconds: an integer when whole, else a float.
struct Millis(Duration);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let micros = self.0.as_micros();
        if micros.is_multiple_of(1000) {
            s.serialize_u64(u64::try_from(micros / 1000).unwrap_or(u64::MAX))
        } else {
            s.serialize_f64(self.0.as_secs_f64() * 1000.0)
        }
    }
}

fn millis(d: Option<Duration>) -> Option<Millis> {
    d.map(Millis)
}

/// Displays with `Display` (for values serialized as strings).
struct AsStr<T>(T);

impl<T: fmt::Display> Serialize for AsStr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

fn string_visitor<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(&str) -> Result<T, String>);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}

macro_rules! by_name {
    ($ty:ty, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                string_visitor(d, $expecting, |s| s.parse::<$ty>().map_err(|e| e.to_string()))
            }
        }
    };
}

by_name!(ServerType, "a server type name such as \"RSPrimary\"");
by_name!(TopologyType, "a topology type name such as \"ReplicaSetWithPrimary\"");
by_name!(ReadPreferenceMode, "a read preference mode such as \"secondaryPreferred\"");
by_name!(ServerMonitoringMode, "a server monitoring mode: auto, stream or poll");

impl Serialize for ServerAddress {
    /// The normalized `host:port` (or socket path).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerAddress {
    /// Any form [`ServerAddress::parse`] accepts.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_visitor(d, "a server address such as \"db1.example.com:27017\"", |s| {
            Self::parse(s).map_err(|e| e.to_string())
        })
    }
}

fn string_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of tag names to string values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
    }
    d.deserialize_map(V)
}

fn serialize_pairs<'a, S: Serializer>(
    s: S,
    pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl Serialize for Tags {
    /// A map of tag names to values, sorted by name.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&str, &str)> = self.iter().collect();
        serialize_pairs(s, pairs.into_iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_pairs(d).map(Self::new)
    }
}

impl Serialize for TagSet {
    /// A map of tag names to values, in the set's order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_pairs(s, self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl<'de> Deserialize<'de> for TagSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_pairs(d).map(Self)
    }
}

impl Serialize for ReadPreference {
    /// `{mode, tagSets, maxStalenessSeconds, hedge}` (server-selection.md, "Components of a
    /// read preference"), absent components as `null`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("mode", &self.mode())?;
        m.serialize_entry("tagSets", self.tag_sets())?;
        m.serialize_entry("maxStalenessSeconds", &self.max_staleness().map(|d| d.as_secs()))?;
        m.serialize_entry("hedge", &self.hedge())?;
        m.end()
    }
}

impl Serialize for AddressList {
    /// The addresses, sorted.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for a in self.iter() {
            seq.serialize_element(a)?;
        }
        seq.end()
    }
}

impl Serialize for TopologyVersion {
    /// `{processId, counter}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("processId", &self.process_id)?;
        m.serialize_entry("counter", &self.counter)?;
        m.end()
    }
}

impl Serialize for OpTime {
    /// `{ts, t}`, as in `lastWrite.opTime`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("t", &self.t)?;
        m.end()
    }
}

impl Serialize for ServerDescription {
    /// Every field but `lastUpdateTime` (see the [module docs](self)).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Destructured, so a new field cannot be forgotten here.
        let Self {
            address,
            server_type,
            error,
            round_trip_time,
            min_round_trip_time,
            last_write_date,
            op_time,
            last_update_time: _,
            min_wire_version,
            max_wire_version,
            me,
            hosts,
            passives,
            arbiters,
            tags,
            set_name,
            set_version,
            election_id,
            primary,
            logical_session_timeout_minutes,
            topology_version,
            iscryptd,
            hello_ok,
            service_id,
            max_bson_object_size,
            max_message_size_bytes,
            max_write_batch_size,
            compression,
            connection_id,
        } = self;
        let mut m = s.serialize_map(Some(28))?;
        m.serialize_entry("address", address)?;
        m.serialize_entry("type", server_type)?;
        m.serialize_entry("error", &error.as_deref())?;
        m.serialize_entry("roundTripTime", &millis(*round_trip_time))?;
        m.serialize_entry("minRoundTripTime", &millis(*min_round_trip_time))?;
        m.serialize_entry("lastWriteDate", last_write_date)?;
        m.serialize_entry("opTime", op_time)?;
        m.serialize_entry("minWireVersion", min_wire_version)?;
        m.serialize_entry("maxWireVersion", max_wire_version)?;
        m.serialize_entry("me", me)?;
        m.serialize_entry("hosts", hosts)?;
        m.serialize_entry("passives", passives)?;
        m.serialize_entry("arbiters", arbiters)?;
        m.serialize_entry("tags", tags)?;
        m.serialize_entry("setName", &set_name.as_deref())?;
        m.serialize_entry("setVersion", set_version)?;
        m.serialize_entry("electionId", election_id)?;
        m.serialize_entry("primary", primary)?;
        m.serialize_entry("logicalSessionTimeoutMinutes", logical_session_timeout_minutes)?;
        m.serialize_entry("topologyVersion", topology_version)?;
        m.serialize_entry("iscryptd", iscryptd)?;
        m.serialize_entry("helloOk", hello_ok)?;
        m.serialize_entry("serviceId", service_id)?;
        m.serialize_entry("maxBsonObjectSize", max_bson_object_size)?;
        m.serialize_entry("maxMessageSizeBytes", max_message_size_bytes)?;
        m.serialize_entry("maxWriteBatchSize", max_write_batch_size)?;
        m.serialize_entry("compression", compression)?;
        m.serialize_entry("connectionId", connection_id)?;
        m.end()
    }
}

impl Serialize for ServerMap {
    /// The servers' descriptions, in address order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for sd in self.iter() {
            seq.serialize_element(sd.as_ref())?;
        }
        seq.end()
    }
}

impl Serialize for TopologyDescription {
    /// `topologyType`, `setName`, `maxElectionId`, `maxSetVersion`, `servers` (a list),
    /// `compatibilityError`, `logicalSessionTimeoutMinutes`, `heartbeatFrequencyMS`,
    /// `localThresholdMS`, `srvError` (the message), `srvErrorPermanent` (whether it is a
    /// [`SrvError::Permanent`](crate::SrvError::Permanent)), `serverLimitError`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self {
            topology_type,
            set_name,
            max_election_id,
            max_set_version,
            servers,
            compatibility_error,
            logical_session_timeout_minutes,
            heartbeat_frequency,
            local_threshold,
            srv_error,
            server_limit_error,
        } = self;
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("topologyType", topology_type)?;
        m.serialize_entry("setName", &set_name.as_deref())?;
        m.serialize_entry("maxElectionId", max_election_id)?;
        m.serialize_entry("maxSetVersion", max_set_version)?;
        m.serialize_entry("servers", servers)?;
        m.serialize_entry("compatibilityError", compatibility_error)?;
        m.serialize_entry("logicalSessionTimeoutMinutes", logical_session_timeout_minutes)?;
        m.serialize_entry("heartbeatFrequencyMS", &Millis(*heartbeat_frequency))?;
        m.serialize_entry("localThresholdMS", &Millis(*local_threshold))?;
        m.serialize_entry("srvError", &srv_error.as_ref().map(crate::SrvError::message))?;
        m.serialize_entry(
            "srvErrorPermanent",
            &srv_error.as_ref().is_some_and(crate::SrvError::is_permanent),
        )?;
        m.serialize_entry("serverLimitError", server_limit_error)?;
        m.end()
    }
}

impl Serialize for TopologyId {
    /// The ObjectId, as extended JSON.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Serialize for ConnectionId {
    /// The number.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for RequestId {
    /// The number.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for Event {
    /// `{event: "<name>", ...fields}`: `topologyId`, `address`, `previousDescription`,
    /// `newDescription`, `connectionId`, `duration` (ms), `reply`, `failure`, `awaited`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("event", self.name())?;
        match self {
            Self::TopologyOpening { topology_id } | Self::TopologyClosed { topology_id } => {
                m.serialize_entry("topologyId", topology_id)?;
            }
            Self::TopologyDescriptionChanged { topology_id, previous, new } => {
                m.serialize_entry("topologyId", topology_id)?;
                m.serialize_entry("previousDescription", previous.as_ref())?;
                m.serialize_entry("newDescription", new.as_ref())?;
            }
            Self::ServerOpening { topology_id, address } | Self::ServerClosed { topology_id, address } => {
                m.serialize_entry("topologyId", topology_id)?;
                m.serialize_entry("address", address)?;
            }
            Self::ServerDescriptionChanged { topology_id, address, previous, new } => {
                m.serialize_entry("topologyId", topology_id)?;
                m.serialize_entry("address", address)?;
                m.serialize_entry("previousDescription", previous.as_ref())?;
                m.serialize_entry("newDescription", new.as_ref())?;
            }
            Self::ServerHeartbeatStarted { address, connection_id, awaited } => {
                m.serialize_entry("address", address)?;
                m.serialize_entry("connectionId", connection_id)?;
                m.serialize_entry("awaited", awaited)?;
            }
            Self::ServerHeartbeatSucceeded { address, connection_id, duration, reply, awaited } => {
                m.serialize_entry("address", address)?;
                m.serialize_entry("connectionId", connection_id)?;
                m.serialize_entry("duration", &Millis(*duration))?;
                m.serialize_entry("reply", reply)?;
                m.serialize_entry("awaited", awaited)?;
            }
            Self::ServerHeartbeatFailed { address, connection_id, duration, failure, awaited } => {
                m.serialize_entry("address", address)?;
                m.serialize_entry("connectionId", connection_id)?;
                m.serialize_entry("duration", &Millis(*duration))?;
                m.serialize_entry("failure", failure)?;
                m.serialize_entry("awaited", awaited)?;
            }
        }
        m.end()
    }
}

impl Serialize for Rejection {
    /// `{reason: "<camelCase variant>", ...its fields, message: "<Display>"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Self::Unknown => m.serialize_entry("reason", "unknown")?,
            Self::WrongType { server_type, rule } => {
                m.serialize_entry("reason", "wrongType")?;
                m.serialize_entry("serverType", server_type)?;
                m.serialize_entry("rule", rule)?;
            }
            Self::Stale { staleness, max_staleness } => {
                m.serialize_entry("reason", "stale")?;
                m.serialize_entry("stalenessMS", &Millis(*staleness))?;
                m.serialize_entry("maxStalenessSeconds", &max_staleness.as_secs())?;
            }
            Self::StalenessUnknown => m.serialize_entry("reason", "stalenessUnknown")?,
            Self::NoTagSetMatched { used_tag_set, tag_set } => {
                m.serialize_entry("reason", "noTagSetMatched")?;
                m.serialize_entry("usedTagSet", used_tag_set)?;
                m.serialize_entry("tagSet", tag_set)?;
            }
            Self::OutsideLatencyWindow { round_trip_time, fastest, local_threshold } => {
                m.serialize_entry("reason", "outsideLatencyWindow")?;
                m.serialize_entry("roundTripTime", &Millis(*round_trip_time))?;
                m.serialize_entry("fastestRoundTripTime", &Millis(*fastest))?;
                m.serialize_entry("localThresholdMS", &Millis(*local_threshold))?;
            }
            Self::Deprioritized => m.serialize_entry("reason", "deprioritized")?,
            Self::IncompatibleWireVersion { min_wire_version, max_wire_version } => {
                m.serialize_entry("reason", "incompatibleWireVersion")?;
                m.serialize_entry("minWireVersion", min_wire_version)?;
                m.serialize_entry("maxWireVersion", max_wire_version)?;
            }
            Self::TopologyIncompatible => m.serialize_entry("reason", "topologyIncompatible")?,
            Self::InvalidReadPreference => m.serialize_entry("reason", "invalidReadPreference")?,
            Self::RejectedBySelector => m.serialize_entry("reason", "rejectedBySelector")?,
        }
        m.serialize_entry("message", &AsStr(self))?;
        m.end()
    }
}

impl Serialize for ServerExplanation {
    /// `{address, type, roundTripTime, verdict: "selected" | "inWindow" | "rejected",
    /// rejection, lastError}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self { address, server_type, round_trip_time, verdict, last_error } = self;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("address", address)?;
        m.serialize_entry("type", server_type)?;
        m.serialize_entry("roundTripTime", &millis(*round_trip_time))?;
        let (name, rejection) = match verdict {
            Verdict::Selected => ("selected", None),
            Verdict::InWindow => ("inWindow", None),
            Verdict::Rejected(r) => ("rejected", Some(r)),
        };
        m.serialize_entry("verdict", name)?;
        m.serialize_entry("rejection", &rejection)?;
        m.serialize_entry("lastError", &last_error.as_deref())?;
        m.end()
    }
}

impl Serialize for Explanation {
    /// `{criteria, summary, topologyDescription, servers}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self { criteria, topology, servers } = self;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("criteria", criteria)?;
        m.serialize_entry("summary", &self.summary())?;
        m.serialize_entry("topologyDescription", topology.as_ref())?;
        m.serialize_entry("servers", servers)?;
        m.end()
    }
}

impl Serialize for SelectionLogEvent {
    /// The spec's structured form (server-selection.md, "Logging"): `message`, `selector`,
    /// `operation`, `operationId`, `topologyDescription`, and `serverHost`/`serverPort`,
    /// `failure` or `remainingTimeMS`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self { kind, selector, operation, operation_id, topology_description } = self;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("message", self.message())?;
        m.serialize_entry("selector", selector)?;
        m.serialize_entry("operation", operation)?;
        m.serialize_entry("operationId", operation_id)?;
        m.serialize_entry("topologyDescription", topology_description)?;
        match kind {
            SelectionLogKind::Started => {}
            SelectionLogKind::Succeeded { server_host, server_port } => {
                m.serialize_entry("serverHost", server_host)?;
                m.serialize_entry("serverPort", server_port)?;
            }
            SelectionLogKind::Failed { failure } => m.serialize_entry("failure", failure)?,
            SelectionLogKind::Waiting { remaining_time_ms } => {
                m.serialize_entry("remainingTimeMS", remaining_time_ms)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bson::oid::ObjectId;
    use serde_json::json;

    use super::*;
    use crate::selection::{explain, SelectionCriteria};

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(
        value: &T,
    ) -> serde_json::Value {
        // Through the text, which keeps the order of map entries.
        let text = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, value);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn value_types_round_trip() {
        assert_eq!(round_trip(&addr("DB1:27018")), json!("db1:27018"));
        assert_eq!(round_trip(&addr("[::1]")), json!("[::1]:27017"));
        assert_eq!(round_trip(&ServerType::RSSecondary), json!("RSSecondary"));
        assert_eq!(round_trip(&TopologyType::ReplicaSetWithPrimary), json!("ReplicaSetWithPrimary"));
        assert_eq!(round_trip(&ReadPreferenceMode::SecondaryPreferred), json!("secondaryPreferred"));
        assert_eq!(round_trip(&ServerMonitoringMode::Poll), json!("poll"));
        let tags = Tags::new(vec![("rack".into(), "1".into()), ("dc".into(), "ny".into())]);
        assert_eq!(round_trip(&tags), json!({"dc": "ny", "rack": "1"}));
        let set = TagSet(vec![("rack".into(), "1".into()), ("dc".into(), "ny".into())]);
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"{"rack":"1","dc":"ny"}"#);
        round_trip(&set);
        let e = serde_json::from_value::<ServerAddress>(json!("a:0")).unwrap_err().to_string();
        assert!(e.contains("invalid port"), "{e}");
        let e = serde_json::from_value::<ServerType>(json!("Primary")).unwrap_err().to_string();
        assert!(e.contains("unknown server type"), "{e}");
    }

    fn secondary() -> ServerDescription {
        let mut sd = ServerDescription::unknown(addr("a"));
        sd.server_type = ServerType::RSSecondary;
        sd.set_name = Some("rs0".into());
        sd.round_trip_time = Some(Duration::from_micros(12_500));
        sd.min_round_trip_time = Some(Duration::from_millis(10));
        sd.hosts = vec![addr("b"), addr("a")].into();
        sd.tags = Tags::new(vec![("dc".into(), "ny".into())]);
        sd.topology_version = Some(TopologyVersion { process_id: ObjectId::from_bytes([1; 12]), counter: 4 });
        sd.max_wire_version = 21;
        sd
    }

    #[test]
    fn server_descriptions_use_the_spec_names() {
        let v = serde_json::to_value(secondary()).unwrap();
        assert_eq!(v["address"], "a:27017");
        assert_eq!(v["type"], "RSSecondary");
        assert_eq!(v["setName"], "rs0");
        assert_eq!(v["roundTripTime"], 12.5);
        assert_eq!(v["minRoundTripTime"], 10);
        assert_eq!(v["hosts"], json!(["a:27017", "b:27017"]));
        assert_eq!(v["tags"], json!({"dc": "ny"}));
        assert_eq!(
            v["topologyVersion"],
            json!({"processId": {"$oid": "010101010101010101010101"}, "counter": 4})
        );
        assert_eq!(v["maxWireVersion"], 21);
        assert_eq!(v["electionId"], serde_json::Value::Null);
        assert!(v.get("lastUpdateTime").is_none());
        assert_eq!(v.as_object().unwrap().len(), 28);
    }

    #[test]
    fn topology_descriptions_and_events_snapshot() {
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        td.set_name = Some("rs0".into());
        td.max_election_id = Some(ObjectId::from_bytes([0; 12]));
        td.insert_server(secondary());
        let v = serde_json::to_value(&td).unwrap();
        assert_eq!(v["topologyType"], "ReplicaSetNoPrimary");
        assert_eq!(v["setName"], "rs0");
        assert_eq!(v["maxElectionId"], json!({"$oid": "000000000000000000000000"}));
        assert_eq!(v["servers"][0]["address"], "a:27017");
        assert_eq!(v["heartbeatFrequencyMS"], 10_000);
        assert_eq!(v["localThresholdMS"], 15);
        let id = TopologyId(ObjectId::from_bytes([2; 12]));
        let event = Event::TopologyDescriptionChanged {
            topology_id: id,
            previous: Arc::new(TopologyDescription::new(TopologyType::Unknown)),
            new: Arc::new(td),
        };
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(v["event"], "TopologyDescriptionChangedEvent");
        assert_eq!(v["topologyId"], json!({"$oid": "020202020202020202020202"}));
        assert_eq!(v["previousDescription"]["topologyType"], "Unknown");
        assert_eq!(v["newDescription"]["servers"][0]["type"], "RSSecondary");
        let reply = bson::rawdoc! {"ok": 1, "isWritablePrimary": true};
        let hb = Event::ServerHeartbeatSucceeded {
            address: addr("a"),
            connection_id: ConnectionId(3),
            duration: Duration::from_micros(1500),
            reply,
            awaited: false,
        };
        assert_eq!(
            serde_json::to_value(&hb).unwrap(),
            json!({"event": "ServerHeartbeatSucceededEvent", "address": "a:27017", "connectionId": 3,
                   "duration": 1.5, "reply": {"ok": 1, "isWritablePrimary": true}, "awaited": false})
        );
    }

    #[test]
    fn explanations_and_selection_log_events_serialize() {
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        td.insert_server(secondary());
        td.insert_server(ServerDescription::unknown_with_error(addr("b"), "refused"));
        let explanation = explain(&td, &SelectionCriteria::write(), None);
        let v = serde_json::to_value(&explanation).unwrap();
        assert_eq!(v["servers"][0]["verdict"], "rejected");
        assert_eq!(v["servers"][0]["rejection"]["reason"], "wrongType");
        assert_eq!(v["servers"][0]["rejection"]["serverType"], "RSSecondary");
        assert_eq!(v["servers"][1]["rejection"]["reason"], "unknown");
        assert_eq!(v["servers"][1]["lastError"], "refused");
        assert_eq!(v["summary"], explanation.summary());
        let event = SelectionLogEvent {
            kind: SelectionLogKind::Succeeded { server_host: "a".into(), server_port: Some(27017) },
            selector: "read primary".into(),
            operation: "find".into(),
            operation_id: None,
            topology_description: "{...}".into(),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"message": "Server selection succeeded", "selector": "read primary", "operation": "find",
                   "operationId": null, "topologyDescription": "{...}", "serverHost": "a", "serverPort": 27017})
        );
        let rp =
            ReadPreference::new(ReadPreferenceMode::Secondary).with_max_staleness_seconds(Some(120)).unwrap();
        assert_eq!(
            serde_json::to_value(&rp).unwrap(),
            json!({"mode": "secondary", "tagSets": [], "maxStalenessSeconds": 120, "hedge": null})
        );
    }
}
