//! The pool-ready signal (`Command::MarkPoolReady`): CMAP "Marking a Connection Pool as
//! Ready", server-monitoring.md "Marking the connection pool as ready (CMAP only)" and the
//! SDAM "Connection Pool Management" rule.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::RawDocumentBuf;

use super::*;
use crate::app_error::{ApplicationError, ApplicationErrorKind};
use crate::events::{Command, Event, Output};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn raw(d: bson::Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&d).unwrap()
}

fn hello(t: &mut Topology, a: &str, reply: &RawDocumentBuf, now: Instant) -> Vec<Output> {
    t.handle(
        Input::HelloReply {
            address: addr(a),
            reply: reply.to_owned(),
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        now,
    );
    std::iter::from_fn(|| t.poll_output()).collect()
}

fn readies(outputs: &[Output]) -> Vec<(ServerAddress, u32)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Command(Command::MarkPoolReady { address, generation }) => {
                Some((address.clone(), *generation))
            }
            _ => None,
        })
        .collect()
}

fn rs(seeds: &[&str]) -> (Topology, Instant) {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds(seeds.iter().map(|s| addr(s)));
    config.replica_set_name = Some("rs".into());
    let mut t = Topology::new(config, now).unwrap();
    while t.poll_output().is_some() {}
    (t, now)
}

fn primary() -> RawDocumentBuf {
    raw(
        bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21},
    )
}

fn network_error(t: &mut Topology, a: &str, now: Instant) -> Vec<Output> {
    let mut e = ApplicationError::new(addr(a), 0, ApplicationErrorKind::Network);
    e.generation = t.pool_generation(&addr(a)).unwrap();
    t.handle(Input::ApplicationError(e), now);
    std::iter::from_fn(|| t.poll_output()).collect()
}

/// The first successful check readies the new (paused) pool once, before the update's events
/// and its outcomes; later checks do not ready it again.
#[test]
fn the_first_successful_check_readies_the_pool_before_the_update_is_published() {
    let (mut t, now) = rs(&["a"]);
    let out = hello(&mut t, "a", &primary(), now);
    assert_eq!(readies(&out), [(addr("a"), 0)]);
    let ready_at =
        out.iter().position(|o| matches!(o, Output::Command(Command::MarkPoolReady { .. }))).unwrap();
    let changed_at =
        out.iter().position(|o| matches!(o, Output::Event(Event::ServerDescriptionChanged { .. }))).unwrap();
    assert!(ready_at < changed_at, "{out:?}");
    assert!(readies(&hello(&mut t, "a", &primary(), now)).is_empty(), "a ready pool is not readied again");
}

/// A clear pauses the pool: the next successful check readies it again, with the clear's
/// generation, exactly once.
#[test]
fn a_cleared_pool_is_readied_by_the_next_successful_check() {
    let (mut t, now) = rs(&["a"]);
    hello(&mut t, "a", &primary(), now);
    let cleared = network_error(&mut t, "a", now);
    assert!(cleared.iter().any(|o| matches!(o, Output::Command(Command::ClearPool { generation: 1, .. }))));
    assert!(readies(&cleared).is_empty());
    assert_eq!(readies(&hello(&mut t, "a", &primary(), now)), [(addr("a"), 1)]);
    assert!(readies(&hello(&mut t, "a", &primary(), now)).is_empty());
    // Another clear, then a failed check (which clears too: server-monitoring.md, "Network
    // or command error during server check"), then a recovery: readied once, with the
    // generation of the last clear.
    network_error(&mut t, "a", now);
    let unknown = raw(bson::doc! {"ok": 0, "errmsg": "not yet"});
    assert!(readies(&hello(&mut t, "a", &unknown, now)).is_empty(), "Unknown is not usable");
    let generation = t.pool_generation(&addr("a")).unwrap();
    assert!(generation >= 2);
    assert_eq!(readies(&hello(&mut t, "a", &primary(), now)), [(addr("a"), generation)]);
}

/// A state change error that is not a shutdown marks the server Unknown without clearing its
/// pool: the pool stays ready, so the recovery readies nothing.
#[test]
fn a_server_marked_unknown_without_a_clear_keeps_its_ready_pool() {
    let (mut t, now) = rs(&["a"]);
    hello(&mut t, "a", &primary(), now);
    let kind = ApplicationErrorKind::Command {
        code: Some(10107),
        message: "not primary".into(),
        topology_version: None,
    };
    let mut e = ApplicationError::new(addr("a"), 0, kind);
    e.generation = 0;
    t.handle(Input::ApplicationError(e), now);
    let out: Vec<Output> = std::iter::from_fn(|| t.poll_output()).collect();
    assert!(!out.iter().any(|o| matches!(o, Output::Command(Command::ClearPool { .. }))));
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    assert!(readies(&hello(&mut t, "a", &primary(), now)).is_empty());
}

/// Only data-bearing members (and any known server of a direct connection) ready their pool:
/// arbiters, ghosts and other members do not, in a replica set; in Single they do.
#[test]
fn only_usable_server_types_ready_their_pool() {
    let member = |extra: bson::Document| {
        let mut d =
            bson::doc! {"ok": 1, "setName": "rs", "hosts": ["a:27017", "b:27017"], "maxWireVersion": 21};
        d.extend(extra);
        raw(d)
    };
    let cases = [
        (bson::doc! {"arbiterOnly": true}, false),
        (bson::doc! {"hidden": true}, false),
        (bson::doc! {"secondary": true}, true),
    ];
    for (extra, ready) in cases {
        let (mut t, now) = rs(&["a"]);
        let out = hello(&mut t, "a", &member(extra.clone()), now);
        assert_eq!(!readies(&out).is_empty(), ready, "{extra:?} in a replica set");
        // The same server on a direct connection.
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.direct_connection = Some(true);
        let mut single = Topology::new(config, now).unwrap();
        while single.poll_output().is_some() {}
        let out = hello(&mut single, "a", &member(extra.clone()), now);
        assert_eq!(readies(&out), [(addr("a"), 0)], "{extra:?} on a direct connection");
    }
    let ghost = raw(bson::doc! {"ok": 1, "isreplicaset": true, "maxWireVersion": 21});
    let now = crate::test_instant();
    let mut unknown = Topology::new(TopologyConfig::with_seeds([addr("a"), addr("b")]), now).unwrap();
    while unknown.poll_output().is_some() {}
    assert!(readies(&hello(&mut unknown, "a", &ghost, now)).is_empty(), "an RSGhost");
    let mongos = raw(bson::doc! {"ok": 1, "msg": "isdbgrid", "maxWireVersion": 21});
    assert_eq!(readies(&hello(&mut unknown, "b", &mongos, now)), [(addr("b"), 0)]);
}

/// A reply the update rules ignore (an older topologyVersion) readies nothing.
#[test]
fn an_ignored_reply_readies_nothing() {
    let (mut t, now) = rs(&["a"]);
    let tv = |c: i64| bson::doc! {"processId": ObjectId::from_bytes([1; 12]), "counter": c};
    let unknown = raw(bson::doc! {"ok": 0, "errmsg": "starting", "topologyVersion": tv(5)});
    hello(&mut t, "a", &unknown, now);
    let mut e = ApplicationError::new(
        addr("a"),
        0,
        ApplicationErrorKind::Command {
            code: Some(91),
            message: "shutting down".into(),
            topology_version: Some(crate::TopologyVersion {
                process_id: ObjectId::from_bytes([1; 12]),
                counter: 5,
            }),
        },
    );
    e.generation = t.pool_generation(&addr("a")).unwrap();
    t.handle(Input::ApplicationError(e), now);
    while t.poll_output().is_some() {}
    let stale = raw(bson::doc! {
        "ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21,
        "topologyVersion": tv(4),
    });
    let out = hello(&mut t, "a", &stale, now);
    assert!(readies(&out).is_empty(), "{out:?}");
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
}

/// A load balancer is never checked: its pool is ready from the start, and a service's
/// clear does not pause it.
#[test]
fn a_load_balancer_pool_is_ready_from_the_start() {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("lb")]);
    config.load_balanced = true;
    let mut t = Topology::new(config, now).unwrap();
    let out: Vec<Output> = std::iter::from_fn(|| t.poll_output()).collect();
    assert_eq!(readies(&out), [(addr("lb"), 0)]);
    let mut e = ApplicationError::new(addr("lb"), 0, ApplicationErrorKind::Network);
    e.service_id = Some(ObjectId::from_bytes([3; 12]));
    t.handle(Input::ApplicationError(e), now);
    let out: Vec<Output> = std::iter::from_fn(|| t.poll_output()).collect();
    assert!(out.iter().any(|o| matches!(o, Output::Command(Command::ClearPool { service_id: Some(_), .. }))));
    assert!(readies(&out).is_empty());
}
