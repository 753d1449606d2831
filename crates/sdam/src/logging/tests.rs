use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{rawdoc, Binary, DateTime};

use super::*;
use crate::events::Output;
use crate::monitor::ConnectionId;
use crate::topology::{Input, Topology, TopologyConfig};
use crate::topology_description::TopologyType;

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn id() -> TopologyId {
    TopologyId::new(ObjectId::from_bytes([7; 12]))
}

fn int(m: &LogMessage, k: &str) -> Option<i64> {
    match m.get(k) {
        Some(LogValue::Int(i)) => Some(*i),
        _ => None,
    }
}

fn string(m: &LogMessage, k: &str) -> Option<String> {
    match m.get(k) {
        Some(LogValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn keys(m: &LogMessage) -> Vec<&'static str> {
    m.fields.iter().map(|(k, _)| *k).collect()
}

/// Every event a real topology emits on start, discovery and close maps to the spec's
/// message, in order, at debug level, with topologyId in every one (SDAM logging,
/// "Log Messages", "Common Fields").
#[test]
fn a_topology_lifecycle_maps_to_the_specs_messages_in_order() {
    let now = crate::test_instant();
    let mut topology = Topology::new(TopologyConfig::with_seeds([addr("a:27017")]), now).unwrap();
    let reply = rawdoc! { "ok": 1, "isWritablePrimary": true, "minWireVersion": 0, "maxWireVersion": 21 };
    topology.handle(
        Input::HelloReply {
            address: addr("a:27017"),
            reply: reply.clone(),
            round_trip_time: Duration::from_millis(2),
            awaited: false,
        },
        now,
    );
    topology.handle(Input::Close, now);
    let tid = topology.id();
    let options = LogOptions::default();
    let messages: Vec<LogMessage> = std::iter::from_fn(|| topology.poll_output())
        .filter_map(|o| match o {
            Output::Event(e) => topology_message(tid, &e, &options),
            Output::Command(_) | Output::Selection { .. } | Output::SelectionLog { .. } => None,
        })
        .collect();
    let names: Vec<&str> = messages.iter().map(|m| m.message).collect();
    assert_eq!(names.first(), Some(&"Starting topology monitoring"), "{names:?}");
    assert_eq!(names.last(), Some(&"Stopped topology monitoring"), "{names:?}");
    assert!(names.contains(&"Starting server monitoring"), "{names:?}");
    assert!(names.contains(&"Stopped server monitoring"), "{names:?}");
    assert!(names.contains(&"Topology description changed"), "{names:?}");
    for m in &messages {
        assert_eq!(m.component, LogComponent::Topology);
        assert_eq!(m.level, LogLevel::Debug);
        assert_eq!(string(m, "topologyId"), Some(tid.object_id().to_hex()), "{m:?}");
    }
    let opening = messages.iter().find(|m| m.message == "Starting server monitoring").unwrap();
    assert_eq!(keys(opening), ["topologyId", "serverHost", "serverPort"]);
    assert_eq!(string(opening, "serverHost").as_deref(), Some("a"));
    assert_eq!(int(opening, "serverPort"), Some(27017));
    let changed = messages.iter().find(|m| m.message == "Topology description changed").unwrap();
    assert_eq!(keys(changed), ["topologyId", "previousDescription", "newDescription"]);
    assert!(string(changed, "previousDescription").unwrap().starts_with("{type: "));
}

#[test]
fn server_description_changed_has_no_message() {
    let sd = Arc::new(crate::ServerDescription::unknown(addr("a")));
    let event = Event::ServerDescriptionChanged {
        topology_id: id(),
        address: addr("a"),
        previous: Arc::clone(&sd),
        new: sd,
    };
    assert_eq!(topology_message(id(), &event, &LogOptions::default()), None);
}

#[test]
fn heartbeat_messages_carry_connection_ids_awaited_duration_and_reply() {
    let started = Event::ServerHeartbeatStarted {
        address: addr("a:1"),
        connection_id: ConnectionId::new(4),
        awaited: true,
    };
    let m = topology_message(id(), &started, &LogOptions::default()).unwrap();
    assert_eq!(m.message, "Server heartbeat started");
    assert_eq!(keys(&m), ["topologyId", "serverHost", "serverPort", "driverConnectionId", "awaited"]);
    assert_eq!(m.get("awaited"), Some(&LogValue::Bool(true)));
    assert_eq!(
        m.to_string(),
        format!(
            "Heartbeat started for a:1 on connection with driver-generated ID 4 in topology with ID {}. Awaited: true",
            id().object_id().to_hex()
        )
    );

    let reply = rawdoc! { "ok": 1.0, "connectionId": 99_i64, "me": "a:1" };
    let succeeded = Event::ServerHeartbeatSucceeded {
        address: addr("a:1"),
        connection_id: ConnectionId::new(4),
        duration: Duration::from_micros(2500),
        reply,
        awaited: false,
    };
    let m = topology_message(id(), &succeeded, &LogOptions::default()).unwrap();
    assert_eq!(m.message, "Server heartbeat succeeded");
    assert_eq!(
        keys(&m),
        [
            "topologyId",
            "serverHost",
            "serverPort",
            "driverConnectionId",
            "serverConnectionId",
            "awaited",
            "durationMS",
            "reply"
        ]
    );
    assert_eq!(int(&m, "driverConnectionId"), Some(4));
    assert_eq!(int(&m, "serverConnectionId"), Some(99));
    assert_eq!(m.get("durationMS"), Some(&LogValue::Double(2.5)));
    let reply = string(&m, "reply").unwrap();
    assert_eq!(reply, r#"{"ok": 1.0, "connectionId": 99, "me": "a:1"}"#);
    let parsed: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(parsed["ok"], 1.0);
    assert!(m.to_string().contains("and server-generated ID 99"), "{m}");
    assert!(m.to_string().starts_with("Heartbeat succeeded in 2.5 ms for a:1"), "{m}");

    let failed = Event::ServerHeartbeatFailed {
        address: addr("a:1"),
        connection_id: ConnectionId::new(5),
        duration: Duration::from_millis(3),
        failure: "connection refused".into(),
        awaited: false,
    };
    let m = topology_message(id(), &failed, &LogOptions::default()).unwrap();
    assert_eq!(m.message, "Server heartbeat failed");
    assert_eq!(string(&m, "failure").as_deref(), Some("connection refused"));
    assert_eq!(m.get("serverConnectionId"), None);
    assert!(m.to_string().ends_with("Awaited: false. Failure: connection refused"), "{m}");
}

#[test]
fn a_unix_socket_server_has_no_port() {
    let event = Event::ServerOpening { topology_id: id(), address: addr("/tmp/mongodb-27017.sock") };
    let m = topology_message(id(), &event, &LogOptions::default()).unwrap();
    assert_eq!(string(&m, "serverHost").as_deref(), Some("/tmp/mongodb-27017.sock"));
    assert_eq!(m.get("serverPort"), None);
    assert!(m.to_string().starts_with("Starting monitoring for server /tmp/mongodb-27017.sock in topology"));
}

/// logging.md, "Configurable Max Document Length": 1000 by default, the ellipsis not
/// counted, never cutting a character in half.
#[test]
fn replies_and_descriptions_are_truncated_at_the_max_document_length() {
    let long = "é".repeat(2000);
    let reply = rawdoc! { "ok": 1, "msg": long.as_str() };
    let event = Event::ServerHeartbeatSucceeded {
        address: addr("a"),
        connection_id: ConnectionId::new(1),
        duration: Duration::ZERO,
        reply,
        awaited: false,
    };
    let m = topology_message(id(), &event, &LogOptions::default()).unwrap();
    let reply = string(&m, "reply").unwrap();
    assert!(reply.ends_with("..."));
    let body = reply.strip_suffix("...").unwrap();
    assert!(body.len() <= DEFAULT_MAX_DOCUMENT_LENGTH && body.len() >= DEFAULT_MAX_DOCUMENT_LENGTH - 1);
    assert!(body.starts_with(r#"{"ok": 1, "msg": "éé"#));

    let small = topology_message(id(), &event, &LogOptions::with_max_document_length(10)).unwrap();
    assert_eq!(string(&small, "reply").as_deref(), Some(r#"{"ok": 1, ..."#));

    let mut td = TopologyDescription::new(TopologyType::Unknown);
    for i in 0..100 {
        td.insert_server(crate::ServerDescription::unknown(addr(&format!("host{i}.example.com"))));
    }
    let td = Arc::new(td);
    let changed = Event::TopologyDescriptionChanged { topology_id: id(), previous: Arc::clone(&td), new: td };
    let m = topology_message(id(), &changed, &LogOptions::default()).unwrap();
    assert_eq!(string(&m, "newDescription").unwrap().len(), DEFAULT_MAX_DOCUMENT_LENGTH + 3);

    assert_eq!(truncate("abc".into(), 3), "abc");
    assert_eq!(truncate("abcd".into(), 3), "abc...");
}

#[test]
fn max_document_length_from_the_environment_value() {
    assert_eq!(LogOptions::from_env_value(None).max_document_length, 1000);
    assert_eq!(LogOptions::from_env_value(Some("250")).max_document_length, 250);
    assert_eq!(LogOptions::from_env_value(Some("lots")).max_document_length, 1000);
    assert_eq!(LogOptions::from_env_value(Some("-1")).max_document_length, 1000);
}

#[test]
fn relaxed_extended_json_of_every_reply_type() {
    let oid = ObjectId::from_bytes([0xab; 12]);
    let doc = rawdoc! {
        "i32": 1, "i64": 2_i64, "d": 1.5, "whole": 3.0, "inf": f64::INFINITY, "s": "q\"\\\n",
        "b": true, "n": null, "a": [1, "x", { "k": [] }], "oid": oid,
        "date": DateTime::from_millis(0),
        "bin": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3, 4] },
        "ts": bson::Timestamp { time: 5, increment: 6 },
    };
    let json = relaxed_extjson(&doc, usize::MAX);
    assert_eq!(
        json,
        "{\"i32\": 1, \"i64\": 2, \"d\": 1.5, \"whole\": 3.0, \"inf\": {\"$numberDouble\": \"Infinity\"}, \
         \"s\": \"q\\\"\\\\\\n\", \"b\": true, \"n\": null, \"a\": [1, \"x\", {\"k\": []}], \
         \"oid\": {\"$oid\": \"abababababababababababab\"}, \"date\": {\"$date\": \"1970-01-01T00:00:00Z\"}, \
         \"bin\": {\"$binary\": {\"base64\": \"AQIDBA==\", \"subType\": \"00\"}}, \
         \"ts\": {\"$timestamp\": {\"t\": 5, \"i\": 6}}}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["a"][2]["k"], serde_json::json!([]));
}

fn selection_event(kind: SelectionLogKind) -> SelectionLogEvent {
    SelectionLogEvent {
        kind,
        selector: "ReadPreference { mode: Primary }".into(),
        operation: "insert".into(),
        operation_id: Some(42),
        topology_description: "{type: Single, servers: []}".into(),
    }
}

/// server-selection.md, "Logging": the common fields, each message's own, and the levels.
#[test]
fn selection_messages_have_the_common_and_their_own_fields() {
    let options = LogOptions::default();
    let m = selection_message(&selection_event(SelectionLogKind::Started), &options);
    assert_eq!(m.component, LogComponent::ServerSelection);
    assert_eq!(m.component.as_str(), "serverSelection");
    assert_eq!(m.message, "Server selection started");
    assert_eq!(m.level, LogLevel::Debug);
    assert_eq!(keys(&m), ["selector", "operation", "operationId", "topologyDescription"]);
    assert_eq!(
        m.to_string(),
        "Server selection started for operation insert with ID 42. Selector: ReadPreference { mode: Primary }, \
         topology description: {type: Single, servers: []}"
    );

    let ok = SelectionLogKind::Succeeded { server_host: "a".into(), server_port: Some(27017) };
    let m = selection_message(&selection_event(ok), &options);
    assert_eq!(m.message, "Server selection succeeded");
    assert_eq!(string(&m, "serverHost").as_deref(), Some("a"));
    assert_eq!(int(&m, "serverPort"), Some(27017));
    assert!(m.to_string().contains("Selected server: a:27017."), "{m}");

    let failed = SelectionLogKind::Failed { failure: "timed out".into() };
    let m = selection_message(&selection_event(failed), &options);
    assert_eq!(m.message, "Server selection failed");
    assert_eq!(string(&m, "failure").as_deref(), Some("timed out"));

    let waiting = SelectionLogKind::Waiting { remaining_time_ms: 900 };
    let mut event = selection_event(waiting);
    event.operation_id = None;
    let m = selection_message(&event, &options);
    assert_eq!(m.message, "Waiting for suitable server to become available");
    assert_eq!(m.level, LogLevel::Info);
    assert_eq!(int(&m, "remainingTimeMS"), Some(900));
    assert_eq!(m.get("operationId"), None);
    assert!(m
        .to_string()
        .starts_with("Waiting for server to become available for operation insert. Remaining"));
}
