//! The server-selection test plan's prose tests (server-selection/server-selection-tests.md;
//! the tests README itself has none) that need operations in flight: run in virtual time
//! against simulated mongoses, with the simulator's operations standing in for `findOne`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sdam::selection::{SelectionCriteria, SelectionOptions};
use sdam::{ReadPreference, ReadPreferenceMode, ServerAddress, TopologyConfig};
use sdam_sim::{Cluster, Member, OperationId, OperationKind, Role, Sim};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// Runs `workers` concurrent "threads", each running `per_worker` operations one after the
/// other: select (nearest), run the operation for `duration(server)`, finish it. Returns how
/// many operations each server got.
fn run_concurrently(
    sim: &mut Sim,
    workers: usize,
    per_worker: usize,
    duration: impl Fn(&ServerAddress) -> Duration,
) -> BTreeMap<ServerAddress, usize> {
    let criteria = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest));
    let mut left = vec![per_worker; workers];
    let mut current: Vec<Option<(OperationId, ServerAddress)>> = vec![None; workers];
    let mut counts = BTreeMap::new();
    loop {
        for w in 0..workers {
            if current[w].is_none() && left[w] > 0 {
                let options = SelectionOptions::new("find").with_timeout(Duration::from_secs(5));
                let chosen = sim.run_selection(criteria.clone(), options).expect("a mongos is selected");
                let id = sim.start_operation(&chosen.address, OperationKind::Read, duration(&chosen.address));
                *counts.entry(chosen.address.clone()).or_insert(0) += 1;
                current[w] = Some((id, chosen.address));
                left[w] -= 1;
            }
        }
        if current.iter().all(Option::is_none) {
            return counts;
        }
        sim.run_for(Duration::from_millis(1));
        for slot in &mut current {
            if let Some((id, address)) = slot.clone() {
                if let Some(outcome) = sim.operation(id) {
                    assert!(outcome.result.is_ok(), "{outcome:?}");
                    sim.finish_operation(&address);
                    *slot = None;
                }
            }
        }
    }
}

/// server-selection-tests.md, "operationCount-based Selection Within Latency Window
/// (multi-threaded or async drivers)", "Prose Test": with one of two mongoses blocking every
/// find for 500 ms, fewer than 25% of 10 x 10 concurrent finds go to it; once unblocked,
/// 10 x 100 finds split about evenly (50% +/- 10%). localThresholdMS=30000 keeps both in the
/// window, so only the operation counts decide.
#[test]
fn prose_test_operation_count_based_selection_within_latency_window() {
    let (slow, fast) = (addr("a:27017"), addr("b:27017"));
    let cluster = Cluster::sharded()
        .with(&slow, Member::new(Role::Mongos).latency(Duration::from_millis(2)))
        .with(&fast, Member::new(Role::Mongos).latency(Duration::from_millis(2)));
    let mut config = TopologyConfig::with_seeds([slow.clone(), fast.clone()]);
    config.local_threshold = Duration::from_secs(30);
    config.rng_seed = 11;
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(Duration::from_secs(1));
    // The failpoint: finds on `slow` block for 500 ms.
    let blocked =
        run_concurrently(&mut sim, 10, 10, |a| Duration::from_millis(if *a == slow { 500 } else { 2 }));
    let on_slow = blocked.get(&slow).copied().unwrap_or(0);
    assert!(on_slow * 4 < 100, "{on_slow} of 100 finds went to the blocked mongos: {blocked:?}");
    // The failpoint is disabled.
    let even = run_concurrently(&mut sim, 10, 100, |_| Duration::from_millis(2));
    for (address, n) in &even {
        assert!((400..=600).contains(n), "{address}: {n} of 1000 finds: {even:?}");
    }
    assert_eq!(even.len(), 2);
}

/// server-selection-tests.md, "Application-Provided Server Selector": a selector that keeps
/// the suitable server with the highest port decides every one of 10 nearest reads.
#[test]
fn test_plan_application_provided_server_selector() {
    let members = [addr("h:27017"), addr("h:27018"), addr("h:27019")];
    let cluster = Cluster::replica_set("rs")
        .with(&members[0], Member::new(Role::Primary).latency(Duration::from_millis(1)))
        .with(&members[1], Member::new(Role::Secondary).latency(Duration::from_millis(1)))
        .with(&members[2], Member::new(Role::Secondary).latency(Duration::from_millis(1)));
    let mut config = TopologyConfig::with_seeds(members.iter().cloned());
    config.replica_set_name = Some("rs".into());
    config.rng_seed = 5;
    let mut sim = Sim::new(cluster, config, start());
    sim.run_for(Duration::from_secs(1));
    let criteria = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest)).with_selector(
        "highest port",
        |servers| {
            let best = servers.iter().map(|sd| sd.address.port()).max().flatten();
            servers.retain(|sd| sd.address.port() == best);
        },
    );
    for _ in 0..10 {
        let chosen = sim.run_selection(criteria.clone(), SelectionOptions::new("find")).expect("selected");
        assert_eq!(chosen.address, members[2]);
        sim.finish_operation(&chosen.address);
    }
}
