//! # sdam-wire
//!
//! The `OP_MSG` wire format of MongoDB, as pure functions over byte slices. No I/O, no
//! clock, no threads, no global state.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod crc32c;

pub use crate::crc32c::crc32c;
