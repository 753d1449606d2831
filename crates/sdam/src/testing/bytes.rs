//! A total byte codec: any byte string decodes (missing bytes read as zero), and every value
//! encodes to bytes that decode back to it. Fuzzers mutate these bytes; seed corpora are
//! written with [`Codec::to_bytes`].

/// Reads values from a byte string; past its end every byte reads as zero.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (zero past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    /// The next `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

/// A value with a total decoding from bytes and an encoding that decodes back to it.
pub trait Codec: Sized {
    /// Reads a value; never fails.
    fn decode(r: &mut Reader<'_>) -> Self;
    /// Appends the bytes that [`decode`](Self::decode) reads back as `self`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The value's bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a whole byte string.
    fn from_bytes(data: &[u8]) -> Self {
        Self::decode(&mut Reader::new(data))
    }
}

impl Codec for u8 {
    fn decode(r: &mut Reader<'_>) -> Self {
        r.u8()
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl Codec for bool {
    fn decode(r: &mut Reader<'_>) -> Self {
        r.u8() & 1 == 1
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Codec for u16 {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self::from_le_bytes([r.u8(), r.u8()])
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Codec for u64 {
    fn decode(r: &mut Reader<'_>) -> Self {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = r.u8();
        }
        Self::from_le_bytes(b)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl<T: Codec> Codec for Option<T> {
    /// A flag byte (odd: present), then the value.
    fn decode(r: &mut Reader<'_>) -> Self {
        bool::decode(r).then(|| T::decode(r))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
            None => out.push(0),
        }
    }
}

/// Decodes a list of at most `max` values: a count byte (modulo `max + 1`), then the values.
pub fn decode_list<T: Codec>(r: &mut Reader<'_>, max: u8) -> Vec<T> {
    let n = r.u8() % max.saturating_add(1);
    (0..n).map(|_| T::decode(r)).collect()
}

/// Encodes a list for [`decode_list`]; `list` must hold at most `max` values.
pub fn encode_list<T: Codec>(list: &[T], out: &mut Vec<u8>) {
    out.push(u8::try_from(list.len()).unwrap_or(u8::MAX));
    for v in list {
        v.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_bytes_read_as_zero_and_values_round_trip() {
        let mut r = Reader::new(&[7]);
        assert_eq!((r.u8(), r.u8(), u16::decode(&mut r)), (7, 0, 0));
        assert!(r.is_empty());
        let v: (Option<u16>, u64) = (Some(513), u64::MAX - 3);
        let mut out = Vec::new();
        v.0.encode(&mut out);
        v.1.encode(&mut out);
        let mut r = Reader::new(&out);
        assert_eq!((Option::<u16>::decode(&mut r), u64::decode(&mut r)), v);
        let list = vec![1u8, 2, 3];
        let mut out = Vec::new();
        encode_list(&list, &mut out);
        assert_eq!(decode_list::<u8>(&mut Reader::new(&out), 4), list);
    }
}
