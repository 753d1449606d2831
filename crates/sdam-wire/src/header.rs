//! The standard message header and incremental framing of a byte stream into messages.

use crate::{read_i32, WireError};

/// Opcode of `OP_MSG`, the only message format this crate speaks.
pub const OP_MSG: i32 = 2013;

/// Opcode of `OP_COMPRESSED`. Recognised only to reject it with
/// [`WireError::CompressedNotSupported`].
pub const OP_COMPRESSED: i32 = 2012;

/// Length of the standard message header: four little-endian `int32`s.
pub const HEADER_LEN: usize = 16;

/// The smallest possible `OP_MSG`, in bytes: the 16-byte header, the 4-byte `flagBits`, and
/// one body section made of its payload type byte and the 5-byte empty BSON document.
///
/// A message with `checksumPresent` set needs 4 more bytes; [`OpMsg::parse`](crate::OpMsg::parse)
/// checks that.
pub const MIN_MESSAGE_LEN: usize = HEADER_LEN + 4 + 1 + 5;

/// Default for `maxMessageSizeBytes`, the largest message a server accepts or sends, used
/// until a `hello` reply says otherwise.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 48_000_000;

/// The standard header that starts every message.
///
/// On the wire it is `messageLength`, `requestID`, `responseTo` and `opCode`, each a
/// little-endian `int32`. `messageLength` counts the whole message, header included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageHeader {
    /// Total message length in bytes, header included.
    pub message_length: i32,
    /// Identifier chosen by the sender of this message.
    pub request_id: i32,
    /// For a reply: the `requestID` of the message it answers (or, in an exhaust stream,
    /// of the previous reply). Zero on requests.
    pub response_to: i32,
    /// Message format: [`OP_MSG`] for everything this crate handles.
    pub op_code: i32,
}

impl MessageHeader {
    /// Reads the header from the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Returns `None` if `buf` is shorter than that. No field is validated: see [`frame`]
    /// and [`OpMsg::parse`](crate::OpMsg::parse) for that. Never panics.
    #[must_use]
    pub fn parse(buf: &[u8]) -> Option<Self> {
        Some(Self {
            message_length: read_i32(buf, 0)?,
            request_id: read_i32(buf, 4)?,
            response_to: read_i32(buf, 8)?,
            op_code: read_i32(buf, 12)?,
        })
    }

    /// The header as it appears on the wire.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        let fields = [self.message_length, self.request_id, self.response_to, self.op_code];
        for (chunk, field) in bytes.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        bytes
    }
}

/// What [`frame`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Framing {
    /// The buffer starts with one whole message of this many bytes. Pass `&buf[..len]` to
    /// [`OpMsg::parse`](crate::OpMsg::parse) and drop those bytes afterwards.
    Complete(usize),
    /// The buffer holds only part of a message: at least `needed` more bytes (always one
    /// or more) must arrive before it is complete.
    Partial {
        /// A lower bound of the number of bytes still missing. It is exact once the 4-byte
        /// length prefix has arrived.
        needed: usize,
    },
}

/// Finds the boundary of the first message in `buf`, the bytes received so far.
///
/// Checks, as soon as the bytes for them have arrived:
/// - the declared `messageLength` is not negative, not below [`MIN_MESSAGE_LEN`] and not
///   above `max_message_size` (usually [`DEFAULT_MAX_MESSAGE_SIZE`] or the server's
///   `maxMessageSizeBytes`);
/// - the opcode is [`OP_MSG`] (once the 16 header bytes are there).
///
/// So a hostile length is refused before anyone buffers, let alone allocates, for it.
/// Contents past the header are left to [`OpMsg::parse`](crate::OpMsg::parse). Bytes after the
/// first message are ignored: they belong to the next one.
///
/// Never panics. A returned `Complete(n)` satisfies `MIN_MESSAGE_LEN <= n <= buf.len()`
/// and `n <= max_message_size`.
///
/// # Errors
/// [`WireError::NegativeLength`], [`WireError::LengthTooSmall`],
/// [`WireError::LengthTooLarge`], [`WireError::CompressedNotSupported`] or
/// [`WireError::UnsupportedOpCode`]. The stream is then unusable: close the connection.
pub fn frame(buf: &[u8], max_message_size: usize) -> Result<Framing, WireError> {
    let Some(declared) = read_i32(buf, 0) else {
        return Ok(Framing::Partial { needed: 4usize.saturating_sub(buf.len()) });
    };
    let length = check_declared_length(declared)?;
    if length > max_message_size {
        return Err(WireError::LengthTooLarge { length, maximum: max_message_size });
    }
    if let Some(op_code) = read_i32(buf, 12) {
        check_op_code(op_code)?;
    }
    match length.checked_sub(buf.len()) {
        Some(needed) if needed > 0 => Ok(Framing::Partial { needed }),
        _ => Ok(Framing::Complete(length)),
    }
}

/// Converts a declared `messageLength` to a size, refusing negative and too-small values.
pub(crate) fn check_declared_length(declared: i32) -> Result<usize, WireError> {
    let length = usize::try_from(declared).map_err(|_| WireError::NegativeLength { length: declared })?;
    if length < MIN_MESSAGE_LEN {
        return Err(WireError::LengthTooSmall { length, minimum: MIN_MESSAGE_LEN });
    }
    Ok(length)
}

/// Accepts [`OP_MSG`] only.
pub(crate) fn check_op_code(op_code: i32) -> Result<(), WireError> {
    match op_code {
        OP_MSG => Ok(()),
        OP_COMPRESSED => Err(WireError::CompressedNotSupported),
        _ => Err(WireError::UnsupportedOpCode { op_code }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header-only prefix declaring `length` bytes with the given opcode.
    fn header(length: i32, op_code: i32) -> Vec<u8> {
        MessageHeader { message_length: length, request_id: 7, response_to: 3, op_code }.to_bytes().to_vec()
    }

    #[test]
    fn header_round_trip() {
        let h = MessageHeader { message_length: 100, request_id: -5, response_to: 1 << 30, op_code: OP_MSG };
        let bytes = h.to_bytes();
        assert_eq!(&bytes[12..16], &2013i32.to_le_bytes());
        assert_eq!(MessageHeader::parse(&bytes), Some(h));
        assert_eq!(MessageHeader::parse(&bytes[..15]), None);
    }

    #[test]
    fn partial_before_length_prefix() {
        let prefix = 26i32.to_le_bytes();
        for len in 0..4 {
            assert_eq!(
                frame(&prefix[..len], DEFAULT_MAX_MESSAGE_SIZE),
                Ok(Framing::Partial { needed: 4 - len })
            );
        }
    }

    #[test]
    fn partial_after_length_prefix() {
        let buf = header(100, OP_MSG);
        for len in 4..=16 {
            assert_eq!(frame(&buf[..len], 1000), Ok(Framing::Partial { needed: 100 - len }));
        }
    }

    #[test]
    fn complete_ignores_following_bytes() {
        let mut buf = header(30, OP_MSG);
        buf.resize(45, 0xAB);
        assert_eq!(frame(&buf[..29], 1000), Ok(Framing::Partial { needed: 1 }));
        assert_eq!(frame(&buf[..30], 1000), Ok(Framing::Complete(30)));
        assert_eq!(frame(&buf, 1000), Ok(Framing::Complete(30)));
    }

    #[test]
    fn negative_length() {
        let buf = header(-1, OP_MSG);
        assert_eq!(frame(&buf[..4], 1000), Err(WireError::NegativeLength { length: -1 }));
        let buf = header(i32::MIN, OP_MSG);
        assert_eq!(frame(&buf, 1000), Err(WireError::NegativeLength { length: i32::MIN }));
    }

    #[test]
    fn length_below_minimum() {
        for length in [0, 4, 16, 20, 25] {
            let buf = header(length, OP_MSG);
            let expected = WireError::LengthTooSmall { length: length as usize, minimum: MIN_MESSAGE_LEN };
            assert_eq!(frame(&buf, 1000), Err(expected.clone()));
            assert_eq!(frame(&buf[..4], 1000), Err(expected));
        }
        assert_eq!(MIN_MESSAGE_LEN, 26);
    }

    #[test]
    fn oversized() {
        let buf = header(60_000_000, OP_MSG);
        let err = frame(&buf[..4], DEFAULT_MAX_MESSAGE_SIZE).unwrap_err();
        assert_eq!(err, WireError::LengthTooLarge { length: 60_000_000, maximum: 48_000_000 });
        assert_eq!(err.to_string(), "message length 60000000 exceeds the maximum of 48000000 bytes");
        // Exactly the maximum is fine.
        let buf = header(48_000_000, OP_MSG);
        assert_eq!(
            frame(&buf, DEFAULT_MAX_MESSAGE_SIZE),
            Ok(Framing::Partial { needed: 48_000_000 - HEADER_LEN })
        );
        let buf = header(i32::MAX, OP_MSG);
        assert!(matches!(frame(&buf, usize::MAX), Ok(Framing::Partial { .. })));
    }

    #[test]
    fn wrong_opcode() {
        // OP_REPLY (1) and OP_QUERY (2004) are legacy formats this crate never speaks.
        for op_code in [1, 2004, 0, -1] {
            let buf = header(40, op_code);
            assert_eq!(frame(&buf, 1000), Err(WireError::UnsupportedOpCode { op_code }));
            // Not visible until the whole header is there.
            assert!(frame(&buf[..15], 1000).is_ok());
        }
        let err = frame(&header(40, OP_COMPRESSED), 1000).unwrap_err();
        assert_eq!(err, WireError::CompressedNotSupported);
        assert!(err.to_string().contains("not supported on monitoring connections"));
    }
}
