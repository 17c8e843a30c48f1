//! The seeded bucket hash of a [`TtlCache`]: a folded multiply per 64-bit word
//! of the key (the construction of `foldhash`), keyed by two multiplicands
//! derived from the cache's seed.

use core::hash::{Hash, Hasher};

use super::{CacheIndex, TtlCache};

/// The seed of [`TtlCache::new`] and the other constructors: fixed and public, so
/// only for trusted keys (see the [module docs](super#hash-flooding-and-the-seed)).
pub const DEFAULT_SEED: u64 = 0x517c_c1b7_2722_0a95;

/// SplitMix64's output function: derives the hasher's two multiplicands from the
/// seed, so that related seeds (0, 1, 2...) still give unrelated hashes.
const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The two multiplicands of the bucket hash for `seed`. The second is odd, so it
/// is never zero (a zero multiplicand would send every key to bucket 0).
pub(super) const fn hash_keys(seed: u64) -> [u64; 2] {
    [
        splitmix64(seed),
        splitmix64(seed ^ 0x243f_6a88_85a3_08d3) | 1,
    ]
}

/// The 128-bit product of `a` and `b`, folded to 64 bits (high XOR low).
#[inline]
pub(super) fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The seeded bucket hasher: per 64-bit word `w` of the key,
/// `acc = fold(acc ^ w, k1)` with `acc` starting at `k0`, where `(k0, k1)` derive
/// from the seed and `fold` is a 64 x 64 -> 128-bit multiply folded to 64 bits
/// (as `foldhash` does). One wide multiply per word: a `u64` key costs one.
pub(super) struct BucketHasher {
    pub(super) acc: u64,
    pub(super) k1: u64,
}

impl BucketHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.acc = folded_multiply(self.acc ^ w, self.k1);
    }
}

impl Hasher for BucketHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = 0u64;
            for (i, &b) in chunk.iter().enumerate() {
                w |= u64::from(b) << (8 * i);
            }
            self.add(w);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.acc
    }
}

impl<K: Hash, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    /// Bucket of a key: fastrange of the top 32 bits of its seeded hash onto
    /// `0..N`.
    #[inline]
    pub(super) fn bucket(&self, key: &K) -> usize {
        let [k0, k1] = self.hash_keys;
        let mut h = BucketHasher { acc: k0, k1 };
        key.hash(&mut h);
        let h32 = (h.finish() >> 32) as u32;
        ((u64::from(h32) * N as u64) >> 32) as usize
    }
}
