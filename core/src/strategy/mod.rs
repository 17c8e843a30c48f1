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
//! clock when it ends (inherent methods; through [`Strategy::finish`](crate::LoadAware::finish) only the
//! in-flight count moves). Each also offers `pick_two`: the pick and a distinct
//! runner-up for a hedged request.
//!
//! Every strategy takes the key's 64-bit hash (from [`hash`](crate::hash()) or
//! [`hash_u64`](crate::hash_u64)), never the key itself, so callers hash once and
//! can route the same hash through several strategies.
//!
//! # One vocabulary
//!
//! - `lookup(key_hash)`: pure placement, health and load ignored; `None` only
//!   with no backend. Every keyed strategy has it.
//! - `pick(key_hash)`: where the request goes now: never a backend marked down
//!   (`None` when none is up); load-aware strategies also weigh load.
//! - `add` / `remove` / `set_up`: fleet changes; `start` / `finish`: load
//!   feedback.
//!
//! The traits ([`FleetView`], [`Placement`], [`Membership`], [`LoadAware`],
//! [`Strategy`]) and which type implements which are described in
//! [`traits`]. The keyed types also have `lookup`, `pick`, `add`, `remove`,
//! `set_up` and `backends` as inherent methods, so callers that know the type
//! need no trait import; otherwise `use chring::prelude::*`.

mod bounded;
mod health_score;
mod hedge;
mod jump;
mod kind;
mod least_conn;
#[cfg(test)]
mod load_tests;
mod maglev;
mod modulo;
mod p2c;
mod peak_ewma;
mod rendezvous;
mod round_robin;
mod seeded;

pub mod traits;

pub use bounded::BoundedLoad;
pub use health_score::{HealthScore, SCORE_FLOOR, SCORE_ONE};
pub use jump::{Jump, jump_hash};
pub use kind::{StrategyKind, UnknownStrategy};
pub use least_conn::LeastConn;
pub use maglev::Maglev;
pub use modulo::Modulo;
pub use p2c::PowerOfTwo;
pub use peak_ewma::{DEFAULT_DECAY_US, DEFAULT_RTT_US, PeakEwma};
pub use rendezvous::Rendezvous;
pub use round_robin::RoundRobin;
pub use traits::{FleetView, LoadAware, Membership, Outcome, Placement, Strategy};

pub(crate) use traits::{
    fleet_view, inherent_membership, keyed_load, keyed_strategy, load_aware_fleet_methods,
    unkeyed_strategy,
};

use crate::fleet::{AddError, BackendId, UnknownBackend};
use crate::ring::Ring;

impl<const B: usize, const P: usize, const I: usize> FleetView for Ring<B, P, I> {
    fleet_view!("ring", |s| s.fleet());
}

impl<const B: usize, const P: usize, const I: usize> Placement for Ring<B, P, I> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        Ring::lookup(self, key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        Ring::pick(self, key_hash)
    }
}

impl<const B: usize, const P: usize, const I: usize> Membership for Ring<B, P, I> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        Ring::add(self, id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        Ring::remove(self, id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        Ring::set_up(self, id, up)
    }
}

impl<const B: usize, const P: usize, const I: usize> LoadAware for Ring<B, P, I> {
    keyed_load!(|s| s.fleet_mut());
}

impl<const B: usize, const P: usize, const I: usize> Strategy for Ring<B, P, I> {
    keyed_strategy!();
}

#[cfg(test)]
pub(crate) mod tests;
