//! Mutations: what one log record says happened to the table. Records
//! describe effects, never commands (an `INCR` is logged as the value it
//! produced, a relative expiry as an absolute deadline), so applying a record
//! twice gives the same state as applying it once.
//!
//! Payload layout, integers little-endian:
//!
//! 1. `0`    format version (`u8`), currently [`MUTATION_VERSION`]
//! 2. `1..`  one mutation:
//!    - `1` Set: key length `u32`, key, value length `u32`, value, has-deadline
//!      `u8` (0 or 1), deadline in ms since the Unix epoch `u64`
//!    - `2` Delete: count `u32`, then count × (key length `u32`, key)
//!    - `3` Batch: count `u32`, then count × a nested mutation (tag onward);
//!      a batch is one record, so replay applies all of it or none
//!    - `4` FlushAll: nothing more
//!    - `5` SetDeadline: key length `u32`, key, has-deadline `u8`, deadline
//!      `u64`; changes only the deadline of a key that exists (no-op
//!      otherwise), so `EXPIRE` does not re-log the value

use bytes::Bytes;

pub const MUTATION_VERSION: u8 = 1;

const TAG_SET: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_BATCH: u8 = 3;
const TAG_FLUSH_ALL: u8 = 4;
const TAG_SET_DEADLINE: u8 = 5;

/// Nesting deeper than this is refused when decoding, so a damaged (but
/// checksummed) record cannot recurse without bound.
const MAX_BATCH_DEPTH: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Set {
        key: Bytes,
        value: Bytes,
        /// Absolute deadline in ms since the Unix epoch.
        expire_at_ms: Option<u64>,
    },
    Delete {
        keys: Vec<Bytes>,
    },
    Batch(Vec<Mutation>),
    FlushAll,
    SetDeadline {
        key: Bytes,
        expire_at_ms: Option<u64>,
    },
}

/// A `Set` read in place by [`Mutation::decode_set`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetRef<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub expire_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable mutation at byte {at}: {reason}")]
pub struct DecodeError {
    pub at: usize,
    pub reason: &'static str,
}

impl Mutation {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.encoded_len());
        out.push(MUTATION_VERSION);
        self.encode_body(&mut out);
        out
    }

    fn encoded_len(&self) -> usize {
        match self {
            Mutation::Set { key, value, .. } => 1 + 4 + key.len() + 4 + value.len() + 9,
            Mutation::Delete { keys } => 5 + keys.iter().map(|k| 4 + k.len()).sum::<usize>(),
            Mutation::Batch(items) => 5 + items.iter().map(Mutation::encoded_len).sum::<usize>(),
            Mutation::FlushAll => 1,
            Mutation::SetDeadline { key, .. } => 1 + 4 + key.len() + 9,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Mutation::Set {
                key,
                value,
                expire_at_ms,
            } => {
                out.push(TAG_SET);
                put_bytes(out, key);
                put_bytes(out, value);
                put_deadline(out, *expire_at_ms);
            }
            Mutation::Delete { keys } => {
                out.push(TAG_DELETE);
                put_len(out, keys.len());
                for key in keys {
                    put_bytes(out, key);
                }
            }
            Mutation::Batch(items) => {
                out.push(TAG_BATCH);
                put_len(out, items.len());
                for item in items {
                    item.encode_body(out);
                }
            }
            Mutation::FlushAll => out.push(TAG_FLUSH_ALL),
            Mutation::SetDeadline { key, expire_at_ms } => {
                out.push(TAG_SET_DEADLINE);
                put_bytes(out, key);
                put_deadline(out, *expire_at_ms);
            }
        }
    }

    /// The replay fast path: a payload that is exactly one well-formed `Set`,
    /// read in place without allocating. `None` for anything else, which
    /// [`Mutation::decode`] then decodes (or rejects with the reason): the
    /// two agree on every payload this accepts.
    pub fn decode_set(payload: &[u8]) -> Option<SetRef<'_>> {
        let (&version, rest) = payload.split_first()?;
        let (&tag, rest) = rest.split_first()?;
        if version != MUTATION_VERSION || tag != TAG_SET {
            return None;
        }
        let take_len = |buf: &[u8]| -> Option<(usize, usize)> {
            let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
            (buf.len() - 4 >= len).then_some((4, len))
        };
        let (skip, key_len) = take_len(rest)?;
        let (key, rest) = rest[skip..].split_at(key_len);
        let (skip, value_len) = take_len(rest)?;
        let (value, rest) = rest[skip..].split_at(value_len);
        let [flag, at @ ..] = rest else { return None };
        let at = u64::from_le_bytes(<[u8; 8]>::try_from(at).ok()?);
        let expire_at_ms = match flag {
            0 => None,
            1 => Some(at),
            _ => return None,
        };
        Some(SetRef {
            key,
            value,
            expire_at_ms,
        })
    }

    /// Decodes a payload. `payload` is shared so keys and values are slices of
    /// it rather than copies.
    pub fn decode(payload: &Bytes) -> Result<Mutation, DecodeError> {
        let mut r = Reader { buf: payload, at: 0 };
        match r.u8()? {
            MUTATION_VERSION => {}
            _ => return Err(r.error("unsupported mutation version")),
        }
        let m = r.mutation(0)?;
        if r.at != payload.len() {
            return Err(r.error("trailing bytes after mutation"));
        }
        Ok(m)
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("lengths are bounded by max_record_bytes < 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_deadline(out: &mut Vec<u8>, at: Option<u64>) {
    out.push(at.is_some() as u8);
    out.extend_from_slice(&at.unwrap_or(0).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError { at: self.at, reason }
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, DecodeError> {
        if self.buf.len() - self.at < n {
            return Err(self.error("truncated"));
        }
        let range = self.at..self.at + n;
        self.at += n;
        Ok(range)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let r = self.take(1)?;
        Ok(self.buf[r.start])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let r = self.take(4)?;
        Ok(u32::from_le_bytes(self.buf[r].try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let r = self.take(8)?;
        Ok(u64::from_le_bytes(self.buf[r].try_into().expect("8 bytes")))
    }

    fn deadline(&mut self) -> Result<Option<u64>, DecodeError> {
        let has = self.u8()?;
        let at = self.u64()?;
        match has {
            0 => Ok(None),
            1 => Ok(Some(at)),
            _ => Err(self.error("bad deadline flag")),
        }
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        let r = self.take(len)?;
        Ok(self.buf.slice(r))
    }

    /// A count of items each at least `min_item` bytes long, checked against
    /// what is left so that a bad count cannot make us allocate.
    fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.buf.len() - self.at {
            return Err(self.error("count exceeds the bytes left"));
        }
        Ok(n)
    }

    fn mutation(&mut self, depth: usize) -> Result<Mutation, DecodeError> {
        match self.u8()? {
            TAG_SET => {
                let key = self.bytes()?;
                let value = self.bytes()?;
                let expire_at_ms = self.deadline()?;
                Ok(Mutation::Set {
                    key,
                    value,
                    expire_at_ms,
                })
            }
            TAG_DELETE => {
                let n = self.count(4)?;
                let keys = (0..n).map(|_| self.bytes()).collect::<Result<_, _>>()?;
                Ok(Mutation::Delete { keys })
            }
            TAG_BATCH if depth < MAX_BATCH_DEPTH => {
                let n = self.count(1)?;
                let items = (0..n)
                    .map(|_| self.mutation(depth + 1))
                    .collect::<Result<_, _>>()?;
                Ok(Mutation::Batch(items))
            }
            TAG_BATCH => Err(self.error("batch nested too deeply")),
            TAG_FLUSH_ALL => Ok(Mutation::FlushAll),
            TAG_SET_DEADLINE => {
                let key = self.bytes()?;
                let expire_at_ms = self.deadline()?;
                Ok(Mutation::SetDeadline { key, expire_at_ms })
            }
            _ => Err(self.error("unknown mutation tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn samples() -> Vec<Mutation> {
        let set = Mutation::Set {
            key: b("k"),
            value: Bytes::from_static(b"\x00\xffv"),
            expire_at_ms: Some(1_700_000_000_123),
        };
        vec![
            set.clone(),
            Mutation::Set {
                key: Bytes::new(),
                value: Bytes::new(),
                expire_at_ms: None,
            },
            Mutation::Delete {
                keys: vec![b("a"), b("bb")],
            },
            Mutation::Batch(vec![set, Mutation::FlushAll, Mutation::Delete { keys: vec![] }]),
            Mutation::FlushAll,
            Mutation::SetDeadline {
                key: b("k"),
                expire_at_ms: Some(5),
            },
            Mutation::SetDeadline {
                key: b("k"),
                expire_at_ms: None,
            },
        ]
    }

    #[test]
    fn round_trip() {
        for m in samples() {
            let bytes = Bytes::from(m.encode());
            assert_eq!(bytes.len(), 1 + m.encoded_len());
            assert_eq!(Mutation::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_an_error_not_a_panic() {
        for m in samples() {
            let bytes = m.encode();
            for cut in 0..bytes.len() {
                assert!(Mutation::decode(&Bytes::copy_from_slice(&bytes[..cut])).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Mutation::decode(&Bytes::from(longer)).is_err());
        }
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        let mut bytes = vec![MUTATION_VERSION, TAG_DELETE];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = Mutation::decode(&Bytes::from(bytes)).unwrap_err();
        assert_eq!(err.reason, "count exceeds the bytes left");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![MUTATION_VERSION];
        for _ in 0..10 {
            bytes.push(TAG_BATCH);
            bytes.extend_from_slice(&1u32.to_le_bytes());
        }
        bytes.push(TAG_FLUSH_ALL);
        assert!(Mutation::decode(&Bytes::from(bytes)).is_err());
    }

    #[test]
    fn decode_set_agrees_with_decode_on_every_damaged_byte() {
        let set = Mutation::Set {
            key: Bytes::from_static(b"key"),
            value: Bytes::from_static(b"value"),
            expire_at_ms: Some(1234),
        };
        let good = set.encode();
        let fast = Mutation::decode_set(&good).expect("a Set is read in place");
        assert_eq!(
            (fast.key, fast.value, fast.expire_at_ms),
            (&b"key"[..], &b"value"[..], Some(1234))
        );
        let mut cases = vec![good[..good.len() - 1].to_vec(), [&good[..], b"x"].concat()];
        for i in 0..good.len() {
            for byte in [0u8, 1, 2, 5, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = byte;
                cases.push(bad);
            }
        }
        for payload in cases {
            if let Some(fast) = Mutation::decode_set(&payload) {
                let full = Mutation::decode(&Bytes::from(payload.clone()));
                let expected = Mutation::Set {
                    key: Bytes::copy_from_slice(fast.key),
                    value: Bytes::copy_from_slice(fast.value),
                    expire_at_ms: fast.expire_at_ms,
                };
                assert_eq!(full, Ok(expected), "{payload:?}");
            }
        }
        assert_eq!(Mutation::decode_set(&Mutation::FlushAll.encode()), None);
    }
}
