//! Which chring strategy a balancer runs, and building it behind
//! `Box<dyn chring::Strategy>`.

use chring::{
    BoundedLoad, ConfigError, Jump, Maglev, Modulo, PowerOfTwo, Rendezvous, Ring, RingConfig,
    RoundRobin, Strategy,
};
use serde::Serialize;

use crate::util::on_big_stack;

/// Every strategy chring offers, by its [`Strategy::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Consistent-hash ring with virtual nodes ([`chring::Ring`]).
    Ring,
    /// Maglev lookup table ([`chring::Maglev`]).
    Maglev,
    /// Jump consistent hash ([`chring::Jump`]).
    Jump,
    /// Highest random weight ([`chring::Rendezvous`]).
    Rendezvous,
    /// `hash mod n`, nginx's `ip_hash` / IPHash ([`chring::Modulo`]).
    Modulo,
    /// Consistent hashing with bounded loads ([`chring::BoundedLoad`]).
    Bounded,
    /// Power of two choices ([`chring::PowerOfTwo`]).
    P2c,
    /// Smooth weighted round robin ([`chring::RoundRobin`]).
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
}

impl StrategyKind {
    /// All strategies, in a fixed order.
    pub const ALL: [StrategyKind; 8] = [
        StrategyKind::Ring,
        StrategyKind::Maglev,
        StrategyKind::Jump,
        StrategyKind::Rendezvous,
        StrategyKind::Modulo,
        StrategyKind::Bounded,
        StrategyKind::P2c,
        StrategyKind::RoundRobin,
    ];

    /// chring's name for it ([`Strategy::name`]): `"ring"`, `"round_robin"`, ...
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            StrategyKind::Ring => "ring",
            StrategyKind::Maglev => "maglev",
            StrategyKind::Jump => "jump",
            StrategyKind::Rendezvous => "rendezvous",
            StrategyKind::Modulo => "modulo",
            StrategyKind::Bounded => "bounded",
            StrategyKind::P2c => "p2c",
            StrategyKind::RoundRobin => "round_robin",
        }
    }

    /// `true` when the backend depends only on the key and the fleet (not on
    /// request order or load): the strategies `host-sim route` accepts.
    #[must_use]
    pub const fn is_key_affine(self) -> bool {
        !matches!(
            self,
            StrategyKind::Bounded | StrategyKind::P2c | StrategyKind::RoundRobin
        )
    }

    /// Looks a strategy up by [`name`](Self::name) (also accepts `-` for `_`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.replace('-', "_");
        Self::ALL.into_iter().find(|k| k.name() == n)
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Backends a simulated balancer can hold.
pub const SIM_MAX_SERVERS: usize = 64;
/// Ring points of a simulated ring (`servers x vnodes` must fit).
pub const SIM_RING_POINTS: usize = 32_768;
/// Maglev table size in the simulator and in `route` (prime; > 100 x 64 servers).
pub const MAGLEV_TABLE: usize = 65_537;
/// Balance factor of [`StrategyKind::Bounded`] (the paper's and HAProxy's 1.25).
pub const BOUNDED_C: f32 = 1.25;

type SimRing = Ring<SIM_MAX_SERVERS, SIM_RING_POINTS, 8192>;
type SimBounded = BoundedLoad<SIM_MAX_SERVERS, SIM_RING_POINTS, 8192>;

/// A strategy object the simulator can move between threads.
pub type BoxedStrategy = Box<dyn Strategy + Send>;

/// Builds an empty simulator strategy for up to [`SIM_MAX_SERVERS`] backends
/// (`vnodes` is used by the ring and bounded loads). *O*(table size).
///
/// # Errors
/// The ring's [`ConfigError`] (vnodes 0 or above [`SIM_RING_POINTS`]); an I/O
/// error if the helper thread could not start.
pub fn build_sim_strategy(kind: StrategyKind, vnodes: u32) -> anyhow::Result<BoxedStrategy> {
    let built = on_big_stack(move || -> Result<BoxedStrategy, ConfigError> {
        Ok(match kind {
            StrategyKind::Ring => Box::new(SimRing::new(RingConfig::new(vnodes))?),
            StrategyKind::Bounded => Box::new(SimBounded::new(RingConfig::new(vnodes), BOUNDED_C)?),
            StrategyKind::Maglev => Box::new(Maglev::<SIM_MAX_SERVERS, MAGLEV_TABLE>::new()),
            StrategyKind::Jump => Box::new(Jump::<SIM_MAX_SERVERS, SIM_MAX_SERVERS>::new()),
            StrategyKind::Rendezvous => Box::new(Rendezvous::<SIM_MAX_SERVERS>::new()),
            StrategyKind::Modulo => Box::new(Modulo::<SIM_MAX_SERVERS>::new()),
            StrategyKind::P2c => Box::new(PowerOfTwo::<SIM_MAX_SERVERS>::new()),
            StrategyKind::RoundRobin => Box::new(RoundRobin::<SIM_MAX_SERVERS>::new()),
        })
    })?;
    built.map_err(|e| anyhow::anyhow!("{kind} with {vnodes} vnodes: {e}"))
}

/// The name of simulated server `i`: `server-{i}` (the bytes the strategies hash).
#[must_use]
pub fn server_name(i: usize) -> String {
    format!("server-{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_chring() {
        for kind in StrategyKind::ALL {
            let s = build_sim_strategy(kind, 10).unwrap();
            assert_eq!(s.name(), kind.name());
            assert_eq!(StrategyKind::from_name(kind.name()), Some(kind));
            assert_eq!(s.is_keyed(), kind.is_key_affine());
        }
    }
}
