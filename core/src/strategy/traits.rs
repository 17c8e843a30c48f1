//! The strategy traits: one vocabulary for every balancer in the crate.
//!
//! | verb | meaning | receiver |
//! | --- | --- | --- |
//! | `lookup(key_hash)` | pure placement: the key's owner, health and load **ignored**; `None` only with no backend | `&self` ([`Placement`]) |
//! | `pick(key_hash)` | where to send the request now: never a backend marked down (`None` when none is up); load-aware strategies also weigh load | `&self` ([`Placement`]) or `&mut self` ([`LoadAware`]) |
//! | `add` / `remove` / `set_up` | fleet changes | `&mut self` ([`Membership`]) |
//! | `start` / `finish` | load feedback around one request | `&mut self` ([`LoadAware`]) |
//!
//! The traits, and what each type implements:
//!
//! ```text
//!              FleetView (name, backends, len, is_empty)
//!               /                         \
//!   Placement (&self: lookup, pick,    Strategy: FleetView + Membership + LoadAware
//!              key_hash)                (the run-time switchable balancer,
//!                                        is_keyed, placement)
//!   Membership (&mut self: add, remove, set_up)
//!   LoadAware  (&mut self: pick, start, finish(Outcome))
//! ```
//!
//! | type | [`Placement`] | [`Membership`] | [`LoadAware`] | [`Strategy`] |
//! | --- | --- | --- | --- | --- |
//! | [`Ring`](crate::Ring), [`Maglev`](crate::Maglev), [`Jump`](crate::Jump), [`Rendezvous`](crate::Rendezvous), [`Modulo`](crate::Modulo) | yes | yes | yes (pick = `Placement::pick`; load counted in the fleet) | yes, keyed |
//! | `compat::placement` adapters (nginx, twemproxy ketama, HAProxy) | yes, with their own `key_hash` | yes | yes | yes, keyed |
//! | [`BoundedLoad`](crate::BoundedLoad) | no (load moves keys; `lookup` is inherent) | yes | yes | yes |
//! | [`PowerOfTwo`](crate::PowerOfTwo), [`RoundRobin`](crate::RoundRobin) | no | yes | yes | yes |
//!
//! A proxy shares a keyed placement between threads as `Arc<P>` where
//! `P: Placement` (every method takes `&self`), and on a fleet change clones it,
//! applies the [`Membership`] change to the clone and swaps the `Arc`. A device
//! that switches strategies at run time holds `&mut dyn Strategy`.

use crate::fleet::{AddError, Backend, BackendId, LoadError, UnknownBackend};

/// How one request on a backend ended, as the caller reports it to
/// [`LoadAware::finish`].
///
/// Strategies that only count requests in flight ignore everything but the
/// call itself; latency- and error-aware strategies read the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// How long the request took, in microseconds.
    pub latency_us: u32,
    /// `true` for a success, `false` for an error or a timeout.
    pub ok: bool,
    /// When it finished, on the caller's monotonic clock, in microseconds. Any
    /// value is accepted: a clock that wraps or goes backwards never makes a
    /// strategy panic (each documents how it treats such a value).
    pub at_us: u64,
}

impl Outcome {
    /// A finished request.
    #[must_use]
    pub const fn new(latency_us: u32, ok: bool, at_us: u64) -> Self {
        Self {
            latency_us,
            ok,
            at_us,
        }
    }
}

/// What every strategy exposes about its fleet. Object safe.
pub trait FleetView {
    /// A short stable name: `"ring"`, `"maglev"`, `"jump"`, `"rendezvous"`,
    /// `"bounded"`, `"modulo"`, `"p2c"`, `"round_robin"` (the names of
    /// `StrategyKind`); the compat adapters are
    /// `"nginx"`, `"ketama"` and `"haproxy"`.
    fn name(&self) -> &'static str;

    /// The backends, in insertion order (removal closes the gap).
    fn backends(&self) -> &[Backend];

    /// Number of backends. *O*(1).
    fn len(&self) -> usize {
        self.backends().len()
    }

    /// `true` with no backend. *O*(1).
    fn is_empty(&self) -> bool {
        self.backends().is_empty()
    }
}

/// A keyed placement: where a key hash goes, from shared (`&self`) access, so
/// one placement can serve many threads. Object safe.
///
/// Contract, for every implementor (checked by the crate's tests):
/// - [`lookup`](Self::lookup) ignores health: `None` only with no backend;
/// - [`pick`](Self::pick) never returns a backend marked down, and is `None`
///   only when no backend is up;
/// - with every backend up, `pick == lookup`.
pub trait Placement: FleetView {
    /// Pure placement: the backend that owns `key_hash`, health ignored. `None`
    /// only with no backend.
    fn lookup(&self, key_hash: u64) -> Option<BackendId>;

    /// The backend for `key_hash` among backends that are up: the owner when it
    /// is up, otherwise the strategy's documented failover. `None` when no
    /// backend is up.
    fn pick(&self, key_hash: u64) -> Option<BackendId>;

    /// The 64-bit key hash this placement expects for `key`:
    /// [`hash`](crate::hash())`(key)` by default. The compat adapters hash as
    /// their daemon does (CRC-32, MD5, ...), so routing by key is
    /// `p.lookup(p.key_hash(key))` whatever the placement.
    fn key_hash(&self, key: &[u8]) -> u64 {
        crate::hash::hash(key)
    }
}

/// Fleet changes: add, remove, mark up or down. Object safe.
pub trait Membership {
    /// Adds a backend, up, with no load.
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError>;

    /// Removes a backend.
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend>;

    /// Marks a backend up (`true`) or down.
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend>;
}

/// Picks that may depend on state and load, with load feedback. Object safe.
///
/// The caller calls [`start`](Self::start) when a request begins on the picked
/// backend and [`finish`](Self::finish) when it ends. Keyed placements take
/// the feedback too (it is counted in [`Backend::load`]) but their pick
/// ignores it.
pub trait LoadAware {
    /// The backend for `key_hash` now: never one marked down; `None` when no
    /// backend is up. May change state (round robin's turn).
    fn pick(&mut self, key_hash: u64) -> Option<BackendId>;

    /// A request started on `id`.
    ///
    /// # Errors
    /// [`LoadError::Unknown`] if no backend has this id.
    fn start(&mut self, id: BackendId) -> Result<(), LoadError>;

    /// A request on `id` finished, with this outcome.
    ///
    /// # Errors
    /// [`LoadError::Unknown`], or [`LoadError::NotStarted`] if nothing was in
    /// flight on `id`; nothing changes then.
    fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError>;
}

/// A balancer a host can switch at run time: fleet changes, picks and load
/// feedback behind one object-safe trait (`&mut dyn Strategy`). Every strategy
/// in the crate implements it.
pub trait Strategy: FleetView + Membership + LoadAware {
    /// `true` when [`pick`](LoadAware::pick) depends only on the key and the
    /// fleet (with its health), so the same key reaches the same backend while
    /// the fleet stands still. Round robin, two choices and bounded loads are
    /// not keyed: they follow state and load.
    fn is_keyed(&self) -> bool;

    /// The strategy as a [`Placement`], for a keyed one: gives the pure
    /// [`lookup`](Placement::lookup) and the `&self` pick. `None` for strategies
    /// whose placement follows load.
    fn placement(&self) -> Option<&dyn Placement>;
}

impl<T: FleetView + ?Sized> FleetView for &T {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn backends(&self) -> &[Backend] {
        (**self).backends()
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn is_empty(&self) -> bool {
        (**self).is_empty()
    }
}

impl<T: FleetView + ?Sized> FleetView for &mut T {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn backends(&self) -> &[Backend] {
        (**self).backends()
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn is_empty(&self) -> bool {
        (**self).is_empty()
    }
}

impl<T: Placement + ?Sized> Placement for &T {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        (**self).lookup(key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        (**self).pick(key_hash)
    }
    fn key_hash(&self, key: &[u8]) -> u64 {
        (**self).key_hash(key)
    }
}

impl<T: Membership + ?Sized> Membership for &mut T {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        (**self).add(id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        (**self).remove(id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        (**self).set_up(id, up)
    }
}

impl<T: LoadAware + ?Sized> LoadAware for &mut T {
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        (**self).pick(key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        (**self).start(id)
    }
    fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError> {
        (**self).finish(id, outcome)
    }
}

/// A borrowed strategy is a strategy: a balancer can hold `&mut Ring<..>` built
/// in place, instead of moving a large value.
impl<S: Strategy + ?Sized> Strategy for &mut S {
    fn is_keyed(&self) -> bool {
        (**self).is_keyed()
    }
    fn placement(&self) -> Option<&dyn Placement> {
        (**self).placement()
    }
}

/// Implements [`FleetView`]'s methods (inside an `impl FleetView for ..`
/// block) for a type with a fixed name and a `Fleet<B>` that `$fleet` reaches
/// from `$s` (`self`).
macro_rules! fleet_view {
    ($name:literal, |$s:ident| $fleet:expr) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn backends(&self) -> &[$crate::Backend] {
            let $s = self;
            $fleet.as_slice()
        }
        fn len(&self) -> usize {
            let $s = self;
            $fleet.len()
        }
    };
}
pub(crate) use fleet_view;

/// Implements [`LoadAware`]'s methods (inside an `impl LoadAware for ..` block)
/// for a keyed [`Placement`]: its pick is the placement's, and load is counted
/// in the `Fleet<B>` that `$fleet` reaches mutably from `$s` (`self`).
macro_rules! keyed_load {
    (|$s:ident| $fleet:expr) => {
        fn pick(&mut self, key_hash: u64) -> Option<$crate::BackendId> {
            $crate::Placement::pick(&*self, key_hash)
        }
        fn start(&mut self, id: $crate::BackendId) -> Result<(), $crate::LoadError> {
            let $s = self;
            $fleet.start(id)
        }
        fn finish(
            &mut self,
            id: $crate::BackendId,
            _outcome: $crate::Outcome,
        ) -> Result<(), $crate::LoadError> {
            let $s = self;
            $fleet.finish(id)
        }
    };
}
pub(crate) use keyed_load;

/// Implements [`Strategy`]'s methods (inside an `impl Strategy for ..` block)
/// for a keyed [`Placement`].
macro_rules! keyed_strategy {
    () => {
        fn is_keyed(&self) -> bool {
            true
        }
        fn placement(&self) -> Option<&dyn $crate::Placement> {
            Some(self)
        }
    };
}
pub(crate) use keyed_strategy;

/// Implements [`Membership`]'s methods (inside an `impl Membership for ..`
/// block) by calling the type's inherent `add`, `remove` and `set_up`, which
/// carry the documentation (cost, errors).
macro_rules! inherent_membership {
    ($ty:ident) => {
        fn add(
            &mut self,
            id: $crate::BackendId,
            name: &[u8],
            weight: u32,
        ) -> Result<(), $crate::AddError> {
            $ty::add(self, id, name, weight)
        }
        fn remove(&mut self, id: $crate::BackendId) -> Result<(), $crate::UnknownBackend> {
            $ty::remove(self, id)
        }
        fn set_up(
            &mut self,
            id: $crate::BackendId,
            up: bool,
        ) -> Result<(), $crate::UnknownBackend> {
            $ty::set_up(self, id, up)
        }
    };
}
pub(crate) use inherent_membership;

/// Implements the four traits of an unkeyed load-aware strategy (`$ty<B>`
/// with a `fleet: Fleet<B>` field and inherent `add`, `remove`, `set_up`,
/// `pick`, `start` and `finish`): [`FleetView`] named `$name`,
/// [`Membership`] and [`LoadAware`] by the inherent methods, and a
/// [`Strategy`] that is not keyed (no [`Placement`]).
macro_rules! unkeyed_strategy {
    ($ty:ident, $name:literal) => {
        impl<const B: usize> $crate::FleetView for $ty<B> {
            $crate::strategy::fleet_view!($name, |s| s.fleet);
        }

        impl<const B: usize> $crate::Membership for $ty<B> {
            $crate::strategy::inherent_membership!($ty);
        }

        impl<const B: usize> $crate::LoadAware for $ty<B> {
            fn pick(&mut self, key_hash: u64) -> Option<$crate::BackendId> {
                $ty::pick(self, key_hash)
            }
            fn start(&mut self, id: $crate::BackendId) -> Result<(), $crate::LoadError> {
                $ty::start(self, id)
            }
            fn finish(
                &mut self,
                id: $crate::BackendId,
                outcome: $crate::Outcome,
            ) -> Result<(), $crate::LoadError> {
                $ty::finish(self, id, outcome)
            }
        }

        impl<const B: usize> $crate::Strategy for $ty<B> {
            fn is_keyed(&self) -> bool {
                false
            }
            fn placement(&self) -> Option<&dyn $crate::Placement> {
                None
            }
        }
    };
}
pub(crate) use unkeyed_strategy;

/// The inherent `set_up`, `backends` and `start` of an unkeyed load-aware
/// strategy with a `fleet: Fleet<B>` field (inside its inherent `impl`);
/// `$kept` names what a backend marked down keeps.
macro_rules! load_aware_fleet_methods {
    ($kept:literal) => {
        #[doc = concat!(
                    "Marks a backend up (`true`) or down (never picked), keeping ",
                    $kept,
                    ". *O*(1) expected.\n\n# Errors\n[`UnknownBackend`](crate::UnknownBackend) \
             if no backend has this id."
                )]
        pub fn set_up(
            &mut self,
            id: $crate::BackendId,
            up: bool,
        ) -> Result<(), $crate::UnknownBackend> {
            self.fleet.set_up(id, up)
        }

        /// The backends, in insertion order, with their in-flight counts
        /// ([`Backend::load`](crate::Backend::load)).
        #[must_use]
        pub fn backends(&self) -> &[$crate::Backend] {
            self.fleet.as_slice()
        }

        /// A request started on `id`. *O*(1) expected.
        ///
        /// # Errors
        /// [`LoadError::Unknown`](crate::LoadError::Unknown) if no backend has
        /// this id.
        pub fn start(&mut self, id: $crate::BackendId) -> Result<(), $crate::LoadError> {
            self.fleet.start(id)
        }
    };
}
pub(crate) use load_aware_fleet_methods;
