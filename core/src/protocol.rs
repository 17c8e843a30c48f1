//! A line protocol to control a balancer over a byte link (a UART, a socket), in
//! the spirit of a cache proxy's control port, with Redis-like replies.
//!
//! One implementation serves the firmware (`firmware/src/bin/hil.rs`, over the
//! board's UART) and the host (`host-sim hil`, which runs the same [`Controller`]
//! locally to check every reply the device gives). `no_std`, no allocation, and
//! **no panic on any input**: every byte sequence gets either a reply or, for
//! empty lines, nothing, and the link stays usable.
//!
//! # Framing
//!
//! A [`LineBuffer<N>`] takes bytes one at a time. A line ends at LF, at CR, or at
//! CR LF (the LF right after a CR is swallowed, so terminals that send CR, LF or
//! both all work). A line holds at most `N` bytes; a longer one is dropped up to
//! its end and answered `-ERR line too long` there, and the next line is read
//! normally (the buffer resynchronises at the newline). Empty (or all-blank) lines
//! get no reply; every other line gets exactly one reply.
//!
//! # Grammar
//!
//! Tokens are separated by spaces or tabs; verbs are case-insensitive, names and
//! keys are case-sensitive. A name is 1 to [`MAX_NAME`] bytes of UTF-8 without
//! whitespace or control characters: a name holding any Unicode whitespace
//! (`char::is_whitespace`: U+00A0, U+2028, U+3000...) or one of the zero-width
//! spaces U+200B, U+2060, U+FEFF is refused with `bad name` (only space and tab
//! split tokens). Numbers are decimal `u32`s (digits only).
//!
//! ```text
//! line     = command [CR] LF
//! command  = "PING" | "HELP" | "SERVERS" | "STATS" | "RESET"
//!          | "ADD_SERVER" name [weight]     ; weight 1..=65535, default 1
//!          | "REMOVE_SERVER" name
//!          | "DOWN" name | "UP" name        ; health, without removing
//!          | "ROUTE" key                    ; key: any token, hashed with chring::hash
//!          | "REPLICAS" key n               ; n >= 1
//!          | "STRATEGY" ("ring" | "maglev" | "jump" | "rendezvous" | "modulo")
//! ```
//!
//! # Replies
//!
//! Every reply line ends with CR LF. `+` is a simple string, `-ERR` an error,
//! `:` an integer, `*n` an array of `n` simple strings on the lines that follow.
//!
//! | command | reply |
//! | --- | --- |
//! | `PING` | `+PONG` |
//! | `HELP` | `*12`, then one `+VERB args` line per command |
//! | `ADD_SERVER a 2` | `+OK added a` |
//! | `REMOVE_SERVER a` | `+OK removed a` |
//! | `DOWN a` / `UP a` | `+OK a down` / `+OK a up` |
//! | `SERVERS` | `*n`, then `+name weight up` or `+name weight down` per server, in slot order |
//! | `ROUTE k` | `+name` of the server the key goes to |
//! | `REPLICAS k 3` | `*m`, then `+name` per server, `m = min(n, servers up)`: the failover order |
//! | `STRATEGY maglev` | `+OK strategy maglev` |
//! | `STATS` | `*n`, then `+field value` lines (below) |
//! | `RESET` | `+OK reset` |
//!
//! `STATS` fields, in order: `strategy NAME`, `servers N`, `up N`, `routed N`
//! (successful `ROUTE`s), `flow_hits N` (routed to the pinned server),
//! `flow_misses N` (new or forgotten keys), `flow_repinned N` (the pinned server
//! had left or was down), `flow_evictions N`, `flow_expirations N`, `flows N`
//! (live entries), `errors N` (`-ERR` replies so far), then one
//! `server NAME routed N` per server in slot order.
//!
//! Errors (each is one `-ERR reason` line; nothing changes): `line too long`,
//! `bad utf-8`, `unknown command`, `wrong number of arguments for 'VERB'`,
//! `bad number`, `name too long`, `bad name`, `unknown strategy`,
//! `unknown server`, `server already exists`, `fleet is full`,
//! `weight must be at least 1`, `weight too large`,
//! `not enough capacity for this weight`, `replica count must be at least 1`,
//! `no server is up`, `clock went backwards`. See [`ProtocolError`].
//!
//! # Semantics
//!
//! - Servers sit in `B` slots; an added server takes the lowest free slot and a
//!   fresh [`BackendId`] (ids are not reused until 2^16 additions later).
//! - `ROUTE` looks the key's hash up in the flow table ([`TtlCache`] in idle
//!   mode, `N` entries): a known key keeps its server while that server is in the
//!   fleet and up; otherwise the active strategy picks and the table remembers.
//!   When the table is full, the least recently used key is forgotten.
//! - `REPLICAS k n` is the failover order: the `i`-th server is where the key
//!   goes when the first `i - 1` are down. For the ring this is the clockwise walk.
//! - The controller keeps one strategy of each kind, all holding the fleet (in
//!   the order servers were added); `STRATEGY` only chooses which one picks, so
//!   it never fails and rebuilds nothing. Live flows keep their servers. An
//!   `ADD_SERVER` must fit every strategy (the ring's `P` points bind first:
//!   total weight × vnodes ≤ `P`), else it is refused and nothing changes.
//! - Time: every `ROUTE` and `STATS` first moves the flow table's clock to the
//!   line's tick ([`TtlCache::advance`]): a tick less than the flow TTL behind
//!   the table's clock is `clock went backwards`; a tick further behind (or
//!   2^31 ticks or more ahead) means every flow expired, and time goes on from
//!   there. A `ROUTE` that fails (no server up, clock) changes nothing, the flow
//!   table's clock and counters included.
//! - `RESET` returns to the state after boot: no servers, the ring, an empty flow
//!   table that has forgotten its clock, zero counters.
//! - The flow table's bucket hash uses the cache's fixed default seed unless the
//!   device seeds it ([`Controller::seed_flows`]), as a balancer facing untrusted
//!   keys should.
//!
//! # Example
//!
//! ```
//! use chring::protocol::{Controller, LineBuffer};
//! use chring::{Duration, Instant};
//!
//! let mut ctl: Controller<8, 512, 1031, 64> = Controller::new(64, Duration(60_000))?;
//! let mut line: LineBuffer<64> = LineBuffer::new();
//! let mut out = String::new();
//! for &b in b"add_server a\r\nADD_SERVER b 2\nROUTE user:1\nFOO\n" {
//!     if let Some(l) = line.push(b) {
//!         ctl.handle(l, Instant(0), &mut out)?;
//!     }
//! }
//! assert!(out.starts_with("+OK added a\r\n+OK added b\r\n+"));
//! assert!(out.ends_with("-ERR unknown command\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt::{self, Write};

use crate::flow::{self, How, Route};
use crate::{
    AddError, BackendId, Duration, Instant, Jump, MAX_WEIGHT, Maglev, Modulo, Rendezvous, Ring,
    RingConfig, Strategy, TtlCache,
};

/// The longest server name, in bytes.
pub const MAX_NAME: usize = 32;

/// A server's name.
pub type Name = heapless::String<MAX_NAME>;

/// Bucket capacity of the controller's jump hash (the fleet's total weight).
pub const JUMP_BUCKETS: usize = 64;

pub mod rig;

/// The commands, in `HELP` order, with their arguments.
pub const HELP: [&str; 12] = [
    "PING",
    "HELP",
    "ADD_SERVER name [weight]",
    "REMOVE_SERVER name",
    "DOWN name",
    "UP name",
    "SERVERS",
    "ROUTE key",
    "REPLICAS key n",
    "STRATEGY ring|maglev|jump|rendezvous|modulo",
    "STATS",
    "RESET",
];

/// A line that did not fit the [`LineBuffer`]; it was dropped up to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineTooLong;

/// What [`LineBuffer::push`] completed: a line (without its terminator), or the
/// news that an over-long one ended.
pub type LineResult<'a> = Result<&'a [u8], LineTooLong>;

/// Accumulates bytes into lines in a fixed `N`-byte buffer (see the
/// [module docs](self) for the framing rules). *O*(1) per byte.
#[derive(Debug, Clone)]
pub struct LineBuffer<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// The current line outgrew the buffer: drop bytes up to its end.
    overflow: bool,
    /// The last line ended with CR: an LF right after it is not a new line.
    after_cr: bool,
    /// The last push completed a line: the next one starts a new line.
    done: bool,
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflow: false,
            after_cr: false,
            done: false,
        }
    }

    /// Drops a partial line.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
        self.after_cr = false;
        self.done = false;
    }

    /// Bytes of the current, unfinished line held so far: 0 right after a push
    /// that completed a line (whose slice stays valid until the next push).
    #[must_use]
    pub const fn pending(&self) -> usize {
        if self.done { 0 } else { self.len }
    }

    /// Takes one byte; returns the line it completes, if any. The returned slice
    /// is valid until the next push.
    ///
    /// # Errors
    /// [`LineTooLong`] at the end of a line longer than `N` bytes.
    pub fn push(&mut self, byte: u8) -> Option<LineResult<'_>> {
        if self.done {
            self.len = 0;
            self.overflow = false;
            self.done = false;
        }
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match byte {
            b'\n' if after_cr => None,
            b'\n' | b'\r' => {
                self.after_cr = byte == b'\r';
                self.done = true;
                if self.overflow {
                    Some(Err(LineTooLong))
                } else {
                    Some(Ok(self.buf.get(..self.len).unwrap_or(&[])))
                }
            }
            _ if self.overflow => None,
            _ => {
                match self.buf.get_mut(self.len) {
                    Some(slot) => {
                        *slot = byte;
                        self.len += 1;
                    }
                    None => self.overflow = true,
                }
                None
            }
        }
    }
}

/// The strategies a [`Controller`] can switch between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StrategyKind {
    /// [`Ring`] (the default).
    Ring,
    /// [`Maglev`].
    Maglev,
    /// [`Jump`].
    Jump,
    /// [`Rendezvous`].
    Rendezvous,
    /// [`Modulo`].
    Modulo,
}

impl StrategyKind {
    /// Every kind, in `HELP` order.
    pub const ALL: [StrategyKind; 5] = [
        StrategyKind::Ring,
        StrategyKind::Maglev,
        StrategyKind::Jump,
        StrategyKind::Rendezvous,
        StrategyKind::Modulo,
    ];

    /// The protocol name (lower case).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            StrategyKind::Ring => "ring",
            StrategyKind::Maglev => "maglev",
            StrategyKind::Jump => "jump",
            StrategyKind::Rendezvous => "rendezvous",
            StrategyKind::Modulo => "modulo",
        }
    }

    /// Parses a name, case-insensitively.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// Why a line got an `-ERR` reply. `Display` is the reason after `-ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// The line did not fit the line buffer.
    LineTooLong,
    /// The line is not UTF-8.
    BadUtf8,
    /// The line is empty or blank (no reply is sent for it).
    Empty,
    /// The verb is not a command.
    UnknownCommand,
    /// Too few or too many arguments for this verb (upper case).
    WrongArity(&'static str),
    /// A number is not a decimal `u32`.
    BadNumber,
    /// A name is longer than [`MAX_NAME`] bytes.
    NameTooLong,
    /// A name has a control character.
    BadName,
    /// `STRATEGY` with a name that is not one of [`StrategyKind`]'s.
    UnknownStrategy,
    /// No server has this name.
    UnknownServer,
    /// A server with this name (or the same name hash) exists.
    DuplicateServer,
    /// All `B` slots are taken.
    FleetFull,
    /// Weight 0.
    ZeroWeight,
    /// Weight above [`MAX_WEIGHT`].
    WeightTooLarge,
    /// A strategy's storage cannot hold the fleet's weight.
    NoRoom,
    /// `REPLICAS key 0`.
    ZeroReplicas,
    /// `ROUTE` with no server up.
    NoServerUp,
    /// `now` went backwards.
    Clock,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ProtocolError::LineTooLong => "line too long",
            ProtocolError::BadUtf8 => "bad utf-8",
            ProtocolError::Empty => "empty line",
            ProtocolError::UnknownCommand => "unknown command",
            ProtocolError::WrongArity(verb) => {
                return write!(f, "wrong number of arguments for '{verb}'");
            }
            ProtocolError::BadNumber => "bad number",
            ProtocolError::NameTooLong => "name too long",
            ProtocolError::BadName => "bad name",
            ProtocolError::UnknownStrategy => "unknown strategy",
            ProtocolError::UnknownServer => "unknown server",
            ProtocolError::DuplicateServer => "server already exists",
            ProtocolError::FleetFull => "fleet is full",
            ProtocolError::ZeroWeight => "weight must be at least 1",
            ProtocolError::WeightTooLarge => "weight too large",
            ProtocolError::NoRoom => "not enough capacity for this weight",
            ProtocolError::ZeroReplicas => "replica count must be at least 1",
            ProtocolError::NoServerUp => "no server is up",
            ProtocolError::Clock => "clock went backwards",
        };
        f.write_str(s)
    }
}

impl core::error::Error for ProtocolError {}

impl From<AddError> for ProtocolError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Full => ProtocolError::FleetFull,
            AddError::DuplicateId | AddError::DuplicateName => ProtocolError::DuplicateServer,
            AddError::ZeroWeight => ProtocolError::ZeroWeight,
            AddError::WeightTooLarge => ProtocolError::WeightTooLarge,
            AddError::NoRoom => ProtocolError::NoRoom,
        }
    }
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
fn forbidden_in_name(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

fn parse_name(s: &str) -> Result<&str, ProtocolError> {
    if s.len() > MAX_NAME {
        Err(ProtocolError::NameTooLong)
    } else if s.is_empty() || s.chars().any(forbidden_in_name) {
        Err(ProtocolError::BadName)
    } else {
        Ok(s)
    }
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
            StrategyKind::parse(a)
                .map(Command::Strategy)
                .ok_or(ProtocolError::UnknownStrategy)
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

/// One strategy of each kind, all kept in sync with the fleet: switching is
/// choosing which one picks, and costs nothing (no rebuild, no large temporary
/// on a microcontroller's stack).
#[derive(Debug, Clone)]
struct Strategies<const B: usize, const P: usize, const M: usize> {
    ring: Ring<B, P, 0>,
    maglev: Maglev<B, M>,
    jump: Jump<B, JUMP_BUCKETS>,
    rendezvous: Rendezvous<B>,
    modulo: Modulo<B>,
}

impl<const B: usize, const P: usize, const M: usize> Strategies<B, P, M> {
    const fn new(ring: Ring<B, P, 0>) -> Self {
        Self {
            ring,
            maglev: Maglev::new(),
            jump: Jump::new(),
            rendezvous: Rendezvous::new(),
            modulo: Modulo::new(),
        }
    }

    fn get(&mut self, kind: StrategyKind) -> &mut dyn Strategy {
        match kind {
            StrategyKind::Ring => &mut self.ring,
            StrategyKind::Maglev => &mut self.maglev,
            StrategyKind::Jump => &mut self.jump,
            StrategyKind::Rendezvous => &mut self.rendezvous,
            StrategyKind::Modulo => &mut self.modulo,
        }
    }

    /// Adds to every strategy, or to none.
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        for (i, kind) in StrategyKind::ALL.into_iter().enumerate() {
            if let Err(e) = self.get(kind).add(id, name, weight) {
                for done in StrategyKind::ALL.into_iter().take(i) {
                    let _ = self.get(done).remove(id);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn remove(&mut self, id: BackendId) {
        for kind in StrategyKind::ALL {
            let _ = self.get(kind).remove(id);
        }
    }

    fn set_up(&mut self, id: BackendId, up: bool) {
        for kind in StrategyKind::ALL {
            let _ = self.get(kind).set_up(id, up);
        }
    }
}

/// A server in the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name.
    pub name: Name,
    /// The id the strategy knows it by.
    pub id: BackendId,
    /// Its weight.
    pub weight: u32,
    /// Health.
    pub up: bool,
    /// Successful `ROUTE`s to it since it was added (or the last `RESET`).
    pub routed: u64,
}

/// The controller's counters (all saturating), as `STATS` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Successful `ROUTE`s.
    pub routed: u64,
    /// Routed to the server the flow table had.
    pub flow_hits: u64,
    /// Routed by the strategy because the key was not in the table.
    pub flow_misses: u64,
    /// Routed by the strategy because the pinned server had left or was down.
    pub flow_repinned: u64,
    /// `-ERR` replies.
    pub errors: u64,
}

/// The flow table: key hash → server id, idle timeout, `u16` links.
pub type FlowTable<const N: usize> = TtlCache<u64, BackendId, N, u16>;

/// The balancer behind the protocol: up to `B` named servers, the active
/// strategy (a ring of up to `P` points, Maglev with an `M`-entry table, jump,
/// rendezvous or modulo), an `N`-entry flow table and counters.
///
/// Memory is all inline: about `8 P` bytes for the ring, `2 M` for Maglev,
/// `4 ×` [`JUMP_BUCKETS`] for jump, `26 N` for the flow table and ~60 bytes per
/// server slot ([`rig::HilController`]: 13.6 KiB).
#[derive(Debug, Clone)]
pub struct Controller<const B: usize, const P: usize, const M: usize, const N: usize> {
    servers: [Option<Server>; B],
    kind: StrategyKind,
    strategies: Strategies<B, P, M>,
    flows: FlowTable<N>,
    counters: Counters,
    next_id: u16,
}

impl<const B: usize, const P: usize, const M: usize, const N: usize> Controller<B, P, M, N> {
    /// An empty controller: no servers, the ring with `vnodes` points per unit of
    /// weight, a flow table whose entries die after `ttl` idle ticks.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for `vnodes` the ring refuses, and
    /// [`crate::Error::CacheConfig`] for a TTL the cache refuses.
    pub fn new(vnodes: u32, ttl: Duration) -> Result<Self, crate::Error> {
        Ok(Self {
            servers: core::array::from_fn(|_| None),
            kind: StrategyKind::Ring,
            strategies: Strategies::new(Ring::new(RingConfig::new(vnodes))?),
            flows: TtlCache::new_idle(ttl)?,
            counters: Counters::default(),
            next_id: 0,
        })
    }

    /// As [`new`](Self::new), with `VNODES` and `TTL` checked at compile time
    /// (`VNODES` in `1..=P`, `TTL` in `1..=2^31 - 1`): a bad value fails the build. `const`, so a controller can
    /// sit in a `static`.
    #[must_use]
    pub const fn new_const<const VNODES: u32, const TTL: u32>() -> Self {
        Self {
            servers: [const { None }; B],
            kind: StrategyKind::Ring,
            strategies: Strategies::new(Ring::new_const::<VNODES>()),
            flows: TtlCache::new_idle_const::<TTL>(),
            counters: Counters {
                routed: 0,
                flow_hits: 0,
                flow_misses: 0,
                flow_repinned: 0,
                errors: 0,
            },
            next_id: 0,
        }
    }

    /// The active strategy.
    #[must_use]
    pub const fn strategy(&self) -> StrategyKind {
        self.kind
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// The flow table's own counters.
    #[must_use]
    pub const fn flow_stats(&self) -> crate::CacheStats {
        self.flows.stats()
    }

    /// Seeds the flow table's bucket hash (see
    /// [`TtlCache::set_seed`]; e.g. from the device's TRNG or unique id at boot),
    /// so keys crafted to share a bucket under the default seed do not.
    /// Routing never depends on the seed. *O*(`N`).
    pub fn seed_flows(&mut self, seed: u64) {
        self.flows.set_seed(seed);
    }

    /// The servers, in slot order.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().flatten()
    }

    fn slot_of(&self, name: &str) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.name == name))
    }

    fn by_id(&self, id: BackendId) -> Option<&Server> {
        self.servers().find(|s| s.id == id)
    }

    /// Handles one line from [`LineBuffer::push`]: parses, executes at tick `now`
    /// and writes the reply (nothing for a blank line). Returns whether a reply
    /// was written.
    ///
    /// # Errors
    /// Only the writer's.
    pub fn handle<W: Write + ?Sized>(
        &mut self,
        line: LineResult<'_>,
        now: Instant,
        out: &mut W,
    ) -> Result<bool, fmt::Error> {
        let result = match line {
            Err(LineTooLong) => Err(ProtocolError::LineTooLong),
            Ok(bytes) => Command::parse(bytes).and_then(|cmd| self.execute(&cmd, now, out)),
        };
        match result {
            Ok(()) => Ok(true),
            Err(ProtocolError::Empty) => Ok(false),
            Err(e) => {
                self.counters.errors = self.counters.errors.saturating_add(1);
                write!(out, "-ERR {e}\r\n")?;
                Ok(true)
            }
        }
    }

    /// Executes a command at tick `now`, writing its reply on success. On error
    /// nothing changed and nothing was written: the caller replies `-ERR`
    /// ([`handle`](Self::handle) does). A writer error is reported as success
    /// (the link, not the command, failed).
    ///
    /// # Errors
    /// The reason for `-ERR`.
    pub fn execute<W: Write + ?Sized>(
        &mut self,
        cmd: &Command<'_>,
        now: Instant,
        out: &mut W,
    ) -> Result<(), ProtocolError> {
        // Replies are written after the state changed; a failing writer only
        // loses the reply.
        let _ = match *cmd {
            Command::Ping => out.write_str("+PONG\r\n"),
            Command::Help => write_help(out),
            Command::AddServer { name, weight } => {
                self.add(name, weight.unwrap_or(1))?;
                write!(out, "+OK added {name}\r\n")
            }
            Command::RemoveServer(name) => {
                self.remove(name)?;
                write!(out, "+OK removed {name}\r\n")
            }
            Command::Down(name) => {
                self.set_up(name, false)?;
                write!(out, "+OK {name} down\r\n")
            }
            Command::Up(name) => {
                self.set_up(name, true)?;
                write!(out, "+OK {name} up\r\n")
            }
            Command::Servers => self.write_servers(out),
            Command::Route(key) => {
                let id = self.route(key.as_bytes(), now)?;
                match self.by_id(id) {
                    Some(s) => write!(out, "+{}\r\n", s.name),
                    None => Ok(()),
                }
            }
            Command::Replicas { key, n } => self.write_replicas(key.as_bytes(), n, out)?,
            Command::Strategy(kind) => {
                self.switch(kind);
                write!(out, "+OK strategy {kind}\r\n")
            }
            Command::Stats => self.write_stats(now, out)?,
            Command::Reset => {
                self.reset();
                out.write_str("+OK reset\r\n")
            }
        };
        Ok(())
    }

    /// Adds a server of `weight` in the lowest free slot.
    ///
    /// # Errors
    /// [`ProtocolError::DuplicateServer`], [`ProtocolError::FleetFull`], a weight
    /// error, or [`ProtocolError::NoRoom`].
    pub fn add(&mut self, name: &str, weight: u32) -> Result<(), ProtocolError> {
        let name = Name::try_from(parse_name(name)?).map_err(|_| ProtocolError::NameTooLong)?;
        if weight == 0 {
            return Err(ProtocolError::ZeroWeight);
        }
        if weight > MAX_WEIGHT {
            return Err(ProtocolError::WeightTooLarge);
        }
        if self.slot_of(&name).is_some() {
            return Err(ProtocolError::DuplicateServer);
        }
        let Some(free) = self.servers.iter().position(Option::is_none) else {
            return Err(ProtocolError::FleetFull);
        };
        let id = self.fresh_id();
        self.strategies.add(id, name.as_bytes(), weight)?;
        if let Some(slot) = self.servers.get_mut(free) {
            *slot = Some(Server {
                name,
                id,
                weight,
                up: true,
                routed: 0,
            });
        }
        Ok(())
    }

    fn fresh_id(&mut self) -> BackendId {
        // At most B ids are in use, so this finds one within B + 1 tries.
        loop {
            let id = BackendId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
            if self.by_id(id).is_none() {
                return id;
            }
        }
    }

    /// Removes a server. Its flows are placed again on their next `ROUTE`.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownServer`].
    pub fn remove(&mut self, name: &str) -> Result<(), ProtocolError> {
        let slot = self.slot_of(name).ok_or(ProtocolError::UnknownServer)?;
        if let Some(s) = self.servers.get_mut(slot).and_then(Option::take) {
            // The strategy knows every server of the fleet.
            self.strategies.remove(s.id);
        }
        Ok(())
    }

    /// Marks a server up or down.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownServer`].
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<(), ProtocolError> {
        let slot = self.slot_of(name).ok_or(ProtocolError::UnknownServer)?;
        if let Some(Some(s)) = self.servers.get_mut(slot) {
            s.up = up;
            self.strategies.set_up(s.id, up);
        }
        Ok(())
    }

    /// Routes a key at tick `now` (see the [module docs](self)): the id of its
    /// server. On error nothing changes: not the counters, not the flow table's
    /// contents, counters or clock.
    ///
    /// # Errors
    /// [`ProtocolError::NoServerUp`], or [`ProtocolError::Clock`] if `now` is
    /// less than the flow TTL behind the flow table's clock (see
    /// [`TtlCache::advance`]).
    pub fn route(&mut self, key: &[u8], now: Instant) -> Result<BackendId, ProtocolError> {
        // Both checks come before the flow table is touched: with a server up,
        // the strategy always picks, so nothing below can fail.
        if !self.servers().any(|s| s.up) {
            return Err(ProtocolError::NoServerUp);
        }
        self.flows.advance(now).map_err(|_| ProtocolError::Clock)?;
        let h = crate::hash(key);
        let (servers, kind) = (&self.servers, self.kind);
        let Some(Route { backend: id, how }) = flow::route(
            &mut self.flows,
            h,
            &mut self.strategies,
            |_, id| servers.iter().flatten().any(|s| s.id == id && s.up),
            |strategies| strategies.get(kind).pick(h),
        ) else {
            debug_assert!(false, "a server is up but the strategy picks none");
            return Err(ProtocolError::NoServerUp);
        };
        let c = &mut self.counters;
        let counter = match how {
            How::Pinned => &mut c.flow_hits,
            How::New => &mut c.flow_misses,
            How::Repinned => &mut c.flow_repinned,
        };
        *counter = counter.saturating_add(1);
        self.counters.routed = self.counters.routed.saturating_add(1);
        if let Some(s) = self.servers.iter_mut().flatten().find(|s| s.id == id) {
            s.routed = s.routed.saturating_add(1);
        }
        Ok(id)
    }

    /// Switches the strategy that picks. Every strategy already holds the
    /// fleet, so this cannot fail and costs nothing.
    pub fn switch(&mut self, kind: StrategyKind) {
        self.kind = kind;
    }

    /// Back to the state after [`new`](Self::new): no servers, the ring, an
    /// empty flow table that has forgotten its clock (the next tick is accepted
    /// whatever it is), zero counters. The flow table's seed is kept.
    pub fn reset(&mut self) {
        // Empty the big strategies in place (a fresh ring or Maglev table would
        // be built on the stack first); the small ones are rebuilt, so that jump
        // has no holes left.
        for s in self.servers.iter_mut() {
            if let Some(server) = s.take() {
                let _ = self.strategies.ring.remove(server.id);
                let _ = self.strategies.maglev.remove(server.id);
            }
        }
        self.strategies.jump = Jump::new();
        self.strategies.rendezvous = Rendezvous::new();
        self.strategies.modulo = Modulo::new();
        self.kind = StrategyKind::Ring;
        self.flows.clear();
        self.flows.reset_stats();
        self.counters = Counters::default();
        self.next_id = 0;
    }

    /// The failover order of `key`: up to `n` distinct servers, each where the key
    /// goes when the ones before it are down. Calls `f` with each id.
    fn replicas(&mut self, key: &[u8], n: u32, mut f: impl FnMut(BackendId)) {
        let h = crate::hash(key);
        let mut taken: heapless::Vec<BackendId, B> = heapless::Vec::new();
        while u32::try_from(taken.len()).is_ok_and(|t| t < n) {
            let strategy = self.strategies.get(self.kind);
            let Some(id) = strategy.pick(h) else {
                break;
            };
            if taken.push(id).is_err() || strategy.set_up(id, false).is_err() {
                break;
            }
            f(id);
        }
        for &id in &taken {
            let _ = self.strategies.get(self.kind).set_up(id, true);
        }
    }

    fn write_replicas<W: Write + ?Sized>(
        &mut self,
        key: &[u8],
        n: u32,
        out: &mut W,
    ) -> Result<fmt::Result, ProtocolError> {
        if n == 0 {
            return Err(ProtocolError::ZeroReplicas);
        }
        let mut ids: heapless::Vec<BackendId, B> = heapless::Vec::new();
        self.replicas(key, n, |id| {
            let _ = ids.push(id);
        });
        Ok((|| {
            write!(out, "*{}\r\n", ids.len())?;
            for id in &ids {
                if let Some(s) = self.by_id(*id) {
                    write!(out, "+{}\r\n", s.name)?;
                }
            }
            Ok(())
        })())
    }

    fn write_servers<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        write!(out, "*{}\r\n", self.servers().count())?;
        for s in self.servers() {
            let state = if s.up { "up" } else { "down" };
            write!(out, "+{} {} {state}\r\n", s.name, s.weight)?;
        }
        Ok(())
    }

    fn write_stats<W: Write + ?Sized>(
        &mut self,
        now: Instant,
        out: &mut W,
    ) -> Result<fmt::Result, ProtocolError> {
        self.flows.advance(now).map_err(|_| ProtocolError::Clock)?;
        let c = self.counters;
        let f = self.flows.stats();
        let count = self.servers().count();
        let up = self.servers().filter(|s| s.up).count();
        Ok((|| {
            write!(out, "*{}\r\n", 11 + count)?;
            write!(out, "+strategy {}\r\n", self.kind)?;
            write!(out, "+servers {count}\r\n")?;
            write!(out, "+up {up}\r\n")?;
            write!(out, "+routed {}\r\n", c.routed)?;
            write!(out, "+flow_hits {}\r\n", c.flow_hits)?;
            write!(out, "+flow_misses {}\r\n", c.flow_misses)?;
            write!(out, "+flow_repinned {}\r\n", c.flow_repinned)?;
            write!(out, "+flow_evictions {}\r\n", f.evictions)?;
            write!(out, "+flow_expirations {}\r\n", f.expirations)?;
            write!(out, "+flows {}\r\n", self.flows.len())?;
            write!(out, "+errors {}\r\n", c.errors)?;
            for s in self.servers() {
                write!(out, "+server {} routed {}\r\n", s.name, s.routed)?;
            }
            Ok(())
        })())
    }
}

fn write_help<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    write!(out, "*{}\r\n", HELP.len())?;
    for h in HELP {
        write!(out, "+{h}\r\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
