//! `host-sim lb-compare`: seed 004's comparison of load-balancing algorithms,
//! live (issue 15). The same bounded workload goes through a real balancer
//! once per algorithm, over in-process HTTP backends of which one is slow and
//! one fails a share of its requests:
//!
//! ```text
//! load client ──> chring-proxy (mode: http, distribution: X) ──┬──> ok-0
//!  (N requests,    or nginx (upstream, round robin / least_conn ├──> ok-1
//!   C connections,  / random two least_conn)                    ├──> slow-2     (+extra ms)
//!   seeded keys)                                                └──> failing-3  (a share of 500s)
//! ```
//!
//! Per algorithm it reports the answers per backend, the client's p50 / p99 /
//! p99.9 latency, the error rate, hedges (chring-proxy's `/metrics`) and key
//! affinity, and writes `results.json`, `table.md` and a chart.
//!
//! It lives in host-sim, not in the proxy crate: host-sim has the CLI, the
//! charts, seeded streams and `results.json`, and already drives external
//! processes (`hil`); it starts the chring-proxy *binary* and talks to it over
//! 127.0.0.1 only, so it does not depend on the proxy crate, and nginx is
//! driven exactly the same way. Every process runs on free ports of
//! 127.0.0.1 and is killed when its run ends; every run is bounded in
//! requests and in time.

pub mod backend;
pub mod balancer;
pub mod client;
pub mod http;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::error::UsageError;
use crate::plot::Format;
use backend::{Backend, BackendCounts, BackendSpec};
use balancer::{Balancer, BalancerOptions};
use client::{Sample, Workload};

/// One row of the comparison: a balancer and its algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// chring-proxy, `distribution: round_robin` (smooth weighted round robin).
    RoundRobin,
    /// chring-proxy, `distribution: least_conn`.
    LeastConn,
    /// chring-proxy, `distribution: peak_ewma` (response time).
    PeakEwma,
    /// chring-proxy, `distribution: health_score`.
    HealthScore,
    /// chring-proxy, `distribution: p2c` (power of two choices).
    P2c,
    /// chring-proxy, `distribution: p2c` with `hedge_after:` (seed 004's ALPHA1).
    P2cHedge,
    /// chring-proxy, `distribution: bounded` (ring + bounded loads, seed 004's BETA1).
    Bounded,
    /// chring-proxy, `distribution: ring`.
    Ring,
    /// chring-proxy, `distribution: maglev`.
    Maglev,
    /// nginx, `upstream` with its default round robin.
    NginxRoundRobin,
    /// nginx, `least_conn;`.
    NginxLeastConn,
    /// nginx, `random two least_conn;`.
    NginxRandomTwo,
}

impl Algorithm {
    /// Every row, in the table's order.
    pub const ALL: [Algorithm; 12] = [
        Self::RoundRobin,
        Self::LeastConn,
        Self::PeakEwma,
        Self::HealthScore,
        Self::P2c,
        Self::P2cHedge,
        Self::Bounded,
        Self::Ring,
        Self::Maglev,
        Self::NginxRoundRobin,
        Self::NginxLeastConn,
        Self::NginxRandomTwo,
    ];

    /// Its name on the command line, in `results.json` and in the table.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::LeastConn => "least_conn",
            Self::PeakEwma => "peak_ewma",
            Self::HealthScore => "health_score",
            Self::P2c => "p2c",
            Self::P2cHedge => "p2c_hedge",
            Self::Bounded => "bounded",
            Self::Ring => "ring",
            Self::Maglev => "maglev",
            Self::NginxRoundRobin => "nginx_round_robin",
            Self::NginxLeastConn => "nginx_least_conn",
            Self::NginxRandomTwo => "nginx_random_two",
        }
    }

    /// The pool's `distribution:` (chring) or the `upstream` directive (nginx).
    #[must_use]
    pub const fn distribution(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::LeastConn => "least_conn",
            Self::PeakEwma => "peak_ewma",
            Self::HealthScore => "health_score",
            Self::P2c | Self::P2cHedge => "p2c",
            Self::Bounded => "bounded",
            Self::Ring => "ring",
            Self::Maglev => "maglev",
            Self::NginxRoundRobin => "(round robin)",
            Self::NginxLeastConn => "least_conn",
            Self::NginxRandomTwo => "random two least_conn",
        }
    }

    /// Seed 004's name for the same idea, where it has one.
    #[must_use]
    pub const fn seed004(self) -> &'static str {
        match self {
            Self::RoundRobin | Self::NginxRoundRobin => "Round Robin (RR)",
            Self::LeastConn | Self::NginxLeastConn => "Least Connections (LC)",
            Self::PeakEwma => "Response Time (RRT-BS)",
            Self::HealthScore => "Health Score (HS-BS)",
            Self::P2cHedge => "ALPHA1",
            Self::Bounded => "BETA1",
            Self::P2c | Self::NginxRandomTwo => "(ALPHA1's two choices)",
            Self::Ring | Self::Maglev => "-",
        }
    }

    /// A key-affine algorithm (a key stays on its backend).
    #[must_use]
    pub const fn keyed(self) -> bool {
        matches!(self, Self::Bounded | Self::Ring | Self::Maglev)
    }

    /// Run by nginx rather than chring-proxy.
    #[must_use]
    pub const fn is_nginx(self) -> bool {
        matches!(
            self,
            Self::NginxRoundRobin | Self::NginxLeastConn | Self::NginxRandomTwo
        )
    }

    /// The balancer's name.
    #[must_use]
    pub const fn balancer(self) -> &'static str {
        if self.is_nginx() {
            "nginx"
        } else {
            "chring-proxy"
        }
    }

    /// Parses a name of [`Algorithm::name`].
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
                format!("unknown algorithm '{s}'; use {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `host-sim lb-compare`.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    after_help = "Backends: ok-0 .. ok-(N-3) answer in base + U(0, jitter) ms, \
    slow-(N-2) takes --slow-ms more, failing-(N-1) answers 500 to --fail-share of its \
    requests (or, with --fail-mode refuse, refuses every connection); every backend has \
    the heavy tail (--tail-share of requests take --tail-ms more). Writes results.json, \
    table.md and lb_compare.(png|svg) to --out and prints the table. Exit status: 0 when \
    every run completed, 1 when a balancer failed, 2 for bad arguments."
)]
pub struct LbCompareArgs {
    /// The chring-proxy binary (needed by chring's algorithms).
    #[arg(long, value_name = "PATH")]
    pub proxy: Option<PathBuf>,
    /// The nginx binary for the nginx_* rows (default: nginx on PATH or in /usr/sbin).
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,
    /// Rows to run, comma-separated, in order (default: all; nginx_* need nginx).
    #[arg(long, value_delimiter = ',', value_parser = Algorithm::parse,
          default_value = "round_robin,least_conn,peak_ewma,health_score,p2c,p2c_hedge,bounded,ring,maglev,nginx_round_robin,nginx_least_conn,nginx_random_two")]
    pub algorithms: Vec<Algorithm>,
    /// Requests per algorithm.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub requests: u64,
    /// Client connections, one request in flight each.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Distinct keys (request paths /k/0 .. /k/KEYS-1, uniform).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: u32,
    /// Seed of the keys and of every backend's service times and failures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Backends, 3..=16 (the last two are the slow and the failing one).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(3..=16))]
    pub backends: u32,
    /// Service time of every request, ms.
    #[arg(long, value_name = "MS", default_value_t = 2.0)]
    pub base_ms: f64,
    /// Plus a uniform draw up to this, ms.
    #[arg(long, value_name = "MS", default_value_t = 2.0)]
    pub jitter_ms: f64,
    /// The slow backend's extra time per request, ms.
    #[arg(long, value_name = "MS", default_value_t = 15.0)]
    pub slow_ms: f64,
    /// Share of every backend's requests in the heavy tail.
    #[arg(long, value_name = "SHARE", default_value_t = 0.03)]
    pub tail_share: f64,
    /// The heavy tail's extra time, ms.
    #[arg(long, value_name = "MS", default_value_t = 150.0)]
    pub tail_ms: f64,
    /// Share of the failing backend's requests answered 500.
    #[arg(long, value_name = "SHARE", default_value_t = 0.6)]
    pub fail_share: f64,
    /// How the failing backend fails.
    #[arg(long, value_enum, default_value_t = FailMode::Status)]
    pub fail_mode: FailMode,
    /// chring-proxy's hedge_after: for p2c_hedge (pNN or ms).
    #[arg(long, value_name = "pNN|MS", default_value = "p95")]
    pub hedge_after: String,
    /// chring-proxy's check_interval: (active /health checks), ms.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub check_interval: u64,
    /// Backend connect + response timeout of the balancers, and the client's wait for an answer, ms.
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout: u64,
    /// Each run stops sending after this many seconds, whatever is left.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub run_timeout: u64,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR", default_value = "target/lb-compare")]
    pub out: PathBuf,
    /// Chart format (PNG needs a TrueType font; see HOST_SIM_FONT).
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

/// How the failing backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Answers `500` to `--fail-share` of its requests.
    Status,
    /// Refuses every connection (nothing listens on its port).
    Refuse,
}

/// Everything a comparison needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Rows, in order.
    pub algorithms: Vec<Algorithm>,
    /// The client's workload.
    pub workload: Workload,
    /// The backends (started afresh for each row).
    pub backends: Vec<BackendSpec>,
    /// The balancers' settings.
    pub balancer: BalancerOptions,
}

impl LbCompareArgs {
    /// The setup these flags describe.
    ///
    /// # Errors
    /// [`UsageError`] naming the bad flag.
    pub fn setup(&self) -> Result<Setup, UsageError> {
        let n = self.backends as usize;
        let mut backends = Vec::with_capacity(n);
        for i in 0..n {
            let role = if i + 2 == n {
                "slow"
            } else if i + 1 == n {
                "failing"
            } else {
                "ok"
            };
            let mut b = BackendSpec::new(
                &format!("{role}-{i}"),
                self.base_ms,
                self.jitter_ms,
                chring::mix(self.seed, 0x6261_636b_0000 + i as u64),
            );
            b.tail_share = self.tail_share;
            b.tail_ms = self.tail_ms;
            match role {
                "slow" => b.extra_ms = self.slow_ms,
                "failing" => match self.fail_mode {
                    FailMode::Status => b.fail_share = self.fail_share,
                    FailMode::Refuse => b.refuse = true,
                },
                _ => {}
            }
            b.validate()
                .map_err(|e| UsageError(format!("backend {e}")))?;
            backends.push(b);
        }
        let hedge_ok = self
            .hedge_after
            .strip_prefix('p')
            .unwrap_or(&self.hedge_after)
            .parse::<u32>()
            .is_ok();
        if !hedge_ok {
            return Err(UsageError(format!(
                "--hedge-after must be pNN or milliseconds, got '{}'",
                self.hedge_after
            )));
        }
        if self.algorithms.iter().any(|a| !a.is_nginx()) && self.proxy.is_none() {
            return Err(UsageError(
                "chring's algorithms need --proxy PATH (the chring-proxy binary); \
                 or pick only nginx_* with --algorithms"
                    .into(),
            ));
        }
        Ok(Setup {
            algorithms: self.algorithms.clone(),
            workload: Workload {
                requests: self.requests,
                concurrency: self.concurrency as usize,
                keys: self.keys,
                seed: self.seed,
                request_timeout: Duration::from_millis(self.timeout),
                deadline: Duration::from_secs(self.run_timeout),
            },
            backends,
            balancer: BalancerOptions {
                proxy: self.proxy.clone(),
                nginx: self.nginx.clone(),
                hedge_after: self.hedge_after.clone(),
                check_interval_ms: self.check_interval,
                timeout_ms: self.timeout,
            },
        })
    }
}

/// One backend in a row of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendRow {
    /// Its name.
    pub name: String,
    /// Answers the client got from it (`X-Backend`).
    pub answers: u64,
    /// Those as a share of all answers that named a backend.
    pub share: f64,
    /// Its own counters: requests it served (hedged duplicates included),
    /// 500s, health checks, connections.
    pub served: BackendCounts,
}

/// One row: an algorithm's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// [`Algorithm::name`].
    pub algorithm: Algorithm,
    /// `chring-proxy` or `nginx`.
    pub balancer: &'static str,
    /// The pool's `distribution:` or nginx's directive.
    pub distribution: &'static str,
    /// Seed 004's name.
    pub seed004: &'static str,
    /// Key-affine.
    pub keyed: bool,
    /// Requests sent (the workload's, unless the run hit its time limit).
    pub requests: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Not 2xx, or no answer.
    pub errors: u64,
    /// Of which: no answer at all (refused, reset, timeout).
    pub transport_errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Latency the client saw over every request, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Per backend, in the backends' order.
    pub backends: Vec<BackendRow>,
    /// Hedged requests sent (chring-proxy's `/metrics`; `None` for nginx).
    pub hedges: Option<u64>,
    /// Hedges whose answer was used (`None` when not reported).
    pub hedge_wins: Option<u64>,
    /// Key affinity: over keys, the mean share of a key's answers that came
    /// from its most frequent backend (1 = every key always on one backend).
    pub key_affinity: f64,
    /// Wall time of the run, s.
    pub seconds: f64,
    /// Requests per second.
    pub rps: f64,
}

/// The comparison: the setup and one [`Run`] per algorithm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Where it ran (`nproc`, CPU model).
    pub machine: String,
    /// Requests per algorithm.
    pub requests: u64,
    /// Client connections.
    pub concurrency: usize,
    /// Distinct keys.
    pub keys: u32,
    /// The seed.
    pub seed: u64,
    /// `hedge_after:` of the hedged row.
    pub hedge_after: String,
    /// The backends.
    pub backends: Vec<BackendSpec>,
    /// The rows, in order.
    pub runs: Vec<Run>,
}

impl Report {
    /// The row of `alg`.
    #[must_use]
    pub fn run(&self, alg: Algorithm) -> Option<&Run> {
        self.runs.iter().find(|r| r.algorithm == alg)
    }
}

impl Run {
    /// The share of answers from the backend called `name`.
    #[must_use]
    pub fn share_of(&self, name: &str) -> f64 {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .map_or(0.0, |b| b.share)
    }
}

/// The machine: cores and CPU model.
#[must_use]
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

/// The `q` quantile of sorted `v` (nearest rank), in ms.
fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1e3
}

/// chring-proxy's counter of hedged requests (per pool; summed).
pub const HEDGES_METRIC: &str = "chring_proxy_http_hedges_total";
/// chring-proxy's counter of hedges whose answer was used (per pool; summed).
pub const HEDGE_WINS_METRIC: &str = "chring_proxy_http_hedge_wins_total";

/// Summarises one run's samples.
#[must_use]
pub fn summarise(
    alg: Algorithm,
    samples: &[Sample],
    names: &[String],
    served: Vec<BackendCounts>,
    metrics: Option<&str>,
    elapsed: Duration,
) -> Run {
    let requests = samples.len() as u64;
    let ok = samples.iter().filter(|s| s.ok()).count() as u64;
    let transport_errors = samples.iter().filter(|s| s.status == 0).count() as u64;
    let mut lat: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
    lat.sort_unstable();
    let mut answers = vec![0u64; names.len()];
    let mut per_key: HashMap<u32, HashMap<usize, u64>> = HashMap::new();
    for s in samples {
        if let Some(b) = s.backend {
            if let Some(a) = answers.get_mut(b) {
                *a += 1;
            }
            *per_key.entry(s.key).or_default().entry(b).or_default() += 1;
        }
    }
    let named: u64 = answers.iter().sum();
    let key_affinity = if per_key.is_empty() {
        0.0
    } else {
        per_key
            .values()
            .map(|m| {
                let total: u64 = m.values().sum();
                m.values().copied().max().unwrap_or(0) as f64 / total as f64
            })
            .sum::<f64>()
            / per_key.len() as f64
    };
    let backends = names
        .iter()
        .zip(answers)
        .zip(served)
        .map(|((name, a), served)| BackendRow {
            name: name.clone(),
            answers: a,
            share: crate::util::ratio(a as f64, named as f64),
            served,
        })
        .collect();
    let hedges = metrics.and_then(|m| balancer::sum_metric(m, |n| n == HEDGES_METRIC));
    let hedge_wins = metrics.and_then(|m| balancer::sum_metric(m, |n| n == HEDGE_WINS_METRIC));
    let secs = elapsed.as_secs_f64();
    Run {
        algorithm: alg,
        balancer: alg.balancer(),
        distribution: alg.distribution(),
        seed004: alg.seed004(),
        keyed: alg.keyed(),
        requests,
        ok,
        errors: requests - ok,
        transport_errors,
        error_rate: crate::util::ratio((requests - ok) as f64, requests as f64),
        p50_ms: quantile_ms(&lat, 0.50),
        p99_ms: quantile_ms(&lat, 0.99),
        p999_ms: quantile_ms(&lat, 0.999),
        mean_ms: crate::util::ratio(lat.iter().sum::<u64>() as f64, lat.len() as f64) / 1e3,
        backends,
        hedges,
        hedge_wins,
        key_affinity,
        seconds: secs,
        rps: crate::util::ratio(requests as f64, secs),
    }
}

/// Runs one algorithm: fresh backends, its balancer, a warm-up until the
/// backends answer through it, the workload, the counters.
///
/// # Errors
/// The backends or the balancer could not start, or no answer came through
/// the balancer within 10 s.
pub fn run_one(alg: Algorithm, setup: &Setup) -> anyhow::Result<Run> {
    let backends = setup
        .backends
        .iter()
        .map(|s| Backend::start(s.clone()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("starting the backends")?;
    let names: Vec<String> = backends.iter().map(|b| b.spec().name.clone()).collect();
    let addrs: Vec<(String, std::net::SocketAddr)> = backends
        .iter()
        .map(|b| (b.spec().name.clone(), b.addr()))
        .collect();
    let mut lb = Balancer::start(alg, &addrs, &setup.balancer)?;
    lb.warm_up(8, Duration::from_secs(10))
        .with_context(|| format!("{alg}"))?;
    let before: Vec<BackendCounts> = backends.iter().map(Backend::counts).collect();
    let before_metrics = lb.metrics();
    let (samples, elapsed) = client::run(lb.listen, &setup.workload, &names);
    let metrics = lb.metrics();
    drop(lb);
    let served = backends
        .iter()
        .zip(&before)
        .map(|(b, s)| {
            let c = b.counts();
            BackendCounts {
                served: c.served - s.served,
                failed: c.failed - s.failed,
                health_checks: c.health_checks - s.health_checks,
                connections: c.connections - s.connections,
            }
        })
        .collect();
    let mut run = summarise(alg, &samples, &names, served, metrics.as_deref(), elapsed);
    // Hedges of the warm-up are not the run's.
    if let Some(before) = before_metrics.as_deref() {
        let b = summarise(alg, &[], &names, Vec::new(), Some(before), elapsed);
        run.hedges = run.hedges.map(|h| h.saturating_sub(b.hedges.unwrap_or(0)));
        run.hedge_wins = run
            .hedge_wins
            .map(|h| h.saturating_sub(b.hedge_wins.unwrap_or(0)));
    }
    Ok(run)
}

/// Runs every algorithm of `setup` in order; `progress` is told each finished row.
///
/// # Errors
/// The first row that failed (see [`run_one`]).
pub fn compare(setup: &Setup, progress: &mut dyn FnMut(&Run)) -> anyhow::Result<Report> {
    let mut runs = Vec::new();
    for &alg in &setup.algorithms {
        let run = run_one(alg, setup)?;
        progress(&run);
        runs.push(run);
    }
    Ok(Report {
        machine: machine(),
        requests: setup.workload.requests,
        concurrency: setup.workload.concurrency,
        keys: setup.workload.keys,
        seed: setup.workload.seed,
        hedge_after: setup.balancer.hedge_after.clone(),
        backends: setup.backends.clone(),
        runs,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The Markdown table of a report.
#[must_use]
pub fn table(r: &Report) -> String {
    let mut t = String::new();
    let names: Vec<&str> = r.backends.iter().map(|b| b.name.as_str()).collect();
    let _ = writeln!(
        t,
        "| algorithm | seed 004 | balancer | {} | p50 ms | p99 ms | p99.9 ms | errors | hedges | key affinity |",
        names.join(" | ")
    );
    let _ = writeln!(
        t,
        "| --- | --- | --- | {}---: | ---: | ---: | ---: | ---: | ---: |",
        "---: | ".repeat(names.len())
    );
    for run in &r.runs {
        let shares: Vec<String> = run.backends.iter().map(|b| pct(b.share)).collect();
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} |",
            run.algorithm,
            run.seed004,
            run.balancer,
            shares.join(" | "),
            run.p50_ms,
            run.p99_ms,
            run.p999_ms,
            pct(run.error_rate),
            run.hedges.map_or("-".into(), |h| h.to_string()),
            run.key_affinity
        );
    }
    t
}

/// A one-line description of the workload, for the table's caption.
#[must_use]
pub fn caption(r: &Report) -> String {
    let b = r.backends.first();
    let slow = r.backends.iter().find(|b| b.extra_ms > 0.0);
    let failing = r.backends.iter().find(|b| b.fail_share > 0.0 || b.refuse);
    format!(
        "{} requests per algorithm, {} connections, {} keys, seed {}; backends {} ms + U(0, {}) ms, \
         {}% of requests +{} ms{}{}; {}",
        r.requests,
        r.concurrency,
        r.keys,
        r.seed,
        b.map_or(0.0, |b| b.base_ms),
        b.map_or(0.0, |b| b.jitter_ms),
        b.map_or(0.0, |b| 100.0 * b.tail_share),
        b.map_or(0.0, |b| b.tail_ms),
        slow.map_or(String::new(), |s| format!(
            "; {} +{} ms",
            s.name, s.extra_ms
        )),
        failing.map_or(String::new(), |f| if f.refuse {
            format!("; {} refuses connections", f.name)
        } else {
            format!("; {} answers 500 to {}%", f.name, 100.0 * f.fail_share)
        }),
        r.machine
    )
}

/// Writes `results.json`, `table.md` and the chart into `out`; returns the paths.
///
/// # Errors
/// I/O errors, or no font for a PNG chart.
pub fn write_all(r: &Report, out: &Path, format: Format) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let json = out.join("results.json");
    let mut s = serde_json::to_string_pretty(r)?;
    s.push('\n');
    std::fs::write(&json, s).with_context(|| format!("writing {}", json.display()))?;
    written.push(json);
    let md = out.join("table.md");
    std::fs::write(&md, format!("{}\n\n{}", caption(r), table(r)))
        .with_context(|| format!("writing {}", md.display()))?;
    written.push(md);
    let chart = out.join(format!("lb_compare.{}", format.extension()));
    crate::plot::render(&crate::plot::LbCompareChart(r), &chart, format)?;
    written.push(chart);
    Ok(written)
}

/// `host-sim lb-compare`.
///
/// # Errors
/// [`UsageError`] for bad flags; a balancer that failed.
pub fn run(args: &LbCompareArgs) -> anyhow::Result<()> {
    let setup = args.setup()?;
    if args.format == Format::Png {
        crate::fonts::ensure_png_font()?;
    }
    let started = Instant::now();
    let report = compare(&setup, &mut |run| {
        eprintln!(
            "lb-compare: {:<18} {:>6} requests in {:>5.1} s, p99 {:>6.1} ms, errors {:>5}",
            run.algorithm.name(),
            run.requests,
            run.seconds,
            run.p99_ms,
            pct(run.error_rate)
        );
    })?;
    let written = write_all(&report, &args.out, args.format)?;
    println!("{}\n\n{}", caption(&report), table(&report));
    println!(
        "wrote {} in {:.1} s",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: u32, ms: u64, status: u16, backend: Option<usize>) -> Sample {
        Sample {
            key,
            latency_us: ms * 1000,
            status,
            backend,
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.name()), Ok(a));
        }
        assert!(
            Algorithm::parse("alpha1")
                .unwrap_err()
                .contains("p2c_hedge")
        );
    }

    #[test]
    fn summary_counts_shares_quantiles_and_affinity() {
        let names = vec!["a".to_string(), "b".to_string()];
        let mut samples = Vec::new();
        // Key 1 always on a, key 2 split 3:1 between b and a; one refused request.
        for i in 0..96 {
            samples.push(sample(1, i + 1, 200, Some(0)));
        }
        samples.extend([
            sample(2, 200, 200, Some(1)),
            sample(2, 300, 500, Some(1)),
            sample(2, 400, 200, Some(1)),
            sample(2, 500, 200, Some(0)),
            sample(3, 1000, 0, None),
        ]);
        let metrics = "chring_proxy_http_hedges_total{pool=\"p\"} 5\n\
            chring_proxy_http_hedge_wins_total{pool=\"p\"} 2\n\
            chring_proxy_http_server_hedges_total{pool=\"p\",server=\"a\"} 5\n";
        let r = summarise(
            Algorithm::P2cHedge,
            &samples,
            &names,
            vec![BackendCounts::default(); 2],
            Some(metrics),
            Duration::from_secs(2),
        );
        assert_eq!(
            (r.requests, r.ok, r.errors, r.transport_errors),
            (101, 99, 2, 1)
        );
        assert_eq!(r.backends[0].answers, 97);
        assert_eq!(r.backends[1].answers, 3);
        assert!((r.backends[0].share - 0.97).abs() < 1e-12);
        assert_eq!(r.p50_ms, 51.0);
        assert_eq!(r.p99_ms, 500.0);
        assert_eq!(r.p999_ms, 1000.0);
        assert!((r.key_affinity - (1.0 + 0.75) / 2.0).abs() < 1e-12);
        assert_eq!((r.hedges, r.hedge_wins), (Some(5), Some(2)));
        assert!((r.rps - 50.5).abs() < 1e-9);
        let nginx = summarise(
            Algorithm::NginxLeastConn,
            &samples,
            &names,
            Vec::new(),
            None,
            Duration::from_secs(1),
        );
        assert_eq!(nginx.hedges, None);
        assert_eq!(nginx.balancer, "nginx");
    }

    #[test]
    fn setup_roles_and_errors() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: LbCompareArgs,
        }
        let cli = Cli::try_parse_from(["x", "--algorithms", "nginx_least_conn"]).unwrap();
        let s = cli.a.setup().unwrap();
        let names: Vec<&str> = s.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["ok-0", "ok-1", "slow-2", "failing-3"]);
        assert_eq!(s.backends[2].extra_ms, 15.0);
        assert_eq!(s.backends[3].fail_share, 0.6);
        assert_eq!(s.backends[0].fail_share, 0.0);
        assert!(s.backends.iter().all(|b| b.tail_share == 0.03));
        // chring's algorithms need the proxy binary.
        assert!(Cli::try_parse_from(["x"]).unwrap().a.setup().is_err());
        let bad = Cli::try_parse_from(["x", "--proxy", "p", "--hedge-after", "soon"]).unwrap();
        assert!(bad.a.setup().unwrap_err().0.contains("--hedge-after"));
        let bad = Cli::try_parse_from(["x", "--proxy", "p", "--fail-share", "2"]).unwrap();
        assert!(bad.a.setup().is_err());
        assert!(Cli::try_parse_from(["x", "--algorithms", "alpha1"]).is_err());
        assert!(Cli::try_parse_from(["x", "--backends", "2"]).is_err());
    }
}
