//! Server selection over real monitors: read preferences, tag sets, the latency window.

use std::collections::BTreeMap;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ReadPreference, ReadPreferenceMode, ServerAddress, ServerType, TagSet, TopologyType};

use super::{addr, config, start, types_are, wait_for, Harness};
use crate::{MemberSpec, Mongos, ReplicaSet, Role};

fn read(mode: ReadPreferenceMode, tag_sets: &[&[(&str, &str)]]) -> SelectionCriteria {
    let sets = tag_sets
        .iter()
        .map(|set| TagSet(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()))
        .collect();
    let preference = ReadPreference::new(mode).with_tag_sets(sets).expect("a valid read preference");
    SelectionCriteria::read(preference)
}

/// secondaryPreferred reads never go to the primary while a secondary is up; ordered tag
/// sets fall back from one set to the next; a tag set nothing matches fails `secondary` and
/// falls back to the primary for `secondaryPreferred`; new tags reach the client.
pub fn secondary_preferred_and_tag_sets<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).tags([("dc", "ny")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny"), ("rack", "a")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "sf")]))
        .start()
        .expect("the replica set starts");
    let (p, s1, s2) = (addr(&set, 0), addr(&set, 1), addr(&set, 2));
    let mut config = config(&set, set.addresses());
    config.server_selection_timeout = Duration::from_secs(2);
    let client: H = start(config, None);
    wait_for(&client, "every member", Duration::from_secs(10), |d| {
        types_are(
            d,
            &[(&p, ServerType::RSPrimary), (&s1, ServerType::RSSecondary), (&s2, ServerType::RSSecondary)],
        )
    });
    use ReadPreferenceMode::{Nearest, Secondary, SecondaryPreferred};
    for _ in 0..20 {
        let chosen = client.select(read(SecondaryPreferred, &[])).expect("a secondary");
        assert!(chosen == s1 || chosen == s2, "secondaryPreferred chose {chosen}");
    }
    assert_eq!(client.select(read(Secondary, &[&[("dc", "la")], &[("dc", "sf")]])), Ok(s2.clone()));
    assert_eq!(client.select(read(Secondary, &[&[("dc", "ny")]])), Ok(s1.clone()));
    assert_eq!(
        client.select(read(Secondary, &[&[("dc", "ny"), ("rack", "b")], &[("dc", "sf")]])),
        Ok(s2.clone())
    );
    for _ in 0..10 {
        let chosen = client.select(read(Nearest, &[&[("dc", "ny")]])).expect("a ny member");
        assert!(chosen == p || chosen == s1, "nearest {{dc: ny}} chose {chosen}");
    }
    let error = client.select(read(Secondary, &[&[("dc", "la")]])).expect_err("no secondary in la");
    assert!(!error.is_empty());
    assert_eq!(client.select(read(SecondaryPreferred, &[&[("dc", "la")]])), Ok(p.clone()));

    set.set_tags(2, [("dc", "la")]).expect("member exists");
    wait_for(&client, "the new tags", Duration::from_secs(5), |d| {
        d.server(&s2).is_some_and(|sd| sd.tags.get("dc") == Some("la"))
    });
    assert_eq!(client.select(read(Secondary, &[&[("dc", "la")]])), Ok(s2));
    client.close();
}

fn spread<H: Harness>(client: &H, n: usize) -> BTreeMap<ServerAddress, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let chosen = client.select(SelectionCriteria::write()).expect("a mongos");
        *counts.entry(chosen).or_insert(0) += 1;
    }
    counts
}

/// Three mongoses: with the default 15 ms latency window, selections spread over the two
/// inside it and never reach the third; with localThresholdMS=30 they reach all three.
///
/// The default-window case uses 20, 30 and 45 ms rather than the 20/35/40: 35 ms sits
/// exactly on the window's edge, where real round-trip jitter decides (the simulator checks
/// 20/35/40 exactly, in virtual time). The wide case uses 20/35/40 (10 ms inside the window).
/// Each case first waits until the measured averages reflect the scripted latencies (within
/// 5 ms), so a loaded machine delays the test rather than failing it.
pub fn mongos_latency_window<H: Harness>() {
    let cluster = [20, 30, 45]
        .iter()
        .fold(Mongos::builder(), |b, ms| {
            b.member(MemberSpec::new(Role::Mongos).latency(Duration::from_millis(*ms)))
        })
        .start()
        .expect("the mongoses start");
    let (a, b, c) = (addr(&cluster, 0), addr(&cluster, 1), addr(&cluster, 2));
    let measured = |latencies: [u64; 3]| {
        let servers = [a.clone(), b.clone(), c.clone()];
        move |d: &sdam::TopologyDescription| {
            d.topology_type == TopologyType::Sharded
                && servers.iter().zip(latencies).all(|(m, ms)| {
                    d.server(m).and_then(|s| s.round_trip_time).is_some_and(|rtt| {
                        rtt >= Duration::from_millis(ms) && rtt < Duration::from_millis(ms + 5)
                    })
                })
        }
    };
    let n = 60;

    let client: H = start(config(&cluster, cluster.addresses()), None);
    wait_for(&client, "mongoses measured at 20/30/45 ms", Duration::from_secs(20), measured([20, 30, 45]));
    let counts = spread(&client, n);
    let count = |m: &ServerAddress| counts.get(m).copied().unwrap_or(0);
    assert_eq!(count(&c), 0, "the 45 ms mongos is outside the 15 ms window: {counts:?}");
    assert!(count(&a) >= n / 6 && count(&b) >= n / 6, "uneven spread over the window: {counts:?}");
    client.close();

    cluster.set_latency(1, Duration::from_millis(35)).expect("member exists");
    cluster.set_latency(2, Duration::from_millis(40)).expect("member exists");
    let mut wide = config(&cluster, cluster.addresses());
    wide.local_threshold = Duration::from_millis(30);
    let client: H = start(wide, None);
    wait_for(&client, "mongoses measured at 20/35/40 ms", Duration::from_secs(20), measured([20, 35, 40]));
    let counts = spread(&client, n);
    for m in [&a, &b, &c] {
        let k = counts.get(m).copied().unwrap_or(0);
        assert!(k >= n / 10, "{m} was chosen {k} times of {n} with a 30 ms window: {counts:?}");
    }
    client.close();
}
