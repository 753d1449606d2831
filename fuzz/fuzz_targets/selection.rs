//! Bytes as a topology snapshot and a selection (operation, mode, tag sets,
//! maxStalenessSeconds, a deprioritized server): selection must be sound and live
//! (`sdam::testing::invariants::check_selection`), and the waiting loop must agree with it.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use sdam::testing::bytes::Codec;
use sdam::testing::selection_case::SelectionCase;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let case = SelectionCase::from_bytes(data);
    if let Err(violation) = case.check(origin()) {
        panic!("{violation}\n{case:#?}");
    }
});
