//! The topology as a whole is bounded ([`MAX_SERVERS`]), not only each reply.

use std::time::Duration;

use bson::RawDocumentBuf;

use super::*;
use crate::topology_description::MAX_SERVERS;

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn reply(doc: bson::Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&doc).unwrap()
}

fn feed(t: &mut Topology, reply: &RawDocumentBuf, now: Instant) {
    let input = Input::HelloReply {
        address: addr("a"),
        reply: reply.to_owned(),
        round_trip_time: Duration::from_millis(1),
        awaited: false,
    };
    t.handle(input, now);
    while t.poll_output().is_some() {}
}

/// The scenario of issue 14: a secondary (no primary known) whose every reply names 1,023 new
/// hosts grew the topology by 1,023 servers per reply (20,460 in 10 s). The topology stops at
/// `MAX_SERVERS`, says why on the description, and a primary's list still applies in full.
#[test]
fn a_secondary_naming_new_hosts_on_every_reply_cannot_grow_the_topology_past_the_limit() {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.replica_set_name = Some("rs".into());
    let mut t = Topology::new(config, now).unwrap();
    while t.poll_output().is_some() {}
    for round in 0..20 {
        let mut hosts = vec!["a:27017".to_owned()];
        hosts.extend((0..1023).map(|i| format!("h{round}-{i}:27017")));
        let secondary = reply(bson::doc! {
            "ok": 1, "secondary": true, "setName": "rs", "hosts": hosts, "maxWireVersion": 21,
        });
        feed(&mut t, &secondary, now);
        let td = t.description();
        assert!(td.servers.len() <= MAX_SERVERS, "round {round}: {} servers", td.servers.len());
    }
    let td = t.description();
    assert_eq!(td.servers.len(), MAX_SERVERS);
    let error = td.server_limit_error.as_deref().expect("the limit is visible on the description");
    assert!(error.contains("reported by a:27017") && error.contains("MAX_SERVERS"), "{error}");
    // Every server has its monitor, and no more are tracked than described.
    assert_eq!(t.monitor_census().len(), MAX_SERVERS);

    // The primary's member list is authoritative: it applies in full, and the error clears.
    let primary = reply(bson::doc! {
        "ok": 1, "isWritablePrimary": true, "setName": "rs", "maxWireVersion": 21,
        "hosts": ["a:27017", "b:27017", "c:27017"],
    });
    feed(&mut t, &primary, now);
    let td = t.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetWithPrimary);
    let addresses: Vec<String> = td.servers.addresses().map(ToString::to_string).collect();
    assert_eq!(addresses, ["a:27017", "b:27017", "c:27017"]);
    assert_eq!(td.server_limit_error, None);
}
