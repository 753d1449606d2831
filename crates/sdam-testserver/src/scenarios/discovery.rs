//! Discovery, monitoring protocols and closing.

use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{Event, ReadPreference, ReadPreferenceMode, ServerType, TopologyType};

use super::{
    addr, config, events_until, eventually, start, types_are, wait_for, EventStream, Harness, HEARTBEAT,
};
use crate::{MemberSpec, ReplicaSet, Role};

/// A three-member replica set found from one seed (a secondary): `nodes()` is empty right
/// after construction (the client never blocks), then every member is discovered and
/// selections route writes to the primary and secondary reads to a secondary.
pub fn discovery_from_one_seed<H: Harness>() {
    // Slow first replies guarantee that nothing can be known when `nodes()` is first called.
    let slow = Duration::from_millis(300);
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).latency(slow))
        .member(MemberSpec::new(Role::Secondary).latency(slow))
        .member(MemberSpec::new(Role::Secondary).latency(slow))
        .start()
        .expect("the replica set starts");
    let (p, s1, s2) = (addr(&set, 0), addr(&set, 1), addr(&set, 2));
    let client: H = start(config(&set, vec![s1.clone()]), None);
    assert!(client.nodes().is_empty(), "nothing is known right after construction: {:?}", client.nodes());
    for i in 0..3 {
        set.set_latency(i, Duration::ZERO).expect("member exists");
    }
    wait_for(&client, "the whole replica set", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::ReplicaSetWithPrimary
            && types_are(
                d,
                &[
                    (&p, ServerType::RSPrimary),
                    (&s1, ServerType::RSSecondary),
                    (&s2, ServerType::RSSecondary),
                ],
            )
    });
    let mut nodes = client.nodes();
    nodes.sort();
    let mut expected = vec![p.clone(), s1.clone(), s2.clone()];
    expected.sort();
    assert_eq!(nodes, expected);
    assert_eq!(client.select(SelectionCriteria::write()), Ok(p.clone()));
    let secondary = client
        .select(SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Secondary)))
        .expect("a secondary is selected");
    assert!(secondary == s1 || secondary == s2, "{secondary} is not a secondary");
    client.close();
}

/// A streaming primary and a secondary that answers awaitable hellos at once are both
/// discovered, and neither is checked in a hot loop: over a 3 s window the secondary gets one
/// awaitable hello per minHeartbeatFrequencyMS (it stays on the streaming protocol,
/// server-monitoring.md "Streaming hello or legacy hello") plus one RTT hello per heartbeat —
/// at most 14 at a 500 ms heartbeat — and the streaming one at most 12.
pub fn streaming_and_polling_members<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary).streaming(false))
        .start()
        .expect("the replica set starts");
    let (p, s) = (addr(&set, 0), addr(&set, 1));
    let client: H = start(config(&set, set.addresses()), None);
    wait_for(&client, "both members", Duration::from_secs(10), |d| {
        types_are(d, &[(&p, ServerType::RSPrimary), (&s, ServerType::RSSecondary)])
    });
    // Let the monitors settle into their protocols.
    std::thread::sleep(HEARTBEAT * 2);
    let count = |i| set.hello_count(i).expect("member exists");
    let before = (count(0), count(1));
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let (streamed, polled) = (count(0) - before.0, count(1) - before.1);
    let bound = 2 * (window.as_millis() / HEARTBEAT.as_millis()) as u64;
    // One awaitable hello per 500 ms and one RTT hello per heartbeat, +1 each at the edges.
    let at_once_bound = bound + 2;
    assert!(
        polled <= at_once_bound,
        "the non-streaming member got {polled} hellos in {window:?} (at most {at_once_bound})"
    );
    assert!(polled >= 2, "the non-streaming member is still polled ({polled} hellos in {window:?})");
    assert!(streamed <= bound, "the streaming member got {streamed} hellos in {window:?} (at most {bound})");
    wait_for(&client, "both members still known", Duration::from_secs(2), |d| {
        types_are(d, &[(&p, ServerType::RSPrimary), (&s, ServerType::RSSecondary)])
    });
    client.close();
}

/// `close()` publishes `ServerClosed` for every server and `TopologyClosed` last, and
/// leaves no connection open on the servers.
pub fn close_releases_everything<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .member(MemberSpec::new(Role::Secondary).streaming(false))
        .start()
        .expect("the replica set starts");
    let client: H = start(config(&set, set.addresses()), None);
    let members = set.addresses();
    wait_for(&client, "every member", Duration::from_secs(10), |d| {
        members.iter().all(|a| d.server(a).is_some_and(|s| s.server_type != ServerType::Unknown))
    });
    eventually("monitoring connections", Duration::from_secs(5), || set.total_open_connections() >= 3);
    let mut events = client.subscribe();
    client.close();
    let seen =
        events_until(&mut events, Duration::from_secs(5), |e| matches!(e, Event::TopologyClosed { .. }))
            .unwrap_or_else(|seen| panic!("no TopologyClosed after close(); saw {seen:#?}"));
    for a in &members {
        assert!(
            seen.iter().any(|e| matches!(e, Event::ServerClosed { address, .. } if address == a)),
            "no ServerClosed for {a}: {seen:#?}"
        );
    }
    if let Some(late) = events.next_event(Duration::from_millis(300)) {
        panic!("event after TopologyClosed: {late:?}");
    }
    eventually("no open connection on any server", Duration::from_secs(2), || {
        set.total_open_connections() == 0
    });
    assert!(client.nodes().len() <= members.len());
}
