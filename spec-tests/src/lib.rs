//! Spec-test runners for the server selection, RTT, in-window and max staleness JSON tests.

pub mod in_window;
pub mod max_staleness;
pub mod rtt;
pub mod server_selection;
