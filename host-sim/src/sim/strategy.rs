//! Which chring strategy a balancer runs, and building it behind
//! `Box<dyn chring::Strategy>`.

use chring::{
    BoundedLoad, ConfigError, Jump, Maglev, Modulo, PowerOfTwo, Rendezvous, Ring, RingConfig,
    RoundRobin, Strategy,
};

use crate::util::on_big_stack;

/// Every strategy chring offers: core's [`chring::StrategyKind`] (its names are
/// the ones the CLI takes and `results.json` writes).
pub use chring::StrategyKind;

/// The clap parser of a strategy name: one of [`StrategyKind::ALL`]'s names
/// (`round-robin` is accepted for `round_robin`), with each kind's help line.
#[must_use]
pub fn strategy_parser() -> impl clap::builder::TypedValueParser<Value = StrategyKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let values = StrategyKind::ALL.map(|k| {
        let v = PossibleValue::new(k.name()).help(help(k));
        if k == StrategyKind::RoundRobin {
            v.alias("round-robin")
        } else {
            v
        }
    });
    PossibleValuesParser::new(values).try_map(|s| s.parse::<StrategyKind>())
}

/// The CLI's one-line description of a kind.
const fn help(kind: StrategyKind) -> &'static str {
    match kind {
        StrategyKind::Ring => "Consistent-hash ring with virtual nodes (`chring::Ring`)",
        StrategyKind::Maglev => "Maglev lookup table (`chring::Maglev`)",
        StrategyKind::Jump => "Jump consistent hash (`chring::Jump`)",
        StrategyKind::Rendezvous => "Highest random weight (`chring::Rendezvous`)",
        StrategyKind::Modulo => "`hash mod n`, nginx's `ip_hash` / IPHash (`chring::Modulo`)",
        StrategyKind::Bounded => "Consistent hashing with bounded loads (`chring::BoundedLoad`)",
        StrategyKind::P2c => "Power of two choices (`chring::PowerOfTwo`)",
        StrategyKind::RoundRobin => "Smooth weighted round robin (`chring::RoundRobin`)",
    }
}

/// Serializes a kind as its name (serde `serialize_with`).
///
/// # Errors
/// The serializer's.
pub fn serialize_kind<S: serde::Serializer>(kind: &StrategyKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// Serializes a list of kinds as their names (serde `serialize_with`).
///
/// # Errors
/// The serializer's.
pub fn serialize_kinds<S: serde::Serializer>(
    kinds: &[StrategyKind],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(kinds.iter().map(|k| k.name()))
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
            assert_eq!(kind.name().parse(), Ok(kind));
            assert_eq!(s.is_keyed(), kind.is_key_affine());
        }
    }
}
