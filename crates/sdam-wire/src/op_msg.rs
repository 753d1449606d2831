//! `OP_MSG`: flag bits, sections, parsing and emitting.

use bson::RawDocument;

use crate::header::{
    check_declared_length, check_op_code, MessageHeader, HEADER_LEN, MIN_MESSAGE_LEN, OP_MSG,
};
use crate::{crc32c, read_i32, read_u32, WireError};

/// Offset of the first section: just after the header and `flagBits`.
const SECTIONS_START: usize = HEADER_LEN + 4;

/// Length of the trailing CRC-32C checksum.
const CHECKSUM_LEN: usize = 4;

/// Smallest document sequence size: the size field itself and an empty identifier's NUL.
const MIN_SEQUENCE_SIZE: usize = 4 + 1;

/// Payload type of the body section (one document).
const KIND_BODY: u8 = 0;

/// Payload type of a document sequence section.
const KIND_SEQUENCE: u8 = 1;

/// The `flagBits` of an `OP_MSG` that this crate understands.
///
/// Bits 0-15 are *required*: a message with an unknown one set is refused. Bits 16-31 are
/// *optional*: unknown ones are ignored on receipt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OpMsgFlags {
    /// Bit 0: the message ends with a CRC-32C checksum. When emitting, setting this makes
    /// [`OpMsg::emit`] compute and append the checksum.
    pub checksum_present: bool,
    /// Bit 1: the sender will send another message without waiting. On a reply: more
    /// replies follow (exhaust); on a request: no reply is wanted.
    pub more_to_come: bool,
    /// Bit 16: the requester accepts several replies (streaming `hello`, `getMore`).
    pub exhaust_allowed: bool,
}

impl OpMsgFlags {
    /// Mask of `checksumPresent`.
    pub const CHECKSUM_PRESENT: u32 = 1 << 0;
    /// Mask of `moreToCome`.
    pub const MORE_TO_COME: u32 = 1 << 1;
    /// Mask of `exhaustAllowed`.
    pub const EXHAUST_ALLOWED: u32 = 1 << 16;
    /// Mask of the required bits (0-15).
    const REQUIRED: u32 = 0x0000_FFFF;

    /// Reads a `flagBits` value.
    ///
    /// # Errors
    /// [`WireError::UnknownRequiredFlags`] if a bit in 0-15 other than `checksumPresent` and
    /// `moreToCome` is set. Unknown bits in 16-31 are ignored, as the spec requires.
    pub fn from_bits(bits: u32) -> Result<Self, WireError> {
        let unknown = bits & Self::REQUIRED & !(Self::CHECKSUM_PRESENT | Self::MORE_TO_COME);
        if unknown != 0 {
            return Err(WireError::UnknownRequiredFlags { bits: unknown });
        }
        Ok(Self {
            checksum_present: bits & Self::CHECKSUM_PRESENT != 0,
            more_to_come: bits & Self::MORE_TO_COME != 0,
            exhaust_allowed: bits & Self::EXHAUST_ALLOWED != 0,
        })
    }

    /// The `flagBits` value for these flags.
    #[must_use]
    pub fn bits(self) -> u32 {
        let mut bits = 0;
        if self.checksum_present {
            bits |= Self::CHECKSUM_PRESENT;
        }
        if self.more_to_come {
            bits |= Self::MORE_TO_COME;
        }
        if self.exhaust_allowed {
            bits |= Self::EXHAUST_ALLOWED;
        }
        bits
    }
}

/// A payload type 1 section: a named run of documents, such as an `insert`'s `documents`.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSequence<'a> {
    /// The command argument the documents belong to. Unique within a message.
    pub identifier: &'a str,
    /// The documents, in wire order. May be empty.
    pub documents: Vec<&'a RawDocument>,
}

/// One `OP_MSG`, parsed from or to be emitted into bytes.
///
/// A parsed message borrows its documents from the input buffer and copies nothing. Its
/// documents have been checked to be well framed (length prefix, NUL terminator, fitting
/// inside their section); their elements are checked lazily by [`RawDocument`]'s accessors,
/// which return errors rather than panic.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsg<'a> {
    /// Identifier chosen by the sender.
    pub request_id: i32,
    /// For a reply: the `requestID` it answers. Zero on requests.
    pub response_to: i32,
    /// The flag bits.
    pub flags: OpMsgFlags,
    /// The payload type 0 section: the command or reply document.
    pub body: &'a RawDocument,
    /// The payload type 1 sections, in wire order. Replies to monitoring commands have none,
    /// and then this does not allocate.
    pub sequences: Vec<DocumentSequence<'a>>,
}

impl<'a> OpMsg<'a> {
    /// A message with no flags, `responseTo` 0 and no document sequences: a plain request.
    #[must_use]
    pub fn new(request_id: i32, body: &'a RawDocument) -> Self {
        Self { request_id, response_to: 0, flags: OpMsgFlags::default(), body, sequences: Vec::new() }
    }

    /// Parses exactly one message, such as `&buf[..n]` after [`frame`](crate::frame) returned
    /// `Complete(n)`.
    ///
    /// Checks the header (length, opcode), the flag bits, the checksum when present, and the
    /// sections: exactly one body, unique sequence identifiers, every document well framed
    /// and inside its section, no byte left over. Never panics, whatever the input; allocates
    /// only for document sequences.
    ///
    /// # Errors
    /// Any [`WireError`] describing the first problem found, except the reply-matching ones.
    pub fn parse(message: &'a [u8]) -> Result<Self, WireError> {
        let Some(declared) = read_i32(message, 0) else {
            return Err(WireError::LengthTooSmall { length: message.len(), minimum: MIN_MESSAGE_LEN });
        };
        let length = check_declared_length(declared)?;
        if length != message.len() {
            return Err(WireError::LengthMismatch { declared: length, actual: message.len() });
        }
        let header = MessageHeader::parse(message)
            .ok_or(WireError::LengthTooSmall { length, minimum: MIN_MESSAGE_LEN })?;
        check_op_code(header.op_code)?;
        let bits = read_u32(message, HEADER_LEN)
            .ok_or(WireError::LengthTooSmall { length, minimum: MIN_MESSAGE_LEN })?;
        let flags = OpMsgFlags::from_bits(bits)?;

        let sections_end = if flags.checksum_present {
            let minimum = MIN_MESSAGE_LEN + CHECKSUM_LEN;
            let too_small = WireError::LengthTooSmall { length, minimum };
            let end = length.checked_sub(CHECKSUM_LEN).filter(|_| length >= minimum).ok_or(too_small)?;
            verify_checksum(message, end)?;
            end
        } else {
            length
        };
        let sections = message.get(..sections_end).unwrap_or_default();
        let (body, sequences) = parse_sections(sections)?;
        Ok(Self { request_id: header.request_id, response_to: header.response_to, flags, body, sequences })
    }

    /// The number of bytes [`emit`](Self::emit) will write.
    ///
    /// # Errors
    /// As for [`emit`](Self::emit).
    pub fn encoded_len(&self) -> Result<usize, WireError> {
        check_identifiers(self.sequences.iter().map(|s| s.identifier))?;
        let mut total = SECTIONS_START.saturating_add(1).saturating_add(self.body.as_bytes().len());
        for sequence in &self.sequences {
            total = total.saturating_add(1).saturating_add(sequence_size(sequence));
        }
        if self.flags.checksum_present {
            total = total.saturating_add(CHECKSUM_LEN);
        }
        let maximum = i32::MAX as usize;
        if total > maximum {
            return Err(WireError::LengthTooLarge { length: total, maximum });
        }
        Ok(total)
    }

    /// Appends the message to `out` and returns the number of bytes written: the header,
    /// `flagBits`, the body section, the document sequences in order, and the CRC-32C
    /// checksum when [`OpMsgFlags::checksum_present`] is set.
    ///
    /// The caller enforces the server's `maxMessageSizeBytes`, using
    /// [`encoded_len`](Self::encoded_len) if it wants to check before emitting. Whatever
    /// this emits, [`OpMsg::parse`] accepts and turns back into an equal `OpMsg`.
    ///
    /// # Errors
    /// Nothing is written when it fails:
    /// - [`WireError::IdentifierContainsNul`] or [`WireError::DuplicateIdentifier`] for a bad
    ///   document sequence identifier;
    /// - [`WireError::LengthTooLarge`] if the message would exceed `i32::MAX` bytes.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<usize, WireError> {
        let length = self.encoded_len()?;
        // encoded_len() bounded every size by i32::MAX, so these conversions cannot fail.
        let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let start = out.len();
        out.reserve(length);
        let header = MessageHeader {
            message_length: to_i32(length),
            request_id: self.request_id,
            response_to: self.response_to,
            op_code: OP_MSG,
        };
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&self.flags.bits().to_le_bytes());
        out.push(KIND_BODY);
        out.extend_from_slice(self.body.as_bytes());
        for sequence in &self.sequences {
            out.push(KIND_SEQUENCE);
            out.extend_from_slice(&to_i32(sequence_size(sequence)).to_le_bytes());
            out.extend_from_slice(sequence.identifier.as_bytes());
            out.push(0);
            for document in &sequence.documents {
                out.extend_from_slice(document.as_bytes());
            }
        }
        if self.flags.checksum_present {
            let checksum = crc32c(out.get(start..).unwrap_or_default());
            out.extend_from_slice(&checksum.to_le_bytes());
        }
        Ok(length)
    }

    /// The message as a new byte vector; see [`emit`](Self::emit).
    ///
    /// # Errors
    /// As for [`emit`](Self::emit).
    pub fn to_vec(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }
}

/// Size field of a document sequence: itself, the identifier and its NUL, the documents.
fn sequence_size(sequence: &DocumentSequence<'_>) -> usize {
    let documents = sequence.documents.iter().fold(0usize, |n, d| n.saturating_add(d.as_bytes().len()));
    MIN_SEQUENCE_SIZE.saturating_add(sequence.identifier.len()).saturating_add(documents)
}

/// Checks the CRC-32C over `message[..end]` against the `u32` stored at `end`.
fn verify_checksum(message: &[u8], end: usize) -> Result<(), WireError> {
    let carried = read_u32(message, end).unwrap_or_default();
    let computed = crc32c(message.get(..end).unwrap_or_default());
    if carried != computed {
        return Err(WireError::ChecksumMismatch { carried, computed });
    }
    Ok(())
}

/// Identifiers must be NUL-free (they are C strings on the wire) and unique.
fn check_identifiers<'s>(identifiers: impl Iterator<Item = &'s str>) -> Result<(), WireError> {
    let mut seen: Vec<&str> = Vec::new();
    for identifier in identifiers {
        if identifier.contains('\0') {
            return Err(WireError::IdentifierContainsNul { identifier: identifier.to_owned() });
        }
        seen.push(identifier);
    }
    if seen.len() > 1 {
        seen.sort_unstable();
        if let Some(pair) = seen.windows(2).find(|pair| pair.first() == pair.last()) {
            let identifier = pair.first().copied().unwrap_or_default().to_owned();
            return Err(WireError::DuplicateIdentifier { identifier });
        }
    }
    Ok(())
}

/// Parses the sections in `message[SECTIONS_START..]`; `message` ends where the sections end
/// (before any checksum). Offsets in errors count from the start of the message.
fn parse_sections(message: &[u8]) -> Result<(&RawDocument, Vec<DocumentSequence<'_>>), WireError> {
    let end = message.len();
    let mut pos = SECTIONS_START;
    let mut body = None;
    let mut sequences = Vec::new();
    while let Some(&kind) = message.get(pos) {
        let section = pos;
        pos += 1;
        match kind {
            KIND_BODY => {
                if body.is_some() {
                    return Err(WireError::DuplicateBody { offset: section });
                }
                let document = parse_document(message, pos, end)?;
                pos += document.as_bytes().len();
                body = Some(document);
            }
            KIND_SEQUENCE => {
                let (sequence, section_end) = parse_sequence(message, section, end)?;
                sequences.push(sequence);
                pos = section_end;
            }
            _ => return Err(WireError::UnknownSectionKind { kind, offset: section }),
        }
    }
    let body = body.ok_or(WireError::MissingBody)?;
    // The identifiers came from C strings, so only uniqueness can fail here.
    check_identifiers(sequences.iter().map(|s| s.identifier))?;
    Ok((body, sequences))
}

/// Parses the document sequence whose payload type byte is at `section`; returns it and the
/// offset just past it.
fn parse_sequence(
    message: &[u8],
    section: usize,
    end: usize,
) -> Result<(DocumentSequence<'_>, usize), WireError> {
    let start = section + 1;
    let remaining = end.saturating_sub(start);
    let Some(declared) = read_i32(message, start) else {
        return Err(WireError::SectionOverrun { offset: section, size: 4, remaining });
    };
    let size = usize::try_from(declared)
        .ok()
        .filter(|&size| size >= MIN_SEQUENCE_SIZE)
        .ok_or(WireError::SequenceSizeTooSmall { offset: section, size: declared })?;
    if size > remaining {
        return Err(WireError::SectionOverrun { offset: section, size, remaining });
    }
    let section_end = start + size;
    let identifier_start = start + 4;
    let rest = message.get(identifier_start..section_end).unwrap_or_default();
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(WireError::UnterminatedIdentifier { offset: identifier_start })?;
    let identifier = std::str::from_utf8(rest.get(..nul).unwrap_or_default())
        .map_err(|_| WireError::IdentifierNotUtf8 { offset: identifier_start })?;
    let mut documents = Vec::new();
    let mut pos = identifier_start + nul + 1;
    while pos < section_end {
        let document = parse_document(message, pos, section_end)?;
        pos += document.as_bytes().len();
        documents.push(document);
    }
    Ok((DocumentSequence { identifier, documents }, section_end))
}

/// Parses the BSON document starting at `at`, which must end by `end`.
fn parse_document(message: &[u8], at: usize, end: usize) -> Result<&RawDocument, WireError> {
    let available = message.get(at..end).unwrap_or_default();
    let remaining = available.len();
    let Some(declared) = read_i32(available, 0) else {
        return Err(WireError::DocumentOverrun { offset: at, length: 4, remaining });
    };
    let Ok(length) = usize::try_from(declared) else {
        return Err(WireError::InvalidDocument {
            offset: at,
            reason: format!("declared length {declared} is negative"),
        });
    };
    let bytes =
        available.get(..length).ok_or(WireError::DocumentOverrun { offset: at, length, remaining })?;
    RawDocument::from_bytes(bytes).map_err(|error| WireError::InvalidDocument {
        offset: at,
        reason: error.message.clone().unwrap_or_else(|| error.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{frame, Framing, OP_COMPRESSED};
    use bson::{rawdoc, RawDocumentBuf};
    use proptest::prelude::*;

    /// A message with a correct header around `flags` and `sections` (and nothing else).
    fn raw_message(flags: u32, sections: &[u8]) -> Vec<u8> {
        let length = (SECTIONS_START + sections.len()) as i32;
        let header = MessageHeader { message_length: length, request_id: 9, response_to: 4, op_code: OP_MSG };
        let mut out = header.to_bytes().to_vec();
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(sections);
        out
    }

    /// Like [`raw_message`], with the checksum flag set and a correct checksum appended.
    fn raw_message_with_checksum(flags: u32, sections: &[u8]) -> Vec<u8> {
        let mut out = raw_message(flags | OpMsgFlags::CHECKSUM_PRESENT, sections);
        let length = (out.len() + CHECKSUM_LEN) as i32;
        out[..4].copy_from_slice(&length.to_le_bytes());
        let checksum = crc32c(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// A body section: payload type 0 and the document.
    fn body_section(doc: &RawDocument) -> Vec<u8> {
        let mut out = vec![KIND_BODY];
        out.extend_from_slice(doc.as_bytes());
        out
    }

    /// A document sequence section with a correct size field.
    fn sequence_section(identifier: &[u8], docs: &[&RawDocument]) -> Vec<u8> {
        let mut payload = identifier.to_vec();
        payload.push(0);
        for doc in docs {
            payload.extend_from_slice(doc.as_bytes());
        }
        let mut out = vec![KIND_SEQUENCE];
        out.extend_from_slice(&((payload.len() + 4) as i32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn hello() -> RawDocumentBuf {
        rawdoc! { "hello": 1, "helloOk": true, "$db": "admin" }
    }

    #[test]
    fn smallest_message_byte_for_byte() {
        let empty = rawdoc! {};
        let bytes = OpMsg::new(1, &empty).to_vec().unwrap();
        let expected: [u8; MIN_MESSAGE_LEN] = [
            26, 0, 0, 0, // messageLength
            1, 0, 0, 0, // requestID
            0, 0, 0, 0, // responseTo
            0xDD, 0x07, 0, 0, // opCode 2013
            0, 0, 0, 0, // flagBits
            0, // payload type 0
            5, 0, 0, 0, 0, // {}
        ];
        assert_eq!(bytes, expected);
        let msg = OpMsg::parse(&bytes).unwrap();
        assert_eq!(msg, OpMsg::new(1, &empty));
    }

    #[test]
    fn round_trip_body_only() {
        let body = hello();
        let mut msg = OpMsg::new(-17, &body);
        msg.response_to = 123_456;
        let bytes = msg.to_vec().unwrap();
        assert_eq!(bytes.len(), msg.encoded_len().unwrap());
        assert_eq!(frame(&bytes, DEFAULT_MAX), Ok(Framing::Complete(bytes.len())));
        let parsed = OpMsg::parse(&bytes).unwrap();
        assert_eq!(parsed, msg);
        assert!(parsed.sequences.is_empty());
        assert_eq!(parsed.body.get_str("$db").unwrap(), "admin");
    }

    const DEFAULT_MAX: usize = crate::DEFAULT_MAX_MESSAGE_SIZE;

    #[test]
    fn round_trip_every_flag_combination() {
        let body = hello();
        for bits in 0..8u32 {
            let flags = OpMsgFlags {
                checksum_present: bits & 1 != 0,
                more_to_come: bits & 2 != 0,
                exhaust_allowed: bits & 4 != 0,
            };
            let msg = OpMsg { flags, ..OpMsg::new(5, &body) };
            let bytes = msg.to_vec().unwrap();
            assert_eq!(read_u32(&bytes, HEADER_LEN), Some(flags.bits()));
            assert_eq!(OpMsg::parse(&bytes).unwrap(), msg);
        }
    }

    #[test]
    fn round_trip_with_sequences() {
        let body = rawdoc! { "insert": "coll", "$db": "db" };
        let (a, b, c) = (rawdoc! { "_id": 1 }, rawdoc! { "_id": 2, "x": "y" }, rawdoc! { "q": { "a": 1 } });
        let mut msg = OpMsg::new(77, &body);
        msg.flags.checksum_present = true;
        msg.sequences = vec![
            DocumentSequence { identifier: "documents", documents: vec![&a, &b] },
            DocumentSequence { identifier: "updates", documents: vec![&c] },
            DocumentSequence { identifier: "empty", documents: vec![] },
        ];
        let bytes = msg.to_vec().unwrap();
        assert_eq!(OpMsg::parse(&bytes).unwrap(), msg);
    }

    #[test]
    fn sequence_may_come_before_body() {
        let body = hello();
        let doc = rawdoc! { "x": 1 };
        let mut sections = sequence_section(b"documents", &[&doc, &doc]);
        sections.extend(body_section(&body));
        let bytes = raw_message(0, &sections);
        let msg = OpMsg::parse(&bytes).unwrap();
        assert_eq!(msg.body, &*body);
        assert_eq!(
            msg.sequences,
            vec![DocumentSequence { identifier: "documents", documents: vec![&doc, &doc] }]
        );
    }

    #[test]
    fn emit_appends_and_checksums_only_its_own_bytes() {
        let body = hello();
        let mut msg = OpMsg::new(3, &body);
        msg.flags.checksum_present = true;
        let alone = msg.to_vec().unwrap();
        let mut out = b"previous message".to_vec();
        let written = msg.emit(&mut out).unwrap();
        assert_eq!(written, alone.len());
        assert_eq!(&out[16..], &alone[..]);
        let checksum = read_u32(&alone, alone.len() - 4).unwrap();
        assert_eq!(checksum, crc32c(&alone[..alone.len() - 4]));
    }

    #[test]
    fn emit_refuses_bad_identifiers_and_writes_nothing() {
        let body = hello();
        let doc = rawdoc! { "x": 1 };
        let mut msg = OpMsg::new(3, &body);
        msg.sequences = vec![DocumentSequence { identifier: "a\0b", documents: vec![&doc] }];
        let mut out = vec![1, 2, 3];
        assert_eq!(
            msg.emit(&mut out),
            Err(WireError::IdentifierContainsNul { identifier: "a\0b".to_owned() })
        );
        msg.sequences = vec![
            DocumentSequence { identifier: "documents", documents: vec![&doc] },
            DocumentSequence { identifier: "updates", documents: vec![] },
            DocumentSequence { identifier: "documents", documents: vec![] },
        ];
        assert_eq!(
            msg.emit(&mut out),
            Err(WireError::DuplicateIdentifier { identifier: "documents".to_owned() })
        );
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn flags_from_bits() {
        assert_eq!(OpMsgFlags::from_bits(0), Ok(OpMsgFlags::default()));
        let all = OpMsgFlags { checksum_present: true, more_to_come: true, exhaust_allowed: true };
        assert_eq!(OpMsgFlags::from_bits(0x0001_0003), Ok(all));
        assert_eq!(all.bits(), 0x0001_0003);
        // Unknown optional bits (16-31) are ignored.
        assert_eq!(OpMsgFlags::from_bits(0xFFFE_0000), Ok(OpMsgFlags::default()));
        // Unknown required bits (2-15) are refused, reporting only the unknown ones.
        assert_eq!(OpMsgFlags::from_bits(1 << 2 | 3), Err(WireError::UnknownRequiredFlags { bits: 4 }));
        assert_eq!(OpMsgFlags::from_bits(0xFFFF_FFFF), Err(WireError::UnknownRequiredFlags { bits: 0xFFFC }));
    }

    #[test]
    fn unknown_optional_flag_bits_are_ignored_on_parse() {
        let body = hello();
        let bytes = raw_message(1 << 17 | 1 << 31 | OpMsgFlags::EXHAUST_ALLOWED, &body_section(&body));
        let msg = OpMsg::parse(&bytes).unwrap();
        assert_eq!(msg.flags, OpMsgFlags { exhaust_allowed: true, ..OpMsgFlags::default() });
    }

    #[test]
    fn bad_flag_bits() {
        let body = hello();
        for bit in [2, 3, 8, 15] {
            let bytes = raw_message(1 << bit, &body_section(&body));
            let err = OpMsg::parse(&bytes).unwrap_err();
            assert_eq!(err, WireError::UnknownRequiredFlags { bits: 1 << bit });
        }
        let err = OpMsg::parse(&raw_message(1 << 15, &body_section(&body))).unwrap_err();
        assert_eq!(err.to_string(), "unknown required flag bits 0x8000 are set in flagBits");
    }

    #[test]
    fn truncated_header() {
        let bytes = OpMsg::new(1, &hello()).to_vec().unwrap();
        for len in 0..4 {
            assert_eq!(
                OpMsg::parse(&bytes[..len]),
                Err(WireError::LengthTooSmall { length: len, minimum: MIN_MESSAGE_LEN })
            );
        }
        for len in [4, 15, 16, 25, bytes.len() - 1] {
            assert_eq!(
                OpMsg::parse(&bytes[..len]),
                Err(WireError::LengthMismatch { declared: bytes.len(), actual: len })
            );
        }
    }

    #[test]
    fn more_bytes_than_declared() {
        let mut bytes = OpMsg::new(1, &hello()).to_vec().unwrap();
        let declared = bytes.len();
        bytes.push(0);
        let err = OpMsg::parse(&bytes).unwrap_err();
        assert_eq!(err, WireError::LengthMismatch { declared, actual: declared + 1 });
    }

    #[test]
    fn negative_and_too_small_lengths() {
        let mut bytes = OpMsg::new(1, &hello()).to_vec().unwrap();
        bytes[..4].copy_from_slice(&(-26i32).to_le_bytes());
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::NegativeLength { length: -26 }));
        bytes[..4].copy_from_slice(&20i32.to_le_bytes());
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::LengthTooSmall { length: 20, minimum: 26 }));
        assert_eq!(
            OpMsg::parse(&bytes).unwrap_err().to_string(),
            "message length 20 is below the minimum of 26 bytes"
        );
    }

    #[test]
    fn wrong_opcode() {
        let mut bytes = OpMsg::new(1, &hello()).to_vec().unwrap();
        bytes[12..16].copy_from_slice(&1i32.to_le_bytes());
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::UnsupportedOpCode { op_code: 1 }));
        bytes[12..16].copy_from_slice(&OP_COMPRESSED.to_le_bytes());
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::CompressedNotSupported));
    }

    #[test]
    fn missing_body() {
        let doc = rawdoc! { "x": 1 };
        let bytes = raw_message(0, &sequence_section(b"documents", &[&doc]));
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::MissingBody));
        let bytes = raw_message_with_checksum(0, &sequence_section(b"documents", &[&doc, &doc]));
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::MissingBody));
        assert_eq!(WireError::MissingBody.to_string(), "message has no body section (payload type 0)");
        // No section at all: shorter than any message can be.
        let bytes = raw_message(0, &[]);
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::LengthTooSmall { length: 20, minimum: 26 }));
    }

    #[test]
    fn two_bodies() {
        let body = hello();
        let mut sections = body_section(&body);
        let second = sections.len() + SECTIONS_START;
        sections.extend(body_section(&body));
        let bytes = raw_message(0, &sections);
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::DuplicateBody { offset: second }));
    }

    #[test]
    fn bad_section_kind() {
        let body = hello();
        for kind in [2u8, 3, 0x80, 0xFF] {
            let mut sections = body_section(&body);
            let offset = sections.len() + SECTIONS_START;
            sections.push(kind);
            sections.extend_from_slice(body.as_bytes());
            let bytes = raw_message(0, &sections);
            assert_eq!(OpMsg::parse(&bytes), Err(WireError::UnknownSectionKind { kind, offset }));
        }
    }

    #[test]
    fn trailing_garbage_between_sections() {
        let body = hello();
        let doc = rawdoc! { "x": 1 };
        // A stray byte between the body and a sequence is read as a section type.
        let mut sections = body_section(&body);
        let offset = sections.len() + SECTIONS_START;
        sections.push(0x2A);
        sections.extend(sequence_section(b"documents", &[&doc]));
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::UnknownSectionKind { kind: 0x2A, offset })
        );
        // A stray zero byte after the body starts a second body that cannot be read.
        let mut sections = body_section(&body);
        sections.push(0);
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::DuplicateBody { offset: SECTIONS_START + body.as_bytes().len() + 1 })
        );
        // Garbage inside a sequence, after its documents, is read as a document.
        let mut sequence = sequence_section(b"documents", &[&doc]);
        sequence.extend_from_slice(&[1, 2, 3]);
        let size = i32::from_le_bytes(sequence[1..5].try_into().unwrap()) + 3;
        sequence[1..5].copy_from_slice(&size.to_le_bytes());
        let mut sections = body_section(&body);
        let garbage = SECTIONS_START + sections.len() + sequence.len() - 3;
        sections.extend(sequence);
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::DocumentOverrun { offset: garbage, length: 4, remaining: 3 })
        );
    }

    #[test]
    fn body_document_overruns_sections() {
        let body = hello();
        let mut sections = body_section(&body);
        let declared = body.as_bytes().len() as i32 + 1;
        sections[1..5].copy_from_slice(&declared.to_le_bytes());
        let err = OpMsg::parse(&raw_message(0, &sections)).unwrap_err();
        assert_eq!(
            err,
            WireError::DocumentOverrun {
                offset: SECTIONS_START + 1,
                length: declared as usize,
                remaining: body.as_bytes().len()
            }
        );
        // The checksum is not part of the sections: a body may not reach into it.
        let mut bytes = raw_message_with_checksum(0, &sections);
        let checksum_at = bytes.len() - 4;
        let fixed = crc32c(&bytes[..checksum_at]);
        bytes[checksum_at..].copy_from_slice(&fixed.to_le_bytes());
        assert!(matches!(OpMsg::parse(&bytes), Err(WireError::DocumentOverrun { .. })));
    }

    #[test]
    fn sequence_document_overruns_its_section() {
        let body = hello();
        let doc = rawdoc! { "x": 1 };
        // The last document claims one byte more than the section holds; the byte is there,
        // as the next section's type byte, but belongs to that section.
        let mut sequence = sequence_section(b"docs", &[&doc]);
        let doc_at = 1 + 4 + 5;
        sequence[doc_at..doc_at + 4].copy_from_slice(&(doc.as_bytes().len() as i32 + 1).to_le_bytes());
        let mut sections = body_section(&body);
        let offset = SECTIONS_START + sections.len() + doc_at;
        sections.extend(sequence);
        sections.extend(sequence_section(b"more", &[]));
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::DocumentOverrun {
                offset,
                length: doc.as_bytes().len() + 1,
                remaining: doc.as_bytes().len()
            })
        );
    }

    #[test]
    fn malformed_documents() {
        // Not NUL-terminated.
        let sections = [KIND_BODY, 5, 0, 0, 0, 1];
        let err = OpMsg::parse(&raw_message(0, &sections)).unwrap_err();
        assert!(matches!(err, WireError::InvalidDocument { offset: 21, .. }), "{err}");
        // Declared length below five.
        for declared in [0i32, 4] {
            let mut sections = vec![KIND_BODY];
            sections.extend_from_slice(&declared.to_le_bytes());
            sections.push(0);
            let err = OpMsg::parse(&raw_message(0, &sections)).unwrap_err();
            assert!(matches!(err, WireError::InvalidDocument { offset: 21, .. }), "{err}");
        }
        // Negative.
        let mut sections = vec![KIND_BODY];
        sections.extend_from_slice(&(-5i32).to_le_bytes());
        sections.push(0);
        let err = OpMsg::parse(&raw_message(0, &sections)).unwrap_err();
        assert_eq!(
            err,
            WireError::InvalidDocument { offset: 21, reason: "declared length -5 is negative".to_owned() }
        );
        assert_eq!(err.to_string(), "invalid BSON document at offset 21: declared length -5 is negative");
    }

    #[test]
    fn sequence_size_problems() {
        let body = hello();
        let at = SECTIONS_START + 1 + body.as_bytes().len();
        for size in [i32::MIN, -1, 0, 4] {
            let mut sections = body_section(&body);
            sections.push(KIND_SEQUENCE);
            sections.extend_from_slice(&size.to_le_bytes());
            sections.extend_from_slice(b"x\0");
            assert_eq!(
                OpMsg::parse(&raw_message(0, &sections)),
                Err(WireError::SequenceSizeTooSmall { offset: at, size })
            );
        }
        // Size larger than what is left.
        let mut sections = body_section(&body);
        sections.extend(sequence_section(b"x", &[]));
        let size_at = sections.len() - 6;
        sections[size_at..size_at + 4].copy_from_slice(&7i32.to_le_bytes());
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::SectionOverrun { offset: at, size: 7, remaining: 6 })
        );
        // Not even room for the size.
        let mut sections = body_section(&body);
        sections.extend_from_slice(&[KIND_SEQUENCE, 9, 0]);
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::SectionOverrun { offset: at, size: 4, remaining: 2 })
        );
    }

    #[test]
    fn identifier_problems() {
        let body = hello();
        let at = SECTIONS_START + 1 + body.as_bytes().len();
        // No NUL inside the section (there is one just after it, in the next section).
        let mut sections = body_section(&body);
        sections.push(KIND_SEQUENCE);
        sections.extend_from_slice(&7i32.to_le_bytes());
        sections.extend_from_slice(b"abc");
        sections.extend(sequence_section(b"", &[]));
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::UnterminatedIdentifier { offset: at + 5 })
        );
        let mut sections = body_section(&body);
        sections.extend(sequence_section(b"\xFF\xFE", &[]));
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::IdentifierNotUtf8 { offset: at + 5 })
        );
        let doc = rawdoc! { "x": 1 };
        let mut sections = sequence_section(b"documents", &[&doc]);
        sections.extend(body_section(&body));
        sections.extend(sequence_section(b"documents", &[]));
        assert_eq!(
            OpMsg::parse(&raw_message(0, &sections)),
            Err(WireError::DuplicateIdentifier { identifier: "documents".to_owned() })
        );
    }

    #[test]
    fn checksum_verified() {
        let body = hello();
        let bytes = raw_message_with_checksum(0, &body_section(&body));
        let msg = OpMsg::parse(&bytes).unwrap();
        assert!(msg.flags.checksum_present);
        assert_eq!(msg.body, &*body);
        // Flip each bit after the length field, one at a time: the checksum catches every one
        // of them, unless an earlier check does.
        for i in 4..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= 1 << bit;
                assert!(OpMsg::parse(&corrupt).is_err(), "byte {i} bit {bit}");
            }
        }
        let mut corrupt = bytes.clone();
        corrupt[30] ^= 0x01;
        let computed = crc32c(&corrupt[..corrupt.len() - 4]);
        let carried = read_u32(&bytes, bytes.len() - 4).unwrap();
        assert_eq!(OpMsg::parse(&corrupt), Err(WireError::ChecksumMismatch { carried, computed }));
    }

    #[test]
    fn checksum_flag_needs_room_for_checksum() {
        let bytes = raw_message(OpMsgFlags::CHECKSUM_PRESENT, &body_section(&rawdoc! {}));
        assert_eq!(OpMsg::parse(&bytes), Err(WireError::LengthTooSmall { length: 26, minimum: 30 }));
    }

    // ---- property tests ----

    /// Keys: short strings without NUL.
    fn key() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_$.é]{0,8}"
    }

    fn leaf() -> impl Strategy<Value = bson::Bson> {
        prop_oneof![
            any::<i32>().prop_map(bson::Bson::Int32),
            any::<i64>().prop_map(bson::Bson::Int64),
            any::<f64>().prop_map(bson::Bson::Double),
            any::<bool>().prop_map(bson::Bson::Boolean),
            "[^\u{0}]{0,16}".prop_map(bson::Bson::String),
            Just(bson::Bson::Null),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| {
                bson::Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes })
            }),
        ]
    }

    fn value() -> impl Strategy<Value = bson::Bson> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(bson::Bson::Array),
                proptest::collection::vec((key(), inner), 0..4)
                    .prop_map(|entries| bson::Bson::Document(entries.into_iter().collect())),
            ]
        })
    }

    fn document() -> impl Strategy<Value = RawDocumentBuf> {
        proptest::collection::vec((key(), value()), 0..6).prop_map(|entries| {
            let doc: bson::Document = entries.into_iter().collect();
            RawDocumentBuf::try_from(&doc).expect("keys have no NUL")
        })
    }

    fn flags() -> impl Strategy<Value = OpMsgFlags> {
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(checksum_present, more_to_come, exhaust_allowed)| OpMsgFlags {
                checksum_present,
                more_to_come,
                exhaust_allowed,
            },
        )
    }

    /// Owned material for an [`OpMsg`]: body and sequences with unique identifiers.
    #[derive(Debug, Clone)]
    struct Material {
        request_id: i32,
        response_to: i32,
        flags: OpMsgFlags,
        body: RawDocumentBuf,
        sequences: Vec<(String, Vec<RawDocumentBuf>)>,
    }

    impl Material {
        fn msg(&self) -> OpMsg<'_> {
            OpMsg {
                request_id: self.request_id,
                response_to: self.response_to,
                flags: self.flags,
                body: &self.body,
                sequences: self
                    .sequences
                    .iter()
                    .map(|(identifier, docs)| DocumentSequence {
                        identifier,
                        documents: docs.iter().map(|d| &**d).collect(),
                    })
                    .collect(),
            }
        }
    }

    fn material() -> impl Strategy<Value = Material> {
        let sequences =
            proptest::collection::btree_map("[a-z]{0,10}", proptest::collection::vec(document(), 0..3), 0..3)
                .prop_map(|map| map.into_iter().collect::<Vec<_>>());
        (any::<i32>(), any::<i32>(), flags(), document(), sequences).prop_map(
            |(request_id, response_to, flags, body, sequences)| Material {
                request_id,
                response_to,
                flags,
                body,
                sequences,
            },
        )
    }

    /// Frames and parses `bytes` the way a connection would; must never panic.
    fn frame_and_parse(bytes: &[u8]) {
        if let Ok(Framing::Complete(n)) = frame(bytes, DEFAULT_MAX) {
            assert!((MIN_MESSAGE_LEN..=bytes.len()).contains(&n));
            if let Ok(msg) = OpMsg::parse(&bytes[..n]) {
                let again = msg.to_vec().expect("a parsed message re-encodes");
                assert_eq!(again.len(), n);
                assert_eq!(OpMsg::parse(&again).expect("re-encoded message parses"), msg);
            }
        }
        let _ = OpMsg::parse(bytes);
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(material in material()) {
            let msg = material.msg();
            let bytes = msg.to_vec().unwrap();
            prop_assert_eq!(msg.encoded_len().unwrap(), bytes.len());
            prop_assert_eq!(frame(&bytes, DEFAULT_MAX), Ok(Framing::Complete(bytes.len())));
            prop_assert_eq!(OpMsg::parse(&bytes).unwrap(), msg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            frame_and_parse(&bytes);
        }

        #[test]
        fn arbitrary_sections_never_panic(
            flags in prop_oneof![Just(0u32), Just(1), Just(2), any::<u32>()],
            sections in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let bytes = raw_message(flags, &sections);
            frame_and_parse(&bytes);
            if flags & OpMsgFlags::CHECKSUM_PRESENT == 0 {
                frame_and_parse(&raw_message_with_checksum(flags, &sections));
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            material in material(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = material.msg().to_vec().unwrap();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            frame_and_parse(&bytes);
            frame_and_parse(&bytes[..cut.index(bytes.len() + 1)]);
        }
    }
}
