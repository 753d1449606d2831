//! Tests of the tokio adapter itself, over loopback against `sdam-testserver` members.

use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, ApplicationErrorKind, Event, ServerAddress, ServerType, TopologyConfig};
use sdam_testserver::scenarios::config;
use sdam_testserver::{Cluster, MemberSpec, ReplicaSet, Role, Standalone};
use sdam_tokio::{Client, ClientEvent, ClientOptions, Error, SelectError, Subscription};
use tokio::time::Instant;

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

/// The next event matching `want` within `limit`.
async fn next_matching(
    events: &mut Subscription,
    limit: Duration,
    want: impl Fn(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = Instant::now() + limit;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if want(&event) {
            return Some(event);
        }
    }
    None
}

fn replica_set(members: usize) -> Cluster {
    let mut builder = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary));
    for _ in 1..members {
        builder = builder.member(MemberSpec::new(Role::Secondary));
    }
    builder.start().expect("the replica set starts")
}

fn all_known(client: &Client, cluster: &Cluster) -> bool {
    client.nodes().len() == cluster.len()
}

/// A loopback port nobody listens on.
fn dead_address() -> ServerAddress {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    ServerAddress::tcp("127.0.0.1", port).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_task_socket_subscription_and_selection() {
    let set = replica_set(3);
    let client = Client::new(config(&set, vec![set.address(0).unwrap()])).expect("client");
    wait_for(&client, "every member", Duration::from_secs(10), |_| all_known(&client, &set)).await;
    assert!(client.driver_stats().open_connections >= 3);
    let mut events = client.subscribe();

    // A selection that cannot succeed is waiting when the client closes.
    let waiting = {
        let client = client.clone();
        let tags = sdam::ReadPreference::new(sdam::ReadPreferenceMode::Secondary)
            .with_tag_sets(vec![sdam::TagSet(vec![("dc".to_owned(), "nowhere".to_owned())])])
            .expect("valid read preference");
        tokio::spawn(async move { client.select_server(SelectionCriteria::read(tags)).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Two closes at once both return once everything is gone.
    let other = client.clone();
    tokio::join!(client.close(), other.close());
    assert_eq!(waiting.await.expect("the selection task"), Err(SelectError::Closed));

    let stats = client.driver_stats();
    assert_eq!((stats.live_tasks, stats.open_connections), (0, 0), "{stats:?}");
    let mut last = None;
    while let Some(event) = events.recv().await {
        // Ends (None) once the client closed; the last SDAM event (its log message follows).
        if matches!(event, ClientEvent::Sdam(_)) {
            last = Some(event);
        }
    }
    assert!(matches!(last, Some(ClientEvent::Sdam(Event::TopologyClosed { .. }))), "{last:?}");
    let start = Instant::now();
    while set.total_open_connections() != 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "the servers still see open connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.select_server(SelectionCriteria::write()).await.unwrap_err(), SelectError::Closed);
}

/// SDAM logging, "Log Messages", and server-selection.md, "Logging": a subscription made
/// with the client sees "Starting topology monitoring" first, every SDAM event but
/// ServerDescriptionChanged and every selection log event followed by its log message, and
/// "Stopped topology monitoring" last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_follow_their_events() {
    let server = Standalone::builder().start().unwrap();
    let (client, mut events) =
        Client::with_subscription(config(&server, server.addresses()), ClientOptions::default()).unwrap();
    client.select_server(SelectionCriteria::write()).await.unwrap();
    client.close().await;
    let mut all = Vec::new();
    while let Some(event) = events.recv().await {
        all.push(event);
    }
    // The first SDAM event (a selection may publish before the driver task drained the
    // topology's first outputs).
    let Some(ClientEvent::Sdam(Event::TopologyOpening { topology_id })) =
        all.iter().find(|e| matches!(e, ClientEvent::Sdam(_))).cloned()
    else {
        panic!("the first SDAM event is TopologyOpening: {all:?}");
    };
    let options = sdam::logging::LogOptions::default();
    let mut expected = Vec::new();
    for event in &all {
        match event {
            ClientEvent::Sdam(e) => {
                expected.extend(sdam::logging::topology_message(topology_id, e, &options));
            }
            ClientEvent::Selection(e) => expected.push(sdam::logging::selection_message(e, &options)),
            _ => {}
        }
    }
    let logs: Vec<sdam::logging::LogMessage> = all
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Log(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(logs, expected);
    let topology_logs: Vec<&str> = logs
        .iter()
        .filter(|m| m.component == sdam::logging::LogComponent::Topology)
        .map(|m| m.message)
        .collect();
    assert_eq!(topology_logs.first(), Some(&"Starting topology monitoring"));
    assert_eq!(logs.last().map(|m| m.message), Some("Stopped topology monitoring"));
    assert!(logs.iter().any(|m| m.message == "Server selection succeeded"));
}

/// server-selection.md, "Logging": a selection that must wait is logged by the core (the
/// driver task drains its selection log events), and each of those events is followed by
/// its log message just as on the lock-free path: "Server selection started", "Waiting for
/// suitable server to become available", "Server selection failed" (the failing cases of
/// server-selection/tests/logging/*.json).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_selection_log_events_have_their_log_messages() {
    let unreachable = TopologyConfig::with_seeds([ServerAddress::parse("127.0.0.1:1").unwrap()]);
    let (client, mut events) = Client::with_subscription(unreachable, ClientOptions::default()).unwrap();
    let options = sdam::selection::SelectionOptions::new("insert")
        .with_operation_id(7)
        .with_timeout(Duration::from_millis(200));
    let error = client.select_server_with(SelectionCriteria::write(), options).await.unwrap_err();
    assert!(!matches!(error, SelectError::Closed), "{error:?}");
    client.close().await;
    let mut all = Vec::new();
    while let Some(event) = events.recv().await {
        all.push(event);
    }
    let options = sdam::logging::LogOptions::default();
    let mut selection_logs = Vec::new();
    for (i, event) in all.iter().enumerate() {
        let ClientEvent::Selection(e) = event else { continue };
        let message = sdam::logging::selection_message(e, &options);
        assert_eq!(all.get(i + 1), Some(&ClientEvent::Log(message.clone())), "after {event:?}");
        selection_logs.push(message.message);
    }
    assert_eq!(
        selection_logs,
        [
            "Server selection started",
            "Waiting for suitable server to become available",
            "Server selection failed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_in_the_background() {
    let set = replica_set(2);
    let client = Client::new(config(&set, set.addresses())).expect("client");
    wait_for(&client, "every member", Duration::from_secs(10), |_| all_known(&client, &set)).await;
    drop(client);
    let start = Instant::now();
    while set.total_open_connections() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "monitoring went on after the last handle was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An idle client sleeps: with the default 10 s heartbeat, streaming members push nothing for
/// seconds, and the driver must not wake in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_sleeps() {
    let set = replica_set(3);
    let mut config = config(&set, set.addresses());
    config.heartbeat_frequency = Duration::from_secs(10);
    let client = Client::new(config).expect("client");
    wait_for(&client, "every member", Duration::from_secs(10), |_| all_known(&client, &set)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the streams settle
    let before = client.driver_stats().wakeups;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let wakeups = client.driver_stats().wakeups - before;
    println!("idle 3-member set, 10 s heartbeat: {wakeups} driver wakeups in 2 s");
    assert!(wakeups <= 3, "{wakeups} wakeups while idle");
    client.close().await;
}

/// With a 500 ms heartbeat the driver wakes for each streamed reply and RTT sample, and no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_follow_the_heartbeat() {
    let set = replica_set(3);
    let client = Client::new(config(&set, set.addresses())).expect("client");
    wait_for(&client, "every member", Duration::from_secs(10), |_| all_known(&client, &set)).await;
    let before = client.driver_stats();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = client.driver_stats();
    let wakeups = after.wakeups - before.wakeups;
    println!(
        "3-member set, 500 ms heartbeat: {wakeups} driver wakeups and {} hellos sent in 3 s",
        after.hellos_sent - before.hellos_sent
    );
    // Per member and second at most: two streamed replies (one wakeup each) and two RTT
    // samples (two wakeups each: the reply, then the timer for the next one), plus slack for
    // the first checks. A driver that spun would wake thousands of times.
    assert!(wakeups <= 3 * 3 * 6 + 10, "{wakeups} wakeups in 3 s");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_times_out_with_the_reason() {
    let down = dead_address();
    let mut config = TopologyConfig::with_seeds([down.clone()]);
    config.server_selection_timeout = Duration::from_millis(700);
    let client = Client::new(config).expect("a client starts whatever the servers' state");
    let mut events = client.subscribe();
    let start = Instant::now();
    let error = client.select_server(SelectionCriteria::write()).await.unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(700));
    let SelectError::Selection(error) = error else { panic!("{error:?}") };
    let text = error.to_string();
    assert!(text.contains("timed out") && text.contains(&down.to_string()), "{text}");
    assert!(
        text.contains("connecting to") && text.contains("refused"),
        "the check error is explained: {text}"
    );
    let logged =
        next_matching(&mut events, Duration::from_secs(1), |e| matches!(e, ClientEvent::Selection(_))).await;
    assert!(logged.is_some(), "selection log events are published");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_errors_clear_the_pool_and_checks_can_be_requested() {
    let set = Standalone::builder().start().expect("standalone");
    let mut config = config(&set, set.addresses());
    config.heartbeat_frequency = Duration::from_secs(10);
    config.server_monitoring_mode = sdam::ServerMonitoringMode::Poll;
    let client = Client::new(config).expect("client");
    let address = set.address(0).unwrap();
    wait_for(&client, "the standalone", Duration::from_secs(5), |_| client.nodes().len() == 1).await;
    let mut events = client.subscribe();

    // request_check: a check long before the 10 s heartbeat.
    client.request_check();
    let started = next_matching(&mut events, Duration::from_secs(2), |e| {
        matches!(e, ClientEvent::Sdam(Event::ServerHeartbeatStarted { .. }))
    })
    .await;
    assert!(started.is_some(), "request_check starts a check");

    // A network error marks the server Unknown and clears its pool; selection then waits
    // for the check that rediscovers it.
    client.report_error(ApplicationError::new(address.clone(), 0, ApplicationErrorKind::Network));
    let cleared =
        next_matching(&mut events, Duration::from_secs(1), |e| matches!(e, ClientEvent::PoolCleared { .. }))
            .await;
    assert!(
        matches!(cleared, Some(ClientEvent::PoolCleared { address: ref a, generation: 1, .. }) if *a == address),
        "{cleared:?}"
    );
    let guard = client.select_server(SelectionCriteria::write()).await.expect("rediscovered");
    assert_eq!(guard.address(), &address);
    assert_eq!(guard.description().server_type, ServerType::Standalone);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_over_the_size_limit_fail_the_check() {
    let set = Standalone::builder().start().expect("standalone");
    let options = ClientOptions { max_message_size: 64, ..ClientOptions::default() };
    let client = Client::with_options(config(&set, set.addresses()), options).expect("client");
    let address = set.address(0).unwrap();
    wait_for(&client, "a failed check", Duration::from_secs(5), |d| {
        d.server(&address).is_some_and(|s| s.error.is_some())
    })
    .await;
    let error = client.description().server(&address).and_then(|s| s.error.clone()).unwrap();
    assert!(error.contains("malformed reply") && error.contains("64"), "{error}");
    client.close().await;
    assert_eq!(set.total_open_connections(), 0);
}

#[test]
fn creation_errors_are_explained() {
    let seed = ServerAddress::parse("localhost").unwrap();
    assert!(matches!(Client::new(TopologyConfig::with_seeds([seed])), Err(Error::NoRuntime)));
    let runtime = crate::harness::runtime();
    let _inside = runtime.enter();
    let e = Client::from_uri("mongodb://a,b/?directConnection=true").unwrap_err();
    assert!(matches!(e, Error::ConnectionString(_)), "{e}");
    let e = Client::new(TopologyConfig::default()).unwrap_err();
    assert_eq!(e.to_string(), "invalid topology configuration: the seed list is empty");
    #[cfg(not(feature = "tls"))]
    assert!(matches!(Client::from_uri("mongodb://a/?tls=true"), Err(Error::Unsupported(_))));
    #[cfg(feature = "tls")]
    {
        let e = Client::from_uri("mongodb://a/?tls=true&tlsCAFile=/nonexistent/ca.pem").unwrap_err();
        assert!(matches!(e, Error::Tls(_)) && e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let client =
            Client::from_uri("mongodb://a/?tls=true&tlsAllowInvalidCertificates=true").expect("TLS client");
        runtime.block_on(client.close());
    }
}

/// Driver wakeups per idle minute, default 10 s heartbeat, measured over `window` after
/// discovery settles.
async fn idle_wakeups_per_minute(cluster: &Cluster, window: Duration) -> (f64, f64) {
    let mut config = config(cluster, cluster.addresses());
    config.heartbeat_frequency = Duration::from_secs(10);
    config.replica_set_name = cluster.set_name();
    let client = Client::new(config).expect("client");
    wait_for(&client, "every member", Duration::from_secs(30), |_| all_known(&client, cluster)).await;
    tokio::time::sleep(Duration::from_secs(11)).await; // RTT connections open, streams settle
    let before = client.driver_stats();
    tokio::time::sleep(window).await;
    let after = client.driver_stats();
    client.close().await;
    let per_minute = |n: u64| n as f64 * 60.0 / window.as_secs_f64();
    (per_minute(after.wakeups - before.wakeups), per_minute(after.hellos_sent - before.hellos_sent))
}

/// The idle-overhead figures (a measurement, not a check: it takes a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement that takes about a minute; run with --ignored --nocapture"]
async fn idle_overhead() {
    let window = Duration::from_secs(20);
    let set = replica_set(3);
    let (wakeups, hellos) = idle_wakeups_per_minute(&set, window).await;
    println!("idle 3-member replica set: {wakeups:.0} driver wakeups and {hellos:.0} hellos per minute");
    let mut builder = sdam_testserver::Mongos::builder();
    for _ in 0..100 {
        builder = builder.member(MemberSpec::new(Role::Mongos));
    }
    let mongoses = builder.start().expect("100 mongoses");
    let (wakeups, hellos) = idle_wakeups_per_minute(&mongoses, window).await;
    println!("idle 100 mongoses: {wakeups:.0} driver wakeups and {hellos:.0} hellos per minute");
}
