//! Decoding requests from a connection's read buffer.
//!
//! A request is either a RESP array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or an inline line (`GET k\r\n`, or just `\n`); the first byte decides, so
//! both can be mixed on one connection. "Not enough bytes yet" is `Ok(None)`,
//! not an error. Every limit is checked against the *announced* size, before
//! the bytes are waited for or a buffer is reserved, so a header announcing
//! 4 GB costs nothing. A [`ProtocolError`] means the stream can no longer be
//! framed: reply with it and close the connection, as Redis does.

use bytes::{Bytes, BytesMut};

use super::inline::split_args;

/// Size caps; Redis's defaults from [`Limits::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (`proto-max-bulk-len`, 512 MB).
    pub max_bulk_bytes: usize,
    /// Most arguments in one request (Redis allows up to `INT_MAX` but
    /// allocates lazily; here it is a hard cap).
    pub max_args: usize,
    /// Longest inline line, and longest `*`/`$` header line (64 KiB).
    pub max_inline_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_bytes: 512 << 20,
            max_args: 1 << 20,
            max_inline_bytes: 64 << 10,
        }
    }
}

impl Limits {
    /// What a client that has not authenticated may send, as Redis limits it:
    /// enough for `AUTH` and `HELLO`, little else.
    pub fn unauthenticated() -> Limits {
        Limits {
            max_bulk_bytes: 16 << 10,
            max_args: 10,
            max_inline_bytes: 64 << 10,
        }
    }
}

/// The stream cannot be framed any more. The texts are Redis's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Takes the next non-empty request off the front of `buf`: its arguments,
/// sharing `buf`'s memory where no unescaping was needed. Empty requests
/// (blank lines, `*0`, `*-1`) are consumed and skipped, as Redis does.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let parsed = if buf[0] == b'*' {
            parse_multibulk(buf, limits)?
        } else {
            parse_inline(buf, limits)?
        };
        match parsed {
            None => return Ok(None),
            Some(args) if args.is_empty() => continue,
            Some(args) => return Ok(Some(args)),
        }
    }
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&c| c == b'\n') else {
        if buf.len() > limits.max_inline_bytes {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(None);
    };
    if newline > limits.max_inline_bytes {
        return Err(ProtocolError::TooBigInline);
    }
    let line = buf.split_to(newline + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_args(line).map(Some).ok_or(ProtocolError::UnbalancedQuotes)
}

/// Reads a `<prefix><integer>\r\n` header at `at`: the integer and where the
/// line ends, or `None` if the line is not complete yet.
fn header_line<'a>(
    buf: &'a [u8],
    at: usize,
    limits: &Limits,
    too_big: ProtocolError,
) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = &buf[at..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end > limits.max_inline_bytes => Err(too_big),
        Some(end) => Ok(Some((&rest[1..end], at + end + 2))),
        None if rest.len() > limits.max_inline_bytes => Err(too_big),
        None => Ok(None),
    }
}

fn parse_int(digits: &[u8]) -> Option<i64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some((count, mut at)) = header_line(buf, 0, limits, ProtocolError::TooBigMultibulkCount)? else {
        return Ok(None);
    };
    let count = parse_int(count).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count > limits.max_args as i64 {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    if count <= 0 {
        let _ = buf.split_to(at);
        return Ok(Some(Vec::new()));
    }
    // Where each argument lies; the bytes are taken only once all are here.
    let mut ranges = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        if at >= buf.len() {
            return Ok(None);
        }
        if buf[at] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[at]));
        }
        let Some((len, data)) = header_line(buf, at, limits, ProtocolError::TooBigBulkCount)? else {
            return Ok(None);
        };
        let len = parse_int(len).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len > limits.max_bulk_bytes as i64 {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let end = data + len as usize;
        // Redis skips the two bytes after the data without checking them.
        if end + 2 > buf.len() {
            return Ok(None);
        }
        ranges.push(data..end);
        at = end + 2;
    }
    let frame = buf.split_to(at).freeze();
    Ok(Some(ranges.into_iter().map(|r| frame.slice(r)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Vec<String>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = parse_request(&mut buf, &Limits::default())? {
            out.push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resp_and_inline_mix_on_one_stream() {
        let got =
            all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET k v\r\n\r\nPING\n*0\r\n*-1\r\nECHO \"a b\"\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                words(&["GET", "k"]),
                words(&["SET", "k", "v"]),
                words(&["PING"]),
                words(&["ECHO", "a b"])
            ]
        );
    }

    #[test]
    fn binary_safe_bulks() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$4\r\n\r\n\x00\xff\r\n"[..]);
        let args = parse_request(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(args[1], &b"\r\n\x00\xff"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_request_split_at_every_byte_decodes_the_same() {
        let stream: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nGET k\r\n*1\r\n$4\r\nPING\r\n";
        let expected = all(stream).unwrap();
        for cut in 0..stream.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(part);
                while let Some(args) = parse_request(&mut buf, &Limits::default()).unwrap() {
                    got.push(
                        args.iter()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>(),
                    );
                }
            }
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn errors_use_redis_words() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*2\r\n$3\r\nGET\r\n$-5\r\n", ProtocolError::InvalidBulkLength),
            (b"*2\r\n$3\r\nGET\r\nX3\r\n", ProtocolError::ExpectedDollar(b'X')),
            (b"*9999999999\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*2147483647\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*a\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n$x\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$4294967296\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$536870913\r\n", ProtocolError::InvalidBulkLength),
            (b"SET \"unbal x\r\n", ProtocolError::UnbalancedQuotes),
        ];
        for (input, err) in cases {
            assert_eq!(
                all(input).unwrap_err(),
                *err,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            ProtocolError::ExpectedDollar(b'X').to_string(),
            "Protocol error: expected '$', got 'X'"
        );
    }

    #[test]
    fn oversized_lines_are_refused_before_buffering_more() {
        let long = vec![b'x'; (64 << 10) + 1];
        assert_eq!(all(&long).unwrap_err(), ProtocolError::TooBigInline);
        let mut header = b"*".to_vec();
        header.extend(vec![b'1'; (64 << 10) + 1]);
        assert_eq!(all(&header).unwrap_err(), ProtocolError::TooBigMultibulkCount);
        // Just under the cap, an unterminated line is simply incomplete.
        assert_eq!(all(&long[..1000]).unwrap(), Vec::<Vec<String>>::new());
    }

    #[test]
    fn unauthenticated_clients_get_small_limits() {
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        let err = parse_request(&mut buf, &Limits::unauthenticated()).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidMultibulkLength);
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        let err = parse_request(&mut buf, &Limits::unauthenticated()).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidBulkLength);
    }
}
