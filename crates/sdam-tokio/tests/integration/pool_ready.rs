//! `ClientEvent::PoolReady` over loopback: published when the first check of a server
//! succeeds, before the description change that makes it selectable, and again after a clear
//! once the server is back.

use std::time::Duration;

use sdam::{Event, ServerType};
use sdam_testserver::scenarios::config;
use sdam_testserver::{MemberSpec, ReplicaSet, Role};
use sdam_tokio::{Client, ClientEvent, Subscription};

/// The events until `done` matches one, within `limit`.
async fn until(
    events: &mut Subscription,
    limit: Duration,
    done: impl Fn(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
    panic!("not seen within {limit:?}: {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_ready_is_published_before_the_server_becomes_selectable_and_after_each_clear() {
    // A slow first reply: the subscription exists before the first check ends.
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).latency(Duration::from_millis(300)))
        .start()
        .expect("starts");
    let p = set.address(0).unwrap();
    let client = Client::new(config(&set, vec![p.clone()])).unwrap();
    let mut events = client.subscribe();
    let first = until(&mut events, Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::Sdam(Event::ServerDescriptionChanged { new, .. }) if new.server_type == ServerType::RSPrimary)
    })
    .await;
    let ready = first
        .iter()
        .position(|e| matches!(e, ClientEvent::PoolReady { address, generation: 0 } if *address == p));
    assert!(ready.is_some_and(|i| i < first.len() - 1), "ready before the server is usable: {first:#?}");

    set.set_latency(0, Duration::ZERO).unwrap();
    set.crash(0).unwrap();
    let cleared =
        until(&mut events, Duration::from_secs(10), |e| matches!(e, ClientEvent::PoolCleared { .. })).await;
    let Some(ClientEvent::PoolCleared { generation, .. }) = cleared.last().cloned() else { unreachable!() };
    set.restart(0).unwrap();
    let back =
        until(&mut events, Duration::from_secs(10), |e| matches!(e, ClientEvent::PoolReady { .. })).await;
    assert!(
        matches!(back.last(), Some(ClientEvent::PoolReady { address, generation: g }) if *address == p && *g >= generation),
        "{back:#?}"
    );
    client.close().await;
}
