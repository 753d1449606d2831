use std::time::{Duration, Instant};

use bson::raw::RawDocument;

use super::*;
use crate::app_error::{ApplicationError, ApplicationErrorKind};
use crate::events::{Command, Output};
use crate::monitor::{ConnectionId, FailureKind, RequestId, ServerMonitoringMode};
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
    t.handle(
        Input::HelloReply {
            address: addr(a),
            reply: reply.to_owned(),
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        now,
    );
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
        Input::MonitorReply {
            request,
            reply: reply.clone(),
            round_trip_time: Duration::ZERO,
            more_to_come: false,
        },
        later,
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    // The server is checked again, on a new connection.
    let next = t.poll_timeout().expect("a check is scheduled");
    assert!(next > later, "no immediate hot retry");
    t.handle_timeout(next);
    let again = commands(&mut t);
    assert!(
        again
            .iter()
            .any(|c| matches!(c, Command::SendHello { connection: c, open: true, .. } if *c != connection)),
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
                out.push((request, exhaust_allowed, open));
            }
            Output::Command(Command::ReadReply { request, .. }) => out.push((request, true, false)),
            Output::Command(
                Command::CloseConnection { .. }
                | Command::ClearPool { .. }
                | Command::MarkPoolReady { .. }
                | Command::ResolveSrv { .. }
                | Command::ResolveTxt { .. }
                | Command::RequestCheck { .. }
                | Command::CancelCheck { .. },
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
            reply: raw.clone(),
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
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)), "only the check's deadline");
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

/// server-monitoring.md, "Streaming hello or legacy hello": a successful reply without
/// moreToCome starts a new awaitable hello with that reply's topologyVersion. Streaming is
/// never dropped for good (issue #14): a server that answers awaitable hellos at once is checked
/// once per minHeartbeatFrequencyMS, keeps its RTT connection, and is streamed again as soon
/// as it streams.
#[test]
fn streaming_uses_awaitable_hello_and_is_never_dropped_for_good() {
    let ms = Duration::from_millis;
    let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a")]));
    let hs = sends(&mut t);
    let hello = |n| bson::doc! {"ok": 1, "isWritablePrimary": true, "helloOk": true, "maxWireVersion": 21, "topologyVersion": tv(n)};
    reply(&mut t, hs[0].0, &hello(1), false, t0);
    let next = sends(&mut t);
    assert_eq!(next.len(), 1, "streaming: the next check starts at once");
    assert!(next[0].1, "awaitable hello with exhaustAllowed");
    // A real streaming server answers with moreToCome: keep reading.
    reply(&mut t, next[0].0, &hello(1), true, t0 + Duration::from_secs(1));
    let more = sends(&mut t);
    assert_eq!(more, vec![(next[0].0, true, false)], "a ReadReply for the same exchange");
    // The stream ends (no moreToCome) after the server held the hello 1 s: a new awaitable
    // hello at once, with the reply's topologyVersion.
    let at = t0 + Duration::from_secs(2);
    reply(&mut t, next[0].0, &hello(2), false, at);
    let mut again = Vec::new();
    let mut closed = false;
    while let Some(o) = t.poll_output() {
        match o {
            Output::Command(Command::SendHello { request, exhaust_allowed, open, command, .. }) => {
                assert_eq!(command.get_document("topologyVersion").unwrap().get_i64("counter").unwrap(), 2);
                again.push((request, exhaust_allowed, open));
            }
            Output::Command(Command::CloseConnection { .. }) => closed = true,
            _ => {}
        }
    }
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].1 && !again[0].2, "awaitable again, on the same connection");
    assert!(!closed, "no connection is closed: the RTT connection stays");
    // This time the server answers at once, without moreToCome: the next awaitable hello
    // waits until minHeartbeatFrequencyMS after this one started, then streams again.
    reply(&mut t, again[0].0, &hello(2), false, at + ms(3));
    assert!(sends(&mut t).is_empty(), "no hot loop");
    assert_eq!(t.poll_timeout(), Some(at + ms(500)));
    t.handle_timeout(at + ms(500));
    let later = sends(&mut t);
    assert_eq!(later.len(), 1);
    assert!(later[0].1, "still awaitable: streaming is not dropped");
    // The server streams properly again: moreToCome, read on.
    reply(&mut t, later[0].0, &hello(3), true, at + ms(900));
    assert_eq!(sends(&mut t), vec![(later[0].0, true, false)]);
    // The RTT task still runs a heartbeat after streaming began.
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(10)));
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

/// An application error at the pool's current generation (one place to build them).
fn app_error(t: &Topology, address: ServerAddress, kind: ApplicationErrorKind) -> ApplicationError {
    let generation = t.pool_generation(&address).unwrap_or(0);
    ApplicationError::new(address, generation, kind)
}

/// Every output, drained.
fn outputs(t: &mut Topology) -> Vec<Output> {
    std::iter::from_fn(|| t.poll_output()).collect()
}

fn events_of(out: &[Output]) -> Vec<&Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            Output::Command(_) | Output::Selection { .. } | Output::SelectionLog { .. } => None,
        })
        .collect()
}

fn send_hellos(out: &[Output]) -> Vec<(RequestId, ConnectionId, bool, Option<Instant>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Command(Command::SendHello { request, connection, open, deadline, .. }) => {
                Some((*request, *connection, *open, *deadline))
            }
            _ => None,
        })
        .collect()
}

fn primary_doc() -> bson::Document {
    bson::doc! {"ok": 1, "isWritablePrimary": true, "helloOk": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21}
}

fn raw(doc: &bson::Document) -> bson::RawDocumentBuf {
    bson::RawDocumentBuf::try_from(doc).unwrap()
}

/// Counts heartbeat events: (started, succeeded, failed).
fn heartbeats(events: &[&Event]) -> (usize, usize, usize) {
    events.iter().fold((0, 0, 0), |(s, ok, f), e| match e {
        Event::ServerHeartbeatStarted { .. } => (s + 1, ok, f),
        Event::ServerHeartbeatSucceeded { .. } => (s, ok + 1, f),
        Event::ServerHeartbeatFailed { .. } => (s, ok, f + 1),
        _ => (s, ok, f),
    })
}

/// Issue #13, failure 1: a `SendHello` the I/O layer never answers no longer stalls the
/// monitor. The core fails it at its deadline (connectTimeoutMS) at `handle_timeout`, as a
/// timeout (server-monitoring.md, "Network or command error during server check": heartbeat
/// failed, server Unknown, pool cleared with interruptInUseConnections), asks for the
/// connection to be closed, and the monitor goes on.
#[test]
fn an_unanswered_send_hello_times_out_at_its_deadline_and_the_monitor_goes_on() {
    let (mut t, t0) = rs_topology();
    let first = send_hellos(&outputs(&mut t));
    let (request, connection, open, deadline) = first[0];
    assert!(open);
    assert_eq!(
        deadline,
        Some(t0 + Duration::from_secs(10)),
        "connectTimeoutMS's default, one overall deadline"
    );
    // Nothing answers. An immediate check request changes nothing while the check runs.
    t.handle(Input::RequestImmediateCheck, t0 + Duration::from_secs(1));
    assert!(send_hellos(&outputs(&mut t)).is_empty());
    assert_eq!(t.poll_timeout(), deadline, "the core wakes at the deadline");
    t.handle_timeout(t0 + Duration::from_secs(10));
    let out = outputs(&mut t);
    assert!(out.contains(&Output::Command(Command::CloseConnection { connection })), "{out:?}");
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Command(Command::ClearPool { interrupt_in_use_connections: true, generation: 1, .. })
        )),
        "{out:?}"
    );
    assert_eq!(heartbeats(&events_of(&out)), (0, 0, 1));
    let a = t.description().server(&addr("a")).cloned().unwrap();
    assert_eq!(a.server_type, ServerType::Unknown);
    assert!(a.error.as_deref().unwrap().contains("no reply from a:27017 within 10000 ms"), "{:?}", a.error);
    // The late reply is dropped.
    let late = raw(&primary_doc());
    t.handle(
        Input::MonitorReply {
            request,
            reply: late.clone(),
            round_trip_time: Duration::ZERO,
            more_to_come: false,
        },
        t0 + Duration::from_secs(11),
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    // The monitor goes on: the server was Unknown, so it sleeps a heartbeat, or checks when
    // asked, minHeartbeatFrequencyMS after the failure.
    t.handle(Input::RequestImmediateCheck, t0 + Duration::from_secs(11));
    let again = send_hellos(&outputs(&mut t));
    assert_eq!(again.len(), 1);
    assert!(again[0].2 && again[0].1 != connection, "a new connection");
    assert_eq!(again[0].3, Some(t0 + Duration::from_secs(21)));
}

/// Issue #13, failure 4: one timeout convention. `connectTimeoutMS=0` is no limit: `None`
/// everywhere (config, SendHello, ReadReply), never a zero duration; a zero duration in the
/// configuration is refused.
#[test]
fn connect_timeout_zero_is_no_deadline_never_a_zero_duration() {
    let cs = crate::ConnectionString::parse("mongodb://a/?connectTimeoutMS=0").unwrap();
    let config = TopologyConfig::from_connection_string(&cs);
    assert_eq!(config.connect_timeout, None);
    let (mut t, t0) = standalone(config);
    let first = send_hellos(&outputs(&mut t));
    assert_eq!((first[0].2, first[0].3), (true, None), "opens the connection, no deadline");
    assert_eq!(t.poll_timeout(), None, "nothing to time out");
    let hello =
        bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
    reply(&mut t, first[0].0, &hello, false, t0);
    let out = outputs(&mut t);
    let awaitable = send_hellos(&out);
    assert_eq!(awaitable[0].3, None, "the awaitable hello stays unlimited (\"Socket timeout\")");
    reply(&mut t, awaitable[0].0, &hello, true, t0 + Duration::from_secs(10));
    let out = outputs(&mut t);
    assert!(
        out.iter().any(|o| matches!(o, Output::Command(Command::ReadReply { deadline: None, .. }))),
        "{out:?}"
    );

    let mut zero = TopologyConfig::with_seeds([addr("a")]);
    zero.connect_timeout = Some(Duration::ZERO);
    assert_eq!(Topology::new(zero, t0).unwrap_err(), ConfigError::ZeroConnectTimeout);
}

/// server-monitoring.md, "Socket timeout": connectTimeoutMS for the handshake and polling
/// hellos, connectTimeoutMS + heartbeatFrequencyMS for awaitable hellos and streamed reads;
/// the RTT exchange has its own deadline and fails alone.
#[test]
fn deadlines_follow_socket_timeout_and_rtt_timeouts_do_not_touch_the_topology() {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.connect_timeout = Some(Duration::from_secs(2));
    let (mut t, t0) = standalone(config);
    let hs = send_hellos(&outputs(&mut t));
    assert_eq!(hs[0].3, Some(t0 + Duration::from_secs(2)));
    let hello =
        bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
    reply(&mut t, hs[0].0, &hello, false, t0);
    let aw = send_hellos(&outputs(&mut t));
    assert_eq!(aw[0].3, Some(t0 + Duration::from_secs(12)), "connectTimeoutMS + heartbeatFrequencyMS");
    // The RTT measurement a heartbeat later gets connectTimeoutMS; unanswered, it fails alone.
    t.handle_timeout(t0 + Duration::from_secs(10));
    let rtt = send_hellos(&outputs(&mut t));
    assert_eq!(rtt.len(), 1);
    assert_eq!(rtt[0].3, Some(t0 + Duration::from_secs(12)));
    // Both deadlines come at 12 s: the awaitable hello times out (a check failure), the RTT
    // exchange too (its connection closed, no event for it).
    reply(&mut t, aw[0].0, &hello, true, t0 + Duration::from_secs(11));
    let out = outputs(&mut t);
    assert!(out.iter().any(|o| matches!(o, Output::Command(Command::ReadReply { deadline: Some(d), .. }) if *d == t0 + Duration::from_secs(23))));
    t.handle_timeout(t0 + Duration::from_secs(12));
    let out = outputs(&mut t);
    assert_eq!(out, vec![Output::Command(Command::CloseConnection { connection: rtt[0].1 })]);
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Standalone);
}

fn driver_config(seeds: &[&str]) -> TopologyConfig {
    let mut config = TopologyConfig::with_seeds(seeds.iter().map(|s| addr(s)));
    config.replica_set_name = Some("rs".into());
    config.monitor_owner = crate::MonitorOwner::Driver;
    config
}

/// Issue #13, failure 8 (by address): `Input::CheckFailed` goes through "Network or command
/// error during server check": paired heartbeat events, the server Unknown, the pool cleared
/// (with interruptInUseConnections after a timeout) and the one retry asked of the driver.
#[test]
fn check_failed_by_address_clears_the_pool_publishes_paired_heartbeats_and_retries() {
    let (mut t, t0) = standalone(driver_config(&["a"]));
    let out = outputs(&mut t);
    assert!(send_hellos(&out).is_empty(), "driver-owned: no SendHello at all");
    assert_eq!(t.poll_timeout(), None, "and no timer");
    let primary = raw(&primary_doc());
    t.handle(Input::CheckStarted { address: addr("a"), awaited: false }, t0);
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_millis(4),
            awaited: false,
        },
        t0,
    );
    let out = outputs(&mut t);
    assert_eq!(heartbeats(&events_of(&out)), (1, 1, 0));
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::RSPrimary);
    // The next check fails with a timeout.
    let at = t0 + Duration::from_secs(10);
    t.handle(
        Input::CheckFailed { address: addr("a"), kind: FailureKind::Timeout, error: "timed out".into() },
        at,
    );
    let out = outputs(&mut t);
    assert_eq!(heartbeats(&events_of(&out)), (1, 0, 1), "a result without CheckStarted is still paired");
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Command(Command::ClearPool { generation: 1, interrupt_in_use_connections: true, .. })
        )),
        "{out:?}"
    );
    assert!(
        out.contains(&Output::Command(Command::RequestCheck { address: addr("a"), immediate: true })),
        "the retry: {out:?}"
    );
    assert_eq!(t.pool_generation(&addr("a")), Some(1));
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    // The retry fails too: the server was Unknown, no second retry.
    t.handle(
        Input::CheckFailed { address: addr("a"), kind: FailureKind::Network, error: "refused".into() },
        at,
    );
    let out = outputs(&mut t);
    assert!(!out.iter().any(|o| matches!(o, Output::Command(Command::RequestCheck { .. }))), "{out:?}");
    assert_eq!(t.pool_generation(&addr("a")), Some(2));
}

/// Issue #13, failure 8 (core mode): a check failure reported by address ends the core's
/// check in flight: its connection is closed and its late `MonitorReply` no longer makes the
/// server RSPrimary again; a known server is retried at once.
#[test]
fn check_failed_by_address_cancels_the_check_in_flight() {
    let (mut t, t0) = rs_topology();
    let hs = send_hellos(&outputs(&mut t));
    reply(&mut t, hs[0].0, &primary_doc(), false, t0);
    let out = outputs(&mut t);
    let check = send_hellos(&out);
    assert!(check.is_empty(), "no topologyVersion: polling, the next check a heartbeat later");
    t.handle_timeout(t0 + Duration::from_secs(10));
    let check = send_hellos(&outputs(&mut t));
    let at = t0 + Duration::from_secs(10) + Duration::from_millis(5);
    t.handle(
        Input::CheckFailed { address: addr("a"), kind: FailureKind::Network, error: "reset".into() },
        at,
    );
    let out = outputs(&mut t);
    assert!(out.contains(&Output::Command(Command::CloseConnection { connection: check[0].1 })), "{out:?}");
    assert_eq!(
        heartbeats(&events_of(&out)),
        (1, 0, 1),
        "the core's check ends as failed, once; the retry starts"
    );
    assert_eq!(t.pool_generation(&addr("a")), Some(1));
    let retry = send_hellos(&out);
    assert_eq!(retry.len(), 1, "one immediate retry: {out:?}");
    assert!(retry[0].2, "on a new connection");
    // The cancelled exchange's late reply is dropped.
    let late = raw(&primary_doc());
    t.handle(
        Input::MonitorReply {
            request: check[0].0,
            reply: late.clone(),
            round_trip_time: Duration::ZERO,
            more_to_come: false,
        },
        at,
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
}

/// Issue #13, failure 8: `Input::HelloReply` keeps the spec's RTT moving average and
/// minimum (server-selection.md, "Calculation of Average Round Trip Times"; server-monitoring.md,
/// "Measuring RTT") instead of one raw sample; an awaited reply is no sample.
#[test]
fn hello_reply_by_address_keeps_the_rtt_moving_average_and_minimum() {
    let (mut t, t0) = standalone(driver_config(&["a"]));
    let primary = raw(&primary_doc());
    for (i, ms) in [10u64, 20, 30].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(10 * i as u64);
        t.handle(
            Input::HelloReply {
                address: addr("a"),
                reply: primary.clone(),
                round_trip_time: Duration::from_millis(ms),
                awaited: false,
            },
            at,
        );
    }
    let a = t.description().server(&addr("a")).cloned().unwrap();
    // 10, then 0.2 * 20 + 0.8 * 10 = 12, then 0.2 * 30 + 0.8 * 12 = 15.6.
    assert_eq!(a.round_trip_time, Some(Duration::from_micros(15_600)));
    assert_eq!(a.min_round_trip_time, Some(Duration::from_millis(10)));
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_secs(9),
            awaited: true,
        },
        t0 + Duration::from_secs(40),
    );
    assert_eq!(
        t.description().server(&addr("a")).unwrap().round_trip_time,
        Some(Duration::from_micros(15_600)),
        "a streamed reply is no sample"
    );
    t.handle(
        Input::RoundTripTime { address: addr("a"), round_trip_time: Duration::from_micros(5_600) },
        t0 + Duration::from_secs(41),
    );
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_secs(9),
            awaited: true,
        },
        t0 + Duration::from_secs(50),
    );
    let a = t.description().server(&addr("a")).cloned().unwrap();
    assert_eq!(a.round_trip_time, Some(Duration::from_micros(13_600)), "the driver's RTT sample counts");
    assert_eq!(a.min_round_trip_time, Some(Duration::from_micros(5_600)));
}

/// The reply a check hands in is the one its `ServerHeartbeatSucceeded` carries ("SDAM
/// Monitoring": the event has the reply), moved, not copied: the event's bytes are the input's
/// buffer, on both paths (by address and through the core's own exchange).
#[test]
fn the_heartbeat_event_carries_the_reply_it_was_given_without_a_copy() {
    let heartbeat_reply = |out: &[Output]| {
        events_of(out).into_iter().find_map(|e| match e {
            Event::ServerHeartbeatSucceeded { reply, .. } => Some(reply.as_bytes().as_ptr()),
            _ => None,
        })
    };
    let (mut t, t0) = standalone(driver_config(&["a"]));
    outputs(&mut t);
    let reply = raw(&primary_doc());
    let bytes = reply.as_bytes().as_ptr();
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply,
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        t0,
    );
    assert_eq!(heartbeat_reply(&outputs(&mut t)), Some(bytes), "by address");

    let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a")]));
    let (request, ..) = send_hellos(&outputs(&mut t))[0];
    let reply = raw(&primary_doc());
    let bytes = reply.as_bytes().as_ptr();
    t.handle(
        Input::MonitorReply {
            request,
            reply,
            round_trip_time: Duration::from_millis(1),
            more_to_come: false,
        },
        t0,
    );
    assert_eq!(heartbeat_reply(&outputs(&mut t)), Some(bytes), "through the core's exchange");
}

/// Driver-owned monitoring: an application's network error cancels the driver's check in flight
/// ("hello or legacy hello Cancellation"): `CancelCheck`, a paired `ServerHeartbeatFailed`, and
/// the cancelled check's late result ignored. Immediate checks are asked with `RequestCheck`.
#[test]
fn driver_owned_checks_are_cancelled_and_requested_by_command() {
    let (mut t, t0) = standalone(driver_config(&["a"]));
    let primary = raw(&primary_doc());
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        t0,
    );
    outputs(&mut t);
    t.handle(Input::CheckStarted { address: addr("a"), awaited: true }, t0 + Duration::from_secs(1));
    outputs(&mut t);
    t.handle(
        Input::ApplicationError(app_error(&t, addr("a"), ApplicationErrorKind::Network)),
        t0 + Duration::from_secs(2),
    );
    let out = outputs(&mut t);
    assert!(out.contains(&Output::Command(Command::CancelCheck { address: addr("a") })), "{out:?}");
    let failed: Vec<_> =
        events_of(&out).into_iter().filter(|e| matches!(e, Event::ServerHeartbeatFailed { .. })).collect();
    assert!(
        matches!(failed[..], [Event::ServerHeartbeatFailed { failure, awaited: true, .. }] if failure.starts_with("check cancelled")),
        "{failed:?}"
    );
    // The cancelled check's result arrives late: ignored.
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_millis(1),
            awaited: true,
        },
        t0 + Duration::from_secs(3),
    );
    assert!(outputs(&mut t).is_empty());
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    // A selection waits: the driver's monitors are asked for checks.
    t.handle(Input::RequestImmediateCheck, t0 + Duration::from_secs(3));
    assert_eq!(
        outputs(&mut t),
        vec![Output::Command(Command::RequestCheck { address: addr("a"), immediate: false })]
    );
    // The next check's result counts.
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        t0 + Duration::from_secs(4),
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::RSPrimary);
}

/// server-monitoring.md, "Clients update the topology from each handshake": a hello seen on an
/// application connection's handshake updates the description, with no heartbeat event and no
/// change to the monitor's schedule.
#[test]
fn an_application_handshake_updates_the_description_without_heartbeats() {
    let (mut t, t0) = rs_topology();
    outputs(&mut t);
    let deadline = t.poll_timeout();
    let primary = raw(&primary_doc());
    t.handle(
        Input::ApplicationHandshake {
            address: addr("a"),
            reply: &primary,
            round_trip_time: Duration::from_millis(3),
        },
        t0,
    );
    let out = outputs(&mut t);
    assert_eq!(heartbeats(&events_of(&out)), (0, 0, 0));
    assert!(send_hellos(&out).is_empty());
    let a = t.description().server(&addr("a")).cloned().unwrap();
    assert_eq!(a.server_type, ServerType::RSPrimary);
    assert_eq!(a.round_trip_time, Some(Duration::from_millis(3)));
    assert_eq!(t.poll_timeout(), deadline, "the monitor's check in flight is untouched");
    let error = raw(&bson::doc! {"ok": 0, "errmsg": "auth failed", "code": 18});
    t.handle(
        Input::ApplicationHandshake {
            address: addr("a"),
            reply: &error,
            round_trip_time: Duration::from_millis(3),
        },
        t0,
    );
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    assert_eq!(t.pool_generation(&addr("a")), Some(1));
}

/// Issue #14: a server that completes the handshake and then closes the connection on every
/// awaitable hello gets at most one new monitoring connection (and one pool clear) per
/// minHeartbeatFrequencyMS, not a hot loop.
#[test]
fn a_server_failing_every_awaitable_hello_opens_one_connection_per_min_heartbeat_frequency() {
    let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a")]));
    let hello =
        bson::doc! {"ok": 1, "isWritablePrimary": true, "maxWireVersion": 21, "topologyVersion": tv(1)};
    let mut now = t0;
    let mut opened = Vec::new();
    let mut out = outputs(&mut t);
    for _ in 0..200 {
        for (request, _, open, _) in send_hellos(&out) {
            if open {
                opened.push(now);
                reply(&mut t, request, &hello, false, now);
            } else {
                t.handle(
                    Input::MonitorFailed { request, kind: FailureKind::Network, error: "closed".into() },
                    now,
                );
            }
        }
        out = outputs(&mut t);
        if send_hellos(&out).is_empty() {
            let Some(next) = t.poll_timeout() else { break };
            // (The RTT connection opens at 10 s.)
            if next > t0 + Duration::from_millis(9_900) {
                break;
            }
            now = next;
            t.handle_timeout(now);
            out = outputs(&mut t);
        }
    }
    assert!(opened.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(500)), "{opened:?}");
    assert_eq!(opened.len(), 20, "one connection per 500 ms over 9.9 s: {opened:?}");
    assert_eq!(t.pool_generation(&addr("a")), Some(20), "one pool clear per failed awaitable hello");
}

/// server-discovery-and-monitoring-logging-and-monitoring.md, "Heartbeats": every
/// `ServerHeartbeatStarted` is followed by a Succeeded or Failed, also when the check ends
/// because it was cancelled, its server removed, or the topology closed.
#[test]
fn heartbeat_events_are_paired_when_a_check_is_cancelled_removed_or_closed() {
    let (mut t, t0) = standalone(TopologyConfig::with_seeds([addr("a"), addr("b"), addr("c")]));
    let mut events = Vec::new();
    let collect = |t: &mut Topology, events: &mut Vec<Event>| {
        for o in outputs(t) {
            if let Output::Event(e) = o {
                events.push(e);
            }
        }
    };
    collect(&mut t, &mut events);
    // c's check is cancelled by an application error.
    t.handle(Input::ApplicationError(app_error(&t, addr("c"), ApplicationErrorKind::Network)), t0);
    collect(&mut t, &mut events);
    // b is removed: a primary that does not list it.
    let primary = raw(
        &bson::doc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017", "c:27017"], "maxWireVersion": 21},
    );
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: primary.clone(),
            round_trip_time: Duration::from_millis(1),
            awaited: false,
        },
        t0,
    );
    collect(&mut t, &mut events);
    assert!(t.description().server(&addr("b")).is_none());
    // Close with the new checks in flight.
    t.handle(Input::RequestImmediateCheck, t0 + Duration::from_secs(1));
    t.handle_timeout(t0 + Duration::from_secs(1));
    t.handle(Input::Close, t0 + Duration::from_secs(1));
    collect(&mut t, &mut events);
    let mut open: BTreeMap<ServerAddress, usize> = BTreeMap::new();
    let mut reasons = Vec::new();
    for e in &events {
        match e {
            Event::ServerHeartbeatStarted { address, .. } => *open.entry(address.clone()).or_default() += 1,
            Event::ServerHeartbeatSucceeded { address, .. } => *open.get_mut(address).unwrap() -= 1,
            Event::ServerHeartbeatFailed { address, failure, .. } => {
                *open.get_mut(address).unwrap() -= 1;
                reasons.push((address.clone(), failure.clone()));
            }
            _ => {}
        }
    }
    assert!(open.values().all(|n| *n == 0), "unpaired: {open:?}");
    let reason = |a: &str| reasons.iter().find(|(x, _)| *x == addr(a)).map(|(_, r)| r.clone()).unwrap();
    assert!(reason("c").contains("application network error"), "{reasons:?}");
    assert!(reason("b").contains("removed from the topology"), "{reasons:?}");
    assert!(reasons.iter().any(|(_, r)| r.contains("topology was closed")), "{reasons:?}");
}

/// SDAM "Client closing" and load-balancers.md: ServerClosed for each server, then a
/// TopologyDescriptionChanged to an Unknown description without servers, then TopologyClosed
/// (the order of the unified `*-emit-topology-changed-before-close` files).
#[test]
fn close_publishes_an_unknown_description_before_topology_closed() {
    for load_balanced in [false, true] {
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.load_balanced = load_balanced;
        if !load_balanced {
            config.replica_set_name = Some("rs".into());
        }
        let (mut t, t0) = standalone(config);
        if !load_balanced {
            let primary = raw(&primary_doc());
            t.handle(
                Input::HelloReply {
                    address: addr("a"),
                    reply: primary.clone(),
                    round_trip_time: Duration::from_millis(1),
                    awaited: false,
                },
                t0,
            );
        }
        outputs(&mut t);
        let before = t.description().topology_type;
        t.handle(Input::Close, t0);
        let names: Vec<String> = events_of(&outputs(&mut t))
            .into_iter()
            .filter(|e| !matches!(e, Event::ServerHeartbeatFailed { .. }))
            .map(|e| match e {
                Event::ServerClosed { .. } => "ServerClosed".to_owned(),
                Event::TopologyDescriptionChanged { previous, new, .. } => {
                    assert_eq!(previous.topology_type, before);
                    assert!(new.servers.is_empty());
                    format!(
                        "TopologyDescriptionChanged {:?} -> {:?}",
                        previous.topology_type, new.topology_type
                    )
                }
                Event::TopologyClosed { .. } => "TopologyClosed".to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "ServerClosed".to_owned(),
                format!("TopologyDescriptionChanged {before:?} -> Unknown"),
                "TopologyClosed".to_owned()
            ],
            "load balanced: {load_balanced}"
        );
        assert_eq!(t.description().topology_type, TopologyType::Unknown);
    }
}

/// Issue #14: the RTT is reset when a server goes Unknown on a state-change error
/// (server-selection.md: "When a server becomes unavailable, its average RTT MUST be cleared"):
/// the first later sample is the new average.
#[test]
fn a_state_change_error_resets_the_rtt() {
    let (mut t, t0) = standalone(driver_config(&["a"]));
    let primary = raw(&primary_doc());
    let check = |t: &mut Topology, ms: u64, at: Instant| {
        t.handle(
            Input::HelloReply {
                address: addr("a"),
                reply: primary.clone(),
                round_trip_time: Duration::from_millis(ms),
                awaited: false,
            },
            at,
        );
    };
    check(&mut t, 100, t0);
    check(&mut t, 100, t0 + Duration::from_secs(1));
    let not_primary = ApplicationErrorKind::Command {
        code: Some(10107),
        message: "not primary".into(),
        topology_version: None,
    };
    t.handle(Input::ApplicationError(app_error(&t, addr("a"), not_primary)), t0 + Duration::from_secs(2));
    assert_eq!(t.description().server(&addr("a")).unwrap().server_type, ServerType::Unknown);
    check(&mut t, 10, t0 + Duration::from_secs(3));
    let a = t.description().server(&addr("a")).cloned().unwrap();
    assert_eq!(a.round_trip_time, Some(Duration::from_millis(10)), "not 0.2 * 10 + 0.8 * 100");
    assert_eq!(a.min_round_trip_time, Some(Duration::ZERO), "one sample since the reset");
}

/// SDAM test README, "Prose Tests" > "Heartbeat Tests", test 1 (the core's part): the
/// `ServerHeartbeatStarted` of a check is output before the `SendHello` that opens its
/// connection, and its `ServerHeartbeatFailed` after the failure, so an I/O layer that carries
/// out the outputs in order publishes
/// `[serverHeartbeatStartedEvent, client connected, client hello received, serverHeartbeatFailedEvent]`.
/// (Over real TCP through both adapters: `sdam-testserver`'s `scenarios::monitoring`.)
#[test]
fn prose_heartbeat_1_started_is_output_before_the_monitoring_connection_opens() {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.server_selection_timeout = Duration::from_millis(500);
    let (mut t, t0) = standalone(config);
    let out = outputs(&mut t);
    let started =
        out.iter().position(|o| matches!(o, Output::Event(Event::ServerHeartbeatStarted { .. }))).unwrap();
    let open =
        out.iter().position(|o| matches!(o, Output::Command(Command::SendHello { open: true, .. }))).unwrap();
    assert!(started < open, "{out:?}");
    let request = send_hellos(&out)[0].0;
    t.handle(
        Input::MonitorFailed { request, kind: FailureKind::Network, error: "closed by the server".into() },
        t0,
    );
    let out = outputs(&mut t);
    assert!(matches!(events_of(&out).first(), Some(Event::ServerHeartbeatFailed { .. })), "{out:?}");
}
