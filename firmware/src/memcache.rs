//! memcached's UDP protocol, as far as a balancer needs it: the 8-byte frame
//! header and the first line of a request (which command, which keys).
//!
//! Every datagram starts with a frame header of four big-endian `u16`s:
//! request id, sequence number, datagram count, reserved (0); the ASCII
//! request or reply follows. memcached takes single-datagram requests only
//! (sequence 0 of 1) and may answer with several datagrams (sequence `0..n`
//! of `n`, each up to 1,400 bytes of reply), all with the request's id.
//!
//! Requests the balancer routes, by their first line:
//!
//! ```text
//! get <key>+ \r\n            ; one server per key: split per server
//! gets <key>+ \r\n
//! set <key> <flags> <exptime> <bytes> [noreply] \r\n <data> \r\n
//! delete <key> [noreply] \r\n
//! ```
//!
//! A key is 1 to [`MAX_KEY`] bytes without control characters or spaces
//! (memcached's rule). Nothing here panics or allocates; every malformed input
//! is a [`RequestError`] that the balancer answers with memcached's own error
//! reply ([`RequestError::reply`]).

use core::fmt;

/// The frame header's length.
pub const HEADER_LEN: usize = 8;
/// The longest key memcached accepts.
pub const MAX_KEY: usize = 250;
/// The most reply bytes memcached puts in one datagram (after the header).
pub const MAX_DATAGRAM_PAYLOAD: usize = 1400;
/// The largest datagram: header and payload.
pub const MAX_DATAGRAM: usize = HEADER_LEN + MAX_DATAGRAM_PAYLOAD;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct FrameHeader {
    /// Chosen by the client; echoed in every reply datagram.
    pub request_id: u16,
    /// This datagram's position, from 0.
    pub sequence: u16,
    /// Datagrams in the message.
    pub total: u16,
    /// 0.
    pub reserved: u16,
}

impl FrameHeader {
    /// A single-datagram message's header.
    #[must_use]
    pub const fn single(request_id: u16) -> Self {
        Self {
            request_id,
            sequence: 0,
            total: 1,
            reserved: 0,
        }
    }

    /// Splits a datagram into its header and payload.
    ///
    /// # Errors
    /// [`FrameError::Short`] for fewer than 8 bytes.
    pub fn parse(datagram: &[u8]) -> Result<(Self, &[u8]), FrameError> {
        let (Some(h), Some(rest)) = (datagram.get(..HEADER_LEN), datagram.get(HEADER_LEN..)) else {
            return Err(FrameError::Short);
        };
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Ok((
            Self {
                request_id: word(0),
                sequence: word(2),
                total: word(4),
                reserved: word(6),
            },
            rest,
        ))
    }

    /// The header's 8 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [a, b] = self.request_id.to_be_bytes();
        let [c, d] = self.sequence.to_be_bytes();
        let [e, f] = self.total.to_be_bytes();
        let [g, h] = self.reserved.to_be_bytes();
        [a, b, c, d, e, f, g, h]
    }
}

/// A datagram too short for a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum FrameError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short,
}

/// The commands the balancer routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Verb {
    /// `get`.
    Get,
    /// `gets`.
    Gets,
    /// `set`.
    Set,
    /// `delete`.
    Delete,
}

impl Verb {
    /// The command as written on the wire.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Gets => "gets",
            Verb::Set => "set",
            Verb::Delete => "delete",
        }
    }
}

/// A request's first line, parsed: its command and its keys (one for `set`
/// and `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The command.
    pub verb: Verb,
    /// The keys, separated by spaces (iterate with [`Request::keys`]).
    keys: &'a [u8],
}

/// Why a request is not routed. The balancer answers the client with
/// [`reply`](Self::reply) and forwards nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum RequestError {
    /// The datagram is not one whole request (sequence 0 of 1).
    MultiPacket,
    /// No `\r\n` ends the first line.
    NoLineEnd,
    /// A command this balancer does not route (memcached's `ERROR`).
    UnknownCommand,
    /// No key, too many keys for the verb, a key over [`MAX_KEY`] bytes or with
    /// control characters, or a malformed `set` line.
    BadFormat,
}

impl RequestError {
    /// memcached's reply for it.
    #[must_use]
    pub const fn reply(self) -> &'static [u8] {
        match self {
            RequestError::MultiPacket => b"SERVER_ERROR multi-packet request not supported\r\n",
            RequestError::NoLineEnd | RequestError::BadFormat => {
                b"CLIENT_ERROR bad command line format\r\n"
            }
            RequestError::UnknownCommand => b"ERROR\r\n",
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::MultiPacket => "multi-packet request",
            RequestError::NoLineEnd => "no CR LF after the command line",
            RequestError::UnknownCommand => "unknown command",
            RequestError::BadFormat => "bad command line format",
        })
    }
}

impl core::error::Error for RequestError {}

/// Whether `key` is a memcached key: 1 to [`MAX_KEY`] bytes, none of them a
/// control character or a space.
#[must_use]
pub fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.iter().all(|&b| b > b' ' && b != 0x7F)
}

/// The tokens of a line, split on spaces.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

fn is_number(t: &[u8]) -> bool {
    !t.is_empty() && t.len() <= 20 && t.iter().all(u8::is_ascii_digit)
}

impl<'a> Request<'a> {
    /// Parses a request payload (after the frame header). *O*(first line).
    ///
    /// # Errors
    /// [`RequestError`].
    pub fn parse(payload: &'a [u8]) -> Result<Self, RequestError> {
        let end = payload
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(RequestError::NoLineEnd)?;
        let line = payload.get(..end).unwrap_or(&[]);
        let mut t = tokens(line);
        let verb = match t.next() {
            Some(b"get") => Verb::Get,
            Some(b"gets") => Verb::Gets,
            Some(b"set") => Verb::Set,
            Some(b"delete") => Verb::Delete,
            _ => return Err(RequestError::UnknownCommand),
        };
        let verb_len = verb.name().len();
        let rest = line.get(verb_len..).unwrap_or(&[]);
        let keys_end = match verb {
            Verb::Get | Verb::Gets => rest.len(),
            // One key, then the command's other fields.
            Verb::Set | Verb::Delete => {
                let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
                start
                    + rest[start..]
                        .iter()
                        .position(|&b| b == b' ')
                        .unwrap_or(rest.len() - start)
            }
        };
        let keys = rest.get(..keys_end).unwrap_or(&[]);
        let after = rest.get(keys_end..).unwrap_or(&[]);
        let n = tokens(keys).count();
        if n == 0 || !tokens(keys).all(valid_key) {
            return Err(RequestError::BadFormat);
        }
        let fields: heapless::Vec<&[u8], 6> = {
            let mut v = heapless::Vec::new();
            for f in tokens(after) {
                if v.push(f).is_err() {
                    return Err(RequestError::BadFormat);
                }
            }
            v
        };
        let ok = match verb {
            Verb::Get | Verb::Gets => true,
            Verb::Set => {
                (fields.len() == 3 || (fields.len() == 4 && fields[3] == b"noreply"))
                    && fields[..3].iter().all(|f| is_number(f))
            }
            Verb::Delete => fields.is_empty() || (fields.len() == 1 && fields[0] == b"noreply"),
        };
        if !ok {
            return Err(RequestError::BadFormat);
        }
        Ok(Self { verb, keys })
    }

    /// The keys, in request order.
    pub fn keys(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        tokens(self.keys)
    }

    /// Whether the request carries more than one key.
    #[must_use]
    pub fn multi_key(&self) -> bool {
        self.keys().nth(1).is_some()
    }

    /// Whether the client asked for no reply (`noreply` on `set` / `delete`).
    #[must_use]
    pub fn noreply(payload: &[u8]) -> bool {
        let end = payload
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(payload.len());
        tokens(payload.get(..end).unwrap_or(&[])).last() == Some(b"noreply")
    }
}

/// Where the `VALUE` lines of a `get` reply end: the payload without its
/// trailing `END\r\n`, or `None` if it does not end so (an error reply, or a
/// reply cut across datagrams).
#[must_use]
pub fn values_of(reply: &[u8]) -> Option<&[u8]> {
    reply.strip_suffix(b"END\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_big_endian() {
        let h = FrameHeader {
            request_id: 0x1234,
            sequence: 2,
            total: 3,
            reserved: 0,
        };
        let mut d = h.to_bytes().to_vec();
        assert_eq!(d, [0x12, 0x34, 0, 2, 0, 3, 0, 0]);
        d.extend_from_slice(b"get a\r\n");
        assert_eq!(FrameHeader::parse(&d), Ok((h, &b"get a\r\n"[..])));
        assert_eq!(FrameHeader::parse(&d[..7]), Err(FrameError::Short));
        assert_eq!(FrameHeader::parse(&d[..8]).unwrap().1, b"");
    }

    fn keys(p: &[u8]) -> Result<(Verb, Vec<Vec<u8>>), RequestError> {
        Request::parse(p).map(|r| (r.verb, r.keys().map(<[u8]>::to_vec).collect()))
    }

    #[test]
    fn requests_parse_by_their_first_line() {
        let k = |s: &str| s.as_bytes().to_vec();
        assert_eq!(keys(b"get a\r\n"), Ok((Verb::Get, vec![k("a")])));
        assert_eq!(
            keys(b"gets  a b   c\r\n"),
            Ok((Verb::Gets, vec![k("a"), k("b"), k("c")]))
        );
        assert_eq!(
            keys(b"set k1 0 0 5\r\nhello\r\n"),
            Ok((Verb::Set, vec![k("k1")]))
        );
        assert_eq!(
            keys(b"set k1 7 60 5 noreply\r\nhello\r\n"),
            Ok((Verb::Set, vec![k("k1")]))
        );
        assert_eq!(keys(b"delete k9\r\n"), Ok((Verb::Delete, vec![k("k9")])));
        assert_eq!(
            keys(b"delete k9 noreply\r\n"),
            Ok((Verb::Delete, vec![k("k9")]))
        );
        assert!(Request::parse(b"get a b\r\n").unwrap().multi_key());
        assert!(!Request::parse(b"get a\r\n").unwrap().multi_key());
        assert!(Request::noreply(b"delete k noreply\r\n"));
        assert!(!Request::noreply(b"delete k\r\n"));
    }

    #[test]
    fn bad_requests_get_memcacheds_errors() {
        let long = format!("get {}\r\n", "k".repeat(MAX_KEY + 1));
        let cases: &[(&[u8], RequestError)] = &[
            (b"get a", RequestError::NoLineEnd),
            (b"", RequestError::NoLineEnd),
            (b"\r\n", RequestError::UnknownCommand),
            (b"incr a 1\r\n", RequestError::UnknownCommand),
            (b"GET a\r\n", RequestError::UnknownCommand),
            (b"get\r\n", RequestError::BadFormat),
            (b"get   \r\n", RequestError::BadFormat),
            (b"get a\x01b\r\n", RequestError::BadFormat),
            (long.as_bytes(), RequestError::BadFormat),
            (b"set k 0 0\r\nx\r\n", RequestError::BadFormat),
            (b"set k 0 0 x\r\n", RequestError::BadFormat),
            (b"set k 0 0 1 maybe\r\nx\r\n", RequestError::BadFormat),
            (b"set k 0 0 1 noreply extra\r\n", RequestError::BadFormat),
            (b"delete\r\n", RequestError::BadFormat),
            (b"delete a b\r\n", RequestError::BadFormat),
        ];
        for &(p, e) in cases {
            assert_eq!(
                Request::parse(p).map(|r| r.verb),
                Err(e),
                "{:?}",
                String::from_utf8_lossy(p)
            );
        }
        assert_eq!(RequestError::UnknownCommand.reply(), b"ERROR\r\n");
        let max = format!("get {}\r\n", "k".repeat(MAX_KEY));
        assert!(Request::parse(max.as_bytes()).is_ok());
    }

    #[test]
    fn values_of_strips_end() {
        assert_eq!(values_of(b"END\r\n"), Some(&b""[..]));
        assert_eq!(
            values_of(b"VALUE a 0 1\r\nx\r\nEND\r\n"),
            Some(&b"VALUE a 0 1\r\nx\r\n"[..])
        );
        assert_eq!(values_of(b"SERVER_ERROR out of memory\r\n"), None);
    }
}
