//! # sdam-wire
//!
//! The `OP_MSG` wire format of MongoDB, as pure functions over byte slices. No I/O, no
//! clock, no threads, no global state.
//!
//! Only `OP_MSG` (opcode 2013) is spoken. Every server this project supports (wire version
//! 6 and later, MongoDB 3.6+) speaks it, and the handshake spec requires it for `hello`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod crc32c;
mod error;
mod header;
mod op_msg;

pub use crate::crc32c::crc32c;
pub use crate::error::WireError;
pub use crate::header::{
    frame, Framing, MessageHeader, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN, MIN_MESSAGE_LEN, OP_COMPRESSED,
    OP_MSG,
};
pub use crate::op_msg::{DocumentSequence, OpMsg, OpMsgFlags};

/// The four bytes at `at`, if `buf` has them.
fn read_4(buf: &[u8], at: usize) -> Option<[u8; 4]> {
    buf.get(at..at.checked_add(4)?)?.try_into().ok()
}

/// The little-endian `int32` at `at`, if `buf` has its four bytes.
pub(crate) fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    read_4(buf, at).map(i32::from_le_bytes)
}

/// The little-endian `uint32` at `at`, if `buf` has its four bytes.
pub(crate) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    read_4(buf, at).map(u32::from_le_bytes)
}
