//! RESP2 framing, hand-written and incremental: requests (arrays of bulk
//! strings) are split into argument spans without copying, and replies are
//! measured (where one ends) without building values. Every function takes a
//! byte slice and never panics: bad input is a [`FrameError`], a short one
//! `Ok(None)` (read more).

use std::ops::Range;

/// Why a frame cannot be read: framing is lost, the connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not RESP where a frame must start or continue.
    #[error("Protocol error: {0}")]
    Protocol(&'static str),
    /// The request is longer than the limit.
    #[error("Protocol error: request larger than {0} bytes")]
    TooLarge(usize),
}

/// Most arguments in one request.
pub const MAX_ARGS: usize = 1 << 20;
/// Longest header line (`*N`, `$N`, a simple string) of a request.
const MAX_LINE: usize = 64 * 1024;

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    memchr::memchr(b'\n', rest).map(|i| from + i)
}

/// Parses a decimal `i64` (an optional `-` and digits) from a header.
fn number(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if neg { -n } else { n })
}

/// Reads the header line starting at `pos` (`<type><text>\r\n`): `(text range,
/// next position)`, `None` if incomplete.
fn header(
    buf: &[u8],
    pos: usize,
    max_line: usize,
) -> Result<Option<(Range<usize>, usize)>, FrameError> {
    let Some(nl) = line_end(buf, pos) else {
        if buf.len().saturating_sub(pos) > max_line {
            return Err(FrameError::Protocol("header line too long"));
        }
        return Ok(None);
    };
    if nl == pos || buf.get(nl - 1) != Some(&b'\r') || nl - 1 < pos + 1 {
        return Err(FrameError::Protocol("expected CRLF"));
    }
    Ok(Some((pos + 1..nl - 1, nl + 1)))
}

/// Parses one request at the start of `buf`: an array of bulk strings. On
/// success `args` holds the argument spans (into `buf`) and the frame's
/// length is returned; `Ok(None)` when more bytes are needed. *O*(arguments).
///
/// # Errors
/// [`FrameError`]: not an array of bulk strings, a bad length, or a frame
/// longer than `max`.
pub fn parse_request(
    buf: &[u8],
    max: usize,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, FrameError> {
    args.clear();
    match buf.first() {
        None => return Ok(None),
        Some(b'*') => {}
        Some(_) => {
            return Err(FrameError::Protocol(
                "expected '*' (inline commands are not supported)",
            ));
        }
    }
    let Some((n, mut pos)) = header(buf, 0, MAX_LINE)? else {
        return Ok(None);
    };
    let n = number(buf.get(n).unwrap_or(&[]))
        .ok_or(FrameError::Protocol("invalid multibulk length"))?;
    if n <= 0 {
        if n < -1 {
            return Err(FrameError::Protocol("invalid multibulk length"));
        }
        // `*0` / `*-1`: an empty request, skipped like redis does.
        return Ok(Some(pos));
    }
    let n = usize::try_from(n).map_err(|_| FrameError::Protocol("invalid multibulk length"))?;
    if n > MAX_ARGS {
        return Err(FrameError::Protocol("invalid multibulk length"));
    }
    for _ in 0..n {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(FrameError::Protocol("expected '$'")),
        }
        let Some((len, next)) = header(buf, pos, MAX_LINE)? else {
            return Ok(None);
        };
        let len = number(buf.get(len).unwrap_or(&[]))
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(FrameError::Protocol("invalid bulk length"))?;
        let end = next
            .checked_add(len)
            .filter(|&e| e <= max)
            .ok_or(FrameError::TooLarge(max))?;
        if buf.len() < end + 2 {
            if next > max {
                return Err(FrameError::TooLarge(max));
            }
            return Ok(None);
        }
        if buf.get(end..end + 2) != Some(b"\r\n") {
            return Err(FrameError::Protocol("bulk string not followed by CRLF"));
        }
        args.push(next..end);
        pos = end + 2;
    }
    if pos > max {
        return Err(FrameError::TooLarge(max));
    }
    Ok(Some(pos))
}

/// The length of the one reply at the start of `buf` (any RESP2 value,
/// arrays nested to any depth, iteratively); `Ok(None)` when incomplete.
///
/// # Errors
/// [`FrameError::Protocol`] for bytes that are not RESP2.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut pos = 0usize;
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let Some(&t) = buf.get(pos) else {
            return Ok(None);
        };
        let Some((text, next)) = header(buf, pos, usize::MAX)? else {
            return Ok(None);
        };
        match t {
            b'+' | b'-' | b':' => pos = next,
            b'$' => {
                let len = number(buf.get(text).unwrap_or(&[]))
                    .ok_or(FrameError::Protocol("invalid bulk length"))?;
                if len < 0 {
                    pos = next;
                    continue;
                }
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| next.checked_add(l))
                    .ok_or(FrameError::Protocol("invalid bulk length"))?;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if buf.get(end..end + 2) != Some(b"\r\n") {
                    return Err(FrameError::Protocol("bulk string not followed by CRLF"));
                }
                pos = end + 2;
            }
            b'*' => {
                let n = number(buf.get(text).unwrap_or(&[]))
                    .ok_or(FrameError::Protocol("invalid multibulk length"))?;
                pos = next;
                if n > 0 {
                    pending = pending
                        .checked_add(n.unsigned_abs())
                        .ok_or(FrameError::Protocol("invalid multibulk length"))?;
                }
            }
            _ => return Err(FrameError::Protocol("unknown reply type")),
        }
    }
    Ok(Some(pos))
}

/// The elements of a complete array reply (`*N` then `N` values) as spans;
/// `None` when `reply` is not an array (an error, `*-1`, ...).
#[must_use]
pub fn array_elements(reply: &[u8]) -> Option<Vec<Range<usize>>> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let (text, mut pos) = header(reply, 0, usize::MAX).ok()??;
    let n = usize::try_from(number(reply.get(text)?)?).ok()?;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let len = reply_len(reply.get(pos..)?).ok()??;
        out.push(pos..pos + len);
        pos += len;
    }
    Some(out)
}

/// The value of an integer reply (`:N`), if it is one.
#[must_use]
pub fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    number(body)
}

/// Appends a bulk string.
pub fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends an array header.
pub fn push_array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A request `args...` as RESP.
#[must_use]
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    push_array(&mut out, args.len());
    for a in args {
        push_bulk(&mut out, a);
    }
    out
}

/// An error reply `-<text>\r\n` (CR/LF in `text` become spaces).
#[must_use]
pub fn error(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(b'-');
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_incremental_and_errors() {
        let mut args = Vec::new();
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
        let first = 31;
        for cut in 0..first {
            assert_eq!(
                parse_request(&req[..cut], 1 << 20, &mut args),
                Ok(None),
                "{cut}"
            );
        }
        assert_eq!(parse_request(req, 1 << 20, &mut args), Ok(Some(first)));
        let got: Vec<&[u8]> = args.iter().map(|r| &req[r.clone()]).collect();
        assert_eq!(got, [&b"SET"[..], b"k", b"hello"]);
        assert_eq!(
            parse_request(&req[first..], 1 << 20, &mut args),
            Ok(Some(14))
        );
        for bad in [
            &b"GET k\r\n"[..],
            b"*x\r\n",
            b"*-2\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$2\r\nabc\r\n",
            b"*1\n",
        ] {
            assert!(
                matches!(
                    parse_request(bad, 1 << 20, &mut args),
                    Err(FrameError::Protocol(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_request(b"*1\r\n$100\r\n", 64, &mut args),
            Err(FrameError::TooLarge(64))
        );
        assert_eq!(parse_request(b"*0\r\n", 64, &mut args), Ok(Some(4)));
    }

    #[test]
    fn replies_are_measured_and_split() {
        let r = b"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n-ERR x\r\n+OK\r\n";
        let len = r.len() - 5;
        for cut in 0..len {
            assert_eq!(reply_len(&r[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(reply_len(r), Ok(Some(len)));
        let e = array_elements(&r[..len]).unwrap();
        let parts: Vec<&[u8]> = e.iter().map(|x| &r[x.clone()]).collect();
        assert_eq!(
            parts,
            [&b"$1\r\na\r\n"[..], b"$-1\r\n", b"*2\r\n:1\r\n-ERR x\r\n"]
        );
        assert_eq!(integer(b":42\r\n"), Some(42));
        assert_eq!(
            reply_len(b"?x\r\n"),
            Err(FrameError::Protocol("unknown reply type"))
        );
        assert_eq!(command(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(error("ERR a\nb"), b"-ERR a b\r\n");
    }
}
