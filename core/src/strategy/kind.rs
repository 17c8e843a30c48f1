//! [`StrategyKind`]: every strategy of the crate, by name.

use core::fmt;
use core::str::FromStr;

#[cfg(doc)]
use crate::{
    BoundedLoad, FleetView, Jump, Maglev, Modulo, PowerOfTwo, Rendezvous, Ring, RoundRobin,
};

/// Every strategy the crate offers, by the name its [`FleetView::name`]
/// returns. The names are a contract: the protocol's `STRATEGY` command,
/// `host-sim`'s flags and its `results.json` use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StrategyKind {
    /// `ring`: [`Ring`], consistent hashing with virtual nodes.
    Ring,
    /// `maglev`: [`Maglev`]'s lookup table.
    Maglev,
    /// `jump`: [`Jump`] consistent hash.
    Jump,
    /// `rendezvous`: [`Rendezvous`], highest random weight.
    Rendezvous,
    /// `modulo`: [`Modulo`], `hash mod n` (IPHash).
    Modulo,
    /// `bounded`: [`BoundedLoad`], consistent hashing with bounded loads.
    Bounded,
    /// `p2c`: [`PowerOfTwo`], two choices, least loaded.
    P2c,
    /// `round_robin`: [`RoundRobin`], smooth weighted round robin.
    RoundRobin,
}

/// A name that is not one of [`StrategyKind::ALL`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownStrategy;

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown strategy")
    }
}

impl core::error::Error for UnknownStrategy {}

impl StrategyKind {
    /// Every kind, in a fixed order: the key-affine ones first.
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

    /// The name: `"ring"`, `"maglev"`, `"jump"`, `"rendezvous"`, `"modulo"`,
    /// `"bounded"`, `"p2c"`, `"round_robin"`.
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
    /// request order or load): the kinds that implement
    /// [`Placement`](crate::Placement).
    #[must_use]
    pub const fn is_key_affine(self) -> bool {
        !matches!(
            self,
            StrategyKind::Bounded | StrategyKind::P2c | StrategyKind::RoundRobin
        )
    }

    /// Parses a name, ignoring ASCII case and accepting `-` for `_`
    /// (`round-robin`). *O*(len).
    ///
    /// # Errors
    /// [`UnknownStrategy`] for any other string.
    pub fn parse(s: &str) -> Result<Self, UnknownStrategy> {
        let same = |name: &str| {
            name.len() == s.len()
                && name.bytes().zip(s.bytes()).all(|(n, c)| {
                    let c = if c == b'-' { b'_' } else { c };
                    n == c.to_ascii_lowercase()
                })
        };
        Self::ALL
            .into_iter()
            .find(|k| same(k.name()))
            .ok_or(UnknownStrategy)
    }
}

impl FromStr for StrategyKind {
    type Err = UnknownStrategy;

    /// [`StrategyKind::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in StrategyKind::ALL {
            assert_eq!(k.name().parse::<StrategyKind>(), Ok(k));
            assert_eq!(k.name().to_ascii_uppercase().parse::<StrategyKind>(), Ok(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!("round-robin".parse(), Ok(StrategyKind::RoundRobin));
        assert_eq!("Round_Robin".parse(), Ok(StrategyKind::RoundRobin));
        for bad in [
            "",
            "rin",
            "rings",
            "round robin",
            "p2c ",
            "\u{130}ng",
            "ring\0",
        ] {
            assert_eq!(bad.parse::<StrategyKind>(), Err(UnknownStrategy), "{bad:?}");
        }
        let affine: Vec<_> = StrategyKind::ALL
            .into_iter()
            .filter(|k| k.is_key_affine())
            .collect();
        assert_eq!(affine.len(), 5);
    }
}
