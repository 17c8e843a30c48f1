//! The balancer behind the protocol: fleet, strategies, flow table, counters.

use core::fmt::{self, Write};

use super::command::{check_weight, parse_name};
use super::frame::LineTooLong;
use super::{Command, HELP, JUMP_BUCKETS, KINDS, LineResult, Name, ProtocolError};
#[cfg(doc)]
use super::{LineBuffer, rig};
use crate::StrategyKind;
use crate::flow::{self, How, Route};
use crate::{
    AddError, BackendId, Duration, Instant, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig,
    Strategy, TtlCache,
};

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
            // Never held: `Controller::switch` refuses the other kinds, so the
            // active kind is always one of `KINDS`.
            StrategyKind::Bounded | StrategyKind::P2c | StrategyKind::RoundRobin => &mut self.ring,
        }
    }

    /// Adds to every strategy, or to none.
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        for (i, kind) in KINDS.into_iter().enumerate() {
            if let Err(e) = self.get(kind).add(id, name, weight) {
                for done in KINDS.into_iter().take(i) {
                    let _ = self.get(done).remove(id);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn remove(&mut self, id: BackendId) {
        for kind in KINDS {
            let _ = self.get(kind).remove(id);
        }
    }

    fn set_up(&mut self, id: BackendId, up: bool) {
        for kind in KINDS {
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
/// Memory is all inline: about `8 P` bytes for the ring, `4 M` for Maglev (its
/// two tables: every backend, and the backends that are up), `4 ×`
/// [`JUMP_BUCKETS`] for jump, `26 N` for the flow table and ~60 bytes per
/// server slot ([`rig::HilController`]: 19,304 bytes on the Cortex-M4).
#[derive(Debug, Clone)]
pub struct Controller<const B: usize, const P: usize, const M: usize, const N: usize> {
    servers: [Option<Server>; B],
    kind: StrategyKind,
    strategies: Strategies<B, P, M>,
    pub(super) flows: FlowTable<N>,
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

    pub(super) fn by_id(&self, id: BackendId) -> Option<&Server> {
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
                self.switch(kind)?;
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
        check_weight(weight)?;
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

    /// Routes a key at tick `now` (see the [module docs](super)): the id of its
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

    /// Switches the strategy that picks. Every strategy the controller holds
    /// ([`KINDS`]) already holds the fleet, so this costs nothing.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownStrategy`] for a kind the controller does not
    /// hold (bounded loads, two choices, round robin: they follow load, which
    /// the protocol does not report); the active strategy is unchanged.
    pub fn switch(&mut self, kind: StrategyKind) -> Result<(), ProtocolError> {
        if !KINDS.contains(&kind) {
            return Err(ProtocolError::UnknownStrategy);
        }
        self.kind = kind;
        Ok(())
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
