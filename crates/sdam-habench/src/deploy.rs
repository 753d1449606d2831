//! The scripted deployments every implementation runs against, and the one set of options
//! they all get (as a connection string, so each parses the same text).

use std::time::Duration;

use sdam::ServerAddress;
use sdam_testserver::{Cluster, ClusterError, MemberSpec, Mongos, ReplicaSet, Role};

/// The `appName` every client sends.
pub(crate) const APP_NAME: &str = "sdam-habench";

/// The options set alike in every implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// heartbeatFrequencyMS.
    pub(crate) heartbeat_ms: u64,
    /// serverSelectionTimeoutMS.
    pub(crate) selection_timeout_ms: u64,
    /// localThresholdMS (`None`: the default, 15).
    pub(crate) local_threshold_ms: Option<u64>,
    /// serverMonitoringMode=poll (else the default, auto: streaming where the server streams).
    pub(crate) poll: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { heartbeat_ms: 10_000, selection_timeout_ms: 30_000, local_threshold_ms: None, poll: false }
    }
}

/// Which client parses the connection string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// PyMongo and the official Rust driver: they run the writes, so `retryWrites=false`
    /// makes sure the application's retry is what is timed.
    Peer,
    /// This project's adapters: they run no operation themselves (the bench does, on its own
    /// connections, without retries of its own), so `retryWrites` has nothing to switch off.
    Sdam,
}

/// The connection string for `hosts` (a replica set when `set` is given).
pub(crate) fn uri(hosts: &[ServerAddress], set: Option<&str>, options: Options, flavour: Flavour) -> String {
    let hosts: Vec<String> = hosts.iter().map(ToString::to_string).collect();
    let mut query = Vec::new();
    if let Some(set) = set {
        query.push(format!("replicaSet={set}"));
    }
    query.push(format!("heartbeatFrequencyMS={}", options.heartbeat_ms));
    query.push(format!("serverSelectionTimeoutMS={}", options.selection_timeout_ms));
    if let Some(ms) = options.local_threshold_ms {
        query.push(format!("localThresholdMS={ms}"));
    }
    if options.poll {
        query.push("serverMonitoringMode=poll".to_owned());
    }
    if flavour == Flavour::Peer {
        query.push("retryWrites=false".to_owned());
    }
    query.push("directConnection=false".to_owned());
    query.push(format!("appName={APP_NAME}"));
    format!("mongodb://{}/?{}", hosts.join(","), query.join("&"))
}

/// A replica set of a primary and `n - 1` secondaries, every member streaming.
pub(crate) fn replica_set(n: usize) -> Result<Cluster, ClusterError> {
    (0..n)
        .fold(ReplicaSet::builder("rs0"), |b, i| {
            b.member(MemberSpec::new(if i == 0 { Role::Primary } else { Role::Secondary }))
        })
        .start()
}

/// Mongoses whose hellos take `latencies` (commands are answered at once: see
/// `MemberSpec::command_latency`).
pub(crate) fn mongoses(latencies: &[Duration]) -> Result<Cluster, ClusterError> {
    latencies
        .iter()
        .fold(Mongos::builder(), |b, l| {
            b.member(MemberSpec::new(Role::Mongos).latency(*l).command_latency(Duration::ZERO))
        })
        .start()
}

/// `n` mongoses without latency.
pub(crate) fn many_mongoses(n: usize) -> Result<Cluster, ClusterError> {
    (0..n).fold(Mongos::builder(), |b, _| b.member(MemberSpec::new(Role::Mongos))).start()
}

/// Commands (other than hellos) each member received so far.
pub(crate) fn command_counts(cluster: &Cluster) -> Vec<u64> {
    (0..cluster.len()).map(|i| cluster.command_count(i).unwrap_or(0)).collect()
}

/// Hellos all members received so far.
pub(crate) fn hello_total(cluster: &Cluster) -> u64 {
    (0..cluster.len()).map(|i| cluster.hello_count(i).unwrap_or(0)).sum()
}
