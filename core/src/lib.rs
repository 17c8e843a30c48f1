//! # chring: allocation-free consistent hashing for microcontrollers and load balancers
//!
//! `chring` routes keys to backends the way a cache tier, a switch or an L4
//! balancer needs it: deterministically (the same fleet routes the same way on every
//! device), with minimal disruption when the fleet changes, and without an
//! allocator, a clock or a panic. Every size is fixed at compile time through const
//! generics, so a ring can live in a `static` on a Cortex-M0.
//!
//! ## Overview
//!
//! | type | what | lookup | on fleet change |
//! | --- | --- | --- | --- |
//! | [`Ring`] | consistent-hash ring, virtual nodes x weight, prefix index | *O*(1) expected with an index, *O*(log points) without | only the changed backend's keys move |
//! | [`Maglev`] | Maglev lookup table (Eisenbud et al., 2016), prime size `M` | *O*(1), one table read | near-minimal, bounded |
//! | [`Jump`] | jump consistent hash (Lamping & Veach, 2014), with removal of any backend | *O*(ln n) | only the changed backend's keys move |
//! | [`Rendezvous`] | highest random weight, weighted (logarithmic method) | *O*(n) | only the changed backend's keys move |
//! | [`BoundedLoad`] | consistent hashing with bounded loads (Mirrokni et al., 2018) | *O*(1) expected | as the ring, plus load spill |
//! | [`PowerOfTwo`] | two choices, least loaded | *O*(n) | not key-affine |
//! | [`Modulo`] | `hash % n` (IPHash) | *O*(1) | almost every key moves |
//! | [`RoundRobin`] | smooth weighted round robin (nginx) | *O*(n) | not key-affine |
//! | [`LeastConn`] | weighted least connections, smooth WRR on ties (nginx `least_conn`) | *O*(n) | not key-affine |
//! | [`PeakEwma`] | two choices by peak-EWMA latency x in flight (Finagle, Linkerd) | *O*(1) | not key-affine |
//! | [`HealthScore`] | share by errors and latency folded into one score | *O*(n) | not key-affine |
//! | [`TtlCache`] | fixed-capacity TTL + LRU cache / flow table | *O*(1) expected | |
//! | [`workload`] | seeded uniform and Zipf key generators | *O*(1) | |
//! | [`compat`] | nginx, twemproxy (ketama) and HAProxy placement, bit for bit | as each daemon | as each daemon |
//! | [`protocol`] | line protocol and [`protocol::Controller`]: a balancer driven over a UART | *O*(1) per byte | |
//!
//! ## One vocabulary
//!
//! Every strategy takes the key's 64-bit hash and uses the same verbs:
//!
//! - `lookup(key_hash)`: **pure placement**, health and load ignored; `None`
//!   only with no backend (every key-affine strategy, [`Placement::lookup`]).
//! - `pick(key_hash)`: where the request goes **now**: never a backend marked
//!   down, `None` when none is up; load-aware strategies also weigh load
//!   ([`Placement::pick`], [`LoadAware::pick`]).
//! - `add` / `remove` / `set_up` ([`Membership`]) change the fleet; `start` /
//!   `finish` ([`LoadAware`], with an [`Outcome`]) report load.
//!
//! Keyed strategies are [`Placement`]s (`&self` only, so a proxy shares one
//! between threads and swaps it on a fleet change); every strategy is a
//! [`Strategy`] (object safe: `&mut dyn Strategy` switches at run time);
//! [`StrategyKind`] names them. [`strategy::traits`] has the table of which
//! type implements what; `use chring::prelude::*` imports every trait.
//!
//! ## Example
//!
//! ```
//! use chring::{BackendId, Ring, RingConfig};
//!
//! // Up to 8 backends, 1024 points, a 256-entry prefix index.
//! let mut ring: Ring<8, 1024, 256> = Ring::new(RingConfig::new(100))?;
//! ring.add(BackendId(0), b"cache-a:11211", 1)?;
//! ring.add(BackendId(1), b"cache-b:11211", 1)?;
//! ring.add(BackendId(2), b"cache-c:11211", 2)?; // twice the points
//!
//! let key = chring::hash(b"customer-0012345");
//! let owner = ring.lookup(key).expect("non-empty ring");
//! assert!(owner.0 <= 2);
//! // Failover order: distinct backends clockwise from the key.
//! let mut order = ring.replicas(key, 3);
//! assert_eq!(order.next(), Some(owner));
//! # Ok::<(), chring::Error>(())
//! ```
//!
//! ## Guarantees
//!
//! - `#![no_std]`, no `alloc`, `#![forbid(unsafe_code)]`.
//! - No operation panics on any input: bad input returns an error enum from
//!   [`fleet`] / [`cache`] / [`ring`], lookups on an empty fleet return `None`.
//! - The hash and every placement are a documented, versioned contract
//!   ([`hash`](mod@hash), `DESIGN.md`), pinned by golden vectors.
//!
//! ## Cargo features
//!
//! - `compat` (default): [`compat`], placement as nginx, twemproxy and HAProxy
//!   compute it. Pulls `md-5`.
//! - `workload` (default): [`workload`], seeded key generators. Pulls `rand_core`
//!   and `rand_pcg`.
//! - `protocol` (default): [`protocol`], the UART line protocol and its
//!   controller, and [`protocol::rig`], the HIL rig's configuration.
//! - `defmt`: derives `defmt::Format` on public types.
//!
//! With `default-features = false` only the strategies, the cache, the hash and
//! the errors remain, with `heapless`, `libm` and `xxhash-rust` as dependencies.
//!
//! ## Minimum supported Rust version
//!
//! Rust 1.85 (edition 2024): the highest `rust-version` that a locked dependency
//! declares (`rand_core`, `rand_pcg`). `scripts/msrv-check.py` (the test
//! command's `test` step) fails when a dependency needs more; only a newer
//! toolchain is installed where this is tested, so the check covers the
//! dependencies' declarations, not a 1.85 build.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
// The crate docs link the feature-gated modules; without them those links
// cannot resolve (the docs are checked with the default features, docs.rs builds
// with all of them).
#![cfg_attr(
    not(all(feature = "compat", feature = "workload", feature = "protocol")),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod cache;
#[cfg(feature = "compat")]
#[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
pub mod compat;
mod error;
pub mod fleet;
pub mod flow;
pub mod hash;
#[cfg(feature = "protocol")]
#[cfg_attr(docsrs, doc(cfg(feature = "protocol")))]
pub mod protocol;
pub mod ring;
pub mod strategy;

/// The strategy traits, for a glob import: `use chring::prelude::*;` brings
/// every trait method (`add`, `pick`, `start`, `finish`, `backends`, ...) into
/// scope on every strategy.
pub mod prelude {
    pub use crate::strategy::{FleetView, LoadAware, Membership, Placement, Strategy};
}
pub mod time;
#[cfg(feature = "workload")]
#[cfg_attr(docsrs, doc(cfg(feature = "workload")))]
pub mod workload;

pub use cache::{CacheConfigError, CacheIndex, CacheStats, Inserted, TtlCache};
pub use error::Error;
pub use fleet::{
    AddError, Backend, BackendId, BatchError, LoadError, MAX_WEIGHT, UnknownBackend, WeightError,
};
pub use hash::{hash, hash_seeded, hash_u64, mix};
pub use ring::{ConfigError, Replicas, Ring, RingConfig};
pub use strategy::{
    BoundedLoad, FleetView, HealthScore, Jump, LeastConn, LoadAware, Maglev, Membership, Modulo,
    Outcome, PeakEwma, Placement, PowerOfTwo, Rendezvous, RoundRobin, Strategy, StrategyKind,
    UnknownStrategy,
};
pub use time::{ClockError, Duration, Instant};

/// The workspace README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
