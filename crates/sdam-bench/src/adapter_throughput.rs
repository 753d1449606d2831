//! Adapter selection throughput: how many `select_server` calls (each dropping its guard at
//! once) both adapters complete per second from many tasks or threads at once, against a
//! 7-member replica set of scripted servers (`sdam-testserver`) on loopback, beside the
//! core's single-thread rate for the same selection on the same kind of topology.
//!
//! - [`tokio_selections_per_second`]: 64 tasks on tokio's multi-threaded runtime (one worker
//!   per core).
//! - [`std_selections_per_second`]: 8 threads.
//! - [`core_selections_per_second`]: one thread, [`SelectionSnapshot::select_now`] plus
//!   [`SelectedServer::finish_operation`](sdam::selection::SelectedServer::finish_operation)
//!   (what both adapters run per selection).
//!
//! The criteria are secondaryPreferred: the six secondaries are in the latency window, so
//! every selection draws two and compares their operation counts. Setting up the servers and
//! discovering them is not timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::rng::Rng;
use sdam::selection::{SelectionCriteria, SelectionSnapshot};
use sdam::{ReadPreference, ReadPreferenceMode, TopologyConfig};
use sdam_testserver::{Cluster, MemberSpec, ReplicaSet, Role};

/// Tasks selecting at once in the tokio measurement.
pub const TOKIO_TASKS: usize = 64;
/// Threads selecting at once in the std measurement.
pub const STD_THREADS: usize = 8;
/// Members of the replica set (one primary, six secondaries).
pub const MEMBERS: usize = 7;

fn criteria() -> SelectionCriteria {
    SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::SecondaryPreferred))
}

/// The 7-member set and a configuration for it.
fn replica_set() -> (Cluster, TopologyConfig) {
    let mut builder = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary));
    for _ in 1..MEMBERS {
        builder = builder.member(MemberSpec::new(Role::Secondary));
    }
    let set = builder.start().unwrap_or_else(|e| panic!("the scripted replica set does not start: {e}"));
    let mut config = TopologyConfig::with_seeds(set.addresses());
    config.replica_set_name = Some("rs0".into());
    (set, config)
}

/// Waits (up to 10 s) until `known` reports every member.
fn until_discovered(mut known: impl FnMut() -> usize) {
    let start = Instant::now();
    while known() < MEMBERS {
        assert!(start.elapsed() < Duration::from_secs(10), "the replica set was not discovered");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// 64 tokio tasks on the multi-threaded runtime, each selecting and dropping the guard in a
/// loop for `duration`: selections per second, all tasks together.
///
/// # Panics
/// If the scripted servers cannot start or are not discovered within 10 s.
pub fn tokio_selections_per_second(duration: Duration) -> f64 {
    let (set, config) = replica_set();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let rate = runtime.block_on(async move {
        let client = sdam_tokio::Client::new(config).unwrap_or_else(|e| panic!("client: {e}"));
        while client.nodes().len() < MEMBERS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..TOKIO_TASKS)
            .map(|_| {
                let (client, stop, total) = (client.clone(), Arc::clone(&stop), Arc::clone(&total));
                tokio::spawn(async move {
                    let criteria = criteria();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let guard = client.select_server(criteria.clone()).await;
                        drop(std::hint::black_box(guard));
                        n += 1;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = start.elapsed();
        client.close().await;
        total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    });
    drop(set);
    rate
}

/// 8 std threads, each selecting and dropping the guard in a loop for `duration`: selections
/// per second, all threads together.
///
/// # Panics
/// If the scripted servers cannot start or are not discovered within 10 s.
pub fn std_selections_per_second(duration: Duration) -> f64 {
    let (set, config) = replica_set();
    let client = sdam_std::Client::new(config).unwrap_or_else(|e| panic!("client: {e}"));
    until_discovered(|| client.nodes().len());
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..STD_THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let criteria = criteria();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let guard = client.select_server(criteria.clone());
                        drop(std::hint::black_box(guard));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
    });
    let elapsed = start.elapsed();
    client.close();
    drop(set);
    total as f64 / elapsed.as_secs_f64()
}

/// One thread selecting from the core's snapshot of the same 7-member set (discovered by a
/// std client, then read from its topology description) for `duration`: selections per
/// second, the median over batches of 1,024.
///
/// # Panics
/// If the scripted servers cannot start or are not discovered within 10 s.
pub fn core_selections_per_second(duration: Duration) -> f64 {
    let (set, config) = replica_set();
    let client = sdam_std::Client::new(config.clone()).unwrap_or_else(|e| panic!("client: {e}"));
    until_discovered(|| client.nodes().len());
    let snapshot = snapshot_of(&client.description(), config);
    client.close();
    drop(set);
    let criteria = criteria();
    let mut rng = Rng::new(1);
    // The median batch: a thread preempted on a busy machine does not count the time it
    // did not run (the adapters' figures, over many threads, are wall-clock and do).
    let mut batches = Vec::new();
    let start = Instant::now();
    loop {
        let batch = Instant::now();
        for _ in 0..1024 {
            if let Some(mut selected) = snapshot.select_now(&criteria, &mut rng) {
                selected.finish_operation();
            }
        }
        batches.push(1024.0 / batch.elapsed().as_secs_f64());
        if start.elapsed() >= duration {
            break;
        }
    }
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

/// A topology holding `description`'s servers (fed as the monitors' replies would be), and
/// its selection snapshot.
fn snapshot_of(
    description: &sdam::TopologyDescription,
    mut config: TopologyConfig,
) -> Arc<SelectionSnapshot> {
    config.rng_seed = Some(1);
    // Checks reported by address: this topology is fed by hand, not monitored.
    config.monitor_owner = sdam::MonitorOwner::Driver;
    let now = Instant::now();
    let mut topology = sdam::Topology::new(config, now).unwrap_or_else(|e| panic!("topology: {e}"));
    let mut hosts = bson::RawArrayBuf::new();
    for address in description.servers.addresses() {
        hosts.push(address.to_string());
    }
    for sd in description.servers.iter() {
        let primary = sd.server_type == sdam::ServerType::RSPrimary;
        let reply = bson::rawdoc! {
            "ok": 1, "isWritablePrimary": primary, "secondary": !primary, "setName": "rs0",
            "hosts": hosts.clone(), "minWireVersion": 0, "maxWireVersion": 21,
        };
        let rtt = sd.round_trip_time.unwrap_or(Duration::from_micros(100));
        topology.handle(
            sdam::Input::HelloReply {
                address: sd.address.clone(),
                reply,
                round_trip_time: rtt,
                awaited: false,
            },
            now,
        );
    }
    while topology.poll_output().is_some() {}
    topology.selection_snapshot()
}
