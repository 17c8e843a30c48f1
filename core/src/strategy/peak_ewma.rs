//! Peak EWMA response time, as Finagle and Linkerd (tower) balance with it:
//! two random choices, the one with the lower `latency x (in flight + 1)`.

use core::num::NonZeroU64;

use crate::fleet::{AddError, Backend, BackendId, Fleet, LoadError, UnknownBackend};
use crate::strategy::seeded::{SplitMix64, two_up};
use crate::strategy::{Outcome, load_aware_fleet_methods, unkeyed_strategy};

/// The default decay time constant τ: 10 s, as Finagle and Linkerd.
pub const DEFAULT_DECAY_US: u64 = 10_000_000;
/// The default estimate of a backend without observations: 30 ms, Linkerd's
/// default RTT.
pub const DEFAULT_RTT_US: u32 = 30_000;

/// Fixed point: estimates are microseconds x 2^16.
const EST_SHIFT: u32 = 16;

/// Peak-sensitive EWMA of each backend's latency, times its requests in flight,
/// per unit of weight; two random choices, the cheaper wins (Finagle's
/// `PeakEwma` and Linkerd's / tower's `p2c` over `PeakEwma`).
///
/// **Estimate.** Per backend an estimate `e` (µs, fixed point with 16 fraction
/// bits) and the clock of its last update `t_b`. A finished request of latency
/// `x` at time `t` ([`Outcome::at_us`]) updates it:
///
/// - `x >= e`: `e = x` (peak: a slower observation counts at once);
/// - `x < e`: `e = x + (e - x) x d(t - t_b)` (decays toward faster ones),
///
/// with `d(Δ) = e^(-Δ/τ)`, τ the decay constant (default 10 s), computed in
/// fixed point (see `DESIGN.md`: `2^(-Δ log2(e)/τ)`, integer part a shift, the
/// fraction from a 64-entry table and a cubic, absolute error below 2 x 10^-9),
/// then `t_b = t`.
/// A request that ran longer than τ ago thus barely counts: after τ of faster
/// answers the estimate has moved 63% of the way.
///
/// **Cost**, read at pick time: `c = max(1, e x d(now - t_b)) x (in_flight + 1)
/// / weight`, so an idle backend's estimate decays toward 0 with the same τ and
/// a backend that was slow once is tried again (as tower decays at read time).
/// `now` is the latest clock the strategy has seen: the last `at_us` reported
/// by [`finish`](Self::finish), or [`set_now`](Self::set_now). The floor of
/// one unit keeps `in_flight` meaningful for a backend with a zero estimate.
/// Costs are compared exactly (cross-multiplied in `u128`).
///
/// **New backends** start at `default_rtt_us` (default 30 ms) stamped `now`,
/// so a new backend is neither flooded (it is not assumed free) nor starved.
///
/// **Clock.** Any `at_us` is accepted: a time before `t_b` (a clock that went
/// backwards) counts as no time elapsed (no decay, the peak rule still
/// applies) and restamps the backend; `u64` wrap-around is handled by wrapping
/// differences (a jump of less than 2^63 µs forward is forward).
///
/// **Choice.** Two distinct up backends drawn from `key_hash XOR` a seeded
/// SplitMix64 stream (deterministic for a given seed and call sequence; the key
/// only adds entropy, so the strategy is not key-affine): the lower cost wins,
/// the first on ties. [`pick_two`](Self::pick_two) also returns the other one,
/// the runner-up, for a hedged request.
///
/// Through the traits ([`LoadAware::finish`](crate::LoadAware::finish)), the same call as the inherent
/// [`finish`](Self::finish).
///
/// Cost: *O*(1) per pick when every backend is up (*O*(n) to find the up ones
/// otherwise), two exponentials per pick, one per `finish`. State: 16 bytes per
/// backend on top of the fleet table.
///
/// ```
/// use chring::{BackendId, Outcome, PeakEwma};
///
/// let mut lb: PeakEwma<4> = PeakEwma::new().with_seed(7);
/// lb.add(BackendId(0), b"fast", 1)?;
/// lb.add(BackendId(1), b"slow", 1)?;
/// for (at, id, lat) in [(1_000, 0, 2_000), (2_000, 1, 900_000)] {
///     lb.start(BackendId(id))?;
///     lb.finish(BackendId(id), Outcome { latency_us: lat, ok: true, at_us: at })?;
/// }
/// // Both are always the two choices here, and the fast one is cheaper.
/// assert_eq!(lb.pick_two(42), Some((BackendId(0), Some(BackendId(1)))));
/// # Ok::<(), chring::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PeakEwma<const B: usize> {
    fleet: Fleet<B>,
    /// Estimates, by slot.
    est: heapless::Vec<Estimate, B>,
    /// The latest clock seen.
    now_us: u64,
    tau_us: u64,
    default_rtt_us: u32,
    rng: SplitMix64,
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// µs x 2^16.
    value: u64,
    /// The clock of the last update.
    stamp_us: u64,
}

impl<const B: usize> Default for PeakEwma<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// `log2(e)` with 30 fraction bits.
const LOG2E_Q30: u64 = 1_549_082_005;
/// `log2(e)` with 32 fraction bits.
const LOG2E_Q32: u128 = 6_196_328_019;
/// `2^(-i/64)` with 32 fraction bits, `i = 0..64` (the first is 1.0 less one
/// unit, so a product with a Q32 value of at most 1.0 fits a `u64`).
const EXP2_NEG_64THS: [u32; 64] = [
    4_294_967_295,
    4_248_701_965,
    4_202_935_003,
    4_157_661_043,
    4_112_874_773,
    4_068_570_940,
    4_024_744_348,
    3_981_389_855,
    3_938_502_376,
    3_896_076_880,
    3_854_108_391,
    3_812_591_987,
    3_771_522_796,
    3_730_896_002,
    3_690_706_840,
    3_650_950_594,
    3_611_622_603,
    3_572_718_252,
    3_534_232_978,
    3_496_162_267,
    3_458_501_653,
    3_421_246_719,
    3_384_393_094,
    3_347_936_457,
    3_311_872_529,
    3_276_197_082,
    3_240_905_930,
    3_205_994_934,
    3_171_459_999,
    3_137_297_074,
    3_103_502_151,
    3_070_071_267,
    3_037_000_500,
    3_004_285_971,
    2_971_923_842,
    2_939_910_317,
    2_908_241_642,
    2_876_914_102,
    2_845_924_021,
    2_815_267_765,
    2_784_941_738,
    2_754_942_382,
    2_725_266_179,
    2_695_909_648,
    2_666_869_345,
    2_638_141_863,
    2_609_723_834,
    2_581_611_923,
    2_553_802_834,
    2_526_293_303,
    2_499_080_105,
    2_472_160_047,
    2_445_529_972,
    2_419_186_755,
    2_393_127_307,
    2_367_348_571,
    2_341_847_524,
    2_316_621_173,
    2_291_666_561,
    2_266_980_759,
    2_242_560_872,
    2_218_404_036,
    2_194_507_417,
    2_170_868_212,
];
/// `ln 2` with 32 fraction bits.
const LN2_Q32: u64 = 2_977_044_472;
/// 1.0 with 32 fraction bits.
const ONE_Q32: u64 = 1 << 32;

/// `e^(-dt/tau)` with 32 fraction bits (`1 << 32` is 1.0), in integers only:
/// `2^-y` with `y = dt x log2(e) / tau` (32 fraction bits). The integer part of
/// `y` is a shift; of the fraction, the top 6 bits index a table of
/// `2^(-i/64)` and the rest (`r < 1/64`) is `e^(-a)`, `a = r ln 2 < 0.011`, by
/// its Taylor polynomial to the cube (the next term is below `6 x 10^-10`).
/// Branch-free apart from the range checks. Absolute error below `2 x 10^-9`
/// (the output's last bits), relative error below `10^-5` while the factor is
/// at least `10^-3`; exactly 1.0 at `dt = 0`, exactly 0 once `y >= 32`.
pub(crate) fn decay_q32(dt_us: u64, tau_us: u64) -> u64 {
    if dt_us == 0 {
        return ONE_Q32;
    }
    if tau_us == 0 {
        return 0;
    }
    // y with 32 fraction bits; u64 arithmetic while dt < 2^33 µs (2.4 h).
    let y = if dt_us < (1 << 33) {
        u128::from(dt_us * LOG2E_Q30 / tau_us) << 2
    } else {
        u128::from(dt_us) * LOG2E_Q32 / u128::from(tau_us)
    };
    let int = y >> 32;
    if int >= 32 {
        return 0;
    }
    let frac = (y as u64) & 0xFFFF_FFFF;
    let coarse = EXP2_NEG_64THS
        .get((frac >> 26) as usize)
        .copied()
        .unwrap_or(0);
    let a = ((frac & ((1 << 26) - 1)) * LN2_Q32) >> 32;
    let a2 = (a * a) >> 32;
    let a3 = (a2 * a) >> 32;
    // 1 - a + a^2/2 - a^3/6 (Q32; a < 2^26, so no term underflows 0).
    let fine = ONE_Q32 - a + a2 / 2 - a3 / 6;
    ((u64::from(coarse) * fine) >> 32) >> int
}

/// `value x factor`, factor with 32 fraction bits.
fn scale(value: u64, factor_q32: u64) -> u64 {
    ((u128::from(value) * u128::from(factor_q32)) >> 32) as u64
}

/// The time from `then` to `now`, 0 if `now` is earlier (wrapping: a
/// difference of 2^63 or more is "earlier").
fn elapsed(now: u64, then: u64) -> u64 {
    let d = now.wrapping_sub(then);
    if d > i64::MAX as u64 { 0 } else { d }
}

impl<const B: usize> PeakEwma<B> {
    /// An empty fleet with τ = [`DEFAULT_DECAY_US`] (10 s), new backends at
    /// [`DEFAULT_RTT_US`] (30 ms), seed 0.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            est: heapless::Vec::new(),
            now_us: 0,
            tau_us: DEFAULT_DECAY_US,
            default_rtt_us: DEFAULT_RTT_US,
            rng: SplitMix64::new(0),
        }
    }

    /// An empty fleet with decay constant `tau_us` and initial estimate
    /// `default_rtt_us` (0 is allowed: new backends then look free and are
    /// ordered by their requests in flight until they answer, as Finagle's
    /// zero start).
    #[must_use]
    pub const fn with_decay(tau_us: NonZeroU64, default_rtt_us: u32) -> Self {
        let mut s = Self::new();
        s.tau_us = tau_us.get();
        s.default_rtt_us = default_rtt_us;
        s
    }

    /// The same strategy with its random stream seeded by `seed` (from a TRNG
    /// on a device, from `--seed` in a simulation).
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.rng = SplitMix64::new(seed);
        self
    }

    /// The decay time constant τ, in µs.
    #[must_use]
    pub const fn decay_us(&self) -> u64 {
        self.tau_us
    }

    /// Moves the strategy's clock to `now_us` (the caller's clock, as
    /// [`Outcome::at_us`]), so idle backends' estimates decay before the next
    /// pick even when no request finished. Any value is accepted. *O*(1).
    pub fn set_now(&mut self, now_us: u64) {
        self.now_us = now_us;
    }

    /// Adds a backend (up, nothing in flight, estimate `default_rtt_us` as of
    /// now). *O*(n) (duplicate-name check).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let fresh = Estimate {
            value: u64::from(self.default_rtt_us) << EST_SHIFT,
            stamp_us: self.now_us,
        };
        self.fleet.add_with(id, name, weight, &mut self.est, fresh)
    }

    /// Removes a backend, with its estimate and whatever it had in flight.
    /// *O*(n).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove_with(id, &mut self.est).map(|_| ())
    }

    load_aware_fleet_methods!("its estimate and in-flight count");

    /// A request on `id` finished: one fewer in flight, and its latency folded
    /// into the estimate at `outcome.at_us` (failed requests too: a backend
    /// that fails slowly is slow). The strategy's clock moves to
    /// `outcome.at_us`. *O*(1) expected.
    ///
    /// # Errors
    /// [`LoadError::Unknown`] if no backend has this id, [`LoadError::NotStarted`]
    /// if it has nothing in flight; nothing is recorded then.
    pub fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.finish(id)?;
        self.now_us = outcome.at_us;
        let tau = self.tau_us;
        if let Some(e) = self.est.get_mut(slot) {
            let x = u64::from(outcome.latency_us) << EST_SHIFT;
            if x >= e.value {
                e.value = x;
            } else {
                let d = decay_q32(elapsed(outcome.at_us, e.stamp_us), tau);
                e.value = x + scale(e.value - x, d);
            }
            e.stamp_us = outcome.at_us;
        }
        Ok(())
    }

    /// The latency estimate of `id` at the strategy's clock, decayed since its
    /// last update, in whole µs. `None` for an unknown id. *O*(1) expected.
    #[must_use]
    pub fn estimate_us(&self, id: BackendId) -> Option<u32> {
        let slot = self.fleet.slot(id)?;
        let v = self.decayed(slot);
        Some(u32::try_from(v >> EST_SHIFT).unwrap_or(u32::MAX))
    }

    /// The estimate of `slot` at `now`, at least 1.
    fn decayed(&self, slot: usize) -> u64 {
        self.est.get(slot).map_or(1, |e| {
            scale(
                e.value,
                decay_q32(elapsed(self.now_us, e.stamp_us), self.tau_us),
            )
            .max(1)
        })
    }

    /// The up backend of lower cost among two random ones. `None` when no
    /// backend is up. *O*(1) with every backend up, *O*(n) otherwise.
    pub fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.pick_two(key_hash).map(|(a, _)| a)
    }

    /// [`pick`](Self::pick) and the other of the two choices (the runner-up,
    /// for a hedged request); the second is `None` only when a single backend
    /// is up. Costs as [`pick`](Self::pick).
    pub fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        let r = self.rng.next_u64() ^ key_hash;
        let (a, b) = two_up(&self.fleet, r)?;
        let ba = self.fleet.get(a)?;
        let Some(b) = b else {
            return Some((ba.id, None));
        };
        let bb = self.fleet.get(b)?;
        // cost_a <= cost_b: e_a (l_a + 1) w_b <= e_b (l_b + 1) w_a, exactly.
        // e < 2^48, l + 1 <= 2^32, w < 2^16: each side < 2^96.
        let side = |e: u64, mine: &Backend, other: &Backend| {
            u128::from(e) * (u128::from(mine.load) + 1) * u128::from(other.weight)
        };
        let ca = side(self.decayed(a), ba, bb);
        let cb = side(self.decayed(b), bb, ba);
        Some(if ca <= cb {
            (ba.id, Some(bb.id))
        } else {
            (bb.id, Some(ba.id))
        })
    }
}

unkeyed_strategy!(PeakEwma, "peak_ewma");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    const TAU: u64 = DEFAULT_DECAY_US;

    fn at(latency_us: u32, at_us: u64) -> Outcome {
        Outcome {
            latency_us,
            ok: true,
            at_us,
        }
    }

    fn two() -> PeakEwma<4> {
        let mut s = PeakEwma::new().with_seed(11);
        s.add(BackendId(0), b"a", 1).unwrap();
        s.add(BackendId(1), b"b", 1).unwrap();
        s
    }

    fn observe(s: &mut PeakEwma<4>, id: u16, o: Outcome) {
        s.start(BackendId(id)).unwrap();
        s.finish(BackendId(id), o).unwrap();
    }

    #[test]
    fn decay_matches_exp_closely() {
        assert_eq!(decay_q32(0, TAU), 1 << 32);
        assert_eq!(decay_q32(u64::MAX, TAU), 0);
        assert_eq!(decay_q32(1, 0), 0);
        let mut worst = 0.0f64;
        for tau in [1u64, 1000, TAU, 1 << 40] {
            for i in 0..2000u64 {
                // From tiny fractions of tau up to 30 tau, and past 2^33 µs.
                let dt = (tau as f64 * (i as f64 / 2000.0 * 30.0)) as u64 + i;
                let want = libm::exp(-(dt as f64) / tau as f64);
                let got = decay_q32(dt, tau) as f64 / 4_294_967_296.0;
                if want > 1e-3 {
                    worst = worst.max((got - want).abs() / want);
                }
                assert!((got - want).abs() < 2e-9 + 1e-5 * want, "dt {dt} tau {tau}");
            }
        }
        assert!(worst < 1e-5, "worst relative error {worst}");
    }

    #[test]
    fn new_backends_start_at_the_default_rtt() {
        let s = two();
        assert_eq!(s.estimate_us(BackendId(0)), Some(DEFAULT_RTT_US));
        assert_eq!(s.estimate_us(BackendId(9)), None);
    }

    #[test]
    fn peaks_count_at_once_and_decay_with_tau() {
        let mut s = two();
        observe(&mut s, 0, at(100_000, 1_000));
        assert_eq!(s.estimate_us(BackendId(0)), Some(100_000));
        // A faster answer one tau later moves the estimate 1 - 1/e of the way.
        observe(&mut s, 0, at(10_000, 1_000 + TAU));
        let want = 10_000.0 + 90_000.0 * (-1.0f64).exp();
        let got = f64::from(s.estimate_us(BackendId(0)).unwrap());
        assert!((got - want).abs() <= 1.0, "{got} vs {want}");
        // A slower one replaces it at once.
        observe(&mut s, 0, at(500_000, 2_000 + TAU));
        assert_eq!(s.estimate_us(BackendId(0)), Some(500_000));
        // Idle: the estimate read later decays toward zero with the same tau.
        s.set_now(2_000 + 2 * TAU);
        let idle = f64::from(s.estimate_us(BackendId(0)).unwrap());
        assert!((idle - 500_000.0 * (-1.0f64).exp()).abs() <= 1.0, "{idle}");
        s.set_now(2_000 + 100 * TAU);
        assert_eq!(s.estimate_us(BackendId(0)), Some(0));
    }

    #[test]
    fn a_clock_going_backwards_means_no_decay() {
        let mut s = two();
        observe(&mut s, 0, at(100_000, 5 * TAU));
        // Earlier than the last update: no time elapsed, the faster answer
        // does not move the estimate, and the backend is restamped.
        observe(&mut s, 0, at(1_000, 1_000));
        assert_eq!(s.estimate_us(BackendId(0)), Some(100_000));
        observe(&mut s, 0, at(1_000, 1_000 + TAU));
        let got = f64::from(s.estimate_us(BackendId(0)).unwrap());
        let want = 1_000.0 + 99_000.0 * (-1.0f64).exp();
        assert!((got - want).abs() <= 1.0, "{got} vs {want}");
        // Wrap-around: u64::MAX - TAU + 1 to 0 is one tau forward.
        let mut w = two();
        observe(&mut w, 1, at(100_000, u64::MAX - TAU + 1));
        observe(&mut w, 1, at(0, 0));
        let got = f64::from(w.estimate_us(BackendId(1)).unwrap());
        assert!((got - 100_000.0 * (-1.0f64).exp()).abs() <= 1.0, "{got}");
    }

    #[test]
    fn cheaper_of_the_two_wins_and_runner_up_is_the_other() {
        let mut s = two();
        observe(&mut s, 0, at(5_000, 10));
        observe(&mut s, 1, at(50_000, 20));
        for k in 0..100 {
            assert_eq!(s.pick_two(k), Some((BackendId(0), Some(BackendId(1)))));
        }
        // Ten requests in flight on the fast one make it dearer (5 ms x 11 >
        // 50 ms x 1).
        for _ in 0..10 {
            s.start(BackendId(0)).unwrap();
        }
        assert_eq!(s.pick(0), Some(BackendId(1)));
        // Weight divides the cost: at weight 12 the fast one wins again. A
        // weight can only be set at add: re-add it with its load gone.
        s.remove(BackendId(0)).unwrap();
        s.add(BackendId(0), b"a", 12).unwrap();
        observe(&mut s, 0, at(5_000, 30));
        for _ in 0..10 {
            s.start(BackendId(0)).unwrap();
        }
        assert_eq!(s.pick(0), Some(BackendId(0)));
    }

    #[test]
    fn a_zero_estimate_still_counts_requests_in_flight() {
        let mut s: PeakEwma<4> = PeakEwma::with_decay(NonZeroU64::new(1_000).unwrap(), 0);
        s.add(BackendId(0), b"a", 1).unwrap();
        s.add(BackendId(1), b"b", 1).unwrap();
        s.start(BackendId(0)).unwrap();
        for k in 0..50 {
            assert_eq!(s.pick(k), Some(BackendId(1)));
        }
    }

    #[test]
    fn failed_finish_records_nothing() {
        let mut s = two();
        assert_eq!(
            s.finish(BackendId(0), at(900_000, 5)),
            Err(LoadError::NotStarted)
        );
        assert_eq!(s.estimate_us(BackendId(0)), Some(DEFAULT_RTT_US));
        // Through the traits: the same call, so a slower answer counts at once.
        let d: &mut dyn Strategy = &mut s;
        assert_eq!(d.name(), "peak_ewma");
        d.start(BackendId(0)).unwrap();
        d.finish(BackendId(0), at(900_000, 5)).unwrap();
        assert_eq!(s.estimate_us(BackendId(0)), Some(900_000));
    }
}
