//! Hand-written reference points, hashing keys with XXH3-64 like chring (so the
//! difference to chring is the data structure alone):
//!
//! - `baseline-search`: a sorted `Vec<u32>` of ring positions (100 per backend,
//!   placed as chring places them) beside a `Vec<u16>` of owners, binary search
//!   (`partition_point`). The floor for a ring without an index.
//! - `baseline-search-index`: the same plus a 65,537-entry index on the top 16
//!   bits of the position. The floor for chring's `Ring<_, _, 65536>`.
//! - `baseline-table`: one read of a 65,537-entry `u16` table at
//!   `((h >> 32) * 65537) >> 32`: "hash + one table read", the floor for Maglev.
//! - `baseline-jump`: the paper's jump loop on the key hash, the floor for
//!   chring's `Jump`.

use chring::{hash, hash_u64, mix};
use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

use crate::Lookups;

const M: usize = 65_537;

/// A sorted array of ring positions, optionally indexed by their top 16 bits.
#[derive(Clone)]
struct Sorted {
    pos: Vec<u32>,
    owner: Vec<u16>,
    /// `index[j]` = first point with `pos >> 16 >= j`, for `j` in `0..=65536`.
    index: Vec<u32>,
}

impl Sorted {
    fn new(names: &[String], with_index: bool) -> Self {
        let mut pts: Vec<(u32, u16)> = Vec::with_capacity(names.len() * 100);
        for (b, name) in names.iter().enumerate() {
            let h = hash(name.as_bytes());
            pts.extend(
                (0..u64::from(chring_benches::VNODES))
                    .map(|i| ((mix(h, i) >> 32) as u32, b as u16)),
            );
        }
        pts.sort_unstable();
        let pos: Vec<u32> = pts.iter().map(|p| p.0).collect();
        let owner = pts.iter().map(|p| p.1).collect();
        let mut index = Vec::new();
        if with_index {
            index.reserve(65_537);
            let mut i = 0;
            for j in 0..=65_536u64 {
                while i < pos.len() && u64::from(pos[i]) < j << 16 {
                    i += 1;
                }
                index.push(i as u32);
            }
        }
        Self { pos, owner, index }
    }

    #[inline]
    fn owner_at(&self, i: usize) -> u64 {
        u64::from(self.owner[if i == self.pos.len() { 0 } else { i }])
    }

    #[inline]
    fn search(&self, h: u64) -> u64 {
        let p = (h >> 32) as u32;
        self.owner_at(self.pos.partition_point(|&x| x < p))
    }

    #[inline]
    fn search_index(&self, h: u64) -> u64 {
        let p = (h >> 32) as u32;
        let j = (p >> 16) as usize;
        let (lo, hi) = (self.index[j] as usize, self.index[j + 1] as usize);
        self.owner_at(lo + self.pos[lo..hi].partition_point(|&x| x < p))
    }
}

/// Lamping & Veach's jump consistent hash, as printed in the paper.
#[inline]
fn jump(mut key: u64, n: i64) -> i64 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < n {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b
}

pub(crate) fn lookups(l: &mut Lookups<'_, '_>) {
    let n = l.n();
    let names = crate::fleet::names(n);

    let mut s = Sorted::new(&names, true);
    l.bench(
        "baseline-search",
        &mut s,
        |s, k| s.search(hash_u64(k)),
        |s, k| s.search(hash(k.as_bytes())),
    );
    l.bench(
        "baseline-search-index",
        &mut s,
        |s, k| s.search_index(hash_u64(k)),
        |s, k| s.search_index(hash(k.as_bytes())),
    );

    let mut table: Vec<u16> = (0..M).map(|i| (i % n) as u16).collect();
    let slot = |h: u64| (((h >> 32) * M as u64) >> 32) as usize;
    l.bench(
        "baseline-table",
        &mut table,
        |t, k| u64::from(t[slot(hash_u64(k))]),
        |t, k| u64::from(t[slot(hash(k.as_bytes()))]),
    );

    let mut n = n as i64;
    l.bench(
        "baseline-jump",
        &mut n,
        |n, k| jump(hash_u64(k), *n) as u64,
        |n, k| jump(hash(k.as_bytes()), *n) as u64,
    );
}

/// `build/baseline-search/100` (generate 10,000 points, sort once) and
/// `build/baseline-search-index/100` (plus the 65,537-entry index): what a bulk
/// build costs, for comparison with chring's one-backend-at-a-time `add`.
pub(crate) fn build(g: &mut BenchmarkGroup<'_, WallTime>) {
    let names = crate::fleet::names(chring_benches::N_BUILD);
    crate::bench_build(g, "baseline-search", || Sorted::new(&names, false));
    crate::bench_build(g, "baseline-search-index", || Sorted::new(&names, true));
}
