//! The specs' log messages, published by both adapters: each SDAM event and each selection
//! log event becomes a [`LogMessage`] (the core's pure mapping, [`sdam::logging`]) that
//! subscribers receive as [`ClientEvent::Log`](crate::ClientEvent::Log) and that, with the
//! `tracing` feature, is emitted through `tracing`:
//!
//! - target `sdam::topology` for the `topology` component, `sdam::server_selection` for
//!   `serverSelection`;
//! - level `DEBUG`, except "Waiting for suitable server to become available" at `INFO`
//!   (server-selection.md, "Logging");
//! - the spec's field names as the event's fields (`topologyId`, `serverHost`, `serverPort`,
//!   `driverConnectionId`, `serverConnectionId`, `awaited`, `durationMS`, `reply`, `failure`,
//!   `previousDescription`, `newDescription`, `selector`, `operation`, `operationId`,
//!   `topologyDescription`, `remainingTimeMS`), `message` as the event's message, and the
//!   spec's unstructured form in the `text` field.
//!
//! The maximum document length comes from `MONGODB_LOG_MAX_DOCUMENT_LENGTH` (logging.md,
//! "Configurable Max Document Length"), else 1000.

use sdam::logging::{selection_message, topology_message, LogMessage, LogOptions};
use sdam::selection::SelectionLogEvent;
use sdam::{Event, TopologyId};

/// Turns one client's events into log messages (and emits them through `tracing` when the
/// feature is on).
#[derive(Debug, Clone)]
pub struct LogPublisher {
    topology_id: TopologyId,
    options: LogOptions,
}

impl LogPublisher {
    /// Messages for topology `topology_id`, with the maximum document length of
    /// `MONGODB_LOG_MAX_DOCUMENT_LENGTH` (default 1000).
    pub fn new(topology_id: TopologyId) -> Self {
        let value = std::env::var("MONGODB_LOG_MAX_DOCUMENT_LENGTH").ok();
        Self::with_options(topology_id, LogOptions::from_env_value(value.as_deref()))
    }

    /// Messages for topology `topology_id` with these options.
    pub fn with_options(topology_id: TopologyId, options: LogOptions) -> Self {
        Self { topology_id, options }
    }

    /// The message of an SDAM event (`None` for `ServerDescriptionChanged`, which has none),
    /// already emitted through `tracing` with the feature on.
    pub fn topology(&self, event: &Event) -> Option<LogMessage> {
        let message = topology_message(self.topology_id, event, &self.options)?;
        emit(&message);
        Some(message)
    }

    /// The message of a selection log event, already emitted through `tracing` with the
    /// feature on.
    pub fn selection(&self, event: &SelectionLogEvent) -> LogMessage {
        let message = selection_message(event, &self.options);
        emit(&message);
        message
    }
}

#[cfg(not(feature = "tracing"))]
fn emit(_: &LogMessage) {}

#[cfg(feature = "tracing")]
pub use tracing_emit::emit;

#[cfg(feature = "tracing")]
mod tracing_emit {
    use sdam::logging::{LogComponent, LogMessage, LogValue};
    use sdam::selection::LogLevel;

    /// The `tracing` target of the `topology` component.
    pub const TOPOLOGY_TARGET: &str = "sdam::topology";
    /// The `tracing` target of the `serverSelection` component.
    pub const SERVER_SELECTION_TARGET: &str = "sdam::server_selection";

    fn s<'a>(m: &'a LogMessage, key: &str) -> Option<&'a str> {
        match m.get(key) {
            Some(LogValue::String(v)) => Some(v.as_str()),
            _ => None,
        }
    }

    fn i(m: &LogMessage, key: &str) -> Option<i64> {
        match m.get(key) {
            Some(LogValue::Int(v)) => Some(*v),
            _ => None,
        }
    }

    fn d(m: &LogMessage, key: &str) -> Option<f64> {
        match m.get(key) {
            Some(LogValue::Double(v)) => Some(*v),
            _ => None,
        }
    }

    fn b(m: &LogMessage, key: &str) -> Option<bool> {
        match m.get(key) {
            Some(LogValue::Bool(v)) => Some(*v),
            _ => None,
        }
    }

    /// Emits `m` as a `tracing` event on its component's target, at its level, with the
    /// spec's field names (an absent optional field, e.g. `serverPort` of a Unix socket, is
    /// not recorded). Cheap when no subscriber listens: the unstructured text is only
    /// formatted for an enabled event.
    pub fn emit(m: &LogMessage) {
        // Targets, levels and field names of a tracing callsite are static: one call per
        // component and level, every field of that component named (None is not recorded).
        match m.component {
            LogComponent::Topology => {
                if !tracing::enabled!(target: TOPOLOGY_TARGET, tracing::Level::DEBUG) {
                    return;
                }
                tracing::debug!(
                    target: TOPOLOGY_TARGET,
                    message = m.message,
                    topologyId = s(m, "topologyId"),
                    serverHost = s(m, "serverHost"),
                    serverPort = i(m, "serverPort"),
                    driverConnectionId = i(m, "driverConnectionId"),
                    serverConnectionId = i(m, "serverConnectionId"),
                    awaited = b(m, "awaited"),
                    durationMS = d(m, "durationMS"),
                    reply = s(m, "reply"),
                    failure = s(m, "failure"),
                    previousDescription = s(m, "previousDescription"),
                    newDescription = s(m, "newDescription"),
                    text = %m,
                );
            }
            LogComponent::ServerSelection if m.level == LogLevel::Info => {
                if !tracing::enabled!(target: SERVER_SELECTION_TARGET, tracing::Level::INFO) {
                    return;
                }
                tracing::info!(
                    target: SERVER_SELECTION_TARGET,
                    message = m.message,
                    selector = s(m, "selector"),
                    operation = s(m, "operation"),
                    operationId = i(m, "operationId"),
                    topologyDescription = s(m, "topologyDescription"),
                    remainingTimeMS = i(m, "remainingTimeMS"),
                    text = %m,
                );
            }
            LogComponent::ServerSelection => {
                if !tracing::enabled!(target: SERVER_SELECTION_TARGET, tracing::Level::DEBUG) {
                    return;
                }
                tracing::debug!(
                    target: SERVER_SELECTION_TARGET,
                    message = m.message,
                    selector = s(m, "selector"),
                    operation = s(m, "operation"),
                    operationId = i(m, "operationId"),
                    topologyDescription = s(m, "topologyDescription"),
                    serverHost = s(m, "serverHost"),
                    serverPort = i(m, "serverPort"),
                    failure = s(m, "failure"),
                    text = %m,
                );
            }
            // A component added to the core later: its message and text under `sdam`.
            _ => {
                tracing::debug!(target: "sdam", message = m.message, component = m.component.as_str(), text = %m);
            }
        }
    }
}

#[cfg(feature = "tracing")]
pub use tracing_emit::{SERVER_SELECTION_TARGET, TOPOLOGY_TARGET};

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use sdam::selection::{SelectionLogEvent, SelectionLogKind};
    use sdam::{Event, ServerAddress};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Level, Metadata, Subscriber};

    use super::LogPublisher;

    /// One captured tracing event: target, level and every recorded field as text.
    type Captured = (String, Level, BTreeMap<String, String>);

    /// A subscriber that records every event it sees.
    #[derive(Default, Clone)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().to_owned(), format!("i64:{value}"));
        }
        fn record_f64(&mut self, field: &Field, value: f64) {
            self.0.insert(field.name().to_owned(), format!("f64:{value}"));
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().to_owned(), format!("bool:{value}"));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            let meta = event.metadata();
            self.0.lock().unwrap().push((meta.target().to_owned(), *meta.level(), fields));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// #15 "tracing": targets sdam::topology and sdam::server_selection, the spec's field
    /// names, debug for all but the waiting message (info).
    #[test]
    fn messages_are_emitted_on_their_targets_with_the_specs_fields() {
        let capture = Capture::default();
        // A topology with nothing known yet: its first check's connection, and a selection
        // that is started, then waits.
        let now = std::time::Instant::now();
        let seed = ServerAddress::parse("db1:27018").unwrap();
        let mut topology = sdam::Topology::new(sdam::TopologyConfig::with_seeds([seed]), now).unwrap();
        let id = topology.id();
        let connection_id = std::iter::from_fn(|| topology.poll_output())
            .find_map(|o| match o {
                sdam::Output::Command(sdam::Command::SendHello { connection, .. }) => Some(connection),
                _ => None,
            })
            .expect("the seed's first check");
        let publisher = LogPublisher::with_options(id, sdam::logging::LogOptions::default());
        tracing::subscriber::with_default(capture.clone(), || {
            let address = ServerAddress::parse("db1:27018").unwrap();
            publisher.topology(&Event::ServerHeartbeatSucceeded {
                address,
                connection_id,
                duration: Duration::from_millis(4),
                reply: bson::rawdoc! { "ok": 1, "connectionId": 12 },
                awaited: true,
            });
            let options =
                sdam::selection::SelectionOptions::new("insert").with_timeout(Duration::from_millis(250));
            let _ = topology.start_selection(sdam::selection::SelectionCriteria::write(), options, now);
            let logged: Vec<SelectionLogEvent> = std::iter::from_fn(|| topology.poll_output())
                .filter_map(|o| match o {
                    sdam::Output::SelectionLog { event, .. } => Some(event),
                    _ => None,
                })
                .collect();
            assert!(matches!(logged.last().map(|e| &e.kind), Some(SelectionLogKind::Waiting { .. })));
            let waiting = logged.last().unwrap();
            publisher.selection(waiting);
        });
        let events = capture.0.lock().unwrap().clone();
        assert_eq!(events.len(), 2, "{events:?}");
        let (target, level, fields) = &events[0];
        assert_eq!((target.as_str(), *level), ("sdam::topology", Level::DEBUG));
        assert_eq!(fields["message"], "Server heartbeat succeeded");
        assert_eq!(fields["topologyId"], id.object_id().to_hex());
        assert_eq!(fields["serverHost"], "db1");
        assert_eq!(fields["serverPort"], "i64:27018");
        assert_eq!(fields["driverConnectionId"], format!("i64:{}", connection_id.as_u64()));
        assert_eq!(fields["serverConnectionId"], "i64:12");
        assert_eq!(fields["awaited"], "bool:true");
        assert_eq!(fields["durationMS"], "f64:4");
        assert_eq!(fields["reply"], r#"{"ok": 1, "connectionId": 12}"#);
        assert!(!fields.contains_key("failure"), "absent fields are not recorded: {fields:?}");
        assert!(fields["text"].starts_with("Heartbeat succeeded in 4 ms for db1:27018"), "{fields:?}");
        let (target, level, fields) = &events[1];
        assert_eq!((target.as_str(), *level), ("sdam::server_selection", Level::INFO));
        assert_eq!(fields["message"], "Waiting for suitable server to become available");
        assert_eq!(fields["remainingTimeMS"], "i64:250");
        for key in ["selector", "operation", "topologyDescription", "text"] {
            assert!(fields.contains_key(key), "{key} missing: {fields:?}");
        }
    }
}
