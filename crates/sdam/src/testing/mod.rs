//! Test support shared by the property tests and the fuzz targets (feature `testing`; not a
//! stable API):
//!
//! - [`invariants`]: what must hold after every input, as code: topology shape, the
//!   (electionId, setVersion) maximum, monitors, events, deadlines and server selection.
//! - [`plan`]: a small model of configurations and input sequences (hello replies built from
//!   server types, set names, versions, hosts...; failures, application errors, SRV answers,
//!   time, selections, close), with a total byte decoding for fuzzers and an encoding for
//!   seed corpora. proptest generates plans from bytes too, so both use one generator.
//! - [`reply_cache`]: sequences of hello replies for the parser's reply cache, and the check
//!   that it changes no outcome.
//! - [`selection_case`]: a topology snapshot and selection criteria from bytes.
//! - [`harness`]: runs a plan against a [`Topology`](crate::Topology) the way an I/O layer
//!   would, checking every invariant after every step.

pub mod bytes;
pub mod harness;
pub mod hello_fields;
pub mod invariants;
pub mod plan;
pub mod reply_cache;
pub mod selection_case;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod regressions;
