//! Monitoring over real TCP: the core's exchange deadlines, `connectTimeoutMS=0`, and the SDAM
//! test README's heartbeat prose test against a server that closes the connection on hello.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{Event, ServerAddress, ServerType, TopologyConfig, TopologyType};

use super::{addr, config, start, types_are, wait_for, EventStream, Harness};
use crate::{MemberSpec, ReplicaSet, Role};

/// Issue #13, failure 4: `connectTimeoutMS=0` is no limit (`connect_timeout: None`, commands
/// with no deadline), and every check succeeds: the set is discovered and stays known.
pub fn connect_timeout_zero_is_no_limit<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let (p, s) = (addr(&set, 0), addr(&set, 1));
    let cs =
        sdam::ConnectionString::parse(&format!("{}&connectTimeoutMS=0", set.uri())).expect("a valid URI");
    let mut config = TopologyConfig::from_connection_string(&cs);
    assert_eq!(config.connect_timeout, None);
    config.heartbeat_frequency = super::HEARTBEAT;
    let client: H = start(config, None);
    let both = |d: &sdam::TopologyDescription| {
        types_are(d, &[(&p, ServerType::RSPrimary), (&s, ServerType::RSSecondary)])
    };
    wait_for(&client, "both members", Duration::from_secs(10), both);
    std::thread::sleep(super::HEARTBEAT * 3);
    wait_for(&client, "both members still known", Duration::from_secs(2), both);
    client.close();
}

/// What a hand-made TCP server saw, with when.
type Log = Arc<Mutex<Vec<(Instant, &'static str)>>>;

/// A TCP server on loopback that accepts connections, notes each one and the first bytes it
/// reads, then closes it at once (`silent: false`) or holds it open without answering
/// (`silent: true`).
fn tcp_server(silent: bool) -> (ServerAddress, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let log: Log = Arc::default();
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((Instant::now(), "client connected"));
            let mut buf = [0u8; 16];
            if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((Instant::now(), "client hello received"));
            }
            if silent {
                held.push(stream); // never answered, never closed
            }
        }
    });
    let address = ServerAddress::parse(&format!("127.0.0.1:{port}")).expect("an address");
    (address, log)
}

/// SDAM test README, "Prose Tests" > "Heartbeat Tests", test 1, over real TCP: against a
/// server that closes the connection when it receives the hello, a client with
/// `serverSelectionTimeoutMS: 500` fails to connect, and its heartbeats go
/// ServerHeartbeatStarted, (client connected, client hello received), ServerHeartbeatFailed.
/// The events reach the subscriber on another thread (and are read after the selection), so
/// the test checks the Started/Failed pair and the server's view, not their interleaving; that
/// Started is published before the connection opens is the core's output order (`Started`
/// before `SendHello { open }`, executed in order by the driver loop), which the core's and
/// the simulator's tests check.
pub fn heartbeat_started_before_the_monitoring_socket<H: Harness>() {
    let (address, log) = tcp_server(false);
    let mut config = TopologyConfig::with_seeds([address.clone()]);
    config.server_selection_timeout = Duration::from_millis(500);
    config.heartbeat_frequency = super::HEARTBEAT;
    let client: H = start(config, None);
    let mut events = client.subscribe();
    assert!(client.select(SelectionCriteria::write()).is_err(), "the client fails to connect");
    // The next check, seen whole: Started, then Failed.
    let mut order = Vec::new();
    let limit = Instant::now() + Duration::from_secs(5);
    while let Some(left) = limit.checked_duration_since(Instant::now()) {
        match events.next_event(left) {
            Some(Event::ServerHeartbeatStarted { address: a, .. }) if a == address => {
                order.push((Instant::now(), "serverHeartbeatStartedEvent"));
            }
            Some(Event::ServerHeartbeatFailed { address: a, .. }) if a == address && !order.is_empty() => {
                order.push((Instant::now(), "serverHeartbeatFailedEvent"));
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    let names: Vec<&str> = order.iter().map(|(_, n)| *n).collect();
    assert_eq!(names, ["serverHeartbeatStartedEvent", "serverHeartbeatFailedEvent"]);
    let server: Vec<&str> =
        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().map(|(_, n)| *n).collect();
    assert_eq!(server[..2], ["client connected", "client hello received"], "{server:?}");
    assert_eq!(client.description().topology_type, TopologyType::Unknown);
    client.close();
}

/// Issue #13, failure 1, over real TCP: a server that accepts and reads the handshake but
/// never answers. The check fails as a timeout at connectTimeoutMS (the core's deadline, the
/// adapter's own timer being only a backstop), and the monitor goes on: the next check comes
/// a heartbeat later, on a new connection.
pub fn a_silent_server_times_out_and_the_monitor_goes_on<H: Harness>() {
    let (address, log) = tcp_server(true);
    let mut config = TopologyConfig::with_seeds([address.clone()]);
    config.heartbeat_frequency = super::HEARTBEAT;
    config.connect_timeout = Some(Duration::from_millis(300));
    let client: H = start(config, None);
    let mut events = client.subscribe();
    let begin = Instant::now();
    let mut failures = Vec::new();
    while failures.len() < 2 {
        let left = (begin + Duration::from_secs(10)).checked_duration_since(Instant::now());
        match left.and_then(|left| events.next_event(left)) {
            Some(Event::ServerHeartbeatFailed { address: a, failure, duration, .. }) if a == address => {
                failures.push((failure, duration));
            }
            Some(_) => {}
            None => panic!("fewer than two failed checks in 10 s: {failures:?}"),
        }
    }
    for (failure, duration) in &failures {
        assert!(*duration >= Duration::from_millis(250), "{failure}: after {duration:?}");
    }
    let connects = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|(_, n)| *n == "client connected")
        .count();
    assert!(connects >= 2, "each check on a new connection ({connects} connections)");
    let sd = client.description().server(&address).cloned().expect("the seed");
    assert_eq!(sd.server_type, ServerType::Unknown);
    client.close();
}

/// SDAM "Client closing" through an adapter: `ServerClosed`, then a
/// `TopologyDescriptionChanged` to an Unknown description without servers, then
/// `TopologyClosed` (the order of the unified `*-emit-topology-changed-before-close` files).
pub fn close_publishes_an_unknown_description_before_topology_closed<H: Harness>() {
    let set =
        ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().expect("the set starts");
    let p = addr(&set, 0);
    let client: H = start(config(&set, vec![p.clone()]), None);
    wait_for(&client, "the primary", Duration::from_secs(10), |d| {
        d.topology_type == TopologyType::ReplicaSetWithPrimary
    });
    let mut events = client.subscribe();
    client.close();
    let mut names = Vec::new();
    while let Some(e) = events.next_event(Duration::from_secs(5)) {
        match e {
            Event::ServerClosed { .. } => names.push("ServerClosed".to_owned()),
            Event::TopologyDescriptionChanged { previous, new, .. } => {
                assert!(new.servers.is_empty());
                names.push(format!(
                    "TopologyDescriptionChanged {:?} -> {:?}",
                    previous.topology_type, new.topology_type
                ));
            }
            Event::TopologyClosed { .. } => {
                names.push("TopologyClosed".to_owned());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        names,
        ["ServerClosed", "TopologyDescriptionChanged ReplicaSetWithPrimary -> Unknown", "TopologyClosed"],
        "the unified *-emit-topology-changed-before-close order"
    );
}
