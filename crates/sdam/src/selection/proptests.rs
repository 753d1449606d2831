//! Property tests: on arbitrary topologies and criteria, selection agrees with a direct
//! transcription of the spec's rules, returns only servers that satisfy mode, staleness and
//! tag sets inside the latency window, returns one whenever the window is non-empty, explains
//! every server, and never panics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::read_preference::{ReadPreference, ReadPreferenceMode, TagSet};
use crate::rng::Rng;
use crate::server_description::{ServerDescription, ServerType, Tags};
use crate::topology_description::{TopologyDescription, TopologyType};
use crate::ServerAddress;

use crate::testing::plan::MODES;
use crate::testing::selection_case::{SERVER_TYPES, TOPOLOGY_TYPES};

const DCS: [&str; 3] = ["ny", "sf", "la"];

/// One generated server: type, RTT (ms), dc tag, lastWriteDate and update time offsets (s).
type ServerSpec = (usize, Option<u64>, Option<usize>, Option<u64>, Option<u64>);

fn server_spec() -> impl Strategy<Value = ServerSpec> {
    (
        // Mostly replica set members and mongoses, to reach the interesting rules often.
        prop_oneof![3 => 3usize..5, 1 => 0usize..9, 1 => Just(2usize)],
        proptest::option::weighted(0.9, 0u64..60),
        proptest::option::of(0usize..3),
        proptest::option::weighted(0.9, 0u64..400),
        proptest::option::weighted(0.9, 0u64..400),
    )
}

/// A generated case.
#[derive(Debug, Clone)]
struct Case {
    topology_type: usize,
    servers: Vec<ServerSpec>,
    heartbeat_ms: u64,
    threshold_ms: u64,
    incompatible: bool,
    write: bool,
    mode: usize,
    tag_sets: Vec<Vec<usize>>,
    max_staleness: Option<i64>,
    deprioritized: Vec<bool>,
    selector: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            0usize..6,
            proptest::collection::vec(server_spec(), 0..11),
            500u64..130_000,
            0u64..40,
            proptest::bool::weighted(0.05),
        ),
        (
            proptest::bool::weighted(0.2),
            0usize..5,
            proptest::collection::vec(proptest::collection::vec(0usize..3, 0..2), 0..3),
            proptest::option::of(prop_oneof![1 => 0i64..100, 3 => 90i64..200]),
            proptest::collection::vec(proptest::bool::weighted(0.2), 11),
            proptest::bool::weighted(0.2),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (topology_type, servers, heartbeat_ms, threshold_ms, incompatible),
                (write, mode, tag_sets, max_staleness, deprioritized, selector, seed),
            )| Case {
                topology_type,
                servers,
                heartbeat_ms,
                threshold_ms,
                incompatible,
                write,
                mode,
                tag_sets,
                max_staleness,
                deprioritized,
                selector,
                seed,
            },
        )
}

fn host(i: usize) -> ServerAddress {
    ServerAddress::tcp(&format!("h{i}"), 27017).unwrap_or_else(|_| unreachable!())
}

fn build(case: &Case, t0: Instant) -> (TopologyDescription, SelectionCriteria) {
    let mut td = TopologyDescription::new(TOPOLOGY_TYPES[case.topology_type]);
    td.heartbeat_frequency = Duration::from_millis(case.heartbeat_ms);
    td.local_threshold = Duration::from_millis(case.threshold_ms);
    for (i, &(ty, rtt, dc, write, update)) in case.servers.iter().enumerate() {
        let mut sd = ServerDescription::unknown(host(i));
        sd.server_type = SERVER_TYPES[ty];
        sd.max_wire_version = crate::compatibility::MAX_WIRE_VERSION;
        sd.round_trip_time = rtt.map(Duration::from_millis);
        sd.tags = Tags::new(dc.map(|d| vec![("dc".to_owned(), DCS[d].to_owned())]).unwrap_or_default());
        sd.last_write_date = write.map(|s| bson::DateTime::from_millis(1_000_000_000 + 1000 * s as i64));
        sd.last_update_time = update.map(|s| t0 + Duration::from_secs(s));
        td.insert_server(sd);
    }
    if case.incompatible {
        td.compatibility_error = Some("generated incompatibility".into());
    }
    let mut criteria = if case.write {
        SelectionCriteria::write()
    } else {
        let mode = MODES[case.mode];
        let sets = case
            .tag_sets
            .iter()
            .map(|set| TagSet(set.iter().map(|&d| ("dc".to_owned(), DCS[d].to_owned())).collect()))
            .collect();
        let mut rp = ReadPreference::new(mode);
        // Combinations the constructor rejects (mode primary with tags or staleness) are
        // dropped: they never reach selection.
        if let Ok(with_tags) = rp.clone().with_tag_sets(sets) {
            rp = with_tags;
        }
        if let Ok(with_max) = rp.clone().with_max_staleness_seconds(case.max_staleness) {
            rp = with_max;
        }
        SelectionCriteria::read(rp)
    };
    for i in 0..case.servers.len() {
        if case.deprioritized[i] {
            criteria.deprioritize(host(i));
        }
    }
    if case.selector {
        criteria = criteria.with_selector("even hosts", |s: &mut ServerList<'_>| {
            s.retain(|sd| sd.address.host().ends_with(['0', '2', '4', '6', '8']));
        });
    }
    (td, criteria)
}

fn names(list: &[&Arc<ServerDescription>]) -> BTreeSet<String> {
    list.iter().map(|sd| sd.address.to_string()).collect()
}

/// The spec's rules transcribed directly, over the servers `present` accepts.
fn reference_rules<'a>(
    td: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    present: &dyn Fn(&ServerDescription) -> bool,
) -> Vec<&'a Arc<ServerDescription>> {
    let of = |t: ServerType| -> Vec<_> {
        td.servers.iter().filter(|sd| present(sd) && sd.server_type == t).collect()
    };
    match td.topology_type {
        TopologyType::Unknown => vec![],
        TopologyType::Single => {
            td.servers.iter().filter(|sd| present(sd) && sd.server_type != ServerType::Unknown).collect()
        }
        TopologyType::Sharded => of(ServerType::Mongos),
        TopologyType::LoadBalanced => of(ServerType::LoadBalancer),
        TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary => {
            let Some(rp) = criteria.read_preference() else {
                return if td.topology_type == TopologyType::ReplicaSetWithPrimary {
                    of(ServerType::RSPrimary)
                } else {
                    vec![]
                };
            };
            let eligible = |candidates: Vec<&'a Arc<ServerDescription>>| {
                let fresh: Vec<_> = candidates
                    .into_iter()
                    .filter(|sd| match rp.max_staleness() {
                        None => true,
                        Some(max) => estimate_staleness(td, sd).is_some_and(|s| s <= max),
                    })
                    .collect();
                if rp.tag_sets().is_empty() {
                    return fresh;
                }
                match rp.tag_sets().iter().find(|ts| fresh.iter().any(|sd| ts.matches(&sd.tags))) {
                    Some(ts) => fresh.into_iter().filter(|sd| ts.matches(&sd.tags)).collect(),
                    None => vec![],
                }
            };
            let primaries = of(ServerType::RSPrimary);
            let secondaries = of(ServerType::RSSecondary);
            match rp.mode() {
                ReadPreferenceMode::Primary => primaries,
                ReadPreferenceMode::PrimaryPreferred if !primaries.is_empty() => primaries,
                ReadPreferenceMode::PrimaryPreferred | ReadPreferenceMode::Secondary => eligible(secondaries),
                ReadPreferenceMode::SecondaryPreferred => {
                    let e = eligible(secondaries);
                    if e.is_empty() {
                        primaries
                    } else {
                        e
                    }
                }
                ReadPreferenceMode::Nearest => eligible(
                    td.servers
                        .iter()
                        .filter(|sd| present(sd))
                        .filter(|sd| {
                            matches!(sd.server_type, ServerType::RSPrimary | ServerType::RSSecondary)
                        })
                        .collect(),
                ),
            }
        }
    }
}

/// The reference suitable set (deprioritized fallback and selector included) and window.
fn reference(
    td: &TopologyDescription,
    criteria: &SelectionCriteria,
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    if td.compatibility_error.is_some() {
        return None;
    }
    if let Some(rp) = criteria.read_preference() {
        rp.validate_for(td.topology_type, td.heartbeat_frequency).ok()?;
    }
    let mut suitable = reference_rules(td, criteria, &|sd| !criteria.is_deprioritized(&sd.address));
    if suitable.is_empty() {
        suitable = reference_rules(td, criteria, &|_| true);
    }
    if criteria.selector().is_some() {
        suitable.retain(|sd| sd.address.host().ends_with(['0', '2', '4', '6', '8']));
    }
    let fastest = suitable.iter().filter_map(|sd| sd.round_trip_time).min();
    let window = suitable
        .iter()
        .filter(|sd| match (sd.round_trip_time, fastest) {
            (Some(rtt), Some(fastest)) => rtt <= fastest + td.local_threshold,
            _ => true,
        })
        .map(|sd| sd.address.to_string())
        .collect();
    Some((suitable.iter().map(|sd| sd.address.to_string()).collect(), window))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn selection_matches_the_spec_rules(case in case()) {
        let t0 = tests::t0();
        let (td, criteria) = build(&case, t0);
        let suitable = suitable_servers(&td, &criteria);
        let window = in_latency_window(&td, &criteria);
        match reference(&td, &criteria) {
            None => {
                prop_assert!(suitable.is_err() && window.is_err());
            }
            Some((ref_suitable, ref_window)) => {
                let suitable = suitable.unwrap();
                let window = window.unwrap();
                prop_assert_eq!(names(&suitable), ref_suitable);
                prop_assert_eq!(names(&window), ref_window);
            }
        }
    }

    #[test]
    fn selected_servers_satisfy_the_read_preference_and_the_window(case in case()) {
        let t0 = tests::t0();
        let (td, criteria) = build(&case, t0);
        let Ok(window) = in_latency_window(&td, &criteria) else { return Ok(()) };
        let suitable = suitable_servers(&td, &criteria).unwrap();
        // A non-empty suitable list always leaves its fastest server in the window.
        prop_assert_eq!(suitable.is_empty(), window.is_empty());
        let fastest = suitable.iter().filter_map(|sd| sd.round_trip_time).min();
        for sd in &window {
            prop_assert!(suitable.iter().any(|s| s.address == sd.address));
            if let (Some(rtt), Some(fastest)) = (sd.round_trip_time, fastest) {
                prop_assert!(rtt <= fastest + td.local_threshold);
            }
            if !td.topology_type.is_replica_set() {
                continue;
            }
            // Replica sets: the type fits the operation and mode ...
            let ty = sd.server_type;
            match criteria.read_preference().map(ReadPreference::mode) {
                None | Some(ReadPreferenceMode::Primary) => prop_assert_eq!(ty, ServerType::RSPrimary),
                Some(ReadPreferenceMode::Secondary) => prop_assert_eq!(ty, ServerType::RSSecondary),
                Some(_) => prop_assert!(matches!(ty, ServerType::RSPrimary | ServerType::RSSecondary)),
            }
            // ... a secondary is fresh enough and matches a tag set.
            if let (Some(rp), ServerType::RSSecondary) = (criteria.read_preference(), ty) {
                if let Some(max) = rp.max_staleness() {
                    prop_assert!(estimate_staleness(&td, sd).is_some_and(|s| s <= max));
                }
                if !rp.tag_sets().is_empty() {
                    prop_assert!(rp.tag_sets().iter().any(|ts| ts.matches(&sd.tags)));
                }
            }
        }
    }

    #[test]
    fn one_is_selected_whenever_the_window_is_not_empty(case in case()) {
        let t0 = tests::t0();
        let (td, criteria) = build(&case, t0);
        let mut rng = Rng::new(case.seed);
        let counts = |a: &ServerAddress| a.host().len() as u32 * 3 % 7;
        let window = in_latency_window(&td, &criteria);
        let chosen = select_server(&td, &criteria, &counts, &mut rng);
        let mut selection = Selection::new(criteria.clone(), SelectionOptions::default(), t0);
        let poll = selection.poll(&td, &counts, &mut rng, t0);
        match window {
            Err(e) => {
                prop_assert_eq!(chosen, Err(e));
                prop_assert!(matches!(poll, SelectionPoll::Failed(_)), "{:?}", poll);
            }
            Ok(window) => {
                let chosen = chosen.unwrap();
                prop_assert_eq!(chosen.is_some(), !window.is_empty());
                if let Some(c) = chosen {
                    prop_assert!(window.iter().any(|w| w.address == c.address));
                }
                match poll {
                    SelectionPoll::Selected(s) => prop_assert!(window.iter().any(|w| &w.address == s.address())),
                    SelectionPoll::Wait { until, request_immediate_check } => {
                        prop_assert!(window.is_empty());
                        prop_assert_eq!(until, selection.deadline());
                        prop_assert!(request_immediate_check);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        // Draining events never panics and starts with "started".
        let first = selection.poll_event().map(|e| e.message());
        prop_assert_eq!(first, Some("Server selection started"));
    }

    #[test]
    fn every_server_is_explained(case in case()) {
        let t0 = tests::t0();
        let (td, criteria) = build(&case, t0);
        let window = in_latency_window(&td, &criteria).map(|w| names(&w));
        let explanation = explain(&td, &criteria, None);
        prop_assert_eq!(explanation.servers.len(), td.servers.len());
        for s in &explanation.servers {
            let in_window = window.as_ref().is_ok_and(|w| w.contains(&s.address.to_string()));
            prop_assert_eq!(s.verdict == Verdict::InWindow, in_window, "{}", s);
            if let Verdict::Rejected(Rejection::WrongType { rule, .. }) = &s.verdict {
                prop_assert_ne!(*rule, "not a candidate", "a rejection without a recorded reason: {}", s);
            }
            let _ = s.to_string();
        }
        let _ = explanation.to_string();
    }
}

const RACKS: [&str; 2] = ["r1", "r2"];

/// One generated replica set member for the tag set fast path: type, RTT (ms), dc, rack.
type MemberSpec = (usize, Option<u64>, Option<usize>, Option<usize>);

/// Tag sets: each pair is `dc` (when `true`) or `rack`, with a value index.
type TagSetsSpec = Vec<Vec<(bool, usize)>>;

/// A replica set read with tag sets of one or two pairs over servers tagged with `dc` and
/// `rack`, without staleness bound, selector or deprioritized servers: the reads the tag set
/// fast path answers. Up to 45 servers, so more candidates than it keeps ranks for.
fn tagged_case() -> impl Strategy<Value = (bool, Vec<MemberSpec>, u64, usize, TagSetsSpec)> {
    (
        any::<bool>(),
        proptest::collection::vec(
            (
                prop_oneof![1 => Just(3usize), 4 => Just(4usize), 1 => 0usize..9],
                proptest::option::weighted(0.9, 0u64..60),
                proptest::option::weighted(0.8, 0usize..3),
                proptest::option::weighted(0.6, 0usize..2),
            ),
            0..45,
        ),
        0u64..40,
        1usize..5,
        proptest::collection::vec(proptest::collection::vec((any::<bool>(), 0usize..3), 0..3), 0..4),
    )
}

fn build_tagged(
    with_primary: bool,
    members: &[MemberSpec],
    threshold_ms: u64,
    mode: usize,
    tag_sets: &[Vec<(bool, usize)>],
) -> (TopologyDescription, SelectionCriteria) {
    let topology_type =
        if with_primary { TopologyType::ReplicaSetWithPrimary } else { TopologyType::ReplicaSetNoPrimary };
    let mut td = TopologyDescription::new(topology_type);
    td.local_threshold = Duration::from_millis(threshold_ms);
    for (i, &(ty, rtt, dc, rack)) in members.iter().enumerate() {
        let mut sd = ServerDescription::unknown(host(i));
        sd.server_type = SERVER_TYPES[ty];
        sd.max_wire_version = crate::compatibility::MAX_WIRE_VERSION;
        sd.round_trip_time = rtt.map(Duration::from_millis);
        let mut tags = Vec::new();
        if let Some(d) = dc {
            tags.push(("dc".to_owned(), DCS[d].to_owned()));
        }
        if let Some(r) = rack {
            tags.push(("rack".to_owned(), RACKS[r].to_owned()));
        }
        sd.tags = Tags::new(tags);
        td.insert_server(sd);
    }
    let sets = tag_sets
        .iter()
        .map(|set| {
            TagSet(
                set.iter()
                    .map(|&(is_dc, v)| {
                        if is_dc {
                            ("dc".to_owned(), DCS[v].to_owned())
                        } else {
                            ("rack".to_owned(), RACKS[v % 2].to_owned())
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let rp = ReadPreference::new(MODES[mode]).with_tag_sets(sets).unwrap_or_else(|e| panic!("{e}"));
    (td, SelectionCriteria::read(rp))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The tag set fast path of `in_latency_window` gives the same servers, in the same
    /// (address) order, as the spec's rules and as the general pipeline `explain` runs.
    #[test]
    fn tag_set_fast_path_matches_the_spec_rules(
        (with_primary, members, threshold_ms, mode, tag_sets) in tagged_case()
    ) {
        let (td, criteria) = build_tagged(with_primary, &members, threshold_ms, mode, &tag_sets);
        let window = in_latency_window(&td, &criteria).unwrap();
        let (_, ref_window) = reference(&td, &criteria).unwrap();
        prop_assert_eq!(names(&window), ref_window);
        let addresses: Vec<&ServerAddress> = window.iter().map(|sd| &sd.address).collect();
        let explanation = explain(&td, &criteria, None);
        let mut explained: Vec<&ServerAddress> = explanation
            .servers
            .iter()
            .filter(|s| s.verdict == Verdict::InWindow)
            .map(|s| &s.address)
            .collect();
        explained.sort();
        let mut sorted = addresses.clone();
        sorted.sort();
        prop_assert_eq!(&addresses, &sorted);
        prop_assert_eq!(addresses, explained);
    }
}
