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

// Items the module docs link to.
#[cfg(doc)]
use crate::{BackendId, TtlCache};

mod command;
mod controller;
mod error;
mod frame;
pub mod rig;

pub use command::{Command, check_weight, forbidden_in_name, parse_name, parse_weight};
pub use controller::{Controller, Counters, FlowTable, Server};
pub use error::ProtocolError;
pub use frame::{LineBuffer, LineResult, LineTooLong};

/// The kinds of strategy core defines; the controller holds the first five
/// ([`KINDS`]). Re-exported here, where it used to live.
pub use crate::StrategyKind;

/// The strategies a [`Controller`] holds and `STRATEGY` switches between, in
/// `HELP` order: the key-affine ones. The others (bounded loads, two choices,
/// round robin) follow load, which the protocol does not report.
pub const KINDS: [StrategyKind; 5] = [
    StrategyKind::Ring,
    StrategyKind::Maglev,
    StrategyKind::Jump,
    StrategyKind::Rendezvous,
    StrategyKind::Modulo,
];

/// The longest server name, in bytes.
pub const MAX_NAME: usize = 32;

/// A server's name.
pub type Name = heapless::String<MAX_NAME>;

/// Bucket capacity of the controller's jump hash (the fleet's total weight).
pub const JUMP_BUCKETS: usize = 64;

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

#[cfg(test)]
mod tests;
