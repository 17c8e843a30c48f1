//! Helpers shared by the load-aware strategies: a seeded random stream (core has
//! no entropy source: the caller seeds it) and the choice of two distinct up
//! backends.

use crate::fleet::Fleet;
use crate::hash::reduce32;

/// SplitMix64 (Steele, Lea & Flood, 2014): one add and a 64-bit finaliser per
/// draw, full period 2^64, no_std. Our own generator rather than `rand_pcg`,
/// which sits behind the optional `workload` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The slot of the `n`-th backend that is up. *O*(n).
fn nth_up<const B: usize>(fleet: &Fleet<B>, n: usize) -> Option<usize> {
    fleet
        .as_slice()
        .iter()
        .enumerate()
        .filter(|(_, b)| b.up)
        .nth(n)
        .map(|(slot, _)| slot)
}

/// Two distinct up backends (slots) drawn uniformly from the 64 random bits `r`:
/// the first from its top 32 bits, the second from its low 32 bits among the
/// others. `None` with no backend up; no second with exactly one. *O*(1) when
/// every backend is up, *O*(n) otherwise.
pub(crate) fn two_up<const B: usize>(fleet: &Fleet<B>, r: u64) -> Option<(usize, Option<usize>)> {
    let all_up = fleet.all_up();
    let up = if all_up {
        fleet.len()
    } else {
        fleet.as_slice().iter().filter(|b| b.up).count()
    };
    let up = u32::try_from(up).ok()?;
    if up == 0 {
        return None;
    }
    let i = reduce32((r >> 32) as u32, up);
    let second = if up == 1 {
        None
    } else {
        let mut j = reduce32(r as u32, up - 1);
        if j >= i {
            j += 1;
        }
        Some(j)
    };
    if all_up {
        Some((i as usize, second.map(|j| j as usize)))
    } else {
        let a = nth_up(fleet, i as usize)?;
        Some((a, second.and_then(|j| nth_up(fleet, j as usize))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // SplitMix64 seeded with 0: the first outputs of the reference C code.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
