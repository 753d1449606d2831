//! Waiting selections in the topology, the shared operation counts, and the safe defaults
//! (issue 13, failures 2, 3, 6 and 7).

use std::time::{Duration, Instant};

use bson::rawdoc;

use super::*;
use crate::app_error::{ApplicationError, ApplicationErrorKind};
use crate::selection::{
    SelectedServer, SelectionCriteria, SelectionError, SelectionErrorKind, SelectionLogKind, SelectionOptions,
};
use crate::{ReadPreference, ReadPreferenceMode};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn rs(timeout: Duration) -> (Topology, Instant) {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("a"), addr("b")]);
    config.replica_set_name = Some("rs".into());
    config.server_selection_timeout = timeout;
    config.rng_seed = Some(5);
    (Topology::new(config, now).unwrap(), now)
}

fn primary(t: &mut Topology, now: Instant) {
    let reply = rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017", "b:27017"],
    "minWireVersion": 0, "maxWireVersion": 21};
    let (address, round_trip_time) = (addr("a"), Duration::from_millis(2));
    t.handle(Input::HelloReply { address, reply: reply.clone(), round_trip_time, awaited: false }, now);
}

type Outcome = Result<SelectedServer, Box<SelectionError>>;

/// Drains the outputs: the selection outcomes and the selection log events.
fn drain(t: &mut Topology) -> (Vec<(SelectionId, Outcome)>, Vec<crate::selection::SelectionLogEvent>) {
    let (mut outcomes, mut logs) = (Vec::new(), Vec::new());
    while let Some(output) = t.poll_output() {
        match output {
            Output::Selection { id, result } => outcomes.push((id, result)),
            Output::SelectionLog { event, .. } => logs.push(event),
            Output::Event(_) | Output::Command(_) => {}
        }
    }
    (outcomes, logs)
}

/// Failure 2: a selection started without a timeout of its own waits the configured
/// serverSelectionTimeoutMS (2 s here), not 30 s.
#[test]
fn a_waiting_selection_times_out_after_the_configured_server_selection_timeout() {
    let (mut t, t0) = rs(Duration::from_secs(2));
    drain(&mut t);
    let id = t.start_selection(SelectionCriteria::write(), SelectionOptions::new("insert"), t0);
    assert_eq!(t.waiting_selections(), 1);
    let deadline = t0 + Duration::from_secs(2);
    assert!(t.poll_timeout().is_some_and(|d| d <= deadline), "{:?}", t.poll_timeout());
    t.handle_timeout(t0 + Duration::from_millis(1999));
    assert!(drain(&mut t).0.is_empty(), "nothing before the deadline");
    t.handle_timeout(deadline);
    let (outcomes, logs) = drain(&mut t);
    let [(got, Err(error))] = &outcomes[..] else { panic!("one failure expected: {outcomes:?}") };
    assert_eq!(*got, id);
    assert_eq!(error.kind, SelectionErrorKind::TimedOut { timeout: Duration::from_secs(2) });
    assert!(matches!(logs.last().map(|e| &e.kind), Some(SelectionLogKind::Failed { .. })), "{logs:?}");
    assert_eq!(t.waiting_selections(), 0);
    // An explicit timeout still wins.
    let options = SelectionOptions::new("insert").with_timeout(Duration::from_millis(300));
    t.start_selection(SelectionCriteria::write(), options, deadline);
    t.handle_timeout(deadline + Duration::from_millis(300));
    let (outcomes, _) = drain(&mut t);
    assert!(
        matches!(&outcomes[..], [(_, Err(e))] if e.kind == SelectionErrorKind::TimedOut { timeout: Duration::from_millis(300) })
    );
}

/// Failure 3: a selection's operation is counted once, however often the topology is
/// driven afterwards, and finished once.
#[test]
fn a_selection_counts_its_operation_exactly_once() {
    let (mut t, t0) = rs(Duration::from_secs(2));
    primary(&mut t, t0);
    drain(&mut t);
    t.start_selection(SelectionCriteria::write(), SelectionOptions::new("insert"), t0);
    for i in 1..=3 {
        t.handle_timeout(t0 + Duration::from_millis(i));
        primary(&mut t, t0 + Duration::from_millis(i));
    }
    let (mut outcomes, _) = drain(&mut t);
    assert_eq!(outcomes.len(), 1, "one outcome: {outcomes:?}");
    let (_, Ok(selected)) = &mut outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(selected.address(), &addr("a"));
    assert_eq!(t.operation_count(&addr("a")), 1);
    let mut copy = selected.clone();
    copy.finish_operation(); // a clone carries no operation
    assert_eq!(t.operation_count(&addr("a")), 1);
    selected.finish_operation();
    selected.finish_operation();
    assert_eq!(t.operation_count(&addr("a")), 0);
}

/// A selection that must wait asks for immediate checks, succeeds when the description
/// offers a server, and logs started / waiting / succeeded with the caller's operation.
#[test]
fn a_waiting_selection_succeeds_when_a_primary_appears() {
    let (mut t, t0) = rs(Duration::from_secs(30));
    drain(&mut t);
    let options = SelectionOptions::new("insert").with_operation_id(42);
    let id = t.start_selection(SelectionCriteria::write(), options, t0);
    let (outcomes, logs) = drain(&mut t);
    assert!(outcomes.is_empty());
    let kinds: Vec<_> = logs.iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[..], [SelectionLogKind::Started, SelectionLogKind::Waiting { .. }]), "{kinds:?}");
    assert!(logs.iter().all(|e| e.operation == "insert" && e.operation_id == Some(42)));
    primary(&mut t, t0 + Duration::from_millis(5));
    let (outcomes, logs) = drain(&mut t);
    assert!(matches!(&outcomes[..], [(i, Ok(s))] if *i == id && s.address() == &addr("a")), "{outcomes:?}");
    assert!(matches!(&logs[..], [e] if matches!(e.kind, SelectionLogKind::Succeeded { .. })), "{logs:?}");
    assert_eq!(t.waiting_selections(), 0);
}

#[test]
fn cancelled_selections_report_nothing_and_closing_fails_the_waiting_ones() {
    let (mut t, t0) = rs(Duration::from_secs(30));
    drain(&mut t);
    let cancelled = t.start_selection(SelectionCriteria::write(), SelectionOptions::new("a"), t0);
    let closed = t.start_selection(SelectionCriteria::write(), SelectionOptions::new("b"), t0);
    assert!(t.cancel_selection(cancelled));
    assert!(!t.cancel_selection(cancelled));
    t.handle(Input::Close, t0);
    let (outcomes, _) = drain(&mut t);
    assert!(
        matches!(&outcomes[..], [(i, Err(e))] if *i == closed && e.kind == SelectionErrorKind::TopologyClosed),
        "{outcomes:?}"
    );
    // After close, a selection fails at once.
    let late = t.start_selection(SelectionCriteria::write(), SelectionOptions::new("c"), t0);
    let (outcomes, _) = drain(&mut t);
    assert!(matches!(&outcomes[..], [(i, Err(_))] if *i == late));
    assert_eq!(t.poll_timeout(), None);
}

/// The snapshot selects without the topology, with the topology's own counts: the in-window
/// choice sees operations counted by either path.
#[test]
fn snapshot_selection_shares_the_topologys_operation_counts() {
    let (mut t, t0) = rs(Duration::from_secs(30));
    primary(&mut t, t0);
    drain(&mut t);
    let snapshot = t.selection_snapshot();
    let mut rng = Rng::new(1);
    let read = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::PrimaryPreferred));
    let mut chosen = snapshot.select_now(&read, &mut rng).expect("the primary");
    assert_eq!(chosen.address(), &addr("a"));
    assert_eq!(t.operation_count(&addr("a")), 1);
    let secondary = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Secondary));
    assert!(snapshot.select_now(&secondary, &mut rng).is_none(), "must wait: for the topology");
    chosen.finish_operation();
    assert_eq!(t.operation_count(&addr("a")), 0);
    // A fork counts on its own.
    let mut fork = t.clone();
    fork.handle(Input::OperationStarted(addr("a")), t0);
    assert_eq!((fork.operation_count(&addr("a")), t.operation_count(&addr("a"))), (1, 0));
}

/// Failure 7: two topologies built with default configurations get different ids (and
/// generators); a configured seed reproduces both.
#[test]
fn default_configurations_give_every_topology_its_own_id() {
    let now = crate::test_instant();
    let config = TopologyConfig::with_seeds([addr("a")]);
    assert_eq!(config.rng_seed, None);
    let (one, two) =
        (Topology::new(config.clone(), now).unwrap(), Topology::new(config.clone(), now).unwrap());
    assert_ne!(one.id(), two.id());
    let mut seeded = config;
    seeded.rng_seed = Some(9);
    assert_eq!(Topology::new(seeded.clone(), now).unwrap().id(), Topology::new(seeded, now).unwrap().id());
}

/// Failure 6: an application error carries its connection's pool generation, so an error
/// from a connection made before the last pool clear is stale and ignored.
#[test]
fn an_application_error_from_an_older_pool_generation_is_ignored() {
    let (mut t, t0) = rs(Duration::from_secs(30));
    primary(&mut t, t0);
    let generation = t.pool_generation(&addr("a")).unwrap();
    let error = ApplicationError::new(addr("a"), generation, ApplicationErrorKind::Network);
    t.handle(Input::ApplicationError(error.clone()), t0);
    assert_eq!(t.pool_generation(&addr("a")), Some(generation + 1), "the first error clears the pool");
    primary(&mut t, t0 + Duration::from_millis(1));
    // The same connection's second error (older generation now) changes nothing.
    t.handle(Input::ApplicationError(error), t0 + Duration::from_millis(2));
    assert_eq!(t.pool_generation(&addr("a")), Some(generation + 1));
    assert_eq!(t.description().topology_type, TopologyType::ReplicaSetWithPrimary);
}
