//! The command line: `host-sim scenario ...` and `host-sim route ...`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

pub use crate::args::ScenarioFlags;
use crate::config::ConfigFormat;
use crate::plot::Format;
use crate::route::{self, KeyRouter, StrategyRouter, UsageError};
use crate::scenario::{self, Scenario, ScenarioConfig};
use crate::sim::StrategyKind;

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
    /// Seed 004's comparison of load-balancing algorithms, live: the same
    /// workload through chring-proxy's HTTP pool (and nginx) once per algorithm.
    LbCompare(Box<crate::lbcompare::LbCompareArgs>),
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
    /// with `hash ... [consistent];` or `ip_hash;`), a nutcracker YAML pool, an
    /// HAProxy .cfg (backend with a hashing `balance`, consistent or map-based),
    /// or a libmemcached configuration string (`--SERVER=...`). Prints the server
    /// as the file writes it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The configuration's format (detected from the text when absent).
    #[arg(
        long,
        requires = "config",
        value_parser = clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(ConfigFormat::NAMES),
            |s| s.parse::<ConfigFormat>()
        )
    )]
    pub format: Option<ConfigFormat>,
    /// The upstream / pool / backend to use when the file has several.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub pool: Option<String>,
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
        Command::LbCompare(a) => crate::lbcompare::run(a),
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
