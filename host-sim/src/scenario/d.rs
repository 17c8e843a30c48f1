//! Scenario D: uniform vs Zipf customers on the ring.
//!
//! Consistent hashing spreads *customers* evenly, not *requests*: under Zipf
//! (`s` = 1.5 over 1000 customers the hottest customer alone sends about 38% of
//! the requests) the servers owning the hot customers carry most of the load,
//! and also hit their caches more often, since few keys are hot.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{RunTotals, Scenario, ScenarioConfig};
use crate::sim::{IdDistribution, RunResult, StrategyKind, simulate};

/// One distribution's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DDistribution {
    /// Most / fewest requests on a server (`null` if a server got none).
    pub max_min_load: Option<f64>,
    /// Requests per server.
    pub requests_per_server: Vec<u64>,
    /// Aggregate hit rate.
    pub hit_rate: f64,
    /// Hit rate per server.
    pub hit_rate_per_server: Vec<f64>,
    /// Datastore reads.
    pub datastore_reads: u64,
    /// Datastore reads per server.
    pub datastore_reads_per_server: Vec<u64>,
    /// Share of all requests carried by the busiest server.
    pub busiest_server_share: f64,
    /// The run's totals.
    pub totals: RunTotals,
}

/// Scenario D's results.
#[derive(Debug, Clone, Serialize)]
pub struct DReport {
    /// The Zipf exponent.
    pub zipf_s: f64,
    /// `uniform` and `zipf`.
    pub distributions: BTreeMap<String, DDistribution>,
    /// The runs: uniform, then Zipf (charts).
    #[serde(skip)]
    pub runs: Vec<(IdDistribution, RunResult)>,
}

/// Runs scenario D.
///
/// # Errors
/// An invalid configuration.
pub fn run(cfg: &ScenarioConfig, progress: &mut dyn FnMut(u64)) -> anyhow::Result<DReport> {
    let mut distributions = BTreeMap::new();
    let mut runs = Vec::new();
    for (name, dist) in [
        ("uniform", IdDistribution::Uniform),
        ("zipf", IdDistribution::Zipf),
    ] {
        let mut sc = cfg.sim_config(Scenario::D, StrategyKind::Ring);
        sc.workload.distribution = dist;
        let r = simulate(&sc, progress)?;
        let reqs: Vec<u64> = r.servers.iter().map(|s| s.requests).collect();
        let max = reqs.iter().copied().max().unwrap_or(0);
        let min = reqs.iter().copied().min().unwrap_or(0);
        distributions.insert(
            name.to_string(),
            DDistribution {
                max_min_load: (min > 0).then(|| max as f64 / min as f64),
                hit_rate: r.hit_rate(),
                hit_rate_per_server: r.servers.iter().map(|s| s.hit_rate()).collect(),
                datastore_reads: r.datastore_reads,
                datastore_reads_per_server: r.servers.iter().map(|s| s.misses).collect(),
                busiest_server_share: crate::util::ratio(max as f64, r.requests as f64),
                requests_per_server: reqs,
                totals: RunTotals::of(&r, cfg.workload.duration_us),
            },
        );
        runs.push((dist, r));
    }
    Ok(DReport {
        zipf_s: cfg.workload.zipf_s,
        distributions,
        runs,
    })
}
