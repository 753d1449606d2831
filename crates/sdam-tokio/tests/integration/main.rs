//! sdam-tokio's integration tests, one binary: the shared scenario suite of `sdam-testserver`
//! through a blocking harness, adapter-specific tests over loopback, and the jongodb interop
//! test (skipped with a message when jongodb is not installed).
#![allow(clippy::print_stdout)]

mod adapter;
mod environment;
mod harness;
mod pool_ready;

mod scenarios {
    sdam_testserver::scenario_tests!(crate::harness::TokioHarness);
}
