//! Scenario B: a fleet change under load, ring vs modulo.
//!
//! The fleet starts with `servers` servers; at `change_at` a server is added
//! (`server-{servers}`) or removed (`server-{servers - 1}`). Modulo hashing
//! (`hash mod n`) moves almost every customer to another server when `n`
//! changes, so almost every cache entry becomes useless at once; the ring moves
//! only the changed server's share, about `1/n` of the customers.
//!
//! # Definitions (also written into `results.json`)
//!
//! - **keys moved**: the fraction of customer ids `0..customers` whose server
//!   differs before and after the change, from the strategy's own placement
//!   (`pick(hash_u64(id))`), for key-affine strategies only.
//! - **pre-change hit rate**: hits / lookups over the windows in
//!   `[change - baseline, change)` (default 20 s): the steady state.
//! - **minimum hit rate after the change**: the lowest hit rate of a single
//!   window from the one holding the change to the end of the run.
//! - **datastore read spike**: the most datastore reads in one window from the
//!   change on, divided by the mean reads per window over the baseline.
//! - **recovery time**: let `M(w)` be the hit rate (hits / lookups) over the
//!   `k` windows `w .. w + k` (default `k` = 5) and `T = f x pre-change hit
//!   rate` (default `f` = 0.95). Recovery is at the start of the first window
//!   `w*` at or after the change whose own hit rate is at least `T` and such that
//!   `M(w) >= T` for every `w >= w*` whose span fits in the run. `recovery_s` is
//!   `start(w*) - change` (0 if it never dropped below), or `null` if no such
//!   window exists. (The own-window condition catches dips shorter than the
//!   span; the moving span keeps one noisy window from counting as a relapse.)
//!
//! # The control run
//!
//! Each strategy is also run on the same requests without the change. Cache
//! entries written at the start all expire one TTL later (30 s by default: the
//! change time), so part of what follows the change in absolute terms is that
//! expiry wave; the `*_vs_control` metrics compare with the control run window
//! by window and isolate the change's own cost.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ChangeArg, RunTotals, Scenario, ScenarioConfig};
use crate::sim::{
    ChangeKind, FleetChange, RunResult, StrategyKind, TimeSeries, build_sim_strategy, server_name,
    simulate,
};

/// The change made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeInfo {
    /// Add or remove.
    pub kind: ChangeArg,
    /// When, in seconds.
    pub at_s: f64,
    /// The server added or removed.
    pub server: String,
    /// Servers before the change.
    pub servers_before: usize,
    /// Servers after the change.
    pub servers_after: usize,
}

/// Scenario B's metrics for one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BStrategy {
    /// Fraction of customers whose server changed (`null` for strategies that
    /// are not key-affine).
    pub keys_moved_fraction: Option<f64>,
    /// Number of customers whose server changed.
    pub keys_moved: Option<u64>,
    /// Add: every moved customer went to the new server.
    pub moved_only_to_new_server: Option<bool>,
    /// Remove: every moved customer came from the removed server.
    pub moved_only_from_removed_server: Option<bool>,
    /// Hit rate over the baseline before the change.
    pub pre_change_hit_rate: f64,
    /// Lowest one-window hit rate from the change on.
    pub min_hit_rate_after_change: f64,
    /// Start of that window, seconds.
    pub min_hit_rate_at_s: f64,
    /// `pre_change_hit_rate - min_hit_rate_after_change`.
    pub hit_rate_drop: f64,
    /// Mean datastore reads per window over the baseline.
    pub pre_change_datastore_reads_per_window: f64,
    /// Most datastore reads in one window from the change on.
    pub peak_datastore_reads_per_window: u64,
    /// Peak / pre-change mean.
    pub datastore_read_spike: f64,
    /// Seconds from the change to recovery (see the module docs); `null` if it
    /// did not recover within the run.
    pub recovery_s: Option<f64>,
    /// Hit rate from the change to the end of the run.
    pub hit_rate_after_change: f64,
    /// The same, in the control run (no change).
    pub control_hit_rate_after_change: f64,
    /// Datastore reads from the change on, minus the control run's.
    pub extra_datastore_reads: i64,
    /// As `recovery_s`, with the threshold `f x` the control run's hit rate over
    /// the same windows instead of the pre-change hit rate.
    pub recovery_vs_control_s: Option<f64>,
    /// Aggregate hit rate over the whole run.
    pub hit_rate: f64,
    /// Datastore reads over the whole run.
    pub datastore_reads: u64,
    /// The run's totals.
    pub totals: RunTotals,
}

/// Scenario B's results.
#[derive(Debug, Clone, Serialize)]
pub struct BReport {
    /// The change.
    pub change: ChangeInfo,
    /// How each metric is defined.
    pub definitions: BTreeMap<&'static str, String>,
    /// Metrics per strategy.
    pub strategies: BTreeMap<String, BStrategy>,
    /// The full runs, in strategy order (charts).
    #[serde(skip)]
    pub runs: Vec<RunResult>,
    /// The control runs (no change), in strategy order.
    #[serde(skip)]
    pub controls: Vec<RunResult>,
}

/// Customers whose server changed.
/// Customer ids whose placement is compared: all of them, up to 2^24.
fn moved_ids(cfg: &ScenarioConfig) -> u64 {
    cfg.workload.customers.min(1 << 24)
}

struct Moved {
    moved: u64,
    only_to_new: bool,
    only_from_removed: bool,
}

/// Scenario B's fleet change, and the index of the server it adds or removes
/// (`server-{index}`): for drivers that replay scenario B elsewhere.
#[must_use]
pub fn fleet_change(cfg: &ScenarioConfig) -> (FleetChange, usize) {
    match cfg.b.change {
        ChangeArg::Add => (
            FleetChange {
                at_us: cfg.b.change_at_us,
                kind: ChangeKind::Add,
            },
            cfg.servers,
        ),
        ChangeArg::Remove => {
            let s = cfg.servers.saturating_sub(1);
            (
                FleetChange {
                    at_us: cfg.b.change_at_us,
                    kind: ChangeKind::Remove(s),
                },
                s,
            )
        }
    }
}

fn keys_moved(
    cfg: &ScenarioConfig,
    kind: StrategyKind,
    change: ChangeKind,
    changed: usize,
) -> anyhow::Result<Option<Moved>> {
    if !kind.is_key_affine() {
        return Ok(None);
    }
    let mut s = build_sim_strategy(kind, cfg.vnodes)?;
    for i in 0..cfg.servers {
        s.add(chring::BackendId(i as u16), server_name(i).as_bytes(), 1)?;
    }
    let route = |s: &mut crate::sim::strategy::BoxedStrategy, c: u64| {
        s.pick(chring::hash_u64(c)).map(|id| id.0)
    };
    let before: Vec<Option<u16>> = (0..moved_ids(cfg)).map(|c| route(&mut s, c)).collect();
    let changed_id = chring::BackendId(changed as u16);
    match change {
        ChangeKind::Add => s.add(changed_id, server_name(changed).as_bytes(), 1)?,
        ChangeKind::Remove(_) => s.remove(changed_id)?,
    }
    let mut m = Moved {
        moved: 0,
        only_to_new: true,
        only_from_removed: true,
    };
    for (c, b) in before.iter().enumerate() {
        let a = route(&mut s, c as u64);
        if a != *b {
            m.moved += 1;
            m.only_to_new &= a == Some(changed_id.0);
            m.only_from_removed &= *b == Some(changed_id.0);
        }
    }
    Ok(Some(m))
}

/// The first window `w* >= from` whose own hit rate is at least
/// `threshold(w*, w* + 1)` and such that the hit rate over every span
/// `w .. w + span` with `w* <= w <= windows - span` is at least
/// `threshold(w, w + span)` (`None` if the run ends first). The threshold may
/// depend on the windows (to compare with a control run). *O*(windows x span).
pub fn recovery_window(
    series: &TimeSeries,
    from: usize,
    span: usize,
    threshold: &dyn Fn(usize, usize) -> f64,
) -> Option<usize> {
    let span = span.max(1);
    let last = series.windows().checked_sub(span)?;
    if from > last {
        return None;
    }
    // Scan backwards: the answer is the first w after the last failing span
    // whose own window also passes.
    let mut stays = last + 1;
    for w in (from..=last).rev() {
        if series.total_range(w, w + span).hit_rate() < threshold(w, w + span) {
            break;
        }
        stays = w;
    }
    (stays..=last).find(|&w| series.total(w).hit_rate() >= threshold(w, w + 1))
}

fn metrics(
    cfg: &ScenarioConfig,
    r: &RunResult,
    control: &RunResult,
    moved: Option<Moved>,
) -> BStrategy {
    let series = &r.series;
    let at = cfg.b.change_at_us;
    let cw = series.window_of(at);
    let b0 = series
        .window_of(at.saturating_sub(cfg.b.baseline_us))
        .min(cw);
    let base = series.total_range(b0, cw);
    let pre = base.hit_rate();
    let base_windows = (cw - b0).max(1) as f64;
    let pre_reads = f64::from(base.misses) / base_windows;
    let mut min_rate = f64::INFINITY;
    let mut min_at = cw;
    let mut peak = 0u64;
    for w in cw..series.windows() {
        let t = series.total(w);
        if t.lookups() > 0 && t.hit_rate() < min_rate {
            min_rate = t.hit_rate();
            min_at = w;
        }
        peak = peak.max(u64::from(t.misses));
    }
    if !min_rate.is_finite() {
        min_rate = 0.0;
    }
    let f = cfg.b.recovery_fraction;
    let since_change = |w: usize| (series.start_s(w) - at as f64 / 1e6).max(0.0);
    let recovery =
        recovery_window(series, cw, cfg.b.recovery_windows, &|_, _| f * pre).map(since_change);
    let cs = &control.series;
    let recovery_vs_control = recovery_window(series, cw, cfg.b.recovery_windows, &|a, b| {
        f * cs.total_range(a, b).hit_rate()
    })
    .map(since_change);
    let after = series.total_range(cw, series.windows());
    let control_after = cs.total_range(cw, cs.windows());
    let customers = moved_ids(cfg) as f64;
    let (add, remove) = (
        cfg.b.change == ChangeArg::Add,
        cfg.b.change == ChangeArg::Remove,
    );
    BStrategy {
        keys_moved_fraction: moved.as_ref().map(|m| m.moved as f64 / customers),
        keys_moved: moved.as_ref().map(|m| m.moved),
        moved_only_to_new_server: moved.as_ref().filter(|_| add).map(|m| m.only_to_new),
        moved_only_from_removed_server: moved
            .as_ref()
            .filter(|_| remove)
            .map(|m| m.only_from_removed),
        pre_change_hit_rate: pre,
        min_hit_rate_after_change: min_rate,
        min_hit_rate_at_s: series.start_s(min_at),
        hit_rate_drop: pre - min_rate,
        pre_change_datastore_reads_per_window: pre_reads,
        peak_datastore_reads_per_window: peak,
        datastore_read_spike: crate::util::ratio(peak as f64, pre_reads),
        recovery_s: recovery,
        hit_rate_after_change: after.hit_rate(),
        control_hit_rate_after_change: control_after.hit_rate(),
        extra_datastore_reads: i64::from(after.misses) - i64::from(control_after.misses),
        recovery_vs_control_s: recovery_vs_control,
        hit_rate: r.hit_rate(),
        datastore_reads: r.datastore_reads,
        totals: RunTotals::of(r, cfg.workload.duration_us),
    }
}

fn definitions(cfg: &ScenarioConfig) -> BTreeMap<&'static str, String> {
    let b = &cfg.b;
    let win = cfg.window_us as f64 / 1e6;
    BTreeMap::from([
        (
            "keys_moved_fraction",
            format!(
                "fraction of customer ids 0..{} whose server (pick(hash_u64(id))) differs \
                 before and after the change; null for strategies that are not key-affine",
                moved_ids(cfg)
            ),
        ),
        (
            "pre_change_hit_rate",
            format!(
                "hits / lookups over [change - {} s, change)",
                b.baseline_us as f64 / 1e6
            ),
        ),
        (
            "min_hit_rate_after_change",
            format!("lowest hit rate of one {win} s window from the change's window to the end"),
        ),
        (
            "datastore_read_spike",
            "peak datastore reads in one window from the change on / mean reads per window \
             over the pre-change interval"
                .to_string(),
        ),
        (
            "recovery_s",
            format!(
                "start of the first window w* at or after the change whose own hit rate, and the \
                 hit rate over every span of {} windows starting at or after w* (within the run), \
                 is >= {} x the pre-change hit rate, minus the change time; 0 if it never dropped \
                 below, null if it did not recover within the run",
                b.recovery_windows, b.recovery_fraction
            ),
        ),
        (
            "recovery_vs_control_s",
            "as recovery_s, with the threshold taken from the control run (same requests, no \
             change) over the same windows: isolates the change from the TTL expiry of the \
             entries written at the start"
                .to_string(),
        ),
        (
            "extra_datastore_reads",
            "datastore reads from the change on minus those of the control run".to_string(),
        ),
    ])
}

/// Runs scenario B.
///
/// # Errors
/// An invalid configuration (for example removing from a one-server fleet).
pub fn run(cfg: &ScenarioConfig, progress: &mut dyn FnMut(u64)) -> anyhow::Result<BReport> {
    if cfg.b.change == ChangeArg::Remove {
        anyhow::ensure!(cfg.servers >= 2, "scenario B cannot remove the only server");
    }
    let (change, changed) = fleet_change(cfg);
    let mut strategies = BTreeMap::new();
    let mut runs = Vec::new();
    let mut controls = Vec::new();
    for &kind in &cfg.b.strategies {
        let control = simulate(&cfg.sim_config(Scenario::B, kind), progress)?;
        let mut sc = cfg.sim_config(Scenario::B, kind);
        sc.changes.push(change);
        let r = simulate(&sc, progress)?;
        let moved = keys_moved(cfg, kind, change.kind, changed)?;
        strategies.insert(kind.name().to_string(), metrics(cfg, &r, &control, moved));
        runs.push(r);
        controls.push(control);
    }
    let after = match cfg.b.change {
        ChangeArg::Add => cfg.servers + 1,
        ChangeArg::Remove => cfg.servers - 1,
    };
    Ok(BReport {
        change: ChangeInfo {
            kind: cfg.b.change,
            at_s: cfg.b.change_at_us as f64 / 1e6,
            server: server_name(changed),
            servers_before: cfg.servers,
            servers_after: after,
        },
        definitions: definitions(cfg),
        strategies,
        runs,
        controls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::TimeSeries;

    /// A series of one server with the given hit rates (100 lookups per window).
    fn series(rates: &[u32]) -> TimeSeries {
        let mut s = TimeSeries::new(rates.len() as u64, 1, 1);
        for (w, &r) in rates.iter().enumerate() {
            let c = s.cell_mut(w as u64, 0);
            c.hits = r;
            c.misses = 100 - r;
        }
        s
    }

    #[test]
    fn recovery_definition() {
        let t = |_: usize, _: usize| 0.5;
        // Never dropped: recovered at the change.
        assert_eq!(recovery_window(&series(&[60; 10]), 3, 3, &t), Some(3));
        // A one-window dip is caught although every 3-span from it passes.
        let s = series(&[60, 60, 60, 10, 90, 90, 60, 60, 60, 60]);
        assert_eq!(recovery_window(&s, 3, 3, &t), Some(4));
        // A relapse later pushes recovery past it.
        let s = series(&[60, 60, 60, 10, 60, 60, 0, 0, 60, 60, 60, 60]);
        assert_eq!(recovery_window(&s, 3, 3, &t), Some(8));
        // No recovery before the end.
        let s = series(&[60, 60, 60, 10, 10, 10, 10, 10]);
        assert_eq!(recovery_window(&s, 3, 3, &t), None);
    }
}
