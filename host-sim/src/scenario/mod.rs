//! Scenarios A–D of the specification, their configuration and their report.
//!
//! | scenario | compares | main figures |
//! | --- | --- | --- |
//! | [A](a) | ring vs round robin (and a cache-capacity sweep) | hit rate over time, datastore load, keys per server |
//! | [B](b) | ring vs modulo across a fleet change | keys moved, hit-rate drop, datastore spike, recovery time |
//! | [C](c) | ring balance against vnodes (no simulation) | coefficient of variation, max/min keys per backend |
//! | [D](d) | uniform vs Zipf customers on the ring | per-server load, hit rate, datastore reads |
//!
//! Every scenario draws its requests from [`stream_seed`]`(seed, scenario)`, and
//! the strategies it compares see the very same request stream (common random
//! numbers), so their difference is the strategy's alone.

pub mod a;
pub mod b;
pub mod c;
pub mod d;

use serde::Serialize;

use crate::sim::strategy::{SIM_MAX_SERVERS, SIM_RING_POINTS};
use crate::sim::workload::{Arrival, IdDistribution, WorkloadConfig};
use crate::sim::{Latencies, MAX_CACHE_CAPACITY, RequestStream, SimConfig, StrategyKind};

/// Longest list flag (strategies, sweep capacities, vnode counts): each entry
/// is one more run or ring.
pub const MAX_LIST: usize = 64;

/// One scenario of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Ring vs round robin.
    A,
    /// Fleet change: ring vs modulo.
    B,
    /// Vnodes and balance.
    C,
    /// Uniform vs Zipf.
    D,
}

impl Scenario {
    /// All four, in order.
    pub const ALL: [Scenario; 4] = [Scenario::A, Scenario::B, Scenario::C, Scenario::D];

    /// `"a"`, `"b"`, `"c"` or `"d"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::A => "a",
            Scenario::B => "b",
            Scenario::C => "c",
            Scenario::D => "d",
        }
    }
}

/// The seed of a scenario's request stream: `chring::mix(seed, tag)`, with tag
/// the ASCII code of the scenario's letter (`'a'` = 0x61, ...).
#[must_use]
pub fn stream_seed(seed: u64, scenario: Scenario) -> u64 {
    chring::mix(seed, u64::from(scenario.name().as_bytes()[0]))
}

/// Which fleet change scenario B makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ChangeArg {
    /// Add `server-{servers}` (the 6th server by default).
    Add,
    /// Remove the last server, `server-{servers - 1}` (server-4 by default).
    Remove,
}

/// Scenario A's own settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AConfig {
    /// Strategies compared (default ring, round robin).
    #[serde(serialize_with = "crate::sim::strategy::serialize_kinds")]
    pub strategies: Vec<StrategyKind>,
    /// Cache capacities of the sweep (default 50, 100, 150, 200, 250, 300, 400).
    pub sweep_capacities: Vec<usize>,
}

/// Scenario B's own settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BConfig {
    /// Strategies compared (default ring, modulo).
    #[serde(serialize_with = "crate::sim::strategy::serialize_kinds")]
    pub strategies: Vec<StrategyKind>,
    /// Add or remove a server.
    pub change: ChangeArg,
    /// When, in µs (default 30 s).
    pub change_at_us: u64,
    /// The pre-change steady state is measured over `[change - baseline, change)`
    /// (default 20 s).
    pub baseline_us: u64,
    /// Recovered means at least this fraction of the baseline hit rate
    /// (default 0.95).
    pub recovery_fraction: f64,
    /// ... over a moving span of this many windows (default 5).
    pub recovery_windows: usize,
    /// Cache entries per server in scenario B (default 250: the five caches
    /// hold all 1000 customers, so after warm-up the only misses are the ones
    /// the fleet change causes).
    pub cache_capacity: usize,
    /// Cache TTL in scenario B, µs (default 300 s: longer than the run, so no
    /// expiry wave coincides with the change).
    pub ttl_us: u64,
}

/// Scenario C's own settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CConfig {
    /// Vnode counts (default 1, 2, 5, 10, 20, 50, 100, 200, 500).
    pub vnodes: Vec<u32>,
    /// Keys per trial (default 10,000).
    pub keys: u64,
    /// Backends (default 5).
    pub backends: usize,
    /// Trials averaged, each with its own keys and backend names (default 10).
    pub trials: u32,
    /// Vnode counts shown in the distribution bar chart (default 1, 10, 100).
    pub bar_vnodes: Vec<u32>,
}

/// Every setting of every scenario; [`Default`] is the specification's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ScenarioConfig {
    /// The seed every random stream derives from.
    pub seed: u64,
    /// The Source (scenarios A, B; D uses it with both distributions).
    pub workload: WorkloadConfig,
    /// Servers at the start (A, B, D).
    pub servers: usize,
    /// Ring vnodes per server (A, B, D).
    pub vnodes: u32,
    /// Cache entries per server (A, D; B has its own, [`BConfig::cache_capacity`]).
    pub cache_capacity: usize,
    /// Cache TTL from write, µs (A, D; B has [`BConfig::ttl_us`]).
    pub ttl_us: u64,
    /// Service latencies.
    pub latency: Latencies,
    /// Metrics window, µs.
    pub window_us: u64,
    /// Scenario A.
    pub a: AConfig,
    /// Scenario B.
    pub b: BConfig,
    /// Scenario C.
    pub c: CConfig,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            workload: WorkloadConfig {
                rate_per_s: 500.0,
                arrival: Arrival::Poisson,
                customers: 1000,
                distribution: IdDistribution::Uniform,
                zipf_s: 1.5,
                duration_us: 60_000_000,
            },
            servers: 5,
            vnodes: 100,
            cache_capacity: 100,
            ttl_us: 30_000_000,
            latency: Latencies::default(),
            window_us: 1_000_000,
            a: AConfig {
                strategies: vec![StrategyKind::Ring, StrategyKind::RoundRobin],
                sweep_capacities: vec![50, 100, 150, 200, 250, 300, 400],
            },
            b: BConfig {
                strategies: vec![StrategyKind::Ring, StrategyKind::Modulo],
                change: ChangeArg::Add,
                change_at_us: 30_000_000,
                baseline_us: 20_000_000,
                recovery_fraction: 0.95,
                recovery_windows: 5,
                cache_capacity: 250,
                ttl_us: 300_000_000,
            },
            c: CConfig {
                vnodes: vec![1, 2, 5, 10, 20, 50, 100, 200, 500],
                keys: 10_000,
                backends: 5,
                trials: 10,
                bar_vnodes: vec![1, 10, 100],
            },
        }
    }
}

impl ScenarioConfig {
    /// The simulation of `strategy` on this configuration's fleet, cache and
    /// workload, with the request stream of `scenario`.
    #[must_use]
    pub fn sim_config(&self, scenario: Scenario, strategy: StrategyKind) -> SimConfig {
        let mut s = SimConfig::new(self.workload, strategy);
        s.stream_seed = stream_seed(self.seed, scenario);
        s.vnodes = self.vnodes;
        s.servers = self.servers;
        (s.cache_capacity, s.ttl_us) = if scenario == Scenario::B {
            (self.b.cache_capacity, self.b.ttl_us)
        } else {
            (self.cache_capacity, self.ttl_us)
        };
        s.latency = self.latency;
        s.window_us = self.window_us;
        s
    }

    /// The request stream scenario `scenario` replays (D's uniform run; D's
    /// Zipf run uses the same seed with [`IdDistribution::Zipf`]). For drivers
    /// that replay a scenario's traffic elsewhere.
    ///
    /// # Errors
    /// A bad workload (0 customers, bad exponent).
    pub fn request_stream(
        &self,
        scenario: Scenario,
    ) -> Result<RequestStream, chring::workload::WorkloadError> {
        RequestStream::new(&self.workload, stream_seed(self.seed, scenario))
    }

    /// Checks every setting the given scenarios use.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn validate(&self, which: &[Scenario]) -> anyhow::Result<()> {
        use anyhow::ensure;
        let sims = which.iter().any(|s| *s != Scenario::C);
        if sims {
            self.workload
                .id_distribution()
                .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
            ensure!(self.vnodes >= 1, "vnodes must be at least 1");
            // One more server than at the start: scenario B may add one.
            let most = self.servers.saturating_add(1);
            ensure!(
                (self.vnodes as usize).saturating_mul(most) <= SIM_RING_POINTS,
                "{} vnodes x {most} servers exceeds the simulator ring's {SIM_RING_POINTS} points",
                self.vnodes,
            );
        }
        for s in which {
            match s {
                Scenario::A => {
                    ensure!(!self.a.strategies.is_empty(), "scenario A needs a strategy");
                    ensure!(
                        self.a.strategies.len() <= MAX_LIST
                            && self.a.sweep_capacities.len() <= MAX_LIST,
                        "scenario A takes at most {MAX_LIST} strategies and {MAX_LIST} sweep \
                         capacities"
                    );
                    for &k in &self.a.strategies {
                        self.sim_config(Scenario::A, k).validate()?;
                    }
                    for &c in &self.a.sweep_capacities {
                        ensure!(
                            (1..=MAX_CACHE_CAPACITY).contains(&c),
                            "sweep capacity {c} is outside 1..={MAX_CACHE_CAPACITY}"
                        );
                    }
                }
                Scenario::B => {
                    ensure!(!self.b.strategies.is_empty(), "scenario B needs a strategy");
                    ensure!(
                        self.b.strategies.len() <= MAX_LIST,
                        "scenario B takes at most {MAX_LIST} strategies"
                    );
                    ensure!(
                        self.b.change_at_us < self.workload.duration_us,
                        "the change time must be before the end of the run"
                    );
                    match self.b.change {
                        ChangeArg::Add => ensure!(
                            self.servers < SIM_MAX_SERVERS,
                            "scenario B cannot add a server to {SIM_MAX_SERVERS}"
                        ),
                        ChangeArg::Remove => {
                            ensure!(
                                self.servers >= 2,
                                "scenario B cannot remove the only server"
                            );
                        }
                    }
                    for &k in &self.b.strategies {
                        self.sim_config(Scenario::B, k).validate()?;
                    }
                }
                Scenario::C => c::check(self)?,
                Scenario::D => self
                    .sim_config(Scenario::D, StrategyKind::Ring)
                    .validate()?,
            }
        }
        Ok(())
    }

    /// Requests the given scenarios will simulate, for a progress bar.
    #[must_use]
    pub fn expected_requests(&self, which: &[Scenario]) -> u64 {
        let one = self.workload.expected_requests();
        which
            .iter()
            .map(|s| match s {
                Scenario::A => {
                    one * (self.a.strategies.len() * (1 + self.a.sweep_capacities.len())) as u64
                }
                Scenario::B => 2 * one * self.b.strategies.len() as u64,
                Scenario::C => 0,
                Scenario::D => 2 * one,
            })
            .sum()
    }
}

/// Identification of a run for `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    /// The seed.
    pub seed: u64,
    /// Every request simulated by this invocation, every run and sweep point
    /// included (scenario C routes keys but simulates no request).
    pub requests_simulated: u64,
    /// Scenarios run.
    pub scenarios: Vec<Scenario>,
    /// host-sim's version.
    pub version: &'static str,
    /// The full configuration.
    pub config: ScenarioConfig,
}

/// Everything the scenarios measured; serialises to `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seed, request count, configuration.
    pub meta: Meta,
    /// Scenario A, if run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<a::AReport>,
    /// Scenario B, if run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<b::BReport>,
    /// Scenario C, if run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<c::CReport>,
    /// Scenario D, if run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<d::DReport>,
}

/// Runs the given scenarios (each once, in A–D order), calling `progress(n)`
/// with the number of requests simulated since the last call.
///
/// # Errors
/// An invalid configuration, with a message naming the setting.
pub fn run(
    which: &[Scenario],
    cfg: &ScenarioConfig,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Report> {
    let mut requests = 0u64;
    let mut count = |n: u64| {
        requests += n;
        progress(n);
    };
    let mut report = Report {
        meta: Meta {
            seed: cfg.seed,
            requests_simulated: 0,
            scenarios: Vec::new(),
            version: env!("CARGO_PKG_VERSION"),
            config: cfg.clone(),
        },
        a: None,
        b: None,
        c: None,
        d: None,
    };
    let mut order = which.to_vec();
    order.sort();
    order.dedup();
    for s in &order {
        match s {
            Scenario::A => report.a = Some(a::run(cfg, &mut count)?),
            Scenario::B => report.b = Some(b::run(cfg, &mut count)?),
            Scenario::C => report.c = Some(c::run(cfg)?),
            Scenario::D => report.d = Some(d::run(cfg, &mut count)?),
        }
    }
    report.meta.scenarios = order;
    report.meta.requests_simulated = requests;
    Ok(report)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Totals of one run as `results.json` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunTotals {
    /// Requests simulated.
    pub requests: u64,
    /// Aggregate cache hit rate.
    pub hit_rate: f64,
    /// Datastore reads (= cache misses).
    pub datastore_reads: u64,
    /// Mean datastore reads per second over the run.
    pub datastore_read_rate_per_s: f64,
    /// Requests routed to each server, by index.
    pub requests_per_server: Vec<u64>,
    /// Hit rate of each server.
    pub hit_rate_per_server: Vec<f64>,
    /// Datastore reads caused by each server.
    pub datastore_reads_per_server: Vec<u64>,
    /// Distinct customers each server saw (empty above 2^24 customers).
    pub keys_per_server: Vec<u64>,
    /// Requests refused by a full server queue (absent when none were).
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// Response times.
    pub latency: crate::sim::LatencySummary,
}

impl RunTotals {
    pub(crate) fn of(r: &crate::sim::RunResult, duration_us: u64) -> Self {
        Self {
            requests: r.requests,
            hit_rate: r.hit_rate(),
            datastore_reads: r.datastore_reads,
            datastore_read_rate_per_s: r.datastore_reads as f64 / (duration_us as f64 / 1e6),
            requests_per_server: r.servers.iter().map(|s| s.requests).collect(),
            hit_rate_per_server: r.servers.iter().map(|s| s.hit_rate()).collect(),
            datastore_reads_per_server: r.servers.iter().map(|s| s.misses).collect(),
            keys_per_server: r.servers.iter().filter_map(|s| s.distinct_keys).collect(),
            rejected: r.rejected,
            latency: r.latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, part 5: `servers + 1` overflowed in debug builds.
    #[test]
    fn huge_server_counts_are_errors_not_overflows() {
        let mut cfg = ScenarioConfig {
            servers: usize::MAX,
            ..ScenarioConfig::default()
        };
        for which in [Scenario::A, Scenario::B, Scenario::D] {
            let e = cfg.validate(&[which]).unwrap_err().to_string();
            assert!(e.contains("exceeds"), "{e}");
        }
        cfg.servers = 5;
        cfg.c.backends = usize::MAX;
        assert!(cfg.validate(&[Scenario::C]).is_err());
    }

    /// Issue 10, part 5: the largest latencies accepted run without the cache
    /// clock error; one more µs is refused up front.
    #[test]
    fn latency_limit_is_the_cache_clock() {
        let mut cfg = ScenarioConfig::default();
        cfg.workload.rate_per_s = 5.0;
        cfg.workload.duration_us = 2_000_000;
        cfg.workload.arrival = Arrival::Constant;
        cfg.latency.processing_us = 1_000_000_000;
        cfg.latency.cache_read_us = 1;
        cfg.latency.datastore_us = crate::sim::engine::MAX_LATENCY_US - 1_000_000_001;
        cfg.validate(&[Scenario::A]).unwrap();
        let r = crate::sim::simulate(
            &cfg.sim_config(Scenario::A, StrategyKind::Ring),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(r.hits + r.datastore_reads, r.requests);
        assert!(r.end_us > crate::sim::engine::MAX_LATENCY_US);
        cfg.latency.datastore_us += 1;
        let e = cfg.validate(&[Scenario::A]).unwrap_err().to_string();
        assert!(e.contains("2147483.647 ms"), "{e}");
    }
}
