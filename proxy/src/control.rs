//! The control port (`--control 127.0.0.1:PORT`): chring's line protocol
//! ([`chring::protocol`], the grammar the firmware's UART speaks) extended with
//! pools and addresses, served over TCP to many clients at once.
//!
//! Framing is [`chring::protocol::LineBuffer`]'s: a line ends at LF, CR or
//! CR LF, holds at most [`MAX_LINE`] bytes (a longer one is dropped to its end
//! and answered `-ERR line too long`), blank lines get no reply and every
//! other line exactly one. Tokens are split by spaces and tabs, verbs are
//! case-insensitive, names and keys case-sensitive.
//!
//! ```text
//! PING                                         +PONG
//! HELP                                         *16, then one +VERB args line per command
//! AUTH token                                   +OK (only when a token is configured)
//! QUIT                                         +OK bye, then the connection closes
//! ADD_SERVER pool name host:port [weight]      +OK added NAME moved FRACTION
//! REMOVE_SERVER pool name                      +OK removed NAME moved FRACTION
//! DOWN pool name | UP pool name                +OK NAME down | +OK NAME up
//! SERVERS pool                                 *n, then +NAME ADDR WEIGHT up|down|ejected KEY_SHARE
//! ROUTE pool key                               +NAME (-ERR no server is up when none can take it)
//! MOVES pool ADD name host:port [weight]       +FRACTION the change would move; nothing changes
//! MOVES pool REMOVE name                       +FRACTION
//! STATS [pool]                                 *n, then +field value lines (below)
//! REP pool                                     *n, then +NAME up|down|ejected per server
//! ADD pool n hostname...                       the new REP (seed 001's POST /add)
//! RM pool n name...                            the new REP (seed 001's DELETE /rm)
//! ```
//!
//! `REP`, `ADD` and `RM` are seed 001's `/rep`, `/add` and `/rm` (see
//! [`crate::replicas`]): a hostname to add is `name=host:port[:weight]` or
//! `host:port[:weight]`, `n` must equal the number of hostnames, and a batch
//! is all-or-nothing (every change is checked before the first is made).
//!
//! FRACTION is the share of the key space that moves (0..=1), printed as the
//! shortest decimal that reads back as the same `f64` ([`Control::moves`]'s
//! exact value). Weights are 1..=65535 (default 1). An address is `host:port`
//! (port 1..=65535; IPv6 as `[::1]:port`) or an absolute socket path.
//!
//! `STATS` lines: `service S`, `version V`, `uptime SECONDS`, `pools N`, then
//! per pool `pool NAME servers N up N client_connections N requests N`.
//! `STATS pool`: `pool NAME`, `protocol P`, `distribution D`, `hash H`,
//! `servers N`, `up N`, nutcracker's pool counters (`client_eof` ...
//! `fragments`), `client_accepted N`, `client_bytes_in N`,
//! `client_bytes_out N`, then per server `server NAME health H requests N
//! responses N server_err N server_timedout N ejections N
//! server_connections N`.
//!
//! Errors are one `-ERR reason` line and change nothing: chring::protocol's
//! (`line too long`, `bad utf-8`, `unknown command`, `wrong number of
//! arguments for 'VERB'`, `bad number`, `name too long`, `bad name`,
//! `weight must be at least 1`, `weight too large`), `bad address`,
//! `MOVES takes ADD or REMOVE`, `no server is up`, `too many connections`,
//! `NOAUTH authentication required`, `invalid token` (the connection then
//! closes), and the data path's [`ControlError`] text (`no pool 'x'` ...).
//!
//! With a token (`--token-file`), the first command must be `AUTH token`:
//! until then every command but `AUTH`, `PING` and `QUIT` gets
//! `-ERR NOAUTH authentication required`.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use chring::protocol::{self, LineBuffer, LineResult, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::replicas::{self, ReplicaError};
use crate::state::{Change, Control, ControlError, Health};

/// The longest line, in bytes (a `ROUTE` key can be up to about 4 KB).
pub const MAX_LINE: usize = 4096;
/// The longest pool or server name, in bytes.
pub const MAX_NAME: usize = 255;
/// Control connections served at once; more get `-ERR too many connections`.
pub const MAX_CLIENTS: usize = 256;
/// A control connection silent for this long is closed (its slot freed).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The commands, in `HELP` order, with their arguments.
pub const HELP: [&str; 16] = [
    "PING",
    "HELP",
    "AUTH token",
    "QUIT",
    "ADD_SERVER pool name host:port [weight]",
    "REMOVE_SERVER pool name",
    "DOWN pool name",
    "UP pool name",
    "SERVERS pool",
    "ROUTE pool key",
    "MOVES pool ADD name host:port [weight]",
    "MOVES pool REMOVE name",
    "STATS [pool]",
    "REP pool",
    "ADD pool n hostname...",
    "RM pool n name...",
];

/// A fleet change named on a `MOVES` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovesOp<'a> {
    /// `ADD name host:port [weight]`.
    Add {
        /// The server's name.
        name: &'a str,
        /// Its address.
        addr: &'a str,
        /// Its weight, if given.
        weight: Option<u32>,
    },
    /// `REMOVE name`.
    Remove {
        /// The server's name.
        name: &'a str,
    },
}

/// The words of a list at the end of a line (`ADD`'s hostnames, `RM`'s
/// names), borrowed: split on spaces and tabs when iterated, so parsing
/// allocates nothing. Two lists are equal when their words are.
#[derive(Debug, Clone, Copy)]
pub struct Words<'a>(&'a str);

impl<'a> Words<'a> {
    /// The words, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0.split(is_blank).filter(|w| !w.is_empty())
    }
}

impl PartialEq for Words<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Words<'_> {}

/// One parsed control line; names, keys and addresses borrow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `PING`.
    Ping,
    /// `HELP`.
    Help,
    /// `QUIT`.
    Quit,
    /// `AUTH token`.
    Auth(&'a str),
    /// `ADD_SERVER pool name host:port [weight]`.
    AddServer {
        /// The pool.
        pool: &'a str,
        /// The server's name.
        name: &'a str,
        /// Its address.
        addr: &'a str,
        /// Its weight, if given (else 1).
        weight: Option<u32>,
    },
    /// `REMOVE_SERVER pool name`.
    RemoveServer {
        /// The pool.
        pool: &'a str,
        /// The server.
        name: &'a str,
    },
    /// `DOWN pool name` (`up == false`) or `UP pool name`.
    SetUp {
        /// The pool.
        pool: &'a str,
        /// The server.
        name: &'a str,
        /// `UP` or `DOWN`.
        up: bool,
    },
    /// `SERVERS pool`.
    Servers(&'a str),
    /// `ROUTE pool key`.
    Route {
        /// The pool.
        pool: &'a str,
        /// The key (any token).
        key: &'a str,
    },
    /// `MOVES pool ADD|REMOVE ...`.
    Moves {
        /// The pool.
        pool: &'a str,
        /// The change to price.
        op: MovesOp<'a>,
    },
    /// `STATS [pool]`.
    Stats(Option<&'a str>),
    /// `REP pool`: seed 001's `/rep`.
    Rep(&'a str),
    /// `ADD pool n hostname...`: seed 001's `/add`.
    AddReplicas {
        /// The pool.
        pool: &'a str,
        /// How many servers to add (seed 001's `n`).
        n: u64,
        /// `name=host:port[:weight]` or `host:port[:weight]` each (checked
        /// when executed, by [`crate::replicas::add`]).
        hostnames: Words<'a>,
    },
    /// `RM pool n name...`: seed 001's `/rm`.
    RemoveReplicas {
        /// The pool.
        pool: &'a str,
        /// How many servers to remove (seed 001's `n`).
        n: u64,
        /// The servers' names.
        names: Words<'a>,
    },
}

/// Why a line got `-ERR`; `Display` is the text after `-ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// One of chring::protocol's errors (same text).
    Protocol(ProtocolError),
    /// An address that is neither `host:port` nor an absolute path.
    BadAddress,
    /// `MOVES pool` followed by something other than `ADD` / `REMOVE`.
    BadMovesOp,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Protocol(e) => e.fmt(f),
            LineError::BadAddress => f.write_str("bad address"),
            LineError::BadMovesOp => f.write_str("MOVES takes ADD or REMOVE"),
        }
    }
}

impl std::error::Error for LineError {}

impl From<ProtocolError> for LineError {
    fn from(e: ProtocolError) -> Self {
        LineError::Protocol(e)
    }
}

/// A server name: chring::protocol's rule for its characters
/// ([`protocol::forbidden_in_name`]), up to [`MAX_NAME`] bytes (more than
/// the firmware's 32: nutcracker's names and addresses are longer).
pub(crate) fn name(s: &str) -> Result<&str, LineError> {
    if s.len() > MAX_NAME {
        Err(ProtocolError::NameTooLong.into())
    } else if s.is_empty() || s.chars().any(protocol::forbidden_in_name) {
        Err(ProtocolError::BadName.into())
    } else {
        Ok(s)
    }
}

/// A weight word, by chring::protocol's rule ([`protocol::parse_weight`]).
pub(crate) fn weight(s: &str) -> Result<u32, LineError> {
    Ok(protocol::parse_weight(s)?)
}

/// `host:port` (port 1..=65535, host without whitespace, IPv6 in brackets)
/// or an absolute socket path, at most [`MAX_NAME`] bytes.
pub(crate) fn address(s: &str) -> Result<&str, LineError> {
    if s.len() > MAX_NAME || s.chars().any(protocol::forbidden_in_name) {
        return Err(LineError::BadAddress);
    }
    if s.starts_with('/') && s.len() > 1 {
        return Ok(s);
    }
    let (host, port) = s.rsplit_once(':').ok_or(LineError::BadAddress)?;
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && !host.contains(':')
    };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    if host_ok && port_ok {
        Ok(s)
    } else {
        Err(LineError::BadAddress)
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A count (`n` of `ADD` / `RM`): decimal digits, fits a `u64`.
fn count(s: &str) -> Result<u64, LineError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::BadNumber.into());
    }
    s.parse().map_err(|_| ProtocolError::BadNumber.into())
}

/// The text of `line` after its first `k` words, blanks trimmed.
fn after_words(line: &str, k: usize) -> &str {
    let mut rest = line.trim_start_matches(is_blank);
    for _ in 0..k {
        let end = rest.find(is_blank).unwrap_or(rest.len());
        rest = rest.get(end..).unwrap_or("").trim_start_matches(is_blank);
    }
    rest.trim_end_matches(is_blank)
}

/// `ADD pool n hostname...` / `RM pool n name...` (after the verb).
fn replicas_line(line: &str, remove: bool) -> Result<Request<'_>, LineError> {
    let verb = if remove { "RM" } else { "ADD" };
    let mut words = line.split(is_blank).filter(|w| !w.is_empty()).skip(1);
    let (Some(pool), Some(n)) = (words.next(), words.next()) else {
        return Err(LineError::Protocol(ProtocolError::WrongArity(verb)));
    };
    let (pool, n) = (name(pool)?, count(n)?);
    let list = Words(after_words(line, 3));
    Ok(if remove {
        Request::RemoveReplicas {
            pool,
            n,
            names: list,
        }
    } else {
        Request::AddReplicas {
            pool,
            n,
            hostnames: list,
        }
    })
}

impl<'a> Request<'a> {
    /// Parses one line (without its terminator). *O*(line length), no
    /// allocation.
    ///
    /// # Errors
    /// [`LineError`]; `Protocol(ProtocolError::Empty)` for a blank line (which
    /// gets no reply).
    pub fn parse(line: &'a [u8]) -> Result<Self, LineError> {
        let line = std::str::from_utf8(line).map_err(|_| ProtocolError::BadUtf8)?;
        let mut words = line.split(is_blank).filter(|w| !w.is_empty());
        let verb = words.next().ok_or(ProtocolError::Empty)?;
        if verb.eq_ignore_ascii_case("ADD") || verb.eq_ignore_ascii_case("RM") {
            return replicas_line(line, verb.eq_ignore_ascii_case("RM"));
        }
        // At most 6 words follow a verb (MOVES pool ADD name addr weight).
        let mut args: [&str; 6] = [""; 6];
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
        let [a, b, c, d, e, _] = args;
        let is = |v: &str| verb.eq_ignore_ascii_case(v);
        let arity = |verb: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(LineError::Protocol(ProtocolError::WrongArity(verb)))
            }
        };
        if is("PING") {
            arity("PING", n == 0)?;
            Ok(Request::Ping)
        } else if is("HELP") {
            arity("HELP", n == 0)?;
            Ok(Request::Help)
        } else if is("QUIT") {
            arity("QUIT", n == 0)?;
            Ok(Request::Quit)
        } else if is("AUTH") {
            arity("AUTH", n == 1)?;
            Ok(Request::Auth(a))
        } else if is("ADD_SERVER") {
            arity("ADD_SERVER", n == 3 || n == 4)?;
            Ok(Request::AddServer {
                pool: name(a)?,
                name: name(b)?,
                addr: address(c)?,
                weight: if n == 4 { Some(weight(d)?) } else { None },
            })
        } else if is("REMOVE_SERVER") {
            arity("REMOVE_SERVER", n == 2)?;
            Ok(Request::RemoveServer {
                pool: name(a)?,
                name: name(b)?,
            })
        } else if is("DOWN") || is("UP") {
            let up = is("UP");
            arity(if up { "UP" } else { "DOWN" }, n == 2)?;
            Ok(Request::SetUp {
                pool: name(a)?,
                name: name(b)?,
                up,
            })
        } else if is("SERVERS") {
            arity("SERVERS", n == 1)?;
            Ok(Request::Servers(name(a)?))
        } else if is("ROUTE") {
            arity("ROUTE", n == 2)?;
            Ok(Request::Route {
                pool: name(a)?,
                key: b,
            })
        } else if is("REP") {
            arity("REP", n == 1)?;
            Ok(Request::Rep(name(a)?))
        } else if is("STATS") {
            arity("STATS", n <= 1)?;
            Ok(Request::Stats(if n == 1 { Some(name(a)?) } else { None }))
        } else if is("MOVES") {
            arity("MOVES", (2..=6).contains(&n))?;
            let pool = name(a)?;
            let op = if b.eq_ignore_ascii_case("ADD") {
                arity("MOVES", n == 4 || n == 5)?;
                MovesOp::Add {
                    name: name(c)?,
                    addr: address(d)?,
                    weight: if n == 5 { Some(weight(e)?) } else { None },
                }
            } else if b.eq_ignore_ascii_case("REMOVE") {
                arity("MOVES", n == 3)?;
                MovesOp::Remove { name: name(c)? }
            } else {
                return Err(LineError::BadMovesOp);
            };
            Ok(Request::Moves { pool, op })
        } else {
            Err(ProtocolError::UnknownCommand.into())
        }
    }
}

/// The canonical line (upper-case verb, single spaces): what
/// [`Request::parse`] reads back as the same request.
impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |w: &Option<u32>| w.map(|w| format!(" {w}")).unwrap_or_default();
        match self {
            Request::Ping => f.write_str("PING"),
            Request::Help => f.write_str("HELP"),
            Request::Quit => f.write_str("QUIT"),
            Request::Auth(t) => write!(f, "AUTH {t}"),
            Request::AddServer {
                pool,
                name,
                addr,
                weight,
            } => write!(f, "ADD_SERVER {pool} {name} {addr}{}", w(weight)),
            Request::RemoveServer { pool, name } => write!(f, "REMOVE_SERVER {pool} {name}"),
            Request::SetUp { pool, name, up } => {
                write!(f, "{} {pool} {name}", if *up { "UP" } else { "DOWN" })
            }
            Request::Servers(pool) => write!(f, "SERVERS {pool}"),
            Request::Route { pool, key } => write!(f, "ROUTE {pool} {key}"),
            Request::Moves {
                pool,
                op: MovesOp::Add { name, addr, weight },
            } => write!(f, "MOVES {pool} ADD {name} {addr}{}", w(weight)),
            Request::Moves {
                pool,
                op: MovesOp::Remove { name },
            } => write!(f, "MOVES {pool} REMOVE {name}"),
            Request::Stats(None) => f.write_str("STATS"),
            Request::Stats(Some(pool)) => write!(f, "STATS {pool}"),
            Request::Rep(pool) => write!(f, "REP {pool}"),
            Request::AddReplicas { pool, n, hostnames } => {
                write!(f, "ADD {pool} {n}")?;
                hostnames.iter().try_for_each(|h| write!(f, " {h}"))
            }
            Request::RemoveReplicas { pool, n, names } => {
                write!(f, "RM {pool} {n}")?;
                names.iter().try_for_each(|h| write!(f, " {h}"))
            }
        }
    }
}

/// What the connection does after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Write the replies so far, then close (`QUIT`, a wrong token).
    Close,
}

/// Tokens compared in time independent of where they differ.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
        Health::Ejected { .. } => "ejected",
    }
}

/// One control connection's state: whether it has authenticated.
#[derive(Debug)]
pub struct Session {
    token: Option<Arc<str>>,
    authed: bool,
}

impl Session {
    /// A session; with a `token`, commands need `AUTH token` first.
    #[must_use]
    pub fn new(token: Option<Arc<str>>) -> Self {
        let authed = token.is_none();
        Self { token, authed }
    }

    /// Answers one framed line into `out` (nothing for a blank line).
    /// *O*(line) plus the cost of the [`Control`] call; never panics.
    pub fn handle(&mut self, line: LineResult<'_>, ctl: &dyn Control, out: &mut String) -> Flow {
        let req = match line {
            Err(_) => Err(LineError::Protocol(ProtocolError::LineTooLong)),
            Ok(l) => Request::parse(l),
        };
        let req = match req {
            Ok(r) => r,
            Err(LineError::Protocol(ProtocolError::Empty)) => return Flow::Continue,
            Err(e) => {
                let _ = write!(out, "-ERR {e}\r\n");
                return Flow::Continue;
            }
        };
        if !self.authed && !matches!(req, Request::Auth(_) | Request::Ping | Request::Quit) {
            out.push_str("-ERR NOAUTH authentication required\r\n");
            return Flow::Continue;
        }
        self.execute(req, ctl, out)
    }

    fn execute(&mut self, req: Request<'_>, ctl: &dyn Control, out: &mut String) -> Flow {
        let result: Result<(), ReplicaError> = (|| {
            match req {
                Request::Ping => out.push_str("+PONG\r\n"),
                Request::Help => {
                    let _ = write!(out, "*{}\r\n", HELP.len());
                    for h in HELP {
                        let _ = write!(out, "+{h}\r\n");
                    }
                }
                Request::Quit => {
                    out.push_str("+OK bye\r\n");
                    return Ok(());
                }
                Request::Auth(t) => match &self.token {
                    None => out.push_str("-ERR AUTH without a configured token\r\n"),
                    Some(want) if same_token(t.as_bytes(), want.as_bytes()) => {
                        self.authed = true;
                        out.push_str("+OK\r\n");
                    }
                    Some(_) => {
                        self.authed = false;
                        out.push_str("-ERR invalid token\r\n");
                    }
                },
                Request::AddServer {
                    pool,
                    name,
                    addr,
                    weight,
                } => {
                    let moved = ctl.apply(
                        pool,
                        Change::Add {
                            name: name.to_owned(),
                            addr: addr.to_owned(),
                            weight: weight.unwrap_or(1),
                        },
                    )?;
                    let _ = write!(out, "+OK added {name} moved {moved}\r\n");
                }
                Request::RemoveServer { pool, name } => {
                    let moved = ctl.apply(
                        pool,
                        Change::Remove {
                            name: name.to_owned(),
                        },
                    )?;
                    let _ = write!(out, "+OK removed {name} moved {moved}\r\n");
                }
                Request::SetUp { pool, name, up } => {
                    ctl.set_up(pool, name, up)?;
                    let _ = write!(out, "+OK {name} {}\r\n", if up { "up" } else { "down" });
                }
                Request::Route { pool, key } => match ctl.route(pool, key.as_bytes())? {
                    Some(s) => {
                        let _ = write!(out, "+{s}\r\n");
                    }
                    None => out.push_str("-ERR no server is up\r\n"),
                },
                Request::Moves { pool, op } => {
                    let change = match op {
                        MovesOp::Add { name, addr, weight } => Change::Add {
                            name: name.to_owned(),
                            addr: addr.to_owned(),
                            weight: weight.unwrap_or(1),
                        },
                        MovesOp::Remove { name } => Change::Remove {
                            name: name.to_owned(),
                        },
                    };
                    let moved = ctl.moves(pool, &change)?;
                    let _ = write!(out, "+{moved}\r\n");
                }
                Request::Servers(pool) => {
                    let snap = ctl.snapshot();
                    let p = snap
                        .pools
                        .iter()
                        .find(|p| p.name == pool)
                        .ok_or_else(|| ControlError::UnknownPool(pool.to_owned()))?;
                    let _ = write!(out, "*{}\r\n", p.servers.len());
                    for s in &p.servers {
                        let _ = write!(
                            out,
                            "+{} {} {} {} {}\r\n",
                            s.name,
                            s.addr,
                            s.weight,
                            health(s.health),
                            s.key_share
                        );
                    }
                }
                Request::Stats(pool) => stats(ctl, pool, out)?,
                Request::Rep(pool) => {
                    let _ = write!(out, "{}", replicas::rep(ctl, pool)?);
                }
                Request::AddReplicas { pool, n, hostnames } => {
                    let list: Vec<&str> = hostnames.iter().collect();
                    let _ = write!(out, "{}", replicas::add(ctl, pool, n, &list)?);
                }
                Request::RemoveReplicas { pool, n, names } => {
                    let list: Vec<&str> = names.iter().collect();
                    let _ = write!(out, "{}", replicas::remove(ctl, pool, n, &list)?);
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {}
            Err(e) => {
                // One line whatever the data path put in its message.
                let text = e.to_string().replace(['\r', '\n'], " ");
                let _ = write!(out, "-ERR {text}\r\n");
            }
        }
        match req {
            Request::Quit => Flow::Close,
            Request::Auth(_) if self.token.is_some() && !self.authed => Flow::Close,
            _ => Flow::Continue,
        }
    }
}

fn stats(ctl: &dyn Control, pool: Option<&str>, out: &mut String) -> Result<(), ControlError> {
    let snap = ctl.snapshot();
    let mut lines: Vec<String> = Vec::new();
    let up = |p: &crate::state::PoolSnapshot| {
        p.servers.iter().filter(|s| s.health == Health::Up).count()
    };
    match pool {
        None => {
            lines.push(format!("service {}", snap.service));
            lines.push(format!("version {}", snap.version));
            lines.push(format!(
                "uptime {}",
                (snap.now_unix_ms / 1000).saturating_sub(snap.started_unix)
            ));
            lines.push(format!("pools {}", snap.pools.len()));
            for p in &snap.pools {
                lines.push(format!(
                    "pool {} servers {} up {} client_connections {} requests {}",
                    p.name,
                    p.servers.len(),
                    up(p),
                    p.client_connections,
                    p.servers.iter().map(|s| s.requests).sum::<u64>()
                ));
            }
        }
        Some(name) => {
            let p = snap
                .pools
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| ControlError::UnknownPool(name.to_owned()))?;
            lines.push(format!("pool {}", p.name));
            lines.push(format!("protocol {}", p.protocol));
            lines.push(format!("distribution {}", p.distribution));
            lines.push(format!("hash {}", p.hash));
            lines.push(format!("servers {}", p.servers.len()));
            lines.push(format!("up {}", up(p)));
            for (k, v) in [
                ("client_eof", p.client_eof),
                ("client_err", p.client_err),
                ("client_connections", p.client_connections),
                ("server_ejects", p.server_ejects),
                ("forward_error", p.forward_error),
                ("fragments", p.fragments),
                ("client_accepted", p.client_accepted),
                ("client_bytes_in", p.client_bytes_in),
                ("client_bytes_out", p.client_bytes_out),
            ] {
                lines.push(format!("{k} {v}"));
            }
            for s in &p.servers {
                lines.push(format!(
                    "server {} health {} requests {} responses {} server_err {} server_timedout {} ejections {} server_connections {}",
                    s.name,
                    health(s.health),
                    s.requests,
                    s.responses,
                    s.server_err,
                    s.server_timedout,
                    s.ejections,
                    s.server_connections
                ));
            }
        }
    }
    let _ = write!(out, "*{}\r\n", lines.len());
    for l in lines {
        let _ = write!(out, "+{}\r\n", l.replace(['\r', '\n'], " "));
    }
    Ok(())
}

/// Serves the control port on `listener` until the future is dropped: one
/// task per connection, at most [`MAX_CLIENTS`] at once.
pub async fn serve(listener: TcpListener, ctl: Arc<dyn Control>, token: Option<Arc<str>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let (mut sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("accept on control port failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = sock.write_all(b"-ERR too many connections\r\n").await;
            });
            continue;
        };
        let (ctl, token) = (ctl.clone(), token.clone());
        tokio::spawn(async move {
            log::debug!("control client {peer} connected");
            if let Err(e) = connection(sock, ctl, token).await {
                log::debug!("control client {peer}: {e}");
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut sock: TcpStream,
    ctl: Arc<dyn Control>,
    token: Option<Arc<str>>,
) -> std::io::Result<()> {
    let mut session = Session::new(token);
    let mut lines: Box<LineBuffer<MAX_LINE>> = Box::default();
    let mut buf = vec![0u8; 8192];
    let mut out = String::new();
    loop {
        let Ok(n) = tokio::time::timeout(IDLE_TIMEOUT, sock.read(&mut buf)).await else {
            return Ok(());
        };
        let n = n?;
        if n == 0 {
            return Ok(());
        }
        let mut flow = Flow::Continue;
        for &byte in buf.get(..n).unwrap_or(&[]) {
            if let Some(line) = lines.push(byte) {
                flow = session.handle(line, ctl.as_ref(), &mut out);
                if flow == Flow::Close {
                    break;
                }
            }
        }
        if !out.is_empty() {
            sock.write_all(out.as_bytes()).await?;
            out.clear();
        }
        if flow == Flow::Close {
            return sock.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Request<'_> {
        Request::parse(line.as_bytes()).unwrap()
    }
    fn err(line: &str) -> String {
        Request::parse(line.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_command_and_prints_it_back() {
        for line in [
            "PING",
            "HELP",
            "QUIT",
            "AUTH s3cret",
            "ADD_SERVER cache s5 127.0.0.1:6379",
            "ADD_SERVER cache s5 [::1]:6379 3",
            "ADD_SERVER cache s5 /tmp/redis.sock 2",
            "REMOVE_SERVER cache s5",
            "DOWN cache s1",
            "UP cache s1",
            "SERVERS cache",
            "ROUTE cache user:1",
            "MOVES cache ADD s5 10.0.0.1:11211 2",
            "MOVES cache REMOVE s1",
            "STATS",
            "STATS cache",
            "REP cache",
            "ADD cache 0",
            "ADD cache 2 s4=127.0.0.1:6382 127.0.0.1:6383:2",
            "ADD cache 1 v6=[::1]:6379:7",
            "RM cache 1 s4",
            "RM cache 2 s4 127.0.0.1:6383",
        ] {
            let r = ok(line);
            assert_eq!(r.to_string(), line);
            assert_eq!(Request::parse(r.to_string().as_bytes()), Ok(r));
        }
        assert_eq!(
            ok("  add_server\tp  a 127.0.0.1:1  "),
            Request::AddServer {
                pool: "p",
                name: "a",
                addr: "127.0.0.1:1",
                weight: None
            }
        );
        assert_eq!(
            ok("moves p add a h:1"),
            Request::Moves {
                pool: "p",
                op: MovesOp::Add {
                    name: "a",
                    addr: "h:1",
                    weight: None
                }
            }
        );
    }

    #[test]
    fn seed001_lines_keep_their_lists() {
        let Request::AddReplicas { pool, n, hostnames } =
            ok("add\tcache  3 a=h:1   b=h:2:5\tc=h:3  ")
        else {
            panic!("not ADD");
        };
        assert_eq!((pool, n), ("cache", 3));
        assert_eq!(
            hostnames.iter().collect::<Vec<_>>(),
            ["a=h:1", "b=h:2:5", "c=h:3"]
        );
        let Request::RemoveReplicas { names, .. } = ok("rm cache 2 a b") else {
            panic!("not RM");
        };
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "b"]);
        // Lists compare by words, not spacing.
        assert_eq!(ok("RM p 2 a  b"), ok("RM p 2 a b"));
        assert_ne!(ok("RM p 2 a b"), ok("RM p 2 b a"));
        assert_eq!(ok("rep cache"), Request::Rep("cache"));
        // The list is checked when executed (replicas::add names the bad
        // hostname), so any word parses here.
        assert!(Request::parse(b"ADD p 1 nonsense").is_ok());
    }

    #[test]
    fn seed001_line_errors_are_precise() {
        assert_eq!(err("REP"), "wrong number of arguments for 'REP'");
        assert_eq!(err("REP a b"), "wrong number of arguments for 'REP'");
        assert_eq!(err("ADD"), "wrong number of arguments for 'ADD'");
        assert_eq!(err("ADD cache"), "wrong number of arguments for 'ADD'");
        assert_eq!(err("RM cache"), "wrong number of arguments for 'RM'");
        assert_eq!(err("ADD cache x a=h:1"), "bad number");
        assert_eq!(err("RM cache -1 a"), "bad number");
        assert_eq!(err("RM cache 99999999999999999999 a"), "bad number");
        assert_eq!(err("ADD a\u{1}b 1 h:1"), "bad name");
    }

    #[test]
    fn every_error_is_precise() {
        assert_eq!(err("   "), "empty line");
        assert_eq!(err("FROB"), "unknown command");
        assert_eq!(err("ROUTE cache"), "wrong number of arguments for 'ROUTE'");
        assert_eq!(err("PING x"), "wrong number of arguments for 'PING'");
        assert_eq!(err("ADD_SERVER p a h:1 x"), "bad number");
        assert_eq!(err("ADD_SERVER p a h:1 0"), "weight must be at least 1");
        assert_eq!(err("ADD_SERVER p a h:1 65536"), "weight too large");
        assert_eq!(err("ADD_SERVER p a h:1 99999999999"), "bad number");
        assert_eq!(err("ADD_SERVER p a nohost"), "bad address");
        assert_eq!(err("ADD_SERVER p a h:0"), "bad address");
        assert_eq!(err("ADD_SERVER p a h:70000"), "bad address");
        assert_eq!(err("ADD_SERVER p a ::1:5"), "bad address");
        assert_eq!(err("ADD_SERVER p a [zz]:5"), "bad address");
        assert_eq!(err("ADD_SERVER p a :5"), "bad address");
        assert_eq!(
            err(&format!("SERVERS {}", "x".repeat(256))),
            "name too long"
        );
        assert_eq!(err("SERVERS a\u{a0}b"), "bad name");
        assert_eq!(err("SERVERS a\u{1}b"), "bad name");
        assert_eq!(err("MOVES p FROB a"), "MOVES takes ADD or REMOVE");
        assert_eq!(
            err("MOVES p REMOVE"),
            "wrong number of arguments for 'MOVES'"
        );
        assert_eq!(
            err("MOVES p ADD a"),
            "wrong number of arguments for 'MOVES'"
        );
        assert_eq!(err("STATS a b"), "wrong number of arguments for 'STATS'");
        assert_eq!(
            Request::parse(&[0xff, 0xfe]).unwrap_err().to_string(),
            "bad utf-8"
        );
    }

    #[test]
    fn seed001_lines_answer_the_replicas_all_or_nothing() {
        let f = crate::replicas::test_fleet::Fleet::new(&[("cache", 2)], 3);
        let mut s = Session::new(None);
        let mut say = |line: &str| {
            let mut out = String::new();
            s.handle(Ok(line.as_bytes()), &f, &mut out);
            out
        };
        assert_eq!(say("REP cache"), "*2\r\n+s1 up\r\n+s2 down\r\n");
        assert_eq!(
            say("ADD cache 1 s3=127.0.0.1:7003"),
            "*3\r\n+s1 up\r\n+s2 down\r\n+s3 up\r\n"
        );
        assert_eq!(say("RM cache 1 s1"), "*2\r\n+s2 down\r\n+s3 up\r\n");
        // Full after the first of two: neither stays.
        assert_eq!(
            say("ADD cache 2 a=h:1 b=h:2"),
            "-ERR pool 'cache' is full (3 servers)\r\n"
        );
        assert_eq!(
            say("ADD cache 1 a=h:1 b=h:2"),
            "-ERR Number of hostnames exceeds number of servers to add\r\n"
        );
        assert_eq!(
            say("ADD cache 1 a=h"),
            "-ERR bad hostname 'a=h': expected name=host:port[:weight] or host:port[:weight]\r\n"
        );
        assert_eq!(
            say("RM cache 1 nope"),
            "-ERR no server 'nope' in pool 'cache'\r\n"
        );
        assert_eq!(say("REP nope"), "-ERR no pool 'nope'\r\n");
        assert_eq!(say("REP cache"), "*2\r\n+s2 down\r\n+s3 up\r\n");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"ab"));
        assert!(!same_token(b"", b"a"));
    }
}
