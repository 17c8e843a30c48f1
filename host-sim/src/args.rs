//! The scenario flags shared by `host-sim scenario` and `host-sim hil` (in
//! their own module so that `cli` and `hil` both use them without importing
//! each other).

use clap::Args;

use crate::error::UsageError;
use crate::scenario::{ChangeArg, Scenario, ScenarioConfig};
use crate::sim::engine::{MAX_LATENCY_US, MAX_REQUESTS_PER_RUN};
use crate::sim::strategy::{SIM_MAX_SERVERS, SIM_RING_POINTS};
use crate::sim::{Arrival, IdDistribution, MAX_CACHE_CAPACITY, StrategyKind};

/// The settings of the scenarios (everything but where and how output goes),
/// shared by `host-sim scenario` and `host-sim hil`. Defaults are the
/// specification's.
#[derive(Debug, Args)]
pub struct ScenarioFlags {
    /// Seed of every random stream: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Requests per second arriving at the balancer, in (0, 100000000]; rate x
    /// duration is at most 100000000 requests per run.
    #[arg(long, default_value_t = 500.0, value_parser = rate, help_heading = "Workload")]
    pub rate: f64,
    /// Arrival process.
    #[arg(long, value_enum, default_value_t = Arrival::Poisson, help_heading = "Workload")]
    pub arrival: Arrival,
    /// Number of customers (ids 0..N; the cache key), at least 1.
    #[arg(
        long,
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Workload"
    )]
    pub customers: u64,
    /// Simulated time, seconds (rate x duration at most 100000000 requests).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60.0,
        help_heading = "Workload"
    )]
    pub duration: f64,
    /// Customer id distribution of scenarios A and B (D runs both).
    #[arg(long, value_enum, default_value_t = IdDistribution::Uniform, help_heading = "Workload")]
    pub distribution: IdDistribution,
    /// Zipf exponent s (id i has weight (i + 1)^-s).
    #[arg(
        long,
        value_name = "S",
        default_value_t = 1.5,
        help_heading = "Workload"
    )]
    pub zipf_s: f64,

    /// Servers at the start, 1..=64 (scenario B's added one included).
    #[arg(
        long,
        default_value_t = 5,
        value_parser = servers(),
        help_heading = "Fleet and servers"
    )]
    pub servers: usize,
    /// Ring virtual nodes per server, 1..=32768 (vnodes x servers at most 32768).
    #[arg(
        long,
        default_value_t = 100,
        value_parser = vnodes(),
        help_heading = "Fleet and servers"
    )]
    pub vnodes: u32,
    /// Cache entries per server, 1..=65536 (scenarios A and D; B uses
    /// --b-cache-capacity).
    #[arg(
        long,
        value_name = "ENTRIES",
        default_value_t = 100,
        value_parser = capacity(),
        help_heading = "Fleet and servers"
    )]
    pub cache_capacity: usize,
    /// Cache TTL from write, seconds, hits do not extend it (A and D; B uses --b-ttl).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        help_heading = "Fleet and servers"
    )]
    pub ttl: f64,
    /// Processing latency of each request before the cache read, ms. The three
    /// latencies are each in [0, 2147483.647] ms, and so is their sum (2^31 - 1 µs:
    /// the caches' clock).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1.0,
        value_parser = latency_ms,
        help_heading = "Fleet and servers"
    )]
    pub processing_ms: f64,
    /// Cache read latency, ms (at most 2147483.647 with the other two).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0.1,
        value_parser = latency_ms,
        help_heading = "Fleet and servers"
    )]
    pub cache_read_ms: f64,
    /// Datastore read latency on a cache miss, ms (at most 2147483.647 with the
    /// other two).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5.0,
        value_parser = latency_ms,
        help_heading = "Fleet and servers"
    )]
    pub datastore_ms: f64,
    /// Metrics window, seconds: windows x servers at most 4194304.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1.0,
        help_heading = "Fleet and servers"
    )]
    pub window: f64,

    /// Strategies compared in scenario A (comma-separated).
    #[arg(
        long,
        value_parser = crate::sim::strategy::strategy_parser(),
        value_delimiter = ',',
        default_value = "ring,round_robin",
        help_heading = "Scenario A"
    )]
    pub a_strategies: Vec<StrategyKind>,
    /// Cache capacities of scenario A's sweep (comma-separated, each 1..=65536,
    /// at most 64).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = capacity(),
        default_value = "50,100,150,200,250,300,400",
        help_heading = "Scenario A"
    )]
    pub sweep_capacities: Vec<usize>,

    /// Strategies compared in scenario B (comma-separated).
    #[arg(
        long,
        value_parser = crate::sim::strategy::strategy_parser(),
        value_delimiter = ',',
        default_value = "ring,modulo",
        help_heading = "Scenario B"
    )]
    pub b_strategies: Vec<StrategyKind>,
    /// Fleet change: add server-{servers} or remove server-{servers - 1}.
    #[arg(long, value_enum, default_value_t = ChangeArg::Add, help_heading = "Scenario B")]
    pub change: ChangeArg,
    /// Time of the fleet change, seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        help_heading = "Scenario B"
    )]
    pub change_at: f64,
    /// The steady state before the change is measured over this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 20.0,
        help_heading = "Scenario B"
    )]
    pub baseline: f64,
    /// Recovered = hit rate at least this fraction of the pre-change steady state ...
    #[arg(
        long,
        value_name = "FRACTION",
        default_value_t = 0.95,
        help_heading = "Scenario B"
    )]
    pub recovery_fraction: f64,
    /// ... over every span of this many windows from then on (at least 1).
    #[arg(
        long,
        value_name = "WINDOWS",
        default_value_t = 5,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "Scenario B"
    )]
    pub recovery_windows: usize,
    /// Cache entries per server in scenario B: 250 x 5 servers hold all 1000
    /// customers, so after warm-up the only misses are the change's.
    #[arg(
        long,
        value_name = "ENTRIES",
        default_value_t = 250,
        value_parser = capacity(),
        help_heading = "Scenario B"
    )]
    pub b_cache_capacity: usize,
    /// Cache TTL in scenario B, seconds: longer than the run, so no expiry wave
    /// coincides with the change.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300.0,
        help_heading = "Scenario B"
    )]
    pub b_ttl: f64,

    /// Vnode counts of scenario C (comma-separated, vnodes x backends at most
    /// 32768, at most 64 counts).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = vnodes(),
        default_value = "1,2,5,10,20,50,100,200,500",
        help_heading = "Scenario C"
    )]
    pub c_vnodes: Vec<u32>,
    /// Keys per trial, 1..=10000000.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=crate::scenario::c::MAX_C_KEYS),
        help_heading = "Scenario C"
    )]
    pub c_keys: u64,
    /// Backends, 1..=64.
    #[arg(long, default_value_t = 5, value_parser = servers(), help_heading = "Scenario C")]
    pub c_backends: usize,
    /// Trials averaged (each with its own keys and backend names), 1..=1000.
    #[arg(
        long,
        default_value_t = 10,
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(crate::scenario::c::MAX_C_TRIALS)),
        help_heading = "Scenario C"
    )]
    pub c_trials: u32,
    /// Vnode counts shown in the distribution bar chart (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = vnodes(),
        default_value = "1,10,100",
        help_heading = "Scenario C"
    )]
    pub c_bar_vnodes: Vec<u32>,
}

/// `--servers`, `--c-backends`: 1..=64.
pub(crate) fn servers() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=SIM_MAX_SERVERS as u64)
}

/// Vnode counts: 1..=32768 (the simulator ring's points).
pub(crate) fn vnodes() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=SIM_RING_POINTS as i64)
}

/// Cache capacities: 1..=65536.
pub(crate) fn capacity() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CACHE_CAPACITY as u64)
}

/// `--rate`: a finite number in (0, 10^8].
pub(crate) fn rate(s: &str) -> Result<f64, String> {
    let max = MAX_REQUESTS_PER_RUN as f64;
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= max => Ok(v),
        _ => Err(format!("expected requests per second in (0, {max}]")),
    }
}

/// Latency flags: ms in [0, (2^31 - 1) / 1000].
pub(crate) fn latency_ms(s: &str) -> Result<f64, String> {
    let max = MAX_LATENCY_US as f64 / 1e3;
    match s.parse::<f64>() {
        Ok(v) if (0.0..=max).contains(&v) => Ok(v),
        _ => Err(format!("expected milliseconds in [0, {max:.3}]")),
    }
}

pub(crate) fn seconds(name: &str, v: f64, allow_zero: bool) -> Result<u64, UsageError> {
    let us = v * 1e6;
    if !v.is_finite() || v < 0.0 || (!allow_zero && us.round() < 1.0) || us > 1.8e19 {
        return Err(UsageError(format!(
            "--{name} must be a {} number of seconds, got {v}",
            if allow_zero {
                "non-negative"
            } else {
                "positive"
            }
        )));
    }
    Ok(us.round() as u64)
}

impl ScenarioFlags {
    /// The scenario configuration these flags describe, validated for `which`.
    ///
    /// # Errors
    /// [`UsageError`] naming the bad flag.
    pub fn config(&self, which: &[Scenario]) -> Result<ScenarioConfig, UsageError> {
        let mut c = ScenarioConfig {
            seed: self.seed,
            ..ScenarioConfig::default()
        };
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(UsageError(format!(
                "--rate must be positive, got {}",
                self.rate
            )));
        }
        if !(self.zipf_s.is_finite() && self.zipf_s >= 0.0) {
            return Err(UsageError(format!(
                "--zipf-s must be >= 0, got {}",
                self.zipf_s
            )));
        }
        if !(self.recovery_fraction > 0.0 && self.recovery_fraction <= 1.0) {
            return Err(UsageError("--recovery-fraction must be in (0, 1]".into()));
        }
        if self.recovery_windows == 0 {
            return Err(UsageError("--recovery-windows must be at least 1".into()));
        }
        c.workload.rate_per_s = self.rate;
        c.workload.arrival = self.arrival;
        c.workload.customers = self.customers;
        c.workload.duration_us = seconds("duration", self.duration, false)?;
        c.workload.distribution = self.distribution;
        c.workload.zipf_s = self.zipf_s;
        c.servers = self.servers;
        c.vnodes = self.vnodes;
        c.cache_capacity = self.cache_capacity;
        c.ttl_us = seconds("ttl", self.ttl, false)?;
        c.latency.processing_us = seconds("processing-ms", self.processing_ms / 1e3, true)?;
        c.latency.cache_read_us = seconds("cache-read-ms", self.cache_read_ms / 1e3, true)?;
        c.latency.datastore_us = seconds("datastore-ms", self.datastore_ms / 1e3, true)?;
        c.window_us = seconds("window", self.window, false)?;
        c.a.strategies = self.a_strategies.clone();
        c.a.sweep_capacities = self.sweep_capacities.clone();
        c.b.strategies = self.b_strategies.clone();
        c.b.change = self.change;
        c.b.change_at_us = seconds("change-at", self.change_at, true)?;
        c.b.baseline_us = seconds("baseline", self.baseline, false)?;
        c.b.recovery_fraction = self.recovery_fraction;
        c.b.recovery_windows = self.recovery_windows;
        c.b.cache_capacity = self.b_cache_capacity;
        c.b.ttl_us = seconds("b-ttl", self.b_ttl, false)?;
        c.c.vnodes = self.c_vnodes.clone();
        c.c.keys = self.c_keys;
        c.c.backends = self.c_backends;
        c.c.trials = self.c_trials;
        c.c.bar_vnodes = self.c_bar_vnodes.clone();
        c.validate(which)
            .map_err(|e| UsageError(format!("{e:#}")))?;
        Ok(c)
    }
}
