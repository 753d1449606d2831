//! The prose tests of the SDAM test README (`source/server-discovery-and-monitoring/tests/
//! README.md`, "Prose Tests") and of the SDAM test plan
//! (`server-discovery-and-monitoring-tests.md`) that the simulator can run: the deployment is
//! simulated, the core (monitors included) is the real one, time is virtual. Each test names its
//! README section. The ones that need a real TCP server run over loopback in the adapters'
//! suite (`sdam-testserver`'s `scenarios::monitoring`).

use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{Event, ServerAddress, ServerMonitoringMode, ServerType, TopologyConfig};
use sdam_sim::{Cluster, Member, Role, Sim};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The one real instant of a test: virtual time zero.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// A standalone, a replica set and a sharded cluster ("Each test should be run against a
/// standalone, replica set, and sharded cluster"), with the seed to start from.
fn deployments() -> Vec<(&'static str, Cluster, Option<&'static str>)> {
    vec![
        ("standalone", Cluster::standalone().with(&addr("s"), Member::new(Role::Standalone)), None),
        (
            "replica set",
            Cluster::replica_set("rs")
                .with(&addr("s"), Member::new(Role::Primary))
                .with(&addr("t"), Member::new(Role::Secondary)),
            Some("rs"),
        ),
        (
            "sharded",
            Cluster::sharded()
                .with(&addr("s"), Member::new(Role::Mongos))
                .with(&addr("t"), Member::new(Role::Mongos)),
            None,
        ),
    ]
}

/// The times of `address`'s ServerHeartbeatSucceeded events: when its replies were processed.
fn replies_processed(sim: &Sim, address: &ServerAddress) -> Vec<Duration> {
    sim.events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::ServerHeartbeatSucceeded { address: a, .. } if a == address))
        .map(|(t, _)| *t)
        .collect()
}

/// README "Prose Tests" > "Streaming protocol Tests", test 1: with heartbeatFrequencyMS=500
/// the client processes hello replies about every 500 ms (maxAwaitTimeMS is
/// heartbeatFrequencyMS, so a streaming server sends one every 500 ms).
#[test]
fn streaming_protocol_1_heartbeat_frequency_500ms_processes_replies_every_500ms() {
    for (name, cluster, set) in deployments() {
        let mut config = TopologyConfig::with_seeds([addr("s")]);
        config.replica_set_name = set.map(str::to_owned);
        config.heartbeat_frequency = ms(500);
        config.server_monitoring_mode = ServerMonitoringMode::Stream;
        config.rng_seed = 1;
        let mut sim = Sim::new(cluster, config, start());
        sim.run_for(Duration::from_secs(10));
        let times = replies_processed(&sim, &addr("s"));
        // The handshake at 1 ms, then a streamed reply every 500 ms (+1 ms latency each).
        assert!(times.len() >= 19 && times.len() <= 21, "{name}: {} replies in 10 s", times.len());
        assert!(
            times.windows(2).skip(1).all(|w| w[1] - w[0] >= ms(499) && w[1] - w[0] <= ms(502)),
            "{name}: {times:?}"
        );
    }
}

/// README "Prose Tests" > "RTT Tests", test 1: the RTT is continuously updated. With
/// heartbeatFrequencyMS=500, every ServerDescriptionChanged carries a non-zero RTT; once hello
/// is blocked for 500 ms (the fail point's blockTimeMS, here the member's latency), the RTT
/// exceeds 250 ms within 10 s — through the RTT connection, since streamed replies are no
/// samples.
#[test]
fn rtt_1_the_rtt_is_continuously_updated() {
    let cluster = Cluster::replica_set("rs").with(&addr("s"), Member::new(Role::Primary).latency(ms(2)));
    let mut config = TopologyConfig::with_seeds([addr("s")]);
    config.replica_set_name = Some("rs".into());
    config.heartbeat_frequency = ms(500);
    config.metadata.app_name = Some("streamingRttTest".into());
    config.server_monitoring_mode = ServerMonitoringMode::Stream;
    let mut sim = Sim::new(cluster, config, start());
    // 2./3. Discovered, then 2 s: several heartbeats.
    assert!(sim
        .run_until(|s| s.server(&addr("s")).is_some_and(|d| d.server_type == ServerType::RSPrimary), ms(100))
        .is_some());
    sim.run_for(Duration::from_secs(2));
    // 4. Every ServerDescriptionChanged includes a non-zero RTT.
    let changes: Vec<_> = sim
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ServerDescriptionChanged { new, .. } if new.server_type != ServerType::Unknown => {
                Some(new.clone())
            }
            _ => None,
        })
        .collect();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|d| d.round_trip_time.is_some_and(|r| !r.is_zero())), "{changes:?}");
    // 5. hello blocked for 500 ms.
    let blocked_at = sim.elapsed();
    sim.set_latency(&addr("s"), ms(500));
    // 6. The RTT exceeds 250 ms within 10 s (the description of the server shows it).
    let rtt_over =
        |s: &Sim| s.server(&addr("s")).and_then(|d| d.round_trip_time).is_some_and(|r| r > ms(250));
    let at = sim.run_until(rtt_over, Duration::from_secs(10)).expect("the RTT exceeds 250 ms within 10 s");
    assert!(at - blocked_at < Duration::from_secs(10));
    // 7. Fail point off.
    sim.set_latency(&addr("s"), ms(2));
}

/// README "Prose Tests" > "Heartbeat Tests", test 1 (the order of events), in the simulator:
/// a server that closes the connection when it receives the hello. ServerHeartbeatStarted is
/// published before the connection is opened, ServerHeartbeatFailed after the server closed it.
/// (The same server over real TCP, through both adapters: `scenarios::monitoring`.)
#[test]
fn heartbeat_1_started_is_published_before_the_monitoring_connection_opens() {
    // A member that is down refuses or resets every connection.
    let cluster = Cluster::standalone().with(&addr("s"), Member::new(Role::Standalone).down());
    let mut config = TopologyConfig::with_seeds([addr("s")]);
    config.server_selection_timeout = ms(500);
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(ms(10));
    let started = sim.heartbeats_started(&addr("s"));
    let failed = sim.heartbeats_failed(&addr("s"));
    let opened = sim.hellos().iter().find(|h| h.opened).map(|h| h.at).unwrap();
    assert_eq!((started[0], opened), (ms(0), ms(0)));
    assert!(failed[0] > opened, "failed after the connection attempt: {failed:?}");
    let options = sim.selection_options("ping");
    assert!(sim.run_selection(SelectionCriteria::write(), options).is_err(), "the client fails to connect");
}

/// SDAM test plan (server-discovery-and-monitoring-tests.md), "Monitors sleep at least
/// minHeartbeatFrequencyMS between checks": hello fails with a command error 5 times; a
/// `ping` (a selection, with directConnection=true and serverSelectionTimeoutMS=5000) takes
/// between 2 and 3.5 s.
#[test]
fn monitors_sleep_at_least_min_heartbeat_frequency_between_checks() {
    let cluster = Cluster::standalone().with(&addr("s"), Member::new(Role::Standalone).failing_hellos(5));
    let mut config = TopologyConfig::with_seeds([addr("s")]);
    config.direct_connection = Some(true);
    config.metadata.app_name = Some("SDAMMinHeartbeatFrequencyTest".into());
    config.server_selection_timeout = Duration::from_secs(5);
    let mut sim = Sim::new(cluster, config, start());
    let options = sim.selection_options("ping");
    let chosen = sim.run_selection(SelectionCriteria::write(), options).expect("the ping's server");
    assert!(chosen.at >= Duration::from_secs(2) && chosen.at <= ms(3500), "took {:?}", chosen.at);
    let checks = sim.heartbeats_started(&addr("s"));
    // The five failed checks and the sixth, successful one (then streaming starts at once).
    assert!(checks[..6].windows(2).all(|w| w[1] - w[0] >= ms(500)), "{checks:?}");
}
