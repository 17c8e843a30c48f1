//! The `udplb` firmware's balancer: shards memcached's UDP protocol over a
//! fleet of memcached servers, and takes its fleet from chring's control
//! protocol on a UART.
//!
//! ```text
//!  client ──get k──▶ [:11211] udplb [:11212] ──get k (id 17)──▶ memcached S(k)
//!  client ◀─VALUE── (client's id)        ◀──VALUE (id 17)──────┘
//! ```
//!
//! Everything here is packet-in, packets-out logic with no network stack:
//! [`Udplb::on_client`] takes a datagram from a client, [`Udplb::on_server`]
//! one from a memcached server, and both hand the datagrams to send to a
//! callback as ([`To`], bytes). The binary (`src/bin/udplb.rs`) connects them
//! to two smoltcp UDP sockets; the host tests call them directly.
//!
//! - **Routing.** Each key goes to one server, picked by the fleet's
//!   [`Distribution`]: twemproxy's ketama (`chring::compat::twemproxy`, as
//!   nutcracker's `distribution: ketama` with `hash: md5`, i.e. libmemcached's
//!   ketama; a server's identity is its address, without the port when it is
//!   11211, as twemproxy writes it) or chring's ring (XXH3, 64 points per unit
//!   of weight). Not twemproxy's default `hash: fnv1a_64`: its 64-bit prime cut
//!   to 32 bits is 0x1b3, so keys that differ only in their last bytes
//!   (`c1`, `c2`...) hash close together and pile onto one server. One setting, switched with `STRATEGY ketama` /
//!   `STRATEGY ring` on the UART.
//! - **Health.** A server marked `DOWN` keeps its place; its keys go to the next
//!   point clockwise whose server is up (the ring's `pick`, and the
//!   same walk over ketama's continuum), so the other servers' keys do not move.
//! - **Requests.** The device gives each forwarded request its own request id
//!   and remembers (id -> client, client's id, server) in a fixed-capacity
//!   [`TtlCache`] ([`PENDING`] entries, [`PENDING_TTL_MS`] from the write): a
//!   reply's datagrams go back to that client under its own id, unchanged
//!   otherwise, and the entry is dropped after the last one; a lost reply's
//!   entry expires. memcached 1.6 answers a multi-key `get` with one message
//!   per value and one for `END`, each `sequence 0 of 1` (or `0..n of n` for a
//!   value over 1,400 bytes), all under the request's id: a `get`'s reply ends
//!   with the last datagram of a message ending in `END` (or an error line),
//!   any other reply with the last datagram of its message.
//! - **Multi-key gets** are split per server: each server gets a `get` (or
//!   `gets`) of its own keys, and the parts' `VALUE` lines are merged into one
//!   reply ending with a single `END`, which is what a memcached client expects
//!   for one request. `VALUE` lines come in the order the parts' datagrams
//!   arrive, not in key order; clients match them by key. Up to [`MERGE_SLOTS`] merges are in
//!   progress at once, each reply up to one datagram ([`MAX_DATAGRAM_PAYLOAD`]).
//! - **Errors** are answered in memcached's words, under the client's request
//!   id: `ERROR` for an unknown command, `CLIENT_ERROR bad command line format`,
//!   `SERVER_ERROR no server is up`, `SERVER_ERROR busy` (every merge slot in
//!   use), `SERVER_ERROR multi-get reply too large`; a datagram too short for a
//!   frame header cannot be answered and is counted in `dropped`.
//!
//! Nothing here panics or allocates on any input.

use core::fmt::{self, Write};

use chring::compat::twemproxy::{DEFAULT_PORT, Ketama, KeyHash};
use chring::protocol::{Command, LineResult, LineTooLong, MAX_NAME, Name, ProtocolError};
use chring::{BackendId, Instant, MAX_WEIGHT, Ring, TtlCache};

use crate::memcache::{
    FrameHeader, HEADER_LEN, MAX_DATAGRAM, MAX_DATAGRAM_PAYLOAD, Request, RequestError, Verb,
    values_of,
};

/// Servers in the fleet, at most.
pub const MAX_SERVERS: usize = 8;
/// ketama's continuum: 160 points per server always suffice.
pub const KETAMA_POINTS: usize = 160 * MAX_SERVERS;
/// The ring's points per unit of weight.
pub const RING_VNODES: u32 = 64;
/// The ring's capacity: a total weight of 8.
pub const RING_POINTS: usize = 512;
/// Requests in flight, at most (the pending table's capacity).
pub const PENDING: usize = 256;
/// How long a forwarded request waits for its reply, ms.
pub const PENDING_TTL_MS: u32 = 2_000;
/// Multi-key gets being merged at once, at most.
pub const MERGE_SLOTS: usize = 4;
/// A merge has no part id: [`Pending::merge`] for a plain request.
const NO_MERGE: u8 = u8::MAX;

/// An IPv4 address and UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Endpoint {
    /// The address.
    pub addr: [u8; 4],
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `a.b.c.d:port` (decimal, port 1..=65535).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (ip, port) = s.split_once(':')?;
        let port: u16 = digits(port)?.try_into().ok().filter(|&p| p != 0)?;
        let mut addr = [0u8; 4];
        let mut parts = ip.split('.');
        for a in &mut addr {
            *a = digits(parts.next()?)?.try_into().ok()?;
        }
        parts.next().is_none().then_some(Self { addr, port })
    }
}

/// A decimal number of 1 to 5 digits.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr;
        write!(f, "{a}.{b}.{c}.{d}:{}", self.port)
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// Back to a client, from the client-facing port.
    Client(Endpoint),
    /// To a memcached server, from the upstream port.
    Server(Endpoint),
}

/// How keys are placed on the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Distribution {
    /// twemproxy's `distribution: ketama` with `hash: md5`.
    Ketama,
    /// chring's ring.
    Ring,
}

impl Distribution {
    /// The name `STRATEGY` takes and `STATS` prints.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Ring => "ring",
        }
    }
}

/// A memcached server of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name on the control protocol: its address, `a.b.c.d:port`.
    pub name: Name,
    /// Where its datagrams go.
    pub endpoint: Endpoint,
    /// Its weight.
    pub weight: u32,
    /// Health.
    pub up: bool,
    /// Requests forwarded to it.
    pub forwarded: u64,
    /// Reply datagrams from it.
    pub replies: u64,
}

/// The balancer's counters (saturating), as `STATS` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Counters {
    /// Datagrams from clients.
    pub requests: u64,
    /// Requests (or parts of split requests) forwarded to servers.
    pub forwarded: u64,
    /// Reply datagrams relayed to clients (merged replies count once).
    pub replies: u64,
    /// Multi-key gets split over several servers.
    pub split: u64,
    /// Merged replies sent.
    pub merged: u64,
    /// Error replies the device made itself (bad requests, no server, busy).
    pub errors: u64,
    /// Client datagrams too short for a frame header (cannot be answered).
    pub dropped: u64,
    /// Server datagrams with no request waiting for them (late or stray).
    pub unmatched: u64,
    /// Requests that expired without their (whole) reply.
    pub expired: u64,
    /// Requests forgotten because the pending table was full.
    pub evicted: u64,
}

/// What the device remembers about a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    client: Endpoint,
    client_id: u16,
    /// The server's slot.
    server: u8,
    /// The merge slot of a split get's part, or [`NO_MERGE`].
    merge: u8,
    /// A `get`/`gets`: its reply ends with `END`.
    get: bool,
}

/// Whether a reply message is one of memcached's error lines.
fn is_error(payload: &[u8]) -> bool {
    [&b"ERROR"[..], b"CLIENT_ERROR ", b"SERVER_ERROR "]
        .iter()
        .any(|e| payload.starts_with(e))
}

/// A split multi-key get being merged.
#[derive(Debug, Clone)]
struct Merge {
    active: bool,
    client: Endpoint,
    client_id: u16,
    /// Parts sent, and answered so far.
    parts: u8,
    answered: u8,
    /// A part failed (an error reply, several datagrams) or the merge outgrew a
    /// datagram: answer with an error.
    failed: bool,
    /// Tick of the request, for expiry.
    born: u32,
    len: usize,
    buf: [u8; MAX_DATAGRAM_PAYLOAD],
}

impl Merge {
    const EMPTY: Self = Self {
        active: false,
        client: Endpoint {
            addr: [0; 4],
            port: 0,
        },
        client_id: 0,
        parts: 0,
        answered: 0,
        failed: false,
        born: 0,
        len: 0,
        buf: [0; MAX_DATAGRAM_PAYLOAD],
    };
}

/// Why a control line got `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum ControlError {
    /// chring's protocol's own errors (parsing, unknown server, full fleet...).
    Protocol(ProtocolError),
    /// `ADD_SERVER` with a name that is not `a.b.c.d:port`.
    BadAddress,
    /// `STRATEGY` other than `ketama` or `ring`.
    UnknownStrategy,
    /// A protocol command this balancer does not serve (`REPLICAS`).
    Unsupported,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Protocol(e) => e.fmt(f),
            ControlError::BadAddress => f.write_str("bad address (expected a.b.c.d:port)"),
            ControlError::UnknownStrategy => f.write_str("unknown strategy (ketama or ring)"),
            ControlError::Unsupported => f.write_str("unsupported command"),
        }
    }
}

impl From<ProtocolError> for ControlError {
    fn from(e: ProtocolError) -> Self {
        ControlError::Protocol(e)
    }
}

/// The commands of the control port, in `HELP` order.
pub const HELP: [&str; 10] = [
    "PING",
    "HELP",
    "ADD_SERVER a.b.c.d:port [weight]",
    "REMOVE_SERVER a.b.c.d:port",
    "DOWN a.b.c.d:port",
    "UP a.b.c.d:port",
    "SERVERS",
    "ROUTE key",
    "STRATEGY ketama|ring",
    "STATS",
];

/// The balancer: the fleet (ketama and ring, both kept in sync), the pending
/// requests, the merges in progress and the counters. About 30 KiB, all
/// inline; [`Udplb::new`] is `const`, so it can sit in a `static`.
#[derive(Debug, Clone)]
pub struct Udplb {
    servers: [Option<Upstream>; MAX_SERVERS],
    ketama: Ketama<MAX_SERVERS, KETAMA_POINTS, MAX_NAME>,
    /// The slot of each ketama server, in ketama's (insertion) order.
    ketama_slots: heapless::Vec<u8, MAX_SERVERS>,
    ring: Ring<MAX_SERVERS, RING_POINTS, 0>,
    distribution: Distribution,
    pending: TtlCache<u16, Pending, PENDING, u16>,
    merges: [Merge; MERGE_SLOTS],
    next_id: u16,
    counters: Counters,
}

impl Default for Udplb {
    fn default() -> Self {
        Self::new()
    }
}

fn bump(c: &mut u64) {
    *c = c.saturating_add(1);
}

/// A datagram under construction in a fixed buffer.
struct Datagram {
    buf: [u8; MAX_DATAGRAM],
    len: usize,
}

impl Datagram {
    fn new(header: FrameHeader) -> Self {
        let mut buf = [0u8; MAX_DATAGRAM];
        if let Some(h) = buf.get_mut(..HEADER_LEN) {
            h.copy_from_slice(&header.to_bytes());
        }
        Self {
            buf,
            len: HEADER_LEN,
        }
    }

    /// Appends, or returns `false` (and appends nothing) past the end.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Udplb {
    /// An empty fleet, ketama, nothing pending.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            servers: [const { None }; MAX_SERVERS],
            ketama: Ketama::new(KeyHash::Md5),
            ketama_slots: heapless::Vec::new(),
            ring: Ring::new_const::<RING_VNODES>(),
            distribution: Distribution::Ketama,
            pending: TtlCache::new_const::<PENDING_TTL_MS>(),
            merges: [Merge::EMPTY; MERGE_SLOTS],
            next_id: 0,
            counters: Counters {
                requests: 0,
                forwarded: 0,
                replies: 0,
                split: 0,
                merged: 0,
                errors: 0,
                dropped: 0,
                unmatched: 0,
                expired: 0,
                evicted: 0,
            },
        }
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// The active distribution.
    #[must_use]
    pub const fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The servers, in slot order.
    pub fn servers(&self) -> impl Iterator<Item = &Upstream> {
        self.servers.iter().flatten()
    }

    /// Requests waiting for their replies.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn slot_of(&self, name: &str) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.name == name))
    }

    fn is_up(&self, slot: usize) -> bool {
        matches!(self.servers.get(slot), Some(Some(s)) if s.up)
    }

    /// The server `key` goes to: the distribution's pick, or, if that server
    /// is down, the next one clockwise that is up. `None` when no server is
    /// up. *O*(log points) (plus the walk past down servers).
    #[must_use]
    pub fn pick(&self, key: &[u8]) -> Option<usize> {
        match self.distribution {
            Distribution::Ring => self
                .ring
                .pick(chring::hash(key))
                .map(|id| usize::from(id.0)),
            Distribution::Ketama => {
                let slot_at = |i: usize| self.ketama_slots.get(i).map(|&s| usize::from(s));
                let first = slot_at(self.ketama.server_for(key)?)?;
                if self.is_up(first) {
                    return Some(first);
                }
                // twemproxy's own hash of the key; the walk starts where
                // `dispatch` does and goes clockwise.
                let h = self.ketama.key_hash().hash(key);
                let points = self.ketama.points();
                let start = points.partition_point(|p| p.value < h);
                let (before, after) = points.split_at(start.min(points.len()));
                after
                    .iter()
                    .chain(before)
                    .filter_map(|p| slot_at(usize::from(p.server)))
                    .find(|&s| self.is_up(s))
            }
        }
    }

    /// Adds a server named by its address, with `weight`, to both
    /// distributions (or to neither).
    ///
    /// # Errors
    /// [`ControlError::BadAddress`], or the protocol's errors for a duplicate,
    /// a full fleet, a bad weight or no room.
    pub fn add(&mut self, name: &str, weight: u32) -> Result<(), ControlError> {
        let endpoint = Endpoint::parse(name).ok_or(ControlError::BadAddress)?;
        let name = Name::try_from(name).map_err(|_| ProtocolError::NameTooLong)?;
        if weight == 0 {
            return Err(ProtocolError::ZeroWeight.into());
        }
        if weight > MAX_WEIGHT {
            return Err(ProtocolError::WeightTooLarge.into());
        }
        if self
            .servers()
            .any(|s| s.name == name || s.endpoint == endpoint)
        {
            return Err(ProtocolError::DuplicateServer.into());
        }
        let Some(slot) = self.servers.iter().position(Option::is_none) else {
            return Err(ProtocolError::FleetFull.into());
        };
        // Slots are below MAX_SERVERS (8): they fit u8 and u16.
        let (slot8, id) = (slot as u8, BackendId(slot as u16));
        self.ring
            .add(id, name.as_bytes(), weight)
            .map_err(ProtocolError::from)?;
        // twemproxy's identity of an unnamed server: `host:port`, or the host
        // alone on the default port.
        let mut default_port = [0u8; 6];
        let suffix = {
            let _ = write!(Cursor::new(&mut default_port), ":{DEFAULT_PORT}");
            &default_port[..]
        };
        let identity = name
            .as_bytes()
            .strip_suffix(suffix)
            .unwrap_or(name.as_bytes());
        if let Err(e) = self.ketama.add(identity, weight) {
            let _ = self.ring.remove(id);
            return Err(ProtocolError::from(match e {
                chring::compat::twemproxy::KetamaError::Full => chring::AddError::Full,
                chring::compat::twemproxy::KetamaError::DuplicateName => {
                    chring::AddError::DuplicateName
                }
                chring::compat::twemproxy::KetamaError::ZeroWeight => chring::AddError::ZeroWeight,
                _ => chring::AddError::NoRoom,
            })
            .into());
        }
        if self.ketama_slots.push(slot8).is_err() {
            // Both hold at most MAX_SERVERS; the ketama add above succeeded.
            debug_assert!(false, "ketama_slots full");
        }
        if let Some(s) = self.servers.get_mut(slot) {
            *s = Some(Upstream {
                name,
                endpoint,
                weight,
                up: true,
                forwarded: 0,
                replies: 0,
            });
        }
        Ok(())
    }

    /// Removes a server. Requests waiting for its replies expire.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownServer`].
    pub fn remove(&mut self, name: &str) -> Result<(), ControlError> {
        let slot = self.slot_of(name).ok_or(ProtocolError::UnknownServer)?;
        if let Some(s) = self.servers.get_mut(slot) {
            *s = None;
        }
        let _ = self.ring.remove(BackendId(slot as u16));
        if let Some(i) = self
            .ketama_slots
            .iter()
            .position(|&s| usize::from(s) == slot)
        {
            let _ = self.ketama.remove(i);
            self.ketama_slots.remove(i);
        }
        Ok(())
    }

    /// Marks a server up or down.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownServer`].
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<(), ControlError> {
        let slot = self.slot_of(name).ok_or(ProtocolError::UnknownServer)?;
        if let Some(Some(s)) = self.servers.get_mut(slot) {
            s.up = up;
        }
        let _ = self.ring.set_up(BackendId(slot as u16), up);
        Ok(())
    }

    /// Chooses the distribution; both always hold the fleet.
    pub fn switch(&mut self, d: Distribution) {
        self.distribution = d;
    }

    /// Back to the state after boot: no servers, ketama, nothing pending,
    /// zero counters.
    pub fn reset(&mut self) {
        for slot in 0..MAX_SERVERS {
            if self.servers.get(slot).is_some_and(Option::is_some) {
                let _ = self.ring.remove(BackendId(slot as u16));
            }
            if let Some(s) = self.servers.get_mut(slot) {
                *s = None;
            }
        }
        self.ketama.clear();
        self.ketama_slots.clear();
        self.distribution = Distribution::Ketama;
        self.pending.clear();
        for m in &mut self.merges {
            m.active = false;
        }
        self.counters = Counters::default();
    }

    /// Moves the pending table's clock; counts what expired.
    fn tick(&mut self, now: Instant) {
        // A clock step back (it cannot happen with a monotonic tick) keeps the
        // table's clock: requests then just live a little longer.
        if let Ok(n) = self.pending.advance(now) {
            self.counters.expired = self.counters.expired.saturating_add(n as u64);
        }
        for m in &mut self.merges {
            if m.active && now.0.wrapping_sub(m.born) > PENDING_TTL_MS {
                m.active = false;
            }
        }
    }

    fn fresh_id(&mut self) -> u16 {
        // At most PENDING (< 2^16) ids are in use: this ends within PENDING + 1 tries.
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    fn remember(&mut self, id: u16, p: Pending) {
        if let chring::Inserted::Evicted { .. } = self.pending.insert(id, p) {
            bump(&mut self.counters.evicted);
        }
    }

    /// Answers a client with a reply the device made.
    fn answer(&mut self, to: Endpoint, id: u16, reply: &[u8], out: &mut impl FnMut(To, &[u8])) {
        let mut d = Datagram::new(FrameHeader::single(id));
        d.push(reply);
        bump(&mut self.counters.errors);
        out(To::Client(to), d.bytes());
    }

    /// Forwards `payload` to the server in `slot` under a fresh id.
    fn forward(
        &mut self,
        slot: usize,
        p: Pending,
        payload: &[u8],
        expect_reply: bool,
        out: &mut impl FnMut(To, &[u8]),
    ) {
        let Some(Some(server)) = self.servers.get_mut(slot) else {
            return;
        };
        bump(&mut server.forwarded);
        let to = server.endpoint;
        let id = self.fresh_id();
        if expect_reply {
            self.remember(id, p);
        }
        let mut d = Datagram::new(FrameHeader::single(id));
        d.push(payload);
        bump(&mut self.counters.forwarded);
        out(To::Server(to), d.bytes());
    }

    /// Handles a datagram from a client at tick `now`: routes it, or answers
    /// it with an error. *O*(keys x log points).
    pub fn on_client(
        &mut self,
        from: Endpoint,
        datagram: &[u8],
        now: Instant,
        out: &mut impl FnMut(To, &[u8]),
    ) {
        self.tick(now);
        bump(&mut self.counters.requests);
        let Ok((h, payload)) = FrameHeader::parse(datagram) else {
            bump(&mut self.counters.dropped);
            return;
        };
        if h.sequence != 0 || h.total != 1 {
            self.answer(from, h.request_id, RequestError::MultiPacket.reply(), out);
            return;
        }
        let req = match Request::parse(payload) {
            Ok(r) => r,
            Err(e) => {
                self.answer(from, h.request_id, e.reply(), out);
                return;
            }
        };
        // Each key's server, in request order.
        let mut slots: heapless::Vec<u8, 128> = heapless::Vec::new();
        for key in req.keys() {
            let Some(s) = self.pick(key) else {
                self.answer(from, h.request_id, b"SERVER_ERROR no server is up\r\n", out);
                return;
            };
            if slots.push(s as u8).is_err() {
                self.answer(from, h.request_id, b"SERVER_ERROR too many keys\r\n", out);
                return;
            }
        }
        let first = slots.first().copied().unwrap_or(0);
        let pending = |merge: u8| Pending {
            client: from,
            client_id: h.request_id,
            server: first,
            merge,
            get: matches!(req.verb, Verb::Get | Verb::Gets),
        };
        if slots.iter().all(|&s| s == first) {
            let reply =
                !(matches!(req.verb, Verb::Set | Verb::Delete) && Request::noreply(payload));
            self.forward(usize::from(first), pending(NO_MERGE), payload, reply, out);
            return;
        }
        // Split: one part per server, in order of first appearance.
        let Some(m) = self.merges.iter().position(|m| !m.active) else {
            self.answer(from, h.request_id, b"SERVER_ERROR busy\r\n", out);
            return;
        };
        bump(&mut self.counters.split);
        let mut parts = 0u8;
        for (i, &s) in slots.iter().enumerate() {
            if slots.get(..i).is_some_and(|seen| seen.contains(&s)) {
                continue;
            }
            let mut part = [0u8; MAX_DATAGRAM_PAYLOAD];
            let mut len = 0;
            let mut put = |b: &[u8]| {
                if let Some(dst) = part.get_mut(len..len + b.len()) {
                    dst.copy_from_slice(b);
                    len += b.len();
                }
            };
            put(req.verb.name().as_bytes());
            for (key, _) in req.keys().zip(slots.iter()).filter(|&(_, &k)| k == s) {
                put(b" ");
                put(key);
            }
            put(b"\r\n");
            let p = Pending {
                server: s,
                ..pending(m as u8)
            };
            self.forward(usize::from(s), p, part.get(..len).unwrap_or(&[]), true, out);
            parts += 1;
        }
        if let Some(slot) = self.merges.get_mut(m) {
            slot.active = true;
            slot.client = from;
            slot.client_id = h.request_id;
            slot.parts = parts;
            slot.answered = 0;
            slot.failed = false;
            slot.born = now.0;
            slot.len = 0;
        }
    }

    /// Handles a datagram from a memcached server at tick `now`: relays it to
    /// the client that waits for it, or merges it. *O*(datagram).
    pub fn on_server(
        &mut self,
        from: Endpoint,
        datagram: &[u8],
        now: Instant,
        out: &mut impl FnMut(To, &[u8]),
    ) {
        self.tick(now);
        let Ok((h, payload)) = FrameHeader::parse(datagram) else {
            bump(&mut self.counters.unmatched);
            return;
        };
        let Some(&p) = self.pending.peek(&h.request_id) else {
            bump(&mut self.counters.unmatched);
            return;
        };
        let server = usize::from(p.server);
        match self.servers.get_mut(server) {
            Some(Some(s)) if s.endpoint == from => bump(&mut s.replies),
            // Not from the server the request went to: a stray datagram.
            _ => {
                bump(&mut self.counters.unmatched);
                return;
            }
        }
        // memcached 1.6 answers a `get` of several keys with several messages
        // under the request's id (one per value, then `END`), each of one or
        // more datagrams: the reply is complete at the last datagram of a
        // message that ends with `END` (or is an error). Anything else is
        // complete at the last datagram of its first message.
        let last_of_message = h.sequence.saturating_add(1) >= h.total;
        let done =
            last_of_message && (!p.get || payload.ends_with(b"END\r\n") || is_error(payload));
        if done {
            self.pending.remove(&h.request_id);
        }
        if p.merge == NO_MERGE {
            let mut d = Datagram::new(FrameHeader {
                request_id: p.client_id,
                ..h
            });
            d.push(payload);
            bump(&mut self.counters.replies);
            out(To::Client(p.client), d.bytes());
            return;
        }
        let Some(m) = self.merges.get_mut(usize::from(p.merge)) else {
            return;
        };
        if !m.active || m.client != p.client || m.client_id != p.client_id {
            // The merge expired (or its slot was reused) before this part.
            bump(&mut self.counters.unmatched);
            return;
        }
        // A part's values are appended as they come (each datagram of a
        // one-datagram message holds whole `VALUE` blocks); its `END` is
        // dropped. A value spread over several datagrams, or an error, fails
        // the merge.
        let values = if done {
            values_of(payload)
        } else {
            Some(payload)
        };
        match values.filter(|_| h.total == 1) {
            Some(v) => match m.buf.get_mut(m.len..m.len + v.len()) {
                Some(dst) => {
                    dst.copy_from_slice(v);
                    m.len += v.len();
                }
                None => m.failed = true,
            },
            None => m.failed = true,
        }
        if !done {
            return;
        }
        m.answered = m.answered.saturating_add(1);
        if m.answered < m.parts {
            return;
        }
        m.active = false;
        let mut d = Datagram::new(FrameHeader::single(m.client_id));
        let fits = m.len + 5 <= MAX_DATAGRAM_PAYLOAD;
        let to = m.client;
        if m.failed || !fits {
            d.push(b"SERVER_ERROR multi-get reply too large\r\n");
            bump(&mut self.counters.errors);
        } else {
            d.push(m.buf.get(..m.len).unwrap_or(&[]));
            d.push(b"END\r\n");
            bump(&mut self.counters.merged);
            bump(&mut self.counters.replies);
        }
        out(To::Client(to), d.bytes());
    }

    /// Handles one control line (from [`chring::protocol::LineBuffer`]),
    /// writing its reply (nothing for a blank line); `STATS` adds the board's
    /// `extra` fields ([`write_stats`](Self::write_stats)). Returns whether a
    /// reply was written.
    ///
    /// # Errors
    /// Only the writer's.
    pub fn control<W: Write + ?Sized>(
        &mut self,
        line: LineResult<'_>,
        extra: &[(&str, u64)],
        out: &mut W,
    ) -> Result<bool, fmt::Error> {
        let result = match line {
            Err(LineTooLong) => Err(ProtocolError::LineTooLong.into()),
            Ok(bytes) => self.execute(bytes, extra, out),
        };
        match result {
            Ok(()) => Ok(true),
            Err(ControlError::Protocol(ProtocolError::Empty)) => Ok(false),
            Err(e) => {
                write!(out, "-ERR {e}\r\n")?;
                Ok(true)
            }
        }
    }

    fn execute<W: Write + ?Sized>(
        &mut self,
        line: &[u8],
        extra: &[(&str, u64)],
        out: &mut W,
    ) -> Result<(), ControlError> {
        // `STRATEGY` takes this balancer's names, not the protocol's.
        let mut words = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|w| !w.is_empty());
        if words
            .next()
            .is_some_and(|v| v.eq_ignore_ascii_case(b"STRATEGY"))
        {
            let d = match (words.next(), words.next()) {
                (Some(w), None) if w.eq_ignore_ascii_case(b"ketama") => Distribution::Ketama,
                (Some(w), None) if w.eq_ignore_ascii_case(b"ring") => Distribution::Ring,
                (Some(_), None) => return Err(ControlError::UnknownStrategy),
                _ => return Err(ProtocolError::WrongArity("STRATEGY").into()),
            };
            self.switch(d);
            let _ = write!(out, "+OK strategy {}\r\n", d.name());
            return Ok(());
        }
        let cmd = Command::parse(line)?;
        let _ = match cmd {
            Command::Ping => out.write_str("+PONG\r\n"),
            Command::Help => {
                let _ = write!(out, "*{}\r\n", HELP.len());
                HELP.iter().try_for_each(|h| write!(out, "+{h}\r\n"))
            }
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
            Command::Servers => {
                let _ = write!(out, "*{}\r\n", self.servers().count());
                self.servers().try_for_each(|s| {
                    let health = if s.up { "up" } else { "down" };
                    write!(out, "+{} {} {health}\r\n", s.name, s.weight)
                })
            }
            Command::Route(key) => {
                let slot = self.pick(key.as_bytes()).ok_or(ProtocolError::NoServerUp)?;
                match self.servers.get(slot) {
                    Some(Some(s)) => write!(out, "+{}\r\n", s.name),
                    _ => Ok(()),
                }
            }
            Command::Stats => self.write_stats(out, extra),
            Command::Reset => {
                self.reset();
                out.write_str("+OK reset\r\n")
            }
            Command::Strategy(_) | Command::Replicas { .. } => {
                return Err(ControlError::Unsupported);
            }
        };
        Ok(())
    }

    /// Writes the `STATS` reply: `*n`, then `+field value` lines: the
    /// balancer's fields, `extra` (the board's: the NIC's counters), then
    /// `server NAME forwarded N replies M` per server.
    ///
    /// # Errors
    /// Only the writer's.
    pub fn write_stats<W: Write + ?Sized>(
        &self,
        out: &mut W,
        extra: &[(&str, u64)],
    ) -> fmt::Result {
        let c = &self.counters;
        let up = self.servers().filter(|s| s.up).count();
        let fields: [(&str, u64); 13] = [
            ("servers", self.servers().count() as u64),
            ("up", up as u64),
            ("requests", c.requests),
            ("forwarded", c.forwarded),
            ("replies", c.replies),
            ("split", c.split),
            ("merged", c.merged),
            ("errors", c.errors),
            ("dropped", c.dropped),
            ("unmatched", c.unmatched),
            ("expired", c.expired),
            ("evicted", c.evicted),
            ("pending", self.pending.len() as u64),
        ];
        let n = 1 + fields.len() + extra.len() + self.servers().count();
        write!(
            out,
            "*{n}\r\n+distribution {}\r\n",
            self.distribution.name()
        )?;
        for (k, v) in fields.iter().chain(extra) {
            write!(out, "+{k} {v}\r\n")?;
        }
        for s in self.servers() {
            write!(
                out,
                "+server {} forwarded {} replies {}\r\n",
                s.name, s.forwarded, s.replies
            )?;
        }
        Ok(())
    }
}

/// `core::fmt::Write` into a byte slice, dropping what does not fit.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
