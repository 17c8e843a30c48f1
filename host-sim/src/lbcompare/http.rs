//! Just enough HTTP/1.1 for the experiment's backends and load client: a
//! message head (start line and headers) and a body by `Content-Length` or
//! chunked encoding, every read bounded. Bad input is an `io::Error`
//! (`InvalidData` for a malformed message), never a panic; fuzzed by
//! `fuzz/fuzz_targets/lbcompare_http.rs`.

use std::io::{self, BufRead, Read};

/// Longest line of a head, bytes.
pub const MAX_LINE: u64 = 8 * 1024;
/// Most header lines in a head.
pub const MAX_HEADERS: usize = 100;
/// Largest body read, bytes.
pub const MAX_BODY: u64 = 1 << 20;

/// A message head: the start line and the headers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET /path HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub start: String,
    /// `(name, value)`, the value trimmed.
    pub headers: Vec<(String, String)>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// One line without its `\r\n`; `None` at end of stream before any byte.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if n as u64 >= MAX_LINE {
            bad("line too long")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended mid-line")
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| bad("line is not UTF-8"))
}

/// Reads a head; `Ok(None)` when the stream ends cleanly before it starts.
///
/// # Errors
/// I/O errors, a line over 8 KiB, more than 100 headers, a header without `:`.
pub fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let Some(start) = read_line(r)? else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended in head"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header without ':'"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Some(Head { start, headers }))
}

impl Head {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status of a response head (`HTTP/1.1 200 OK` -> 200).
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start.split_ascii_whitespace();
        parts
            .next()
            .filter(|v| v.starts_with("HTTP/"))
            .and_then(|_| parts.next())
            .and_then(|s| s.parse().ok())
    }

    /// The request target of a request head (`GET /k/1 HTTP/1.1` -> `/k/1`).
    pub fn target(&self) -> Option<&str> {
        self.start.split_ascii_whitespace().nth(1)
    }

    /// The connection ends after this message: `Connection: close`, or
    /// HTTP/1.0 without `keep-alive`.
    pub fn closes(&self) -> bool {
        let conn = self.header("connection").unwrap_or("");
        let has = |t: &str| conn.split(',').any(|c| c.trim().eq_ignore_ascii_case(t));
        if self.start.contains("HTTP/1.0") {
            !has("keep-alive")
        } else {
            has("close")
        }
    }

    /// Reads (and returns) the body that follows this head: chunked, by
    /// `Content-Length`, or none. `until_close` says whether a response
    /// without either runs to the end of the stream (requests have no body then).
    ///
    /// # Errors
    /// I/O errors, a bad length or chunk size, a body over 1 MiB.
    pub fn read_body<R: BufRead>(&self, r: &mut R, until_close: bool) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        if self
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let line = read_line(r)?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "in chunks"))?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while read_line(r)?.is_some_and(|l| !l.is_empty()) {}
                    return Ok(body);
                }
                if (body.len() as u64).saturating_add(size) > MAX_BODY {
                    return Err(bad("body too large"));
                }
                r.by_ref().take(size).read_to_end(&mut body)?;
                if read_line(r)?.is_none_or(|l| !l.is_empty()) {
                    return Err(bad("chunk not followed by CRLF"));
                }
            }
        }
        if let Some(len) = self.header("content-length") {
            let len: u64 = len.parse().map_err(|_| bad("bad Content-Length"))?;
            if len > MAX_BODY {
                return Err(bad("body too large"));
            }
            r.by_ref().take(len).read_to_end(&mut body)?;
            if body.len() as u64 != len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
            }
        } else if until_close {
            r.by_ref().take(MAX_BODY).read_to_end(&mut body)?;
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_heads_and_bodies() {
        let text = b"HTTP/1.1 200 OK\r\nX-Backend: ok-0\r\nContent-Length: 5\r\n\r\nok-0\nHTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        let mut r = &text[..];
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(h.status(), Some(200));
        assert_eq!(h.header("x-backend"), Some("ok-0"));
        assert!(!h.closes());
        assert_eq!(h.read_body(&mut r, true).unwrap(), b"ok-0\n");
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(h.status(), Some(500));
        assert!(h.closes());
        assert_eq!(h.read_body(&mut r, true).unwrap(), b"abcde");
        assert_eq!(read_head(&mut r).unwrap(), None);
    }

    #[test]
    fn refuses_bad_input() {
        for text in [
            &b"GET / HTTP/1.1\r\nno colon\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"GET / HTTP/1.1",
        ] {
            let mut r = text;
            assert!(read_head(&mut r).is_err(), "{text:?}");
        }
        let long = vec![b'a'; 9000];
        assert!(read_head(&mut &long[..]).is_err());
        let mut r = &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..];
        let h = read_head(&mut r).unwrap().unwrap();
        assert!(h.read_body(&mut r, false).is_err());
        // A chunk size near u64::MAX is refused, not added up.
        let mut r =
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n"
                [..];
        let h = read_head(&mut r).unwrap().unwrap();
        assert!(h.read_body(&mut r, false).is_err());
        let mut r = &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..];
        let h = read_head(&mut r).unwrap().unwrap();
        assert!(h.read_body(&mut r, false).is_err());
        assert_eq!(
            read_head(&mut &b"GET /k/1 HTTP/1.1\r\n\r\n"[..])
                .unwrap()
                .unwrap()
                .target(),
            Some("/k/1")
        );
    }
}
