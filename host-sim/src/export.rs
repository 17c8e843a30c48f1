//! Writing a [`Report`]: `results.json`, one CSV per chart, the charts, and the
//! summary table printed on the terminal.
//!
//! Everything written is a function of the report alone, and floats are written
//! with Rust's shortest round-trip formatting (`Display` for CSV, `ryu` in
//! `serde_json`), so the same seed gives byte-identical files.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::plot::{self, Figure, Format};
use crate::scenario::Report;
use crate::sim::{RunResult, TimeSeries};

/// Chart and CSV base names, per scenario, in the order they are written.
pub const CHARTS: [(&str, &str); 7] = [
    ("a", "a_hit_rate"),
    ("a", "a_keys_per_server"),
    ("a", "a_capacity_sweep"),
    ("b", "b_fleet_change"),
    ("c", "c_cov_vs_vnodes"),
    ("c", "c_distribution"),
    ("d", "d_zipf_load"),
];

/// `results.json` of a report: pretty-printed, newline-terminated.
///
/// # Errors
/// Serialisation failure (not expected).
pub fn results_json(report: &Report) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// Long-format time series: one row per (run, window, server), plus server
/// `all` for the aggregate. `runs` pairs a run label with each run.
fn series_csv(runs: &[(String, &RunResult)]) -> String {
    let mut out =
        String::from("run,window_start_s,server,requests,hits,misses,hit_rate,datastore_reads\n");
    for (label, r) in runs {
        let s: &TimeSeries = &r.series;
        for w in 0..s.windows() {
            let t = s.total(w);
            let _ = writeln!(
                out,
                "{label},{},all,{},{},{},{},{}",
                s.start_s(w),
                t.requests,
                t.hits,
                t.misses,
                t.hit_rate(),
                t.misses
            );
            for i in 0..s.servers() {
                let c = s.get(w, i);
                let _ = writeln!(
                    out,
                    "{label},{},{},{},{},{},{},{}",
                    s.start_s(w),
                    crate::sim::server_name(i),
                    c.requests,
                    c.hits,
                    c.misses,
                    c.hit_rate(),
                    c.misses
                );
            }
        }
    }
    out
}

/// The CSV behind each chart of the report, as `(base name, contents)`.
#[must_use]
pub fn csvs(report: &Report) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(a) = &report.a {
        let runs: Vec<_> = a.runs.iter().map(|r| (r.strategy.to_string(), r)).collect();
        v.push(("a_hit_rate", series_csv(&runs)));
        let mut keys =
            String::from("strategy,server,distinct_keys,requests,hit_rate,datastore_reads\n");
        for r in &a.runs {
            for s in &r.servers {
                let _ = writeln!(
                    keys,
                    "{},{},{},{},{},{}",
                    r.strategy,
                    s.name,
                    s.distinct_keys.map(|k| k.to_string()).unwrap_or_default(),
                    s.requests,
                    s.hit_rate(),
                    s.misses
                );
            }
        }
        v.push(("a_keys_per_server", keys));
        let mut sweep = String::from("strategy,capacity,hit_rate,datastore_reads,lru_estimate\n");
        for (name, hs) in &a.sweep.hit_rate {
            let reads = a.sweep.datastore_reads.get(name);
            for (i, (&c, &h)) in a.sweep.capacities.iter().zip(hs).enumerate() {
                let _ = writeln!(
                    sweep,
                    "{name},{c},{h},{},{}",
                    reads.and_then(|r| r.get(i)).copied().unwrap_or(0),
                    a.sweep.lru_estimate.get(i).copied().unwrap_or(0.0)
                );
            }
        }
        v.push(("a_capacity_sweep", sweep));
    }
    if let Some(b) = &report.b {
        let mut runs: Vec<_> = b.runs.iter().map(|r| (r.strategy.to_string(), r)).collect();
        runs.extend(
            b.controls
                .iter()
                .map(|r| (format!("{}_no_change", r.strategy), r)),
        );
        v.push(("b_fleet_change", series_csv(&runs)));
    }
    if let Some(c) = &report.c {
        let mut rows = String::from(
            "vnodes,cov_mean,cov_min,cov_max,max_min_mean,max_min_median,cov_estimate,\
             server_fleet_cov,server_fleet_max_min\n",
        );
        for r in &c.rows {
            let _ = writeln!(
                rows,
                "{},{},{},{},{},{},{},{},{}",
                r.vnodes,
                r.cov,
                r.cov_min,
                r.cov_max,
                opt(r.max_min),
                opt(r.max_min_median),
                r.cov_estimate,
                r.server_fleet_cov,
                opt(r.server_fleet_max_min)
            );
        }
        v.push(("c_cov_vs_vnodes", rows));
        let mut bars = String::from("vnodes,backend,keys\n");
        for b in &c.bars {
            for (name, k) in b.backends.iter().zip(&b.keys) {
                let _ = writeln!(bars, "{},{name},{k}", b.vnodes);
            }
        }
        v.push(("c_distribution", bars));
    }
    if let Some(d) = &report.d {
        let mut load =
            String::from("distribution,server,requests,hits,misses,hit_rate,datastore_reads\n");
        for (dist, r) in &d.runs {
            let dist = match dist {
                crate::sim::IdDistribution::Uniform => "uniform",
                crate::sim::IdDistribution::Zipf => "zipf",
            };
            for s in &r.servers {
                let _ = writeln!(
                    load,
                    "{dist},{},{},{},{},{},{}",
                    s.name,
                    s.requests,
                    s.hits,
                    s.misses,
                    s.hit_rate(),
                    s.misses
                );
            }
        }
        v.push(("d_zipf_load", load));
    }
    v
}

fn chart(report: &Report, base: &str, path: &Path, format: Format) -> anyhow::Result<bool> {
    fn go(fig: &impl Figure, path: &Path, format: Format) -> anyhow::Result<bool> {
        plot::render(fig, path, format)?;
        Ok(true)
    }
    match (base, &report.a, &report.b, &report.c, &report.d) {
        ("a_hit_rate", Some(a), ..) => go(&plot::AHitRate(a), path, format),
        ("a_keys_per_server", Some(a), ..) => go(&plot::AKeys(a), path, format),
        ("a_capacity_sweep", Some(a), ..) => go(&plot::ASweep(a), path, format),
        ("b_fleet_change", _, Some(b), ..) => go(&plot::BFleetChange(b), path, format),
        ("c_cov_vs_vnodes", _, _, Some(c), _) => go(&plot::CCov(c), path, format),
        ("c_distribution", _, _, Some(c), _) => go(&plot::CDistribution(c), path, format),
        ("d_zipf_load", _, _, _, Some(d)) => go(&plot::DLoad(d), path, format),
        _ => Ok(false),
    }
}

/// Every file name host-sim writes into an output directory: `results.json`,
/// and a CSV, an SVG and a PNG per chart.
#[must_use]
pub fn owned_names() -> Vec<String> {
    let mut names = vec!["results.json".to_string()];
    for (_, base) in CHARTS {
        for ext in ["csv", "svg", "png"] {
            names.push(format!("{base}.{ext}"));
        }
    }
    names
}

/// Writes `results.json`, the CSVs and (unless `charts` is false) the charts of
/// `report` into `dir` (created if missing); returns the paths written.
///
/// Everything is written into a temporary directory inside `dir` first; only
/// when every file is written are the files of [`owned_names`] that this run
/// did not write removed from `dir` (stale results of other scenarios or of the
/// other chart format) and the new ones renamed into place. A run that fails
/// leaves `dir` as it was; files host-sim does not write are never touched.
///
/// # Errors
/// The directory or a file cannot be written; PNG without a font.
pub fn write_all(
    report: &Report,
    dir: &Path,
    format: Format,
    charts: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    replace_outputs(dir, |tmp| write_into(report, tmp, format, charts))
}

fn write_into(
    report: &Report,
    dir: &Path,
    format: Format,
    charts: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |name: String, contents: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    put("results.json".into(), &results_json(report)?)?;
    for (base, csv) in csvs(report) {
        put(format!("{base}.csv"), &csv)?;
    }
    if charts {
        for (_, base) in CHARTS {
            let path = dir.join(format!("{base}.{}", format.extension()));
            if chart(report, base, &path, format)
                .with_context(|| format!("cannot draw {}", path.display()))?
            {
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Runs `write(tmp)` on a fresh temporary directory inside `dir`; on success
/// replaces the host-sim files of `dir` with the ones written (see
/// [`write_all`]) and returns their new paths; on failure removes the
/// temporary directory and leaves `dir` alone.
fn replace_outputs(
    dir: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<Vec<PathBuf>>,
) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".host-sim-tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = write(&tmp).and_then(|written| {
        let names: Vec<std::ffi::OsString> = written
            .iter()
            .filter_map(|p| p.file_name().map(ToOwned::to_owned))
            .collect();
        for stale in owned_names() {
            if names.iter().any(|n| *n == *stale) {
                continue;
            }
            let path = dir.join(&stale);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        let mut moved = Vec::with_capacity(names.len());
        for name in names {
            let (from, to) = (tmp.join(&name), dir.join(&name));
            fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} into place", to.display()))?;
            moved.push(to);
        }
        Ok(moved)
    });
    let _ = fs::remove_dir_all(&tmp);
    result
}

fn pct(x: f64) -> String {
    format!("{:5.1}%", 100.0 * x)
}

fn opt_num(x: Option<f64>, unit: &str) -> String {
    match x {
        Some(v) => format!("{v:.2}{unit}"),
        None => "-".into(),
    }
}

/// The summary table printed after a run.
#[must_use]
pub fn summary(report: &Report) -> String {
    let mut s = String::new();
    if let Some(a) = &report.a {
        let _ = writeln!(
            s,
            "Scenario A: strategies on the same {} requests",
            a.runs.first().map_or(0, |r| r.requests)
        );
        let _ = writeln!(
            s,
            "  {:<12} {:>8} {:>16} {:>10}",
            "strategy", "hit rate", "datastore reads", "p99 (ms)"
        );
        for (name, t) in &a.strategies {
            let _ = writeln!(
                s,
                "  {name:<12} {:>8} {:>16} {:>10.2}",
                pct(t.hit_rate),
                t.datastore_reads,
                t.latency.p99_ms
            );
        }
        if let Some(r) = a.hit_rate_ratio_ring_over_round_robin {
            let _ = writeln!(s, "  ring / round robin hit rate: {r:.2}x (spec: > 3x)");
        }
        let _ = write!(s, "  sweep capacity:");
        for c in &a.sweep.capacities {
            let _ = write!(s, " {c:>6}");
        }
        let _ = writeln!(s);
        for (name, hs) in &a.sweep.hit_rate {
            let _ = write!(s, "  {name:<15}");
            for h in hs {
                let _ = write!(s, " {}", pct(*h));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "  ring reaches 80% at capacity {}, 90% at {}",
            a.sweep
                .ring_capacity_for_80
                .map_or("-".into(), |c| c.to_string()),
            a.sweep
                .ring_capacity_for_90
                .map_or("-".into(), |c| c.to_string())
        );
    }
    if let Some(b) = &report.b {
        let _ = writeln!(
            s,
            "Scenario B: {} {} at {} s ({} -> {} servers)",
            b.change.server,
            match b.change.kind {
                crate::scenario::ChangeArg::Add => "added",
                crate::scenario::ChangeArg::Remove => "removed",
            },
            b.change.at_s,
            b.change.servers_before,
            b.change.servers_after
        );
        let _ = writeln!(
            s,
            "  {:<12} {:>10} {:>9} {:>9} {:>8} {:>10}",
            "strategy", "keys moved", "hit pre", "hit min", "spike", "recovery"
        );
        for (name, m) in &b.strategies {
            let _ = writeln!(
                s,
                "  {name:<12} {:>10} {:>9} {:>9} {:>7.2}x {:>10}",
                m.keys_moved_fraction.map_or("-".into(), pct),
                pct(m.pre_change_hit_rate),
                pct(m.min_hit_rate_after_change),
                m.datastore_read_spike,
                opt_num(m.recovery_s, " s")
            );
        }
    }
    if let Some(c) = &report.c {
        let _ = writeln!(
            s,
            "Scenario C: {} keys on {} backends, mean of {} trials",
            c.keys, c.backends, c.trials
        );
        let _ = writeln!(
            s,
            "  {:>7} {:>7} {:>8} {:>14} {:>16}",
            "vnodes", "cov", "max/min", "server-.. cov", "server-.. max/min"
        );
        for r in &c.rows {
            let _ = writeln!(
                s,
                "  {:>7} {:>7.3} {:>8} {:>14.3} {:>16}",
                r.vnodes,
                r.cov,
                opt_num(r.max_min, ""),
                r.server_fleet_cov,
                opt_num(r.server_fleet_max_min, "")
            );
        }
    }
    if let Some(d) = &report.d {
        let _ = writeln!(s, "Scenario D: ring, uniform vs Zipf (s = {})", d.zipf_s);
        for (name, m) in &d.distributions {
            let _ = writeln!(
                s,
                "  {name:<8} max/min load {:>7}  hit rate {}  busiest server {}  requests/server {:?}",
                opt_num(m.max_min_load, "x"),
                pct(m.hit_rate),
                pct(m.busiest_server_share),
                m.requests_per_server
            );
        }
    }
    let _ = writeln!(
        s,
        "{} requests simulated, seed {}",
        report.meta.requests_simulated, report.meta.seed
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, part 5: a run that fails while writing leaves the previous
    /// results as they were, and no temporary directory behind.
    #[test]
    fn failed_write_keeps_previous_results() {
        let dir = std::env::temp_dir().join(format!("host-sim-export-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("results.json"), "previous").unwrap();
        fs::write(dir.join("a_hit_rate.csv"), "previous").unwrap();
        let e = replace_outputs(&dir, |tmp| {
            fs::write(tmp.join("results.json"), "new")?;
            anyhow::bail!("chart failed")
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "chart failed");
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a_hit_rate.csv", "results.json"]);
        assert_eq!(
            fs::read_to_string(dir.join("results.json")).unwrap(),
            "previous"
        );
        // A successful write replaces them, stale owned files included.
        let written = replace_outputs(&dir, |tmp| {
            fs::write(tmp.join("results.json"), "new")?;
            Ok(vec![tmp.join("results.json")])
        })
        .unwrap();
        assert_eq!(written, [dir.join("results.json")]);
        assert_eq!(fs::read_to_string(dir.join("results.json")).unwrap(), "new");
        assert!(!dir.join("a_hit_rate.csv").exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
