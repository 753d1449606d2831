//! Interop with jongodb, a third-party MongoDB-compatible server (installed by
//! `scripts/install-jongodb.sh`): the scenario prints [`jongodb::SKIP_MESSAGE`] and passes when
//! the binary is absent. It prints its figures for the test log, hence the `print_stdout` allowance.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{ConnectionString, Event, ServerType, TopologyConfig, TopologyType};

use super::{start, wait_for, EventStream, Harness, HEARTBEAT};
use crate::jongodb::{self, Jongodb, Profile};

fn config_for(uri: &str) -> TopologyConfig {
    let cs =
        ConnectionString::parse(uri).unwrap_or_else(|e| panic!("jongodb printed an invalid URI {uri}: {e}"));
    let mut config = TopologyConfig::from_connection_string(&cs);
    config.heartbeat_frequency = HEARTBEAT;
    config.server_selection_timeout = Duration::from_secs(5);
    config.connect_timeout = Some(Duration::from_secs(2));
    config
}

fn only_type(d: &sdam::TopologyDescription) -> Option<ServerType> {
    (d.servers.len() == 1).then(|| d.servers.iter().next().map(|s| s.server_type)).flatten()
}

/// jongodb as a one-member replica set and as a standalone: discovered, RTT measured, selected;
/// its awaitable hello (answered at once, it does not stream) must not make the monitor spin;
/// killed, the server becomes Unknown; restarted on the same port, it is found again.
pub fn jongodb_interop<H: Harness>() {
    let Some(binary) = jongodb::binary() else {
        // CI installs jongodb and sets this, so the suite cannot pass there by skipping.
        assert!(
            std::env::var_os(jongodb::REQUIRE_ENV).is_none(),
            "{} is set but jongodb is not installed",
            jongodb::REQUIRE_ENV
        );
        println!("{}", jongodb::SKIP_MESSAGE);
        return;
    };
    let profile = Profile::SingleNodeReplicaSet("rs0".into());
    let server = Jongodb::start(&binary, &profile, 0).unwrap_or_else(|e| panic!("jongodb starts: {e}"));
    let port = server.port();
    let client: H = start(config_for(server.uri()), None);

    wait_for(&client, "jongodb as an RSPrimary", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::ReplicaSetWithPrimary && only_type(d) == Some(ServerType::RSPrimary)
    });
    let description = client.description();
    let primary = description.servers.iter().next().cloned().expect("one server");
    assert!(primary.round_trip_time.is_some(), "RTT measured: {primary:#?}");
    assert_eq!(client.nodes(), vec![primary.address.clone()]);
    assert_eq!(client.select(SelectionCriteria::write()), Ok(primary.address.clone()));

    // No spin: over 3 s at a 500 ms heartbeat, about six checks (it answers awaitable hellos
    // at once, so its monitor polls).
    let mut events = client.subscribe();
    let (window, begin) = (Duration::from_secs(3), Instant::now());
    let (mut started, mut awaited) = (0usize, 0usize);
    while let Some(left) = window.checked_sub(begin.elapsed()) {
        match events.next_event(left) {
            Some(Event::ServerHeartbeatStarted { awaited: a, .. }) => {
                started += 1;
                awaited += usize::from(a);
            }
            Some(_) => {}
            None => break,
        }
    }
    println!("jongodb: {started} heartbeats started ({awaited} awaitable) in 3 s at a 500 ms heartbeat");
    assert!((3..=12).contains(&started), "{started} heartbeats in 3 s: the monitor must not spin");

    // Killed: Unknown, with the error.
    server.kill();
    wait_for(&client, "jongodb Unknown after the kill", Duration::from_secs(5), |d| {
        d.servers.iter().next().is_some_and(|s| s.server_type == ServerType::Unknown && s.error.is_some())
    });
    assert!(client.nodes().is_empty());

    // Restarted on the same port: found again.
    let server = Jongodb::restart_on(&binary, &profile, port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("jongodb restarts on port {port}: {e}"));
    wait_for(&client, "jongodb RSPrimary again", Duration::from_secs(10), |d| {
        only_type(d) == Some(ServerType::RSPrimary)
    });
    client.close();
    drop(server);

    // The default profile: a standalone.
    let standalone =
        Jongodb::start(&binary, &Profile::Standalone, 0).unwrap_or_else(|e| panic!("jongodb: {e}"));
    let client: H = start(config_for(&format!("mongodb://127.0.0.1:{}/", standalone.port())), None);
    wait_for(&client, "jongodb as a Standalone", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::Single
            && d.servers
                .iter()
                .next()
                .is_some_and(|s| s.server_type == ServerType::Standalone && s.round_trip_time.is_some())
    });
    client.close();
}
