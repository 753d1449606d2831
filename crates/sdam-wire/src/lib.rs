//! # sdam-wire
//!
//! The `OP_MSG` wire format of MongoDB, as pure functions over byte slices: framing a
//! received byte stream into messages, parsing a message into borrowed documents, and
//! emitting messages into a buffer. No I/O, no clock, no threads, no global state: the
//! caller owns the socket and the buffer.
//!
//! Only `OP_MSG` (opcode 2013) is spoken. Every server this project supports (wire version
//! 6 and later, MongoDB 3.6+) speaks it, and the handshake spec requires it for `hello`.
//! Legacy opcodes such as `OP_REPLY` are refused with [`WireError::UnsupportedOpCode`], and
//! `OP_COMPRESSED` with [`WireError::CompressedNotSupported`], since monitoring connections
//! never negotiate compression.
//!
//! ## Pieces
//! - [`MonitorConnection`]: a whole monitoring connection without the socket: it numbers the
//!   requests, encodes them, buffers what is read, and hands back each checked reply owned
//!   ([`Reply`]), including exhaust streams, under a size limit. What the adapters use.
//! - [`frame`]: does the buffer start with a whole message? [`Framing::Complete`] with its
//!   length, or [`Framing::Partial`] with how many more bytes to read at least. Refuses a
//!   hostile length as soon as its 4 bytes arrive, before anything is buffered for it.
//! - [`OpMsg::parse`]: one framed message into an [`OpMsg`] whose body and document
//!   sequences borrow from the buffer; [`OpMsg::emit`] the other way.
//! - [`ReplyMatcher`]: checks `responseTo` across a reply, or an exhaust stream of them.
//! - [`crc32c`]: the checksum used when `checksumPresent` is set.
//!
//! ## Panics
//! Nothing in this crate panics, whatever bytes it is given: every read is bounds-checked,
//! every length is validated before it is used, and every failure is a [`WireError`]. The
//! parser is fuzzed (see `fuzz/` in the repository) and property-tested.
//!
//! ## Example
//! Reading replies from a connection whose bytes arrive in pieces:
//!
//! ```
//! use sdam_wire::{frame, Framing, OpMsg, ReplyMatcher, ReplyProgress, DEFAULT_MAX_MESSAGE_SIZE};
//!
//! // What a server might send in answer to request 7: one reply, in two TCP segments.
//! let reply_body = bson::rawdoc! { "isWritablePrimary": true, "maxWireVersion": 21, "ok": 1.0 };
//! let mut reply = OpMsg::new(1001, &reply_body);
//! reply.response_to = 7;
//! let wire = reply.to_vec()?;
//! let (first, second) = wire.split_at(10);
//!
//! let mut matcher = ReplyMatcher::new(7, false);
//! let mut buf: Vec<u8> = Vec::new();
//! let mut segments = [first, second].into_iter();
//! loop {
//!     match frame(&buf, DEFAULT_MAX_MESSAGE_SIZE)? {
//!         Framing::Partial { needed } => {
//!             // A real connection would read at least `needed` bytes from its socket here.
//!             assert!(needed > 0);
//!             buf.extend_from_slice(segments.next().expect("the server sent more"));
//!         }
//!         Framing::Complete(len) => {
//!             let msg = OpMsg::parse(&buf[..len])?;
//!             assert_eq!(matcher.accept(&msg)?, ReplyProgress::Final);
//!             assert_eq!(msg.body.get_i32("maxWireVersion")?, 21);
//!             buf.drain(..len);
//!             break;
//!         }
//!     }
//! }
//! assert!(buf.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))] // feature badges on docs.rs (nightly); stable never sets `docsrs`

mod connection;
mod crc32c;
mod error;
mod header;
mod op_msg;
mod reply;

pub use crate::connection::{ConnectionError, MonitorConnection, Reply};
pub use crate::crc32c::crc32c;
pub use crate::error::WireError;
pub use crate::header::{
    frame, Framing, MessageHeader, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN, MIN_MESSAGE_LEN, OP_COMPRESSED,
    OP_MSG,
};
pub use crate::op_msg::{DocumentSequence, OpMsg, OpMsgFlags};
pub use crate::reply::{ReplyMatcher, ReplyProgress};

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

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
