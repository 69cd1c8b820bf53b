//! The on-disk entry format (pure: no I/O, unit-tested).
//!
//! One cache entry is one file:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "IMGFCACH"
//!      8     4  format version (u32 LE), currently 1
//!     12     4  header length (u32 LE), currently 64
//!     16    16  key hash (the entry's `combined_bin()`, also its file name)
//!     32     4  internal meta length (u32 LE)
//!     36     4  header meta length (u32 LE)
//!     40     8  body length (u64 LE)
//!     48     4  CRC-32 of internal meta ‖ header meta ‖ body
//!     52     8  reserved, zero
//!     60     4  CRC-32 of bytes 0..60 (so corrupt lengths are never trusted)
//!     64        internal meta (`CacheMeta::serialize().0`)
//!               header meta (`CacheMeta::serialize().1`)
//!               body
//! ```
//!
//! A file is valid only if both checksums match and its length is exactly the header length plus
//! the three declared lengths, so truncation, a flipped bit anywhere, or a foreign file is
//! detected before anything is served. CRC-32 detects every burst error up to 32 bits and any
//! odd number of flipped bits; this guards against torn writes and media errors, not against an
//! attacker with write access to the cache directory.

use std::ops::Range;

use pingora::cache::key::HashBinary;

/// First bytes of every entry file.
pub const MAGIC: [u8; 8] = *b"IMGFCACH";
/// The format version written; readers drop anything else (a format change empties the cache
/// instead of misreading it).
pub const VERSION: u32 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Offset of the header checksum; the checksum covers everything before it.
const HEADER_CRC_AT: usize = 60;

/// Why an entry file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("shorter than the header ({0} bytes)")]
    TooShort(u64),
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported format version {0}")]
    Version(u32),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("file is {actual} bytes, header declares {expected}")]
    Length { expected: u64, actual: u64 },
    #[error("entry is for another key")]
    KeyMismatch,
    #[error("content checksum mismatch")]
    Checksum,
}

/// The fixed header of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub key: HashBinary,
    pub internal_len: u32,
    pub header_len: u32,
    pub body_len: u64,
    /// CRC-32 of internal meta, header meta and body, in that order.
    pub checksum: u32,
}

impl EntryHeader {
    /// Total file length this header declares.
    pub fn file_len(&self) -> u64 {
        // Saturating: a corrupt (but header-checksum-valid) length must not wrap around.
        (HEADER_LEN as u64 + self.meta_len() as u64).saturating_add(self.body_len)
    }

    /// Length of both meta parts.
    pub fn meta_len(&self) -> usize {
        self.internal_len as usize + self.header_len as usize
    }

    /// Byte range of the internal meta in the file.
    pub fn internal_range(&self) -> Range<usize> {
        HEADER_LEN..HEADER_LEN + self.internal_len as usize
    }

    /// Byte range of the header meta in the file.
    pub fn header_range(&self) -> Range<usize> {
        let start = HEADER_LEN + self.internal_len as usize;
        start..start + self.header_len as usize
    }

    /// Offset of the body in the file.
    pub fn body_offset(&self) -> u64 {
        HEADER_LEN as u64 + self.meta_len() as u64
    }

    /// Serialize the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out[16..32].copy_from_slice(&self.key);
        out[32..36].copy_from_slice(&self.internal_len.to_le_bytes());
        out[36..40].copy_from_slice(&self.header_len.to_le_bytes());
        out[40..48].copy_from_slice(&self.body_len.to_le_bytes());
        out[48..52].copy_from_slice(&self.checksum.to_le_bytes());
        let crc = crc32fast::hash(&out[..HEADER_CRC_AT]);
        out[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse and check a header read from a file of `file_len` bytes that should hold `key`.
    ///
    /// Checks everything but the content checksum, which needs the rest of the file.
    pub fn decode(buf: &[u8], file_len: u64, key: &HashBinary) -> Result<Self, EntryError> {
        if buf.len() < HEADER_LEN || file_len < HEADER_LEN as u64 {
            return Err(EntryError::TooShort(file_len.min(buf.len() as u64)));
        }
        if buf[0..8] != MAGIC {
            return Err(EntryError::BadMagic);
        }
        let version = u32_at(buf, 8);
        if version != VERSION || u32_at(buf, 12) as usize != HEADER_LEN {
            return Err(EntryError::Version(version));
        }
        if crc32fast::hash(&buf[..HEADER_CRC_AT]) != u32_at(buf, HEADER_CRC_AT) {
            return Err(EntryError::HeaderChecksum);
        }
        let mut stored_key = HashBinary::default();
        stored_key.copy_from_slice(&buf[16..32]);
        let header = EntryHeader {
            key: stored_key,
            internal_len: u32_at(buf, 32),
            header_len: u32_at(buf, 36),
            body_len: u64::from_le_bytes(arr8(&buf[40..48])),
            checksum: u32_at(buf, 48),
        };
        if &header.key != key {
            return Err(EntryError::KeyMismatch);
        }
        if header.file_len() != file_len {
            return Err(EntryError::Length {
                expected: header.file_len(),
                actual: file_len,
            });
        }
        Ok(header)
    }
}

/// A fully decoded entry that was read into memory in one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub header: EntryHeader,
    pub internal: Range<usize>,
    pub meta_header: Range<usize>,
    pub body: Range<usize>,
}

/// Check a whole entry file held in memory and locate its parts.
pub fn decode(buf: &[u8], key: &HashBinary) -> Result<Decoded, EntryError> {
    let header = EntryHeader::decode(buf, buf.len() as u64, key)?;
    let content = &buf[HEADER_LEN..];
    if crc32fast::hash(content) != header.checksum {
        return Err(EntryError::Checksum);
    }
    let body_start = header.body_offset() as usize;
    Ok(Decoded {
        header,
        internal: header.internal_range(),
        meta_header: header.header_range(),
        body: body_start..buf.len(),
    })
}

/// Encode a whole entry in memory (used when rewriting meta and in tests; the streaming writer
/// produces the same bytes piecewise).
pub fn encode(key: &HashBinary, internal: &[u8], meta_header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(internal);
    crc.update(meta_header);
    crc.update(body);
    let header = EntryHeader {
        key: *key,
        internal_len: internal.len() as u32,
        header_len: meta_header.len() as u32,
        body_len: body.len() as u64,
        checksum: crc.finalize(),
    };
    let mut out = Vec::with_capacity(header.file_len() as usize);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(internal);
    out.extend_from_slice(meta_header);
    out.extend_from_slice(body);
    out
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn arr8(buf: &[u8]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(buf);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: HashBinary = [7u8; 16];

    fn sample() -> Vec<u8> {
        encode(&KEY, b"internal-meta", b"header-meta!", b"the body bytes")
    }

    #[test]
    fn round_trip_locates_parts() {
        let buf = sample();
        let d = decode(&buf, &KEY).unwrap();
        assert_eq!(&buf[d.internal.clone()], b"internal-meta");
        assert_eq!(&buf[d.meta_header.clone()], b"header-meta!");
        assert_eq!(&buf[d.body.clone()], b"the body bytes");
        assert_eq!(d.header.file_len(), buf.len() as u64);
        assert_eq!(&buf[..8], b"IMGFCACH");
    }

    #[test]
    fn empty_parts_are_valid() {
        let buf = encode(&KEY, b"", b"", b"");
        assert_eq!(buf.len(), HEADER_LEN);
        let d = decode(&buf, &KEY).unwrap();
        assert!(d.body.is_empty());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = sample();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad, &KEY).is_err(), "flip at byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let buf = sample();
        for len in 0..buf.len() {
            assert!(decode(&buf[..len], &KEY).is_err(), "truncated to {len}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer, &KEY),
            Err(EntryError::Length { .. })
        ));
    }

    #[test]
    fn foreign_key_version_and_magic_are_rejected() {
        let buf = sample();
        assert_eq!(decode(&buf, &[8u8; 16]), Err(EntryError::KeyMismatch));
        let mut v2 = buf.clone();
        v2[8] = 2;
        assert_eq!(decode(&v2, &KEY), Err(EntryError::Version(2)));
        let mut magic = buf;
        magic[0] = b'X';
        assert_eq!(decode(&magic, &KEY), Err(EntryError::BadMagic));
    }

    #[test]
    fn content_flip_is_a_checksum_error_not_a_header_error() {
        let mut buf = sample();
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        assert_eq!(decode(&buf, &KEY), Err(EntryError::Checksum));
    }
}
