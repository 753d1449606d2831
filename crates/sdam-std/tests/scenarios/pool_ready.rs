//! `ClientEvent::PoolReady` over loopback: published when the first check of a server
//! succeeds, before the description change that makes it selectable, and again after a clear
//! once the server is back.

use std::time::{Duration, Instant};

use sdam::{Event, ServerType};
use sdam_std::{Client, ClientEvent, Subscription};
use sdam_testserver::scenarios::config;
use sdam_testserver::{MemberSpec, ReplicaSet, Role};

/// The events until `done` matches one, within `limit`.
fn until(events: &Subscription, limit: Duration, done: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Some(event) = events.recv_timeout(left) else { break };
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
    panic!("not seen within {limit:?}: {seen:#?}");
}

#[test]
fn pool_ready_is_published_before_the_server_becomes_selectable_and_after_each_clear() {
    // A slow first reply: the subscription exists before the first check ends.
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).latency(Duration::from_millis(300)))
        .start()
        .expect("starts");
    let p = set.address(0).unwrap();
    let client = Client::new(config(&set, vec![p.clone()])).unwrap();
    let events = client.subscribe();
    let first = until(
        &events,
        Duration::from_secs(10),
        |e| matches!(e, ClientEvent::Sdam(Event::ServerDescriptionChanged { new, .. }) if new.server_type == ServerType::RSPrimary),
    );
    let ready = first
        .iter()
        .position(|e| matches!(e, ClientEvent::PoolReady { address, generation: 0 } if *address == p));
    assert!(ready.is_some_and(|i| i < first.len() - 1), "ready before the server is usable: {first:#?}");

    set.set_latency(0, Duration::ZERO).unwrap();
    set.crash(0).unwrap();
    let cleared = until(&events, Duration::from_secs(10), |e| matches!(e, ClientEvent::PoolCleared { .. }));
    let ClientEvent::PoolCleared { generation, .. } = cleared.last().cloned().unwrap() else {
        unreachable!()
    };
    set.restart(0).unwrap();
    let back = until(&events, Duration::from_secs(10), |e| matches!(e, ClientEvent::PoolReady { .. }));
    assert!(
        matches!(back.last(), Some(ClientEvent::PoolReady { address, generation: g }) if *address == p && *g >= generation),
        "{back:#?}"
    );
    client.close();
}
