//! CRC-32C (Castagnoli), the checksum an OP_MSG carries when its `checksumPresent` flag is set.
//!
//! Parameters: reflected polynomial `0x82F63B78`, initial value `0xFFFFFFFF`, final XOR
//! `0xFFFFFFFF`. The lookup table is computed at compile time; the functions here never panic.

/// The reflected CRC-32C polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

/// One entry per byte value: the CRC contribution of that byte, built at compile time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLYNOMIAL } else { crc >> 1 };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// Computes the CRC-32C checksum of `bytes`.
///
/// ```
/// assert_eq!(sdam_wire::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// Feeds `bytes` into a running (pre-inverted) CRC state.
fn update(mut state: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        // The index is masked to 0..=255, so it is always in bounds of the 256-entry table.
        let index = usize::from((state as u8) ^ byte);
        state = (state >> 8) ^ TABLE[index];
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference implementation, to check the table against.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ POLYNOMIAL } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn empty_input() {
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn rfc3720_vectors() {
        // iSCSI (RFC 3720, appendix B.4) test patterns.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    #[test]
    fn table_entries() {
        assert_eq!(TABLE[0], 0);
        assert_eq!(TABLE[1], 0xF26B_8303);
        assert_eq!(TABLE[128], POLYNOMIAL);
        assert_eq!(TABLE[255], 0xAD7D_5351);
    }

    #[test]
    fn matches_bitwise_reference() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 2, 3, 7, 8, 63, 64, 65, 999, 1000] {
            assert_eq!(crc32c(&data[..len]), bitwise(&data[..len]), "length {len}");
        }
    }
}
