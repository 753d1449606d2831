//! Percent-decoding (RFC 3986 section 2.1), as the connection string spec requires for the
//! userinfo, hosts, auth database and option keys and values.

use std::fmt;

/// Why a piece of text could not be percent-decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A `%` at this byte offset is not followed by two hexadecimal digits.
    BadEscape(usize),
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEscape(at) => {
                write!(f, "the '%' at byte {at} is not followed by two hexadecimal digits")
            }
            Self::NotUtf8 => f.write_str("the percent-decoded bytes are not valid UTF-8"),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether every `%` in `s` starts a valid `%XX` escape; returns the offset of the first bad one.
pub(crate) fn check(s: &str) -> Result<(), DecodeError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(_), Some(_)) => i += 3,
                _ => return Err(DecodeError::BadEscape(i)),
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decodes every `%XX` escape. `+` is left as is (connection-string-spec.md, Q&A on spaces:
/// spaces are written `%20`; decoding `+` is optional and would corrupt passwords).
pub(crate) fn decode(s: &str) -> Result<String, DecodeError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => return Err(DecodeError::BadEscape(i)),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(decode("a%2Fb%3a").unwrap(), "a/b:");
        assert_eq!(decode("plain+text").unwrap(), "plain+text");
        assert_eq!(decode("%C3%BC").unwrap(), "ü");
        assert_eq!(decode("%25").unwrap(), "%");
        assert_eq!(decode("").unwrap(), "");
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(decode("abc%"), Err(DecodeError::BadEscape(3)));
        assert_eq!(decode("%4"), Err(DecodeError::BadEscape(0)));
        assert_eq!(decode("x%zz"), Err(DecodeError::BadEscape(1)));
        assert_eq!(decode("%FF"), Err(DecodeError::NotUtf8));
        assert_eq!(check("user%20%"), Err(DecodeError::BadEscape(7)));
        assert_eq!(check("a%41b"), Ok(()));
    }
}
