//! Server selection log messages as plain data (server-selection.md, "Logging").
//!
//! A [`Selection`](super::Selection) produces them; the caller forwards them to its logging
//! framework under the `serverSelection` component at [`SelectionLogEvent::level`].

use std::fmt;
use std::fmt::Write as _;

use crate::topology_description::TopologyDescription;

/// The log component of every server selection message.
pub const LOG_COMPONENT: &str = "serverSelection";

/// A log level, as server-selection.md, "Logging" assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogLevel {
    /// Started, succeeded and failed messages.
    Debug,
    /// The waiting message.
    Info,
}

/// What happened, with the fields particular to each message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectionLogKind {
    /// "Server selection started".
    Started,
    /// "Server selection succeeded".
    Succeeded {
        /// `serverHost`: host name, IP literal or Unix socket path of the selected server.
        server_host: String,
        /// `serverPort`: its port (`None` for a Unix socket).
        server_port: Option<u16>,
    },
    /// "Server selection failed".
    Failed {
        /// `failure`: the error, without the topology description.
        failure: String,
    },
    /// "Waiting for suitable server to become available", logged once per selection.
    Waiting {
        /// `remainingTimeMS`: time left before selection times out.
        remaining_time_ms: u64,
    },
}

/// One server selection log message with the spec's common fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelectionLogEvent {
    /// Which message, and its own fields.
    pub kind: SelectionLogKind,
    /// `selector`: the criteria (every read preference component, and the application
    /// selector's name if there is one).
    pub selector: String,
    /// `operation`: the operation (command) name.
    pub operation: String,
    /// `operationId`, when the caller gave one.
    pub operation_id: Option<i64>,
    /// `topologyDescription`: the topology when the message was produced.
    pub topology_description: String,
}

impl SelectionLogEvent {
    /// The spec's `message` value.
    pub fn message(&self) -> &'static str {
        match self.kind {
            SelectionLogKind::Started => "Server selection started",
            SelectionLogKind::Succeeded { .. } => "Server selection succeeded",
            SelectionLogKind::Failed { .. } => "Server selection failed",
            SelectionLogKind::Waiting { .. } => "Waiting for suitable server to become available",
        }
    }

    /// The level to log at: `info` for waiting, `debug` for the others.
    pub fn level(&self) -> LogLevel {
        match self.kind {
            SelectionLogKind::Waiting { .. } => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

impl fmt::Display for SelectionLogEvent {
    /// The spec's unstructured form of each message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = match self.operation_id {
            Some(id) => format!(" with ID {id}"),
            None => String::new(),
        };
        let (op, sel, td) = (&self.operation, &self.selector, &self.topology_description);
        match &self.kind {
            SelectionLogKind::Started => {
                write!(f, "Server selection started for operation {op}{id}. Selector: {sel}, topology description: {td}")
            }
            SelectionLogKind::Succeeded { server_host, server_port } => {
                write!(
                    f,
                    "Server selection succeeded for operation {op}{id}. Selected server: {server_host}"
                )?;
                if let Some(port) = server_port {
                    write!(f, ":{port}")?;
                }
                write!(f, ". Selector: {sel}, topology description: {td}")
            }
            SelectionLogKind::Failed { failure } => write!(
                f,
                "Server selection failed for operation {op}{id}. Failure: {failure}. Selector: {sel}, \
                 topology description: {td}"
            ),
            SelectionLogKind::Waiting { remaining_time_ms } => write!(
                f,
                "Waiting for server to become available for operation {op}{id}. Remaining time: \
                 {remaining_time_ms} ms. Selector: {sel}, topology description: {td}."
            ),
        }
    }
}

/// A compact description of a topology for log messages, e.g.
/// `{type: ReplicaSetWithPrimary, setName: rs0, servers: [{address: a:27017, type: RSPrimary, rtt: 5 ms}]}`.
pub fn describe_topology(topology: &TopologyDescription) -> String {
    let mut s = format!("{{type: {}", topology.topology_type);
    if let Some(name) = &topology.set_name {
        let _ = write!(s, ", setName: {name}");
    }
    if let Some(e) = &topology.compatibility_error {
        let _ = write!(s, ", compatibilityError: {e}");
    }
    s.push_str(", servers: [");
    for (i, sd) in topology.servers.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{{address: {}, type: {}", sd.address, sd.server_type);
        if let Some(rtt) = sd.round_trip_time {
            let _ = write!(s, ", rtt: {} ms", rtt.as_secs_f64() * 1000.0);
        }
        if !sd.tags.is_empty() {
            let _ = write!(s, ", tags: {}", sd.tags);
        }
        if let Some(e) = &sd.error {
            let _ = write!(s, ", error: {e}");
        }
        s.push('}');
    }
    s.push_str("]}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerAddress, ServerDescription, ServerType, TopologyType};
    use std::time::Duration;

    fn event(kind: SelectionLogKind, operation_id: Option<i64>) -> SelectionLogEvent {
        SelectionLogEvent {
            kind,
            selector: "read primary".into(),
            operation: "find".into(),
            operation_id,
            topology_description: "{...}".into(),
        }
    }

    #[test]
    fn messages_levels_and_unstructured_forms() {
        let started = event(SelectionLogKind::Started, Some(7));
        assert_eq!(started.message(), "Server selection started");
        assert_eq!(started.level(), LogLevel::Debug);
        assert_eq!(
            started.to_string(),
            "Server selection started for operation find with ID 7. Selector: read primary, topology description: {...}"
        );
        let ok =
            event(SelectionLogKind::Succeeded { server_host: "a".into(), server_port: Some(27017) }, None);
        assert_eq!(
            ok.to_string(),
            "Server selection succeeded for operation find. Selected server: a:27017. Selector: read primary, \
             topology description: {...}"
        );
        let waiting = event(SelectionLogKind::Waiting { remaining_time_ms: 1500 }, None);
        assert_eq!(waiting.level(), LogLevel::Info);
        assert!(waiting.to_string().contains("Remaining time: 1500 ms."));
        let failed = event(SelectionLogKind::Failed { failure: "timed out".into() }, None);
        assert_eq!(failed.message(), "Server selection failed");
        assert!(failed.to_string().contains("Failure: timed out."));
    }

    #[test]
    fn topology_description_string() {
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        td.set_name = Some("rs0".into());
        let mut sd = ServerDescription::unknown(ServerAddress::parse("a").unwrap());
        sd.server_type = ServerType::RSSecondary;
        sd.max_wire_version = 21;
        sd.round_trip_time = Some(Duration::from_millis(5));
        td.insert_server(sd);
        td.insert_server(ServerDescription::unknown_with_error(
            ServerAddress::parse("b").unwrap(),
            "refused",
        ));
        assert_eq!(
            describe_topology(&td),
            "{type: ReplicaSetNoPrimary, setName: rs0, servers: [{address: a:27017, type: RSSecondary, rtt: 5 ms}, \
             {address: b:27017, type: Unknown, error: refused}]}"
        );
    }
}
