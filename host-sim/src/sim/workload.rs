//! Request streams: when requests arrive and which customer each is for.
//!
//! A [`RequestStream`] is the simulator's Source, kept apart from the engine so
//! that anything replaying the same traffic (the engine, a hardware-in-the-loop
//! driver) draws exactly the same requests from the same seed.
//!
//! Two independent generators are derived from the stream seed, so changing the
//! arrival process never changes the sequence of customer ids and vice versa:
//!
//! | stream | generator | seed |
//! | --- | --- | --- |
//! | customer ids | [`chring::workload::KeyStream`] (Pcg32) | `chring::mix(seed, IDS_STREAM)` |
//! | arrival times | `rand_pcg::Pcg32` | `chring::mix(seed, ARRIVALS_STREAM)` |
//!
//! Times are integer microseconds of virtual time. Constant arrivals are at
//! `round(k x 10^6 / rate)` for `k = 0, 1, ...` (computed from `k`, so they never
//! drift); Poisson arrivals add exponential gaps `-ln(1 - u) / rate` to a running
//! `f64` clock and truncate it to whole microseconds. `ln` is `libm::log`, so the
//! stream is the same on every target.

use chring::workload::{Distribution, KeyStream, WorkloadError};
use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg32;
use serde::Serialize;

/// Seed tag of the customer-id stream (ASCII `"ids"`).
pub const IDS_STREAM: u64 = 0x0069_6473;
/// Seed tag of the arrival-time stream (ASCII `"arrivals"`).
pub const ARRIVALS_STREAM: u64 = 0x6172_7269_7661_6c73;

/// Microseconds per second.
pub const US_PER_S: f64 = 1e6;

/// How requests are spaced in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exactly `1 / rate` apart.
    Constant,
    /// A Poisson process: independent exponential gaps of mean `1 / rate`.
    Poisson,
}

/// Which customers requests are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IdDistribution {
    /// Every customer equally likely.
    Uniform,
    /// Customer `i` with probability proportional to `(i + 1)^-s`.
    Zipf,
}

/// The Source's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkloadConfig {
    /// Mean arrivals per second of virtual time (> 0).
    pub rate_per_s: f64,
    /// Constant or Poisson arrivals.
    pub arrival: Arrival,
    /// Number of customers: ids are `0..customers` (>= 1).
    pub customers: u64,
    /// Uniform or Zipf ids.
    pub distribution: IdDistribution,
    /// The Zipf exponent `s` (used only with [`IdDistribution::Zipf`]).
    pub zipf_s: f64,
    /// Requests arrive in `[0, duration_us)`.
    pub duration_us: u64,
}

impl WorkloadConfig {
    /// A workload with the scenario defaults (1000 uniform customers, Poisson,
    /// Zipf `s` = 1.5 when selected) at `rate_per_s` for `duration_us`.
    #[must_use]
    pub fn new(rate_per_s: f64, duration_us: u64) -> Self {
        Self {
            rate_per_s,
            arrival: Arrival::Poisson,
            customers: 1000,
            distribution: IdDistribution::Uniform,
            zipf_s: 1.5,
            duration_us,
        }
    }

    /// The chring distribution of customer ids.
    ///
    /// # Errors
    /// [`WorkloadError`] for 0 customers or a bad exponent.
    pub fn id_distribution(&self) -> Result<Distribution, WorkloadError> {
        match self.distribution {
            IdDistribution::Uniform => Distribution::uniform(self.customers),
            IdDistribution::Zipf => Distribution::zipf(self.customers, self.zipf_s),
        }
    }

    /// The expected number of requests, `rate x duration` (for progress bars).
    #[must_use]
    pub fn expected_requests(&self) -> u64 {
        (self.rate_per_s * self.duration_us as f64 / US_PER_S) as u64
    }
}

/// One request from the Source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Request {
    /// Arrival time, in microseconds of virtual time.
    pub at_us: u64,
    /// The customer id, in `0..customers`: also the cache key.
    pub customer: u64,
    /// [`chring::hash_u64`] of the customer id: what the balancer routes on.
    pub key_hash: u64,
}

/// The Source: a finite, seeded stream of [`Request`]s in arrival order, ending at
/// the configured duration. *O*(1) per request, no allocation.
///
/// ```
/// use host_sim::sim::workload::{RequestStream, WorkloadConfig};
///
/// let cfg = WorkloadConfig::new(500.0, 2_000_000); // 500/s for 2 s
/// let a: Vec<_> = RequestStream::new(&cfg, 7)?.collect();
/// let b: Vec<_> = RequestStream::new(&cfg, 7)?.collect();
/// assert_eq!(a, b);
/// assert!(a.windows(2).all(|w| w[0].at_us <= w[1].at_us));
/// # Ok::<(), chring::workload::WorkloadError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestStream {
    ids: KeyStream,
    arrivals: Pcg32,
    arrival: Arrival,
    rate_per_us: f64,
    duration_us: u64,
    /// Constant arrivals: index of the next request.
    k: u64,
    /// Poisson arrivals: the running clock, in microseconds.
    clock_us: f64,
    done: bool,
}

impl RequestStream {
    /// The stream of `cfg` seeded with `seed` (see the [module docs](self) for how
    /// the two generators are derived from it).
    ///
    /// # Errors
    /// [`WorkloadError`] for 0 customers or a bad Zipf exponent.
    pub fn new(cfg: &WorkloadConfig, seed: u64) -> Result<Self, WorkloadError> {
        let dist = cfg.id_distribution()?;
        let rate_ok = cfg.rate_per_s.is_finite() && cfg.rate_per_s > 0.0;
        Ok(Self {
            ids: KeyStream::new(dist, chring::mix(seed, IDS_STREAM)),
            arrivals: Pcg32::seed_from_u64(chring::mix(seed, ARRIVALS_STREAM)),
            arrival: cfg.arrival,
            rate_per_us: cfg.rate_per_s / US_PER_S,
            duration_us: cfg.duration_us,
            k: 0,
            clock_us: 0.0,
            done: !rate_ok,
        })
    }

    fn next_time(&mut self) -> f64 {
        match self.arrival {
            Arrival::Constant => {
                let t = (self.k as f64 / self.rate_per_us).round();
                self.k += 1;
                t
            }
            Arrival::Poisson => {
                // u in [0, 1): the top 53 bits of one draw, as chring's workload does.
                let u = (self.arrivals.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0);
                self.clock_us += -libm::log(1.0 - u) / self.rate_per_us;
                self.clock_us
            }
        }
    }
}

impl Iterator for RequestStream {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.done {
            return None;
        }
        let t = self.next_time();
        if !t.is_finite() || t >= self.duration_us as f64 {
            self.done = true;
            return None;
        }
        let customer = self.ids.next_id();
        Some(Request {
            at_us: t as u64,
            customer,
            key_hash: chring::hash_u64(customer),
        })
    }
}

impl core::iter::FusedIterator for RequestStream {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_count_and_spacing() {
        let mut cfg = WorkloadConfig::new(500.0, 60_000_000);
        cfg.arrival = Arrival::Constant;
        let reqs: Vec<_> = RequestStream::new(&cfg, 1).unwrap().collect();
        assert_eq!(reqs.len(), 30_000);
        assert_eq!(reqs[1].at_us - reqs[0].at_us, 2000);
        assert!(reqs.iter().all(|r| r.customer < 1000));
    }

    #[test]
    fn poisson_rate_is_close() {
        let cfg = WorkloadConfig::new(500.0, 60_000_000);
        let n = RequestStream::new(&cfg, 3).unwrap().count() as f64;
        // 30,000 expected, standard deviation ~173.
        assert!((n - 30_000.0).abs() < 1000.0, "{n}");
    }

    #[test]
    fn arrivals_do_not_change_ids() {
        let mut cfg = WorkloadConfig::new(500.0, 1_000_000);
        let a: Vec<u64> = RequestStream::new(&cfg, 9)
            .unwrap()
            .map(|r| r.customer)
            .collect();
        cfg.arrival = Arrival::Constant;
        let b: Vec<u64> = RequestStream::new(&cfg, 9)
            .unwrap()
            .map(|r| r.customer)
            .collect();
        let n = a.len().min(b.len());
        assert_eq!(a[..n], b[..n]);
    }
}
