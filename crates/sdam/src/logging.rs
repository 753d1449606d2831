//! The specs' structured log messages as plain data: the `topology` component of
//! server-discovery-and-monitoring-logging-and-monitoring.md ("Log Messages") and the
//! `serverSelection` component of server-selection.md ("Logging").
//!
//! Nothing here logs: [`topology_message`] maps an SDAM [`Event`] and
//! [`selection_message`] maps a [`SelectionLogEvent`] to a [`LogMessage`] with the spec's
//! `message`, level, component and field names, which an I/O layer hands to its logging
//! framework (the adapters publish them to subscribers and, with their `tracing` feature,
//! through `tracing`). Both are pure functions, so the messages of a run are a function of
//! its events.
//!
//! Documents and descriptions follow the logging spec's truncation (logging.md,
//! "Configurable Max Document Length"): a string longer than
//! [`LogOptions::max_document_length`] (default [`DEFAULT_MAX_DOCUMENT_LENGTH`]) is cut at that
//! many bytes (rounded down to a character boundary) and `...` is appended.
//!
//! ```
//! use sdam::logging::{topology_message, LogComponent, LogOptions};
//! use sdam::{Event, ServerAddress, Topology, TopologyConfig};
//!
//! # fn run(now: std::time::Instant) {
//! let topology = Topology::new(TopologyConfig::with_seeds([ServerAddress::parse("db1").unwrap()]), now).unwrap();
//! let id = topology.id();
//! let message = topology_message(id, &Event::TopologyOpening { topology_id: id }, &LogOptions::default())
//!     .expect("every event but ServerDescriptionChanged has a message");
//! assert_eq!(message.component, LogComponent::Topology);
//! assert_eq!(message.message, "Starting topology monitoring");
//! assert_eq!(message.get("topologyId").map(ToString::to_string), Some(id.object_id().to_hex()));
//! # }
//! # #[allow(clippy::disallowed_methods)] // a doc test reads the clock; the core never does
//! # run(std::time::Instant::now());
//! ```

use std::fmt;
use std::fmt::Write as _;

use bson::{RawBsonRef, RawDocument};

use crate::address::ServerAddress;
use crate::events::{Event, TopologyId};
use crate::selection::{describe_topology, LogLevel, SelectionLogEvent, SelectionLogKind};
use crate::topology_description::TopologyDescription;

/// The logging spec's default maximum length of a document or description in a message
/// (logging.md, "Configurable Max Document Length").
pub const DEFAULT_MAX_DOCUMENT_LENGTH: usize = 1000;

/// How messages are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogOptions {
    /// Strings holding a document (a heartbeat reply) or a topology description longer than
    /// this many bytes are truncated and end in `...` (logging.md).
    pub max_document_length: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self { max_document_length: DEFAULT_MAX_DOCUMENT_LENGTH }
    }
}

impl LogOptions {
    /// Options with this maximum document length.
    pub fn with_max_document_length(max_document_length: usize) -> Self {
        Self { max_document_length }
    }

    /// The options the value of `MONGODB_LOG_MAX_DOCUMENT_LENGTH` asks for (read by the I/O
    /// layer). A missing or invalid value means the default (logging.md: "If a variable is
    /// set to an invalid value, it MUST be treated as if it were not specified at all").
    pub fn from_env_value(value: Option<&str>) -> Self {
        value
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or_else(Self::default, Self::with_max_document_length)
    }
}

/// A log component (logging.md, "Components").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogComponent {
    /// `topology`: SDAM messages.
    Topology,
    /// `serverSelection`: server selection messages.
    ServerSelection,
}

impl LogComponent {
    /// The spec's name of the component (`topology`, `serverSelection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Topology => "topology",
            Self::ServerSelection => "serverSelection",
        }
    }
}

impl fmt::Display for LogComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of one field of a structured message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogValue {
    /// A string (ids, hosts, descriptions, replies, failures).
    String(String),
    /// An integer (ports, connection ids, operation ids, remaining times).
    Int(i64),
    /// A floating-point number (`durationMS`).
    Double(f64),
    /// A boolean (`awaited`).
    Bool(bool),
}

impl fmt::Display for LogValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One structured log message: its component, level, `message` and the other key-value pairs
/// with the spec's names, in the spec's order. [`Display`](fmt::Display) gives the spec's
/// unstructured form.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogMessage {
    /// The component (`topology` or `serverSelection`).
    pub component: LogComponent,
    /// The level the spec assigns (every message is `debug` but "Waiting for suitable
    /// server to become available", which is `info`).
    pub level: LogLevel,
    /// The spec's `message` value, e.g. `"Server heartbeat succeeded"`.
    pub message: &'static str,
    /// Every other key-value pair (`topologyId`, `serverHost`, `durationMS`, `reply`, ...).
    pub fields: Vec<(&'static str, LogValue)>,
}

impl LogMessage {
    fn new(component: LogComponent, level: LogLevel, message: &'static str) -> Self {
        Self { component, level, message, fields: Vec::with_capacity(8) }
    }

    fn push(&mut self, key: &'static str, value: LogValue) {
        self.fields.push((key, value));
    }

    fn push_str(&mut self, key: &'static str, value: impl Into<String>) {
        self.push(key, LogValue::String(value.into()));
    }

    fn push_server(&mut self, address: &ServerAddress) {
        self.push_str("serverHost", address.host());
        // serverPort: absent for a Unix domain socket (SDAM logging, "Common Fields").
        if let Some(port) = address.port() {
            self.push("serverPort", LogValue::Int(i64::from(port)));
        }
    }

    /// The value of field `key` (`"message"` is not a field: see [`message`](Self::message)).
    pub fn get(&self, key: &str) -> Option<&LogValue> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn text(&self, key: &str) -> String {
        self.get(key).map(ToString::to_string).unwrap_or_default()
    }
}

impl fmt::Display for LogMessage {
    /// The unstructured forms of the specs ("The unstructured form SHOULD be as follows").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |k: &str| self.text(k);
        let server = || match self.get("serverPort") {
            Some(port) => format!("{}:{port}", t("serverHost")),
            None => t("serverHost"),
        };
        let connection = || {
            let mut s = format!("on connection with driver-generated ID {}", t("driverConnectionId"));
            if let Some(id) = self.get("serverConnectionId") {
                let _ = write!(s, " and server-generated ID {id}");
            }
            s
        };
        let operation = || {
            let mut s = t("operation");
            if let Some(id) = self.get("operationId") {
                let _ = write!(s, " with ID {id}");
            }
            s
        };
        match self.message {
            STARTING_TOPOLOGY => write!(f, "Starting monitoring for topology with ID {}", t("topologyId")),
            STOPPED_TOPOLOGY => write!(f, "Stopped monitoring for topology with ID {}", t("topologyId")),
            STARTING_SERVER => write!(
                f,
                "Starting monitoring for server {} in topology with ID {}",
                server(),
                t("topologyId")
            ),
            STOPPED_SERVER => write!(
                f,
                "Stopped monitoring for server {} in topology with ID {}",
                server(),
                t("topologyId")
            ),
            DESCRIPTION_CHANGED => write!(
                f,
                "Description changed for topology with ID {}. Previous description: {}. New description: {}",
                t("topologyId"),
                t("previousDescription"),
                t("newDescription")
            ),
            HEARTBEAT_STARTED => write!(
                f,
                "Heartbeat started for {} {} in topology with ID {}. Awaited: {}",
                server(),
                connection(),
                t("topologyId"),
                t("awaited")
            ),
            HEARTBEAT_SUCCEEDED => write!(
                f,
                "Heartbeat succeeded in {} ms for {} {} in topology with ID {}. Awaited: {}. Reply: {}",
                t("durationMS"),
                server(),
                connection(),
                t("topologyId"),
                t("awaited"),
                t("reply")
            ),
            HEARTBEAT_FAILED => write!(
                f,
                "Heartbeat failed in {} ms for {} {} in topology with ID {}. Awaited: {}. Failure: {}",
                t("durationMS"),
                server(),
                connection(),
                t("topologyId"),
                t("awaited"),
                t("failure")
            ),
            SELECTION_STARTED => write!(
                f,
                "Server selection started for operation {}. Selector: {}, topology description: {}",
                operation(),
                t("selector"),
                t("topologyDescription")
            ),
            SELECTION_SUCCEEDED => write!(
                f,
                "Server selection succeeded for operation {}. Selected server: {}. Selector: {}, topology \
                 description: {}",
                operation(),
                server(),
                t("selector"),
                t("topologyDescription")
            ),
            SELECTION_FAILED => write!(
                f,
                "Server selection failed for operation {}. Failure: {}. Selector: {}, topology description: {}",
                operation(),
                t("failure"),
                t("selector"),
                t("topologyDescription")
            ),
            SELECTION_WAITING => write!(
                f,
                "Waiting for server to become available for operation {}. Remaining time: {} ms. Selector: {}, \
                 topology description: {}.",
                operation(),
                t("remainingTimeMS"),
                t("selector"),
                t("topologyDescription")
            ),
            other => f.write_str(other),
        }
    }
}

const STARTING_TOPOLOGY: &str = "Starting topology monitoring";
const STOPPED_TOPOLOGY: &str = "Stopped topology monitoring";
const STARTING_SERVER: &str = "Starting server monitoring";
const STOPPED_SERVER: &str = "Stopped server monitoring";
const DESCRIPTION_CHANGED: &str = "Topology description changed";
const HEARTBEAT_STARTED: &str = "Server heartbeat started";
const HEARTBEAT_SUCCEEDED: &str = "Server heartbeat succeeded";
const HEARTBEAT_FAILED: &str = "Server heartbeat failed";
const SELECTION_STARTED: &str = "Server selection started";
const SELECTION_SUCCEEDED: &str = "Server selection succeeded";
const SELECTION_FAILED: &str = "Server selection failed";
const SELECTION_WAITING: &str = "Waiting for suitable server to become available";

/// The `topology` message of an SDAM event (SDAM logging, "Log Messages"), at `debug`;
/// `None` for `ServerDescriptionChanged`, which the spec deliberately gives no message.
/// `topology_id` fills `topologyId` for the heartbeat events, which do not carry it.
pub fn topology_message(topology_id: TopologyId, event: &Event, options: &LogOptions) -> Option<LogMessage> {
    let max = options.max_document_length;
    let new = |message| {
        let mut m = LogMessage::new(LogComponent::Topology, LogLevel::Debug, message);
        m.push_str("topologyId", topology_id.object_id().to_hex());
        m
    };
    let message = match event {
        Event::TopologyOpening { .. } => new(STARTING_TOPOLOGY),
        Event::TopologyClosed { .. } => new(STOPPED_TOPOLOGY),
        Event::ServerOpening { address, .. } => {
            let mut m = new(STARTING_SERVER);
            m.push_server(address);
            m
        }
        Event::ServerClosed { address, .. } => {
            let mut m = new(STOPPED_SERVER);
            m.push_server(address);
            m
        }
        Event::TopologyDescriptionChanged { previous, new: next, .. } => {
            let mut m = new(DESCRIPTION_CHANGED);
            m.push_str("previousDescription", describe(previous, max));
            m.push_str("newDescription", describe(next, max));
            m
        }
        Event::ServerDescriptionChanged { .. } => return None,
        Event::ServerHeartbeatStarted { address, connection_id, awaited } => {
            let mut m = new(HEARTBEAT_STARTED);
            m.push_server(address);
            m.push("driverConnectionId", LogValue::Int(id_value(connection_id.as_u64())));
            m.push("awaited", LogValue::Bool(*awaited));
            m
        }
        Event::ServerHeartbeatSucceeded { address, connection_id, duration, reply, awaited } => {
            let mut m = new(HEARTBEAT_SUCCEEDED);
            m.push_server(address);
            m.push("driverConnectionId", LogValue::Int(id_value(connection_id.as_u64())));
            // serverConnectionId: the server's id for the connection, from the reply.
            if let Some(id) = server_connection_id(reply) {
                m.push("serverConnectionId", LogValue::Int(id));
            }
            m.push("awaited", LogValue::Bool(*awaited));
            m.push("durationMS", LogValue::Double(duration.as_secs_f64() * 1000.0));
            m.push_str("reply", relaxed_extjson(reply, max));
            m
        }
        Event::ServerHeartbeatFailed { address, connection_id, duration, failure, awaited } => {
            let mut m = new(HEARTBEAT_FAILED);
            m.push_server(address);
            m.push("driverConnectionId", LogValue::Int(id_value(connection_id.as_u64())));
            m.push("awaited", LogValue::Bool(*awaited));
            m.push("durationMS", LogValue::Double(duration.as_secs_f64() * 1000.0));
            m.push_str("failure", truncate(failure.clone(), max));
            m
        }
    };
    Some(message)
}

/// The `serverSelection` message of a selection log event (server-selection.md, "Logging"):
/// the common fields `selector`, `operation`, `operationId` (when the caller gave one) and
/// `topologyDescription` (truncated like a document), then each message's own fields.
pub fn selection_message(event: &SelectionLogEvent, options: &LogOptions) -> LogMessage {
    let message = match event.kind {
        SelectionLogKind::Started => SELECTION_STARTED,
        SelectionLogKind::Succeeded { .. } => SELECTION_SUCCEEDED,
        SelectionLogKind::Failed { .. } => SELECTION_FAILED,
        SelectionLogKind::Waiting { .. } => SELECTION_WAITING,
    };
    let mut m = LogMessage::new(LogComponent::ServerSelection, event.level(), message);
    m.push_str("selector", event.selector.clone());
    m.push_str("operation", event.operation.clone());
    if let Some(id) = event.operation_id {
        m.push("operationId", LogValue::Int(id));
    }
    m.push_str(
        "topologyDescription",
        truncate(event.topology_description.clone(), options.max_document_length),
    );
    match &event.kind {
        SelectionLogKind::Started => {}
        SelectionLogKind::Succeeded { server_host, server_port } => {
            m.push_str("serverHost", server_host.clone());
            if let Some(port) = server_port {
                m.push("serverPort", LogValue::Int(i64::from(*port)));
            }
        }
        SelectionLogKind::Failed { failure } => {
            m.push_str("failure", truncate(failure.clone(), options.max_document_length));
        }
        SelectionLogKind::Waiting { remaining_time_ms } => {
            m.push("remainingTimeMS", LogValue::Int(i64::try_from(*remaining_time_ms).unwrap_or(i64::MAX)));
        }
    }
    m
}

fn id_value(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn describe(description: &TopologyDescription, max: usize) -> String {
    truncate(describe_topology(description), max)
}

/// The reply's `connectionId` (int32, int64 or an integral double).
fn server_connection_id(reply: &RawDocument) -> Option<i64> {
    match reply.get("connectionId").ok()?? {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        #[allow(clippy::cast_possible_truncation)]
        RawBsonRef::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Some(d as i64),
        _ => None,
    }
}

/// Cuts `s` to at most `max` bytes (at a character boundary) and appends `...` if anything
/// was cut (logging.md: the ellipsis does not count toward the length).
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// The relaxed extended JSON of `doc` (extended-json.md, "Relaxed Extended JSON"), truncated
/// to `max` bytes with `...` appended. Writing stops soon after `max` bytes, so a large
/// reply costs no more than a small one.
pub fn relaxed_extjson(doc: &RawDocument, max: usize) -> String {
    let mut out = String::with_capacity(max.min(4096) + 8);
    write_document(doc, &mut out, max);
    truncate(out, max)
}

fn write_document(doc: &RawDocument, out: &mut String, max: usize) {
    out.push('{');
    for (i, element) in doc.iter().enumerate() {
        if out.len() > max {
            return;
        }
        if i > 0 {
            out.push_str(", ");
        }
        match element {
            Ok((key, value)) => {
                write_string(key.as_str(), out);
                out.push_str(": ");
                write_value(value, out, max);
            }
            Err(e) => {
                let _ = write!(out, "\"<invalid BSON: {e}>\"");
                return;
            }
        }
    }
    out.push('}');
}

fn write_value(value: RawBsonRef<'_>, out: &mut String, max: usize) {
    match value {
        RawBsonRef::Double(d) if d.is_finite() => {
            // Relaxed form: a plain number, with a fraction so it reads back as a double.
            if d.fract() == 0.0 && d.abs() < 1e16 {
                let _ = write!(out, "{d:.1}");
            } else {
                let _ = write!(out, "{d}");
            }
        }
        RawBsonRef::Double(d) => {
            let s = if d.is_nan() {
                "NaN"
            } else if d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            let _ = write!(out, "{{\"$numberDouble\": \"{s}\"}}");
        }
        RawBsonRef::String(s) => write_string(s, out),
        RawBsonRef::Array(array) => {
            out.push('[');
            for (i, item) in array.into_iter().enumerate() {
                if out.len() > max {
                    return;
                }
                if i > 0 {
                    out.push_str(", ");
                }
                match item {
                    Ok(v) => write_value(v, out, max),
                    Err(e) => {
                        let _ = write!(out, "\"<invalid BSON: {e}>\"");
                        return;
                    }
                }
            }
            out.push(']');
        }
        RawBsonRef::Document(d) => write_document(d, out, max),
        RawBsonRef::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        RawBsonRef::Null => out.push_str("null"),
        RawBsonRef::RegularExpression(re) => {
            out.push_str("{\"$regularExpression\": {\"pattern\": ");
            write_string(re.pattern.as_str(), out);
            out.push_str(", \"options\": ");
            write_string(re.options.as_str(), out);
            out.push_str("}}");
        }
        RawBsonRef::JavaScriptCode(code) => {
            out.push_str("{\"$code\": ");
            write_string(code, out);
            out.push('}');
        }
        RawBsonRef::JavaScriptCodeWithScope(c) => {
            out.push_str("{\"$code\": ");
            write_string(c.code, out);
            out.push_str(", \"$scope\": ");
            write_document(c.scope, out, max);
            out.push('}');
        }
        RawBsonRef::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Timestamp(ts) => {
            let _ = write!(out, "{{\"$timestamp\": {{\"t\": {}, \"i\": {}}}}}", ts.time, ts.increment);
        }
        RawBsonRef::Binary(b) => {
            out.push_str("{\"$binary\": {\"base64\": \"");
            base64(b.bytes, out);
            let _ = write!(out, "\", \"subType\": \"{:02x}\"}}}}", u8::from(b.subtype));
        }
        RawBsonRef::ObjectId(oid) => {
            let _ = write!(out, "{{\"$oid\": \"{}\"}}", oid.to_hex());
        }
        RawBsonRef::DateTime(dt) => {
            // Relaxed: ISO-8601 for years 1970 to 9999, else the canonical $numberLong.
            let millis = dt.timestamp_millis();
            match dt.try_to_rfc3339_string() {
                Ok(iso) if (0..253_402_300_800_000).contains(&millis) => {
                    let _ = write!(out, "{{\"$date\": \"{iso}\"}}");
                }
                _ => {
                    let _ = write!(out, "{{\"$date\": {{\"$numberLong\": \"{millis}\"}}}}");
                }
            }
        }
        RawBsonRef::Symbol(s) => {
            out.push_str("{\"$symbol\": ");
            write_string(s, out);
            out.push('}');
        }
        RawBsonRef::Decimal128(d) => {
            let _ = write!(out, "{{\"$numberDecimal\": \"{d}\"}}");
        }
        RawBsonRef::Undefined => out.push_str("{\"$undefined\": true}"),
        RawBsonRef::MaxKey => out.push_str("{\"$maxKey\": 1}"),
        RawBsonRef::MinKey => out.push_str("{\"$minKey\": 1}"),
        // The deprecated DBPointer's parts are not public in bson; no server reply has one.
        RawBsonRef::DbPointer(_) => out.push_str("{\"$dbPointer\": null}"),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn base64(bytes: &[u8], out: &mut String) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests;
