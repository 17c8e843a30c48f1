//! memcached ASCII framing, hand-written and incremental: a request is one
//! command line (plus a data block for storage commands), a reply is measured
//! by the shape the request expects. Nothing copies the data; nothing panics.

use std::ops::Range;

/// Longest command line (memcached's own limit is 2048 for a key line).
pub const MAX_LINE: usize = 8 * 1024;
/// Longest key (memcached's `KEY_MAX_LENGTH`).
pub const MAX_KEY: usize = 250;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get` / `gets` with one or more keys.
    Get {
        /// `gets` (with CAS).
        cas: bool,
        /// The keys' spans.
        keys: Vec<Range<usize>>,
    },
    /// A single-key command forwarded as is (`set`, `add`, `replace`,
    /// `append`, `prepend`, `cas`, `incr`, `decr`, `delete`, `touch`).
    Keyed {
        /// The key's span.
        key: Range<usize>,
        /// `noreply` was given: the proxy sends it without, and drops the reply.
        noreply: bool,
        /// The span of ` noreply` in the line, to cut out.
        noreply_span: Option<Range<usize>>,
    },
    /// `version`.
    Version,
    /// `quit`.
    Quit,
    /// A line the proxy answers with this error (and keeps the connection).
    Refused(&'static str),
}

/// A parsed request: the command and the request's length in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What it asks.
    pub command: Command,
    /// The command name's span (lower-case it for stats).
    pub name: Range<usize>,
    /// Bytes the request takes (line and data block).
    pub len: usize,
}

/// Why a request cannot be framed: the client gets the error and the
/// connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line without its end within [`MAX_LINE`].
    #[error("CLIENT_ERROR line too long")]
    LineTooLong,
    /// A data block not followed by `\r\n`.
    #[error("CLIENT_ERROR bad data chunk")]
    BadDataChunk,
    /// A data block above the request limit.
    #[error("SERVER_ERROR object too large for cache")]
    TooLarge,
}

fn tokens(line: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let start = i;
        while i < line.len() && line.get(i) != Some(&b' ') {
            i += 1;
        }
        if i > start {
            out.push(start..i);
        }
    }
    out
}

fn num<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";

/// Parses one request at the start of `buf`; `Ok(None)` when more bytes are
/// needed. `max` bounds the data block.
///
/// # Errors
/// [`FrameError`] when framing is lost.
pub fn parse_request(buf: &[u8], max: usize) -> Result<Option<Request>, FrameError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Err(FrameError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    if nl > MAX_LINE {
        return Err(FrameError::LineTooLong);
    }
    let line_len = if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
        nl - 1
    } else {
        nl
    };
    let line = buf.get(..line_len).unwrap_or(&[]);
    let toks = tokens(line);
    let after_line = nl + 1;
    let tok = |i: usize| toks.get(i).and_then(|r| line.get(r.clone())).unwrap_or(&[]);
    let name = toks.first().cloned().unwrap_or(0..0);
    let done = |command| {
        Ok(Some(Request {
            command,
            name: name.clone(),
            len: after_line,
        }))
    };
    let key_ok = |i: usize| {
        let k = tok(i);
        !k.is_empty() && k.len() <= MAX_KEY
    };
    let noreply_at = |i: usize| -> (bool, Option<Range<usize>>) {
        match toks.get(i) {
            Some(r) if tok(i) == b"noreply" && i + 1 == toks.len() => {
                // Cut from the end of the previous token.
                let from = toks.get(i - 1).map_or(r.start, |p| p.end);
                (true, Some(from..r.end))
            }
            _ => (false, None),
        }
    };
    let cmd = tok(0);
    match cmd {
        b"get" | b"gets" => {
            if toks.len() < 2 {
                return done(Command::Refused("ERROR"));
            }
            if !(1..toks.len()).all(key_ok) {
                return done(Command::Refused(BAD_FORMAT));
            }
            done(Command::Get {
                cas: cmd == b"gets",
                keys: toks.get(1..).unwrap_or(&[]).to_vec(),
            })
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            let base = if cmd == b"cas" { 6 } else { 5 };
            if toks.len() != base && toks.len() != base + 1 {
                return done(Command::Refused("ERROR"));
            }
            let (noreply, span) = noreply_at(base);
            if toks.len() == base + 1 && !noreply {
                return done(Command::Refused(BAD_FORMAT));
            }
            let bytes: Option<usize> = num(tok(4));
            let valid = key_ok(1)
                && num::<u32>(tok(2)).is_some()
                && num::<i64>(tok(3)).is_some()
                && (cmd != b"cas" || num::<u64>(tok(5)).is_some());
            let Some(bytes) = bytes.filter(|_| valid) else {
                return done(Command::Refused(BAD_FORMAT));
            };
            if bytes > max {
                return Err(FrameError::TooLarge);
            }
            let end = after_line + bytes;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if buf.get(end..end + 2) != Some(b"\r\n") {
                return Err(FrameError::BadDataChunk);
            }
            Ok(Some(Request {
                command: Command::Keyed {
                    key: toks.get(1).cloned().unwrap_or(0..0),
                    noreply,
                    noreply_span: span,
                },
                name,
                len: end + 2,
            }))
        }
        b"incr" | b"decr" | b"touch" | b"delete" => {
            let (min, args_ok) = match cmd {
                b"delete" => (2, true),
                b"touch" => (3, num::<i64>(tok(2)).is_some()),
                _ => (3, num::<u64>(tok(2)).is_some()),
            };
            let (noreply, span) = noreply_at(toks.len().saturating_sub(1).max(min));
            let expected = min + usize::from(noreply);
            if toks.len() != expected || !key_ok(1) || !args_ok {
                return done(Command::Refused(if toks.len() < min {
                    "ERROR"
                } else {
                    BAD_FORMAT
                }));
            }
            done(Command::Keyed {
                key: toks.get(1).cloned().unwrap_or(0..0),
                noreply,
                noreply_span: span,
            })
        }
        b"version" if toks.len() == 1 => done(Command::Version),
        b"quit" if toks.len() == 1 => done(Command::Quit),
        _ => done(Command::Refused("ERROR")),
    }
}

/// What reply a forwarded request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyShape {
    /// `VALUE ...` blocks up to `END` (or one error line).
    Values,
    /// One line.
    Line,
}

/// The length of the one reply of `shape` at the start of `buf`; `Ok(None)`
/// when incomplete.
///
/// # Errors
/// A `VALUE` line that cannot be read, or a data block without its `\r\n`.
pub fn reply_len(buf: &[u8], shape: ReplyShape) -> Result<Option<usize>, &'static str> {
    let mut pos = 0;
    loop {
        let Some(nl) = buf.get(pos..).and_then(|b| memchr::memchr(b'\n', b)) else {
            return Ok(None);
        };
        let next = pos + nl + 1;
        let line = buf.get(pos..pos + nl).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if shape == ReplyShape::Line || !line.starts_with(b"VALUE ") {
            return Ok(Some(next));
        }
        let toks = tokens(line);
        let bytes: usize = toks
            .get(3)
            .and_then(|r| line.get(r.clone()))
            .and_then(num)
            .ok_or("bad VALUE line")?;
        let end = next.checked_add(bytes).ok_or("bad VALUE line")?;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if buf.get(end..end + 2) != Some(b"\r\n") {
            return Err("VALUE data not followed by CRLF");
        }
        pos = end + 2;
        if line.is_empty() {
            return Ok(Some(pos));
        }
    }
}

/// One `VALUE` block of a `get` reply: the key's span and the block's span
/// (its line, data and `\r\n`).
pub type Block = (Range<usize>, Range<usize>);

/// The `VALUE` blocks of a complete `get` reply, and whether it ended with
/// `END` (else it was an error line).
#[must_use]
pub fn value_blocks(reply: &[u8]) -> (Vec<Block>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(nl) = reply.get(pos..).and_then(|b| memchr::memchr(b'\n', b)) {
        let next = pos + nl + 1;
        let line = reply.get(pos..pos + nl).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.starts_with(b"VALUE ") {
            return (out, line == b"END");
        }
        let toks = tokens(line);
        let (Some(k), Some(bytes)) = (
            toks.get(1),
            toks.get(3)
                .and_then(|r| line.get(r.clone()))
                .and_then(num::<usize>),
        ) else {
            return (out, false);
        };
        let end = next + bytes + 2;
        out.push((pos + k.start..pos + k.end, pos..end));
        pos = end;
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let r = parse_request(b"get a bb ccc\r\nx", 1024).unwrap().unwrap();
        assert_eq!(r.len, 14);
        assert_eq!(
            r.command,
            Command::Get {
                cas: false,
                keys: vec![4..5, 6..8, 9..12]
            }
        );
        let set = b"set k 1 0 5 noreply\r\nhello\r\n";
        for cut in 0..set.len() {
            assert_eq!(parse_request(&set[..cut], 1024), Ok(None), "{cut}");
        }
        let r = parse_request(set, 1024).unwrap().unwrap();
        assert_eq!(r.len, set.len());
        assert_eq!(
            r.command,
            Command::Keyed {
                key: 4..5,
                noreply: true,
                noreply_span: Some(11..19)
            }
        );
        assert_eq!(
            parse_request(b"set k 1 0 5\r\nhelloXX", 1024),
            Err(FrameError::BadDataChunk)
        );
        assert_eq!(
            parse_request(b"set k 1 0 5000\r\n", 1024),
            Err(FrameError::TooLarge)
        );
        assert_eq!(
            parse_request(&[b'a'; MAX_LINE + 1], 1024),
            Err(FrameError::LineTooLong)
        );
        for (line, want) in [
            (&b"bogus\r\n"[..], "ERROR"),
            (b"get\r\n", "ERROR"),
            (b"set k x 0 5\r\n", BAD_FORMAT),
            (b"incr k abc\r\n", BAD_FORMAT),
            (b"delete\r\n", "ERROR"),
        ] {
            let r = parse_request(line, 1024).unwrap().unwrap();
            assert_eq!(r.command, Command::Refused(want), "{line:?}");
            assert_eq!(r.len, line.len());
        }
        let r = parse_request(b"delete k noreply\r\n", 1024)
            .unwrap()
            .unwrap();
        assert!(matches!(r.command, Command::Keyed { noreply: true, .. }));
        let r = parse_request(b"incr k 5\r\n", 1024).unwrap().unwrap();
        assert!(matches!(r.command, Command::Keyed { noreply: false, .. }));
        assert_eq!(
            parse_request(b"version\r\n", 1024)
                .unwrap()
                .unwrap()
                .command,
            Command::Version
        );
    }

    #[test]
    fn replies() {
        let r = b"VALUE a 0 1\r\nx\r\nVALUE bb 3 2 9\r\nyz\r\nEND\r\n";
        for cut in 0..r.len() {
            assert_eq!(reply_len(&r[..cut], ReplyShape::Values), Ok(None), "{cut}");
        }
        assert_eq!(reply_len(r, ReplyShape::Values), Ok(Some(r.len())));
        let (blocks, end) = value_blocks(r);
        assert!(end);
        assert_eq!(&r[blocks[1].0.clone()], b"bb");
        assert_eq!(&r[blocks[1].1.clone()], b"VALUE bb 3 2 9\r\nyz\r\n");
        assert_eq!(
            reply_len(b"SERVER_ERROR x\r\n", ReplyShape::Values),
            Ok(Some(16))
        );
        assert_eq!(reply_len(b"STORED\r\nEND", ReplyShape::Line), Ok(Some(8)));
        assert!(reply_len(b"VALUE a 0 1\r\nxyz", ReplyShape::Values).is_err());
    }
}
