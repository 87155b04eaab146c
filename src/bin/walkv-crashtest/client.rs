//! A small blocking RESP client over `std::net::TcpStream`: the harness needs
//! to know exactly what was sent and what came back, and when a connection
//! was cut, with no retries or reconnects hidden in a library.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A reply longer than this is a broken server, not data to buffer.
const MAX_BULK: usize = 1 << 20;

impl Conn {
    pub fn connect(port: u16, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
        stream.set_nodelay(true)?;
        // Long enough for any fsync; a daemon that stops answering for this
        // long is reported as an unknown outcome, like a cut connection.
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Writes several commands with one `write` (a pipeline).
    pub fn send(&mut self, commands: &[Vec<Vec<u8>>]) -> io::Result<()> {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in args {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out)
    }

    pub fn call(&mut self, args: Vec<Vec<u8>>) -> io::Result<Reply> {
        self.send(&[args])?;
        self.read()
    }

    pub fn read(&mut self) -> io::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1);
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad integer {s:?}")))
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(int(rest)?),
            "$" => match int(rest)? {
                -1 => Reply::Bulk(None),
                n if n < 0 || n as usize > MAX_BULK => return Err(bad("bulk length")),
                n => {
                    let mut buf = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match int(rest)? {
                -1 => Reply::Array(None),
                n if n < 0 || n as usize > MAX_BULK => return Err(bad("array length")),
                n => Reply::Array(Some((0..n).map(|_| self.read()).collect::<io::Result<_>>()?)),
            },
            _ => return Err(bad("reply type")),
        })
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let line = line.strip_suffix("\r\n").ok_or_else(|| bad("line ending"))?;
        if line.is_empty() {
            return Err(bad("empty line"));
        }
        Ok(line.to_string())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed reply: {what}"))
}

/// Builds an argument vector from anything byte-like.
pub fn args<I, T>(items: I) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    items.into_iter().map(|i| i.as_ref().to_vec()).collect()
}
