//! The one error type of this crate.

use std::fmt;

/// Everything that can be wrong with a message on the wire, or with a reply's place in a
/// conversation.
///
/// Offsets are byte offsets from the start of the message (the first byte of its header).
/// After any of these errors on a receiving connection, the stream can no longer be trusted
/// to be in sync: close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The header's `messageLength` is negative.
    NegativeLength {
        /// The declared length.
        length: i32,
    },
    /// The header's `messageLength` is smaller than the smallest possible message.
    LengthTooSmall {
        /// The declared length.
        length: usize,
        /// The smallest length a message of this shape can have.
        minimum: usize,
    },
    /// The header's `messageLength` (or, when encoding, the size of the message being
    /// built) is larger than allowed.
    LengthTooLarge {
        /// The declared (or computed) length.
        length: usize,
        /// The largest allowed length.
        maximum: usize,
    },
    /// The bytes given to a decoder are not exactly one message: the header declares one
    /// length and the buffer has another.
    LengthMismatch {
        /// The length the header declares.
        declared: usize,
        /// The number of bytes given.
        actual: usize,
    },
    /// The message is an `OP_COMPRESSED` message, which monitoring connections never
    /// negotiate.
    CompressedNotSupported,
    /// The message has an opcode other than `OP_MSG`.
    UnsupportedOpCode {
        /// The opcode found in the header.
        op_code: i32,
    },
    /// `flagBits` has required bits (0-15) set that this crate does not know.
    UnknownRequiredFlags {
        /// The unknown required bits (already masked: known bits are cleared).
        bits: u32,
    },
    /// The message's CRC-32C checksum does not match its contents.
    ChecksumMismatch {
        /// The checksum carried by the message.
        carried: u32,
        /// The checksum computed over the message.
        computed: u32,
    },
    /// A section starts with a payload type other than 0 or 1.
    UnknownSectionKind {
        /// The payload type byte.
        kind: u8,
        /// Offset of the payload type byte.
        offset: usize,
    },
    /// A section's declared size runs past the end of the sections.
    SectionOverrun {
        /// Offset of the section's payload type byte.
        offset: usize,
        /// The size the section declares (or needs to declare its size).
        size: usize,
        /// The bytes left before the end of the sections (or the checksum).
        remaining: usize,
    },
    /// A document sequence (payload type 1) declares a size too small to hold its size
    /// field and a terminated identifier.
    SequenceSizeTooSmall {
        /// Offset of the section's payload type byte.
        offset: usize,
        /// The declared size (may be negative).
        size: i32,
    },
    /// A document sequence's identifier has no terminating NUL inside its section.
    UnterminatedIdentifier {
        /// Offset of the identifier's first byte.
        offset: usize,
    },
    /// A document sequence's identifier is not valid UTF-8.
    IdentifierNotUtf8 {
        /// Offset of the identifier's first byte.
        offset: usize,
    },
    /// An identifier given to the encoder contains a NUL byte.
    IdentifierContainsNul {
        /// The identifier.
        identifier: String,
    },
    /// Two document sequences in one message share an identifier.
    DuplicateIdentifier {
        /// The repeated identifier.
        identifier: String,
    },
    /// The message has no payload type 0 section (no body document).
    MissingBody,
    /// The message has more than one payload type 0 section.
    DuplicateBody {
        /// Offset of the second payload type 0 section.
        offset: usize,
    },
    /// A document's declared length runs past the end of the section that holds it.
    DocumentOverrun {
        /// Offset of the document's first byte.
        offset: usize,
        /// The length the document declares (or, when fewer than four bytes remain, the
        /// four bytes needed to read it).
        length: usize,
        /// The bytes left in the section.
        remaining: usize,
    },
    /// A document is not well-framed BSON (length below 5, negative, or not terminated by
    /// a NUL byte).
    InvalidDocument {
        /// Offset of the document's first byte.
        offset: usize,
        /// What the BSON parser reported.
        reason: String,
    },
    /// A reply's `responseTo` is not the `requestID` the conversation expects.
    UnexpectedResponseTo {
        /// The `responseTo` the conversation expects.
        expected: i32,
        /// The `responseTo` the reply carries.
        actual: i32,
    },
    /// A reply has `moreToCome` set although its request did not set `exhaustAllowed`.
    UnexpectedMoreToCome {
        /// The reply's `responseTo`.
        response_to: i32,
    },
    /// A reply arrived after the conversation's final reply (one without `moreToCome`).
    ConversationFinished {
        /// The reply's `responseTo`.
        response_to: i32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NegativeLength { length } => write!(f, "message length {length} is negative"),
            Self::LengthTooSmall { length, minimum } => {
                write!(f, "message length {length} is below the minimum of {minimum} bytes")
            }
            Self::LengthTooLarge { length, maximum } => {
                write!(f, "message length {length} exceeds the maximum of {maximum} bytes")
            }
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "message header declares {declared} bytes but {actual} bytes were given; \
                 decode exactly one framed message"
            ),
            Self::CompressedNotSupported => {
                f.write_str("compressed messages (OP_COMPRESSED) are not supported on monitoring connections")
            }
            Self::UnsupportedOpCode { op_code } => {
                write!(f, "opcode {op_code} is not supported; only OP_MSG (2013) is spoken")
            }
            Self::UnknownRequiredFlags { bits } => {
                write!(f, "unknown required flag bits {bits:#06x} are set in flagBits")
            }
            Self::ChecksumMismatch { carried, computed } => write!(
                f,
                "message checksum {carried:#010x} does not match the computed CRC-32C {computed:#010x}"
            ),
            Self::UnknownSectionKind { kind, offset } => {
                write!(f, "unknown section payload type {kind} at offset {offset}")
            }
            Self::SectionOverrun { offset, size, remaining } => write!(
                f,
                "section at offset {offset} needs {size} bytes but only {remaining} bytes remain"
            ),
            Self::SequenceSizeTooSmall { offset, size } => write!(
                f,
                "document sequence at offset {offset} declares size {size}, below the minimum of 5 bytes"
            ),
            Self::UnterminatedIdentifier { offset } => write!(
                f,
                "document sequence identifier at offset {offset} has no NUL terminator inside its section"
            ),
            Self::IdentifierNotUtf8 { offset } => {
                write!(f, "document sequence identifier at offset {offset} is not valid UTF-8")
            }
            Self::IdentifierContainsNul { identifier } => {
                write!(f, "document sequence identifier {identifier:?} contains a NUL byte")
            }
            Self::DuplicateIdentifier { identifier } => {
                write!(f, "document sequence identifier {identifier:?} appears more than once")
            }
            Self::MissingBody => f.write_str("message has no body section (payload type 0)"),
            Self::DuplicateBody { offset } => {
                write!(f, "second body section (payload type 0) at offset {offset}; exactly one is allowed")
            }
            Self::DocumentOverrun { offset, length, remaining } => write!(
                f,
                "document at offset {offset} needs {length} bytes but only {remaining} bytes remain in its section"
            ),
            Self::InvalidDocument { offset, reason } => {
                write!(f, "invalid BSON document at offset {offset}: {reason}")
            }
            Self::UnexpectedResponseTo { expected, actual } => {
                write!(f, "reply has responseTo {actual}, expected {expected}")
            }
            Self::UnexpectedMoreToCome { response_to } => write!(
                f,
                "reply to request {response_to} has moreToCome set but the request did not allow exhaust"
            ),
            Self::ConversationFinished { response_to } => write!(
                f,
                "reply with responseTo {response_to} arrived after the final reply of the conversation"
            ),
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::WireError;

    #[test]
    fn messages_carry_the_numbers() {
        let cases = [
            (WireError::NegativeLength { length: -3 }, "message length -3 is negative"),
            (
                WireError::LengthMismatch { declared: 40, actual: 39 },
                "message header declares 40 bytes but 39 bytes were given; decode exactly one framed message",
            ),
            (
                WireError::ChecksumMismatch { carried: 0xDEAD_BEEF, computed: 0x1234 },
                "message checksum 0xdeadbeef does not match the computed CRC-32C 0x00001234",
            ),
            (
                WireError::UnsupportedOpCode { op_code: 2004 },
                "opcode 2004 is not supported; only OP_MSG (2013) is spoken",
            ),
            (
                WireError::SectionOverrun { offset: 40, size: 100, remaining: 12 },
                "section at offset 40 needs 100 bytes but only 12 bytes remain",
            ),
            (
                WireError::DocumentOverrun { offset: 21, length: 64, remaining: 30 },
                "document at offset 21 needs 64 bytes but only 30 bytes remain in its section",
            ),
            (
                WireError::SequenceSizeTooSmall { offset: 33, size: -1 },
                "document sequence at offset 33 declares size -1, below the minimum of 5 bytes",
            ),
            (
                WireError::DuplicateBody { offset: 52 },
                "second body section (payload type 0) at offset 52; exactly one is allowed",
            ),
            (
                WireError::UnexpectedMoreToCome { response_to: 9 },
                "reply to request 9 has moreToCome set but the request did not allow exhaust",
            ),
            (
                WireError::ConversationFinished { response_to: 9 },
                "reply with responseTo 9 arrived after the final reply of the conversation",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}
