//! The core's selection fast path does not allocate for topologies of up to eight servers.
//!
//! This test lives here, not in the core, because it installs the counting global allocator
//! of [`sdam_bench::alloc_count`]: the core stays free of a dependency on the bench crate.
//! [`allocations_during`] reports how many allocations the current thread made while running
//! a closure (other test threads do not disturb the count).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sdam::rng::Rng;
use sdam::selection::{
    in_latency_window, select_server, suitable_servers, NoOperations, SelectionCriteria, ServerList,
    INLINE_SERVERS,
};
use sdam::{
    ReadPreference, ReadPreferenceMode, ServerAddress, ServerDescription, ServerType, TagSet, Tags,
    TopologyDescription, TopologyType,
};

use sdam_bench::alloc_count::{allocations_during, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[allow(clippy::disallowed_methods)] // the test needs one base instant
fn base() -> Instant {
    Instant::now()
}

/// A replica set of `n` servers: a primary and `n - 1` secondaries with tags, RTTs and
/// staleness data, some stale.
fn replica_set(n: usize, t0: Instant) -> TopologyDescription {
    let mut td = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
    for i in 0..n {
        let mut sd = ServerDescription::unknown(ServerAddress::tcp(&format!("host{i}"), 27017).unwrap());
        sd.server_type = if i == 0 { ServerType::RSPrimary } else { ServerType::RSSecondary };
        sd.round_trip_time = Some(Duration::from_millis(5 + 4 * i as u64));
        sd.max_wire_version = 21;
        sd.last_update_time = Some(t0);
        // Every third secondary lags 200 s.
        let lag = if i % 3 == 2 { 200_000 } else { 0 };
        sd.last_write_date = Some(bson::DateTime::from_millis(10_000_000 - lag));
        let dc = if i % 2 == 0 { "ny" } else { "sf" };
        sd.tags = Tags::new(vec![("dc".into(), dc.into()), ("rack".into(), i.to_string())]);
        td.insert_server(sd);
    }
    td
}

fn sharded(n: usize) -> TopologyDescription {
    let mut td = TopologyDescription::new(TopologyType::Sharded);
    for i in 0..n {
        let mut sd = ServerDescription::unknown(ServerAddress::tcp(&format!("mongos{i}"), 27017).unwrap());
        sd.server_type = ServerType::Mongos;
        sd.round_trip_time = Some(Duration::from_millis(10 + i as u64));
        sd.max_wire_version = 21;
        td.insert_server(sd);
    }
    td
}

fn criteria() -> Vec<SelectionCriteria> {
    let tags = |dc: &str| TagSet(vec![("dc".into(), dc.into())]);
    let mut all: Vec<SelectionCriteria> = [
        ReadPreferenceMode::Primary,
        ReadPreferenceMode::PrimaryPreferred,
        ReadPreferenceMode::Secondary,
        ReadPreferenceMode::SecondaryPreferred,
        ReadPreferenceMode::Nearest,
    ]
    .into_iter()
    .map(|m| SelectionCriteria::read(ReadPreference::new(m)))
    .collect();
    let tagged_stale = ReadPreference::new(ReadPreferenceMode::Nearest)
        .with_tag_sets(vec![tags("la"), tags("sf"), TagSet::default()])
        .and_then(|rp| rp.with_max_staleness_seconds(Some(120)))
        .unwrap();
    all.push(SelectionCriteria::read(tagged_stale));
    all.push(SelectionCriteria::write());
    all.push(SelectionCriteria::write().with_deprioritized([
        ServerAddress::parse("host0").unwrap(),
        ServerAddress::parse("mongos0").unwrap(),
    ]));
    all.push(SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest)).with_selector(
        "even racks",
        |servers: &mut ServerList<'_>| {
            servers.retain(|sd| sd.address.host().ends_with(['0', '2', '4', '6']));
        },
    ));
    all
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = allocations_during(|| black_box(vec![1u8; 16]));
    assert_eq!(v.len(), 16);
    assert!(n >= 1);
}

#[test]
fn fast_path_does_not_allocate_up_to_eight_servers() {
    let t0 = base();
    let all = criteria();
    let busy = |a: &ServerAddress| a.host().len() as u32;
    for n in 1..=INLINE_SERVERS {
        for td in [replica_set(n, t0), sharded(n)] {
            for c in &all {
                let mut rng = Rng::new(n as u64);
                let ((window, suitable, chosen, chosen_busy), allocations) = allocations_during(|| {
                    let window = in_latency_window(&td, c).map(|w| w.len());
                    let suitable = suitable_servers(&td, c).map(|s| s.len());
                    let chosen = select_server(&td, c, &NoOperations, &mut rng).map(|s| s.is_some());
                    let chosen_busy = select_server(&td, c, &busy, &mut rng).map(|s| s.is_some());
                    black_box((window, suitable, chosen, chosen_busy))
                });
                assert_eq!(allocations, 0, "{n} servers, {:?}, criteria {c}", td.topology_type);
                // The calls did real work: a server is chosen exactly when the window is non-empty.
                let window = window.unwrap();
                assert!(suitable.unwrap() >= window);
                assert_eq!(chosen.unwrap(), window > 0);
                assert_eq!(chosen_busy.unwrap(), window > 0);
            }
        }
    }
}

#[test]
fn larger_topologies_spill_to_the_heap() {
    // The bound is real: nine suitable servers no longer fit inline.
    let td = sharded(INLINE_SERVERS + 1);
    let c = SelectionCriteria::write();
    let (len, allocations) = allocations_during(|| in_latency_window(&td, &c).map(|w| w.len()));
    assert_eq!(len, Ok(INLINE_SERVERS + 1));
    assert!(allocations > 0);
}
