//! What a run measures: per-window, per-server counters, latency histogram and
//! per-server totals. Memory grows with the number of windows and servers, never
//! with the number of requests.

use serde::Serialize;

use crate::util::ratio;

/// Counters of one server in one time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    /// Requests routed to the server (counted at arrival).
    pub requests: u32,
    /// Cache hits (counted at the cache read).
    pub hits: u32,
    /// Cache misses, each one datastore read (counted at the cache read).
    pub misses: u32,
}

impl WindowCounts {
    /// Cache lookups: `hits + misses`.
    #[must_use]
    pub fn lookups(&self) -> u32 {
        self.hits + self.misses
    }

    /// `hits / lookups`, 0 without lookups.
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        ratio(f64::from(self.hits), f64::from(self.lookups()))
    }

    fn add(&mut self, o: &WindowCounts) {
        self.requests += o.requests;
        self.hits += o.hits;
        self.misses += o.misses;
    }
}

/// Counters per fixed-length window of virtual time and per server.
///
/// Window `w` covers `[w x window_us, (w + 1) x window_us)`; events after the
/// last window (requests still queued when arrivals stop) count in the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSeries {
    window_us: u64,
    windows: usize,
    servers: usize,
    cells: Vec<WindowCounts>,
}

impl TimeSeries {
    /// Empty counters for `duration_us` in windows of `window_us`, for `servers`.
    #[must_use]
    pub fn new(duration_us: u64, window_us: u64, servers: usize) -> Self {
        let window_us = window_us.max(1);
        let windows = duration_us.div_ceil(window_us).max(1) as usize;
        Self {
            window_us,
            windows,
            servers,
            cells: vec![WindowCounts::default(); windows * servers],
        }
    }

    /// Window length in microseconds.
    #[must_use]
    pub fn window_us(&self) -> u64 {
        self.window_us
    }

    /// Number of windows.
    #[must_use]
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// Number of server columns (every server that ever existed).
    #[must_use]
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Start of window `w`, in seconds.
    #[must_use]
    pub fn start_s(&self, w: usize) -> f64 {
        (w as u64 * self.window_us) as f64 / 1e6
    }

    /// The window holding time `t_us` (the last one for later times).
    #[must_use]
    pub fn window_of(&self, t_us: u64) -> usize {
        ((t_us / self.window_us) as usize).min(self.windows - 1)
    }

    #[inline]
    pub(crate) fn cell_mut(&mut self, t_us: u64, server: usize) -> &mut WindowCounts {
        let i = self.window_of(t_us) * self.servers + server;
        &mut self.cells[i]
    }

    /// Counters of `server` in window `w`.
    #[must_use]
    pub fn get(&self, w: usize, server: usize) -> WindowCounts {
        self.cells
            .get(w * self.servers + server)
            .copied()
            .unwrap_or_default()
    }

    /// Counters of all servers in window `w`.
    #[must_use]
    pub fn total(&self, w: usize) -> WindowCounts {
        let mut sum = WindowCounts::default();
        for s in 0..self.servers {
            sum.add(&self.get(w, s));
        }
        sum
    }

    /// Counters of all servers over windows `from..to`.
    #[must_use]
    pub fn total_range(&self, from: usize, to: usize) -> WindowCounts {
        let mut sum = WindowCounts::default();
        for w in from..to.min(self.windows) {
            sum.add(&self.total(w));
        }
        sum
    }
}

/// A log-linear latency histogram: exact below 64 µs, then 64 buckets per
/// power of two (relative error below 1.6%).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    sum_us: u128,
    max_us: u64,
}

const SUB: u64 = 64;

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: vec![0; (SUB * 59) as usize],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - u64::from(v.leading_zeros()); // >= 6
        let sub = (v >> (e - 6)) - SUB;
        (SUB + (e - 6) * SUB + sub) as usize
    }

    /// Midpoint of bucket `i`, in µs.
    fn value(i: usize) -> f64 {
        let i = i as u64;
        if i < SUB {
            return i as f64;
        }
        let e = (i - SUB) / SUB + 6;
        let sub = (i - SUB) % SUB;
        let lo = (SUB + sub) << (e - 6);
        let width = 1u64 << (e - 6);
        lo as f64 + (width - 1) as f64 / 2.0
    }

    pub(crate) fn record(&mut self, v_us: u64) {
        let i = Self::index(v_us).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_us += u128::from(v_us);
        self.max_us = self.max_us.max(v_us);
    }

    fn quantile_us(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let target = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Self::value(i).min(self.max_us as f64);
            }
        }
        self.max_us as f64
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        LatencySummary {
            mean_ms: ratio(self.sum_us as f64, self.count as f64) / 1e3,
            p50_ms: self.quantile_us(0.50) / 1e3,
            p99_ms: self.quantile_us(0.99) / 1e3,
            max_ms: self.max_us as f64 / 1e3,
        }
    }
}

/// Response time (arrival to completion) of the requests of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Median (histogram bucket midpoint, within 1.6%).
    pub p50_ms: f64,
    /// 99th percentile (histogram bucket midpoint, within 1.6%).
    pub p99_ms: f64,
    /// Maximum, exact.
    pub max_ms: f64,
}

/// Totals of one server over a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSummary {
    /// `server-{i}`.
    pub name: String,
    /// Requests routed to it.
    pub requests: u64,
    /// Cache hits.
    pub hits: u64,
    /// Cache misses = datastore reads.
    pub misses: u64,
    /// Distinct customer ids routed to it (`None` above 2^24 customers, where
    /// they are not tracked).
    pub distinct_keys: Option<u64>,
    /// LRU evictions of its cache (chring's counter).
    pub evictions: u64,
    /// TTL expirations of its cache (chring's counter).
    pub expirations: u64,
    /// Longest queue seen (requests waiting, not counting the one in service).
    pub max_queue: usize,
    /// Requests refused because its queue was full (see
    /// [`MAX_QUEUE`](crate::sim::engine::MAX_QUEUE)).
    pub rejected: u64,
    /// When it joined, if after the start (µs).
    pub added_at_us: Option<u64>,
    /// When it left, if it did (µs); it drains its queue afterwards.
    pub removed_at_us: Option<u64>,
}

impl ServerSummary {
    /// `hits / (hits + misses)`, 0 without lookups.
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits as f64, (self.hits + self.misses) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            1100,
            6100,
            123_456,
            1 << 40,
        ] {
            let i = LatencyHistogram::index(v);
            let mid = LatencyHistogram::value(i);
            assert!(
                (mid - v as f64).abs() <= v as f64 / 64.0 + 0.5,
                "{v} -> {mid}"
            );
        }
        let mut h = LatencyHistogram::new();
        for v in 1..=100 {
            h.record(v * 10);
        }
        let s = h.summary();
        assert!((s.mean_ms - 0.505).abs() < 1e-9);
        assert!((s.p99_ms - 0.99).abs() < 0.02, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 1.0);
    }
}
