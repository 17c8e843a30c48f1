//! Routing strategies behind one small trait.
//!
//! | strategy | pick cost | state per backend | keys moved when 1 of n backends is added / removed | weights | key-affine |
//! | --- | --- | --- | --- | --- | --- |
//! | [`Ring`] | *O*(1) expected (prefix index) | `vnodes x w` points, 8 B each | exactly that backend's share, ~1/n | points x w | yes |
//! | [`Maglev`] | *O*(1): one table read | `M` table entries, 2 B each | ~1/n plus a small documented excess | turns x w | yes |
//! | [`Jump`] | *O*(ln n) | `w` buckets, 4 B each | exactly that backend's share | buckets x w | yes |
//! | [`Rendezvous`] | *O*(n) | none | exactly that backend's share | logarithmic method | yes |
//! | [`BoundedLoad`] | *O*(1) expected, walks on overload | as the ring | as the ring, plus overload spill | points and capacity | mostly |
//! | [`Modulo`] | *O*(n) weighted, *O*(1) arithmetic | none | ~(n-1)/n: almost all | slices x w | yes |
//! | [`PowerOfTwo`] | *O*(n) | in-flight count | n/a | load / weight | no |
//! | [`RoundRobin`] | *O*(n) | one counter | n/a | smooth WRR | no |
//! | [`LeastConn`] | *O*(n) | in-flight count, one `i64` | n/a | in flight / w, smooth WRR on ties | no |
//! | [`PeakEwma`] | *O*(1) all up, *O*(n) otherwise | in-flight count, latency estimate (16 B) | n/a | cost / w | no |
//! | [`HealthScore`] | *O*(n) | in-flight count, error and latency EWMAs (16 B) | n/a | share ∝ w x score | no |
//!
//! The last three take real feedback: `start(id)` when a request is sent and
//! `finish(id, `[`Outcome`]`)` with its latency, success and the caller's
//! clock when it ends (inherent methods; through [`Strategy::finish`] only the
//! in-flight count moves). Each also offers `pick_two`: the pick and a distinct
//! runner-up for a hedged request.
//!
//! Every strategy takes the key's 64-bit hash (from [`hash`](crate::hash()) or
//! [`hash_u64`](crate::hash_u64)), never the key itself, so callers hash once and
//! can route the same hash through several strategies. Health: backends marked
//! down are never picked; what happens to their keys is documented per strategy.

mod bounded;
mod health_score;
mod hedge;
mod jump;
mod least_conn;
#[cfg(test)]
mod load_tests;
mod maglev;
mod modulo;
mod outcome;
mod p2c;
mod peak_ewma;
mod rendezvous;
mod round_robin;
mod seeded;

pub use bounded::BoundedLoad;
pub use health_score::{HealthScore, SCORE_FLOOR, SCORE_ONE};
pub use jump::{Jump, jump_hash};
pub use least_conn::LeastConn;
pub use maglev::Maglev;
pub use modulo::Modulo;
pub use outcome::Outcome;
pub use p2c::PowerOfTwo;
pub use peak_ewma::{DEFAULT_DECAY_US, DEFAULT_RTT_US, PeakEwma};
pub use rendezvous::Rendezvous;
pub use round_robin::RoundRobin;

use crate::fleet::{AddError, Backend, BackendId, LoadError, UnknownBackend};
use crate::ring::Ring;

/// Picks a backend for a key; the fleet changes through the same trait.
///
/// Object safe, so a host can switch strategies at run time behind
/// `&mut dyn Strategy`.
pub trait Strategy {
    /// A short stable name: `"ring"`, `"maglev"`, `"jump"`, `"rendezvous"`,
    /// `"bounded"`, `"modulo"`, `"p2c"`, `"round_robin"`.
    fn name(&self) -> &'static str;

    /// Adds a backend.
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

    /// The backend for a key hash, among backends that are up. `None` when no
    /// backend is up.
    fn pick(&mut self, key_hash: u64) -> Option<BackendId>;

    /// Load feedback: a request started on `id`. Strategies that ignore load
    /// still count it (see [`Backend::load`]).
    ///
    /// # Errors
    /// [`LoadError::Unknown`] if no backend has this id.
    fn start(&mut self, id: BackendId) -> Result<(), LoadError>;

    /// Load feedback: a request on `id` finished.
    ///
    /// # Errors
    /// [`LoadError::Unknown`], or [`LoadError::NotStarted`] if nothing was in flight.
    fn finish(&mut self, id: BackendId) -> Result<(), LoadError>;

    /// The backends, in insertion order.
    fn backends(&self) -> &[Backend];

    /// Number of backends.
    fn len(&self) -> usize {
        self.backends().len()
    }

    /// `true` with no backend.
    fn is_empty(&self) -> bool {
        self.backends().is_empty()
    }

    /// `true` when [`pick`](Self::pick) depends only on the key and the fleet, so
    /// the same key always reaches the same backend (round robin and two-choices
    /// are not: they follow state and load).
    fn is_keyed(&self) -> bool {
        true
    }
}

/// A borrowed strategy is a strategy: a balancer can hold `&mut Ring<..>` built
/// in place, instead of moving a large value.
impl<S: Strategy + ?Sized> Strategy for &mut S {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        (**self).add(id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        (**self).remove(id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        (**self).set_up(id, up)
    }
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        (**self).pick(key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        (**self).start(id)
    }
    fn finish(&mut self, id: BackendId) -> Result<(), LoadError> {
        (**self).finish(id)
    }
    fn backends(&self) -> &[Backend] {
        (**self).backends()
    }
    fn is_keyed(&self) -> bool {
        (**self).is_keyed()
    }
}

/// Implements the fleet-backed methods (`set_up`, `start`, `finish`, `backends`)
/// for a strategy with a `fleet: Fleet<B>` field.
macro_rules! fleet_methods {
    () => {
        fn set_up(
            &mut self,
            id: $crate::BackendId,
            up: bool,
        ) -> Result<(), $crate::UnknownBackend> {
            self.fleet.set_up(id, up)
        }
        $crate::strategy::fleet_methods!(without_set_up);
    };
    // For strategies whose `set_up` also updates their own tables (Maglev, Jump).
    (without_set_up) => {
        fn start(&mut self, id: $crate::BackendId) -> Result<(), $crate::LoadError> {
            self.fleet.start(id)
        }
        fn finish(&mut self, id: $crate::BackendId) -> Result<(), $crate::LoadError> {
            self.fleet.finish(id)
        }
        fn backends(&self) -> &[$crate::Backend] {
            self.fleet.as_slice()
        }
    };
}
pub(crate) use fleet_methods;

impl<const B: usize, const P: usize, const I: usize> Strategy for Ring<B, P, I> {
    fn name(&self) -> &'static str {
        "ring"
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        Ring::add(self, id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        Ring::remove(self, id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        Ring::set_up(self, id, up)
    }
    /// [`Ring::lookup_healthy`].
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.lookup_healthy(key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.fleet_mut().start(id)
    }
    fn finish(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.fleet_mut().finish(id)
    }
    fn backends(&self) -> &[Backend] {
        self.fleet().as_slice()
    }
}
