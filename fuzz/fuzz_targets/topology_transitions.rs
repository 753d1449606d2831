//! Bytes as a plan (a configuration, then hello replies, failures, application errors, SRV
//! answers, time passing, selections, close) run against a topology the way an I/O layer
//! would, with every invariant of `sdam::testing::invariants` checked after every step.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use sdam::testing::bytes::Codec;
use sdam::testing::harness::Harness;
use sdam::testing::plan::Plan;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let plan = Plan::from_bytes(data);
    if let Err(violation) = Harness::run(&plan, origin()) {
        panic!("{violation}\n{plan:#?}");
    }
});
