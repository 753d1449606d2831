//! Arbitrary bytes as a hello reply: BSON validation, then hello parsing, then the update
//! rules of a topology. Nothing may panic; a parse error must name a field.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sdam::{Input, ServerAddress, ServerDescription, Topology, TopologyConfig};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = bson::RawDocument::from_bytes(data) else { return };
    let address = ServerAddress::parse("a:27017").unwrap();
    match ServerDescription::from_hello(address.clone(), doc, origin()) {
        Ok(sd) => assert!(sd.hosts.len() + sd.passives.len() + sd.arbiters.len() <= sdam::hello::MAX_REPORTED_MEMBERS),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // The same reply through a replica set topology: every update rule may run.
    let mut config = TopologyConfig::with_seeds([address.clone()]);
    config.replica_set_name = Some("rs".into());
    let mut topology = Topology::new(config, origin()).unwrap();
    topology.handle(Input::HelloReply { address, reply: doc, round_trip_time: Duration::from_millis(1) }, origin());
    while topology.poll_output().is_some() {}
    let td = topology.description();
    assert!(td.servers.iter().filter(|s| s.server_type == sdam::ServerType::RSPrimary).count() <= 1);
});
