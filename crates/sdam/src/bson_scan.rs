//! A small, checked reader of BSON documents for the hello parser: it walks a document's
//! elements straight from the bytes, decoding only the value types a hello reply uses and
//! stepping over the rest by their lengths.
//!
//! Every length is checked against the bytes that hold it, so malformed input is an error,
//! never a panic or an out-of-bounds read. Nested documents are only checked for their
//! framing (length, terminator) until they are read themselves, and string values for
//! UTF-8 only by the reader that takes them as text, as with `bson`'s raw documents.

use std::fmt;

use bson::oid::ObjectId;
use bson::spec::ElementType;

/// Why the bytes are not a well-formed BSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanError {
    what: &'static str,
    at: usize,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {} of the element list)", self.what, self.at)
    }
}

/// One value, decoded for the types hello parsing reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Double(f64),
    /// A string's bytes (without the terminating zero), not yet checked to be UTF-8: the
    /// reader checks the strings it takes as text, and a string compared by its bytes with
    /// one already checked needs no check.
    String(&'a [u8]),
    Document(Doc<'a>),
    Array(Doc<'a>),
    ObjectId(ObjectId),
    Boolean(bool),
    /// Milliseconds since the Unix epoch.
    DateTime(i64),
    Null,
    Undefined,
    Int32(i32),
    Int64(i64),
    Timestamp {
        time: u32,
        increment: u32,
    },
    /// A value of another type, not decoded.
    Other(ElementType),
}

impl Value<'_> {
    /// The BSON element type of the value.
    pub(crate) fn element_type(&self) -> ElementType {
        match self {
            Self::Double(_) => ElementType::Double,
            Self::String(_) => ElementType::String,
            Self::Document(_) => ElementType::EmbeddedDocument,
            Self::Array(_) => ElementType::Array,
            Self::ObjectId(_) => ElementType::ObjectId,
            Self::Boolean(_) => ElementType::Boolean,
            Self::DateTime(_) => ElementType::DateTime,
            Self::Null => ElementType::Null,
            Self::Undefined => ElementType::Undefined,
            Self::Int32(_) => ElementType::Int32,
            Self::Int64(_) => ElementType::Int64,
            Self::Timestamp { .. } => ElementType::Timestamp,
            Self::Other(t) => *t,
        }
    }
}

/// A document (or array: an array is a document keyed "0", "1", ...) whose framing was
/// checked: `elements` is what lies between the length prefix and the terminating zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc<'a> {
    elements: &'a [u8],
}

impl<'a> Doc<'a> {
    /// A whole document: a little-endian `i32` length equal to `bytes.len()`, the elements,
    /// a zero byte.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, ScanError> {
        let err = |what| ScanError { what, at: 0 };
        let (len, rest) = split_i32(bytes).ok_or(err("document shorter than its length prefix"))?;
        if len < 5 || len as usize != bytes.len() {
            return Err(err("document length prefix does not match its size"));
        }
        match rest.split_last() {
            Some((0, elements)) => Ok(Self { elements }),
            _ => Err(err("document does not end with a zero byte")),
        }
    }

    /// The bytes of the elements (between the length prefix and the terminating zero): two
    /// documents with the same element bytes hold the same values.
    pub(crate) fn element_bytes(self) -> &'a [u8] {
        self.elements
    }

    /// The elements in order: `(key, value)`, or an error (after which iteration stops).
    pub(crate) fn iter(self) -> Elements<'a> {
        Elements { rest: self.elements, offset: 0, failed: false }
    }
}

/// The elements of a [`Doc`].
#[derive(Debug, Clone)]
pub(crate) struct Elements<'a> {
    rest: &'a [u8],
    offset: usize,
    failed: bool,
}

#[inline]
fn split_i32(bytes: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((i32::from_le_bytes(*head), rest))
}

#[inline]
fn split_u64(bytes: &[u8]) -> Option<([u8; 8], &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((*head, rest))
}

/// The index of the first zero byte: eight bytes at a time (keys are about ten bytes long,
/// too short for `memchr`'s setup to pay off), then one at a time for the tail.
#[inline]
fn find_zero(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = bytes.get(at..).and_then(|b| b.first_chunk::<8>()) {
        let v = u64::from_le_bytes(*word);
        // The lowest set high bit marks the first zero byte (bits above it may be spurious).
        let zeros = v.wrapping_sub(ONES) & !v & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|&b| b == 0).map(|i| at + i)
}

/// A C string: the bytes before the first zero, and what follows the zero.
#[inline]
fn split_cstring(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = find_zero(bytes)?;
    Some((bytes.get(..end)?, bytes.get(end + 1..)?))
}

/// A length-prefixed string (`i32` length including the trailing zero, bytes, zero).
#[inline]
fn split_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = split_i32(bytes)?;
    let len = usize::try_from(len).ok().filter(|&l| l >= 1 && l <= rest.len())?;
    let (body, rest) = rest.split_at(len);
    match body.split_last() {
        Some((0, text)) => Some((text, rest)),
        _ => None,
    }
}

impl<'a> Elements<'a> {
    fn fail(&mut self, what: &'static str) -> Option<Result<(&'a [u8], Value<'a>), ScanError>> {
        self.failed = true;
        Some(Err(ScanError { what, at: self.offset }))
    }

    #[inline]
    fn value(kind: u8, bytes: &'a [u8]) -> Result<(Value<'a>, &'a [u8]), &'static str> {
        const SHORT: &str = "element value runs past the end of the document";
        let fixed = |n: usize| if bytes.len() >= n { Ok(bytes.split_at(n)) } else { Err(SHORT) };
        let other = |t: ElementType, rest: &'a [u8]| Ok((Value::Other(t), rest));
        match kind {
            0x01 => split_u64(bytes).map(|(b, r)| (Value::Double(f64::from_le_bytes(b)), r)).ok_or(SHORT),
            0x02 => {
                let (text, rest) = split_string(bytes).ok_or("malformed string value")?;
                Ok((Value::String(text), rest))
            }
            0x03 | 0x04 => {
                let (len, _) = split_i32(bytes).ok_or(SHORT)?;
                let len = usize::try_from(len).map_err(|_| "negative document length")?;
                let (doc, rest) = fixed(len)?;
                let doc = Doc::new(doc).map_err(|e| e.what)?;
                Ok((if kind == 0x03 { Value::Document(doc) } else { Value::Array(doc) }, rest))
            }
            0x05 => {
                let (len, rest) = split_i32(bytes).ok_or(SHORT)?;
                let len = usize::try_from(len).map_err(|_| "negative binary length")?;
                let rest = rest.get(1 + len..).ok_or(SHORT)?;
                other(ElementType::Binary, rest)
            }
            0x06 => Ok((Value::Undefined, bytes)),
            0x07 => {
                let (oid, rest) = bytes.split_first_chunk::<12>().ok_or(SHORT)?;
                Ok((Value::ObjectId(ObjectId::from_bytes(*oid)), rest))
            }
            0x08 => match bytes.split_first() {
                Some((0, rest)) => Ok((Value::Boolean(false), rest)),
                Some((1, rest)) => Ok((Value::Boolean(true), rest)),
                Some(_) => Err("boolean value is neither 0 nor 1"),
                None => Err(SHORT),
            },
            0x09 => split_u64(bytes).map(|(b, r)| (Value::DateTime(i64::from_le_bytes(b)), r)).ok_or(SHORT),
            0x0A => Ok((Value::Null, bytes)),
            0x0B => {
                let (_, rest) = split_cstring(bytes).ok_or("malformed regular expression")?;
                let (_, rest) = split_cstring(rest).ok_or("malformed regular expression")?;
                other(ElementType::RegularExpression, rest)
            }
            0x0C => {
                let (_, rest) = split_string(bytes).ok_or("malformed DBPointer")?;
                let rest = rest.get(12..).ok_or(SHORT)?;
                other(ElementType::DbPointer, rest)
            }
            0x0D | 0x0E => {
                let (_, rest) = split_string(bytes).ok_or("malformed string value")?;
                let t = if kind == 0x0D { ElementType::JavaScriptCode } else { ElementType::Symbol };
                other(t, rest)
            }
            0x0F => {
                let (len, _) = split_i32(bytes).ok_or(SHORT)?;
                let len =
                    usize::try_from(len).ok().filter(|&l| l >= 14).ok_or("malformed code with scope")?;
                let (_, rest) = fixed(len)?;
                other(ElementType::JavaScriptCodeWithScope, rest)
            }
            0x10 => split_i32(bytes).map(|(v, r)| (Value::Int32(v), r)).ok_or(SHORT),
            0x11 => split_u64(bytes)
                .map(|(b, r)| {
                    let increment = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let time = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                    (Value::Timestamp { time, increment }, r)
                })
                .ok_or(SHORT),
            0x12 => split_u64(bytes).map(|(b, r)| (Value::Int64(i64::from_le_bytes(b)), r)).ok_or(SHORT),
            0x13 => {
                let (_, rest) = fixed(16)?;
                other(ElementType::Decimal128, rest)
            }
            0xFF => other(ElementType::MinKey, bytes),
            0x7F => other(ElementType::MaxKey, bytes),
            _ => Err("unknown element type"),
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<(&'a [u8], Value<'a>), ScanError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let (&kind, rest) = self.rest.split_first()?;
        let Some((key, rest)) = split_cstring(rest) else {
            return self.fail("element key is not terminated");
        };
        match Self::value(kind, rest) {
            Ok((value, rest)) => {
                self.offset += self.rest.len() - rest.len();
                self.rest = rest;
                Some(Ok((key, value)))
            }
            Err(what) => self.fail(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn find_zero_finds_the_first_zero_at_every_position() {
        for len in 0..20 {
            for zero in 0..=len {
                let mut bytes = vec![0x80u8; len];
                // Bytes that borrow across in the word trick: 0x01 after a zero, 0x80 elsewhere.
                if zero < len {
                    bytes[zero] = 0;
                    if zero + 1 < len {
                        bytes[zero + 1] = 1;
                    }
                }
                let expected = bytes.iter().position(|&b| b == 0);
                assert_eq!(find_zero(&bytes), expected, "len {len} zero {zero}");
                let ones = vec![1u8; len];
                assert_eq!(find_zero(&ones), None);
            }
        }
    }

    #[test]
    fn reads_what_bson_writes() {
        let regex = bson::Regex {
            pattern: bson::raw::CString::try_from("a+").unwrap(),
            options: bson::raw::CString::try_from("i").unwrap(),
        };
        let doc = bson::doc! {
            "d": 1.5, "s": "text", "o": {"x": 1}, "a": [1, 2], "b": true, "n": null,
            "i": 7_i32, "l": 8_i64, "t": bson::Timestamp { time: 3, increment: 4 },
            "oid": ObjectId::from_bytes([9; 12]), "dt": bson::DateTime::from_millis(42),
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "re": regex, "dec": bson::Decimal128::from_bytes([0; 16]),
            "min": bson::Bson::MinKey, "max": bson::Bson::MaxKey, "after": "end",
        };
        let doc = bson::RawDocumentBuf::try_from(&doc).unwrap();
        let got: Vec<(String, ElementType)> = Doc::new(doc.as_bytes())
            .unwrap()
            .iter()
            .map(|e| e.map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), v.element_type())))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(String, ElementType)> = doc
            .iter()
            .map(|e| e.map(|(k, v)| (k.as_str().to_owned(), v.element_type())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, want);
        let last = Doc::new(doc.as_bytes()).unwrap().iter().last().unwrap().unwrap();
        assert!(matches!(last.1, Value::String(b"end")));
    }

    #[test]
    fn malformed_input_is_an_error() {
        let doc = rawdoc! {"s": "text", "o": {"x": 1}};
        let bytes = doc.as_bytes();
        for cut in 0..bytes.len() {
            // A truncated copy with a length prefix patched to match: never a panic.
            let mut short = bytes[..cut].to_vec();
            if short.len() >= 4 {
                short[..4].copy_from_slice(&(cut as i32).to_le_bytes());
            }
            if let Ok(d) = Doc::new(&short) {
                let _ = d.iter().collect::<Vec<_>>();
            }
        }
        let mut bad = bytes.to_vec();
        bad[4] = 0x42; // unknown element type
        assert!(Doc::new(&bad).unwrap().iter().any(|e| e.is_err()));
        assert!(Doc::new(&bytes[..bytes.len() - 1]).is_err());
    }
}
