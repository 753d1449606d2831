//! The pool-ready signal in virtual time: each member's pool is marked ready when its first
//! check succeeds, and again (with the new generation) only after a clear, when the server is
//! found usable again (CMAP "ready"/"paused"; server-monitoring.md, "Marking the connection
//! pool as ready").

use std::time::{Duration, Instant};

use sdam::{ServerAddress, ServerMonitoringMode, ServerType, TopologyConfig};
use sdam_sim::{Cluster, Member, Role, Sim};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

#[test]
fn pools_are_ready_once_per_pause_through_a_crash_and_restart() {
    let cluster = Cluster::replica_set("rs")
        .with(&addr("a"), Member::new(Role::Primary).latency(Duration::from_millis(5)))
        .with(&addr("b"), Member::new(Role::Secondary).latency(Duration::from_millis(5)));
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.replica_set_name = Some("rs".into());
    config.server_monitoring_mode = ServerMonitoringMode::Poll;
    config.heartbeat_frequency = Duration::from_secs(1);
    config.rng_seed = 3;
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(Duration::from_secs(5));
    let ready: Vec<(ServerAddress, u32)> =
        sim.pool_readies().iter().map(|(_, a, g)| (a.clone(), *g)).collect();
    assert_eq!(
        ready,
        [(addr("a"), 0), (addr("b"), 0)],
        "once each, at the first check, despite 5 heartbeats"
    );
    // Every ready comes no later than the server was first seen usable.
    for (at, address, _) in sim.pool_readies() {
        let usable = sim
            .events()
            .iter()
            .find(|(_, e)| {
                matches!(e, sdam::Event::ServerDescriptionChanged { new, .. }
                if &new.address == address && new.server_type != ServerType::Unknown)
            })
            .map(|(t, _)| *t)
            .unwrap();
        assert!(*at <= usable, "{address}: ready at {at:?}, usable at {usable:?}");
    }

    sim.crash(&addr("b"));
    sim.run_for(Duration::from_secs(3));
    assert!(sim.pool_clears().iter().any(|(_, a)| *a == addr("b")), "the failed check cleared b's pool");
    assert_eq!(sim.pool_readies().len(), 2, "nothing readied while b is down");
    sim.restart(&addr("b"));
    sim.run_until(
        |s| s.server(&addr("b")).is_some_and(|sd| sd.server_type == ServerType::RSSecondary),
        Duration::from_secs(5),
    )
    .expect("b is back");
    sim.run_for(Duration::from_secs(3));
    let generation = sim.topology().pool_generation(&addr("b")).unwrap();
    assert!(generation >= 1);
    let after: Vec<(ServerAddress, u32)> =
        sim.pool_readies()[2..].iter().map(|(_, a, g)| (a.clone(), *g)).collect();
    assert_eq!(after, [(addr("b"), generation)], "readied once, with the generation of the last clear");
}
