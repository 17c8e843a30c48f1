//! The balancer: a chring [`Strategy`] behind a flow table, as an L4 switch or an
//! MCU front-end runs it.
//!
//! A request carries a flow (the 5-tuple of a connection) reduced to two numbers:
//! the 64-bit key hash the strategy places, and a 32-bit [`FlowKey`] for the flow
//! table. The first packet of a flow asks the strategy; the flow table then
//! remembers the answer, so a live flow keeps its backend when the fleet changes
//! and only flows whose backend left are placed again. Entries die after `ttl`
//! ticks without traffic (idle timeout, conntrack style) or, when the table is
//! full, least recently used first.
//!
//! Nothing here touches hardware, a clock or a logger: the caller passes `now`
//! (see [`Monotonic`](crate::board::Monotonic)) and reads counters back, so the same
//! code runs on the target, on the host under test, and behind the UART control
//! protocol that a later firmware serves.
//!
//! # The flow key: 32 bits, and what a collision costs
//!
//! The table is keyed by a 32-bit hash of the 5-tuple, not by the 13-byte tuple
//! nor a 64-bit hash: that keeps an entry at 22 bytes
//! ([`FlowTable::bytes_per_entry`]), under the 24-byte budget, where a `u64` key
//! costs 26. The price is that two flows with the same 32-bit key share one entry.
//! With `n` live flows the chance that any two collide is about `n² / 2³³`:
//! 1.2 × 10⁻⁴ for the 1024 flows a full table holds. A colliding flow is sent to
//! the backend of the flow it collides with, which is a live backend, so nothing is
//! dropped; the only loss is that, for the lifetime of the pair, the second flow
//! does not sit where the strategy would have put it (and, for a stateful backend,
//! that it may land on a backend that never saw its first packet if the entry was
//! made by the other flow after its own first packet — a 10⁻⁴-level event). A
//! deployment that cannot accept that keeps the full tuple as the key:
//! 13-byte keys cost 31 bytes per entry.

use core::fmt;

use chring::flow;
use chring::{
    AddError, Backend, BackendId, CacheStats, ClockError, Duration, FleetView, Instant, LoadAware,
    LoadError, Membership, Outcome, Placement, Strategy, TtlCache, UnknownBackend,
};

/// The flow table's key: a 32-bit hash of the flow's 5-tuple (see the
/// [module docs](self) for the collision trade-off).
pub type FlowKey = u32;

/// The flow table: [`FlowKey`] → [`BackendId`], `N` entries, `u16` links
/// (22 bytes per entry), idle timeout.
pub type FlowTable<const N: usize> = TtlCache<FlowKey, BackendId, N, u16>;

/// How a request was routed, and where it went: chring's flow-pinning types
/// ([`chring::flow`]), which this balancer and the protocol's controller share.
pub use chring::flow::{How, Route};

/// Counters of a [`Balancer`] (all saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct RouteStats {
    /// Requests routed.
    pub routed: u64,
    /// Requests sent to the backend the flow table had ([`How::Pinned`]).
    pub pinned: u64,
    /// Of those, requests whose flow the strategy would now send elsewhere: the
    /// flow kept its backend across a fleet change (the point of the table).
    pub kept_off_strategy: u64,
    /// Requests of new (or forgotten) flows ([`How::New`]).
    pub new: u64,
    /// Requests whose pinned backend had left or was down ([`How::Repinned`]).
    pub repinned: u64,
}

/// Why a balancer operation failed. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
#[non_exhaustive]
pub enum BalancerError {
    /// `now` is less than the idle TTL behind the flow table's clock.
    Clock(ClockError),
    /// No backend is up.
    NoBackend,
    /// A backend id is not below the balancer's capacity `B` (ids index its
    /// per-backend counters).
    IdOutOfRange(BackendId),
    /// The strategy refused the backend.
    Add(AddError),
    /// No backend has this id.
    Unknown(UnknownBackend),
}

impl From<ClockError> for BalancerError {
    fn from(e: ClockError) -> Self {
        BalancerError::Clock(e)
    }
}

impl From<AddError> for BalancerError {
    fn from(e: AddError) -> Self {
        BalancerError::Add(e)
    }
}

impl From<UnknownBackend> for BalancerError {
    fn from(e: UnknownBackend) -> Self {
        BalancerError::Unknown(e)
    }
}

impl fmt::Display for BalancerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BalancerError::Clock(e) => e.fmt(f),
            BalancerError::NoBackend => f.write_str("no backend is up"),
            BalancerError::IdOutOfRange(id) => {
                write!(f, "backend id {} is beyond the balancer's capacity", id.0)
            }
            BalancerError::Add(e) => e.fmt(f),
            BalancerError::Unknown(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for BalancerError {}

/// A strategy used through a mutable reference, so that a large one (a ring of
/// a few KiB) can stay where it was built instead of being moved into the
/// [`Balancer`]: on a microcontroller every move of a large value may cost a
/// stack copy of it.
pub struct Borrowed<'a, S: ?Sized>(pub &'a mut S);

impl<S: ?Sized> fmt::Debug for Borrowed<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Borrowed(..)")
    }
}

impl<S: Strategy + ?Sized> FleetView for Borrowed<'_, S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backends(&self) -> &[Backend] {
        self.0.backends()
    }
}

impl<S: Strategy + ?Sized> Membership for Borrowed<'_, S> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.0.add(id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.0.remove(id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.0.set_up(id, up)
    }
}

impl<S: Strategy + ?Sized> LoadAware for Borrowed<'_, S> {
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.0.pick(key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.0.start(id)
    }
    fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError> {
        self.0.finish(id, outcome)
    }
}

impl<S: Strategy + ?Sized> Strategy for Borrowed<'_, S> {
    fn is_keyed(&self) -> bool {
        self.0.is_keyed()
    }
    fn placement(&self) -> Option<&dyn Placement> {
        self.0.placement()
    }
}

/// A strategy `S` behind an `N`-entry flow table, for backend ids `0..B`.
///
/// Memory: `size_of::<S>()` plus `N ×` [`FlowTable::bytes_per_entry`] (22) plus
/// `8 × B` bytes of counters, all inline; nothing allocates. With a large
/// strategy, use [`Borrowed`] to keep it out of the balancer.
///
/// ```
/// use chring::{BackendId, Instant, Ring, RingConfig};
/// use chring_firmware::balancer::{Balancer, How};
///
/// let ring: Ring<4, 256, 0> = Ring::new(RingConfig::new(64))?;
/// let mut lb: Balancer<_, 64, 4> = Balancer::new_const::<1000>(ring);
/// lb.add_backend(BackendId(0), b"10.1.0.1:443", 1)?;
/// lb.add_backend(BackendId(1), b"10.1.0.2:443", 1)?;
/// let key_hash = chring::hash(b"a 5-tuple");
/// let first = lb.route(key_hash as u32, key_hash, Instant(0))?;
/// assert_eq!(first.how, How::New);
/// let again = lb.route(key_hash as u32, key_hash, Instant(1))?;
/// assert_eq!((again.how, again.backend), (How::Pinned, first.backend));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Balancer<S, const N: usize, const B: usize> {
    strategy: S,
    flows: FlowTable<N>,
    served: [u64; B],
    stats: RouteStats,
}

impl<S, const N: usize, const B: usize> fmt::Debug for Balancer<S, N, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("flows", &self.flows.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: Strategy, const N: usize, const B: usize> Balancer<S, N, B> {
    /// A balancer over `strategy` (with whatever backends it already has) and an
    /// empty flow table whose entries die after `TTL` idle ticks (checked at
    /// compile time: 1 ..= 2^31 - 1). `const`, so it can initialise a `static`.
    #[must_use]
    pub const fn new_const<const TTL: u32>(strategy: S) -> Self {
        Self {
            strategy,
            flows: FlowTable::new_idle_const::<TTL>(),
            served: [0; B],
            stats: RouteStats {
                routed: 0,
                pinned: 0,
                kept_off_strategy: 0,
                new: 0,
                repinned: 0,
            },
        }
    }

    /// Routes one request of flow `flow` whose placement hash is `key_hash`, at
    /// tick `now`. *O*(1) expected plus the strategy's pick on a miss (and on a
    /// hit, to count [`RouteStats::kept_off_strategy`]).
    ///
    /// # Errors
    /// [`BalancerError::Clock`] if `now` is less than the idle TTL behind the
    /// flow table's clock ([`chring::TtlCache::advance`]), and
    /// [`BalancerError::NoBackend`] if no backend is up. Nothing changes on
    /// error: not the counters, not the flow table (contents, counters, clock).
    pub fn route(
        &mut self,
        flow: FlowKey,
        key_hash: u64,
        now: Instant,
    ) -> Result<Route, BalancerError> {
        // Both checks come before the flow table is touched: with a backend up,
        // the strategy always picks, so nothing below can fail.
        if !self.strategy.backends().iter().any(|b| b.up) {
            return Err(BalancerError::NoBackend);
        }
        self.flows.advance(now)?;
        let Some(route) = flow::route(
            &mut self.flows,
            flow,
            &mut self.strategy,
            |s, id| s.backends().iter().any(|b| b.id == id && b.up),
            |s| s.pick(key_hash),
        ) else {
            debug_assert!(false, "a backend is up but the strategy picks none");
            return Err(BalancerError::NoBackend);
        };
        if route.how == How::Pinned && self.strategy.pick(key_hash) != Some(route.backend) {
            self.stats.kept_off_strategy = self.stats.kept_off_strategy.saturating_add(1);
        }
        let s = &mut self.stats;
        s.routed = s.routed.saturating_add(1);
        let counter = match route.how {
            How::Pinned => &mut s.pinned,
            How::New => &mut s.new,
            How::Repinned => &mut s.repinned,
        };
        *counter = counter.saturating_add(1);
        if let Some(n) = self.served.get_mut(usize::from(route.backend.0)) {
            *n = n.saturating_add(1);
        }
        Ok(route)
    }

    /// The strategy's pick for `key_hash`, ignoring the flow table (where a new
    /// flow would go). Counts nothing.
    #[must_use]
    pub fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.strategy.pick(key_hash)
    }

    /// Adds a backend. Live flows stay where they are; new flows may go to it.
    ///
    /// # Errors
    /// [`BalancerError::IdOutOfRange`] if `id.0 >= B`; [`BalancerError::Add`] if
    /// the strategy refuses it (full, duplicate id or name, bad weight).
    pub fn add_backend(
        &mut self,
        id: BackendId,
        name: &[u8],
        weight: u32,
    ) -> Result<(), BalancerError> {
        if usize::from(id.0) >= B {
            return Err(BalancerError::IdOutOfRange(id));
        }
        self.strategy.add(id, name, weight)?;
        Ok(())
    }

    /// Removes a backend and returns how many requests it served. Its flows are
    /// placed again on their next request ([`How::Repinned`]); its counter
    /// restarts at 0, ready for a backend that reuses the id.
    ///
    /// # Errors
    /// [`BalancerError::Unknown`] if no backend has this id.
    pub fn remove_backend(&mut self, id: BackendId) -> Result<u64, BalancerError> {
        self.strategy.remove(id)?;
        Ok(self
            .served
            .get_mut(usize::from(id.0))
            .map_or(0, core::mem::take))
    }

    /// Marks a backend up or down (health, no rebuild).
    ///
    /// # Errors
    /// [`BalancerError::Unknown`] if no backend has this id.
    pub fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), BalancerError> {
        self.strategy.set_up(id, up)?;
        Ok(())
    }

    /// Whether `id` is in the fleet and up. *O*(B).
    #[must_use]
    pub fn is_up(&self, id: BackendId) -> bool {
        self.strategy.backends().iter().any(|b| b.id == id && b.up)
    }

    /// Live flows pinned to `id`, after purging expired ones. *O*(N).
    ///
    /// # Errors
    /// [`BalancerError::Clock`] if `now` is less than the idle TTL behind the
    /// flow table's clock; nothing changes then.
    pub fn flows_on(&mut self, id: BackendId, now: Instant) -> Result<usize, BalancerError> {
        self.flows.advance(now)?;
        Ok(self.flows.iter().filter(|&(_, b)| *b == id).count())
    }

    /// The backends, in the strategy's order.
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        self.strategy.backends()
    }

    /// Requests served by backend `id` since it joined (0 for an unknown id).
    #[must_use]
    pub fn served(&self, id: BackendId) -> u64 {
        self.served.get(usize::from(id.0)).copied().unwrap_or(0)
    }

    /// The routing counters.
    #[must_use]
    pub const fn stats(&self) -> RouteStats {
        self.stats
    }

    /// The flow table's counters (hits, misses, insertions, evictions, expirations).
    #[must_use]
    pub const fn flow_stats(&self) -> CacheStats {
        self.flows.stats()
    }

    /// Seeds the flow table's bucket hash (see [`chring::TtlCache::set_seed`]):
    /// a balancer facing untrusted flow keys should call it at boot with a seed
    /// from the TRNG or the chip's unique id. Routing never depends on the seed.
    /// *O*(`N`).
    pub fn seed_flows(&mut self, seed: u64) {
        self.flows.set_seed(seed);
    }

    /// Flows in the table (all alive at the table's clock: the last accepted
    /// `now`).
    #[must_use]
    pub fn flows_len(&self) -> usize {
        self.flows.len()
    }

    /// The flow table's idle timeout.
    #[must_use]
    pub const fn idle_ttl(&self) -> Duration {
        self.flows.ttl()
    }

    /// Forgets every flow (and the flow table's clock: the next `now` is
    /// accepted whatever it is) and zeroes every counter; the fleet and the seed
    /// stay.
    pub fn reset(&mut self) {
        self.flows.clear();
        self.flows.reset_stats();
        self.served = [0; B];
        self.stats = RouteStats::default();
    }

    /// The strategy.
    #[must_use]
    pub const fn strategy(&self) -> &S {
        &self.strategy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chring::{Ring, RingConfig};

    type Lb = Balancer<Ring<4, 256, 16>, 8, 4>;

    fn lb() -> Lb {
        let mut lb = Lb::new_const::<100>(Ring::new(RingConfig::new(64)).unwrap());
        for i in 0..3u16 {
            lb.add_backend(BackendId(i), format!("b{i}").as_bytes(), 1)
                .unwrap();
        }
        lb
    }

    fn h(i: u64) -> u64 {
        chring::hash_u64(i)
    }

    #[test]
    fn new_then_pinned_then_idle_expiry() {
        let mut lb = lb();
        let r = lb.route(1, h(1), Instant(0)).unwrap();
        assert_eq!(r.how, How::New);
        assert_eq!(lb.route(1, h(1), Instant(99)).unwrap().how, How::Pinned);
        // Hits refresh: idle for 99 more ticks is fine, 100 is not.
        assert_eq!(lb.route(1, h(1), Instant(198)).unwrap().how, How::Pinned);
        assert_eq!(lb.route(1, h(1), Instant(298)).unwrap().how, How::New);
        let s = lb.stats();
        assert_eq!((s.routed, s.new, s.pinned, s.repinned), (4, 2, 2, 0));
        assert_eq!(lb.served(r.backend), 4);
        assert_eq!(lb.flow_stats().expirations, 1);
    }

    #[test]
    fn flows_keep_their_backend_when_one_is_added() {
        let mut lb = lb();
        let mut before = Vec::new();
        for f in 0..8u64 {
            before.push(lb.route(f as u32, h(f), Instant(0)).unwrap().backend);
        }
        lb.add_backend(BackendId(3), b"b3", 1).unwrap();
        for f in 0..8u64 {
            let r = lb.route(f as u32, h(f), Instant(1)).unwrap();
            assert_eq!((r.how, r.backend), (How::Pinned, before[f as usize]));
        }
        // Whatever the ring now says for those keys is counted as kept.
        let moved = (0..8u64)
            .filter(|&f| lb.pick(h(f)) != Some(before[f as usize]))
            .count() as u64;
        assert_eq!(lb.stats().kept_off_strategy, moved);
    }

    #[test]
    fn flows_of_a_removed_or_down_backend_are_repinned() {
        let mut lb = lb();
        let mut on = [0usize; 4];
        for f in 0..8u64 {
            on[usize::from(lb.route(f as u32, h(f), Instant(0)).unwrap().backend.0)] += 1;
        }
        let victim = (0..3).max_by_key(|&i| on[i]).unwrap() as u16;
        assert_eq!(
            lb.flows_on(BackendId(victim), Instant(0)).unwrap(),
            on[usize::from(victim)]
        );
        let served = lb.remove_backend(BackendId(victim)).unwrap();
        assert_eq!(served, on[usize::from(victim)] as u64);
        assert_eq!(lb.served(BackendId(victim)), 0);
        let mut repinned = 0;
        for f in 0..8u64 {
            let r = lb.route(f as u32, h(f), Instant(1)).unwrap();
            assert_ne!(r.backend, BackendId(victim));
            repinned += usize::from(r.how == How::Repinned);
        }
        assert_eq!(repinned, on[usize::from(victim)]);
        // Down (not removed) behaves the same way.
        let other = BackendId(if victim == 0 { 1 } else { 0 });
        lb.set_up(other, false).unwrap();
        for f in 0..8u64 {
            assert_ne!(lb.route(f as u32, h(f), Instant(2)).unwrap().backend, other);
        }
        assert!(!lb.is_up(other));
    }

    #[test]
    fn errors_change_nothing() {
        let mut lb = lb();
        lb.route(1, h(1), Instant(10)).unwrap();
        let before = lb.stats();
        assert_eq!(
            lb.route(1, h(1), Instant(9)),
            Err(BalancerError::Clock(ClockError::Backwards))
        );
        assert_eq!(lb.stats(), before);
        assert_eq!(
            lb.add_backend(BackendId(4), b"b4", 1),
            Err(BalancerError::IdOutOfRange(BackendId(4)))
        );
        assert_eq!(
            lb.add_backend(BackendId(0), b"again", 1),
            Err(BalancerError::Add(AddError::DuplicateId))
        );
        assert!(matches!(
            lb.remove_backend(BackendId(3)),
            Err(BalancerError::Unknown(_))
        ));
        for i in 0..3 {
            lb.remove_backend(BackendId(i)).unwrap();
        }
        assert_eq!(
            lb.route(2, h(2), Instant(11)),
            Err(BalancerError::NoBackend)
        );
        assert!(!format!("{}", BalancerError::NoBackend).is_empty());
        // Issue 10: a failed route changes nothing, the flow table's clock,
        // counters and contents included (no purge either, though 1 has idled
        // out by tick 1000).
        let (flows, len) = (lb.flow_stats(), lb.flows_len());
        assert_eq!(
            lb.route(1, h(1), Instant(1000)),
            Err(BalancerError::NoBackend)
        );
        assert_eq!(lb.flow_stats(), flows);
        assert_eq!(lb.flows_len(), len);
        lb.add_backend(BackendId(0), b"b0", 1).unwrap();
        assert!(
            lb.route(1, h(1), Instant(11)).is_ok(),
            "clock moved to 1000"
        );
        lb.reset();
        assert_eq!(lb.stats(), RouteStats::default());
        assert_eq!(lb.flows_len(), 0);
        // Issue 10: reset forgets the flow table's clock, too.
        assert!(lb.route(1, h(1), Instant(0)).is_ok());
        assert_eq!(lb.idle_ttl(), Duration(100));
        assert!(format!("{lb:?}").contains("Balancer"));
    }

    #[test]
    fn a_borrowed_strategy_routes_like_an_owned_one() {
        let mut ring: Ring<4, 256, 16> = Ring::new(RingConfig::new(64)).unwrap();
        let mut owned = lb();
        let mut lb: Balancer<_, 8, 4> = Balancer::new_const::<100>(Borrowed(&mut ring));
        for i in 0..3u16 {
            lb.add_backend(BackendId(i), format!("b{i}").as_bytes(), 1)
                .unwrap();
        }
        for f in 0..50u64 {
            let (a, b) = (
                owned.route(f as u32, h(f), Instant(0)),
                lb.route(f as u32, h(f), Instant(0)),
            );
            assert_eq!(a, b);
        }
        lb.set_up(BackendId(1), false).unwrap();
        assert!(!lb.is_up(BackendId(1)));
        let s = lb.strategy();
        assert_eq!((s.name(), s.len(), s.is_keyed()), ("ring", 3, true));
        assert!(format!("{s:?}").contains("Borrowed"));
        let mut s = Borrowed(&mut ring);
        s.start(BackendId(0)).unwrap();
        s.finish(BackendId(0), Outcome::default()).unwrap();
        assert_eq!(ring.backends()[0].load, 0);
    }

    #[test]
    fn entry_cost_is_within_budget() {
        assert_eq!(FlowTable::<1024>::bytes_per_entry(), 22);
    }
}
