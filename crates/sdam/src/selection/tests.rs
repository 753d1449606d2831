//! Unit tests of the selection pipeline, the explanations (one test per rejection reason),
//! the waiting loop and its log events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::read_preference::{ReadPreference, ReadPreferenceError, ReadPreferenceMode, TagSet};
use crate::rng::Rng;
use crate::server_description::{ServerDescription, ServerType, Tags};
use crate::topology_description::{TopologyDescription, TopologyType};
use crate::ServerAddress;

pub(super) fn t0() -> Instant {
    crate::test_instant()
}

pub(super) fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

pub(super) fn server(host: &str, server_type: ServerType, rtt_ms: u64) -> ServerDescription {
    let mut sd = ServerDescription::unknown(addr(host));
    sd.server_type = server_type;
    if server_type != ServerType::Unknown {
        sd.round_trip_time = Some(Duration::from_millis(rtt_ms));
        sd.max_wire_version = 21;
    }
    sd
}

fn tagged(mut sd: ServerDescription, pairs: &[(&str, &str)]) -> ServerDescription {
    sd.tags = Tags::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    sd
}

fn tag_set(pairs: &[(&str, &str)]) -> TagSet {
    TagSet(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn topology(topology_type: TopologyType, servers: Vec<ServerDescription>) -> TopologyDescription {
    let mut td = TopologyDescription::new(topology_type);
    for sd in servers {
        td.insert_server(sd);
    }
    td
}

fn read(mode: ReadPreferenceMode) -> SelectionCriteria {
    SelectionCriteria::read(ReadPreference::new(mode))
}

fn hosts(list: &ServerList<'_>) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|sd| sd.address.host().to_owned()).collect();
    v.sort();
    v
}

fn window(td: &TopologyDescription, c: &SelectionCriteria) -> Vec<String> {
    hosts(&in_latency_window(td, c).unwrap())
}

fn rejection(td: &TopologyDescription, c: &SelectionCriteria, host: &str) -> Rejection {
    match explain(td, c, None).verdict(&addr(host)) {
        Some(Verdict::Rejected(r)) => r.clone(),
        other => panic!("{host} not rejected: {other:?}"),
    }
}

fn replica_set() -> TopologyDescription {
    topology(
        TopologyType::ReplicaSetWithPrimary,
        vec![
            server("p", ServerType::RSPrimary, 5),
            server("s1", ServerType::RSSecondary, 5),
            server("s2", ServerType::RSSecondary, 10),
            server("arb", ServerType::RSArbiter, 1),
            server("down", ServerType::Unknown, 0),
        ],
    )
}

// ---- topology-type rules -------------------------------------------------------------

#[test]
fn unknown_topology_selects_nothing() {
    let td = topology(TopologyType::Unknown, vec![server("a", ServerType::RSGhost, 1)]);
    assert!(window(&td, &read(ReadPreferenceMode::Nearest)).is_empty());
    assert!(window(&td, &SelectionCriteria::write()).is_empty());
}

#[test]
fn single_ignores_the_read_preference() {
    let td = topology(TopologyType::Single, vec![server("a", ServerType::RSSecondary, 1)]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::Primary)), ["a"]);
    assert_eq!(window(&td, &SelectionCriteria::write()), ["a"]);
    let down = topology(TopologyType::Single, vec![server("a", ServerType::Unknown, 0)]);
    assert!(window(&down, &SelectionCriteria::write()).is_empty());
}

#[test]
fn sharded_selects_mongoses_for_any_mode() {
    let td = topology(
        TopologyType::Sharded,
        vec![
            server("m1", ServerType::Mongos, 5),
            server("m2", ServerType::Mongos, 15),
            server("m3", ServerType::Unknown, 0),
        ],
    );
    let secondary_tagged = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Secondary)
            .with_tag_sets(vec![tag_set(&[("dc", "x")])])
            .unwrap(),
    );
    assert_eq!(window(&td, &secondary_tagged), ["m1", "m2"]);
    assert_eq!(window(&td, &SelectionCriteria::write()), ["m1", "m2"]);
}

#[test]
fn load_balanced_selects_the_load_balancer() {
    let mut lb = ServerDescription::unknown(addr("lb"));
    lb.server_type = ServerType::LoadBalancer;
    let td = topology(TopologyType::LoadBalanced, vec![lb]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::Secondary)), ["lb"]);
    assert_eq!(window(&td, &SelectionCriteria::write()), ["lb"]);
}

#[test]
fn replica_set_modes() {
    let td = replica_set();
    assert_eq!(window(&td, &read(ReadPreferenceMode::Primary)), ["p"]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::PrimaryPreferred)), ["p"]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::Secondary)), ["s1", "s2"]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::SecondaryPreferred)), ["s1", "s2"]);
    assert_eq!(window(&td, &read(ReadPreferenceMode::Nearest)), ["p", "s1", "s2"]);
    assert_eq!(window(&td, &SelectionCriteria::write()), ["p"]);

    let no_primary = topology(
        TopologyType::ReplicaSetNoPrimary,
        vec![server("s1", ServerType::RSSecondary, 5), server("o", ServerType::RSOther, 1)],
    );
    assert!(window(&no_primary, &read(ReadPreferenceMode::Primary)).is_empty());
    assert_eq!(window(&no_primary, &read(ReadPreferenceMode::PrimaryPreferred)), ["s1"]);
    assert!(window(&no_primary, &SelectionCriteria::write()).is_empty());

    let only_primary =
        topology(TopologyType::ReplicaSetWithPrimary, vec![server("p", ServerType::RSPrimary, 5)]);
    assert_eq!(window(&only_primary, &read(ReadPreferenceMode::SecondaryPreferred)), ["p"]);
    assert!(window(&only_primary, &read(ReadPreferenceMode::Secondary)).is_empty());
}

#[test]
fn tag_sets_are_tried_in_order() {
    let td = topology(
        TopologyType::ReplicaSetWithPrimary,
        vec![
            tagged(server("p", ServerType::RSPrimary, 5), &[("dc", "ny")]),
            tagged(server("s1", ServerType::RSSecondary, 5), &[("dc", "sf"), ("rack", "1")]),
            tagged(server("s2", ServerType::RSSecondary, 5), &[("dc", "ny")]),
        ],
    );
    let rp = |sets| {
        SelectionCriteria::read(
            ReadPreference::new(ReadPreferenceMode::Secondary).with_tag_sets(sets).unwrap(),
        )
    };
    assert_eq!(window(&td, &rp(vec![tag_set(&[("dc", "sf")]), tag_set(&[("dc", "ny")])])), ["s1"]);
    assert_eq!(window(&td, &rp(vec![tag_set(&[("dc", "la")]), tag_set(&[("dc", "ny")])])), ["s2"]);
    assert_eq!(window(&td, &rp(vec![tag_set(&[("dc", "la")]), TagSet::default()])), ["s1", "s2"]);
    assert!(window(&td, &rp(vec![tag_set(&[("dc", "la")])])).is_empty());
    // secondaryPreferred falls back to the primary, even when its tags do not match.
    let sp = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::SecondaryPreferred)
            .with_tag_sets(vec![tag_set(&[("dc", "la")])])
            .unwrap(),
    );
    assert_eq!(window(&td, &sp), ["p"]);
}

#[test]
fn latency_window_is_anchored_at_the_fastest_suitable_server() {
    let mut td = topology(
        TopologyType::Sharded,
        vec![
            server("a", ServerType::Mongos, 10),
            server("b", ServerType::Mongos, 25),
            server("c", ServerType::Mongos, 26),
        ],
    );
    assert_eq!(window(&td, &SelectionCriteria::write()), ["a", "b"], "boundary is inclusive");
    td.local_threshold = Duration::ZERO;
    assert_eq!(window(&td, &SelectionCriteria::write()), ["a"]);
    assert_eq!(hosts(&suitable_servers(&td, &SelectionCriteria::write()).unwrap()), ["a", "b", "c"]);
}

#[test]
fn deprioritized_servers_are_a_last_resort() {
    let td = topology(
        TopologyType::Sharded,
        vec![server("a", ServerType::Mongos, 5), server("b", ServerType::Mongos, 50)],
    );
    let c = SelectionCriteria::write().with_deprioritized([addr("a")]);
    assert_eq!(window(&td, &c), ["b"]);
    let all = SelectionCriteria::write().with_deprioritized([addr("a"), addr("b")]);
    assert_eq!(window(&td, &all), ["a"]);
    // primaryPreferred with the primary deprioritized reads from a secondary.
    let rs = replica_set();
    let pp = read(ReadPreferenceMode::PrimaryPreferred).with_deprioritized([addr("p")]);
    assert_eq!(window(&rs, &pp), ["s1", "s2"]);
    // secondaryPreferred with every secondary deprioritized reads from the primary.
    let sp = read(ReadPreferenceMode::SecondaryPreferred).with_deprioritized([addr("s1"), addr("s2")]);
    assert_eq!(window(&rs, &sp), ["p"]);
}

#[test]
fn the_application_selector_runs_after_the_rules_and_before_the_window() {
    let td = topology(
        TopologyType::Sharded,
        vec![
            server("a:1", ServerType::Mongos, 5),
            server("b:3", ServerType::Mongos, 100),
            server("c:2", ServerType::Mongos, 5),
        ],
    );
    let highest_port = SelectionCriteria::write().with_selector("highest port", |s: &mut ServerList<'_>| {
        let best = s.iter().filter_map(|sd| sd.address.port()).max();
        s.retain(|sd| sd.address.port() == best);
    });
    // b is far outside a's window, but the selector runs first, so b anchors the window.
    assert_eq!(window(&td, &highest_port), ["b"]);
    // A selector cannot add servers that are not suitable, nor repeat one.
    let mut outsider = ServerDescription::unknown(addr("z"));
    outsider.server_type = ServerType::Mongos;
    let outsider: &'static Arc<ServerDescription> = Box::leak(Box::new(Arc::new(outsider)));
    let dup = SelectionCriteria::write().with_selector("adds", move |s: &mut ServerList<'_>| {
        let first = s[0];
        s.push(first);
        s.push(outsider);
    });
    assert_eq!(window(&td, &dup), ["a", "c"]);
}

#[test]
fn incompatible_topology_and_invalid_read_preference_fail_at_once() {
    let mut td = replica_set();
    td.compatibility_error = Some("Server at p:27017 requires wire version 99".into());
    let failure = in_latency_window(&td, &SelectionCriteria::write()).unwrap_err();
    assert!(matches!(failure, ImmediateFailure::IncompatibleTopology(ref e) if e.contains("99")));

    let td = replica_set();
    let stale = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Nearest).with_max_staleness_seconds(Some(89)).unwrap(),
    );
    assert_eq!(
        in_latency_window(&td, &stale).unwrap_err(),
        ImmediateFailure::InvalidReadPreference(ReadPreferenceError::MaxStalenessTooSmall {
            max_staleness_seconds: 89,
            minimum_seconds: 90
        })
    );
}

#[test]
fn select_server_returns_one_in_the_window() {
    let td = replica_set();
    let mut rng = Rng::new(5);
    for _ in 0..100 {
        let chosen =
            select_server(&td, &read(ReadPreferenceMode::Nearest), &NoOperations, &mut rng).unwrap().unwrap();
        assert!(["p", "s1", "s2"].contains(&chosen.address.host()));
    }
    assert!(select_server(
        &td,
        &read(ReadPreferenceMode::Nearest).with_deprioritized([]),
        &NoOperations,
        &mut rng
    )
    .unwrap()
    .is_some());
    let none = topology(TopologyType::ReplicaSetNoPrimary, vec![]);
    assert_eq!(select_server(&none, &SelectionCriteria::write(), &NoOperations, &mut rng), Ok(None));
}

// ---- one test per rejection reason -----------------------------------------------------

#[test]
fn reason_unknown_with_last_check_error() {
    let mut td = replica_set();
    td.insert_server(ServerDescription::unknown_with_error(addr("down"), "connection refused"));
    let e = explain(&td, &read(ReadPreferenceMode::Nearest), None);
    let down = e.server(&addr("down")).unwrap();
    assert_eq!(down.verdict, Verdict::Rejected(Rejection::Unknown));
    assert_eq!(down.last_error.as_deref(), Some("connection refused"));
    assert!(down.to_string().contains("last check error: connection refused"), "{down}");
}

#[test]
fn reason_wrong_type() {
    let td = replica_set();
    let r = rejection(&td, &read(ReadPreferenceMode::Secondary), "p");
    assert_eq!(
        r,
        Rejection::WrongType {
            server_type: ServerType::RSPrimary,
            rule: "mode secondary reads only from secondaries"
        }
    );
    assert!(matches!(
        rejection(&td, &read(ReadPreferenceMode::Nearest), "arb"),
        Rejection::WrongType { server_type: ServerType::RSArbiter, .. }
    ));
    assert!(matches!(
        rejection(&td, &read(ReadPreferenceMode::PrimaryPreferred), "s1"),
        Rejection::WrongType { server_type: ServerType::RSSecondary, .. }
    ));
    assert!(matches!(
        rejection(&td, &read(ReadPreferenceMode::SecondaryPreferred), "p"),
        Rejection::WrongType { server_type: ServerType::RSPrimary, .. }
    ));
    assert!(rejection(&td, &SelectionCriteria::write(), "s1")
        .to_string()
        .contains("writes go to the primary"));
}

#[test]
fn reason_stale() {
    let t = t0();
    let mut p = server("p", ServerType::RSPrimary, 5);
    p.last_update_time = Some(t);
    p.last_write_date = Some(bson::DateTime::from_millis(1_000_000));
    let mut s = server("s", ServerType::RSSecondary, 5);
    s.last_update_time = Some(t);
    s.last_write_date = Some(bson::DateTime::from_millis(1_000_000 - 200_000));
    let mut fresh = server("f", ServerType::RSSecondary, 5);
    fresh.last_update_time = Some(t);
    fresh.last_write_date = Some(bson::DateTime::from_millis(1_000_000));
    let td = topology(TopologyType::ReplicaSetWithPrimary, vec![p, s, fresh]);
    let c = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Secondary).with_max_staleness_seconds(Some(120)).unwrap(),
    );
    assert_eq!(window(&td, &c), ["f"]);
    let r = rejection(&td, &c, "s");
    // 200 s behind the primary + 10 s heartbeat = 210 s; 90 s over the maximum.
    assert_eq!(
        r,
        Rejection::Stale { staleness: Duration::from_secs(210), max_staleness: Duration::from_secs(120) }
    );
    assert_eq!(r.to_string(), "stale by 90 s: estimated staleness 210 s exceeds maxStalenessSeconds 120");
}

#[test]
fn reason_staleness_unknown() {
    let mut td = replica_set();
    td.topology_type = TopologyType::ReplicaSetNoPrimary;
    let c = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Secondary).with_max_staleness_seconds(Some(120)).unwrap(),
    );
    assert_eq!(rejection(&td, &c, "s1"), Rejection::StalenessUnknown);
}

#[test]
fn reason_no_tag_set_matched() {
    let td = topology(
        TopologyType::ReplicaSetNoPrimary,
        vec![
            tagged(server("s1", ServerType::RSSecondary, 5), &[("dc", "ny")]),
            tagged(server("s2", ServerType::RSSecondary, 5), &[("dc", "sf")]),
        ],
    );
    let c = |sets| {
        SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest).with_tag_sets(sets).unwrap())
    };
    let none = c(vec![tag_set(&[("dc", "la")])]);
    assert_eq!(rejection(&td, &none, "s1"), Rejection::NoTagSetMatched { used_tag_set: None, tag_set: None });
    let second = c(vec![tag_set(&[("dc", "la")]), tag_set(&[("dc", "sf")])]);
    let r = rejection(&td, &second, "s1");
    assert_eq!(
        r,
        Rejection::NoTagSetMatched { used_tag_set: Some(1), tag_set: Some(tag_set(&[("dc", "sf")])) }
    );
    assert!(r.to_string().contains("tag set #1 {dc:sf}"), "{r}");
}

#[test]
fn reason_outside_latency_window() {
    let td = topology(
        TopologyType::Sharded,
        vec![server("a", ServerType::Mongos, 10), server("b", ServerType::Mongos, 40)],
    );
    let r = rejection(&td, &SelectionCriteria::write(), "b");
    assert_eq!(
        r,
        Rejection::OutsideLatencyWindow {
            round_trip_time: Duration::from_millis(40),
            fastest: Duration::from_millis(10),
            local_threshold: Duration::from_millis(15)
        }
    );
    assert!(r.to_string().starts_with("outside the latency window by 15 ms"), "{r}");
}

#[test]
fn reason_deprioritized() {
    let td = topology(
        TopologyType::Sharded,
        vec![server("a", ServerType::Mongos, 10), server("b", ServerType::Mongos, 10)],
    );
    let c = SelectionCriteria::write().with_deprioritized([addr("a")]);
    assert_eq!(rejection(&td, &c, "a"), Rejection::Deprioritized);
    // When everything is deprioritized the fallback pass explains the servers afresh.
    let all = SelectionCriteria::write().with_deprioritized([addr("a"), addr("b")]);
    assert_eq!(explain(&td, &all, None).verdict(&addr("a")), Some(&Verdict::InWindow));
}

#[test]
fn reason_incompatible_wire_version() {
    let mut td = replica_set();
    let mut too_new = server("new", ServerType::RSSecondary, 5);
    too_new.min_wire_version = 999;
    too_new.max_wire_version = 1000;
    td.insert_server(too_new);
    td.compatibility_error = Some("Server at new:27017 requires wire version 999".into());
    let c = read(ReadPreferenceMode::Nearest);
    assert_eq!(
        rejection(&td, &c, "new"),
        Rejection::IncompatibleWireVersion { min_wire_version: 999, max_wire_version: 1000 }
    );
    assert_eq!(rejection(&td, &c, "p"), Rejection::TopologyIncompatible);
    assert_eq!(rejection(&td, &c, "down"), Rejection::Unknown);
}

#[test]
fn reason_invalid_read_preference() {
    let td = replica_set();
    let c = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Nearest).with_max_staleness_seconds(Some(1)).unwrap(),
    );
    assert_eq!(rejection(&td, &c, "p"), Rejection::InvalidReadPreference);
}

#[test]
fn reason_rejected_by_selector() {
    let td = topology(
        TopologyType::Sharded,
        vec![server("a", ServerType::Mongos, 10), server("b", ServerType::Mongos, 10)],
    );
    let c = SelectionCriteria::write()
        .with_selector("only a", |s: &mut ServerList<'_>| s.retain(|sd| sd.address.host() == "a"));
    assert_eq!(rejection(&td, &c, "b"), Rejection::RejectedBySelector);
    assert_eq!(explain(&td, &c, Some(&addr("a"))).selected(), Some(&addr("a")));
}

#[test]
fn explanation_of_a_success_is_printable() {
    let td = replica_set();
    let c = read(ReadPreferenceMode::Secondary);
    let e = explain(&td, &c, Some(&addr("s1")));
    assert_eq!(e.verdict(&addr("s1")), Some(&Verdict::Selected));
    assert_eq!(e.verdict(&addr("s2")), Some(&Verdict::InWindow));
    let text = e.to_string();
    assert!(text.starts_with("read secondary in a ReplicaSetWithPrimary topology"), "{text}");
    assert!(text.contains("s1:27017 (RSSecondary, 5 ms): selected"), "{text}");
    assert!(text.contains("arb:27017 (RSArbiter, 1 ms): wrong type RSArbiter"), "{text}");
    assert_eq!(e.servers.len(), 5);
}

#[test]
fn summary_follows_the_spec_sketch() {
    let td = topology(
        TopologyType::ReplicaSetNoPrimary,
        vec![
            ServerDescription::unknown_with_error(addr("a"), "refused"),
            ServerDescription::unknown_with_error(addr("b"), "refused"),
        ],
    );
    let e = explain(&td, &SelectionCriteria::write(), None);
    assert_eq!(e.summary(), "no server is available for write: refused");
    assert_eq!(
        explain(&replica_set(), &SelectionCriteria::write().with_deprioritized([addr("p")]), None).summary(),
        "no server is suitable for write; deprioritized: [p:27017]"
    );
}

// ---- the waiting loop ---------------------------------------------------------------

#[test]
fn selection_succeeds_and_logs_started_then_succeeded() {
    let t = t0();
    let td = replica_set();
    let mut rng = Rng::new(1);
    let options = SelectionOptions::new("find").with_operation_id(9);
    let mut sel = Selection::new(read(ReadPreferenceMode::Primary), options, t);
    let poll = sel.poll(&td, &NoOperations, &mut rng, t);
    let SelectionPoll::Selected(s) = poll else { panic!("{poll:?}") };
    assert_eq!(s.address(), &addr("p"));
    assert!(Arc::ptr_eq(s.description(), td.server(&addr("p")).unwrap()));
    let started = sel.poll_event().unwrap();
    assert_eq!(started.kind, SelectionLogKind::Started);
    assert_eq!((started.operation.as_str(), started.operation_id), ("find", Some(9)));
    assert_eq!(started.selector, "read primary");
    let ok = sel.poll_event().unwrap();
    assert_eq!(ok.kind, SelectionLogKind::Succeeded { server_host: "p".into(), server_port: Some(27017) });
    assert!(sel.poll_event().is_none());
    // Polling again repeats the result without new events.
    assert!(matches!(sel.poll(&td, &NoOperations, &mut rng, t), SelectionPoll::Selected(_)));
    assert!(sel.is_finished() && sel.poll_event().is_none());
}

#[test]
fn selection_waits_until_the_deadline_logs_waiting_once_then_times_out() {
    let t = t0();
    let td = topology(
        TopologyType::ReplicaSetNoPrimary,
        vec![ServerDescription::unknown_with_error(addr("a"), "refused")],
    );
    let mut rng = Rng::new(1);
    let timeout = Duration::from_secs(2);
    let mut sel =
        Selection::new(SelectionCriteria::write(), SelectionOptions::new("insert").with_timeout(timeout), t);
    let deadline = t + timeout;
    assert_eq!(sel.deadline(), deadline);
    for step in 0..3 {
        let now = t + Duration::from_millis(100 * step);
        assert_eq!(
            sel.poll(&td, &NoOperations, &mut rng, now),
            SelectionPoll::Wait { until: deadline, request_immediate_check: true }
        );
    }
    let events: Vec<_> = std::iter::from_fn(|| sel.poll_event()).collect();
    assert_eq!(events.len(), 2, "started and one waiting event: {events:?}");
    assert_eq!(events[1].kind, SelectionLogKind::Waiting { remaining_time_ms: 2000 });
    let poll = sel.poll(&td, &NoOperations, &mut rng, deadline);
    let SelectionPoll::Failed(err) = poll else { panic!("{poll:?}") };
    assert_eq!(err.kind, SelectionErrorKind::TimedOut { timeout });
    assert_eq!(err.topology().servers.len(), 1);
    assert_eq!(err.explanation.server(&addr("a")).unwrap().last_error.as_deref(), Some("refused"));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "server selection timed out after 2000 ms: no server is available for write: refused"
        ),
        "{text}"
    );
    let failed = sel.poll_event().unwrap();
    let SelectionLogKind::Failed { failure } = &failed.kind else { panic!("{failed:?}") };
    assert!(
        failure.contains("a:27017: unknown") && !failure.contains("type: ReplicaSetNoPrimary"),
        "{failure}"
    );
    assert!(sel.poll_event().is_none());
}

#[test]
fn selection_succeeds_after_a_topology_change() {
    let t = t0();
    let mut td = topology(TopologyType::Sharded, vec![server("a", ServerType::Unknown, 0)]);
    let mut rng = Rng::new(1);
    let mut sel = Selection::new(SelectionCriteria::write(), SelectionOptions::default(), t);
    assert!(matches!(sel.poll(&td, &NoOperations, &mut rng, t), SelectionPoll::Wait { .. }));
    td.insert_server(server("a", ServerType::Mongos, 3));
    let later = t + Duration::from_secs(1);
    assert!(matches!(sel.poll(&td, &NoOperations, &mut rng, later), SelectionPoll::Selected(_)));
    let kinds: Vec<_> = std::iter::from_fn(|| sel.poll_event()).map(|e| e.message()).collect();
    assert_eq!(
        kinds,
        [
            "Server selection started",
            "Waiting for suitable server to become available",
            "Server selection succeeded"
        ]
    );
}

#[test]
fn selection_fails_at_once_on_an_incompatible_topology() {
    let t = t0();
    let mut td = replica_set();
    td.compatibility_error = Some("too old".into());
    let mut sel = Selection::new(SelectionCriteria::write(), SelectionOptions::default(), t);
    let poll = sel.poll(&td, &NoOperations, &mut Rng::new(1), t);
    let SelectionPoll::Failed(err) = poll else { panic!("{poll:?}") };
    assert_eq!(err.kind, SelectionErrorKind::IncompatibleTopology("too old".into()));
    assert_eq!(
        err.explanation.verdict(&addr("p")),
        Some(&Verdict::Rejected(Rejection::TopologyIncompatible))
    );
}

#[test]
fn selection_fails_at_once_on_an_invalid_read_preference() {
    let t = t0();
    let c = SelectionCriteria::read(
        ReadPreference::new(ReadPreferenceMode::Secondary).with_max_staleness_seconds(Some(30)).unwrap(),
    );
    let mut sel = Selection::new(c, SelectionOptions::default(), t);
    let poll = sel.poll(&replica_set(), &NoOperations, &mut Rng::new(1), t);
    let SelectionPoll::Failed(err) = poll else { panic!("{poll:?}") };
    assert!(matches!(err.kind, SelectionErrorKind::InvalidReadPreference(_)));
}

#[test]
fn selection_uses_operation_counts() {
    let t = t0();
    let td = topology(
        TopologyType::Sharded,
        vec![server("a", ServerType::Mongos, 5), server("b", ServerType::Mongos, 5)],
    );
    let busy_a = |a: &ServerAddress| if a.host() == "a" { 10 } else { 0 };
    let mut rng = Rng::new(3);
    for _ in 0..50 {
        let mut sel = Selection::new(SelectionCriteria::write(), SelectionOptions::default(), t);
        let SelectionPoll::Selected(s) = sel.poll(&td, &busy_a, &mut rng, t) else { panic!() };
        assert_eq!(s.address(), &addr("b"));
    }
}

#[test]
fn zero_timeout_tries_once_and_huge_timeouts_do_not_overflow() {
    let t = t0();
    let td = topology(TopologyType::Unknown, vec![]);
    let mut sel = Selection::new(
        SelectionCriteria::write(),
        SelectionOptions::default().with_timeout(Duration::ZERO),
        t,
    );
    assert!(matches!(sel.poll(&td, &NoOperations, &mut Rng::new(1), t), SelectionPoll::Failed(_)));
    let sel = Selection::new(
        SelectionCriteria::write(),
        SelectionOptions::default().with_timeout(Duration::MAX),
        t,
    );
    assert!(sel.deadline() > t);
}
