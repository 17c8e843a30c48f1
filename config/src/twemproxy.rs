//! nutcracker (twemproxy) YAML configurations, read as nutcracker reads them.
//!
//! [`parse_pools`] reads every pool of a file into a [`PoolConfig`] with all of
//! nutcracker 0.5's directives and its defaults (`listen`, `hash`, `hash_tag`,
//! `distribution`, `timeout`, `backlog`, `client_connections`, `redis`,
//! `redis_auth`, `redis_db`, `preconnect`, `auto_eject_hosts`,
//! `server_connections`, `server_retry_timeout`, `server_failure_limit`,
//! `tcpkeepalive`, `reuseport`, `servers`), plus chring-proxy's own
//! `distribution` values (`ring`, `maglev`, `jump`, `rendezvous`, `bounded`).
//! Every error names the line of the directive or value at fault: an unknown
//! directive, a value of the wrong kind, a duplicate directive, a bad server.
//! chring-proxy builds its pools from these.
//!
//! [`router`] / [`parse`] (`host-sim route --config`) use the same reader and
//! route one pool: `distribution: ketama` exactly as
//! [`chring::compat::twemproxy::Ketama`] does, `modula` as
//! [`chring::compat::twemproxy::Modula`]; `random` (unkeyed), chring-proxy's
//! own distributions and `auto_eject_hosts: true` (it reroutes keys on run-time
//! failures, which a configuration cannot predict) are errors there. Each key
//! is printed with its server's name, or `host:port` when unnamed.
//!
//! Hostile input stays bounded: the text is at most
//! [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES), and a first pass over
//! the YAML event stream refuses anchors and aliases (as nutcracker does; an
//! alias bomb would otherwise expand exponentially) and nesting deeper than
//! [`MAX_DEPTH`], naming the line. The tree is built from the same event
//! stream without recursion.

use anyhow::{Context, anyhow, bail};
use chring::compat::twemproxy::{Ketama, KeyHash, Modula, ServerLine, server_order};
use yaml_rust2::parser::{Event, Parser};

use crate::KeyRouter;
use crate::on_big_stack;
use crate::{LimitError, check_size};

/// Most servers a pool may have here.
pub const MAX_SERVERS: usize = 1024;
/// Longest server identity accepted (twemproxy cuts the MD5 input at 272 bytes).
pub const MAX_NAME: usize = 272;
/// Points for the fullest pool: never more than 160 per server.
const MAX_POINTS: usize = 160 * MAX_SERVERS;
/// Most modula slots (the total weight of a `modula` pool).
pub const MAX_MODULA_SLOTS: usize = 64 * 1024;

/// Deepest YAML nesting accepted: nutcracker's files need 3 (pools, a pool's
/// directives, its `servers` list); the margin leaves room for values a future
/// directive might nest.
pub const MAX_DEPTH: usize = 16;

type KetamaPool = Ketama<MAX_SERVERS, MAX_POINTS, MAX_NAME>;
type ModulaPool = Modula<MAX_SERVERS, MAX_MODULA_SLOTS, MAX_NAME>;

/// nutcracker's default `backlog:`.
pub const DEFAULT_BACKLOG: u32 = 512;
/// nutcracker's default `server_connections:`.
pub const DEFAULT_SERVER_CONNECTIONS: u32 = 1;
/// nutcracker's default `server_retry_timeout:` (ms).
pub const DEFAULT_SERVER_RETRY_TIMEOUT_MS: u64 = 30_000;
/// nutcracker's default `server_failure_limit:`.
pub const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;

/// How a pool places keys (`distribution:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// nutcracker's default: libmemcached's ketama continuum.
    Ketama,
    /// `hash % total weight` over one slot per unit of weight.
    Modula,
    /// Unkeyed: a random live server for every request.
    Random,
    /// chring's consistent-hash ring (virtual nodes, xxh3 points).
    Ring,
    /// chring's Maglev lookup table.
    Maglev,
    /// Jump consistent hash (servers as buckets, in order).
    Jump,
    /// Rendezvous (highest random weight) hashing.
    Rendezvous,
    /// chring's ring with bounded loads (a server at its capacity of requests in
    /// flight passes keys to its successor).
    Bounded,
    /// Unkeyed: smooth weighted round robin (nginx's).
    RoundRobin,
    /// Unkeyed: the less loaded of two random servers (power of two choices).
    P2c,
    /// Unkeyed: weighted least connections (fewest requests or connections in
    /// flight per unit of weight; nginx's tie-break).
    LeastConn,
    /// Unkeyed: peak EWMA of response time times load (Finagle's and Linkerd's
    /// "response time" balancer).
    PeakEwma,
    /// Unkeyed: a health score folding errors and latency together, so a
    /// failing server is deprioritised before it is ejected.
    HealthScore,
}

impl Distribution {
    /// Every value, as written in the file.
    pub const NAMES: [&'static str; 13] = [
        "ketama",
        "modula",
        "random",
        "ring",
        "maglev",
        "jump",
        "rendezvous",
        "bounded",
        "round_robin",
        "p2c",
        "least_conn",
        "peak_ewma",
        "health_score",
    ];
    const ALL: [Distribution; 13] = [
        Self::Ketama,
        Self::Modula,
        Self::Random,
        Self::Ring,
        Self::Maglev,
        Self::Jump,
        Self::Rendezvous,
        Self::Bounded,
        Self::RoundRobin,
        Self::P2c,
        Self::LeastConn,
        Self::PeakEwma,
        Self::HealthScore,
    ];

    /// Its name in the file.
    #[must_use]
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|&d| d == self).unwrap_or(0);
        Self::NAMES.get(i).copied().unwrap_or("ketama")
    }

    /// The value named `s`, if any.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|&n| n == s)
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// `true` for the distributions nutcracker itself has.
    #[must_use]
    pub fn is_nutcracker(self) -> bool {
        matches!(self, Self::Ketama | Self::Modula | Self::Random)
    }

    /// `true` when a key decides the server (`false` for `random` and the
    /// load-aware balancers, which pick per request or connection).
    #[must_use]
    pub fn is_keyed(self) -> bool {
        !matches!(
            self,
            Self::Random
                | Self::RoundRobin
                | Self::P2c
                | Self::LeastConn
                | Self::PeakEwma
                | Self::HealthScore
        )
    }
}

/// Default `check_interval:` of tcp/http pools (ms).
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 2_000;
/// Default `check_timeout:` of tcp/http pools (ms).
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 1_000;
/// Default `rise:` (consecutive passed checks that bring a server back).
pub const DEFAULT_RISE: u32 = 2;
/// Default `fall:` (consecutive failed checks that take a server down).
pub const DEFAULT_FALL: u32 = 3;
/// Default `check_path:` of http pools.
pub const DEFAULT_CHECK_PATH: &str = "/health";
/// Default `retries:` of tcp/http pools (more servers tried after a connect failure).
pub const DEFAULT_RETRIES: u32 = 2;
/// Default `hedge_budget:` of http pools: hedges add at most 10% of requests.
pub const DEFAULT_HEDGE_BUDGET: u32 = 10;

/// What a pool carries (`mode:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No `mode:`: the memcached / Redis sharding proxy (nutcracker's pools).
    #[default]
    Cache,
    /// `mode: tcp`: whole TCP connections forwarded to the chosen server.
    Tcp,
    /// `mode: http`: HTTP/1.1 requests forwarded to the chosen server.
    Http,
}

impl Mode {
    /// `cache`, `tcp` or `http`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Tcp => "tcp",
            Self::Http => "http",
        }
    }
}

/// What an http pool hashes to place a request (`hash_key:`); tcp pools key
/// by [`HashKey::Source`] only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashKey {
    /// `uri`: the path with its query (the default).
    #[default]
    Uri,
    /// `path`: the path without the query.
    Path,
    /// `header:NAME`: the value of request header NAME (case-insensitive).
    Header(String),
    /// `param:NAME`: the value of query parameter NAME.
    Param(String),
    /// `cookie:NAME`: the value of cookie NAME.
    Cookie(String),
    /// `source`: the client's IP address (port excluded).
    Source,
}

impl HashKey {
    /// Reads a `hash_key:` value.
    ///
    /// # Errors
    /// An unknown kind, or a missing or malformed NAME, as one line (without
    /// the line number).
    pub fn parse(s: &str) -> Result<HashKey, String> {
        let named = |kind: &str, n: &str| -> Result<String, String> {
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b";,=\"\\".contains(&b))
            {
                return Err(format!(
                    "'{s}': {kind}:NAME needs a NAME of visible characters without ;,=\"\\"
                ));
            }
            Ok(n.to_string())
        };
        match s {
            "uri" => Ok(Self::Uri),
            "path" => Ok(Self::Path),
            "source" => Ok(Self::Source),
            _ => match s.split_once(':') {
                Some(("header", n)) => named("header", n).map(Self::Header),
                Some(("param", n)) => named("param", n).map(Self::Param),
                Some(("cookie", n)) => named("cookie", n).map(Self::Cookie),
                _ => Err(format!(
                    "unknown '{s}' (uri, path, header:NAME, param:NAME, cookie:NAME, source)"
                )),
            },
        }
    }
}

impl std::fmt::Display for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uri => f.write_str("uri"),
            Self::Path => f.write_str("path"),
            Self::Header(n) => write!(f, "header:{n}"),
            Self::Param(n) => write!(f, "param:{n}"),
            Self::Cookie(n) => write!(f, "cookie:{n}"),
            Self::Source => f.write_str("source"),
        }
    }
}

/// When an http pool sends a second (hedged) request (`hedge_after:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// `pNN`: after the pool's NN-th latency percentile (1..=99).
    Percentile(u8),
    /// `MS`: after a fixed time in ms (>= 1).
    Ms(u64),
}

impl HedgeAfter {
    /// Reads a `hedge_after:` value.
    ///
    /// # Errors
    /// Anything but `p1`..`p99` or a positive number of ms, as one line.
    pub fn parse(s: &str) -> Result<HedgeAfter, String> {
        if let Some(p) = s.strip_prefix('p') {
            return match p.parse::<u8>() {
                Ok(n @ 1..=99) if !p.starts_with('+') => Ok(Self::Percentile(n)),
                _ => Err(format!("'{s}': a percentile is p1 .. p99")),
            };
        }
        match s.parse::<u64>() {
            Ok(ms) if ms > 0 && !s.starts_with('+') => Ok(Self::Ms(ms)),
            _ => Err(format!(
                "'{s}' must be a percentile (p95) or a positive number of ms"
            )),
        }
    }
}

impl std::fmt::Display for HedgeAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percentile(n) => write!(f, "p{n}"),
            Self::Ms(ms) => write!(f, "{ms}"),
        }
    }
}

/// Reads the escapes of `check_send:` / `check_expect:`: `\r`, `\n`, `\t`,
/// `\0`, `\\` and `\xHH`; every other byte stands for itself.
///
/// # Errors
/// An unknown escape, a `\x` without two hex digits, or a trailing `\`.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = b.get(i) else {
            return Err("a trailing '\\' escapes nothing".into());
        };
        i += 1;
        out.push(match e {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'x' => {
                let hex = b.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(v) =
                    v.filter(|_| hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())))
                else {
                    return Err("'\\x' needs two hex digits".into());
                };
                i += 2;
                v
            }
            other => {
                return Err(format!(
                    "unknown escape '\\{}' (\\r \\n \\t \\0 \\\\ \\xHH)",
                    char::from(other).escape_default()
                ));
            }
        });
    }
    Ok(out)
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `host:port` (or `/path`) as written.
    pub addr: String,
    /// Its weight (>= 1).
    pub weight: u32,
    /// The optional name after the weight.
    pub name: Option<String>,
    /// What ketama hashes (see [`ServerLine::identity`]).
    pub identity: Vec<u8>,
    /// How a user names it: the name, else `host:port`.
    pub label: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// One nutcracker pool, with nutcracker's defaults for what the file leaves
/// out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool's name (its key at the top level).
    pub name: String,
    /// 1-based line of the name.
    pub line: usize,
    /// `listen:` (`host:port` or `/path/to/socket`); no default.
    pub listen: String,
    /// `hash:` (default `fnv1a_64`).
    pub hash: KeyHash,
    /// `hash_tag:` (two characters), none by default.
    pub hash_tag: Option<[u8; 2]>,
    /// `distribution:` (default `ketama`).
    pub distribution: Distribution,
    /// `timeout:` in ms; `None` (nutcracker's default) waits forever.
    pub timeout_ms: Option<u64>,
    /// `backlog:` (default 512).
    pub backlog: u32,
    /// `client_connections:` (default 0: unlimited).
    pub client_connections: u32,
    /// `redis:` (default false: memcached ASCII).
    pub redis: bool,
    /// `redis_auth:` (none by default).
    pub redis_auth: Option<String>,
    /// `redis_db:` (default 0).
    pub redis_db: u32,
    /// `preconnect:` (default false).
    pub preconnect: bool,
    /// `auto_eject_hosts:` (default false).
    pub auto_eject_hosts: bool,
    /// `server_connections:` (default 1).
    pub server_connections: u32,
    /// `server_retry_timeout:` in ms (default 30,000).
    pub server_retry_timeout_ms: u64,
    /// `server_failure_limit:` (default 2).
    pub server_failure_limit: u32,
    /// `tcpkeepalive:` (default false).
    pub tcpkeepalive: bool,
    /// `reuseport:` (default false).
    pub reuseport: bool,
    /// `servers:`, in file order.
    pub servers: Vec<ServerConfig>,
    /// `mode:` (absent: [`Mode::Cache`]). Directives that mean nothing in a
    /// mode are refused, naming their line: `redis`, `redis_auth`,
    /// `redis_db`, `server_connections`, `hash_tag`, `preconnect`,
    /// `auto_eject_hosts`, `server_retry_timeout`, `server_failure_limit` in
    /// tcp/http pools; the ones below in cache pools (and `check_path`,
    /// `hedge_after` in tcp pools, `check_send`, `check_expect` in http ones).
    pub mode: Mode,
    /// `hash_key:` (http; default `uri`). tcp pools: always
    /// [`HashKey::Source`] (the only value they accept).
    pub hash_key: HashKey,
    /// `check_interval:` in ms (default 2000; 0 = no active checks).
    pub check_interval_ms: u64,
    /// `check_timeout:` in ms (default 1000, >= 1).
    pub check_timeout_ms: u64,
    /// `rise:`: consecutive passed checks that bring a down server back
    /// (default 2, >= 1).
    pub rise: u32,
    /// `fall:`: consecutive failed checks that take a server down (default 3,
    /// >= 1).
    pub fall: u32,
    /// `check_path:` (http; default `/health`): `GET` it, 2xx or 3xx passes.
    pub check_path: String,
    /// `check_send:` (tcp; escapes read): bytes sent after the connect.
    pub check_send: Option<Vec<u8>>,
    /// `check_expect:` (tcp; escapes read): bytes the answer must contain.
    /// Without `check_send` and `check_expect` a check is a TCP connect.
    pub check_expect: Option<Vec<u8>>,
    /// `hedge_after:` (http; none by default: no hedging).
    pub hedge_after: Option<HedgeAfter>,
    /// `hedge_budget:` (http; percent, default 10): hedges may add at most
    /// this share of the pool's requests (a token bucket: every request
    /// earns this share of a hedge, a burst of 10 hedges at most is saved).
    pub hedge_budget: u32,
    /// `idle_timeout:` in ms (tcp/http; default 0 = none).
    pub idle_timeout_ms: u64,
    /// `retries:` (tcp/http; default 2): after a connect failure, up to this
    /// many more servers are tried.
    pub retries: u32,
}

impl PoolConfig {
    /// `"redis"` or `"memcache"` for cache pools, `"tcp"` or `"http"` for
    /// the others.
    #[must_use]
    pub fn protocol(&self) -> &'static str {
        match self.mode {
            Mode::Cache if self.redis => "redis",
            Mode::Cache => "memcache",
            m => m.name(),
        }
    }
}

/// A YAML node with the line it starts on. nutcracker's reader (libyaml
/// events) sees every scalar as text; so does this one.
#[derive(Debug)]
enum Node {
    Scalar(String, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(Node, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar(_, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }

    fn describe(&self) -> String {
        match self {
            Node::Scalar(s, _) => format!("'{s}'"),
            Node::Seq(..) => "a list".into(),
            Node::Map(..) => "a mapping".into(),
        }
    }
}

/// Builds the node tree from the event stream, iteratively: refuses anchors,
/// aliases and nesting deeper than [`MAX_DEPTH`], naming the line.
fn load(text: &str) -> anyhow::Result<Vec<Node>> {
    enum Open {
        Seq(Vec<Node>, usize),
        Map(Vec<(Node, Node)>, Option<Node>, usize),
    }
    fn push(stack: &mut [Open], docs: &mut Vec<Node>, node: Node) {
        match stack.last_mut() {
            None => docs.push(node),
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(items, key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => items.push((k, node)),
            },
        }
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut docs = Vec::new();
    loop {
        let (event, mark) = parser.next_token().context("not valid YAML")?;
        let line = mark.line();
        let anchor = match &event {
            Event::SequenceStart(a, _) | Event::MappingStart(a, _) | Event::Scalar(_, _, a, _) => {
                *a
            }
            _ => 0,
        };
        if anchor != 0 {
            return Err(LimitError::Alias {
                line,
                what: "anchors",
            }
            .into());
        }
        match event {
            Event::StreamEnd => return Ok(docs),
            Event::Alias(_) => {
                return Err(LimitError::Alias {
                    line,
                    what: "aliases",
                }
                .into());
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(LimitError::TooDeep {
                        line,
                        max: MAX_DEPTH,
                    }
                    .into());
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(Vec::new(), line)
                } else {
                    Open::Map(Vec::new(), None, line)
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match stack.pop() {
                    Some(Open::Seq(items, l)) => Node::Seq(items, l),
                    Some(Open::Map(items, _, l)) => Node::Map(items, l),
                    None => bail!("line {line}: unbalanced YAML"),
                };
                push(&mut stack, &mut docs, node);
            }
            Event::Scalar(value, ..) => push(&mut stack, &mut docs, Node::Scalar(value, line)),
            _ => {}
        }
    }
}

fn scalar<'a>(key: &str, v: &'a Node) -> anyhow::Result<&'a str> {
    match v {
        Node::Scalar(s, _) => Ok(s),
        other => bail!(
            "line {}: '{key}:' must be a value, not {}",
            other.line(),
            other.describe()
        ),
    }
}

fn boolean(key: &str, v: &Node) -> anyhow::Result<bool> {
    match scalar(key, v)? {
        "true" => Ok(true),
        "false" => Ok(false),
        s => bail!(
            "line {}: '{key}:' expected true or false, not '{s}'",
            v.line()
        ),
    }
}

fn number<T: std::str::FromStr>(key: &str, v: &Node) -> anyhow::Result<T> {
    let s = scalar(key, v)?;
    s.parse().map_err(|_| {
        anyhow!(
            "line {}: '{key}:' expected a non-negative integer, not '{s}'",
            v.line()
        )
    })
}

/// Reads every pool of a nutcracker YAML file, in file order.
///
/// # Errors
/// YAML errors, limits ([`LimitError`]), an empty file, and every directive
/// or value nutcracker would reject, each naming its line.
pub fn parse_pools(text: &str) -> anyhow::Result<Vec<PoolConfig>> {
    check_size(text)?;
    let docs = load(text)?;
    let [root] = docs.as_slice() else {
        bail!("expected one YAML document of pools, found {}", docs.len());
    };
    let Node::Map(pools, _) = root else {
        bail!(
            "line {}: expected a mapping of pool names to pools at the top level",
            root.line()
        );
    };
    if pools.is_empty() {
        bail!("no pool in the file");
    }
    let mut out: Vec<PoolConfig> = Vec::with_capacity(pools.len());
    for (k, v) in pools {
        let name = scalar("pool name", k)?.to_string();
        if out.iter().any(|p| p.name == name) {
            bail!("line {}: pool '{name}' is defined twice", k.line());
        }
        let pool = build_pool(&name, k.line(), v).with_context(|| format!("pool '{name}'"))?;
        out.push(pool);
    }
    Ok(out)
}

fn build_pool(name: &str, line: usize, body: &Node) -> anyhow::Result<PoolConfig> {
    let Node::Map(map, _) = body else {
        bail!("line {}: expected a mapping of directives", body.line());
    };
    let mut p = PoolConfig {
        name: name.to_string(),
        line,
        listen: String::new(),
        hash: KeyHash::default(),
        hash_tag: None,
        distribution: Distribution::Ketama,
        timeout_ms: None,
        backlog: DEFAULT_BACKLOG,
        client_connections: 0,
        redis: false,
        redis_auth: None,
        redis_db: 0,
        preconnect: false,
        auto_eject_hosts: false,
        server_connections: DEFAULT_SERVER_CONNECTIONS,
        server_retry_timeout_ms: DEFAULT_SERVER_RETRY_TIMEOUT_MS,
        server_failure_limit: DEFAULT_SERVER_FAILURE_LIMIT,
        tcpkeepalive: false,
        reuseport: false,
        servers: Vec::new(),
        mode: Mode::Cache,
        hash_key: HashKey::Uri,
        check_interval_ms: DEFAULT_CHECK_INTERVAL_MS,
        check_timeout_ms: DEFAULT_CHECK_TIMEOUT_MS,
        rise: DEFAULT_RISE,
        fall: DEFAULT_FALL,
        check_path: DEFAULT_CHECK_PATH.to_string(),
        check_send: None,
        check_expect: None,
        hedge_after: None,
        hedge_budget: DEFAULT_HEDGE_BUDGET,
        idle_timeout_ms: 0,
        retries: DEFAULT_RETRIES,
    };
    let mut seen: Vec<&str> = Vec::new();
    // (directive, line) of everything given, for the per-mode checks.
    let mut given: Vec<(&str, usize)> = Vec::new();
    let mut servers = None;
    for (k, v) in map {
        let key = scalar("directive", k)?;
        let l = v.line();
        if seen.contains(&key) {
            bail!("line {}: '{key}:' is given twice", k.line());
        }
        seen.push(key);
        given.push((key, k.line()));
        match key {
            "listen" => p.listen = scalar(key, v)?.to_string(),
            "hash" => {
                let s = scalar(key, v)?;
                p.hash = s
                    .parse()
                    .map_err(|e| anyhow!("line {l}: hash: '{s}': {e}"))?;
            }
            "hash_tag" => {
                let s = scalar(key, v)?;
                let tag: [u8; 2] = s.as_bytes().try_into().map_err(|_| {
                    anyhow!(
                        "line {l}: hash_tag: '{s}' must be exactly two characters, as in \"{{}}\""
                    )
                })?;
                p.hash_tag = Some(tag);
            }
            "distribution" => {
                let s = scalar(key, v)?;
                p.distribution = Distribution::from_name(s).ok_or_else(|| {
                    anyhow!(
                        "line {l}: distribution: unknown '{s}' (nutcracker has ketama, modula, \
                         random; chring-proxy adds ring, maglev, jump, rendezvous, bounded, \
                         round_robin, p2c, least_conn, peak_ewma, health_score)"
                    )
                })?;
            }
            "timeout" => {
                let s = scalar(key, v)?;
                p.timeout_ms = match s.parse::<i64>() {
                    Ok(-1) => None,
                    Ok(ms) if ms > 0 => Some(ms.unsigned_abs()),
                    _ => bail!("line {l}: timeout: '{s}' must be a positive number of ms"),
                };
            }
            "backlog" => p.backlog = number(key, v)?,
            "client_connections" => p.client_connections = number(key, v)?,
            "redis" => p.redis = boolean(key, v)?,
            "redis_auth" => p.redis_auth = Some(scalar(key, v)?.to_string()),
            "redis_db" => p.redis_db = number(key, v)?,
            "preconnect" => p.preconnect = boolean(key, v)?,
            "auto_eject_hosts" => p.auto_eject_hosts = boolean(key, v)?,
            "server_connections" => {
                p.server_connections = number(key, v)?;
                if p.server_connections == 0 {
                    bail!("line {l}: server_connections: must be at least 1");
                }
            }
            "server_retry_timeout" => p.server_retry_timeout_ms = number(key, v)?,
            "server_failure_limit" => p.server_failure_limit = number(key, v)?,
            "tcpkeepalive" => p.tcpkeepalive = boolean(key, v)?,
            "reuseport" => p.reuseport = boolean(key, v)?,
            "servers" => servers = Some(v),
            "mode" => {
                p.mode = match scalar(key, v)? {
                    "tcp" => Mode::Tcp,
                    "http" => Mode::Http,
                    s => bail!("line {l}: mode: unknown '{s}' (tcp or http; absent: a cache pool)"),
                };
            }
            "hash_key" => {
                let s = scalar(key, v)?;
                p.hash_key = HashKey::parse(s).map_err(|e| anyhow!("line {l}: hash_key: {e}"))?;
            }
            "check_interval" => p.check_interval_ms = number(key, v)?,
            "check_timeout" => p.check_timeout_ms = positive(key, v)?,
            "rise" => p.rise = positive(key, v)?,
            "fall" => p.fall = positive(key, v)?,
            "check_path" => {
                let s = scalar(key, v)?;
                if !s.starts_with('/') || !s.bytes().all(|b| b.is_ascii_graphic()) {
                    bail!(
                        "line {l}: check_path: '{s}' must start with '/' and hold visible \
                         ASCII characters only"
                    );
                }
                p.check_path = s.to_string();
            }
            "check_send" | "check_expect" => {
                let s = scalar(key, v)?;
                let b = unescape(s).map_err(|e| anyhow!("line {l}: {key}: '{s}': {e}"))?;
                if b.is_empty() {
                    bail!("line {l}: {key}: must not be empty");
                }
                if key == "check_send" {
                    p.check_send = Some(b);
                } else {
                    p.check_expect = Some(b);
                }
            }
            "hedge_after" => {
                let s = scalar(key, v)?;
                p.hedge_after =
                    Some(HedgeAfter::parse(s).map_err(|e| anyhow!("line {l}: hedge_after: {e}"))?);
            }
            "hedge_budget" => {
                p.hedge_budget = number(key, v)?;
                if !(1..=100).contains(&p.hedge_budget) {
                    bail!(
                        "line {l}: hedge_budget: {} must be a percentage of requests, 1 to 100",
                        p.hedge_budget
                    );
                }
            }
            "idle_timeout" => p.idle_timeout_ms = number(key, v)?,
            "retries" => p.retries = number(key, v)?,
            k => bail!("line {}: unknown directive '{k}:'", k_line(map, k)),
        }
    }
    check_mode(&mut p, &given)?;
    let Some(Node::Seq(list, list_line)) = servers else {
        bail!("line {line}: 'servers:' is missing or not a list");
    };
    if list.is_empty() {
        bail!("line {list_line}: 'servers:' is empty");
    }
    if list.len() > MAX_SERVERS {
        return Err(LimitError::TooManyServers {
            count: list.len(),
            max: MAX_SERVERS,
        }
        .into());
    }
    for (i, y) in list.iter().enumerate() {
        let Node::Scalar(text, l) = y else {
            bail!(
                "line {}: server {}: expected a string, not {}",
                y.line(),
                i + 1,
                y.describe()
            );
        };
        let s = ServerLine::parse(text.as_bytes())
            .map_err(|e| anyhow!("line {l}: server {} '{text}': {e}", i + 1))?;
        let label = String::from_utf8_lossy(s.label()).into_owned();
        let identity = s.identity().to_vec();
        if identity.len() > MAX_NAME {
            bail!(
                "line {l}: server {} '{text}': name longer than {MAX_NAME} bytes",
                i + 1
            );
        }
        if let Some(prev) = p.servers.iter().find(|o| o.identity == identity) {
            bail!(
                "line {l}: server {} '{text}': a server with this identity already exists (line {})",
                i + 1,
                prev.line
            );
        }
        p.servers.push(ServerConfig {
            addr: String::from_utf8_lossy(s.address).into_owned(),
            weight: s.weight,
            name: s.name.map(|n| String::from_utf8_lossy(n).into_owned()),
            identity,
            label,
            line: *l,
        });
    }
    Ok(p)
}

/// Directives of cache pools only.
const CACHE_ONLY: [&str; 9] = [
    "redis",
    "redis_auth",
    "redis_db",
    "server_connections",
    "hash_tag",
    "preconnect",
    "auto_eject_hosts",
    "server_retry_timeout",
    "server_failure_limit",
];
/// Directives of tcp and http pools only.
const BALANCER_ONLY: [&str; 12] = [
    "hash_key",
    "check_interval",
    "check_timeout",
    "rise",
    "fall",
    "check_path",
    "check_send",
    "check_expect",
    "hedge_after",
    "hedge_budget",
    "idle_timeout",
    "retries",
];

/// Refuses the directives that mean nothing in the pool's mode (naming the
/// line), and sets the tcp pools' key.
fn check_mode(p: &mut PoolConfig, given: &[(&str, usize)]) -> anyhow::Result<()> {
    let mode = p.mode;
    for &(key, line) in given {
        let refused = match mode {
            Mode::Cache => BALANCER_ONLY.contains(&key),
            Mode::Tcp => {
                CACHE_ONLY.contains(&key)
                    || matches!(key, "check_path" | "hedge_after" | "hedge_budget")
            }
            Mode::Http => CACHE_ONLY.contains(&key) || matches!(key, "check_send" | "check_expect"),
        };
        if refused {
            let what = match mode {
                Mode::Cache => "a cache pool (set mode: tcp or mode: http)".to_string(),
                m => format!("a mode: {} pool", m.name()),
            };
            bail!("line {line}: '{key}:' means nothing in {what}");
        }
    }
    if mode == Mode::Tcp {
        let line = given
            .iter()
            .find(|(k, _)| *k == "hash_key")
            .map_or(0, |g| g.1);
        if line != 0 && p.hash_key != HashKey::Source {
            bail!(
                "line {line}: hash_key: '{}': tcp pools key by 'source' (the client's IP address) only",
                p.hash_key
            );
        }
        p.hash_key = HashKey::Source;
    }
    Ok(())
}

fn positive<T: std::str::FromStr + PartialEq + Default>(key: &str, v: &Node) -> anyhow::Result<T> {
    let n: T = number(key, v)?;
    if n == T::default() {
        bail!("line {}: '{key}:' must be at least 1", v.line());
    }
    Ok(n)
}

/// The line of directive `key` in `map`.
fn k_line(map: &[(Node, Node)], key: &str) -> usize {
    map.iter()
        .find(|(k, _)| matches!(k, Node::Scalar(s, _) if s == key))
        .map_or(0, |(k, _)| k.line())
}

enum Placement {
    Ketama(Box<KetamaPool>),
    /// The pool, and the file index of each of its servers (nutcracker
    /// sorts them by [`server_order`]).
    Modula(Box<ModulaPool>, Vec<usize>),
}

/// A twemproxy pool as a [`KeyRouter`].
pub struct TwemproxyRouter {
    placement: Placement,
    labels: Vec<String>,
}

impl std::fmt::Debug for TwemproxyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, h, t) = match &self.placement {
            Placement::Ketama(p) => ("ketama", p.key_hash(), p.hash_tag()),
            Placement::Modula(p, _) => ("modula", p.key_hash(), p.hash_tag()),
        };
        f.debug_struct("TwemproxyRouter")
            .field("distribution", &d)
            .field("hash", &h)
            .field("hash_tag", &t)
            .field("servers", &self.labels)
            .finish()
    }
}

impl TwemproxyRouter {
    /// The server names (or `host:port`), in file order.
    #[must_use]
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

impl KeyRouter for TwemproxyRouter {
    fn route(&mut self, key: &[u8]) -> Option<&str> {
        let i = match &self.placement {
            Placement::Ketama(p) => p.server_for(key)?,
            Placement::Modula(p, order) => *order.get(p.server_for(key)?)?,
        };
        self.labels.get(i).map(String::as_str)
    }

    fn backends(&self) -> &[String] {
        &self.labels
    }
}

/// Builds the router of the pool named `pool` (needed when the file has several).
///
/// # Errors
/// YAML errors, a missing or ambiguous pool, and every directive or value that
/// nutcracker would reject or that routes in a way not modelled here.
pub fn router(text: &str, pool: Option<&str>) -> anyhow::Result<Box<dyn KeyRouter>> {
    Ok(Box::new(parse(text, pool)?))
}

/// [`router`], with the concrete type.
///
/// # Errors
/// As [`router`].
pub fn parse(text: &str, pool: Option<&str>) -> anyhow::Result<TwemproxyRouter> {
    let pools = parse_pools(text)?;
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    let chosen = match pool {
        Some(want) => pools
            .iter()
            .find(|p| p.name == want)
            .ok_or_else(|| anyhow!("no pool '{want}'; pools: {}", names.join(", ")))?,
        None => match pools.as_slice() {
            [one] => one,
            _ => bail!(
                "{} pools ({}): pick one with --pool NAME",
                pools.len(),
                names.join(", ")
            ),
        },
    };
    build_router(chosen).with_context(|| format!("pool '{}'", chosen.name))
}

/// The routing of one pool, as `host-sim route --config` prints it.
///
/// # Errors
/// `distribution: random` (unkeyed) or one of chring-proxy's own, and
/// `auto_eject_hosts: true`.
pub fn build_router(p: &PoolConfig) -> anyhow::Result<TwemproxyRouter> {
    match p.distribution {
        Distribution::Ketama | Distribution::Modula => {}
        Distribution::Random => bail!(
            "distribution: random is not supported: nutcracker picks a random server per \
             request, so no key has a server (use ketama or modula)"
        ),
        d if !d.is_keyed() => bail!(
            "distribution: {} is not supported: chring-proxy picks its server per request or \
             connection, by load, so no key has a server (use ketama or modula)",
            d.name()
        ),
        d => bail!(
            "distribution: {} is chring-proxy's own; route it with --strategy {}",
            d.name(),
            d.name()
        ),
    }
    if p.auto_eject_hosts {
        bail!(
            "auto_eject_hosts: true is not supported: nutcracker then removes failing \
             servers from the continuum at run time, so routing depends on failures \
             a configuration cannot predict (set it to false to route the healthy pool)"
        );
    }
    let labels: Vec<String> = p.servers.iter().map(|s| s.label.clone()).collect();
    let servers: Vec<(Vec<u8>, u32, String)> = p
        .servers
        .iter()
        .map(|s| (s.identity.clone(), s.weight, s.addr.clone()))
        .collect();
    let (hash, tag, dist) = (p.hash, p.hash_tag, p.distribution);
    on_big_stack(move || -> anyhow::Result<TwemproxyRouter> {
        let placement = if dist == Distribution::Modula {
            let mut pool = Box::new(ModulaPool::new(hash));
            pool.set_hash_tag(tag);
            // nutcracker's order, not the file's.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            order.sort_by(|&a, &b| server_order(&servers[a].0, &servers[b].0));
            for &i in &order {
                let (id, w, addr) = &servers[i];
                pool.add(id, *w)
                    .map_err(|e| anyhow!("server {} '{addr}': {e}", i + 1))?;
            }
            Placement::Modula(pool, order)
        } else {
            let mut pool = Box::new(KetamaPool::new(hash));
            pool.set_hash_tag(tag);
            let list: Vec<(&[u8], u32)> = servers.iter().map(|s| (&s.0[..], s.1)).collect();
            // One continuum build for the whole pool (one per server is O(n^2)).
            pool.add_many(&list).map_err(|e| {
                let i = e.index;
                anyhow!(
                    "server {} '{}': {}",
                    i + 1,
                    servers.get(i).map_or("", |s| s.2.as_str()),
                    e.error
                )
            })?;
            Placement::Ketama(pool)
        };
        Ok(TwemproxyRouter { placement, labels })
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  redis: true
  servers:
   - 127.0.0.1:6379:1

beta:
  listen: 127.0.0.1:22122
  hash: murmur
  hash_tag: \"{}\"
  distribution: ketama
  timeout: 400
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2
   - 127.0.0.1:11211:2
";

    fn route(r: &mut TwemproxyRouter, key: &str) -> String {
        r.route(key.as_bytes()).unwrap().to_string()
    }

    #[test]
    fn picks_pools_and_labels() {
        let e = parse(EXAMPLE, None).unwrap_err().to_string();
        assert!(e.contains("alpha, beta") && e.contains("--pool"), "{e}");
        let e = parse(EXAMPLE, Some("gamma")).unwrap_err().to_string();
        assert!(e.contains("no pool 'gamma'"), "{e}");
        let mut a = parse(EXAMPLE, Some("alpha")).unwrap();
        assert_eq!(route(&mut a, "k"), "127.0.0.1:6379");
        let mut b = parse(EXAMPLE, Some("beta")).unwrap();
        assert_eq!(b.labels(), ["server1", "server2", "127.0.0.1:11211"]);
        // hash_tag: keys with the same tag go to the same server.
        assert_eq!(route(&mut b, "a{user7}b"), route(&mut b, "user7"));
        // The same pool built directly in chring.
        let mut pool: Ketama<4, 640> = Ketama::new(KeyHash::Murmur);
        for n in ["server1", "server2", "127.0.0.1"] {
            pool.add(n.as_bytes(), if n.starts_with('1') { 2 } else { 1 })
                .unwrap();
        }
        for k in 0..500 {
            let key = format!("key-{k}");
            let i = pool.server_for(key.as_bytes()).unwrap();
            assert_eq!(route(&mut b, &key), b.labels()[i]);
        }
    }

    #[test]
    fn rejects_what_it_cannot_match() {
        let pool = |extra: &str| {
            format!("p:\n  listen: 127.0.0.1:1\n{extra}  servers:\n   - a:1:1\n   - b:1:1\n")
        };
        for (extra, msg) in [
            ("  distribution: random\n", "not supported"),
            ("  distribution: maglev\n", "chring-proxy's own"),
            ("  distribution: nope\n", "unknown"),
            ("  auto_eject_hosts: true\n", "auto_eject_hosts"),
            ("  hash: sha1\n", "unknown twemproxy hash"),
            ("  hash_tag: \"{\"\n", "two characters"),
            ("  colour: blue\n", "unknown directive"),
        ] {
            let e = format!("{:#}", parse(&pool(extra), None).unwrap_err());
            assert!(e.contains(msg), "{extra}: {e}");
        }
        for (text, msg) in [
            ("p:\n  servers:\n   - a:1:0\n", "zero weight"),
            ("p:\n  servers:\n   - a:1\n", "server 1"),
            (
                "p:\n  servers:\n   - a:11211:1\n   - a:11211:2\n",
                "already exists",
            ),
            ("p:\n  servers: []\n", "empty"),
            ("p:\n  hash: md5\n", "missing"),
            ("- a\n", "mapping"),
            ("p: [", "YAML"),
        ] {
            let e = format!("{:#}", parse(text, None).unwrap_err());
            assert!(e.contains(msg), "{text}: {e}");
        }
    }

    #[test]
    fn pools_get_nutcracker_defaults_and_every_key() {
        let pools = parse_pools(EXAMPLE).unwrap();
        assert_eq!(pools.len(), 2);
        let a = &pools[0];
        assert_eq!(
            (a.name.as_str(), a.line, a.listen.as_str()),
            ("alpha", 1, "127.0.0.1:22121")
        );
        assert!(a.redis && !a.auto_eject_hosts && !a.preconnect);
        assert_eq!(a.timeout_ms, None);
        assert_eq!(a.backlog, 512);
        assert_eq!(a.server_connections, 1);
        assert_eq!(a.server_retry_timeout_ms, 30_000);
        assert_eq!(a.server_failure_limit, 2);
        assert_eq!(a.client_connections, 0);
        assert_eq!((a.redis_db, a.redis_auth.as_deref()), (0, None));
        let b = &pools[1];
        assert_eq!(b.protocol(), "memcache");
        assert_eq!(b.timeout_ms, Some(400));
        assert_eq!(b.hash, KeyHash::Murmur);
        assert_eq!(b.servers[0].label, "server1");
        assert_eq!(b.servers[2].identity, b"127.0.0.1");
        assert_eq!(b.servers[2].addr, "127.0.0.1:11211");
        assert_eq!(b.servers[2].line, 19);
        let full = "p:\n  listen: 127.0.0.1:0\n  distribution: bounded\n  redis: true\n  \
                    redis_auth: pw\n  redis_db: 3\n  preconnect: true\n  auto_eject_hosts: true\n  \
                    server_connections: 4\n  server_retry_timeout: 2000\n  \
                    server_failure_limit: 1\n  client_connections: 100\n  backlog: 64\n  \
                    tcpkeepalive: true\n  reuseport: false\n  timeout: 250\n  \
                    servers:\n   - 127.0.0.1:1:1 a\n";
        let p = &parse_pools(full).unwrap()[0];
        assert_eq!(p.distribution, Distribution::Bounded);
        assert_eq!(p.redis_auth.as_deref(), Some("pw"));
        assert_eq!(
            (p.redis_db, p.server_connections, p.server_failure_limit),
            (3, 4, 1)
        );
        assert_eq!(
            (p.server_retry_timeout_ms, p.client_connections, p.backlog),
            (2000, 100, 64)
        );
        assert!(p.preconnect && p.auto_eject_hosts && p.tcpkeepalive && !p.reuseport);
        assert_eq!(p.timeout_ms, Some(250));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, msg) in [
            (
                "p:\n  listen: a:1\n  colour: blue\n  servers:\n   - a:1:1\n",
                "line 3: unknown directive 'colour:'",
            ),
            (
                "p:\n  redis: yes\n  servers:\n   - a:1:1\n",
                "line 2: 'redis:' expected true or false",
            ),
            ("p:\n  servers:\n   - a:1:1\n   - b:1\n", "line 4: server 2"),
            (
                "p:\n  distribution: nope\n  servers:\n   - a:1:1\n",
                "line 2: distribution: unknown 'nope'",
            ),
            (
                "p:\n  backlog: -3\n  servers:\n   - a:1:1\n",
                "line 2: 'backlog:' expected a non-negative",
            ),
            (
                "p:\n  timeout: 0\n  servers:\n   - a:1:1\n",
                "line 2: timeout",
            ),
            (
                "p:\n  redis: true\n  redis: false\n  servers:\n   - a:1:1\n",
                "line 3: 'redis:' is given twice",
            ),
            (
                "p:\n  servers:\n   - a:1:1\n   - a:1:1\n",
                "line 4: server 2 'a:1:1': a server with this identity already exists (line 3)",
            ),
        ] {
            let e = format!("{:#}", parse_pools(text).unwrap_err());
            assert!(e.contains(msg), "{text}: {e}");
        }
    }

    fn balancer(mode: &str, extra: &str) -> String {
        format!(
            "p:\n  listen: 127.0.0.1:0\n  mode: {mode}\n{extra}  servers:\n   - 127.0.0.1:1:1 a\n"
        )
    }

    #[test]
    fn balancer_pools_get_their_defaults() {
        for (mode, m, proto) in [("tcp", Mode::Tcp, "tcp"), ("http", Mode::Http, "http")] {
            let p = &parse_pools(&balancer(mode, "")).unwrap()[0];
            assert_eq!((p.mode, p.protocol()), (m, proto));
            let key = if m == Mode::Tcp {
                HashKey::Source
            } else {
                HashKey::Uri
            };
            assert_eq!(p.hash_key, key);
            assert_eq!((p.check_interval_ms, p.check_timeout_ms), (2000, 1000));
            assert_eq!((p.rise, p.fall, p.retries, p.idle_timeout_ms), (2, 3, 2, 0));
            assert_eq!(p.check_path, "/health");
            assert_eq!(
                (p.check_send.as_ref(), p.check_expect.as_ref()),
                (None, None)
            );
            assert_eq!(p.hedge_after, None);
            assert_eq!(p.hedge_budget, DEFAULT_HEDGE_BUDGET);
        }
        let p = &parse_pools(EXAMPLE).unwrap()[0];
        assert_eq!(p.mode, Mode::Cache);
    }

    #[test]
    fn balancer_pools_read_every_key() {
        let p = &parse_pools(&balancer(
            "tcp",
            "  hash_key: source\n  check_interval: 0\n  check_timeout: 250\n  rise: 1\n  \
             fall: 5\n  check_send: \"PING\\\\r\\\\n\"\n  check_expect: '+PONG\\x0d'\n  \
             idle_timeout: 30000\n  retries: 0\n  timeout: 700\n  distribution: rendezvous\n",
        ))
        .unwrap()[0];
        assert_eq!((p.check_interval_ms, p.check_timeout_ms), (0, 250));
        assert_eq!(
            (p.rise, p.fall, p.retries, p.idle_timeout_ms),
            (1, 5, 0, 30_000)
        );
        assert_eq!(p.check_send.as_deref(), Some(&b"PING\r\n"[..]));
        assert_eq!(p.check_expect.as_deref(), Some(&b"+PONG\r"[..]));
        assert_eq!(
            (p.timeout_ms, p.distribution),
            (Some(700), Distribution::Rendezvous)
        );
        for (v, want) in [
            ("uri", HashKey::Uri),
            ("path", HashKey::Path),
            ("source", HashKey::Source),
            ("header:X-User", HashKey::Header("X-User".into())),
            ("param:id", HashKey::Param("id".into())),
            ("cookie:session", HashKey::Cookie("session".into())),
        ] {
            let p = &parse_pools(&balancer("http", &format!("  hash_key: {v}\n"))).unwrap()[0];
            assert_eq!(p.hash_key, want);
            assert_eq!(p.hash_key.to_string(), v);
        }
        for (v, want) in [
            ("p95", HedgeAfter::Percentile(95)),
            ("p1", HedgeAfter::Percentile(1)),
            ("50", HedgeAfter::Ms(50)),
        ] {
            let text = balancer(
                "http",
                &format!("  hedge_after: {v}\n  check_path: /ready?x=1\n"),
            );
            let p = &parse_pools(&text).unwrap()[0];
            assert_eq!(p.hedge_after, Some(want));
            assert_eq!(p.hedge_after.unwrap().to_string(), v);
            assert_eq!(p.check_path, "/ready?x=1");
        }
        let p = &parse_pools(&balancer("http", "  hedge_budget: 25\n")).unwrap()[0];
        assert_eq!(p.hedge_budget, 25);
    }

    #[test]
    fn unescape_reads_the_escapes() {
        assert_eq!(unescape(r"a\r\n\t\0\\\x41z").unwrap(), b"a\r\n\t\0\\Az");
        assert_eq!(unescape("plain").unwrap(), b"plain");
        for (bad, msg) in [
            (r"x\", "trailing"),
            (r"\q", "unknown escape '\\q'"),
            (r"\x4", "two hex digits"),
            (r"\xg1", "two hex digits"),
            (r"\x+1", "two hex digits"),
        ] {
            let e = unescape(bad).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn balancer_errors_name_the_line() {
        for (text, msg) in [
            (balancer("udp", ""), "line 3: mode: unknown 'udp'"),
            (
                balancer("tcp", "  redis: true\n"),
                "line 4: 'redis:' means nothing in a mode: tcp pool",
            ),
            (
                balancer("http", "  redis_auth: pw\n"),
                "line 4: 'redis_auth:' means nothing in a mode: http pool",
            ),
            (
                balancer("tcp", "  redis_db: 1\n"),
                "line 4: 'redis_db:' means nothing",
            ),
            (
                balancer("http", "  server_connections: 2\n"),
                "line 4: 'server_connections:' means nothing",
            ),
            (
                balancer("tcp", "  hash_tag: \"{}\"\n"),
                "line 4: 'hash_tag:' means nothing",
            ),
            (
                balancer("tcp", "  preconnect: true\n"),
                "line 4: 'preconnect:' means",
            ),
            (
                balancer("http", "  auto_eject_hosts: true\n"),
                "line 4: 'auto_eject_hosts:'",
            ),
            (
                balancer("tcp", "  server_retry_timeout: 9\n"),
                "line 4: 'server_retry_timeout:'",
            ),
            (
                balancer("tcp", "  server_failure_limit: 9\n"),
                "line 4: 'server_failure_limit:'",
            ),
            (
                balancer("tcp", "  check_path: /x\n"),
                "line 4: 'check_path:' means nothing in a mode: tcp pool",
            ),
            (
                balancer("tcp", "  hedge_after: p95\n"),
                "line 4: 'hedge_after:' means nothing",
            ),
            (
                balancer("http", "  check_send: x\n"),
                "line 4: 'check_send:' means nothing",
            ),
            (
                balancer("http", "  check_expect: x\n"),
                "line 4: 'check_expect:' means nothing",
            ),
            (
                balancer("tcp", "  hash_key: uri\n"),
                "line 4: hash_key: 'uri': tcp pools key by 'source'",
            ),
            (
                balancer("http", "  hash_key: body\n"),
                "line 4: hash_key: unknown 'body'",
            ),
            (
                balancer("http", "  hash_key: \"header:\"\n"),
                "line 4: hash_key: 'header:': header:NAME",
            ),
            (
                balancer("http", "  hash_key: cookie:a;b\n"),
                "line 4: hash_key: 'cookie:a;b'",
            ),
            (
                balancer("http", "  hash_key: \"param:\"\n"),
                "line 4: hash_key: 'param:'",
            ),
            (
                balancer("tcp", "  check_interval: -1\n"),
                "line 4: 'check_interval:' expected",
            ),
            (
                balancer("tcp", "  check_timeout: 0\n"),
                "line 4: 'check_timeout:' must be at least 1",
            ),
            (
                balancer("tcp", "  rise: 0\n"),
                "line 4: 'rise:' must be at least 1",
            ),
            (
                balancer("http", "  fall: 0\n"),
                "line 4: 'fall:' must be at least 1",
            ),
            (
                balancer("http", "  fall: many\n"),
                "line 4: 'fall:' expected a non-negative",
            ),
            (
                balancer("http", "  check_path: health\n"),
                "line 4: check_path: 'health' must start",
            ),
            (
                balancer("http", "  check_path: \"/a b\"\n"),
                "line 4: check_path:",
            ),
            (
                balancer("tcp", "  check_send: \"a\\\\q\"\n"),
                "line 4: check_send: 'a\\q': unknown escape",
            ),
            (
                balancer("tcp", "  check_expect: \"\"\n"),
                "line 4: check_expect: must not be empty",
            ),
            (
                balancer("http", "  hedge_after: p100\n"),
                "line 4: hedge_after: 'p100': a percentile",
            ),
            (
                balancer("http", "  hedge_after: 0\n"),
                "line 4: hedge_after: '0' must be",
            ),
            (
                balancer("http", "  hedge_budget: 0\n"),
                "line 4: hedge_budget: 0 must be a percentage",
            ),
            (
                balancer("http", "  hedge_budget: 101\n"),
                "line 4: hedge_budget: 101 must be a percentage",
            ),
            (
                balancer("tcp", "  hedge_budget: 5\n"),
                "line 4: 'hedge_budget:' means nothing",
            ),
            (
                balancer("http", "  hedge_after: soon\n"),
                "line 4: hedge_after: 'soon'",
            ),
            (
                balancer("tcp", "  idle_timeout: x\n"),
                "line 4: 'idle_timeout:' expected",
            ),
            (
                balancer("http", "  retries: -2\n"),
                "line 4: 'retries:' expected",
            ),
            (
                balancer("tcp", "  rise: 2\n  rise: 3\n"),
                "line 5: 'rise:' is given twice",
            ),
        ] {
            let e = format!("{:#}", parse_pools(&text).unwrap_err());
            assert!(e.contains(msg), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // The balancers' directives in a cache pool (mode after them, too).
        for key in BALANCER_ONLY {
            let value = match key {
                "hash_key" => "uri",
                "check_path" => "/x",
                "hedge_after" => "p95",
                _ => "1",
            };
            let text = format!("p:\n  listen: a:1\n  {key}: {value}\n  servers:\n   - a:1:1\n");
            let e = format!("{:#}", parse_pools(&text).unwrap_err());
            assert!(
                e.contains(&format!("line 3: '{key}:' means nothing in a cache pool")),
                "{e}"
            );
        }
        let late = "p:\n  rise: 2\n  redis: true\n  mode: tcp\n  servers:\n   - a:1:1\n";
        let e = format!("{:#}", parse_pools(late).unwrap_err());
        assert!(
            e.contains("line 3: 'redis:' means nothing in a mode: tcp pool"),
            "{e}"
        );
    }

    #[test]
    fn modula_routes_like_chring_compat() {
        let text = "p:\n  distribution: modula\n  hash: crc32a\n  servers:\n   - 10.0.0.1:11211:1\n   - 10.0.0.2:11211:3 b\n   - 10.0.0.3:6379:2\n";
        let mut r = parse(text, None).unwrap();
        // nutcracker sorts the servers by identity: "b", "10.0.0.1", "10.0.0.3:6379".
        let mut m: Modula<4, 8> = Modula::new(KeyHash::Crc32a);
        for (id, w) in [(&b"b"[..], 3), (b"10.0.0.1", 1), (b"10.0.0.3:6379", 2)] {
            m.add(id, w).unwrap();
        }
        let label = ["b", "10.0.0.1:11211", "10.0.0.3:6379"];
        for k in 0..500 {
            let key = format!("key-{k}");
            let i = m.server_for(key.as_bytes()).unwrap();
            assert_eq!(route(&mut r, &key), label[i]);
        }
    }

    /// Runs `parse` on its own thread with a small stack and a time limit, and
    /// returns its one-line error (issue 10, part 5: hostile YAML).
    fn hostile(text: String) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let r = parse(&text, None).map(|_| ()).map_err(|e| format!("{e:#}"));
                let _ = tx.send(r);
            })
            .unwrap();
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("parse must finish quickly");
        let e = r.expect_err("hostile input must be refused");
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn alias_bomb_is_refused() {
        // Billion laughs: 9 levels of 9 aliases to the level below.
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        assert!(text.len() < 500, "{}", text.len());
        let e = hostile(text);
        assert!(e.contains("line 1") && e.contains("anchor"), "{e}");
        // An alias without its anchor is refused too, naming its line.
        let e = hostile("p:\n  servers:\n   - a:1:1\nq: *x\n".into());
        assert!(e.contains("line 4") && e.contains("anchor"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        // The scanner's own flow-level limit (255) or ours, whichever comes first.
        let e = hostile(deep);
        assert!(
            e.contains("line 1") && (e.contains("deeper") || e.contains("recursion limit")),
            "{e}"
        );
        // 40 KB of `- `: 20,000 nested block sequences on one line (this one
        // overflowed the stack before the event pre-pass).
        let e = hostile(format!("{}x\n", "- ".repeat(20_000)));
        assert!(e.contains("line 1") && e.contains("deeper than 16"), "{e}");
        let mut block = String::new();
        for d in 0..100 {
            block.push_str(&" ".repeat(d));
            block.push_str("k:\n");
        }
        let e = hostile(block);
        assert!(
            e.contains(&format!("line {}", MAX_DEPTH + 1)) && e.contains("deeper"),
            "{e}"
        );
    }

    #[test]
    fn oversized_file_is_refused() {
        let mut text = String::from("p:\n  servers:\n");
        while text.len() <= crate::MAX_CONFIG_BYTES {
            text.push_str("   - 10.0.0.1:11211:1\n");
        }
        let e = hostile(text);
        assert!(e.contains("bytes") && e.contains("1048576"), "{e}");
    }

    #[test]
    fn load_aware_distributions_parse_and_are_refused_by_route() {
        for name in [
            "round_robin",
            "p2c",
            "least_conn",
            "peak_ewma",
            "health_score",
        ] {
            let d = Distribution::from_name(name).unwrap();
            assert_eq!(d.name(), name);
            assert!(!d.is_keyed() && !d.is_nutcracker());
            let text = format!(
                "web:\n  listen: 127.0.0.1:8080\n  distribution: {name}\n  servers:\n   - 127.0.0.1:8081:1\n"
            );
            let e = format!("{:#}", parse(&text, None).unwrap_err());
            assert!(e.contains(name) && e.contains("per request"), "{e}");
        }
        let e = parse(
            "web:\n  listen: 127.0.0.1:8080\n  distribution: fastest\n  servers:\n   - 127.0.0.1:8081:1\n",
            None,
        )
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("line 3") && e.contains("least_conn"), "{e}");
    }
}
