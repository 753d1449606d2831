//! End-to-end scenarios: the core driven by the simulator through virtual time.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use sdam::rtt::next_average;
use sdam::selection::{
    explain, Rejection, SelectionCriteria, SelectionErrorKind, SelectionOptions, ServerList, Verdict,
};
use sdam::{
    ApplicationErrorKind, Event, ReadPreference, ReadPreferenceMode, ServerAddress, ServerMonitoringMode,
    ServerType, TagSet, TopologyConfig, TopologyDescription, TopologyType,
};
use sdam_sim::{Cluster, Member, OperationKind, Role, Sim, NOT_WRITABLE_PRIMARY};

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
    let failures: Vec<Duration> = sim
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::ServerHeartbeatFailed { address, .. } if *address == addr("a")))
        .map(|(t, _)| *t)
        .collect();
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

#[test]
fn a_non_streaming_member_is_polled_not_hot_looped() {
    let hb = secs(2);
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(ms(5)))
        .with(&addr("b"), Member::new(Role::Secondary).latency(ms(7)).non_streaming());
    let mut sim = Sim::new(cluster, rs_config(ServerMonitoringMode::Stream, hb), start());
    let before = sim.steps();
    sim.run_for(secs(60));
    assert!(sim.steps() - before < 1_000, "{} steps", sim.steps() - before);
    // The handshake, one awaitable hello answered at once without moreToCome, then polling.
    let beats = sim.heartbeats_started(&addr("b"));
    let expected = 60 / 2;
    assert!(
        beats.len() >= expected && beats.len() <= expected + 2,
        "{} heartbeats to b in 60 s",
        beats.len()
    );
    // Exactly: the handshake at 5 ms (b named by a), the awaitable hello at 12 ms (answered at
    // 19 ms without moreToCome), then a poll every heartbeat after the previous check ended.
    assert_eq!(beats[..3], [ms(5), ms(12), ms(19) + hb]);
    assert!(beats.windows(2).skip(2).all(|w| w[1] - w[0] == hb + ms(7)));
    assert_eq!(beats.len(), 31);
    // The streaming member a: its streamed replies come every maxAwaitTimeMS (2 s).
    let a_beats = sim.heartbeats_started(&addr("a")).len();
    assert!(a_beats <= expected + 3, "{a_beats} heartbeats to a");
    assert!(is(&sim, "b", ServerType::RSSecondary));
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
    let failures = sim
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::ServerHeartbeatFailed { address, .. } if *address == addr("a")))
        .count();
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
    let a_failed: Vec<Duration> = sim
        .events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::ServerHeartbeatFailed { address, .. } if *address == addr("a")))
        .map(|(t, _)| *t)
        .collect();
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
