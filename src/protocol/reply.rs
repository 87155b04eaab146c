//! Reply frames, and how each is written in RESP2 or RESP3. RESP3 types that
//! RESP2 lacks fall back the way Redis falls back: a map becomes a flat array,
//! a double a bulk string, a boolean an integer, a null a null bulk (or a null
//! array where Redis sends one).

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a status line; must not contain `\r` or `\n`.
    Simple(&'static str),
    /// `-ERR …`: the text starts with the error code (`ERR`, `WRONGTYPE`, …).
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// A missing value (`GET` of an absent key).
    Null,
    /// A missing array (`EXEC` aborted by `WATCH`): `*-1` in RESP2.
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Boolean(bool),
    /// Text with a format hint (`INFO` in RESP3); a bulk string in RESP2.
    Verbatim(Bytes),
    /// No bytes at all: the reply of a client that asked for none
    /// (`CLIENT REPLY OFF`).
    Nothing,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK")
    }

    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => {
                // A newline inside an error would break the framing.
                let text: Vec<u8> = e
                    .bytes()
                    .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                    .collect();
                line(out, b'-', &text);
            }
            Reply::Integer(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b'$', b),
            Reply::Null if resp3 => out.put_slice(b"_\r\n"),
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => aggregate(out, b'*', items, protocol),
            Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, protocol),
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Reply::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
            Reply::Double(d) => bulk(out, b'$', format_double(*d).as_bytes()),
            Reply::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Boolean(b) => int_line(out, b':', *b as i64),
            Reply::Verbatim(text) if resp3 => {
                int_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(text) => bulk(out, b'$', text),
            Reply::Nothing => {}
        }
    }
}

fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    line(out, prefix, digits.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, prefix: u8, data: &[u8]) {
    int_line(out, prefix, data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, prefix: u8, items: &[Reply], protocol: Protocol) {
    int_line(out, prefix, items.len() as i64);
    for item in items {
        item.encode(protocol, out);
    }
}

/// Doubles as Redis writes them: `inf`, `-inf`, `nan`, else the shortest
/// form that reads back the same.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, p: Protocol) -> String {
        let mut out = BytesMut::new();
        r.encode(p, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3() {
        use Protocol::*;
        assert_eq!(enc(&Reply::ok(), Resp2), "+OK\r\n");
        assert_eq!(
            enc(&Reply::error("ERR bad\r\nthing"), Resp2),
            "-ERR bad  thing\r\n"
        );
        assert_eq!(enc(&Reply::Integer(-3), Resp2), ":-3\r\n");
        assert_eq!(enc(&Reply::bulk("hi"), Resp3), "$2\r\nhi\r\n");
        assert_eq!(enc(&Reply::Null, Resp2), "$-1\r\n");
        assert_eq!(enc(&Reply::Null, Resp3), "_\r\n");
        assert_eq!(enc(&Reply::NullArray, Resp2), "*-1\r\n");
        let map = Reply::Map(vec![(Reply::bulk("proto"), Reply::Integer(3))]);
        assert_eq!(enc(&map, Resp2), "*2\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(enc(&map, Resp3), "%1\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(enc(&Reply::Double(1.5), Resp2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(f64::INFINITY), Resp3), ",inf\r\n");
        assert_eq!(enc(&Reply::Boolean(true), Resp3), "#t\r\n");
        assert_eq!(enc(&Reply::Boolean(false), Resp2), ":0\r\n");
        assert_eq!(enc(&Reply::Set(vec![Reply::Integer(1)]), Resp3), "~1\r\n:1\r\n");
        assert_eq!(
            enc(&Reply::Verbatim(Bytes::from_static(b"a")), Resp3),
            "=5\r\ntxt:a\r\n"
        );
        assert_eq!(enc(&Reply::Nothing, Resp3), "");
    }
}
