//! The grammar: one line to one [`Command`].

use core::fmt;

#[cfg(doc)]
use super::{Controller, LineBuffer};
use super::{KINDS, MAX_NAME, ProtocolError};
use crate::StrategyKind;
#[cfg(doc)]
use crate::{Jump, Maglev, Modulo, Rendezvous, Ring};

/// One parsed command line. Names and keys borrow from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command<'a> {
    /// `PING`.
    Ping,
    /// `HELP`.
    Help,
    /// `ADD_SERVER name [weight]`.
    AddServer {
        /// The server's name (what placement hashes).
        name: &'a str,
        /// Its weight, if given (else 1).
        weight: Option<u32>,
    },
    /// `REMOVE_SERVER name`.
    RemoveServer(&'a str),
    /// `DOWN name`.
    Down(&'a str),
    /// `UP name`.
    Up(&'a str),
    /// `SERVERS`.
    Servers,
    /// `ROUTE key`.
    Route(&'a str),
    /// `REPLICAS key n`.
    Replicas {
        /// The key.
        key: &'a str,
        /// How many servers.
        n: u32,
    },
    /// `STRATEGY name`.
    Strategy(StrategyKind),
    /// `STATS`.
    Stats,
    /// `RESET`.
    Reset,
}

fn parse_u32(s: &str) -> Result<u32, ProtocolError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::BadNumber);
    }
    s.parse().map_err(|_| ProtocolError::BadNumber)
}

/// Whether `c` may not appear in a name: whitespace (`char::is_whitespace`, so
/// ASCII blanks and every Unicode `White_Space` character: U+00A0, U+2028,
/// U+3000...), control characters, and the invisible zero-width spaces U+200B,
/// U+2060 and U+FEFF (which Unicode does not class as whitespace).
pub fn forbidden_in_name(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// Checks a server name against the protocol's rule: 1 to
/// [`MAX_NAME`] bytes, no whitespace (any Unicode
/// `White_Space`), no control character, no zero-width space. Shared by every
/// line grammar built on this one (chring-proxy's control port).
///
/// # Errors
/// [`ProtocolError::NameTooLong`] or [`ProtocolError::BadName`].
pub fn parse_name(s: &str) -> Result<&str, ProtocolError> {
    if s.len() > MAX_NAME {
        Err(ProtocolError::NameTooLong)
    } else if s.is_empty() || s.chars().any(forbidden_in_name) {
        Err(ProtocolError::BadName)
    } else {
        Ok(s)
    }
}

/// Checks a server weight: 1 to [`MAX_WEIGHT`](crate::MAX_WEIGHT).
///
/// # Errors
/// [`ProtocolError::ZeroWeight`] or [`ProtocolError::WeightTooLarge`].
pub const fn check_weight(w: u32) -> Result<u32, ProtocolError> {
    if w == 0 {
        Err(ProtocolError::ZeroWeight)
    } else if w > crate::MAX_WEIGHT {
        Err(ProtocolError::WeightTooLarge)
    } else {
        Ok(w)
    }
}

/// Parses a weight word: decimal digits only, then [`check_weight`].
///
/// # Errors
/// [`ProtocolError::BadNumber`], or [`check_weight`]'s errors.
pub fn parse_weight(s: &str) -> Result<u32, ProtocolError> {
    check_weight(parse_u32(s)?)
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Command<'a> {
    /// Parses one line (without its terminator). *O*(line length).
    ///
    /// # Errors
    /// [`ProtocolError::Empty`] for a blank line, else the reason for `-ERR`.
    pub fn parse(line: &'a [u8]) -> Result<Self, ProtocolError> {
        let line = core::str::from_utf8(line).map_err(|_| ProtocolError::BadUtf8)?;
        let mut words = line.split(|c: char| c.is_ascii() && is_blank(c as u8));
        let mut words = core::iter::from_fn(move || words.by_ref().find(|w| !w.is_empty()));
        let Some(verb) = words.next() else {
            return Err(ProtocolError::Empty);
        };
        let mut args: [&str; 2] = [""; 2];
        let mut n = 0usize;
        for w in words {
            match args.get_mut(n) {
                Some(slot) => *slot = w,
                None => {
                    n = usize::MAX;
                    break;
                }
            }
            n += 1;
        }
        let [a, b] = args;
        let is = |v: &str| verb.eq_ignore_ascii_case(v);
        let arity = |verb: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ProtocolError::WrongArity(verb))
            }
        };
        if is("PING") {
            arity("PING", n == 0)?;
            Ok(Command::Ping)
        } else if is("HELP") {
            arity("HELP", n == 0)?;
            Ok(Command::Help)
        } else if is("SERVERS") {
            arity("SERVERS", n == 0)?;
            Ok(Command::Servers)
        } else if is("STATS") {
            arity("STATS", n == 0)?;
            Ok(Command::Stats)
        } else if is("RESET") {
            arity("RESET", n == 0)?;
            Ok(Command::Reset)
        } else if is("ADD_SERVER") {
            arity("ADD_SERVER", n == 1 || n == 2)?;
            let name = parse_name(a)?;
            let weight = if n == 2 { Some(parse_u32(b)?) } else { None };
            Ok(Command::AddServer { name, weight })
        } else if is("REMOVE_SERVER") {
            arity("REMOVE_SERVER", n == 1)?;
            Ok(Command::RemoveServer(parse_name(a)?))
        } else if is("DOWN") {
            arity("DOWN", n == 1)?;
            Ok(Command::Down(parse_name(a)?))
        } else if is("UP") {
            arity("UP", n == 1)?;
            Ok(Command::Up(parse_name(a)?))
        } else if is("ROUTE") {
            arity("ROUTE", n == 1)?;
            Ok(Command::Route(a))
        } else if is("REPLICAS") {
            arity("REPLICAS", n == 2)?;
            Ok(Command::Replicas {
                key: a,
                n: parse_u32(b)?,
            })
        } else if is("STRATEGY") {
            arity("STRATEGY", n == 1)?;
            match StrategyKind::parse(a) {
                Ok(kind) if KINDS.contains(&kind) => Ok(Command::Strategy(kind)),
                _ => Err(ProtocolError::UnknownStrategy),
            }
        } else {
            Err(ProtocolError::UnknownCommand)
        }
    }
}

/// The canonical line of a command (upper-case verb, single spaces, no
/// terminator): what [`Command::parse`] reads back as the same command.
impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ping => f.write_str("PING"),
            Command::Help => f.write_str("HELP"),
            Command::AddServer { name, weight } => {
                write!(f, "ADD_SERVER {name}")?;
                match weight {
                    Some(w) => write!(f, " {w}"),
                    None => Ok(()),
                }
            }
            Command::RemoveServer(name) => write!(f, "REMOVE_SERVER {name}"),
            Command::Down(name) => write!(f, "DOWN {name}"),
            Command::Up(name) => write!(f, "UP {name}"),
            Command::Servers => f.write_str("SERVERS"),
            Command::Route(key) => write!(f, "ROUTE {key}"),
            Command::Replicas { key, n } => write!(f, "REPLICAS {key} {n}"),
            Command::Strategy(k) => write!(f, "STRATEGY {k}"),
            Command::Stats => f.write_str("STATS"),
            Command::Reset => f.write_str("RESET"),
        }
    }
}
