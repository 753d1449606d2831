//! The end-to-end scenarios every adapter runs over real loopback TCP against scripted
//! servers.
//!
//! An adapter implements [`Harness`] (a blocking view of its client) in its integration test
//! and expands [`scenario_tests!`](crate::scenario_tests) there, one `#[test]` per scenario:
//!
//! ```text
//! struct StdHarness(sdam_std::Client);
//! impl sdam_testserver::scenarios::Harness for StdHarness { /* ... */ }
//! sdam_testserver::scenario_tests!(StdHarness);
//! ```
//!
//! Timings: heartbeats every 500 ms, serverSelectionTimeoutMS of a few seconds, every wait
//! bounded, and no assertion on timing beyond generous bounds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, Event, ServerAddress, ServerType, TopologyConfig, TopologyDescription};

use crate::Cluster;

mod discovery;
mod environment;
mod failover;
mod faults;
mod interop;
mod monitoring;
mod selection;
#[cfg(feature = "tls")]
mod tls;

pub use discovery::{close_releases_everything, discovery_from_one_seed, streaming_and_polling_members};
pub use environment::auto_monitoring_mode_polls_on_faas;
pub use failover::failover_to_new_primary;
pub use faults::malformed_replies_fail_checks;
pub use interop::jongodb_interop;
pub use monitoring::{
    a_silent_server_times_out_and_the_monitor_goes_on,
    close_publishes_an_unknown_description_before_topology_closed, connect_timeout_zero_is_no_limit,
    heartbeat_started_before_the_monitoring_socket,
};
pub use selection::{mongos_latency_window, secondary_preferred_and_tag_sets};
#[cfg(feature = "tls")]
pub use tls::{plaintext_client_against_tls_fails, tls_discovery, write_ca_file};

/// A blocking view of an adapter's client, as the scenarios use it.
pub trait Harness: Sized {
    /// The adapter's event subscription.
    type Events: EventStream;

    /// Starts a client (never blocks on the servers). `tls_ca_file`: connect with TLS,
    /// trusting the CA in that PEM file.
    fn start(config: TopologyConfig, tls_ca_file: Option<&Path>) -> Result<Self, String>;

    /// Selects a server (blocking up to serverSelectionTimeoutMS); the operation ends at once.
    /// `Err` carries the explained selection error as text.
    fn select(&self, criteria: SelectionCriteria) -> Result<ServerAddress, String>;

    /// The current topology description.
    fn description(&self) -> Arc<TopologyDescription>;

    /// The servers whose type is not Unknown.
    fn nodes(&self) -> Vec<ServerAddress>;

    /// Reports an error an application operation saw.
    fn report_error(&self, error: ApplicationError);

    /// Subscribes to the client's events from now on.
    fn subscribe(&self) -> Self::Events;

    /// Closes the client; returns once every thread/task and socket is gone.
    fn close(&self);
}

/// A blocking stream of a client's SDAM events.
pub trait EventStream {
    /// The next SDAM event (selection log events are skipped), or `None` if none arrived
    /// within `timeout` or the client is gone.
    fn next_event(&mut self, timeout: Duration) -> Option<Event>;
}

/// Expands to one `#[test]` per scenario for the harness type `$harness`. The TLS scenarios
/// are compiled when the calling crate has a `tls` feature enabled (which must enable
/// `sdam-testserver/tls`).
#[macro_export]
macro_rules! scenario_tests {
    ($harness:ty) => {
        #[test]
        fn discovery_from_one_seed() {
            $crate::scenarios::discovery_from_one_seed::<$harness>();
        }
        #[test]
        fn failover_to_new_primary() {
            $crate::scenarios::failover_to_new_primary::<$harness>();
        }
        #[test]
        fn secondary_preferred_and_tag_sets() {
            $crate::scenarios::secondary_preferred_and_tag_sets::<$harness>();
        }
        #[test]
        fn mongos_latency_window() {
            $crate::scenarios::mongos_latency_window::<$harness>();
        }
        #[test]
        fn streaming_and_polling_members() {
            $crate::scenarios::streaming_and_polling_members::<$harness>();
        }
        #[test]
        fn close_releases_everything() {
            $crate::scenarios::close_releases_everything::<$harness>();
        }
        #[test]
        fn malformed_replies_fail_checks() {
            $crate::scenarios::malformed_replies_fail_checks::<$harness>();
        }
        #[test]
        fn auto_monitoring_mode_polls_on_faas() {
            $crate::scenarios::auto_monitoring_mode_polls_on_faas::<$harness>();
        }
        #[test]
        fn connect_timeout_zero_is_no_limit() {
            $crate::scenarios::connect_timeout_zero_is_no_limit::<$harness>();
        }
        /// SDAM test README, "Prose Tests" > "Heartbeat Tests", test 1.
        #[test]
        fn heartbeat_started_before_the_monitoring_socket() {
            $crate::scenarios::heartbeat_started_before_the_monitoring_socket::<$harness>();
        }
        #[test]
        fn a_silent_server_times_out_and_the_monitor_goes_on() {
            $crate::scenarios::a_silent_server_times_out_and_the_monitor_goes_on::<$harness>();
        }
        #[test]
        fn close_publishes_an_unknown_description_before_topology_closed() {
            $crate::scenarios::close_publishes_an_unknown_description_before_topology_closed::<$harness>();
        }
        #[test]
        fn jongodb_interop() {
            $crate::scenarios::jongodb_interop::<$harness>();
        }
        #[cfg(feature = "tls")]
        #[test]
        fn tls_discovery() {
            $crate::scenarios::tls_discovery::<$harness>();
        }
        #[cfg(feature = "tls")]
        #[test]
        fn plaintext_client_against_tls_fails() {
            $crate::scenarios::plaintext_client_against_tls_fails::<$harness>();
        }
    };
}

/// Heartbeat frequency of every scenario client.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// The configuration the scenarios start from: `seeds`, the cluster's replica set name, 500 ms
/// heartbeats and a 5 s serverSelectionTimeoutMS.
pub fn config(cluster: &Cluster, seeds: Vec<ServerAddress>) -> TopologyConfig {
    let mut config = TopologyConfig::with_seeds(seeds);
    config.replica_set_name = cluster.set_name();
    config.heartbeat_frequency = HEARTBEAT;
    config.server_selection_timeout = Duration::from_secs(5);
    config.connect_timeout = Some(Duration::from_secs(2));
    config
}

/// Starts a harness or fails the scenario.
pub(crate) fn start<H: Harness>(config: TopologyConfig, tls_ca_file: Option<&Path>) -> H {
    H::start(config, tls_ca_file).unwrap_or_else(|e| panic!("the client did not start: {e}"))
}

/// Waits (up to `limit`) until `check` holds for the client's description.
pub(crate) fn wait_for<H: Harness>(
    client: &H,
    what: &str,
    limit: Duration,
    check: impl Fn(&TopologyDescription) -> bool,
) {
    let start = Instant::now();
    loop {
        let description = client.description();
        if check(&description) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; topology: {description:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` every 20 ms for up to `limit`.
pub(crate) fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The type of `address` in `description` (Unknown if absent).
pub(crate) fn server_type(description: &TopologyDescription, address: &ServerAddress) -> ServerType {
    description.server(address).map_or(ServerType::Unknown, |s| s.server_type)
}

/// Whether every `(address, type)` pair holds.
pub(crate) fn types_are(
    description: &TopologyDescription,
    expected: &[(&ServerAddress, ServerType)],
) -> bool {
    expected.iter().all(|(a, t)| server_type(description, a) == *t)
}

/// Collects events until one matches `last` (returned last) or `limit` passes.
pub(crate) fn events_until<E: EventStream>(
    events: &mut E,
    limit: Duration,
    last: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, Vec<Event>> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        let Some(event) = events.next_event(left) else { break };
        let done = last(&event);
        seen.push(event);
        if done {
            return Ok(seen);
        }
    }
    Err(seen)
}

/// The member's address, or a failed scenario.
pub(crate) fn addr(cluster: &Cluster, index: usize) -> ServerAddress {
    cluster.address(index).unwrap_or_else(|e| panic!("{e}"))
}
