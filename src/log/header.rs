//! The fixed header at the start of every log file (store and index), which
//! says what the file is, which format it uses and which segment it belongs to.
//!
//! Layout, [`FILE_HEADER_BYTES`] = 32 bytes, integers little-endian:
//!
//! 1. `0..8`   magic: `WKVSTORE` for a store, `WKVINDEX` for an index
//! 2. `8..12`  format version (`u32`), currently [`FORMAT_VERSION`]
//! 3. `12..16` flags (`u32`), reserved, must be 0
//! 4. `16..24` base offset of the segment (`u64`)
//! 5. `24..28` CRC32 of bytes `0..24`
//! 6. `28..32` reserved, must be 0

use super::Offset;

pub const FILE_HEADER_BYTES: usize = 32;
pub const FORMAT_VERSION: u32 = 1;
pub const STORE_MAGIC: [u8; 8] = *b"WKVSTORE";
pub const INDEX_MAGIC: [u8; 8] = *b"WKVINDEX";

pub fn encode(magic: [u8; 8], base: Offset) -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a header read from a file; the error is the reason, for a
/// `Corruption` error at byte 0 of that file.
pub fn check(bytes: &[u8], magic: [u8; 8], base: Offset) -> Result<(), String> {
    if bytes.len() < FILE_HEADER_BYTES {
        return Err(format!(
            "file header is {} bytes, expected {FILE_HEADER_BYTES}",
            bytes.len()
        ));
    }
    if bytes[0..8] != magic {
        return Err(format!(
            "bad magic {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[0..8]),
            String::from_utf8_lossy(&magic)
        ));
    }
    let stored_crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[0..24]) != stored_crc {
        return Err("file header checksum mismatch".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "unsupported format version {version} (this build reads {FORMAT_VERSION})"
        ));
    }
    if bytes[12..16] != [0; 4] || bytes[28..32] != [0; 4] {
        return Err("reserved header fields are not zero".into());
    }
    let found_base = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if found_base != base {
        return Err(format!(
            "header names base offset {found_base} but the file name says {base}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_field_is_checked() {
        let h = encode(STORE_MAGIC, 42);
        assert_eq!(check(&h, STORE_MAGIC, 42), Ok(()));
        assert!(check(&h, INDEX_MAGIC, 42).unwrap_err().contains("magic"));
        assert!(check(&h, STORE_MAGIC, 41).unwrap_err().contains("base offset"));
        assert!(check(&h[..31], STORE_MAGIC, 42).unwrap_err().contains("31 bytes"));
        for i in 0..FILE_HEADER_BYTES {
            let mut bad = h;
            bad[i] ^= 0x01;
            assert!(
                check(&bad, STORE_MAGIC, 42).is_err(),
                "flip at byte {i} not caught"
            );
        }
    }
}
