//! Record framing: how one payload is laid out in a store file, and how to
//! tell a whole, intact record from a short or damaged one.
//!
//! Layout, [`RECORD_HEADER_BYTES`] = 16 bytes of header then the payload,
//! integers little-endian:
//!
//! 1. `0..4`   CRC32 (crc32fast, IEEE) of bytes `4..16` and the payload
//! 2. `4..8`   payload length (`u32`)
//! 3. `8..16`  the record's offset in the log (`u64`)
//! 4. `16..`   payload
//!
//! The checksum covers the length and offset, so a damaged length is caught
//! before it is trusted (after the cheap bound check against the maximum). The
//! offset lets recovery tell the record it expects from a stale or misplaced
//! one that happens to have a valid checksum.

use super::Offset;

pub const RECORD_HEADER_BYTES: usize = 16;

/// The outcome of decoding the bytes at one position.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, intact record with the expected offset; `size` is header plus
    /// payload.
    Record { payload: &'a [u8], size: usize },
    /// The bytes end before the record does; `needed` is how many bytes from
    /// the start of the record would be enough to decide. Not an error: the
    /// caller either reads more or, at the end of the file, has a short record.
    Incomplete { needed: usize },
    /// The bytes are not the expected record.
    Invalid(Invalid),
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Invalid {
    TooLong { len: u32, max: u32 },
    BadChecksum,
    WrongOffset { found: Offset },
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::TooLong { len, max } => {
                write!(f, "record length {len} exceeds the maximum {max}")
            }
            Invalid::BadChecksum => write!(f, "record checksum mismatch"),
            Invalid::WrongOffset { found } => write!(f, "record carries offset {found}"),
        }
    }
}

/// The size on disk of a record with a payload of `payload_len` bytes.
pub fn framed_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

/// Appends the framed record to `out`.
pub fn encode_into(out: &mut Vec<u8>, offset: Offset, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked against max_record_bytes");
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The payload length a header announces, without trusting it yet.
pub fn announced_len(header: &[u8]) -> u32 {
    u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"))
}

/// The offset a header carries, without trusting it yet.
pub fn announced_offset(header: &[u8]) -> Offset {
    u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"))
}

/// Decodes the record at the start of `buf`, expecting it to carry `expected`.
/// A length over `max_payload` is rejected before anything is read or
/// allocated for it.
pub fn decode(buf: &[u8], expected: Offset, max_payload: u32) -> Decoded<'_> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Decoded::Incomplete {
            needed: RECORD_HEADER_BYTES,
        };
    }
    let len = announced_len(buf);
    if len > max_payload {
        return Decoded::Invalid(Invalid::TooLong {
            len,
            max: max_payload,
        });
    }
    let size = framed_len(len as usize);
    if buf.len() < size {
        return Decoded::Incomplete { needed: size };
    }
    let stored_crc = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    if crc32fast::hash(&buf[4..size]) != stored_crc {
        return Decoded::Invalid(Invalid::BadChecksum);
    }
    let found = announced_offset(buf);
    if found != expected {
        return Decoded::Invalid(Invalid::WrongOffset { found });
    }
    Decoded::Record {
        payload: &buf[RECORD_HEADER_BYTES..size],
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(offset: Offset, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_into(&mut v, offset, payload);
        v
    }

    #[test]
    fn hex_example_in_docs_matches() {
        // docs/format.md shows this record byte for byte.
        let v = framed(5, b"hi");
        assert_eq!(v.len(), 18);
        assert_eq!(&v[4..], &[2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'h', b'i']);
        assert_eq!(
            &v[0..4],
            &[0x7d, 0x4e, 0xb6, 0x4f],
            "CRC32 0x4fb64e7d, as the doc shows"
        );
    }

    #[test]
    fn round_trip() {
        let v = framed(7, b"hello");
        assert_eq!(
            decode(&v, 7, 100),
            Decoded::Record {
                payload: b"hello",
                size: 21
            }
        );
    }

    #[test]
    fn every_prefix_is_incomplete_never_invalid() {
        let v = framed(7, b"hello world");
        for cut in 0..v.len() {
            assert!(
                matches!(decode(&v[..cut], 7, 100), Decoded::Incomplete { .. }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let v = framed(7, b"hello world");
        for byte in 0..v.len() {
            for bit in 0..8 {
                let mut bad = v.clone();
                bad[byte] ^= 1 << bit;
                let d = decode(&bad, 7, 1 << 20);
                assert!(
                    !matches!(d, Decoded::Record { .. }),
                    "flip of bit {bit} in byte {byte} decoded as a record"
                );
            }
        }
    }

    #[test]
    fn oversized_length_is_refused_before_reading_it() {
        let mut v = framed(0, b"x");
        v[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&v, 0, 1024),
            Decoded::Invalid(Invalid::TooLong {
                len: u32::MAX,
                max: 1024
            })
        );
    }

    #[test]
    fn wrong_offset_is_invalid() {
        let v = framed(3, b"x");
        assert_eq!(
            decode(&v, 4, 10),
            Decoded::Invalid(Invalid::WrongOffset { found: 3 })
        );
    }

    #[test]
    fn zeroes_are_not_a_record() {
        let zeros = [0u8; 64];
        assert_eq!(decode(&zeros, 0, 10), Decoded::Invalid(Invalid::BadChecksum));
    }
}
