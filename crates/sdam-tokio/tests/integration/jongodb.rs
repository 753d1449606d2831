//! Interop with jongodb, a third-party MongoDB-compatible server (installed by
//! `scripts/install-jongodb.sh`; skipped with a message when absent).

use std::time::Duration;

use sdam::{Event, ServerType, TopologyType};
use sdam_testserver::jongodb::{self, Jongodb, Profile};
use sdam_tokio::{Client, ClientEvent};
use tokio::time::Instant;

/// Waits up to `limit` for `check` on the client's description.
async fn wait_for(
    client: &Client,
    what: &str,
    limit: Duration,
    check: impl Fn(&sdam::TopologyDescription) -> bool,
) {
    let start = Instant::now();
    loop {
        let description = client.description();
        if check(&description) {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}: {description:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The only server's description.
fn only_server(d: &sdam::TopologyDescription) -> Option<&std::sync::Arc<sdam::ServerDescription>> {
    d.servers.iter().next()
}

/// Heartbeats started within `window` (all, and awaitable ones), from the client's events.
async fn heartbeats_started(client: &Client, window: Duration) -> (usize, usize) {
    let mut events = client.subscribe();
    let deadline = Instant::now() + window;
    let (mut started, mut awaitable) = (0, 0);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let ClientEvent::Sdam(Event::ServerHeartbeatStarted { awaited, .. }) = event {
            started += 1;
            awaitable += usize::from(awaited);
        }
    }
    (started, awaitable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jongodb_replica_set_and_standalone() {
    let Some(binary) = jongodb::binary() else {
        println!("{}", jongodb::SKIP_MESSAGE);
        return;
    };
    let profile = Profile::SingleNodeReplicaSet("rs0".into());
    let server = Jongodb::start(&binary, &profile, 0).expect("jongodb starts");
    let port = server.port();
    let uri = format!(
        "{}&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000&connectTimeoutMS=2000",
        server.uri()
    );
    let client = Client::from_uri(&uri).expect("the URI jongodb printed is valid");

    // Discovered as a one-member replica set with a primary, with a measured RTT.
    wait_for(&client, "an RSPrimary", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::ReplicaSetWithPrimary
            && only_server(d).is_some_and(|s| s.server_type == ServerType::RSPrimary)
    })
    .await;
    let primary = only_server(&client.description()).cloned().expect("one server");
    assert!(primary.round_trip_time.is_some(), "RTT measured: {primary:#?}");
    println!(
        "jongodb primary: rtt {:?}, topologyVersion {:?}, maxWireVersion {}",
        primary.round_trip_time, primary.topology_version, primary.max_wire_version
    );
    assert_eq!(client.nodes(), vec![primary.address.clone()]);
    let selected =
        client.select_server(sdam::selection::SelectionCriteria::write()).await.expect("a primary");
    assert_eq!(selected.address(), &primary.address);
    drop(selected);

    // jongodb answers awaitable hellos at once: the monitor must fall back to polling, not
    // spin. Over 3 s at a 500 ms heartbeat: about 6 checks.
    let hellos_before = client.driver_stats().hellos_sent;
    let (started, awaitable) = heartbeats_started(&client, Duration::from_secs(3)).await;
    let hellos = client.driver_stats().hellos_sent - hellos_before;
    println!(
        "jongodb: {started} heartbeats started ({awaitable} awaitable) and {hellos} hellos sent in 3 s (heartbeat 500 ms)"
    );
    assert!((3..=10).contains(&started), "{started} heartbeats in 3 s");
    assert!(hellos <= 12, "{hellos} hellos in 3 s");

    // Killed: the server becomes Unknown.
    server.kill();
    wait_for(&client, "the server to be Unknown", Duration::from_secs(5), |d| {
        only_server(d).is_some_and(|s| s.server_type == ServerType::Unknown && s.error.is_some())
    })
    .await;
    assert!(client.nodes().is_empty());

    // Restarted on the same port: rediscovered.
    let server = tokio::task::spawn_blocking(move || {
        Jongodb::restart_on(&binary, &profile, port, Duration::from_secs(10)).map(|s| (s, binary))
    })
    .await
    .expect("the launcher thread")
    .expect("jongodb restarts on its port");
    let (server, binary) = server;
    wait_for(&client, "the primary again", Duration::from_secs(10), |d| {
        only_server(d).is_some_and(|s| s.server_type == ServerType::RSPrimary)
    })
    .await;
    client.close().await;
    let stats = client.driver_stats();
    assert_eq!((stats.live_tasks, stats.open_connections), (0, 0), "{stats:?}");
    drop(server);

    // The default profile: a standalone.
    let standalone = Jongodb::start(&binary, &Profile::Standalone, 0).expect("jongodb starts");
    let client =
        Client::from_uri(&format!("mongodb://127.0.0.1:{}/?heartbeatFrequencyMS=500", standalone.port()))
            .expect("a valid URI");
    wait_for(&client, "a Standalone", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::Single
            && only_server(d)
                .is_some_and(|s| s.server_type == ServerType::Standalone && s.round_trip_time.is_some())
    })
    .await;
    println!("jongodb standalone printed {}", standalone.uri());
    client.close().await;
}
