//! Scenario C: how evenly the ring spreads keys as vnodes grow (placement only,
//! no simulation).
//!
//! A fleet's names fix where its points land, so one fleet is one sample of the
//! placement (for `server-0..4`, the coefficient of variation at 1 vnode happens
//! to be 0.45, while the expectation is about 0.8). Each trial therefore draws
//! its own keys *and* names its own fleet, `s{seed}-t{trial}-server-{i}`, and the
//! rows report means over trials. The plain `server-0..4` fleet, routing the
//! customer ids `0..keys`, is reported beside them.

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg32;
use serde::Serialize;

use super::{Scenario, ScenarioConfig, stream_seed};
use crate::sim::strategy::{SIM_MAX_SERVERS, SIM_RING_POINTS};
use crate::sim::{StrategyKind, build_sim_strategy};

/// One vnode count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CRow {
    /// Points per backend.
    pub vnodes: u32,
    /// Coefficient of variation (population std / mean) of keys per backend,
    /// mean over trials.
    pub cov: f64,
    /// Most / fewest keys on a backend, mean over trials (`null` if a backend
    /// got no key in some trial).
    pub max_min: Option<f64>,
    /// Smallest cov over trials.
    pub cov_min: f64,
    /// Largest cov over trials.
    pub cov_max: f64,
    /// Median over trials of max / min.
    pub max_min_median: Option<f64>,
    /// The model's root-mean-square cov,
    /// `sqrt((n - 1) / K x (K + n v) / (1 + n v))` for `n` backends, `v` vnodes
    /// and `K` keys: the `n v` points cut the circle into arcs whose lengths are
    /// jointly Dirichlet(1, ..., 1), so a backend's share (its `v` arcs) is
    /// Dirichlet(v, ..., v), and the keys are a multinomial sample of the shares.
    pub cov_estimate: f64,
    /// cov of the plain `server-0..` fleet.
    pub server_fleet_cov: f64,
    /// max / min of the plain `server-0..` fleet.
    pub server_fleet_max_min: Option<f64>,
}

/// Keys per backend of the plain fleet at one vnode count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CBars {
    /// Points per backend.
    pub vnodes: u32,
    /// Backend names.
    pub backends: Vec<String>,
    /// Keys per backend.
    pub keys: Vec<u64>,
}

/// Scenario C's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CReport {
    /// Keys per trial.
    pub keys: u64,
    /// Backends.
    pub backends: usize,
    /// Trials averaged.
    pub trials: u32,
    /// How trial fleets are named.
    pub trial_fleet_names: String,
    /// One row per vnode count.
    pub rows: Vec<CRow>,
    /// The plain fleet's distribution at the bar-chart vnode counts.
    pub bars: Vec<CBars>,
}

/// Coefficient of variation (population standard deviation / mean).
#[must_use]
pub fn cov(counts: &[u64]) -> f64 {
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<u64>() as f64 / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean) * (c as f64 - mean))
        .sum::<f64>()
        / n;
    var.sqrt() / mean
}

/// The Dirichlet-multinomial model of the ring's cov (see [`CRow::cov_estimate`]).
#[must_use]
pub fn cov_model(backends: usize, vnodes: u32, keys: u64) -> f64 {
    let n = backends as f64;
    let nv = n * f64::from(vnodes);
    let k = keys as f64;
    ((n - 1.0) / k * (k + nv) / (1.0 + nv)).sqrt()
}

/// Most / fewest, `None` when the fewest is 0.
#[must_use]
pub fn max_min(counts: &[u64]) -> Option<f64> {
    let max = *counts.iter().max()?;
    let min = *counts.iter().min()?;
    (min > 0).then(|| max as f64 / min as f64)
}

/// Keys per backend for `names` (backend `i` named `names[i]`).
/// Keys per backend for the ring of `names` at `vnodes`. Keys are streamed:
/// *O*(backends) memory whatever their number.
fn distribution(
    names: &[String],
    vnodes: u32,
    keys: impl IntoIterator<Item = u64>,
) -> anyhow::Result<Vec<u64>> {
    let mut ring = build_sim_strategy(StrategyKind::Ring, vnodes)?;
    for (i, n) in names.iter().enumerate() {
        ring.add(chring::BackendId(i as u16), n.as_bytes(), 1)?;
    }
    let mut counts = vec![0u64; names.len()];
    for k in keys {
        if let Some(id) = ring.pick(k) {
            counts[usize::from(id.0)] += 1;
        }
    }
    Ok(counts)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// Most keys per trial in scenario C (each trial routes them once per vnode
/// count; memory does not grow with them).
pub const MAX_C_KEYS: u64 = 10_000_000;
/// Most trials in scenario C.
pub const MAX_C_TRIALS: u32 = 1_000;

/// Checks scenario C's settings.
pub(crate) fn check(cfg: &ScenarioConfig) -> anyhow::Result<()> {
    let c = &cfg.c;
    anyhow::ensure!(
        (1..=MAX_C_TRIALS).contains(&c.trials),
        "scenario C trials must be in 1..={MAX_C_TRIALS}"
    );
    anyhow::ensure!(
        (1..=MAX_C_KEYS).contains(&c.keys),
        "scenario C keys must be in 1..={MAX_C_KEYS}"
    );
    for list in [&c.vnodes, &c.bar_vnodes] {
        anyhow::ensure!(
            list.len() <= super::MAX_LIST,
            "scenario C takes at most {} vnode counts per list",
            super::MAX_LIST
        );
    }
    anyhow::ensure!(
        (1..=SIM_MAX_SERVERS).contains(&c.backends),
        "scenario C backends must be in 1..={SIM_MAX_SERVERS}"
    );
    for &v in c.vnodes.iter().chain(&c.bar_vnodes) {
        anyhow::ensure!(
            v >= 1 && (v as usize).saturating_mul(c.backends) <= SIM_RING_POINTS,
            "scenario C: {v} vnodes x {} backends exceeds the ring's {SIM_RING_POINTS} points",
            c.backends
        );
    }
    Ok(())
}

/// Runs scenario C.
///
/// # Errors
/// Vnodes x backends beyond the simulator ring's capacity, or no trial.
pub fn run(cfg: &ScenarioConfig) -> anyhow::Result<CReport> {
    check(cfg)?;
    let c = &cfg.c;
    let base = stream_seed(cfg.seed, Scenario::C);
    // Each trial's fleet and keys are regenerated where they are used instead
    // of being kept (trials x keys would not fit for large settings); the same
    // seeds give the same keys in the same order.
    let trial_names = |t: u32| -> Vec<String> {
        (0..c.backends)
            .map(|i| format!("s{}-t{t}-server-{i}", cfg.seed))
            .collect()
    };
    let trial_keys = |t: u32| {
        let mut rng = Pcg32::seed_from_u64(chring::mix(base, u64::from(t)));
        (0..c.keys).map(move |_| chring::hash_u64(rng.next_u64()))
    };
    let plain_names: Vec<String> = (0..c.backends).map(crate::sim::server_name).collect();
    let plain_keys = || (0..c.keys).map(chring::hash_u64);

    let mut rows = Vec::new();
    for &v in &c.vnodes {
        let mut covs = Vec::new();
        let mut ratios = Vec::new();
        for t in 0..c.trials {
            let counts = distribution(&trial_names(t), v, trial_keys(t))?;
            covs.push(cov(&counts));
            ratios.push(max_min(&counts).unwrap_or(f64::INFINITY));
        }
        let plain = distribution(&plain_names, v, plain_keys())?;
        let n = covs.len() as f64;
        let mean_ratio = ratios.iter().sum::<f64>() / n;
        rows.push(CRow {
            vnodes: v,
            cov: covs.iter().sum::<f64>() / n,
            max_min: mean_ratio.is_finite().then_some(mean_ratio),
            cov_min: covs.iter().copied().fold(f64::INFINITY, f64::min),
            cov_max: covs.iter().copied().fold(0.0, f64::max),
            max_min_median: median(ratios),
            cov_estimate: cov_model(c.backends, v, c.keys),
            server_fleet_cov: cov(&plain),
            server_fleet_max_min: max_min(&plain),
        });
    }
    let bars = c
        .bar_vnodes
        .iter()
        .map(|&v| {
            Ok(CBars {
                vnodes: v,
                backends: plain_names.clone(),
                keys: distribution(&plain_names, v, plain_keys())?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(CReport {
        keys: c.keys,
        backends: c.backends,
        trials: c.trials,
        trial_fleet_names: format!("s{}-t{{trial}}-server-{{i}}", cfg.seed),
        rows,
        bars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cov_and_max_min() {
        assert_eq!(cov(&[5, 5, 5]), 0.0);
        assert!((cov(&[0, 10]) - 1.0).abs() < 1e-12);
        assert_eq!(max_min(&[2, 4, 8]), Some(4.0));
        assert_eq!(max_min(&[0, 4]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![f64::INFINITY, 1.0]), None);
    }
}
