use std::time::{Duration, Instant};

use bson::raw::RawDocument;

use super::*;
use crate::app_error::{ApplicationError, ApplicationErrorKind};
use crate::events::{Command, Output};
use crate::monitor::{FailureKind, RequestId, ServerMonitoringMode};
use crate::server_description::ServerType;
use bson::rawdoc;

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn rs_topology() -> (Topology, Instant) {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.replica_set_name = Some("rs".into());
    (Topology::new(config, now).unwrap(), now)
}

fn hello(t: &mut Topology, a: &str, reply: &RawDocument, now: Instant) {
    t.handle(Input::HelloReply { address: addr(a), reply, round_trip_time: Duration::from_millis(1) }, now);
    while t.poll_output().is_some() {}
}

fn commands(t: &mut Topology) -> Vec<Command> {
    std::iter::from_fn(|| t.poll_output())
        .filter_map(|o| match o {
            Output::Command(c) => Some(c),
            Output::Event(_) | Output::Selection { .. } | Output::SelectionLog { .. } => None,
        })
        .collect()
}

#[test]
fn a_pool_clear_cancels_the_check_in_flight_and_drops_its_late_reply() {
    let (mut t, now) = rs_topology();
    let first = commands(&mut t);
    let Some(Command::SendHello { request, connection, .. }) =
        first.iter().find(|c| matches!(c, Command::SendHello { .. })).cloned()
    else {
        panic!("no check started: {first:?}");
    };
    // An operation's network error marks the server Unknown and clears its pool: the check
    // in flight is cancelled and its connection closed.
    let later = now + Duration::from_millis(100);
    t.handle(
        Input::ApplicationError(ApplicationError::new(addr("a"), 0, ApplicationErrorKind::Network)),
        later,
    );
    let after = commands(&mut t);
    assert!(after.iter().any(|c| matches!(c, Command::ClearPool { .. })), "{after:?}");
    assert!(
        after.iter().any(|c| matches!(c, Command::CloseConnection { connection: c } if *c == connection)),
        "{after:?}"
    );
    // The cancelled exchange's late reply is dropped.
    let reply = rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21};
    t.handle(
        Input::MonitorReply { request, reply: &reply, round_trip_time: Duration::ZERO, more_to_come: false },
        later,
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    // The server is checked again, on a new connection.
    let next = t.poll_timeout().expect("a check is scheduled");
    assert!(next > later, "no immediate hot retry");
    t.handle_timeout(next);
    let again = commands(&mut t);
    assert!(
        again.iter().any(
            |c| matches!(c, Command::SendHello { connection: c, open: Some(_), .. } if *c != connection)
        ),
        "{again:?}"
    );
}

#[test]
fn rejects_forbidden_configurations() {
    let now = crate::test_instant();
    let two = TopologyConfig::with_seeds([addr("a"), addr("b")]);
    assert_eq!(Topology::new(TopologyConfig::default(), now).unwrap_err(), ConfigError::NoSeeds);
    let mut c = two.clone();
    c.direct_connection = Some(true);
    assert_eq!(Topology::new(c, now).unwrap_err(), ConfigError::DirectConnectionWithMultipleSeeds);
    let mut c = TopologyConfig::with_seeds([addr("a")]);
    c.load_balanced = true;
    c.replica_set_name = Some("rs".into());
    assert_eq!(Topology::new(c, now).unwrap_err(), ConfigError::LoadBalancedWithReplicaSet);
    let many = TopologyConfig::with_seeds((0..=MAX_SEEDS).map(|i| addr(&format!("h{i}"))));
    assert_eq!(Topology::new(many, now).unwrap_err(), ConfigError::TooManySeeds(MAX_SEEDS + 1));
    let mut c = TopologyConfig::with_seeds([addr("a")]);
    c.heartbeat_frequency = Duration::from_millis(10);
    assert!(Topology::new(c, now).unwrap_err().to_string().contains("500 ms"));
}

#[test]
fn ten_thousand_seeds_are_fine() {
    let now = crate::test_instant();
    let config = TopologyConfig::with_seeds((0..MAX_SEEDS).map(|i| addr(&format!("h{i}"))));
    let mut t = Topology::new(config, now).unwrap();
    let mut openings = 0;
    while let Some(o) = t.poll_output() {
        openings += usize::from(matches!(o, Output::Event(Event::ServerOpening { .. })));
    }
    assert_eq!(openings, MAX_SEEDS);
}

#[test]
fn hostile_hosts_list_marks_the_server_unknown() {
    let (mut t, now) = rs_topology();
    let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}:27017")).collect();
    let doc = bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": hosts, "maxWireVersion": 21};
    let reply = bson::RawDocumentBuf::try_from(&doc).unwrap();
    hello(&mut t, "a", &reply, now);
    let td = t.description();
    assert_eq!(td.servers.len(), 1);
    let a = td.server(&addr("a")).unwrap();
    assert_eq!(a.server_type, ServerType::Unknown);
    assert!(a.error.as_deref().unwrap().contains("\"hosts\""), "{:?}", a.error);
}

#[test]
fn election_id_going_backwards_is_a_stale_primary() {
    let (mut t, now) = rs_topology();
    let eid = |n: u8| ObjectId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]);
    let primary = |n: u8| {
        rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"],
        "setVersion": i64::MAX, "electionId": eid(n), "maxWireVersion": 21}
    };
    hello(&mut t, "a", &primary(5), now);
    assert_eq!(t.description().topology_type, TopologyType::ReplicaSetWithPrimary);
    assert_eq!(t.description().max_set_version, Some(i64::MAX));
    hello(&mut t, "a", &primary(4), now);
    let td = t.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetNoPrimary);
    assert_eq!(td.max_election_id, Some(eid(5)));
    let a = td.server(&addr("a")).unwrap();
    assert!(a.error.as_deref().unwrap().contains("primary marked stale"));
}

#[test]
fn replies_for_unknown_servers_and_after_close_are_ignored() {
    let (mut t, now) = rs_topology();
    let before = t.description();
    hello(&mut t, "zzz", &rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs"}, now);
    assert!(Arc::ptr_eq(&before, &t.description()));
    t.handle(Input::Close, now);
    let mut last = None;
    while let Some(o) = t.poll_output() {
        last = Some(o);
    }
    assert!(matches!(last, Some(Output::Event(Event::TopologyClosed { .. }))));
    hello(&mut t, "a", &rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs"}, now);
    assert!(t.poll_output().is_none());
}

/// Drains outputs, returning the SendHello/ReadReply commands (request, exhaust, open).
fn sends(t: &mut Topology) -> Vec<(RequestId, bool, bool)> {
    let mut out = Vec::new();
    while let Some(o) = t.poll_output() {
        match o {
            Output::Command(Command::SendHello { request, exhaust_allowed, open, .. }) => {
                out.push((request, exhaust_allowed, open.is_some()));
            }
            Output::Command(Command::ReadReply { request, .. }) => out.push((request, true, false)),
            Output::Command(
                Command::CloseConnection { .. }
                | Command::ClearPool { .. }
                | Command::ResolveSrv { .. }
                | Command::ResolveTxt { .. },
            )
            | Output::Event(_)
            | Output::Selection { .. }
            | Output::SelectionLog { .. } => {}
        }
    }
    out
}

fn tv(counter: i64) -> bson::Document {
    bson::doc! {"processId": ObjectId::from_bytes([7; 12]), "counter": counter}
}

fn reply(t: &mut Topology, request: RequestId, doc: &bson::Document, more: bool, now: Instant) {
    let raw = bson::RawDocumentBuf::try_from(doc).unwrap();
    t.handle(
        Input::MonitorReply {
            request,
            reply: &raw,
            round_trip_time: Duration::from_millis(5),
            more_to_come: more,
        },
        now,
    );
}

fn standalone(config: TopologyConfig) -> (Topology, Instant) {
    let now = crate::test_instant();
    (Topology::new(config, now).unwrap(), now)
}

#[test]
fn polling_checks_every_heartbeat_and_never_two_at_once() {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.server_monitoring_mode = ServerMonitoringMode::Poll;
    let (mut t, t0) = standalone(config);
    let first = sends(&mut t);
    assert_eq!(first.len(), 1, "one handshake at start");
    assert!(first[0].2, "the first check opens the connection");
    assert_eq!(t.poll_timeout(), None, "nothing is due while the check runs");
    t.handle(Input::RequestImmediateCheck, t0);
    assert!(sends(&mut t).is_empty(), "an immediate check is ignored while one runs");
    let hello =
        bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
    reply(&mut t, first[0].0, &hello, false, t0);
    assert_eq!(t.description().topology_type, TopologyType::Single);
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    // An immediate request 100 ms later waits for minHeartbeatFrequencyMS.
    t.handle(Input::RequestImmediateCheck, t0 + Duration::from_millis(100));
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(500)));
    t.handle_timeout(t0 + Duration::from_millis(500));
    let second = sends(&mut t);
    assert_eq!(second.len(), 1);
    assert!(!second[0].1 && !second[0].2, "a plain hello on the same connection, not awaitable");
}

#[test]
fn streaming_uses_awaitable_hello_and_falls_back_when_the_server_does_not_stream() {
    let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a")]));
    let hs = sends(&mut t);
    let hello = bson::doc! {"ok": 1, "isWritablePrimary": true, "helloOk": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
    reply(&mut t, hs[0].0, &hello, false, t0);
    let next = sends(&mut t);
    assert_eq!(next.len(), 1, "streaming: the next check starts at once");
    assert!(next[0].1, "awaitable hello with exhaustAllowed");
    // RTT runs beside it, a heartbeat later.
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    // A real streaming server answers with moreToCome: keep reading.
    reply(&mut t, next[0].0, &hello, true, t0 + Duration::from_secs(1));
    let more = sends(&mut t);
    assert_eq!(more, vec![(next[0].0, true, false)], "a ReadReply for the same exchange");
    // The same reply without moreToCome: this server does not stream; poll it.
    reply(&mut t, next[0].0, &hello, false, t0 + Duration::from_secs(2));
    assert!(sends(&mut t).is_empty(), "no hot loop");
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(12)));
    t.handle_timeout(t0 + Duration::from_secs(12));
    let polled = sends(&mut t);
    assert_eq!(polled.len(), 1);
    assert!(!polled[0].1, "a plain hello: polling from now on");
}

#[test]
fn network_error_on_a_known_server_retries_once_then_sleeps() {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.server_monitoring_mode = ServerMonitoringMode::Poll;
    let (mut t, t0) = standalone(config);
    let hs = sends(&mut t);
    let hello = bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21};
    reply(&mut t, hs[0].0, &hello, false, t0);
    t.handle_timeout(t0 + Duration::from_secs(10));
    let check = sends(&mut t);
    let fail = |t: &mut Topology, r, at| {
        t.handle(Input::MonitorFailed { request: r, kind: FailureKind::Network, error: "reset".into() }, at);
    };
    let at = t0 + Duration::from_secs(10);
    fail(&mut t, check[0].0, at);
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    let retry = sends(&mut t);
    assert_eq!(retry.len(), 1, "one immediate retry");
    assert!(retry[0].2, "on a new connection");
    fail(&mut t, retry[0].0, at);
    assert!(sends(&mut t).is_empty(), "no second immediate retry");
    assert_eq!(t.poll_timeout(), Some(at + Duration::from_secs(10)));
    // A late reply to the failed exchange is dropped.
    reply(&mut t, retry[0].0, &hello, false, at);
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    assert_eq!(t.pool_generation(&addr("a")), Some(2), "the pool was cleared on each failure");
}

#[test]
fn removed_servers_stop_their_monitors() {
    let mut config = TopologyConfig::with_seeds([addr("a"), addr("b")]);
    config.server_monitoring_mode = ServerMonitoringMode::Poll;
    let (mut t, t0) = standalone(config);
    let checks = sends(&mut t);
    assert_eq!(checks.len(), 2);
    let primary = bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21};
    reply(&mut t, checks[0].0, &primary, false, t0);
    let mut closed = false;
    while let Some(o) = t.poll_output() {
        closed |= matches!(o, Output::Command(Command::CloseConnection { .. }));
    }
    assert!(closed, "b's monitoring connection is closed");
    assert_eq!(t.description().servers.len(), 1);
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)), "only a's schedule remains");
}
