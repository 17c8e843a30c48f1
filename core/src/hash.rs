//! The stable hash: one function for every key, every point and every target.
//!
//! chring hashes with **XXH3-64** (the 64-bit variant of xxHash 3, seed 0 unless
//! stated), through the `xxhash-rust` crate. XXH3 is a published, versioned
//! algorithm with reference implementations in C, Python (`xxhash.xxh3_64`), Go and
//! others, so a key's position can be reproduced outside Rust. It reads input as
//! little-endian words whatever the target's endianness, and its short-input paths
//! (the ones keys and points use) need only a handful of multiplies, so it stays fast
//! on 32-bit microcontrollers.
//!
//! The contract (pinned by golden vectors in `tests/data/hash_golden.csv`):
//!
//! | function | definition |
//! | --- | --- |
//! | [`hash`]`(bytes)` | `XXH3_64(bytes, seed = 0)` |
//! | [`hash_u64`]`(x)` | `hash(x.to_le_bytes())` |
//! | [`hash_seeded`]`(bytes, s)` | `XXH3_64(bytes, seed = s)` |
//! | [`mix`]`(x, s)` | `hash_seeded(x.to_le_bytes(), s)` |
//!
//! Ring points, Maglev permutations and rendezvous scores are all built from
//! [`mix`] of a backend's name hash (see `DESIGN.md`), so they depend only on names.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Hashes a byte key: `XXH3_64(bytes, seed = 0)`.
///
/// ```
/// assert_eq!(chring::hash(b""), 0x2d06_8005_38d3_94c2);
/// ```
#[must_use]
#[inline]
pub fn hash(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// Hashes a `u64` key as its eight little-endian bytes, so
/// `hash_u64(x) == hash(&x.to_le_bytes())` on every target.
#[must_use]
#[inline]
pub fn hash_u64(x: u64) -> u64 {
    xxh3_64(&x.to_le_bytes())
}

/// Hashes bytes with a seed: `XXH3_64(bytes, seed)`.
#[must_use]
#[inline]
pub fn hash_seeded(bytes: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(bytes, seed)
}

/// Mixes a 64-bit value with a seed: `XXH3_64(x.to_le_bytes(), seed)`.
///
/// Used to derive ring points (`mix(name_hash, point_index)`), Maglev offsets and
/// skips, rendezvous scores and retry keys.
#[must_use]
#[inline]
pub fn mix(x: u64, seed: u64) -> u64 {
    xxh3_64_with_seed(&x.to_le_bytes(), seed)
}

/// Maps a 32-bit value uniformly onto `0..n` with one multiply (Lemire's
/// "fastrange"): `(x * n) >> 32`. Cheaper than `%` on every target and exact
/// for any `n <= 2^32`.
#[must_use]
#[inline]
pub(crate) fn reduce32(x: u32, n: u32) -> u32 {
    ((u64::from(x) * u64::from(n)) >> 32) as u32
}

/// The ring position of a 64-bit key hash: its top 32 bits.
#[must_use]
#[inline]
pub(crate) fn position(key_hash: u64) -> u32 {
    (key_hash >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh3_reference_values() {
        // From the xxHash reference (XXH3_64bits of the empty input, seed 0).
        assert_eq!(hash(b""), 0x2D06_8005_38D3_94C2);
        assert_eq!(hash_u64(7), hash(&7u64.to_le_bytes()));
        assert_eq!(mix(7, 0), hash_u64(7));
        assert_ne!(mix(7, 1), mix(7, 0));
    }

    #[test]
    fn reduce_covers_range() {
        assert_eq!(reduce32(0, 10), 0);
        assert_eq!(reduce32(u32::MAX, 10), 9);
        assert_eq!(reduce32(u32::MAX, 1), 0);
        assert_eq!(reduce32(123, 0), 0);
    }
}
