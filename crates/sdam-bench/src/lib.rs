//! The benchmark workloads W1–W4 of `../shared/bench/WORKLOADS.md`, set up once here and
//! timed by two harnesses: this crate's criterion benches (`cargo bench -p sdam-bench`) and the
//! `sdam-bench` binary (`cargo run --release -p sdam-bench`), which prints one JSON object.
//!
//! Fixtures are read from the folder named by `SDAM_BENCH_DIR`, else from `shared/bench`
//! beside the workspace; they are never copied into the repository.
//!
//! Each workload has a setup (untimed) and one timed operation:
//!
//! - [`ApplyHello`] (W1, W4): from the raw reply bytes through
//!   [`Topology::handle`] with [`Input::HelloReply`] to the new shareable snapshot
//!   ([`Topology::description`]) with every output drained from [`Topology::poll_output`].
//!   Each operation starts from the same base topology (a fork made by the setup), so each
//!   one really changes the server's description (its topologyVersion counter goes from 5
//!   to 6) and publishes events, as in the other implementations' measurements.
//! - [`SelectInWindow`] (W2, W3): from taking the current snapshot to the servers in the
//!   latency window ([`in_latency_window`]); the final random pick is not included.

#[cfg(feature = "adapters")]
pub mod adapter_throughput;
pub mod alloc_count;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::raw::RawDocument;
use bson::{Bson, RawDocumentBuf};
use sdam::selection::{in_latency_window, SelectionCriteria};
use sdam::{
    Input, ReadPreference, ReadPreferenceMode, ServerAddress, TagSet, Topology, TopologyConfig,
    TopologyDescription, TopologyType,
};
use serde_json::Value;

/// The environment variable that names the fixture folder.
pub const DIR_ENV: &str = "SDAM_BENCH_DIR";

/// The server counts of W3 and W4.
pub const SIZES: [usize; 3] = [10, 100, 1000];

/// Why a workload could not be set up: a missing or malformed fixture, or a topology that
/// does not come out as `WORKLOADS.md` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError(String);

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkloadError {}

fn err(message: impl Into<String>) -> WorkloadError {
    WorkloadError(message.into())
}

/// The fixture folder: `$SDAM_BENCH_DIR`, else `shared/bench` beside the workspace.
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os(DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench"),
    }
}

/// The four fixture files, loaded.
#[derive(Debug, Clone)]
pub struct Fixtures {
    replica_set: Value,
    secondary_hello_d: Vec<u8>,
    sharded: Value,
    mongos_hello: Vec<u8>,
}

impl Fixtures {
    /// Loads the fixtures from [`fixture_dir`].
    pub fn load_default() -> Result<Self, WorkloadError> {
        Self::load(&fixture_dir())
    }

    /// Loads the fixtures from `dir`.
    pub fn load(dir: &Path) -> Result<Self, WorkloadError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                err(format!(
                    "cannot read benchmark fixture {}: {e} (set {DIR_ENV} to the folder holding WORKLOADS.md)",
                    path.display()
                ))
            })
        };
        let json = |name: &str| {
            let bytes = read(name)?;
            serde_json::from_slice::<Value>(&bytes).map_err(|e| err(format!("{name}: invalid JSON: {e}")))
        };
        Ok(Self {
            replica_set: json("w1_w2_replica_set.json")?,
            secondary_hello_d: read("w1_secondary_hello_d.bson")?,
            sharded: json("w3_w4_sharded.json")?,
            mongos_hello: read("w4_mongos_hello.bson")?,
        })
    }
}

/// Converts an extended-JSON hello into its BSON bytes.
fn hello_bytes(name: &str, hello: &Value) -> Result<RawDocumentBuf, WorkloadError> {
    let doc = match Bson::try_from(hello.clone()) {
        Ok(Bson::Document(doc)) => doc,
        Ok(other) => return Err(err(format!("{name}: the hello is not a document: {other:?}"))),
        Err(e) => return Err(err(format!("{name}: invalid extended JSON: {e}"))),
    };
    RawDocumentBuf::try_from(&doc).map_err(|e| err(format!("{name}: cannot encode BSON: {e}")))
}

fn address(s: &str) -> Result<ServerAddress, WorkloadError> {
    ServerAddress::parse(s).map_err(|e| err(format!("bad address {s:?}: {e}")))
}

fn raw(name: &str, bytes: &[u8]) -> Result<RawDocumentBuf, WorkloadError> {
    let doc = RawDocument::from_bytes(bytes).map_err(|e| err(format!("{name}: invalid BSON: {e}")))?;
    // Every element must parse, so the timed operation never meets a malformed document.
    for element in doc {
        element.map_err(|e| err(format!("{name}: invalid BSON element: {e}")))?;
    }
    Ok(doc.to_owned())
}

fn millis(v: &Value, what: &str) -> Result<Duration, WorkloadError> {
    v.as_u64().map(Duration::from_millis).ok_or_else(|| err(format!("{what} is not a number of ms")))
}

/// The settings every workload shares (WORKLOADS.md, "Common settings").
fn config(seeds: Vec<ServerAddress>) -> TopologyConfig {
    let mut config = TopologyConfig::with_seeds(seeds);
    // The hellos are fed by address (`Input::HelloReply`), as a driver that runs its own
    // monitors does: the core sends no hellos of its own.
    config.monitor_owner = sdam::MonitorOwner::Driver;
    config.local_threshold = Duration::from_millis(15);
    config.heartbeat_frequency = Duration::from_secs(10);
    config
}

/// Applies one hello to `topology` and drains the outputs.
fn apply(topology: &mut Topology, address: &ServerAddress, reply: &RawDocument, rtt: Duration, now: Instant) {
    topology.handle(
        Input::HelloReply {
            address: address.clone(),
            reply: reply.to_owned(),
            round_trip_time: rtt,
            awaited: false,
        },
        now,
    );
    while topology.poll_output().is_some() {}
}

/// The W1 replica set (7 members, `a` primary) and the time its hellos were applied.
fn replica_set(f: &Fixtures, now: Instant) -> Result<Topology, WorkloadError> {
    let members = f.replica_set["members"].as_array().ok_or_else(|| err("members is not an array"))?;
    let mut seeds = Vec::new();
    let mut hellos = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let a = address(m["address"].as_str().ok_or_else(|| err(format!("members[{i}].address")))?)?;
        let rtt = millis(&m["avg_rtt_ms"], "avg_rtt_ms")?;
        hellos.push((a.clone(), hello_bytes(&format!("members[{i}].hello"), &m["hello"])?, rtt));
        seeds.push(a);
    }
    let mut config = config(seeds);
    config.replica_set_name =
        Some(f.replica_set["setName"].as_str().ok_or_else(|| err("setName is not a string"))?.to_owned());
    let mut topology = Topology::new(config, now).map_err(|e| err(e.to_string()))?;
    while topology.poll_output().is_some() {}
    for (a, hello, rtt) in &hellos {
        apply(&mut topology, a, hello, *rtt, now);
    }
    let td = topology.description();
    if td.topology_type != TopologyType::ReplicaSetWithPrimary || td.servers.len() != members.len() {
        return Err(err(format!(
            "W1 topology is {} with {} servers, expected ReplicaSetWithPrimary with {}",
            td.topology_type,
            td.servers.len(),
            members.len()
        )));
    }
    Ok(topology)
}

/// The W3 sharded topology of `n` mongoses.
fn sharded(f: &Fixtures, n: usize, now: Instant) -> Result<Topology, WorkloadError> {
    let hello = hello_bytes("every_server_hello", &f.sharded["every_server_hello"])?;
    let seeds = (0..n).map(|i| address(&format!("m{i}:27017"))).collect::<Result<Vec<_>, _>>()?;
    let mut topology = Topology::new(config(seeds.clone()), now).map_err(|e| err(e.to_string()))?;
    while topology.poll_output().is_some() {}
    for (i, a) in seeds.iter().enumerate() {
        let rtt = Duration::from_millis(1 + (i as u64 * 37) % 50);
        apply(&mut topology, a, &hello, rtt, now);
    }
    let td = topology.description();
    if td.topology_type != TopologyType::Sharded || td.servers.len() != n {
        return Err(err(format!(
            "W3 topology is {} with {} servers, expected Sharded with {n}",
            td.topology_type,
            td.servers.len()
        )));
    }
    Ok(topology)
}

/// W1 and W4: apply one hello reply, from its raw bytes to the new snapshot and its events.
#[derive(Debug, Clone)]
pub struct ApplyHello {
    base: Topology,
    address: ServerAddress,
    reply: Vec<u8>,
    round_trip_time: Duration,
    now: Instant,
}

/// One [`ApplyHello`] operation's state, made before the clock starts.
#[derive(Debug)]
pub struct Fork {
    /// The topology the reply is applied to.
    pub topology: Topology,
    reply: Option<Vec<u8>>,
}

/// What one [`ApplyHello`] operation produced.
#[derive(Debug)]
pub struct Applied {
    /// The new snapshot.
    pub description: Arc<TopologyDescription>,
    /// How many outputs (events and commands) were drained.
    pub outputs: usize,
}

impl ApplyHello {
    /// W1: the secondary `d:27017` answers hello (RTT 8 ms) in the 7-member replica set.
    pub fn w1(f: &Fixtures) -> Result<Self, WorkloadError> {
        let now = bench_instant();
        let base = replica_set(f, now)?;
        let spec = &f.replica_set["W1_apply"];
        let reply = raw("w1_secondary_hello_d.bson", &f.secondary_hello_d)?;
        let workload = Self {
            base,
            address: address(spec["address"].as_str().ok_or_else(|| err("W1_apply.address"))?)?,
            reply: reply.into_bytes(),
            round_trip_time: millis(&spec["rtt_ms"], "W1_apply.rtt_ms")?,
            now: now + Duration::from_secs(1),
        };
        workload.verify(TopologyType::ReplicaSetWithPrimary)?;
        Ok(workload)
    }

    /// W4: `m0:27017` answers hello (RTT 1 ms) in the sharded topology of `n` mongoses.
    pub fn w4(f: &Fixtures, n: usize) -> Result<Self, WorkloadError> {
        let now = bench_instant();
        let base = sharded(f, n, now)?;
        let spec = &f.sharded["W4_apply"];
        let reply = raw("w4_mongos_hello.bson", &f.mongos_hello)?;
        let workload = Self {
            base,
            address: address(spec["address"].as_str().ok_or_else(|| err("W4_apply.address"))?)?,
            reply: reply.into_bytes(),
            round_trip_time: millis(&spec["rtt_ms"], "W4_apply.rtt_ms")?,
            now: now + Duration::from_secs(1),
        };
        workload.verify(TopologyType::Sharded)?;
        Ok(workload)
    }

    /// Runs the operation once on a fresh fork and checks that it changed the server and
    /// published the events a change publishes.
    fn verify(&self, expected: TopologyType) -> Result<(), WorkloadError> {
        let mut fork = self.fresh();
        let before = fork.topology.description();
        let applied = self.run(&mut fork)?;
        let td = &applied.description;
        let changed = td.server(&self.address).is_some_and(|sd| {
            before.server(&self.address).is_some_and(|old| old.topology_version != sd.topology_version)
        });
        // ServerDescriptionChanged and TopologyDescriptionChanged.
        if td.topology_type != expected || td.servers.len() != before.servers.len() || !changed {
            return Err(err(format!(
                "applying the hello of {} did not update the topology as expected ({} outputs, type {})",
                self.address, applied.outputs, td.topology_type
            )));
        }
        // Heartbeat started and succeeded, server and topology description changed.
        if applied.outputs != 4 {
            return Err(err(format!("expected 4 outputs, got {}", applied.outputs)));
        }
        Ok(())
    }

    /// What one operation runs on (setup, not timed): a fork of the base topology, and the
    /// reply's bytes in an owned buffer, as an I/O layer holds them after reading them off
    /// the socket (the core takes the reply by value and hands it on in the heartbeat event).
    pub fn fresh(&self) -> Fork {
        Fork { topology: self.base.clone(), reply: Some(self.reply.clone()) }
    }

    /// The timed operation: handle the reply's bytes (the whole parse is timed), take the new
    /// snapshot, drain (and drop) every output.
    pub fn run(&self, fork: &mut Fork) -> Result<Applied, WorkloadError> {
        let bytes = fork.reply.take().ok_or_else(|| err("a fork runs one operation"))?;
        let reply = RawDocumentBuf::from_bytes(bytes).map_err(|e| err(e.to_string()))?;
        let topology = &mut fork.topology;
        topology.handle(
            Input::HelloReply {
                address: self.address.clone(),
                reply,
                round_trip_time: self.round_trip_time,
                awaited: false,
            },
            self.now,
        );
        let description = topology.description();
        let mut outputs = 0;
        while let Some(output) = topology.poll_output() {
            outputs += 1;
            drop(output);
        }
        Ok(Applied { description, outputs })
    }
}

/// W2 and W3: the servers in the latency window for a read.
#[derive(Debug, Clone)]
pub struct SelectInWindow {
    topology: Topology,
    criteria: SelectionCriteria,
}

impl SelectInWindow {
    /// W2: secondaryPreferred with tag sets `[{dc: sf}, {dc: ny}]` in the W1 replica set;
    /// the window is `[b, c]`.
    pub fn w2(f: &Fixtures) -> Result<Self, WorkloadError> {
        let topology = replica_set(f, bench_instant())?;
        let rp = &f.replica_set["W2_read_preference"];
        let mode = rp["mode"].as_str().and_then(ReadPreferenceMode::parse).ok_or_else(|| err("W2 mode"))?;
        let mut tag_sets = Vec::new();
        for set in rp["tag_sets"].as_array().ok_or_else(|| err("W2 tag_sets"))? {
            let set = set.as_object().ok_or_else(|| err("W2 tag set is not an object"))?;
            let pairs = set
                .iter()
                .map(|(k, v)| {
                    v.as_str().map(|v| (k.clone(), v.to_owned())).ok_or_else(|| err("W2 tag value"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            tag_sets.push(TagSet(pairs));
        }
        let rp = ReadPreference::new(mode).with_tag_sets(tag_sets).map_err(|e| err(e.to_string()))?;
        let workload = Self { topology, criteria: SelectionCriteria::read(rp) };
        let expected = f.replica_set["W2_expected_in_window"]
            .as_array()
            .ok_or_else(|| err("W2_expected_in_window"))?
            .iter()
            .map(|a| address(a.as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        workload.verify(&expected)?;
        Ok(workload)
    }

    /// W3: a read with mode nearest among `n` mongoses.
    pub fn w3(f: &Fixtures, n: usize) -> Result<Self, WorkloadError> {
        let topology = sharded(f, n, bench_instant())?;
        let mode = f.sharded["W3_read_preference"]["mode"]
            .as_str()
            .and_then(ReadPreferenceMode::parse)
            .ok_or_else(|| err("W3 mode"))?;
        let workload = Self { topology, criteria: SelectionCriteria::read(ReadPreference::new(mode)) };
        let expected = f.sharded["W3_expected_in_window_count"][n.to_string()]
            .as_u64()
            .ok_or_else(|| err(format!("no expected window size for N = {n}")))?;
        let got = workload.run();
        if got as u64 != expected {
            return Err(err(format!("W3 N={n}: {got} servers in the window, expected {expected}")));
        }
        Ok(workload)
    }

    fn verify(&self, expected: &[ServerAddress]) -> Result<(), WorkloadError> {
        let td = self.topology.description();
        let window = in_latency_window(&td, &self.criteria).map_err(|e| err(e.to_string()))?;
        let got: Vec<&ServerAddress> = window.iter().map(|sd| &sd.address).collect();
        if got != expected.iter().collect::<Vec<_>>() {
            return Err(err(format!("W2 window is {got:?}, expected {expected:?}")));
        }
        Ok(())
    }

    /// The timed operation: take the current snapshot, compute the latency window, return
    /// its size.
    pub fn run(&self) -> usize {
        let td = self.topology.description();
        in_latency_window(&td, &self.criteria).map_or(0, |window| window.len())
    }
}

/// The clock of the workloads, which need an `Instant` to start their virtual time from (the
/// benchmarks are outside the pure core, which never reads the clock).
pub mod clock {
    use std::time::Instant;

    /// The current time.
    #[allow(clippy::disallowed_methods)] // reading the clock is this function's purpose
    pub fn now() -> Instant {
        Instant::now()
    }
}

/// The instant the workloads' virtual clock starts from.
fn bench_instant() -> Instant {
    clock::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every workload sets up from the fixtures and checks its own expected outcome (W1/W4
    /// change the server and publish 5 outputs, W2's window is `[b, c]`, W3's sizes are
    /// 3/32/320).
    #[test]
    fn every_workload_sets_up_and_verifies() {
        let f = Fixtures::load_default().unwrap_or_else(|e| panic!("{e}"));
        ApplyHello::w1(&f).unwrap();
        SelectInWindow::w2(&f).unwrap();
        for n in SIZES {
            assert!(SelectInWindow::w3(&f, n).unwrap().run() > 0);
            let w4 = ApplyHello::w4(&f, n).unwrap();
            let applied = w4.run(&mut w4.fresh()).unwrap();
            assert_eq!(applied.description.servers.len(), n);
        }
    }
}
