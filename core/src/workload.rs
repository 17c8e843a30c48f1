//! Seeded workload generators: the per-request customer-id streams of a cache-tier
//! simulation and of the firmware, reproducible bit for bit on every target.
//!
//! A workload is a stream of ids in `0..n`, drawn from a [`Distribution`]:
//!
//! | distribution | id `i` has probability | method | memory | time per id |
//! | --- | --- | --- | --- | --- |
//! | [`Uniform`] | `1 / n` | Lemire's multiply-shift with rejection | 8 bytes | *O*(1): fewer than 2 draws expected, about 1 when `n` ≪ `2^64` |
//! | [`Zipf`] | `(i + 1)^-s / H(n, s)` | rejection-inversion (Hörmann & Derflinger, 1996) | 40 bytes | *O*(1) expected, no table |
//!
//! [`KeyStream`] couples a distribution with a seeded [`Pcg32`] generator and is an
//! infinite [`Iterator`] of ids. Nothing here allocates, and nothing panics.
//!
//! ## Uniform ids
//!
//! One 64-bit draw `x` is multiplied by `n` in 128 bits; the high half is the id.
//! The low half tells whether `x` fell in the `2^64 mod n` values that would make
//! some ids more likely than others, and such draws are rejected and redrawn, so
//! every id comes from exactly `floor(2^64 / n)` values of `x`: the ids are exactly
//! uniform, and the division that computes `2^64 mod n` is only done on the rare
//! draws whose low half is below `n`.
//!
//! ## Zipf ids: rejection-inversion
//!
//! Let rank `k = i + 1` have the weight `h(k) = k^-s`. The method covers the ranks
//! with the areas under a continuous, decreasing hat function, the same `h(x)` on
//! real `x`, whose integral `H(x) = (x^(1-s) - 1) / (1 - s)` (`ln x` when `s = 1`)
//! and its inverse are both in closed form:
//!
//! 1. draw `u` uniformly between `H(1.5) - h(1)` and `H(n + 0.5)`;
//! 2. invert: `x = H⁻¹(u)`, and round it to the nearest rank `k` in `1..=n`;
//! 3. accept `k` when `u ≥ H(k + 0.5) - h(k)`, i.e. when `u` fell in the part of
//!    the area of `[k - 0.5, k + 0.5]` that is exactly `h(k)` wide; otherwise go
//!    back to 1. A precomputed squeeze accepts most draws without evaluating `H`.
//!
//! Since `h` is convex, the hat's area over `[k - 0.5, k + 0.5]` exceeds `h(k)` only
//! a little, so few draws are rejected: the expected number of rounds is bounded
//! independently of `n`, and measures at most about 1.02 over `n` from 2
//! to `2^64 - 1` and `s` from 0 to 100 (see the tests). `(e^y - 1) / y` and
//! `ln(1 + y) / y` are evaluated with `expm1` / `log1p` (and their Taylor series
//! next to 0), so `s = 1` and `s` near 1 need no special case. `s = 0` gives the
//! uniform distribution (up to a bias below `2^-53`, from float rounding).
//! The precision is that of a double: ids whose probability is below about `2^-53`
//! (far in the tail of a steep law over a huge `n`), and ids beyond `2^53`, are
//! told apart only at that resolution.
//! Apache Commons RNG's `RejectionInversionZipfSampler` and `rand_distr`'s `Zipf`
//! implement the same method; this is an independent implementation whose every
//! function goes through `libm`.
//!
//! ## The determinism contract
//!
//! The same `(distribution, seed)` gives the same ids on every target, 64-bit host
//! or 32-bit microcontroller, with or without a floating-point unit:
//!
//! - the generator is [`Pcg32`] seeded by [`SeedableRng::seed_from_u64`], whose
//!   output is specified bit for bit by `rand_pcg`;
//! - a random double in `[0, 1)` is `(next_u64() >> 11) as f64 * 2^-53`: the top 53
//!   bits of one 64-bit draw, scaled exactly;
//! - integer maths is done in `u64` / `u128`, whose results do not depend on the
//!   width of the target's registers;
//! - the floating-point maths is `+ - * /` (correctly rounded by IEEE 754 on every
//!   target, soft-float included) and the pure-Rust [`libm`] functions (`exp`,
//!   `log`, `expm1`, `log1p`, `pow`, `fabs`), never a platform's own math library
//!   nor `std`'s `f64` methods; float-to-integer conversions use Rust's `as`, which
//!   is defined for every input. (The one target family left out is 32-bit x86
//!   without SSE2, whose x87 unit rounds differently.)
//!
//! The test suite pins golden vectors of the first ids of seeded streams; the
//! firmware checks the same vectors on the target.
//!
//! ## Example
//!
//! ```
//! use chring::workload::{KeyStream, Zipf};
//!
//! // 10 000 customers, popularity ~ 1 / rank^1.1, seed 7.
//! let mut ids = KeyStream::new(Zipf::new(10_000, 1.1)?, 7);
//! let first: [u64; 4] = [ids.next_id(), ids.next_id(), ids.next_id(), ids.next_id()];
//! assert!(first.iter().all(|&id| id < 10_000));
//! // The same seed replays the same stream.
//! let mut again = KeyStream::new(Zipf::new(10_000, 1.1)?, 7);
//! assert!(first.iter().all(|&id| again.next_id() == id));
//! # Ok::<(), chring::workload::WorkloadError>(())
//! ```

use core::fmt;
use core::iter::FusedIterator;

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg32;

/// Why a distribution could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WorkloadError {
    /// `n = 0`: there is no id to draw.
    EmptyRange,
    /// The Zipf exponent `s` is NaN, infinite or negative.
    BadExponent,
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadError::EmptyRange => "workload id range is empty (n = 0)",
            WorkloadError::BadExponent => "Zipf exponent must be finite and >= 0",
        })
    }
}

impl core::error::Error for WorkloadError {}

/// `2^-53`, exactly.
const TWO_POW_MINUS_53: f64 = 1.0 / 9_007_199_254_740_992.0;

/// A double uniform in `[0, 1)`: the top 53 bits of one `next_u64`, times `2^-53`.
#[inline]
fn unit_f64<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * TWO_POW_MINUS_53
}

/// Ids uniform in `0..n`, exactly (no modulo bias).
///
/// Size: 8 bytes. [`sample`](Self::sample) takes one 64-bit draw, and redraws
/// with probability `(2^64 mod n) / 2^64`: below `1/2`, and below `2^-32` when
/// `n < 2^32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Uniform {
    n: u64,
}

impl Uniform {
    /// Ids in `0..n`. *O*(1).
    ///
    /// # Errors
    ///
    /// [`WorkloadError::EmptyRange`] if `n = 0`.
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::{KeyStream, Uniform};
    ///
    /// let mut ids = KeyStream::new(Uniform::new(6)?, 1);
    /// assert!(ids.next_id() < 6);
    /// assert!(Uniform::new(0).is_err());
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use = "this returns the distribution or an error, and changes nothing"]
    pub const fn new(n: u64) -> Result<Self, WorkloadError> {
        if n == 0 {
            Err(WorkloadError::EmptyRange)
        } else {
            Ok(Self { n })
        }
    }

    /// The number of ids, `n`. *O*(1).
    #[must_use]
    pub const fn n(&self) -> u64 {
        self.n
    }

    /// Draws one id in `0..n`. *O*(1): one `next_u64`, plus one more with
    /// probability `(2^64 mod n) / 2^64` each time. Lemire's method; the 128-bit
    /// product is computed the same way on 32- and 64-bit targets.
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::Uniform;
    /// use rand_core::SeedableRng;
    ///
    /// let mut rng = rand_pcg::Pcg32::seed_from_u64(3);
    /// assert!(Uniform::new(10)?.sample(&mut rng) < 10);
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use = "drawing advances the generator; use the id"]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let n = self.n;
        let mut product = u128::from(rng.next_u64()) * u128::from(n);
        let mut low = product as u64;
        if low < n {
            // 2^64 mod n = (2^64 - n) mod n: the number of draws to reject so that
            // every id is hit by exactly floor(2^64 / n) draws. `n >= 1` by
            // construction; `checked_rem` only keeps the code panic-free.
            let threshold = n.wrapping_neg().checked_rem(n).unwrap_or(0);
            while low < threshold {
                product = u128::from(rng.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }
}

/// Ids in `0..n` with Zipf popularity: id `i` has probability proportional to
/// `1 / (i + 1)^s`, so id 0 is the most popular.
///
/// Sampled by rejection-inversion (Hörmann & Derflinger, 1996; see the
/// [module docs](self)): *O*(1) expected time for every `n` and `s`, no table,
/// 40 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Zipf {
    /// Number of ids, `>= 1`.
    n: u64,
    /// Exponent, finite and `>= 0`.
    s: f64,
    /// `H(1.5) - h(1)`: the low end of the range of `u`.
    u_low: f64,
    /// `H(n + 0.5)`: the high end of the range of `u`.
    u_high: f64,
    /// Squeeze: a rank `k` with `k - x <= squeeze` is accepted at once.
    squeeze: f64,
}

impl Zipf {
    /// Ids in `0..n`, id `i` with probability `(i + 1)^-s / H(n, s)`. *O*(1): a
    /// handful of `libm` calls to precompute the bounds of the method.
    ///
    /// `s = 0` is uniform, `s = 1` is the classic Zipf law; web and cache traces
    /// typically have `s` between 0.6 and 1.2.
    ///
    /// # Errors
    ///
    /// [`WorkloadError::EmptyRange`] if `n = 0`; [`WorkloadError::BadExponent`] if
    /// `s` is NaN, infinite or negative.
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::{WorkloadError, Zipf};
    ///
    /// let zipf = Zipf::new(1000, 1.0)?;
    /// assert_eq!(zipf.n(), 1000);
    /// assert_eq!(Zipf::new(1000, f64::NAN), Err(WorkloadError::BadExponent));
    /// assert_eq!(Zipf::new(0, 1.0), Err(WorkloadError::EmptyRange));
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use = "this returns the distribution or an error, and changes nothing"]
    pub fn new(n: u64, s: f64) -> Result<Self, WorkloadError> {
        if n == 0 {
            return Err(WorkloadError::EmptyRange);
        }
        // NaN is in no range, so it is rejected too (and -0.0 == 0.0 is accepted).
        if !(0.0..=f64::MAX).contains(&s) {
            return Err(WorkloadError::BadExponent);
        }
        // h(1) = 1 exactly, so this is H(1.5) - h(1), the same value `sample`
        // computes when it checks rank 1.
        let u_low = big_h(s, 1.5) - 1.0;
        let u_high = big_h(s, n as f64 + 0.5);
        let squeeze = 2.0 - big_h_inv(s, big_h(s, 2.5) - h(s, 2.0));
        Ok(Self {
            n,
            s,
            u_low,
            u_high,
            squeeze,
        })
    }

    /// The number of ids, `n`. *O*(1).
    #[must_use]
    pub const fn n(&self) -> u64 {
        self.n
    }

    /// The exponent `s`. *O*(1).
    #[must_use]
    pub const fn s(&self) -> f64 {
        self.s
    }

    /// Draws one id in `0..n`. *O*(1) expected: each round takes one `next_u64`
    /// and a few `libm` calls, and about 1.02 rounds at most are needed on
    /// average. With `n = 1` it returns 0 without drawing.
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::Zipf;
    /// use rand_core::SeedableRng;
    ///
    /// let mut rng = rand_pcg::Pcg32::seed_from_u64(3);
    /// assert!(Zipf::new(100, 0.9)?.sample(&mut rng) < 100);
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use = "drawing advances the generator; use the id"]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        if self.n == 1 {
            return 0;
        }
        let s = self.s;
        loop {
            // u runs over (u_low, u_high]; u_low < u_high because H increases.
            let u = self.u_high + unit_f64(rng) * (self.u_low - self.u_high);
            let x = big_h_inv(s, u);
            // x >= 0 (an exp), so `as` rounds half up to the nearest rank; it
            // saturates on overflow, and the clamp keeps the rank in 1..=n.
            let k = ((x + 0.5) as u64).max(1).min(self.n);
            let k_real = k as f64;
            if k_real - x <= self.squeeze || u >= big_h(s, k_real + 0.5) - h(s, k_real) {
                return k - 1;
            }
        }
    }

    /// The exact probability of id `i`: `(i + 1)^-s / H(n, s)`, or 0 if `i >= n`.
    ///
    /// Cost: *O*(n), since it sums the normalising constant with [`harmonic`]; to
    /// tabulate many ids, compute `harmonic(n, s)` once instead.
    #[must_use]
    pub fn pmf(&self, i: u64) -> f64 {
        if i >= self.n {
            return 0.0;
        }
        libm::pow(i as f64 + 1.0, -self.s) / harmonic(self.n, self.s)
    }
}

/// `h(x) = x^-s`, for `x >= 1`.
fn h(s: f64, x: f64) -> f64 {
    libm::exp(-s * libm::log(x))
}

/// `H(x) = ∫₁ˣ t^-s dt = (x^(1-s) - 1) / (1 - s)`, or `ln x` when `s = 1`,
/// computed as `ln x · (e^y - 1) / y` with `y = (1 - s) ln x`.
fn big_h(s: f64, x: f64) -> f64 {
    let ln_x = libm::log(x);
    expm1_over((1.0 - s) * ln_x) * ln_x
}

/// The inverse of [`big_h`]: `H⁻¹(v) = (1 + (1 - s) v)^(1 / (1 - s))`, or `e^v`
/// when `s = 1`, computed as `exp(v · ln(1 + t) / t)` with `t = (1 - s) v`.
fn big_h_inv(s: f64, v: f64) -> f64 {
    let mut t = v * (1.0 - s);
    // Outside H's range (by rounding only): clamp to its edge.
    if t < -1.0 {
        t = -1.0;
    }
    libm::exp(log1p_over(t) * v)
}

/// `(e^y - 1) / y`, continuous at `y = 0` (where it is 1).
fn expm1_over(y: f64) -> f64 {
    if libm::fabs(y) > 1e-8 {
        libm::expm1(y) / y
    } else {
        // Taylor series: 1 + y/2 + y²/6 + y³/24.
        1.0 + y * 0.5 * (1.0 + y * (1.0 / 3.0) * (1.0 + y * 0.25))
    }
}

/// `ln(1 + t) / t`, continuous at `t = 0` (where it is 1).
fn log1p_over(t: f64) -> f64 {
    if libm::fabs(t) > 1e-8 {
        libm::log1p(t) / t
    } else {
        // Taylor series: 1 - t/2 + t²/3 - t³/4.
        1.0 - t * (0.5 - t * (1.0 / 3.0 - t * 0.25))
    }
}

/// The generalized harmonic number `H(n, s) = Σ_{k=1..n} 1 / k^s`, the
/// normalising constant of [`Zipf`]: id `i` has probability `(i + 1)^-s / H(n, s)`.
///
/// Cost: *O*(n) `libm::pow` calls; meant for tests, reports and tables, not for the
/// request path. The terms are added from the smallest up with compensated
/// (Kahan–Babuška) summation, so the result is accurate to a few ulps. `n = 0`
/// gives 0; a NaN `s` gives NaN.
///
/// # Example
///
/// ```
/// use chring::workload::harmonic;
///
/// assert_eq!(harmonic(4, 0.0), 4.0);
/// assert!((harmonic(4, 1.0) - 25.0 / 12.0).abs() < 1e-15);
/// ```
#[must_use]
pub fn harmonic(n: u64, s: f64) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    let mut k = n;
    while k >= 1 {
        let term = libm::pow(k as f64, -s);
        let next = sum + term;
        // Neumaier's variant: recover the low bits lost by whichever is smaller.
        if libm::fabs(sum) >= libm::fabs(term) {
            compensation += (sum - next) + term;
        } else {
            compensation += (term - next) + sum;
        }
        sum = next;
        k -= 1;
    }
    sum + compensation
}

/// A distribution of ids in `0..n`: [`Uniform`] or [`Zipf`].
///
/// Size: that of a [`Zipf`] plus a tag.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Distribution {
    /// Every id equally likely.
    Uniform(Uniform),
    /// Id `i` with probability proportional to `(i + 1)^-s`.
    Zipf(Zipf),
}

impl Distribution {
    /// [`Uniform::new`], wrapped. *O*(1).
    ///
    /// # Errors
    ///
    /// [`WorkloadError::EmptyRange`] if `n = 0`.
    #[must_use = "this returns the distribution or an error, and changes nothing"]
    pub const fn uniform(n: u64) -> Result<Self, WorkloadError> {
        match Uniform::new(n) {
            Ok(u) => Ok(Distribution::Uniform(u)),
            Err(e) => Err(e),
        }
    }

    /// [`Zipf::new`], wrapped. *O*(1).
    ///
    /// # Errors
    ///
    /// [`WorkloadError::EmptyRange`] if `n = 0`; [`WorkloadError::BadExponent`] if
    /// `s` is NaN, infinite or negative.
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::Distribution;
    ///
    /// let dists = [Distribution::uniform(500)?, Distribution::zipf(500, 0.8)?];
    /// assert!(dists.iter().all(|d| d.n() == 500));
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use = "this returns the distribution or an error, and changes nothing"]
    pub fn zipf(n: u64, s: f64) -> Result<Self, WorkloadError> {
        match Zipf::new(n, s) {
            Ok(z) => Ok(Distribution::Zipf(z)),
            Err(e) => Err(e),
        }
    }

    /// The number of ids, `n`. *O*(1).
    #[must_use]
    pub const fn n(&self) -> u64 {
        match self {
            Distribution::Uniform(u) => u.n(),
            Distribution::Zipf(z) => z.n(),
        }
    }

    /// Draws one id in `0..n` with the wrapped distribution's
    /// [`Uniform::sample`] or [`Zipf::sample`]. *O*(1) expected.
    #[must_use = "drawing advances the generator; use the id"]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            Distribution::Uniform(u) => u.sample(rng),
            Distribution::Zipf(z) => z.sample(rng),
        }
    }
}

impl From<Uniform> for Distribution {
    fn from(u: Uniform) -> Self {
        Distribution::Uniform(u)
    }
}

impl From<Zipf> for Distribution {
    fn from(z: Zipf) -> Self {
        Distribution::Zipf(z)
    }
}

/// An infinite, seeded stream of ids: a [`Distribution`] driven by a [`Pcg32`]
/// seeded with [`SeedableRng::seed_from_u64`].
///
/// The same `(distribution, seed)` gives the same ids on every target (see the
/// [determinism contract](self#the-determinism-contract)). Size: the distribution
/// plus 16 bytes of generator state. Iterating never ends and never returns `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStream {
    dist: Distribution,
    rng: Pcg32,
}

impl KeyStream {
    /// A stream of ids from `dist`, seeded with `seed`. *O*(1).
    ///
    /// # Example
    ///
    /// ```
    /// use chring::workload::{KeyStream, Uniform};
    ///
    /// let a: Vec<u64> = KeyStream::new(Uniform::new(1000)?, 42).take(8).collect();
    /// let b: Vec<u64> = KeyStream::new(Uniform::new(1000)?, 42).take(8).collect();
    /// assert_eq!(a, b);
    /// # Ok::<(), chring::workload::WorkloadError>(())
    /// ```
    #[must_use]
    pub fn new(dist: impl Into<Distribution>, seed: u64) -> Self {
        Self {
            dist: dist.into(),
            rng: Pcg32::seed_from_u64(seed),
        }
    }

    /// The next id, in `0..n`. *O*(1) expected (see [`Distribution::sample`]).
    #[must_use = "drawing advances the stream; use the id"]
    pub fn next_id(&mut self) -> u64 {
        self.dist.sample(&mut self.rng)
    }

    /// The distribution the ids are drawn from. *O*(1).
    #[must_use]
    pub const fn distribution(&self) -> &Distribution {
        &self.dist
    }
}

impl Iterator for KeyStream {
    type Item = u64;

    /// Always `Some`: the stream is infinite.
    fn next(&mut self) -> Option<u64> {
        Some(self.next_id())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for KeyStream {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vector: the first 16 ids of `KeyStream::new(Zipf::new(1000, 1.5)?, 42)`.
    /// Part of the determinism contract: the firmware checks the same ids on the target.
    const GOLDEN_ZIPF_1000_1_5_SEED_42: [u64; 16] =
        [0, 0, 0, 4, 7, 1, 2, 0, 52, 99, 2, 1, 8, 10, 9, 1];
    /// Golden vector: the first 16 ids of `KeyStream::new(Uniform::new(1000)?, 42)`.
    const GOLDEN_UNIFORM_1000_SEED_42: [u64; 16] = [
        779, 983, 646, 325, 249, 504, 424, 870, 82, 53, 403, 525, 240, 214, 224, 534,
    ];

    const SAMPLES: usize = 200_000;

    /// Upper `p ≈ 1e-6` quantile of a chi-square with `df` degrees of freedom
    /// (Wilson–Hilferty: (X/df)^(1/3) is close to normal), z = 4.75.
    fn chi2_critical(df: usize) -> f64 {
        let df = df as f64;
        let a = 2.0 / (9.0 * df);
        df * (1.0 - a + 4.75 * a.sqrt()).powi(3)
    }

    /// Pearson's statistic over bins of consecutive ids, each bin grown until its
    /// expected count is at least 20. Returns (statistic, degrees of freedom).
    fn chi2(counts: &[u64], pmf: &[f64], total: usize) -> (f64, usize) {
        let total = total as f64;
        let (mut stat, mut bins) = (0.0, 0);
        let (mut obs, mut exp) = (0.0, 0.0);
        for (&c, &p) in counts.iter().zip(pmf) {
            obs += c as f64;
            exp += p * total;
            if exp >= 20.0 {
                stat += (obs - exp) * (obs - exp) / exp;
                bins += 1;
                (obs, exp) = (0.0, 0.0);
            }
        }
        if exp > 0.0 || obs > 0.0 {
            // Left-over tail: merge into a last bin (it can be small only if all is).
            stat += (obs - exp) * (obs - exp) / exp.max(1e-300);
            bins += 1;
        }
        (stat, bins.max(2) - 1)
    }

    /// The exact Zipf pmf, with `std`'s `powf` (an implementation independent of
    /// the `libm` one under test) and `harmonic` for the normalising constant.
    fn zipf_pmf_table(n: u64, s: f64) -> Vec<f64> {
        let hn = harmonic(n, s);
        (1..=n).map(|k| (k as f64).powf(-s) / hn).collect()
    }

    fn draw_counts(dist: Distribution, seed: u64, samples: usize) -> Vec<u64> {
        let n = dist.n();
        let mut counts = vec![0u64; n as usize];
        for id in KeyStream::new(dist, seed).take(samples) {
            assert!(id < n, "id {id} out of 0..{n}");
            counts[id as usize] += 1;
        }
        counts
    }

    /// Checks a sample against the exact pmf: each of the first 10 ids within
    /// 4.5 standard errors of its probability, and Pearson's chi-square over all
    /// ids below its p = 1e-6 critical value.
    fn check_against_pmf(counts: &[u64], pmf: &[f64], what: &str) {
        let total: u64 = counts.iter().sum();
        let nf = total as f64;
        let mut failures = Vec::new();
        for (i, (&c, &p)) in counts.iter().zip(pmf).take(10).enumerate() {
            let freq = c as f64 / nf;
            let se = (p * (1.0 - p) / nf).sqrt();
            if (freq - p).abs() > 4.5 * se + 1e-12 {
                let z = (freq - p) / se;
                failures.push(format!("id {i}: frequency {freq}, pmf {p}, {z:.1} s.e."));
            }
        }
        let (stat, df) = chi2(counts, pmf, total as usize);
        let crit = chi2_critical(df);
        if stat > crit {
            failures.push(format!("chi-square {stat:.1} > {crit:.1} (df {df})"));
        }
        assert!(failures.is_empty(), "{what}: {failures:#?}");
    }

    fn check_zipf(n: u64, s: f64, seed: u64) {
        let counts = draw_counts(Distribution::zipf(n, s).unwrap(), seed, SAMPLES);
        check_against_pmf(&counts, &zipf_pmf_table(n, s), &format!("Zipf({n}, {s})"));
    }

    #[test]
    fn zipf_matches_pmf_n100_s1_5() {
        check_zipf(100, 1.5, 1);
    }

    #[test]
    fn zipf_matches_pmf_n1000_s1() {
        check_zipf(1000, 1.0, 2);
    }

    #[test]
    fn zipf_matches_pmf_n50_s0() {
        check_zipf(50, 0.0, 3);
    }

    #[test]
    fn zipf_matches_pmf_other_exponents() {
        // Both sides of 1, next to 1 (the Taylor branches), and steep.
        for (n, s, seed) in [
            (200, 0.5, 4),
            (300, 0.99, 5),
            (300, 1.0 + 1e-10, 6),
            (20, 3.0, 7),
            (2, 1.0, 8),
            (3, 0.7, 9),
        ] {
            check_zipf(n, s, seed);
        }
    }

    #[test]
    fn hat_integral_and_inverse() {
        // Both branches of the helpers agree where they meet.
        for y in [1e-8, -1e-8] {
            let (a, b) = (expm1_over(y), expm1_over(y * (1.0 + 1e-12)));
            assert!((a - b).abs() < 1e-15, "{a} {b}");
            let (a, b) = (log1p_over(y), log1p_over(y * (1.0 + 1e-12)));
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        assert_eq!((expm1_over(0.0), log1p_over(0.0)), (1.0, 1.0));
        for s in [0.0, 0.3, 1.0 - 1e-9, 1.0, 1.0 + 1e-9, 1.7, 5.0] {
            for x in [1.0_f64, 1.5, 2.0, 2.5, 10.5, 1e6, 1.8e19] {
                let closed = if s == 1.0 {
                    x.ln()
                } else {
                    (x.powf(1.0 - s) - 1.0) / (1.0 - s)
                };
                let got = big_h(s, x);
                // The closed form loses digits to cancellation next to s = 1.
                let tol = if (s - 1.0).abs() < 1e-6 { 1e-6 } else { 1e-12 };
                assert!(
                    (got - closed).abs() <= tol * closed.abs().max(1.0),
                    "s {s} x {x}"
                );
                let back = big_h_inv(s, got);
                // H⁻¹ amplifies H's rounding by |H(x)| / (x h(x)) = |H(x)| x^(s-1):
                // for s > 1 far out, H(x) is next to 1 / (s - 1) and an ulp of H
                // spans many x (s = 5, x = 1e6: H rounds to 1/4 and H⁻¹ gives inf).
                let tol = (4.0 * f64::EPSILON * got.abs() * x.powf(s - 1.0)).max(1e-12);
                if tol < 0.5 {
                    assert!((back - x).abs() <= tol * x, "s {s} x {x}: {back}");
                }
                // exp(-s ln x): relative error about |s ln x| ulps.
                let exact = x.powf(-s);
                assert!((h(s, x) - exact).abs() <= 1e-13 * exact, "s {s} x {x}");
            }
        }
    }

    #[test]
    fn zipf_n1_is_always_0() {
        for s in [0.0, 0.5, 1.0, 2.0, 1e300] {
            let mut ids = KeyStream::new(Zipf::new(1, s).unwrap(), 11);
            assert!((0..SAMPLES).all(|_| ids.next_id() == 0));
        }
    }

    #[test]
    fn zipf_extremes_stay_in_range_and_terminate() {
        let ns = [2, 3, 1000, 1 << 53, u64::MAX - 1, u64::MAX];
        let ss = [
            0.0,
            1e-300,
            1e-9,
            0.5,
            1.0 - 1e-12,
            1.0,
            1.0 + 1e-12,
            2.0,
            40.0,
            1e3,
            1e10,
            1e300,
            f64::MAX,
        ];
        for &n in &ns {
            for &s in &ss {
                let z = Zipf::new(n, s).unwrap();
                assert!(z.u_low.is_finite() && z.u_high.is_finite() && !z.squeeze.is_nan());
                assert!(z.u_low < z.u_high || s >= 1e300, "n {n}, s {s}: {z:?}");
                let mut ids = KeyStream::new(z, n ^ s.to_bits());
                for _ in 0..2000 {
                    assert!(ids.next_id() < n);
                }
            }
        }
        // Very steep: practically always id 0 (P(id 0) = 1 / H(n, 60) > 1 - 1e-18).
        let mut ids = KeyStream::new(Zipf::new(u64::MAX, 60.0).unwrap(), 1);
        assert!((0..10_000).all(|_| ids.next_id() == 0));
        // s = 0 over the whole u64 range: ids spread over it.
        let mut ids = KeyStream::new(Zipf::new(u64::MAX, 0.0).unwrap(), 1);
        let high = (0..10_000).filter(|_| ids.next_id() >= 1 << 63).count();
        assert!((4500..5500).contains(&high), "{high}");
    }

    #[test]
    fn zipf_rounds_per_id_are_few() {
        /// An rng that counts its draws.
        struct Counting(Pcg32, u64);
        impl rand_core::TryRng for Counting {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                self.1 += 1;
                Ok(self.0.next_u32())
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                self.1 += 1;
                Ok(self.0.next_u64())
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                self.0.try_fill_bytes(dst)
            }
        }
        let mut worst = (0.0, 0, 0.0);
        for n in [2, 10, 1000, 1 << 40, u64::MAX] {
            for s in [0.0, 0.1, 0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 10.0, 100.0] {
                let z = Zipf::new(n, s).unwrap();
                let mut rng = Counting(Pcg32::seed_from_u64(5), 0);
                let draws = 20_000;
                for _ in 0..draws {
                    let _ = z.sample(&mut rng);
                }
                let rounds = rng.1 as f64 / draws as f64;
                if rounds > worst.0 {
                    worst = (rounds, n, s);
                }
            }
        }
        println!("worst mean rounds per id: {worst:?}");
        assert!(worst.0 < 1.05, "{worst:?}");
    }

    #[test]
    fn uniform_matches_pmf() {
        for (n, seed) in [(1000, 1), (6, 2), (7, 3)] {
            let counts = draw_counts(Distribution::uniform(n).unwrap(), seed, SAMPLES);
            let pmf = vec![1.0 / n as f64; n as usize];
            check_against_pmf(&counts, &pmf, &format!("Uniform({n})"));
        }
    }

    #[test]
    fn uniform_n1_is_always_0() {
        let mut ids = KeyStream::new(Uniform::new(1).unwrap(), 3);
        assert!((0..10_000).all(|_| ids.next_id() == 0));
    }

    #[test]
    fn uniform_huge_ranges() {
        // n = u64::MAX: no rejection threshold to speak of, every id but u64::MAX.
        let mut ids = KeyStream::new(Uniform::new(u64::MAX).unwrap(), 9);
        let high = (0..10_000).filter(|_| ids.next_id() >= 1 << 63).count();
        assert!((4800..5200).contains(&high), "{high}");
        // n = 2^63 + 1: almost half of the draws are rejected; still in range.
        let n = (1u64 << 63) + 1;
        let mut ids = KeyStream::new(Uniform::new(n).unwrap(), 9);
        let mut high = 0;
        for _ in 0..10_000 {
            let id = ids.next_id();
            assert!(id < n);
            high += usize::from(id >= 3 << 61);
        }
        // P(id >= 3 * 2^61) = 1/4 (to 1e-18); 4.6 standard errors either side.
        assert!((2300..2700).contains(&high), "{high}");
    }

    /// An rng that replays a script of `next_u64` values.
    struct Script<'a>(&'a [u64]);
    impl rand_core::TryRng for Script<'_> {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.try_next_u64().map(|x| x as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let (first, rest) = self.0.split_first().expect("script exhausted");
            self.0 = rest;
            Ok(*first)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            unimplemented!()
        }
    }

    #[test]
    fn uniform_rejects_exactly_the_biased_draws() {
        // n = 3: 2^64 mod 3 = 1, so only a draw whose product has low half 0
        // (x = 0) is rejected.
        let u3 = Uniform::new(3).unwrap();
        let mut rng = Script(&[0, u64::MAX]);
        assert_eq!(u3.sample(&mut rng), 2);
        assert!(rng.0.is_empty());
        let mut rng = Script(&[1, 0x5555_5555_5555_5556, 0xAAAA_AAAA_AAAA_AAAB]);
        assert_eq!(
            [
                u3.sample(&mut rng),
                u3.sample(&mut rng),
                u3.sample(&mut rng)
            ],
            [0, 1, 2]
        );
        // n = 2^63 + 1: 2^64 mod n = 2^63 - 1, so draws 0 and 1 (low halves 0
        // and 2^63 + 1 >= threshold) are treated differently.
        let n = (1u64 << 63) + 1;
        let un = Uniform::new(n).unwrap();
        let mut rng = Script(&[0, 1]);
        assert_eq!(un.sample(&mut rng), 0);
        assert!(rng.0.is_empty());
        // u64::MAX: 2^64 mod (2^64 - 1) = 1: x = 0 rejected, x = u64::MAX gives
        // the largest id.
        let umax = Uniform::new(u64::MAX).unwrap();
        let mut rng = Script(&[0, u64::MAX]);
        assert_eq!(umax.sample(&mut rng), u64::MAX - 1);
    }

    #[test]
    fn zipf_uses_the_documented_unit_double() {
        // r = 0 (top 53 bits zero) maps u to H(n + 0.5): the largest rank, n.
        let z = Zipf::new(10, 1.0).unwrap();
        assert_eq!(z.sample(&mut Script(&[0x7FF])), 9);
        // r just below 1 maps u next to H(1.5) - 1: rank 1.
        assert_eq!(z.sample(&mut Script(&[u64::MAX])), 0);
        assert_eq!(unit_f64(&mut Script(&[u64::MAX])), 1.0 - TWO_POW_MINUS_53);
        assert_eq!(unit_f64(&mut Script(&[1 << 11])), TWO_POW_MINUS_53);
    }

    #[test]
    fn same_seed_same_ids_different_seed_different_ids() {
        for dist in [
            Distribution::zipf(1000, 1.5).unwrap(),
            Distribution::zipf(1 << 40, 0.8).unwrap(),
            Distribution::uniform(1000).unwrap(),
        ] {
            let a: Vec<u64> = KeyStream::new(dist, 42).take(1000).collect();
            let b: Vec<u64> = KeyStream::new(dist, 42).take(1000).collect();
            let c: Vec<u64> = KeyStream::new(dist, 43).take(1000).collect();
            assert_eq!(a, b);
            assert_ne!(a, c);
            // The iterator and `next_id` are the same stream.
            let mut s = KeyStream::new(dist, 42);
            assert!(a.iter().all(|&id| s.next_id() == id));
            // `Distribution::sample` with a seeded Pcg32 is the same stream too.
            let mut rng = Pcg32::seed_from_u64(42);
            assert!(a.iter().all(|&id| dist.sample(&mut rng) == id));
        }
    }

    #[test]
    fn golden_vectors() {
        let z: Vec<u64> = KeyStream::new(Zipf::new(1000, 1.5).unwrap(), 42)
            .take(16)
            .collect();
        let u: Vec<u64> = KeyStream::new(Uniform::new(1000).unwrap(), 42)
            .take(16)
            .collect();
        assert_eq!(
            z, GOLDEN_ZIPF_1000_1_5_SEED_42,
            "Zipf golden vector changed"
        );
        assert_eq!(
            u, GOLDEN_UNIFORM_1000_SEED_42,
            "Uniform golden vector changed"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Uniform::new(0), Err(WorkloadError::EmptyRange));
        assert_eq!(Distribution::uniform(0), Err(WorkloadError::EmptyRange));
        assert_eq!(Zipf::new(0, 1.0), Err(WorkloadError::EmptyRange));
        for s in [
            f64::NAN,
            -1.0,
            -0.0001,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -f64::NAN,
        ] {
            assert_eq!(Zipf::new(10, s), Err(WorkloadError::BadExponent), "s = {s}");
            assert_eq!(Distribution::zipf(10, s), Err(WorkloadError::BadExponent));
        }
        // -0.0 == 0.0: accepted, as uniform.
        assert!(Zipf::new(10, -0.0).is_ok());
        assert!(Zipf::new(10, f64::MAX).is_ok());
        assert!(!WorkloadError::EmptyRange.to_string().is_empty());
        let e: &dyn core::error::Error = &WorkloadError::BadExponent;
        assert!(e.to_string().contains("exponent"));
    }

    #[test]
    fn harmonic_values() {
        assert_eq!(harmonic(0, 1.0), 0.0);
        assert_eq!(harmonic(1, 7.0), 1.0);
        assert_eq!(harmonic(1000, 0.0), 1000.0);
        assert!((harmonic(4, 1.0) - 25.0 / 12.0).abs() < 1e-15);
        // H(n, 1) = ln n + γ + 1/(2n) - 1/(12n²) + ...
        let n = 100_000.0_f64;
        let euler_gamma = 0.577_215_664_901_532_9;
        let asymptotic = n.ln() + euler_gamma + 0.5 / n - 1.0 / (12.0 * n * n);
        assert!((harmonic(100_000, 1.0) - asymptotic).abs() < 1e-12);
        // H(n, 2) = π²/6 - 1/n + 1/(2n²) - ...
        let asymptotic = core::f64::consts::PI.powi(2) / 6.0 - 1.0 / n + 0.5 / (n * n);
        assert!((harmonic(100_000, 2.0) - asymptotic).abs() < 1e-12);
        let z = Zipf::new(100, 1.5).unwrap();
        let total: f64 = (0..100).map(|i| z.pmf(i)).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(z.pmf(100), 0.0);
        assert!((Zipf::new(50, 0.0).unwrap().pmf(7) - 0.02).abs() < 1e-15);
    }

    #[test]
    fn accessors_and_iterator() {
        let z = Zipf::new(10, 0.5).unwrap();
        assert_eq!((z.n(), z.s()), (10, 0.5));
        let d = Distribution::from(z);
        assert_eq!(d, Distribution::Zipf(z));
        assert_eq!(Distribution::from(Uniform::new(4).unwrap()).n(), 4);
        let ks = KeyStream::new(d, 1);
        assert_eq!(ks.distribution(), &d);
        assert_eq!(ks.size_hint(), (usize::MAX, None));
        assert_eq!(ks.clone().take(5).count(), 5);
        // A debug string exists and does not expose nothing useful only.
        assert!(format!("{ks:?}").contains("KeyStream"));
    }
}
