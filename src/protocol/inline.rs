//! Splitting an inline command line into arguments, as Redis's
//! `sdssplitargs` does: words separated by whitespace; `"double quotes"`
//! with `\n \r \t \b \a \\ \" \xHH` escapes (any other escaped character
//! stands for itself); `'single quotes'` where only `\'` is an escape; a
//! closing quote must be followed by whitespace or the end of the line.

use bytes::Bytes;

/// The words of `line`, or `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let (arg, next) = match line[i] {
            b'"' => double_quoted(line, i + 1)?,
            b'\'' => single_quoted(line, i + 1)?,
            _ => {
                let end = line[i..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace())
                    .map_or(line.len(), |n| i + n);
                (line[i..end].to_vec(), end)
            }
        };
        args.push(Bytes::from(arg));
        i = next;
    }
}

/// After a closing quote, the next byte must end the word.
fn closes_word(line: &[u8], after: usize) -> bool {
    after == line.len() || line[after].is_ascii_whitespace()
}

fn double_quoted(line: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    while i < line.len() {
        match line[i] {
            b'\\' if i + 3 < line.len() && line[i + 1] == b'x' => {
                match (hex(line[i + 2]), hex(line[i + 3])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 4;
                    }
                    _ => {
                        out.push(b'x');
                        i += 2;
                    }
                }
            }
            b'\\' if i + 1 < line.len() => {
                out.push(match line[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            b'"' => return closes_word(line, i + 1).then_some((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

fn single_quoted(line: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    while i < line.len() {
        match line[i] {
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'\'' => return closes_word(line, i + 1).then_some((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(s).map(|v| v.into_iter().map(|b| b.to_vec()).collect())
    }

    #[test]
    fn words_and_whitespace() {
        assert_eq!(
            split(b"  SET  k\tv "),
            Some(vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()])
        );
        assert_eq!(split(b""), Some(vec![]));
        assert_eq!(split(b"   "), Some(vec![]));
    }

    #[test]
    fn quotes_and_escapes_as_redis() {
        assert_eq!(split(br#""a b" x"#), Some(vec![b"a b".to_vec(), b"x".to_vec()]));
        assert_eq!(split(br#""\x41\n\q""#), Some(vec![b"A\nq".to_vec()]));
        assert_eq!(split(br#""\xZZ""#), Some(vec![b"xZZ".to_vec()]));
        assert_eq!(split(br"'a\'b'"), Some(vec![b"a'b".to_vec()]));
        assert_eq!(split(br"'a\nb'"), Some(vec![b"a\\nb".to_vec()]));
        assert_eq!(split(br#""""#), Some(vec![b"".to_vec()]));
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for bad in [&br#""unbal x"#[..], br#""a"b"#, br"'x", br"'a'b", br#""a\""#] {
            assert_eq!(split(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
