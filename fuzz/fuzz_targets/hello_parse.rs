//! Arbitrary bytes as a hello reply: BSON validation, then hello parsing, then the update
//! rules of a topology. The same bytes also build two valid BSON documents (a modelled reply,
//! and hello field names with values of any type) so the fuzzer gets past BSON validation.
//! It also builds a sequence of replies to check that the parser's reply cache changes no
//! outcome. Nothing may panic; a parse error must say what was malformed; the description keeps its
//! invariants.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sdam::testing::bytes::{Codec, Reader};
use sdam::testing::hello_fields::hello_fields;
use sdam::testing::invariants;
use sdam::testing::plan::Reply;
use sdam::testing::reply_cache;
use sdam::{Input, ServerAddress, ServerDescription, Topology, TopologyConfig};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    // The bytes as they are (most are not BSON) ...
    check(data);
    // ... and as two valid documents: a modelled reply, and hello fields of any type.
    let address = ServerAddress::parse("a:27017").unwrap();
    check(Reply::from_bytes(data).to_document(&address).as_bytes());
    check(hello_fields(&mut Reader::new(data)).as_bytes());
    // ... and as a sequence of replies that repeat and change the values the parser caches.
    let replies = reply_cache::replies(&mut Reader::new(data));
    if let Err(e) = reply_cache::check_cached_parse(&replies, origin()) {
        panic!("{e}");
    }
});

fn check(data: &[u8]) {
    let Ok(doc) = bson::RawDocument::from_bytes(data) else { return };
    let address = ServerAddress::parse("a:27017").unwrap();
    match ServerDescription::from_hello(address.clone(), doc, origin()) {
        Ok(sd) => assert!(
            sd.hosts.len() + sd.passives.len() + sd.arbiters.len() <= sdam::hello::MAX_REPORTED_MEMBERS
        ),
        Err(e) => assert!(e.to_string().starts_with("malformed hello reply"), "{e}"),
    }
    // Parsed twice with the reply cache (the second time from it): the same outcome.
    if let Err(e) = reply_cache::check_cached_docs([doc, doc], origin()) {
        panic!("{e}");
    }
    // The same reply through a replica set topology: every update rule may run.
    let mut config = TopologyConfig::with_seeds([address.clone()]);
    config.replica_set_name = Some("rs".into());
    let mut topology = Topology::new(config, origin()).unwrap();
    topology.handle(
        Input::HelloReply { address, reply: doc.to_owned(), round_trip_time: Duration::from_millis(1), awaited: false },
        origin(),
    );
    while topology.poll_output().is_some() {}
    let td = topology.description();
    if let Err(violation) = invariants::check_description(&td, topology.config()) {
        panic!("{violation}");
    }
}
