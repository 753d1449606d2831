//! End-to-end scenarios: the core driven by the simulator through virtual time.

use std::time::{Duration, Instant};

mod pool_ready;
mod selection_prose;
mod srv;

use std::collections::BTreeMap;

use sdam::rtt::next_average;
use sdam::selection::{
    explain, Rejection, SelectionCriteria, SelectionErrorKind, SelectionLogKind, SelectionOptions,
    ServerList, Verdict,
};
use sdam::{
    ApplicationErrorKind, Event, ReadPreference, ReadPreferenceMode, ServerAddress, ServerMonitoringMode,
    ServerType, TagSet, TopologyConfig, TopologyDescription, TopologyType,
};
use sdam_sim::{Cluster, Member, OperationKind, Role, Sim, NOT_PRIMARY_OR_SECONDARY, NOT_WRITABLE_PRIMARY};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The one real instant of a test: virtual time zero.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// a (primary, 5 ms), b (secondary, 7 ms), c (secondary, 9 ms) in set "rs".
fn three_members() -> Cluster {
    Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)))
        .with(&addr("b"), Member::new(Role::Secondary).latency(ms(7)))
        .with(&addr("c"), Member::new(Role::Secondary).latency(ms(9)))
}

fn rs_config(mode: ServerMonitoringMode, heartbeat: Duration) -> TopologyConfig {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.replica_set_name = Some("rs".into());
    config.server_monitoring_mode = mode;
    config.heartbeat_frequency = heartbeat;
    config.rng_seed = 7;
    config
}

fn server_type(td: &TopologyDescription, a: &str) -> Option<ServerType> {
    td.servers.get(&addr(a)).map(|sd| sd.server_type)
}

fn all_known(sim: &Sim) -> bool {
    let td = sim.description();
    !td.servers.is_empty() && td.servers.iter().all(|sd| sd.server_type != ServerType::Unknown)
}

fn is(sim: &Sim, a: &str, t: ServerType) -> bool {
    server_type(&sim.description(), a) == Some(t)
}

/// The first time an event matching `f` was published at or after `after`.
fn first_event(sim: &Sim, after: Duration, f: impl Fn(&Event) -> bool) -> Option<Duration> {
    sim.events().iter().find(|(t, e)| *t >= after && f(e)).map(|(t, _)| *t)
}

#[test]
fn discovers_a_three_member_set_from_one_seed() {
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Auto, secs(10)), start());
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetNoPrimary);
    assert_eq!(td.servers.len(), 1);
    assert_eq!(server_type(&td, "a"), Some(ServerType::Unknown));

    // a answers its handshake at 5 ms and names b and c; their handshakes start then and
    // are answered 7 and 9 ms later.
    let known = sim.run_until(all_known, secs(1)).expect("all members known");
    assert_eq!(known, ms(5 + 9));
    let td = sim.description();
    assert_eq!(td.servers.len(), 3);
    assert_eq!(td.topology_type, TopologyType::ReplicaSetWithPrimary);
    assert_eq!(server_type(&td, "a"), Some(ServerType::RSPrimary));
    assert_eq!(server_type(&td, "b"), Some(ServerType::RSSecondary));
    assert_eq!(server_type(&td, "c"), Some(ServerType::RSSecondary));
    let primary_at = first_event(
        &sim,
        Duration::ZERO,
        |e| matches!(e, Event::TopologyDescriptionChanged { new, .. } if new.topology_type == TopologyType::ReplicaSetWithPrimary),
    );
    assert_eq!(primary_at, Some(ms(5)));
    let openings: Vec<Duration> = sim
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::ServerOpening { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(openings, vec![Duration::ZERO, ms(5), ms(5)]);

    // Streaming: nothing changes, so a minute passes quietly with a bounded number of steps.
    let before = sim.steps();
    sim.run_for(secs(60));
    assert!(sim.steps() - before < 200, "{} steps", sim.steps() - before);
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
}

#[test]
fn polling_notices_a_crash_at_the_next_heartbeat_and_finds_the_new_primary() {
    let hb = secs(10);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Poll, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    // Polling: no awaitable hellos, no RTT connections; one check per heartbeat.
    sim.run_for(secs(3) - ms(14));
    assert_eq!(sim.elapsed(), secs(3));
    assert_eq!(sim.heartbeats_started(&addr("a")), vec![Duration::ZERO]);

    sim.crash(&addr("a"));
    // a's reply came at 5 ms, so its next check starts at 10.005 s; the reset shows 1 ms later
    // and a is marked Unknown; the one immediate retry (a new connection) fails 1 ms after that.
    let noticed = sim.run_until(|s| is(s, "a", ServerType::Unknown), secs(20)).unwrap();
    assert_eq!(noticed, hb + ms(5) + ms(1));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetNoPrimary);
    sim.run_for(ms(5));
    let failures: Vec<Duration> = sim.heartbeats_failed(&addr("a"));
    assert_eq!(failures, vec![hb + ms(6), hb + ms(7)], "the failed check, then the one retry");
    assert_eq!(sim.heartbeats_started(&addr("a")), vec![Duration::ZERO, hb + ms(5), hb + ms(6)]);

    // b is elected at 11 s. A poller sleeps a heartbeat from the end of each check, so b's
    // checks drift by its latency: 5 ms, 10.012 s (ended 10.019 s), then 20.019 s, whose reply
    // arrives 7 ms later: within one heartbeat.
    sim.run_for(secs(11) - sim.elapsed());
    sim.elect(&addr("b"));
    let found = sim.run_until(|s| is(s, "b", ServerType::RSPrimary), hb).unwrap();
    assert_eq!(found, secs(20) + ms(19) + ms(7));
    assert!(found - secs(11) <= hb);
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);

    // a restarts at 25 s. Its monitor failed again at 20.008 s (not known: no retry), so it
    // checks again at 30.008 s on a new connection and is a secondary 5 ms later.
    sim.run_for(secs(25) - sim.elapsed());
    sim.restart(&addr("a"));
    let back = sim.run_until(|s| is(s, "a", ServerType::RSSecondary), hb).unwrap();
    assert_eq!(back, secs(30) + ms(8) + ms(5));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
    assert_eq!(sim.cluster().primary(), Some(&addr("b")));
}

#[test]
fn streaming_sees_an_election_within_the_new_primarys_latency() {
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(1) - ms(14));
    assert_eq!(sim.elapsed(), secs(1));

    sim.elect(&addr("b"));
    // b's awaitable hello is answered at once; its reply arrives after b's 7 ms latency.
    let seen = sim.run_until(|s| is(s, "b", ServerType::RSPrimary), secs(10)).unwrap();
    assert_eq!(seen, secs(1) + ms(7));
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetWithPrimary);
    assert_eq!(server_type(&td, "a"), Some(ServerType::RSSecondary), "a's reply came at 1.005 s");
    assert_eq!(server_type(&td, "c"), Some(ServerType::RSSecondary));
    // The streamed replies were awaited heartbeats with moreToCome.
    let awaited = sim.events().iter().any(|(t, e)| {
        *t == secs(1) + ms(7)
            && matches!(e, Event::ServerHeartbeatSucceeded { address, awaited: true, .. } if *address == addr("b"))
    });
    assert!(awaited);

    // A step-down at 2 s is seen by the same streams: a's reply (no primary field) comes at
    // 2.005 s but b stays the primary until its own reply says otherwise, 7 ms after 2 s.
    sim.run_for(secs(2) - sim.elapsed());
    sim.step_down(&addr("b"));
    let gone =
        sim.run_until(|s| s.description().topology_type == TopologyType::ReplicaSetNoPrimary, secs(10));
    assert_eq!(gone, Some(secs(2) + ms(7)));
}

#[test]
fn reconfig_adds_and_removes_members() {
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(1) - ms(14));

    sim.add_member(&addr("d"), Member::new(Role::Secondary).latency(ms(3)));
    assert_eq!(sim.cluster().set_version(), 2);
    // The primary's streamed reply (1.005 s) lists d: d opens and its handshake takes 3 ms.
    let known = sim.run_until(|s| is(s, "d", ServerType::RSSecondary), secs(10)).unwrap();
    assert_eq!(known, secs(1) + ms(5) + ms(3));
    let opened = first_event(
        &sim,
        secs(1),
        |e| matches!(e, Event::ServerOpening { address, .. } if *address == addr("d")),
    );
    assert_eq!(opened, Some(secs(1) + ms(5)));
    assert_eq!(sim.description().max_set_version, Some(2));
    assert_eq!(sim.description().servers.len(), 4);

    sim.run_for(secs(2) - sim.elapsed());
    sim.remove_member(&addr("c"));
    let removed = sim.run_until(|s| !s.description().servers.contains(&addr("c")), secs(10)).unwrap();
    assert_eq!(removed, secs(2) + ms(5));
    let closed = first_event(
        &sim,
        secs(2),
        |e| matches!(e, Event::ServerClosed { address, .. } if *address == addr("c")),
    );
    assert_eq!(closed, Some(secs(2) + ms(5)));
    let closed_connections: Vec<_> = sim
        .closed_connections()
        .iter()
        .filter(|(t, _, a)| *a == addr("c") && *t == secs(2) + ms(5))
        .collect();
    assert!(!closed_connections.is_empty(), "c's monitoring connection is closed");
    // Nothing talks to c any more.
    let started = sim.heartbeats_started(&addr("c")).len();
    sim.run_for(secs(60));
    assert_eq!(sim.heartbeats_started(&addr("c")).len(), started);
    assert_eq!(sim.description().servers.len(), 3);
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
}

#[test]
fn tag_changes_reach_the_description() {
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(1) - ms(14));
    sim.set_tags(&addr("b"), &[("dc", "east"), ("rack", "2")]);
    let has_tags = |s: &Sim| s.server(&addr("b")).is_some_and(|sd| sd.tags.get("dc") == Some("east"));
    assert_eq!(sim.run_until(has_tags, secs(10)), Some(secs(1) + ms(7)));
    let b = sim.server(&addr("b")).unwrap();
    assert_eq!(b.tags.get("rack"), Some("2"));
    assert_eq!(b.tags.len(), 2);
}

#[test]
fn latency_changes_move_the_average_round_trip_time() {
    let hb = secs(1);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Poll, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    let rtt = |s: &Sim| s.server(&addr("b")).and_then(|sd| sd.round_trip_time);
    assert_eq!(rtt(&sim), Some(ms(7)));
    sim.run_for(ms(500));
    sim.set_latency(&addr("b"), ms(57));
    // b is polled every second from 12 ms on (each check ends 57 ms after it starts from now on):
    // every sample moves the average by alpha = 0.2.
    let mut expected = ms(7);
    let mut check_end = ms(12);
    for _ in 0..8 {
        let start = check_end + hb;
        check_end = start + ms(57);
        expected = next_average(Some(expected), ms(57));
        sim.run_for(check_end - sim.elapsed());
        assert_eq!(rtt(&sim), Some(expected), "at {:?}", sim.elapsed());
    }
    // 0.8^8 of the step is left: 57 - 50 * 0.168 ≈ 48.6 ms.
    let avg = rtt(&sim).unwrap();
    assert!(avg > ms(48) && avg < ms(49), "{avg:?}");
}

/// One standalone `s` (7 ms) behaving as `member` says, monitored with the streaming protocol
/// (heartbeatFrequencyMS 10 s) for two minutes: the second minute's hellos sent, new
/// connections opened, heartbeats started and pool clears (the hot-loop measurements of
/// issue #14).
fn one_minute_of(member: Member) -> (Sim, usize, usize, usize, usize) {
    let cluster = Cluster::standalone().with(&addr("s"), member.latency(ms(7)));
    let mut config = TopologyConfig::with_seeds([addr("s")]);
    config.server_monitoring_mode = ServerMonitoringMode::Stream;
    config.rng_seed = 7;
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(secs(120));
    let window = |t: &Duration| *t >= secs(60) && *t < secs(120);
    let (hellos, opened) = sim.hello_counts(&addr("s"), secs(60), secs(120));
    let beats = sim.heartbeats_started(&addr("s")).iter().filter(|t| window(t)).count();
    let clears = sim.pool_clears().iter().filter(|(t, _)| window(t)).count();
    (sim, hellos, opened, beats, clears)
}

/// A server that answers every awaitable hello at once, without moreToCome, stays on the
/// streaming protocol (server-monitoring.md, "Streaming hello or legacy hello") but is checked
/// once per minHeartbeatFrequencyMS: the awaitable hellos start at 7 ms + k * 500 ms (the
/// handshake's reply at 7 ms), 120 a minute; the RTT connection's hello every heartbeat
/// (10 s + 7 ms), 6 a minute; no new connection.
#[test]
fn a_server_answering_awaitable_hellos_at_once_is_checked_once_per_min_heartbeat_frequency() {
    let (sim, hellos, opened, beats, clears) = one_minute_of(Member::new(Role::Standalone).non_streaming());
    assert_eq!((hellos, opened, beats, clears), (126, 0, 120, 0));
    let beats = sim.heartbeats_started(&addr("s"));
    assert_eq!(beats[..4], [ms(0), ms(7), ms(507), ms(1007)]);
    assert!(beats.windows(2).skip(1).all(|w| w[1] - w[0] == ms(500)));
    assert!(
        sim.hellos().iter().filter(|h| h.at >= ms(7) && h.opened).count() == 1,
        "only the RTT connection opens"
    );
    assert!(is(&sim, "s", ServerType::Standalone));
}

/// A server that completes the handshake and then closes the connection on every awaitable
/// hello: at most one new connection per minHeartbeatFrequencyMS (the monitor's docs, "Bounds
/// on a misbehaving server") — a handshake and an awaitable hello every 500 ms (240 a minute)
/// plus the RTT hellos (6), 120 new connections and 120 pool clears a minute. (Before: about
/// 920 hellos and 460 connections a second.)
#[test]
fn a_server_closing_every_awaitable_hello_gets_one_new_connection_per_min_heartbeat_frequency() {
    let (sim, hellos, opened, beats, clears) =
        one_minute_of(Member::new(Role::Standalone).closing_awaitable());
    assert_eq!((hellos, opened, beats, clears), (246, 120, 240, 120));
    // In the second minute every new connection is the monitor's (the RTT one opened at 10 s).
    let opens: Vec<Duration> =
        sim.hellos().iter().filter(|h| h.opened && h.at >= secs(60)).map(|h| h.at).collect();
    assert_eq!(opens[0], ms(60_000));
    assert!(opens.windows(2).all(|w| w[1] - w[0] == ms(500)), "{:?}", &opens[..4]);
}

/// A server that streams properly: one awaitable hello, then a streamed reply every
/// maxAwaitTimeMS (10 s) read with `ReadReply` (6 heartbeats a minute); the only hellos sent
/// are the RTT connection's (6 a minute); no new connection.
#[test]
fn a_streaming_server_is_streamed_with_no_new_hellos_but_the_rtt_ones() {
    let (sim, hellos, opened, beats, clears) = one_minute_of(Member::new(Role::Standalone));
    assert_eq!((hellos, opened, beats, clears), (6, 0, 6, 0));
    assert_eq!(sim.hellos().iter().filter(|h| h.awaitable).count(), 1, "one awaitable hello, then streamed");
}

#[test]
fn three_mongoses_have_their_round_trip_times() {
    let cluster = Cluster::sharded()
        .with(&addr("m1"), Member::new(Role::Mongos).latency(ms(20)))
        .with(&addr("m2"), Member::new(Role::Mongos).latency(ms(35)))
        .with(&addr("m3"), Member::new(Role::Mongos).latency(ms(40)));
    let mut config = TopologyConfig::with_seeds([addr("m1"), addr("m2"), addr("m3")]);
    config.rng_seed = 3;
    let mut sim = Sim::new(cluster, config, start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(40)));
    assert_eq!(sim.description().topology_type, TopologyType::Sharded);
    sim.run_for(secs(60));
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::Sharded);
    for (a, want) in [("m1", ms(20)), ("m2", ms(35)), ("m3", ms(40))] {
        let sd = td.servers.get(&addr(a)).unwrap();
        assert_eq!(sd.server_type, ServerType::Mongos);
        let got = sd.round_trip_time.unwrap();
        assert!(got.abs_diff(want) <= ms(1), "{a}: {got:?}, want about {want:?}");
    }
}

#[test]
fn streaming_notices_a_crash_within_a_millisecond_and_a_restart_at_the_next_check() {
    let hb = secs(10);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(3) - ms(14));
    sim.crash(&addr("a"));
    // The awaitable hello in flight is reset 1 ms later; the one retry fails 1 ms after that.
    let noticed = sim.run_until(|s| is(s, "a", ServerType::Unknown), hb).unwrap();
    assert_eq!(noticed, secs(3) + ms(1));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetNoPrimary);
    sim.run_for(ms(10));
    let failures = sim.heartbeats_failed(&addr("a")).len();
    assert_eq!(failures, 2, "the awaited check, then the one retry");

    // The election is streamed at once.
    sim.elect(&addr("c"));
    let elected = sim.run_until(|s| is(s, "c", ServerType::RSPrimary), hb).unwrap();
    assert_eq!(elected, secs(3) + ms(11) + ms(9));

    // a restarts at 5 s; its monitor sleeps a heartbeat after the failed retry (3.002 s) and
    // reconnects at 13.002 s: a secondary 5 ms later.
    sim.run_for(secs(5) - sim.elapsed());
    sim.restart(&addr("a"));
    let back = sim.run_until(|s| is(s, "a", ServerType::RSSecondary), hb * 2).unwrap();
    assert_eq!(back, secs(13) + ms(2) + ms(5));
    let before = sim.steps();
    sim.run_for(secs(60));
    assert!(sim.steps() - before < 500, "{} steps in a quiet minute", sim.steps() - before);
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
}

#[test]
fn arbiters_and_hidden_members() {
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)))
        .with(&addr("b"), Member::new(Role::Secondary).latency(ms(7)))
        .with(&addr("h"), Member::new(Role::Hidden).latency(ms(2)))
        .with(&addr("z"), Member::new(Role::Arbiter).latency(ms(3)));
    let mut sim = Sim::new(cluster, rs_config(ServerMonitoringMode::Auto, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(12)));
    let td = sim.description();
    assert_eq!(td.servers.len(), 3, "the hidden member is not listed");
    assert_eq!(server_type(&td, "z"), Some(ServerType::RSArbiter));
    assert_eq!(server_type(&td, "h"), None);

    // Seeded directly, the hidden member is discovered as RSOther, then removed: it is not in
    // the primary's hosts list.
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)))
        .with(&addr("h"), Member::new(Role::Hidden).latency(ms(2)));
    let mut config = rs_config(ServerMonitoringMode::Auto, secs(10));
    config.seeds = vec![addr("h"), addr("a")];
    let mut sim = Sim::new(cluster, config, start());
    let other = sim.run_until(|s| is(s, "h", ServerType::RSOther), secs(1));
    assert_eq!(other, Some(ms(2)));
    let gone = sim.run_until(|s| !s.description().servers.contains(&addr("h")), secs(1));
    assert_eq!(gone, Some(ms(5)));
}

#[test]
fn streaming_rtt_follows_latency_changes_through_the_rtt_connection() {
    let hb = secs(1);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.set_latency(&addr("b"), ms(57));
    sim.run_for(secs(30));
    let avg = sim.server(&addr("b")).and_then(|sd| sd.round_trip_time).unwrap();
    assert!(avg.abs_diff(ms(57)) < ms(1), "{avg:?} after 30 s of 57 ms samples");
}

fn read(mode: ReadPreferenceMode) -> SelectionCriteria {
    SelectionCriteria::read(ReadPreference::new(mode))
}

fn tagged_read(mode: ReadPreferenceMode, tag_sets: &[&[(&str, &str)]]) -> SelectionCriteria {
    let sets = tag_sets
        .iter()
        .map(|set| TagSet(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()))
        .collect();
    SelectionCriteria::read(ReadPreference::new(mode).with_tag_sets(sets).unwrap())
}

/// Runs `n` selections for `criteria` at the current instant, each operation finished right
/// away, and counts where they went.
fn spread(sim: &mut Sim, criteria: &SelectionCriteria, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let options = sim.selection_options("find");
        let chosen = sim.run_selection(criteria.clone(), options).expect("a server is selected");
        assert_eq!(chosen.at, sim.elapsed(), "selected at once");
        sim.finish_operation(&chosen.address);
        *counts.entry(chosen.address.host().to_owned()).or_insert(0) += 1;
    }
    counts
}

fn count(counts: &BTreeMap<String, usize>, host: &str) -> usize {
    counts.get(host).copied().unwrap_or(0)
}

/// The selected address of a finished selection.
fn selected(sim: &Sim, id: sdam_sim::SelectionId) -> (ServerAddress, Duration) {
    match sim.selection(id).outcome() {
        Some(Ok(s)) => (s.address.clone(), s.at),
        other => panic!("not selected: {other:?}"),
    }
}

#[test]
fn polling_primary_crash_fails_the_operation_and_a_waiting_write_finds_the_new_primary() {
    let hb = secs(10);
    let mut config = rs_config(ServerMonitoringMode::Poll, hb);
    config.server_selection_timeout = secs(2);
    let mut sim = Sim::new(three_members(), config, start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(3) - sim.elapsed());

    // A write goes to the primary at once; its operation is in flight when a crashes.
    let options = sim.selection_options("insert");
    let chosen = sim.run_selection(SelectionCriteria::write(), options).unwrap();
    assert_eq!((chosen.address.clone(), chosen.at), (addr("a"), secs(3)));
    assert_eq!(sim.topology().operation_count(&addr("a")), 1);
    let op = sim.start_operation(&addr("a"), OperationKind::Write, ms(50));
    sim.run_for(ms(10));
    assert!(sim.operation(op).is_none(), "still in flight");
    sim.crash(&addr("a"));
    sim.run_until(|s| s.operation(op).is_some(), secs(1)).unwrap();
    let outcome = sim.operation(op).unwrap().clone();
    // The connection reset shows 1 ms after the crash; the driver reports it and the topology
    // marks a Unknown and clears its pool at that instant (the poller would have noticed only
    // at its next heartbeat, 10.005 s).
    assert_eq!(outcome.at, secs(3) + ms(11));
    let error = outcome.result.unwrap_err();
    assert_eq!(error.kind, ApplicationErrorKind::Network);
    assert!(error.is_retryable());
    assert!(is(&sim, "a", ServerType::Unknown));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetNoPrimary);
    assert_eq!(sim.pool_clears(), [(secs(3) + ms(11), addr("a"))]);
    sim.finish_operation(&addr("a"));
    assert_eq!(sim.topology().operation_count(&addr("a")), 0);

    // The retry's selection waits: no primary. Its immediate-check requests make the pollers
    // check every minHeartbeatFrequencyMS (500 ms) after their last check ended while it waits.
    let options = sim.selection_options("insert").with_timeout(secs(30));
    let retry = sim.start_selection(SelectionCriteria::write(), options);
    assert!(sim.selection(retry).is_waiting());
    sim.run_for(secs(4) - sim.elapsed());
    assert!(sim.selection(retry).is_waiting());
    sim.elect(&addr("b"));
    let found = sim.run_selection_to_end(retry).unwrap();
    assert_eq!(found.address, addr("b"));
    // b's checks: 3.011 s (ends 3.018 s), 3.518 s, 4.025 s: that one sees the election and its
    // reply arrives 7 ms later; the selection is polled at that same instant.
    let b_beats: Vec<Duration> =
        sim.heartbeats_started(&addr("b")).into_iter().filter(|t| *t > secs(3)).collect();
    assert_eq!(b_beats[..3], [secs(3) + ms(11), secs(3) + ms(518), secs(4) + ms(25)]);
    assert_eq!(found.at, secs(4) + ms(25) + ms(7));
    assert!(found.at - secs(4) <= hb);
    assert_eq!(sim.selection(retry).started(), secs(3) + ms(11));
    sim.finish_operation(&addr("b"));

    // a restarts at 5 s. While the retry waited, a's monitor failed a check every 501 ms
    // (3.012 s, 3.513 s, 4.014 s) and was asked for the next one 500 ms later: it fails at
    // 4.515 s, after which nothing waits and it sleeps a heartbeat: back at 14.515 s + 5 ms.
    sim.run_for(secs(5) - sim.elapsed());
    sim.restart(&addr("a"));
    let back = sim.run_until(|s| is(s, "a", ServerType::RSSecondary), hb * 2).unwrap();
    let a_failed: Vec<Duration> = sim.heartbeats_failed(&addr("a"));
    assert_eq!(a_failed, [secs(3) + ms(12), secs(3) + ms(513), secs(4) + ms(14), secs(4) + ms(515)]);
    assert_eq!(back, secs(14) + ms(515) + ms(5));
    assert_eq!(sim.run_operation(&addr("a"), OperationKind::Read), Ok(()));

    // A write to the old primary, now a secondary, fails with NotWritablePrimary; the error
    // carries a's current topologyVersion, which the topology already has, so it is stale
    // and a stays a secondary.
    let refused = sim.run_operation(&addr("a"), OperationKind::Write).unwrap_err();
    assert!(matches!(refused.kind, ApplicationErrorKind::Command { code: Some(NOT_WRITABLE_PRIMARY), .. }));
    assert!(refused.is_retryable());
    assert!(is(&sim, "a", ServerType::RSSecondary));

    // b crashes too and nobody is elected. The poller has not noticed yet, so a write still
    // selects b; its operation fails, and the retry fails after serverSelectionTimeoutMS
    // (2 s), explaining every server.
    sim.run_for(secs(20) - sim.elapsed());
    sim.crash(&addr("b"));
    let options = sim.selection_options("insert");
    let stale = sim.run_selection(SelectionCriteria::write(), options).unwrap();
    assert_eq!(stale.address, addr("b"));
    let error = sim.run_operation(&addr("b"), OperationKind::Write).unwrap_err();
    assert!(error.is_retryable());
    sim.finish_operation(&addr("b"));
    assert!(is(&sim, "b", ServerType::Unknown));
    let options = sim.selection_options("insert");
    let error = sim.run_selection(SelectionCriteria::write(), options).unwrap_err();
    assert_eq!(error.kind, SelectionErrorKind::TimedOut { timeout: secs(2) });
    assert_eq!(sim.elapsed(), secs(22));
    let text = error.to_string();
    assert!(text.contains("timed out after 2000 ms"), "{text}");
    for host in ["a:27017", "b:27017", "c:27017"] {
        assert!(text.contains(host), "{host} missing from {text}");
    }
    assert_eq!(error.explanation.servers.len(), 3);
    assert_eq!(error.explanation.verdict(&addr("b")), Some(&Verdict::Rejected(Rejection::Unknown)));
    let b = error.explanation.server(&addr("b")).unwrap();
    assert!(b.last_error.as_deref().is_some_and(|e| e.contains("b:27017")), "{b}");
    assert!(matches!(
        error.explanation.verdict(&addr("a")),
        Some(Verdict::Rejected(Rejection::WrongType { server_type: ServerType::RSSecondary, .. }))
    ));
}

#[test]
fn streaming_primary_crash_wakes_the_waiting_write_as_soon_as_the_new_primary_reports() {
    let hb = secs(10);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(3) - sim.elapsed());
    let options = sim.selection_options("update");
    let chosen = sim.run_selection(SelectionCriteria::write(), options).unwrap();
    assert_eq!(chosen.address, addr("a"));
    let op = sim.start_operation(&addr("a"), OperationKind::Write, ms(50));
    sim.run_for(ms(10));
    sim.crash(&addr("a"));
    sim.run_until(|s| s.operation(op).is_some(), secs(1)).unwrap();
    let outcome = sim.operation(op).unwrap().clone();
    assert_eq!(outcome.at, secs(3) + ms(11));
    assert!(outcome.result.unwrap_err().is_retryable());
    // The streaming monitor's awaitable hello was reset at the same instant and got there
    // first: a is Unknown and its pool cleared once; the operation's error, from the older
    // pool generation, is stale.
    assert!(is(&sim, "a", ServerType::Unknown));
    assert_eq!(sim.pool_clears(), [(secs(3) + ms(11), addr("a"))]);
    assert_eq!(sim.topology().pool_generation(&addr("a")), Some(1));
    sim.finish_operation(&addr("a"));

    let options = sim.selection_options("update");
    let retry = sim.start_selection(SelectionCriteria::write(), options);
    assert!(sim.selection(retry).is_waiting());
    sim.run_for(secs(4) - sim.elapsed());
    sim.elect(&addr("c"));
    // c's awaitable hello is answered at once; its reply arrives after c's 9 ms latency and
    // the waiting selection is polled at that instant.
    let found = sim.run_selection_to_end(retry).unwrap();
    assert_eq!((found.address.clone(), found.at), (addr("c"), secs(4) + ms(9)));
    sim.finish_operation(&addr("c"));

    // a restarts at 5 s. Its monitor failed at 3.011 s and on its one retry (3.012 s), then,
    // asked by the waiting selection, every 501 ms until the selection ended (last at 4.014 s);
    // it then sleeps a heartbeat and is a secondary 5 ms after its 14.014 s check.
    sim.run_for(secs(5) - sim.elapsed());
    sim.restart(&addr("a"));
    let back = sim.run_until(|s| is(s, "a", ServerType::RSSecondary), hb * 2).unwrap();
    let a_failed: Vec<Duration> = sim.heartbeats_failed(&addr("a"));
    assert_eq!(a_failed, [secs(3) + ms(11), secs(3) + ms(12), secs(3) + ms(513), secs(4) + ms(14)]);
    assert_eq!(back, secs(14) + ms(14) + ms(5));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
}

/// m1, m2, m3 at 20, 35 and 40 ms.
fn three_mongoses(local_threshold: Duration) -> Sim {
    let cluster = Cluster::sharded()
        .with(&addr("m1"), Member::new(Role::Mongos).latency(ms(20)))
        .with(&addr("m2"), Member::new(Role::Mongos).latency(ms(35)))
        .with(&addr("m3"), Member::new(Role::Mongos).latency(ms(40)));
    let mut config = TopologyConfig::with_seeds([addr("m1"), addr("m2"), addr("m3")]);
    config.rng_seed = 3;
    config.local_threshold = local_threshold;
    let mut sim = Sim::new(cluster, config, start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(40)));
    sim
}

#[test]
fn mongos_selections_spread_over_the_latency_window() {
    const N: usize = 2000;
    // localThresholdMS 15: the window is [20, 35] ms, so m1 and m2 only, about evenly (the
    // binomial standard deviation is about 22).
    let mut sim = three_mongoses(ms(15));
    sim.run_for(secs(5));
    let rtts: Vec<_> =
        ["m1", "m2", "m3"].iter().map(|a| sim.server(&addr(a)).unwrap().round_trip_time).collect();
    assert_eq!(rtts, [Some(ms(20)), Some(ms(35)), Some(ms(40))]);
    let counts = spread(&mut sim, &SelectionCriteria::write(), N);
    assert_eq!(count(&counts, "m1") + count(&counts, "m2"), N);
    assert_eq!(count(&counts, "m3"), 0, "{counts:?}");
    assert!(count(&counts, "m1").abs_diff(N / 2) < 100, "{counts:?}");
    for m in ["m1", "m2", "m3"] {
        assert_eq!(sim.topology().operation_count(&addr(m)), 0);
    }

    // localThresholdMS 30: the window is [20, 50] ms, all three about a third each.
    let mut sim = three_mongoses(ms(30));
    let counts = spread(&mut sim, &read(ReadPreferenceMode::Nearest), N);
    for m in ["m1", "m2", "m3"] {
        assert!(count(&counts, m).abs_diff(N / 3) < 100, "{counts:?}");
    }
}

#[test]
fn operations_in_flight_steer_the_choice_in_the_window() {
    let cluster = Cluster::sharded()
        .with(&addr("m1"), Member::new(Role::Mongos).latency(ms(10)))
        .with(&addr("m2"), Member::new(Role::Mongos).latency(ms(10)))
        .with(&addr("m3"), Member::new(Role::Mongos).latency(ms(10)));
    let mut config = TopologyConfig::with_seeds([addr("m1"), addr("m2"), addr("m3")]);
    config.rng_seed = 11;
    let mut sim = Sim::new(cluster, config, start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(10)));

    // Ten long operations go to m1 (an application selector keeps only m1) and stay in flight.
    let only_m1 = SelectionCriteria::write().with_selector("m1 only", |servers: &mut ServerList<'_>| {
        servers.retain(|sd| sd.address.host() == "m1");
    });
    for _ in 0..10 {
        let options = sim.selection_options("aggregate");
        assert_eq!(sim.run_selection(only_m1.clone(), options).unwrap().address, addr("m1"));
    }
    assert_eq!(sim.topology().operation_count(&addr("m1")), 10);

    // Of two random candidates the one with fewer operations wins: any pair has m2 or m3, so
    // short operations (finished right away) never go to m1.
    let counts = spread(&mut sim, &SelectionCriteria::write(), 600);
    assert_eq!(count(&counts, "m1"), 0, "{counts:?}");
    assert!(count(&counts, "m2").abs_diff(300) < 60, "{counts:?}");

    // Operations that stay in flight: of m2 and m3 the one with fewer always wins, so they
    // stay within one of each other and after 18 hold 9 each, still fewer than m1's 10.
    let mut held = Vec::new();
    for _ in 0..18 {
        let options = sim.selection_options("find");
        held.push(sim.run_selection(SelectionCriteria::write(), options).unwrap().address);
    }
    assert!(held.iter().all(|a| *a != addr("m1")), "{held:?}");
    assert_eq!(sim.topology().operation_count(&addr("m2")), 9);
    assert_eq!(sim.topology().operation_count(&addr("m3")), 9);
    for a in held {
        sim.finish_operation(&a);
    }

    // Once m1's operations end, it gets its third again.
    for _ in 0..10 {
        sim.finish_operation(&addr("m1"));
    }
    assert_eq!(sim.topology().operation_count(&addr("m1")), 0);
    let counts = spread(&mut sim, &SelectionCriteria::write(), 600);
    assert!(count(&counts, "m1").abs_diff(200) < 60, "{counts:?}");
}

#[test]
fn a_reconfig_moves_tagged_reads_to_the_newly_tagged_member() {
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)).tag("dc", "ny"))
        .with(&addr("b"), Member::new(Role::Secondary).latency(ms(7)).tag("dc", "ny"))
        .with(&addr("c"), Member::new(Role::Secondary).latency(ms(9)).tag("dc", "sf"));
    let mut sim = Sim::new(cluster, rs_config(ServerMonitoringMode::Stream, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(1) - sim.elapsed());
    let ny = tagged_read(ReadPreferenceMode::Secondary, &[&[("dc", "ny")]]);
    assert_eq!(spread(&mut sim, &ny, 50), BTreeMap::from([("b".to_owned(), 50)]));

    // Reconfig at 1 s: b moves to sf, c to ny.
    sim.set_tags(&addr("b"), &[("dc", "sf")]);
    sim.set_tags(&addr("c"), &[("dc", "ny")]);
    // Until b's streamed reply (7 ms) the client still sees the old tags.
    let options = sim.selection_options("find");
    let stale = sim.run_selection(ny.clone(), options).unwrap();
    assert_eq!((stale.address.clone(), stale.at), (addr("b"), secs(1)));
    sim.finish_operation(&stale.address);
    // From 7 ms to 9 ms no secondary is tagged ny as far as the client knows: a selection
    // started at 8 ms waits and is chosen c when c's reply arrives, at 9 ms.
    sim.run_for(ms(8));
    let waiting = sim.start_selection(ny.clone(), sim.selection_options("find"));
    assert!(sim.selection(waiting).is_waiting());
    let moved = sim.run_selection_to_end(waiting).unwrap();
    assert_eq!((moved.address.clone(), moved.at), (addr("c"), secs(1) + ms(9)));
    sim.finish_operation(&moved.address);
    assert_eq!(spread(&mut sim, &ny, 50), BTreeMap::from([("c".to_owned(), 50)]));

    // Ordered tag sets: the first that matches any secondary decides.
    let la_then_sf = tagged_read(ReadPreferenceMode::Secondary, &[&[("dc", "la")], &[("dc", "sf")]]);
    assert_eq!(spread(&mut sim, &la_then_sf, 50), BTreeMap::from([("b".to_owned(), 50)]));
    // With an empty set last, a read falls back to any secondary once no member is tagged ny.
    let ny_or_any = tagged_read(ReadPreferenceMode::Secondary, &[&[("dc", "ny")], &[]]);
    assert_eq!(spread(&mut sim, &ny_or_any, 50), BTreeMap::from([("c".to_owned(), 50)]));
    sim.run_for(secs(2) - sim.elapsed());
    sim.set_tags(&addr("c"), &[("dc", "sf")]);
    sim.run_for(ms(9));
    assert_eq!(sim.server(&addr("c")).unwrap().tags.get("dc"), Some("sf"));
    let counts = spread(&mut sim, &ny_or_any, 200);
    assert_eq!(count(&counts, "a"), 0, "{counts:?}");
    assert!(count(&counts, "b") > 50 && count(&counts, "c") > 50, "{counts:?}");
    // Without the fallback, the same read cannot be served and times out.
    let options = sim.selection_options("find").with_timeout(secs(1));
    let error = sim.run_selection(ny, options).unwrap_err();
    assert_eq!(error.kind, SelectionErrorKind::TimedOut { timeout: secs(1) });
    assert!(error.to_string().contains("no tag set matched"), "{error}");
}

#[test]
fn a_member_whose_latency_rises_leaves_the_window_when_its_average_does() {
    // Polling every second: one RTT sample per heartbeat. a 5 ms, b 7 ms, c 9 ms: nearest
    // reads with localThresholdMS 15 use [5, 20] ms, all three.
    let hb = secs(1);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Poll, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    let nearest = read(ReadPreferenceMode::Nearest);
    let counts = spread(&mut sim, &nearest, 300);
    assert!(["a", "b", "c"].iter().all(|m| count(&counts, m) > 50), "{counts:?}");

    // c slows to 30 ms at 0.5 s. Its average moves by alpha = 0.2 per sample:
    // 13.2, 16.56, 19.25 ms (still in the window), then 21.4 ms > 20 ms: out at the 4th.
    sim.run_for(ms(500) - sim.elapsed());
    sim.set_latency(&addr("c"), ms(30));
    let rtt = |s: &Sim| s.server(&addr("c")).and_then(|sd| sd.round_trip_time).unwrap();
    let mut expected = ms(9);
    for beat in 1..=4 {
        let before = rtt(&sim);
        let at = sim.run_until(|s| rtt(s) != before, hb * 2).expect("a new RTT sample");
        expected = next_average(Some(expected), ms(30));
        assert_eq!(rtt(&sim), expected, "sample {beat} at {at:?}");
        // c's checks start a heartbeat after the previous one ended: 1.014 s, 2.044 s, ...
        assert_eq!(at, ms(14) + (hb + ms(30)) * beat);
        let verdict = explain(&sim.description(), &nearest, None).verdict(&addr("c")).cloned();
        let counts = spread(&mut sim, &nearest, 200);
        if beat < 4 {
            assert_eq!(verdict, Some(Verdict::InWindow), "sample {beat}");
            assert!(count(&counts, "c") > 30, "sample {beat}: {counts:?}");
        } else {
            assert!(
                matches!(verdict, Some(Verdict::Rejected(Rejection::OutsideLatencyWindow { .. }))),
                "{verdict:?}"
            );
            assert_eq!(count(&counts, "c"), 0, "sample {beat}: {counts:?}");
        }
    }
}

#[test]
fn secondary_preferred_falls_back_to_the_primary_when_the_secondaries_are_down() {
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    let preferred = read(ReadPreferenceMode::SecondaryPreferred);
    let counts = spread(&mut sim, &preferred, 100);
    assert_eq!(count(&counts, "a"), 0, "{counts:?}");

    sim.run_for(secs(1) - sim.elapsed());
    sim.crash(&addr("b"));
    // Streaming monitors see b's reset 1 ms later; a read at the same instant as the crash
    // still goes to a secondary, and a read on b fails with a retryable network error.
    sim.crash(&addr("c"));
    let stale = spread(&mut sim, &preferred, 20);
    assert_eq!(count(&stale, "a"), 0, "{stale:?}");
    let error = sim.run_operation(&addr("b"), OperationKind::Read).unwrap_err();
    assert!(error.is_retryable());
    let gone = sim.run_until(|s| is(s, "c", ServerType::Unknown), secs(1)).unwrap();
    assert_eq!(gone, secs(1) + ms(1));
    assert!(is(&sim, "b", ServerType::Unknown));
    let counts = spread(&mut sim, &preferred, 100);
    assert_eq!(counts, BTreeMap::from([("a".to_owned(), 100)]));
    // A secondary-only read cannot be served.
    let options = sim.selection_options("find").with_timeout(ms(500));
    let error = sim.run_selection(read(ReadPreferenceMode::Secondary), options).unwrap_err();
    assert_eq!(error.kind, SelectionErrorKind::TimedOut { timeout: ms(500) });
}

#[test]
fn a_waiting_selection_is_polled_only_on_topology_changes_and_at_its_deadline() {
    let hb = secs(10);
    let mut sim = Sim::new(three_members(), rs_config(ServerMonitoringMode::Stream, hb), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(14)));
    sim.run_for(secs(1) - sim.elapsed());
    sim.step_down(&addr("a"));
    sim.run_for(secs(2) - sim.elapsed());
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetNoPrimary);
    let steps_before = sim.steps();

    // Nothing changes for the next 3 s (streamed replies come every 10 s): a write with a
    // 3 s timeout is polled when it starts and at its deadline, nothing in between.
    let options = SelectionOptions::new("insert").with_timeout(secs(3));
    let lonely = sim.start_selection(SelectionCriteria::write(), options);
    let error = sim.run_selection_to_end(lonely).unwrap_err();
    assert_eq!(error.kind, SelectionErrorKind::TimedOut { timeout: secs(3) });
    assert_eq!(sim.selection(lonely).poll_times(), [secs(2), secs(5)]);
    assert!(sim.steps() - steps_before < 20, "{} steps", sim.steps() - steps_before);

    // A write waiting when b is elected at 6 s: a's reply (naming b the primary) at 6.005 s
    // changes the topology and wakes it; b's own reply at 6.007 s makes b the primary and
    // the selection succeeds at that instant.
    sim.run_for(secs(5) + ms(500) - sim.elapsed());
    let options = SelectionOptions::new("insert").with_timeout(secs(30));
    let waiting = sim.start_selection(SelectionCriteria::write(), options);
    sim.run_for(ms(500));
    sim.elect(&addr("b"));
    sim.run_selection_to_end(waiting).unwrap();
    assert_eq!(selected(&sim, waiting), (addr("b"), secs(6) + ms(7)));
    assert_eq!(sim.selection(waiting).poll_times(), [secs(5) + ms(500), secs(6) + ms(5), secs(6) + ms(7)]);
    let changes: Vec<Duration> = sim
        .events()
        .iter()
        .filter(|(t, e)| *t > secs(5) && matches!(e, Event::TopologyDescriptionChanged { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(changes[..2], [secs(6) + ms(5), secs(6) + ms(7)]);
    // The log tells the story: started, waiting (once), succeeded.
    let log: Vec<(Duration, &SelectionLogKind)> =
        sim.selection(waiting).log().iter().map(|(t, e)| (*t, &e.kind)).collect();
    assert!(
        matches!(
            log[..],
            [
                (t0, SelectionLogKind::Started),
                (t1, SelectionLogKind::Waiting { remaining_time_ms: 30_000 }),
                (t2, SelectionLogKind::Succeeded { .. })
            ] if t0 == secs(5) + ms(500) && t1 == t0 && t2 == secs(6) + ms(7)
        ),
        "{log:?}"
    );
}

#[test]
fn operations_fail_as_the_member_would_and_errors_reach_the_topology() {
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)))
        .with(&addr("b"), Member::new(Role::Secondary).latency(ms(7)))
        .with(&addr("z"), Member::new(Role::Arbiter).latency(ms(3)));
    let mut sim = Sim::new(cluster, rs_config(ServerMonitoringMode::Poll, secs(10)), start());
    assert_eq!(sim.run_until(all_known, secs(1)), Some(ms(12)));
    let code = |e: &sdam::ApplicationError| match &e.kind {
        ApplicationErrorKind::Command { code, .. } => *code,
        _ => None,
    };
    assert_eq!(sim.run_operation(&addr("a"), OperationKind::Write), Ok(()));
    assert_eq!(sim.run_operation(&addr("b"), OperationKind::Read), Ok(()));
    let e = sim.run_operation(&addr("b"), OperationKind::Write).unwrap_err();
    assert_eq!(code(&e), Some(NOT_WRITABLE_PRIMARY));
    let e = sim.run_operation(&addr("z"), OperationKind::Read).unwrap_err();
    assert_eq!(code(&e), Some(NOT_PRIMARY_OR_SECONDARY));
    assert!(e.is_retryable());
    // Both errors carry the member's topologyVersion, which the topology has already seen:
    // stale, nothing changes.
    assert!(is(&sim, "b", ServerType::RSSecondary) && is(&sim, "z", ServerType::RSArbiter));
    assert!(sim.pool_clears().is_empty());

    // An operation on a member that is not there fails with a network error; the topology
    // ignores errors for servers it does not know.
    let e = sim.run_operation(&addr("nowhere"), OperationKind::Read).unwrap_err();
    assert_eq!(e.kind, ApplicationErrorKind::Network);
    assert_eq!(sim.description().servers.len(), 3);

    // A slow write in flight on a when it steps down is refused when a answers: the error's
    // topologyVersion is newer than the topology's, so a is marked Unknown at that instant
    // (not writable primary: no pool clear) and checked again at once.
    sim.run_for(secs(1) - sim.elapsed());
    let op = sim.start_operation(&addr("a"), OperationKind::Write, ms(100));
    sim.run_for(ms(50));
    sim.step_down(&addr("a"));
    sim.run_until(|s| s.operation(op).is_some(), secs(1)).unwrap();
    let outcome = sim.operation(op).unwrap().clone();
    assert_eq!(outcome.at, secs(1) + ms(100));
    assert_eq!(code(&outcome.result.unwrap_err()), Some(NOT_WRITABLE_PRIMARY));
    assert!(is(&sim, "a", ServerType::Unknown));
    assert!(sim.pool_clears().is_empty());
    let back = sim.run_until(|s| is(s, "a", ServerType::RSSecondary), secs(1)).unwrap();
    assert_eq!(back, secs(1) + ms(100) + ms(5));
}

/// Issue #13, failure 1, in the simulator: a member slower than connectTimeoutMS never
/// answers in time; the simulator delivers nothing (as a lost answer), and the core fails the
/// check itself at its deadline: ServerHeartbeatFailed at 1 s, the connection closed, the next
/// check a heartbeat later on a new connection.
#[test]
fn a_member_slower_than_connect_timeout_is_failed_by_the_core_at_its_deadline() {
    let cluster = Cluster::standalone().with(&addr("s"), Member::new(Role::Standalone).latency(secs(3)));
    let mut config = TopologyConfig::with_seeds([addr("s")]);
    config.connect_timeout = Some(secs(1));
    config.heartbeat_frequency = secs(5);
    config.rng_seed = 7;
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(secs(12));
    assert_eq!(sim.heartbeats_started(&addr("s")), [ms(0), secs(6), secs(12)]);
    assert_eq!(sim.heartbeats_failed(&addr("s")), [secs(1), secs(7)]);
    let closed: Vec<Duration> = sim.closed_connections().iter().map(|(t, _, _)| *t).collect();
    assert_eq!(closed, [secs(1), secs(7)]);
    assert_eq!(sim.hello_counts(&addr("s"), ms(0), secs(13)), (3, 3), "each check on a new connection");
    assert!(is(&sim, "s", ServerType::Unknown));
}
