//! The command line: nutcracker 0.5.0's options, spelled and checked as its
//! `nc_get_options` (getopt_long with `hVtdDv:o:c:s:i:a:p:m:`) does, plus
//! chring-proxy's own long options `--control`, `--admin`, `--token-file`
//! (and `--config`, the alias of `--conf-file`) and `--threads`.
//!
//! Short options may be grouped (`-dt`) and take their value attached (`-v7`)
//! or as the next argument (`-v 7`); long ones take `--opt=value` or
//! `--opt value`; `--` ends the options. Any other argument is an error, as
//! nutcracker has no positional arguments.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// nutcracker's default configuration file (`NC_CONF_PATH`).
pub const DEFAULT_CONF: &str = "conf/nutcracker.yml";
/// nutcracker's default stats port (`STATS_PORT`).
pub const DEFAULT_STATS_PORT: u16 = 22222;
/// nutcracker's default stats aggregation interval in ms (`STATS_INTERVAL`).
pub const DEFAULT_STATS_INTERVAL_MS: u64 = 30_000;
/// nutcracker's default mbuf chunk size (`MBUF_SIZE`).
pub const DEFAULT_MBUF_SIZE: usize = 16_384;
/// nutcracker's smallest mbuf chunk (`MBUF_MIN_SIZE`).
pub const MBUF_MIN_SIZE: usize = 512;
/// nutcracker's largest mbuf chunk (`MBUF_MAX_SIZE`).
pub const MBUF_MAX_SIZE: usize = 16_777_216;
/// Stats address without a token: loopback (nutcracker's is `0.0.0.0`).
pub const DEFAULT_STATS_ADDR: &str = "127.0.0.1";
/// Stats address when a token is configured: nutcracker's `STATS_ADDR`.
pub const DEFAULT_STATS_ADDR_WITH_TOKEN: &str = "0.0.0.0";

/// Everything the command line sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `-h`: version and usage, exit 0.
    pub help: bool,
    /// `-V`: version, exit 0.
    pub version: bool,
    /// `-t`: check the configuration file, exit 0 or 1.
    pub test_conf: bool,
    /// `-d`: run as a daemon.
    pub daemonize: bool,
    /// `-D`: version and the stats fields, exit 0.
    pub describe_stats: bool,
    /// `-v N`: nutcracker log level (any N ≥ 0; above 11 means 11).
    pub verbosity: u8,
    /// `-o FILE`: log file (default stderr).
    pub output: Option<PathBuf>,
    /// `-c FILE`.
    pub conf_file: PathBuf,
    /// `-s N`.
    pub stats_port: u16,
    /// `-a ADDR`, if given (the default depends on the token: see
    /// [`Args::stats_addr`]).
    pub stats_addr: Option<String>,
    /// `-i MS`: stats aggregation interval; 0 aggregates on every request.
    pub stats_interval_ms: u64,
    /// `-p FILE`.
    pub pid_file: Option<PathBuf>,
    /// `-m N`: accepted and checked as nutcracker checks it; chring-proxy's
    /// buffers are sized per request, so it changes nothing else.
    pub mbuf_size: usize,
    /// `--control ADDR`.
    pub control: Option<SocketAddr>,
    /// `--admin ADDR`.
    pub admin: Option<SocketAddr>,
    /// `--token-file FILE`: the token that the control port (`AUTH`), admin
    /// HTTP (`Authorization: Bearer`) require, and that lets them and the
    /// stats port bind outside loopback.
    pub token_file: Option<PathBuf>,
    /// `--threads N`: event-loop threads (each a current-thread runtime with
    /// its own clients and server connections); `None` = one per available
    /// core ([`Args::threads`]).
    pub threads: Option<usize>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            help: false,
            version: false,
            test_conf: false,
            daemonize: false,
            describe_stats: false,
            verbosity: crate::log::LEVEL_DEFAULT,
            output: None,
            conf_file: PathBuf::from(DEFAULT_CONF),
            stats_port: DEFAULT_STATS_PORT,
            stats_addr: None,
            stats_interval_ms: DEFAULT_STATS_INTERVAL_MS,
            pid_file: None,
            mbuf_size: DEFAULT_MBUF_SIZE,
            control: None,
            admin: None,
            token_file: None,
            threads: None,
        }
    }
}

/// Most `--threads`.
pub const MAX_THREADS: usize = 256;

impl Args {
    /// The event-loop threads to run: `--threads`, else one per available
    /// core (`std::thread::available_parallelism`, 1 when unknown), at most
    /// [`MAX_THREADS`].
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .clamp(1, MAX_THREADS)
    }

    /// The stats address: `-a` if given, else loopback, or nutcracker's
    /// `0.0.0.0` when a token is configured.
    #[must_use]
    pub fn stats_addr(&self, has_token: bool) -> &str {
        match &self.stats_addr {
            Some(a) => a,
            None if has_token => DEFAULT_STATS_ADDR_WITH_TOKEN,
            None => DEFAULT_STATS_ADDR,
        }
    }
}

/// Why the command line was refused; `Display` is nutcracker's message where
/// nutcracker has one (without its `nutcracker: ` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// An option that does not exist.
    Invalid(String),
    /// An option that takes no value was given one (`--help=x`).
    NoValueAllowed(String),
    /// A file-name option without its value.
    NeedsFile(String),
    /// A number option without a number.
    NeedsNumber(String),
    /// A string option without its value.
    NeedsString(String),
    /// An address option without its value or with one that is not
    /// `host:port`.
    NeedsAddress(String),
    /// `-s` out of 1..=65535.
    BadPort(u64),
    /// `-m 0` or not a number.
    NeedsNonZero,
    /// `-m` out of range.
    MbufRange,
    /// A positional argument.
    Unexpected(String),
    /// `--threads` out of 1..=[`MAX_THREADS`].
    ThreadsRange,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Invalid(o) if o.starts_with("--") => write!(f, "unrecognized option '{o}'"),
            CliError::Invalid(o) => write!(f, "invalid option -- '{o}'"),
            CliError::NoValueAllowed(o) => write!(f, "option '{o}' doesn't allow an argument"),
            CliError::NeedsFile(o) => write!(f, "option {o} requires a file name"),
            CliError::NeedsNumber(o) => write!(f, "option {o} requires a number"),
            CliError::NeedsString(o) => write!(f, "option {o} requires a string"),
            CliError::NeedsAddress(o) => write!(f, "option {o} requires an address (host:port)"),
            CliError::BadPort(v) => write!(f, "option -s value {v} is not a valid port"),
            CliError::NeedsNonZero => f.write_str("option -m requires a non-zero number"),
            CliError::MbufRange => write!(
                f,
                "mbuf chunk size must be between {MBUF_MIN_SIZE} and {MBUF_MAX_SIZE} bytes"
            ),
            CliError::Unexpected(a) => write!(f, "unexpected argument '{a}'"),
            CliError::ThreadsRange => {
                write!(f, "option --threads must be between 1 and {MAX_THREADS}")
            }
        }
    }
}

impl std::error::Error for CliError {}

/// nutcracker's `nc_atoi`: decimal digits only, else `None`; values past
/// `i32::MAX` are refused too (nutcracker's `int` would wrap).
fn atoi(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&v| v <= i32::MAX as u64)
}

fn address(opt: &str, v: &str) -> Result<SocketAddr, CliError> {
    v.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::NeedsAddress(opt.to_owned()))
}

/// The options that take a value, by short letter (`None` for long-only).
const LONG: [(&str, Option<char>, bool); 18] = [
    ("help", Some('h'), false),
    ("version", Some('V'), false),
    ("test-conf", Some('t'), false),
    ("daemonize", Some('d'), false),
    ("describe-stats", Some('D'), false),
    ("verbose", Some('v'), true),
    ("output", Some('o'), true),
    ("conf-file", Some('c'), true),
    ("config", Some('c'), true),
    ("stats-port", Some('s'), true),
    ("stats-interval", Some('i'), true),
    ("stats-addr", Some('a'), true),
    ("pid-file", Some('p'), true),
    ("mbuf-size", Some('m'), true),
    ("control", None, true),
    ("admin", None, true),
    ("token-file", None, true),
    ("threads", None, true),
];

fn takes_value(c: char) -> bool {
    "vocsiapm".contains(c)
}

/// One option with its value, whatever its spelling.
fn apply(args: &mut Args, key: &str, display: &str, value: Option<&str>) -> Result<(), CliError> {
    fn need(v: Option<&str>) -> Option<&str> {
        v.filter(|v| !v.is_empty())
    }
    match key {
        "h" | "?" => {
            args.help = true;
            args.version = true;
        }
        "V" => args.version = true,
        "t" => args.test_conf = true,
        "d" => args.daemonize = true,
        "D" => {
            args.describe_stats = true;
            args.version = true;
        }
        "v" => {
            let v = need(value)
                .and_then(atoi)
                .ok_or_else(|| CliError::NeedsNumber("-v".into()))?;
            args.verbosity = u8::try_from(v.min(u64::from(crate::log::LEVEL_MAX))).unwrap_or(0);
        }
        "o" => {
            args.output = Some(
                need(value)
                    .ok_or_else(|| CliError::NeedsFile("-o".into()))?
                    .into(),
            );
        }
        "c" => {
            args.conf_file = need(value)
                .ok_or_else(|| CliError::NeedsFile("-c".into()))?
                .into();
        }
        "p" => {
            args.pid_file = Some(
                need(value)
                    .ok_or_else(|| CliError::NeedsFile("-p".into()))?
                    .into(),
            );
        }
        "s" => {
            let v = need(value)
                .and_then(atoi)
                .ok_or_else(|| CliError::NeedsNumber("-s".into()))?;
            args.stats_port = u16::try_from(v)
                .ok()
                .filter(|&p| p > 0)
                .ok_or(CliError::BadPort(v))?;
        }
        "i" => {
            args.stats_interval_ms = need(value)
                .and_then(atoi)
                .ok_or_else(|| CliError::NeedsNumber("-i".into()))?;
        }
        "a" => {
            args.stats_addr = Some(
                need(value)
                    .ok_or_else(|| CliError::NeedsString("-a".into()))?
                    .to_owned(),
            );
        }
        "m" => {
            let v = need(value)
                .and_then(atoi)
                .filter(|&v| v > 0)
                .ok_or(CliError::NeedsNonZero)?;
            let v = usize::try_from(v).map_err(|_| CliError::MbufRange)?;
            if !(MBUF_MIN_SIZE..=MBUF_MAX_SIZE).contains(&v) {
                return Err(CliError::MbufRange);
            }
            args.mbuf_size = v;
        }
        "control" => {
            args.control = Some(address(
                "--control",
                need(value).ok_or_else(|| CliError::NeedsAddress("--control".into()))?,
            )?);
        }
        "admin" => {
            args.admin = Some(address(
                "--admin",
                need(value).ok_or_else(|| CliError::NeedsAddress("--admin".into()))?,
            )?);
        }
        "token-file" => {
            args.token_file = Some(
                need(value)
                    .ok_or_else(|| CliError::NeedsFile("--token-file".into()))?
                    .into(),
            );
        }
        "threads" => {
            let v = need(value)
                .and_then(atoi)
                .ok_or_else(|| CliError::NeedsNumber("--threads".into()))?;
            args.threads = Some(
                usize::try_from(v)
                    .ok()
                    .filter(|v| (1..=MAX_THREADS).contains(v))
                    .ok_or(CliError::ThreadsRange)?,
            );
        }
        _ => return Err(CliError::Invalid(display.to_owned())),
    }
    Ok(())
}

/// Parses the arguments after the program name.
///
/// # Errors
/// [`CliError`], with nutcracker's wording where it has one.
pub fn parse<I, S>(argv: I) -> Result<Args, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
    let mut args = Args::default();
    let mut i = 0;
    while let Some(arg) = argv.get(i) {
        i += 1;
        if arg == "--" {
            if let Some(extra) = argv.get(i) {
                return Err(CliError::Unexpected(extra.clone()));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(&(_, short, has_value)) = LONG.iter().find(|(n, _, _)| *n == name) else {
                return Err(CliError::Invalid(format!("--{name}")));
            };
            let key = short.map_or_else(|| name.to_owned(), String::from);
            if !has_value {
                if inline.is_some() {
                    return Err(CliError::NoValueAllowed(format!("--{name}")));
                }
                apply(&mut args, &key, arg, None)?;
                continue;
            }
            let value = match inline {
                Some(v) => Some(v.to_owned()),
                None => {
                    let v = argv.get(i).cloned();
                    i += 1;
                    v
                }
            };
            apply(&mut args, &key, arg, value.as_deref())?;
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                if !"hVtdD?vocsiapm".contains(c) {
                    return Err(CliError::Invalid(c.to_string()));
                }
                if takes_value(c) {
                    let rest = &shorts[at + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = argv.get(i).cloned();
                        i += 1;
                        v
                    } else {
                        Some(rest.to_owned())
                    };
                    apply(&mut args, &c.to_string(), arg, value.as_deref())?;
                    break;
                }
                apply(&mut args, &c.to_string(), arg, None)?;
            }
        } else {
            return Err(CliError::Unexpected(arg.clone()));
        }
    }
    Ok(args)
}

/// `This is chring-proxy-X.Y.Z` and the event backend, as `nutcracker -V`
/// prints them (to stderr), with the blank line after.
#[must_use]
pub fn version_text() -> String {
    format!(
        "This is chring-proxy-{}\nasync event backend: tokio\n\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The usage text, nutcracker's with chring-proxy's defaults and options.
#[must_use]
pub fn usage_text() -> String {
    format!(
        "\
Usage: chring-proxy [-?hVdDt] [-v verbosity level] [-o output file]
                    [-c conf file] [-s stats port] [-a stats addr]
                    [-i stats interval] [-p pid file] [-m mbuf size]
                    [--control addr] [--admin addr] [--token-file file]
                    [--threads N]

Options:
  -h, --help             : this help
  -V, --version          : show version and exit
  -t, --test-conf        : test configuration for syntax errors and exit
  -d, --daemonize        : run as a daemon
  -D, --describe-stats   : print stats description and exit
  -v, --verbose=N        : set logging level (default: {lvl}, min: {min}, max: {max})
  -o, --output=S         : set logging file (default: stderr)
  -c, --conf-file=S      : set configuration file (default: {conf}; also --config)
  -s, --stats-port=N     : set stats monitoring port (default: {port})
  -a, --stats-addr=S     : set stats monitoring ip (default: {sa}; {sat} with a token)
  -i, --stats-interval=N : set stats aggregation interval in msec (default: {iv} msec)
  -p, --pid-file=S       : set pid file (default: off)
  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: {mb} bytes; accepted, unused)
      --control=S        : serve the control line protocol on host:port S (default: off)
      --admin=S          : serve admin HTTP (/metrics, /api) on host:port S (default: off)
      --token-file=S     : token required by control and admin; allows non-loopback binds
      --threads=N        : event-loop threads, each with its own clients and server
                           connections (default: one per core, here {cores})
",
        lvl = crate::log::LEVEL_DEFAULT,
        min = crate::log::LEVEL_MIN,
        max = crate::log::LEVEL_MAX,
        conf = DEFAULT_CONF,
        port = DEFAULT_STATS_PORT,
        sa = DEFAULT_STATS_ADDR,
        sat = DEFAULT_STATS_ADDR_WITH_TOKEN,
        iv = DEFAULT_STATS_INTERVAL_MS,
        mb = DEFAULT_MBUF_SIZE,
        cores = Args::default().threads(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Args, CliError> {
        parse(a.iter().copied())
    }

    #[test]
    fn defaults_are_nutcrackers() {
        let a = p(&[]).unwrap();
        assert_eq!(a.conf_file, PathBuf::from("conf/nutcracker.yml"));
        assert_eq!(a.stats_port, 22222);
        assert_eq!(a.stats_interval_ms, 30_000);
        assert_eq!(a.verbosity, 5);
        assert_eq!(a.mbuf_size, 16_384);
        assert_eq!(a.stats_addr(false), "127.0.0.1");
        assert_eq!(a.stats_addr(true), "0.0.0.0");
        assert_eq!(a.threads, None);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(a.threads(), cores.min(MAX_THREADS));
    }

    #[test]
    fn threads_option() {
        assert_eq!(p(&["--threads", "1"]).unwrap().threads(), 1);
        assert_eq!(p(&["--threads=3"]).unwrap().threads, Some(3));
        assert_eq!(p(&["--threads=256"]).unwrap().threads(), 256);
        let e = |a: &[&str]| p(a).unwrap_err().to_string();
        assert_eq!(
            e(&["--threads", "0"]),
            "option --threads must be between 1 and 256"
        );
        assert_eq!(
            e(&["--threads=257"]),
            "option --threads must be between 1 and 256"
        );
        assert_eq!(e(&["--threads", "x"]), "option --threads requires a number");
        assert_eq!(e(&["--threads"]), "option --threads requires a number");
    }

    #[test]
    fn every_spelling_of_every_option() {
        let a = p(&[
            "-dt",
            "-v7",
            "-o",
            "log",
            "--conf-file=x.yml",
            "-s",
            "2000",
            "--stats-addr",
            "::1",
            "-i0",
            "--pid-file=pid",
            "-m",
            "512",
            "--control",
            "127.0.0.1:1",
            "--admin=127.0.0.1:2",
            "--token-file",
            "tok",
        ])
        .unwrap();
        assert!(a.daemonize && a.test_conf && !a.help && !a.version);
        assert_eq!(a.verbosity, 7);
        assert_eq!(a.output, Some(PathBuf::from("log")));
        assert_eq!(a.conf_file, PathBuf::from("x.yml"));
        assert_eq!(a.stats_port, 2000);
        assert_eq!(a.stats_addr(false), "::1");
        assert_eq!(a.stats_interval_ms, 0);
        assert_eq!(a.pid_file, Some(PathBuf::from("pid")));
        assert_eq!(a.mbuf_size, 512);
        assert_eq!(a.control, Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(a.admin, Some("127.0.0.1:2".parse().unwrap()));
        assert_eq!(a.token_file, Some(PathBuf::from("tok")));
        assert_eq!(
            p(&["--config", "y.yml"]).unwrap().conf_file,
            PathBuf::from("y.yml")
        );
        assert_eq!(p(&["--verbose=99"]).unwrap().verbosity, 11);
        let d = p(&["-D"]).unwrap();
        assert!(d.describe_stats && d.version);
        let h = p(&["--help"]).unwrap();
        assert!(h.help && h.version);
    }

    #[test]
    fn bad_options_get_nutcrackers_messages() {
        let e = |a: &[&str]| p(a).unwrap_err().to_string();
        assert_eq!(e(&["-x"]), "invalid option -- 'x'");
        assert_eq!(e(&["--bogus"]), "unrecognized option '--bogus'");
        assert_eq!(e(&["-s", "abc"]), "option -s requires a number");
        assert_eq!(
            e(&["-s", "70000"]),
            "option -s value 70000 is not a valid port"
        );
        assert_eq!(e(&["-s", "0"]), "option -s value 0 is not a valid port");
        assert_eq!(e(&["-v", "-1"]), "option -v requires a number");
        assert_eq!(e(&["-i"]), "option -i requires a number");
        assert_eq!(e(&["-c"]), "option -c requires a file name");
        assert_eq!(e(&["-a"]), "option -a requires a string");
        assert_eq!(e(&["-m", "0"]), "option -m requires a non-zero number");
        assert_eq!(
            e(&["-m", "100"]),
            "mbuf chunk size must be between 512 and 16777216 bytes"
        );
        assert_eq!(
            e(&["--control", "nope"]),
            "option --control requires an address (host:port)"
        );
        assert_eq!(
            e(&["--help=1"]),
            "option '--help' doesn't allow an argument"
        );
        assert_eq!(e(&["conf.yml"]), "unexpected argument 'conf.yml'");
    }
}
