//! Deadlines against hostile servers, and a prompt close with connects in flight.
//!
//! Every check keeps one overall deadline, however the bytes arrive: a server that drips its
//! TLS handshake or its reply a byte at a time, or that stalls, fails the check within
//! connectTimeoutMS (asserted with a 10 % margin: a deadline check, not a performance
//! claim), with a message that says it timed out. `close()` returns within 100 ms while
//! connects hang on a listener whose accept queue is full, and a waiting selection is released
//! at once. Each connection holds one file descriptor, and none is left after close.

use std::path::Path;
use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{Event, ServerAddress, TopologyConfig};

use super::{start, EventStream, Harness};
use crate::hostile::{Behaviour, FullBacklog, HostileServer};

/// connectTimeoutMS of the deadline scenarios (and of the SOCKS5 ones), in milliseconds.
const CONNECT_TIMEOUT_MS: u64 = 1000;

/// connectTimeoutMS of the deadline scenarios.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(CONNECT_TIMEOUT_MS);

/// The margin the deadline is asserted with: 10 %.
const MARGIN_MS: u64 = CONNECT_TIMEOUT_MS / 10;

/// The deadline plus the margin.
pub(crate) const LIMIT: Duration = Duration::from_millis(CONNECT_TIMEOUT_MS + MARGIN_MS);

/// One byte every 200 ms: each byte arrives well within any per-read timeout.
const DRIP: Duration = Duration::from_millis(200);

fn deadline_config(seed: ServerAddress, connect_timeout: Option<Duration>) -> TopologyConfig {
    let mut config = TopologyConfig::with_seeds([seed]);
    config.connect_timeout = connect_timeout;
    config.heartbeat_frequency = Duration::from_millis(500);
    config.server_selection_timeout = Duration::from_secs(5);
    config
}

/// Starts a client against `server` and returns the first failed check's message and how long
/// the check took (the heartbeat event's duration: from the hello command to its failure).
fn first_failure<H: Harness>(server: &HostileServer, tls_ca_file: Option<&Path>) -> (String, Duration) {
    let started = Instant::now();
    let client: H = start(deadline_config(server.address(), Some(CONNECT_TIMEOUT)), tls_ca_file);
    let mut events = client.subscribe();
    let failure = loop {
        let left = Duration::from_secs(10).checked_sub(started.elapsed());
        match left.and_then(|left| events.next_event(left)) {
            Some(Event::ServerHeartbeatFailed { failure, duration, .. }) => break (failure, duration),
            Some(_) => {}
            None => panic!("no failed check within 10 s"),
        }
    };
    let elapsed = started.elapsed();
    client.close();
    let (failure, duration) = failure;
    // The check is the client's first: nothing before it took the time the event does not show.
    assert!(elapsed < duration + Duration::from_secs(2), "the first check began {elapsed:?} after the start");
    (failure, duration)
}

fn assert_timed_out_in_time(what: &str, failure: &str, elapsed: Duration) {
    assert!(
        elapsed <= LIMIT,
        "{what}: the check failed after {elapsed:?}, beyond connectTimeoutMS {CONNECT_TIMEOUT:?} + 10 %: {failure}"
    );
    assert!(
        says_it_timed_out(failure),
        "{what}: the failure should say it timed out after its 1000 ms: {failure}"
    );
}

/// Whether `failure` says the exchange ran out of its 1000 ms: the adapter's own words
/// ("... timed out after N ms") when its I/O gave up first, or the core's ("no reply from
/// ... within 1000 ms") when the core failed the exchange at its deadline; never an OS error.
/// The adapter says how long the step was given from when it began the step, a moment after
/// the core set the deadline; on a loaded machine that moment can be a few milliseconds, so N
/// may be a little under 1000 (never over it, and not by more than the margin).
pub(crate) fn says_it_timed_out(failure: &str) -> bool {
    let given = failure
        .split("timed out after ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse::<u64>().ok());
    let adapter = given.is_some_and(|ms| (CONNECT_TIMEOUT_MS - MARGIN_MS..=CONNECT_TIMEOUT_MS).contains(&ms));
    let core =
        failure.contains("no reply from") && failure.contains(&format!("within {CONNECT_TIMEOUT_MS} ms"));
    (adapter || core) && !failure.contains("os error")
}

/// A plaintext server that drips its hello reply fails the check within connectTimeoutMS.
pub fn dripped_reply_fails_within_connect_timeout<H: Harness>() {
    let server = HostileServer::start(Behaviour::DripReply(DRIP)).expect("the server starts");
    let (failure, elapsed) = first_failure::<H>(&server, None);
    assert_timed_out_in_time("dripped reply", &failure, elapsed);
}

/// A plaintext server that never answers fails the check within connectTimeoutMS.
pub fn stalled_reply_fails_within_connect_timeout<H: Harness>() {
    let server = HostileServer::start(Behaviour::Stall).expect("the server starts");
    let (failure, elapsed) = first_failure::<H>(&server, None);
    assert_timed_out_in_time("stalled reply", &failure, elapsed);
}

/// Writes `pem` to a temporary file (for `tlsCAFile`).
#[cfg(feature = "tls")]
fn ca_file(server: &HostileServer) -> std::path::PathBuf {
    let pem = server.ca_pem().expect("a TLS server");
    let name = format!("sdam-hostile-ca-{}-{}.pem", std::process::id(), server.address().port().unwrap_or(0));
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, pem).expect("the CA file is written");
    path
}

#[cfg(feature = "tls")]
fn tls_case<H: Harness>(what: &str, behaviour: Behaviour) {
    let server = HostileServer::start_tls(behaviour).expect("the server starts");
    let ca = ca_file(&server);
    let (failure, elapsed) = first_failure::<H>(&server, Some(&ca));
    let _ = std::fs::remove_file(ca);
    assert_timed_out_in_time(what, &failure, elapsed);
}

/// A TLS server that sends its handshake one byte every 200 ms fails the check within
/// connectTimeoutMS (one deadline for connect + TLS handshake + hello).
#[cfg(feature = "tls")]
pub fn tls_dripped_handshake_fails_within_connect_timeout<H: Harness>() {
    tls_case::<H>("dripped TLS handshake", Behaviour::DripHandshake(DRIP));
}

/// A TLS server that completes the handshake and then drips its reply (one TLS record per
/// byte) fails the check within connectTimeoutMS.
#[cfg(feature = "tls")]
pub fn tls_dripped_reply_fails_within_connect_timeout<H: Harness>() {
    tls_case::<H>("dripped reply over TLS", Behaviour::DripReply(DRIP));
}

/// A TLS server that never sends its handshake fails the check within connectTimeoutMS.
#[cfg(feature = "tls")]
pub fn tls_stalled_handshake_fails_within_connect_timeout<H: Harness>() {
    tls_case::<H>("stalled TLS handshake", Behaviour::Stall);
}

/// `close()` returns within 100 ms while connects hang (a listener with a full accept
/// queue), with connectTimeoutMS=10000 and with connectTimeoutMS=0 (no limit), and a
/// selection waiting meanwhile fails at once with "closed".
pub fn close_is_prompt_with_connects_in_flight<H: Harness + Sync>() {
    let backlog = FullBacklog::start().expect("the listener starts");
    // connectTimeoutMS=10000, and connectTimeoutMS=0: no limit.
    for connect_timeout in [Some(Duration::from_secs(10)), None] {
        let mut config = deadline_config(backlog.address(), connect_timeout);
        config.server_selection_timeout = Duration::from_secs(30);
        let client: H = start(config, None);
        std::thread::scope(|scope| {
            let selecting = scope.spawn(|| {
                let result = client.select(SelectionCriteria::write());
                (result, Instant::now())
            });
            // Let the connect start and the selection begin to wait.
            std::thread::sleep(Duration::from_millis(300));
            let closing = Instant::now();
            client.close();
            let close_took = closing.elapsed();
            let (result, returned) = selecting.join().expect("the selecting thread");
            let released_after = returned.saturating_duration_since(closing);
            assert!(
                close_took < Duration::from_millis(100),
                "close() took {close_took:?} with a connect in flight (connectTimeoutMS {connect_timeout:?})"
            );
            assert!(
                released_after < Duration::from_millis(100),
                "the waiting selection returned {released_after:?} after close() began"
            );
            let error = result.expect_err("no server was ever reachable");
            assert!(error.contains("closed"), "the selection should fail because of the close: {error}");
        });
    }
}

/// Five polling members (one monitoring connection each, no RTT connection): the client holds
/// exactly one file descriptor per connection (counted in `/proc`, Linux only), and none after
/// `close()`.
pub fn one_file_descriptor_per_connection<H: Harness>() {
    use crate::{MemberSpec, ReplicaSet, Role};
    let mut builder = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary).streaming(false));
    for _ in 0..4 {
        builder = builder.member(MemberSpec::new(Role::Secondary).streaming(false));
    }
    let set = builder.start().expect("the replica set starts");
    let ports: Vec<u16> = set.addresses().iter().filter_map(ServerAddress::port).collect();
    let client: H = start(super::config(&set, set.addresses()), None);
    super::wait_for(&client, "all five members", Duration::from_secs(10), |d| {
        d.servers.iter().filter(|s| s.server_type != sdam::ServerType::Unknown).count() == 5
    });
    let Some((sockets, descriptors)) = crate::hostile::client_socket_descriptors(&ports) else {
        client.close();
        return; // not Linux: there is no /proc to count with
    };
    assert_eq!(sockets, 5, "one monitoring connection per member");
    assert_eq!(
        descriptors, sockets,
        "one file descriptor per connection ({descriptors} for {sockets} sockets)"
    );
    client.close();
    let after = crate::hostile::client_socket_descriptors(&ports).map(|(_, fds)| fds);
    assert_eq!(after, Some(0), "no descriptor left after close");
}

#[cfg(test)]
mod tests {
    use super::says_it_timed_out;

    #[test]
    fn a_timeout_is_recognised_in_the_adapters_words_and_the_cores() {
        assert!(says_it_timed_out("the SOCKS5 handshake for 127.0.0.1:1 timed out after 1000 ms"));
        // Observed in CI: the adapter began the step over a millisecond after the core set the
        // deadline.
        assert!(says_it_timed_out("the SOCKS5 handshake for 127.0.0.1:34037 timed out after 999 ms"));
        assert!(says_it_timed_out("no reply from 127.0.0.1:1 within 1000 ms"));
        assert!(!says_it_timed_out("reading from 127.0.0.1:1 timed out after 1001 ms"));
        assert!(!says_it_timed_out("reading from 127.0.0.1:1 timed out after 899 ms"));
        assert!(!says_it_timed_out("reading from 127.0.0.1:1 timed out after 1000 ms (os error 110)"));
        assert!(!says_it_timed_out("connection refused"));
    }
}
