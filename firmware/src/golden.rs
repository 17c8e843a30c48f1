//! Golden-vector replay: every strategy routes the reference's keys exactly as
//! the independent Python reference (`tests/data/reference.py`) does.
//!
//! `build.rs` checked `tests/data/golden.csv` and kept only the expected backend
//! ids (one byte per key: 4,800 bytes for 6 strategies × 4 fleets × 200 keys). Here
//! each key is rebuilt from its formula (`customer-%05d` for the first 100, then
//! the `u64` `i × 7919`), hashed with chring's XXH3 on this device, and routed
//! through a strategy built on the same fleet as the reference.
//!
//! Each strategy is built in its own non-inlined function, so their tables (the
//! largest is Maglev's, 8 KiB) share the same stack space one after the other.

use core::fmt;

use chring::{
    BackendId, Error, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy, hash, hash_u64,
};

mod table {
    include!(concat!(env!("OUT_DIR"), "/golden.rs"));
}

use table::{EXPECTED, FLEET_NAMES, KEYS, STRATEGY_NAMES, STRING_KEYS, U64_KEY_STEP};

/// Keys per (strategy, fleet) run: 100 strings, 100 integers.
pub const KEYS_PER_RUN: usize = KEYS;

/// The reference's fleets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum GoldenFleet {
    /// `server-0` .. `server-4`, weight 1.
    Equal5,
    /// `10.0.0.1:11211` .. `10.0.0.5:11211`, weights 1, 1, 2, 1, 3.
    Weighted,
    /// `server-0` .. `server-5`, weight 1.
    Added6,
    /// `equal5`, then `server-2` (id 2) removed.
    Removed,
}

impl GoldenFleet {
    /// Every fleet, in table order.
    pub const ALL: [Self; 4] = [Self::Equal5, Self::Weighted, Self::Added6, Self::Removed];

    /// The name used in `golden.csv`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        FLEET_NAMES[self as usize]
    }

    /// Adds this fleet's backends to `s`, as the reference builds it.
    ///
    /// # Errors
    /// The strategy's error (none is expected for the strategies replayed here).
    pub fn fill<S: Strategy + ?Sized>(self, s: &mut S) -> Result<(), Error> {
        const WEIGHTS: [u32; 5] = [1, 1, 2, 1, 3];
        let equal = |s: &mut S, n: u8| -> Result<(), Error> {
            for i in 0..n {
                let name = [b's', b'e', b'r', b'v', b'e', b'r', b'-', b'0' + i];
                s.add(BackendId(u16::from(i)), &name, 1)?;
            }
            Ok(())
        };
        match self {
            Self::Equal5 => equal(s, 5),
            Self::Added6 => equal(s, 6),
            Self::Removed => {
                equal(s, 5)?;
                s.remove(BackendId(2))?;
                Ok(())
            }
            Self::Weighted => {
                for (i, &w) in (0u8..).zip(WEIGHTS.iter()) {
                    let mut name = *b"10.0.0.0:11211";
                    name[7] = b'1' + i;
                    s.add(BackendId(u16::from(i)), &name, w)?;
                }
                Ok(())
            }
        }
    }
}

/// The reference's strategies, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum GoldenStrategy {
    /// Ring, 100 points per unit of weight.
    Ring,
    /// Ring, 64 points per unit of weight (the balancer's setting).
    Ring64,
    /// Maglev, table size 4099.
    Maglev,
    /// Jump, with holes for removed backends.
    Jump,
    /// Rendezvous (HRW), weighted.
    Rendezvous,
    /// `hash mod total weight`.
    Modulo,
}

impl GoldenStrategy {
    /// Every strategy, in table order.
    pub const ALL: [Self; 6] = [
        Self::Ring,
        Self::Ring64,
        Self::Maglev,
        Self::Jump,
        Self::Rendezvous,
        Self::Modulo,
    ];

    /// The name used in `golden.csv`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        STRATEGY_NAMES[self as usize]
    }
}

/// A replay that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum GoldenError {
    /// A key routed somewhere else than in the reference.
    Mismatch {
        /// The strategy.
        strategy: GoldenStrategy,
        /// The fleet.
        fleet: GoldenFleet,
        /// The key's position: `customer-{key:05}` below 100, else the `u64`
        /// `(key - 100) × 7919`.
        key: u16,
        /// The reference's backend.
        want: BackendId,
        /// This device's answer.
        got: Option<BackendId>,
    },
    /// The strategy could not be built or filled.
    Build {
        /// The strategy.
        strategy: GoldenStrategy,
        /// The fleet.
        fleet: GoldenFleet,
        /// Why.
        error: Error,
    },
}

impl fmt::Display for GoldenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GoldenError::Mismatch {
                strategy,
                fleet,
                key,
                want,
                got,
            } => write!(
                f,
                "golden {}/{} key #{key}: expected backend {}, got {:?}",
                fleet.name(),
                strategy.name(),
                want.0,
                got.map(|b| b.0)
            ),
            GoldenError::Build {
                strategy,
                fleet,
                error,
            } => write!(
                f,
                "golden {}/{}: cannot build: {error}",
                fleet.name(),
                strategy.name()
            ),
        }
    }
}

impl core::error::Error for GoldenError {}

/// The hash of golden key number `i` (`0..200`), rebuilt from its formula.
#[must_use]
pub fn key_hash(i: usize) -> u64 {
    if i < STRING_KEYS {
        let mut key = *b"customer-00000";
        let mut n = i;
        for d in key[9..].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        hash(&key)
    } else {
        hash_u64((i - STRING_KEYS) as u64 * U64_KEY_STEP)
    }
}

/// Replays every fleet through one strategy; returns the number of keys checked
/// (800).
///
/// # Errors
/// The first [`GoldenError`].
pub fn replay(strategy: GoldenStrategy) -> Result<u32, GoldenError> {
    match strategy {
        GoldenStrategy::Ring => replay_ring::<800>(strategy, 100),
        GoldenStrategy::Ring64 => replay_ring::<512>(strategy, 64),
        GoldenStrategy::Maglev => replay_with(strategy, Maglev::<8, 4099>::new),
        GoldenStrategy::Jump => replay_with(strategy, Jump::<8, 8>::new),
        GoldenStrategy::Rendezvous => replay_with(strategy, Rendezvous::<8>::new),
        GoldenStrategy::Modulo => replay_with(strategy, Modulo::<8>::new),
    }
}

/// Rings of up to `P` points: enough for the weighted fleet (8 units of weight).
#[inline(never)]
fn replay_ring<const P: usize>(strategy: GoldenStrategy, vnodes: u32) -> Result<u32, GoldenError> {
    let mut total = 0;
    for fleet in GoldenFleet::ALL {
        let mut ring =
            Ring::<8, P, 0>::new(RingConfig::new(vnodes)).map_err(|e| GoldenError::Build {
                strategy,
                fleet,
                error: e.into(),
            })?;
        total += check(&mut ring, strategy, fleet)?;
    }
    Ok(total)
}

#[inline(never)]
fn replay_with<S: Strategy>(
    strategy: GoldenStrategy,
    make: impl Fn() -> S,
) -> Result<u32, GoldenError> {
    let mut total = 0;
    for fleet in GoldenFleet::ALL {
        let mut s = make();
        total += check(&mut s, strategy, fleet)?;
    }
    Ok(total)
}

fn check<S: Strategy>(
    s: &mut S,
    strategy: GoldenStrategy,
    fleet: GoldenFleet,
) -> Result<u32, GoldenError> {
    fleet.fill(s).map_err(|error| GoldenError::Build {
        strategy,
        fleet,
        error,
    })?;
    let expected = &EXPECTED[strategy as usize][fleet as usize];
    for (i, &want) in expected.iter().enumerate() {
        let want = BackendId(u16::from(want));
        let got = s.pick(key_hash(i));
        if got != Some(want) {
            return Err(GoldenError::Mismatch {
                strategy,
                fleet,
                key: i as u16,
                want,
                got,
            });
        }
    }
    Ok(expected.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_the_enums() {
        assert_eq!(GoldenFleet::ALL.len(), FLEET_NAMES.len());
        assert_eq!(GoldenStrategy::ALL.len(), STRATEGY_NAMES.len());
        let fleets: Vec<_> = GoldenFleet::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(fleets, ["equal5", "weighted", "added6", "removed"]);
        let strategies: Vec<_> = GoldenStrategy::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            strategies,
            ["ring", "ring64", "maglev", "jump", "rendezvous", "modulo"]
        );
    }

    #[test]
    fn keys_follow_the_reference_formula() {
        assert_eq!(key_hash(0), hash(b"customer-00000"));
        assert_eq!(key_hash(42), hash(b"customer-00042"));
        assert_eq!(key_hash(99), hash(b"customer-00099"));
        assert_eq!(key_hash(100), hash_u64(0));
        assert_eq!(key_hash(199), hash_u64(99 * 7919));
    }

    #[test]
    fn every_strategy_matches_the_reference_on_the_host() {
        for s in GoldenStrategy::ALL {
            assert_eq!(replay(s), Ok(800), "{}", s.name());
        }
    }

    #[test]
    fn fleets_are_built_like_the_reference() {
        let mut r = Rendezvous::<8>::new();
        GoldenFleet::Weighted.fill(&mut r).unwrap();
        let weights: Vec<u32> = r.backends().iter().map(|b| b.weight).collect();
        assert_eq!(weights, [1, 1, 2, 1, 3]);
        assert_eq!(r.backends()[4].name_hash, hash(b"10.0.0.5:11211"));
        let mut r = Rendezvous::<8>::new();
        GoldenFleet::Removed.fill(&mut r).unwrap();
        let ids: Vec<u16> = r.backends().iter().map(|b| b.id.0).collect();
        assert_eq!(ids, [0, 1, 3, 4]);
        assert_eq!(r.backends()[2].name_hash, hash(b"server-3"));
    }

    #[test]
    fn a_wrong_fleet_is_reported_as_a_mismatch() {
        // Replaying `equal5`'s expectations on `added6` must fail somewhere.
        let mut ring = Ring::<8, 512, 0>::new(RingConfig::new(64)).unwrap();
        GoldenFleet::Added6.fill(&mut ring).unwrap();
        let expected = &EXPECTED[GoldenStrategy::Ring64 as usize][GoldenFleet::Equal5 as usize];
        let mismatches = (0..KEYS_PER_RUN)
            .filter(|&i| ring.lookup(key_hash(i)) != Some(BackendId(u16::from(expected[i]))))
            .count();
        assert!(mismatches > 0);
        let e = GoldenError::Mismatch {
            strategy: GoldenStrategy::Ring64,
            fleet: GoldenFleet::Added6,
            key: 3,
            want: BackendId(1),
            got: Some(BackendId(5)),
        };
        assert!(e.to_string().contains("added6/ring64 key #3"));
    }
}
