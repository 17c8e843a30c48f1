//! The command line: `host-sim scenario ...` and `host-sim route ...`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::ConfigFormat;
use crate::plot::Format;
use crate::route::{self, KeyRouter, StrategyRouter, UsageError};
use crate::scenario::{self, ChangeArg, Scenario, ScenarioConfig};
use crate::sim::engine::{MAX_LATENCY_US, MAX_REQUESTS_PER_RUN};
use crate::sim::strategy::{SIM_MAX_SERVERS, SIM_RING_POINTS};
use crate::sim::{Arrival, IdDistribution, MAX_CACHE_CAPACITY, StrategyKind};

/// Deterministic simulator of a cache tier behind chring's strategies.
#[derive(Debug, Parser)]
#[command(name = "host-sim", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios A-D; write charts, one CSV per chart and results.json.
    Scenario(Box<ScenarioArgs>),
    /// Route keys (one per stdin line) and print `key,backend` per line.
    Route(RouteArgs),
    /// Hardware in the loop: replay a scenario through the firmware's UART
    /// protocol (in QEMU, or on a board) and check every reply.
    Hil(Box<crate::hil::HilArgs>),
}

/// Which scenarios to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// A: ring vs round robin, and a cache-capacity sweep.
    A,
    /// B: ring vs modulo across a fleet change.
    B,
    /// C: ring balance against vnodes.
    C,
    /// D: uniform vs Zipf customers on the ring.
    D,
    /// All four.
    All,
}

impl Which {
    /// The scenarios selected.
    #[must_use]
    pub fn scenarios(self) -> Vec<Scenario> {
        match self {
            Which::A => vec![Scenario::A],
            Which::B => vec![Scenario::B],
            Which::C => vec![Scenario::C],
            Which::D => vec![Scenario::D],
            Which::All => Scenario::ALL.to_vec(),
        }
    }
}

/// `host-sim scenario`. Defaults are the specification's.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub which: Which,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Chart format (PNG needs a TrueType font; see HOST_SIM_FONT).
    #[arg(long, value_enum, default_value_t = Format::Svg)]
    pub format: Format,
    /// Skip the charts (CSVs and results.json only).
    #[arg(long, hide = true)]
    pub no_charts: bool,

    /// Seed, workload, fleet and per-scenario settings.
    #[command(flatten)]
    pub flags: ScenarioFlags,
}

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
        value_enum,
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
        value_enum,
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

/// `host-sim route`.
#[derive(Debug, Args)]
#[command(
    after_help = "Keys: each stdin line is one key, its bytes without the \
    final \\n (and without a \\r just before it). Output: `key,backend` per key, in input \
    order, backend being the identity from FILE (or the server as the config writes it); \
    names with a comma are refused. A key the daemon would not hash (e.g. nginx's empty \
    key) prints as `key,` and is reported on stderr (`host-sim: key on line N not routed: \
    REASON`); routing goes on. Exit status 0 when every key was routed, 3 when some were \
    not (after every line is printed), 2 for bad arguments or input files, 1 for other \
    errors."
)]
pub struct RouteArgs {
    /// Strategy: ring, maglev, jump, rendezvous or modulo (the key-affine ones).
    #[arg(
        long,
        value_name = "NAME",
        value_parser = route::parse_route_strategy,
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub strategy: Option<StrategyKind>,
    /// Backends: one `IDENTITY [WEIGHT]` per line; blank lines and # comments
    /// are ignored. IDENTITY is the string hashed as the backend's name.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub backends: Option<PathBuf>,
    /// Ring points per unit of weight.
    #[arg(long, default_value_t = 100, conflicts_with = "config")]
    pub vnodes: u32,
    /// Route as a daemon configured by this file would: an nginx.conf (upstream
    /// with `hash ... [consistent];`), a nutcracker YAML pool, or an HAProxy .cfg
    /// (backend with `hash-type consistent`). Prints the server as the file writes
    /// it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The configuration's format (detected from the text when absent).
    #[arg(long, value_enum, requires = "config")]
    pub format: Option<ConfigFormat>,
    /// The upstream / pool / backend to use when the file has several.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub pool: Option<String>,
}

/// `--servers`, `--c-backends`: 1..=64.
fn servers() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=SIM_MAX_SERVERS as u64)
}

/// Vnode counts: 1..=32768 (the simulator ring's points).
fn vnodes() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=SIM_RING_POINTS as i64)
}

/// Cache capacities: 1..=65536.
fn capacity() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CACHE_CAPACITY as u64)
}

/// `--rate`: a finite number in (0, 10^8].
fn rate(s: &str) -> Result<f64, String> {
    let max = MAX_REQUESTS_PER_RUN as f64;
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= max => Ok(v),
        _ => Err(format!("expected requests per second in (0, {max}]")),
    }
}

/// Latency flags: ms in [0, (2^31 - 1) / 1000].
fn latency_ms(s: &str) -> Result<f64, String> {
    let max = MAX_LATENCY_US as f64 / 1e3;
    match s.parse::<f64>() {
        Ok(v) if (0.0..=max).contains(&v) => Ok(v),
        _ => Err(format!("expected milliseconds in [0, {max:.3}]")),
    }
}

fn seconds(name: &str, v: f64, allow_zero: bool) -> Result<u64, UsageError> {
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

impl ScenarioArgs {
    /// The scenario configuration these flags describe.
    ///
    /// # Errors
    /// [`UsageError`] naming the bad flag.
    pub fn config(&self) -> Result<ScenarioConfig, UsageError> {
        self.flags.config(&self.which.scenarios())
    }
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

/// A progress bar on stderr when both stdout and stderr are terminals, else
/// a hidden one.
fn progress_bar(total: u64) -> ProgressBar {
    if total == 0 || !std::io::stderr().is_terminal() || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} simulating [{bar:30}] {human_pos}/{human_len} requests, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn run_scenario(args: &ScenarioArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    if args.format == Format::Png && !args.no_charts {
        // Fail before simulating, not after.
        crate::fonts::ensure_png_font()?;
    }
    let which = args.which.scenarios();
    let started = Instant::now();
    let bar = progress_bar(cfg.expected_requests(&which));
    let report = scenario::run(&which, &cfg, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    let written = crate::export::write_all(&report, &args.out, args.format, !args.no_charts)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", crate::export::summary(&report))?;
    writeln!(
        out,
        "wrote {} files to {} in {:.2} s",
        written.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

fn run_route(args: &RouteArgs) -> anyhow::Result<()> {
    let mut router: Box<dyn KeyRouter> = match (&args.config, args.strategy, &args.backends) {
        // A configuration the readers refuse is a bad input file: status 2.
        (Some(path), _, _) => crate::config::load(path, args.format, args.pool.as_deref())
            .map_err(|e| UsageError(error_line(&e)))?,
        (None, Some(strategy), Some(backends)) => {
            let fleet = route::read_backends(backends)?;
            Box::new(StrategyRouter::new(strategy, args.vnodes, &fleet)?)
        }
        _ => {
            return Err(UsageError(
                "route needs --config FILE, or --strategy and --backends".into(),
            )
            .into());
        }
    };
    route::check_backend_names(router.as_ref())?;
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let summary = route::route_lines(router.as_mut(), stdin, stdout, std::io::stderr().lock())?;
    summary.check()?;
    Ok(())
}

/// Turns a clap error into one line (clap's own rendering spans several).
fn one_line_clap(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect();
    let joined = parts.join(" ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}

/// Parses `args` (the program name first) and runs the command.
///
/// # Errors
/// [`UsageError`] for bad arguments or input files (exit status 2);
/// [`route::UnroutedKeys`] when `route` printed every key but some were not
/// routed (exit status 3); anything else is a runtime error (exit status 1). `--help` and `--version` print and
/// return `Ok`.
pub fn run_with<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                e.print().context("printing help")?;
                return Ok(());
            }
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                e.print().context("printing help")?;
                return Err(UsageError("a subcommand is required".into()).into());
            }
            _ => return Err(UsageError(one_line_clap(&e)).into()),
        },
    };
    let result = match &cli.command {
        Command::Scenario(a) => run_scenario(a),
        Command::Route(a) => run_route(a),
        Command::Hil(a) => crate::hil::run(a),
    };
    match result {
        // A closed pipe (`host-sim route ... | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// [`run_with`] on the process's arguments.
///
/// # Errors
/// As [`run_with`].
pub fn run() -> anyhow::Result<()> {
    run_with(std::env::args_os())
}

/// The exit status for an error from [`run`]: 2 for usage errors, 3 when
/// `route` printed every key but could not route some
/// ([`route::UnroutedKeys`]), else 1.
#[must_use]
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<UsageError>()) {
        2
    } else if e.chain().any(|c| c.is::<route::UnroutedKeys>()) {
        3
    } else {
        1
    }
}

/// An error from [`run`] as one line (causes joined with `: `).
#[must_use]
pub fn error_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_spec() {
        let cli = Cli::try_parse_from(["host-sim", "scenario", "all"]).unwrap();
        let Command::Scenario(args) = cli.command else {
            panic!("not scenario")
        };
        assert_eq!(args.config().unwrap(), ScenarioConfig::default());
    }

    #[test]
    fn usage_errors_are_one_line() {
        for argv in [
            &["host-sim", "scenario", "e"][..],
            &[
                "host-sim",
                "route",
                "--strategy",
                "round_robin",
                "--backends",
                "x",
            ],
            &["host-sim", "route", "--strategy", "nope", "--backends", "x"],
            &["host-sim", "scenario", "a", "--rate", "-1"],
            &["host-sim", "scenario", "a", "--servers", "0"],
            &["host-sim", "frobnicate"],
        ] {
            let e = run_with(argv).unwrap_err();
            assert_eq!(exit_code(&e), 2, "{argv:?}");
            let line = error_line(&e);
            assert!(!line.contains('\n') && !line.is_empty(), "{line}");
        }
    }
}
