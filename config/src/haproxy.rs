//! HAProxy .cfg: a `backend` (or `listen`) section with a hashing `balance`,
//! `hash-type consistent [function [avalanche]]` or `hash-type map-based
//! [function [avalanche]]` (HAProxy's default when there is no `hash-type`),
//! and `server NAME ADDR [id N] [weight W]` lines becomes chring's
//! [`HaproxyConsistent`] or [`HaproxyMap`], which route keys exactly as HAProxy
//! 2.6 does. `balance` and `hash-type` (and `default-server weight`) are
//! inherited from the last `defaults` section before the backend.
//!
//! The key read on stdin is what the `balance` algorithm takes from a request:
//!
//! - `balance hdr(NAME)`: the header's value. HAProxy hashes its first
//!   comma-separated element, without surrounding blanks, and an empty value
//!   makes it fall back to round robin (printed as an error by `route`). With
//!   `use_domain_only`, only the domain label of that value is hashed
//!   ([`domain_only`]: `www.example.com` -> `example`).
//! - `balance uri [whole] [len N] [depth N] [path-only]`: the request URI; the
//!   part hashed stops at `?` (unless `whole`), after `len` characters, and
//!   before the `depth`+1-th `/`, as HAProxy does; `path-only` first drops the
//!   scheme and authority of an absolute URI ([`path_only`]).
//! - `balance url_param NAME [check_post]`: the parameter's value (what follows
//!   `NAME=` in the query string), hashed up to the first `&`. `check_post`
//!   changes nothing here: HAProxy reads the body of a POST only when the URI
//!   lacks the parameter, and then hashes the value it finds there the same way.
//! - `balance source`: the client's IPv4 or IPv6 address, as text
//!   ([`source_hash`]: the XOR of its 32-bit words; the hash function plays no
//!   part, `avalanche` does).
//! - `balance hash EXPR`: the expression's value, hashed as is.
//!
//! The output names the server by its `server` NAME. Everything that would
//! change routing in a way a key cannot decide is an error: other `balance`
//! algorithms, `hash-balance-factor` above 0, `backup` and `disabled` servers,
//! `server-template`, persistence (`cookie`, `stick*`, `use-server`, `persist`,
//! `force-persist`), `http-request` rules that rewrite the request, and any
//! server keyword not known to be neutral.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use anyhow::{Context, bail};
use chring::compat::haproxy::{
    HaproxyConsistent, HaproxyMap, HashFunction, HashType, MAX_WEIGHT, NODES_PER_WEIGHT,
    assign_ids, domain_only, path_only, source_hash,
};

use crate::KeyRouter;
use crate::on_big_stack;
use crate::{LimitError, check_size};

/// Most servers in one backend.
pub const HAPROXY_MAX_SERVERS: usize = 1024;
/// Nodes available (`16 x total weight` must fit).
pub const HAPROXY_MAX_NODES: usize = 262_144;

/// Slots available to `hash-type map-based` (the sum of the weights divided
/// by their greatest common divisor must fit): building the map costs
/// *O*(slots x servers), so this bounds a hostile file's cost.
pub const HAPROXY_MAX_MAP_SLOTS: usize = 65_536;

type Consistent = HaproxyConsistent<HAPROXY_MAX_SERVERS, HAPROXY_MAX_NODES>;
type Map = HaproxyMap<HAPROXY_MAX_SERVERS, HAPROXY_MAX_MAP_SLOTS>;

/// What a `balance` algorithm takes from the request as its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `balance hdr(NAME)`.
    Header(String),
    /// `balance hdr(NAME) use_domain_only`.
    HeaderDomain(String),
    /// `balance uri`: `whole`, `len` (0 = unlimited), `depth` (0 = unlimited),
    /// `path-only`.
    Uri {
        /// Keep the query string.
        whole: bool,
        /// Hash at most this many characters (0: all).
        len: usize,
        /// Hash at most this many directory levels (0: all).
        depth: usize,
        /// `path-only`: drop the scheme and authority of an absolute URI first.
        path_only: bool,
    },
    /// `balance url_param NAME [check_post]`.
    UrlParam {
        /// The parameter's name.
        name: String,
        /// `check_post` (no effect on the value hashed).
        check_post: bool,
    },
    /// `balance source`.
    Source,
    /// `balance hash EXPR`.
    Expr(String),
}

/// One `server` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyServer {
    /// Its NAME.
    pub name: String,
    /// Its address as written.
    pub address: String,
    /// `id`, 0 when absent (numbered automatically).
    pub id: u32,
    /// `weight` (0..=256), default 1 or `default-server weight`.
    pub weight: u32,
    /// Line in the file (1-based).
    pub line: usize,
}

/// A backend (or listen) section that hashes consistently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyBackend {
    /// Its name.
    pub name: String,
    /// The key hashing.
    pub hash: HashType,
    /// `hash-type map-based` (explicit or by default), else consistent.
    pub map_based: bool,
    /// Where the key comes from.
    pub key: KeySource,
    /// The servers in order.
    pub servers: Vec<HaproxyServer>,
}

/// A `hash-type` line: the key hashing, and `true` for map-based.
type HashSetting = (HashType, bool);

/// Settings a `defaults` section passes on (and a backend then overrides).
#[derive(Debug, Clone, Default)]
struct Settings {
    balance: Option<(Result<KeySource, String>, usize)>,
    hash_type: Option<(Result<HashSetting, String>, usize)>,
    weight: u32,
}

#[derive(Debug)]
struct Section {
    name: String,
    line: usize,
    settings: Settings,
    servers: Vec<HaproxyServer>,
}

/// Splits a line into words: blanks separate, `#` starts a comment, `"..."`
/// and `'...'` quote, `\` escapes the next character (outside single quotes).
fn words(line: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut w = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut w));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    w.push(n);
                }
            }
            '"' | '\'' => {
                in_word = true;
                let q = c;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == q {
                        closed = true;
                        break;
                    }
                    if c == '\\' && q == '"' {
                        if let Some(n) = chars.next() {
                            w.push(n);
                        }
                        continue;
                    }
                    w.push(c);
                }
                if !closed {
                    bail!("line {n}: unterminated quote");
                }
            }
            c => {
                in_word = true;
                w.push(c);
            }
        }
    }
    if in_word {
        out.push(w);
    }
    Ok(out)
}

const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "cache",
    "program",
    "http-errors",
    "ring",
    "log-forward",
    "fcgi-app",
];

/// Server keywords that take one argument and do not change which server a
/// key goes to while servers are healthy.
const SERVER_KW_ARG: &[&str] = &[
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "port",
    "addr",
    "maxconn",
    "minconn",
    "maxqueue",
    "slowstart",
    "init-addr",
    "resolvers",
    "resolve-prefer",
    "resolve-net",
    "resolve-opts",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "observe",
    "error-limit",
    "cookie",
    "pool-max-conn",
    "pool-low-conn",
    "pool-purge-delay",
    "proto",
    "alpn",
    "npn",
    "sni",
    "ca-file",
    "crl-file",
    "crt",
    "verify",
    "verifyhost",
    "ciphers",
    "ciphersuites",
    "check-sni",
    "check-alpn",
    "check-proto",
    "agent-port",
    "agent-inter",
    "agent-addr",
    "agent-send",
    "track",
    "redir",
    "source",
    "namespace",
    "max-reuse",
    "ssl-min-ver",
    "ssl-max-ver",
    "tcp-ut",
    "socks4",
    "log-proto",
];

/// Argument-less server keywords that are routing-neutral.
const SERVER_KW_FLAG: &[&str] = &[
    "check",
    "no-check",
    "check-ssl",
    "no-check-ssl",
    "check-send-proxy",
    "agent-check",
    "no-agent-check",
    "ssl",
    "no-ssl",
    "send-proxy",
    "send-proxy-v2",
    "send-proxy-v2-ssl",
    "send-proxy-v2-ssl-cn",
    "no-send-proxy",
    "no-send-proxy-v2",
    "tfo",
    "no-tfo",
    "non-stick",
    "stick",
    "enabled",
    "no-backup",
    "allow-0rtt",
    "no-ssl-reuse",
    "ssl-reuse",
    "no-tls-tickets",
    "tls-tickets",
    "no-sslv3",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "force-tlsv12",
    "force-tlsv13",
    "no-verifyhost",
    "check-via-socks4",
];

/// `http-request` actions that rewrite what a `balance` algorithm reads.
const REWRITES: &[&str] = &[
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "replace-value",
    "set-uri",
    "set-path",
    "set-pathq",
    "set-query",
    "replace-uri",
    "replace-path",
    "replace-pathq",
    "normalize-uri",
    "set-var",
    "set-var-fmt",
    "unset-var",
];

fn parse_weight(v: Option<&String>, line: usize) -> anyhow::Result<u32> {
    v.and_then(|w| w.parse::<u32>().ok())
        .filter(|&w| w <= MAX_WEIGHT)
        .with_context(|| {
            format!(
                "line {line}: weight expects an integer 0..={MAX_WEIGHT} (got '{}')",
                v.map_or("", String::as_str)
            )
        })
}

/// Parses the server keywords after `server NAME ADDR` (or `default-server`).
fn server_params(
    words: &[String],
    line: usize,
    id: &mut u32,
    weight: &mut u32,
    default_server: bool,
) -> anyhow::Result<()> {
    let mut i = 0;
    while let Some(kw) = words.get(i) {
        let kw = kw.as_str();
        match kw {
            "weight" => {
                *weight = parse_weight(words.get(i + 1), line)?;
                i += 2;
            }
            "id" if !default_server => {
                let v = words.get(i + 1);
                *id = v
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|&v| (1..=i32::MAX as u32).contains(&v))
                    .with_context(|| {
                        format!(
                            "line {line}: id expects an integer > 0 (got '{}')",
                            v.map_or("", String::as_str)
                        )
                    })?;
                i += 2;
            }
            "backup" => bail!(
                "line {line}: `backup` servers are not supported (HAProxy uses them only when \
                 every active server is down)"
            ),
            "disabled" => bail!(
                "line {line}: `disabled` servers are not supported (they start in maintenance \
                 and come back at run time); remove the server or the keyword"
            ),
            "hash-key" => bail!("line {line}: `hash-key` is not in HAProxy 2.6"),
            k if SERVER_KW_FLAG.contains(&k) => i += 1,
            k if SERVER_KW_ARG.contains(&k) => {
                if words.get(i + 1).is_none() {
                    bail!("line {line}: `{k}` expects an argument");
                }
                i += 2;
            }
            k => bail!("line {line}: unsupported server keyword `{k}` (it may change routing)"),
        }
    }
    Ok(())
}

fn parse_balance(w: &[String]) -> Result<KeySource, String> {
    let Some(algo) = w.get(1) else {
        return Err("`balance` needs an algorithm".into());
    };
    let args = w.get(2..).unwrap_or(&[]);
    if let Some(name) = algo.strip_prefix("hdr(").and_then(|r| r.strip_suffix(')')) {
        if name.is_empty() {
            return Err("`balance hdr()` needs a header name".into());
        }
        return match args {
            [] => Ok(KeySource::Header(name.to_ascii_lowercase())),
            [o] if o == "use_domain_only" => Ok(KeySource::HeaderDomain(name.to_ascii_lowercase())),
            [o, ..] => Err(format!(
                "unknown `balance hdr` option '{o}' (only use_domain_only)"
            )),
        };
    }
    match algo.as_str() {
        "uri" => {
            let (mut whole, mut len, mut depth, mut path_only) = (false, 0, 0, false);
            let mut i = 0;
            while let Some(a) = args.get(i) {
                // HAProxy reads these with atoi() into an int and refuses
                // values <= 0, which is what anything above i32::MAX becomes.
                let num = || {
                    args.get(i + 1)
                        .and_then(|v| v.parse::<i32>().ok())
                        .filter(|&v| v > 0)
                        .and_then(|v| usize::try_from(v).ok())
                        .ok_or_else(|| {
                            format!("`balance uri {a}` expects an integer in 1..={}", i32::MAX)
                        })
                };
                match a.as_str() {
                    "whole" => whole = true,
                    "len" => len = num()?,
                    "depth" => depth = num()?,
                    "path-only" => path_only = true,
                    o => {
                        return Err(format!(
                            "unknown `balance uri` option '{o}' (whole, len N, depth N, path-only)"
                        ));
                    }
                }
                i += if a == "whole" || a == "path-only" {
                    1
                } else {
                    2
                };
            }
            Ok(KeySource::Uri {
                whole,
                len,
                depth,
                path_only,
            })
        }
        "url_param" => match args {
            [] => Err("`balance url_param` needs a parameter name".into()),
            [name] => Ok(KeySource::UrlParam {
                name: name.clone(),
                check_post: false,
            }),
            [name, c] if c == "check_post" => Ok(KeySource::UrlParam {
                name: name.clone(),
                check_post: true,
            }),
            [_, o, ..] => Err(format!(
                "`balance url_param NAME` accepts only `check_post` after the name (got '{o}')"
            )),
        },
        "source" => match args {
            [] => Ok(KeySource::Source),
            [o, ..] => Err(format!("`balance source` takes no argument (got '{o}')")),
        },
        "hash" => {
            if args.is_empty() {
                Err("`balance hash` needs an expression".into())
            } else {
                Ok(KeySource::Expr(args.join(" ")))
            }
        }
        other => Err(format!(
            "`balance {other}` is not supported (only hdr(NAME) [use_domain_only], uri, \
             url_param NAME [check_post], source and hash EXPR, which hash a key)"
        )),
    }
}

/// `hash-type consistent|map-based [function [avalanche]]`: the key hashing
/// and whether the backend is map-based.
fn parse_hash_type(w: &[String]) -> Result<HashSetting, String> {
    let map_based = match w.get(1).map(String::as_str) {
        Some("consistent") => false,
        Some("map-based") => true,
        _ => return Err("`hash-type` expects consistent or map-based".into()),
    };
    match w.get(2..).unwrap_or(&[]) {
        // A bare `consistent` means sdbm with avalanche, a bare `map-based`
        // sdbm without (cfgparse-listen.c).
        [] => Ok((HashType::new(HashFunction::Sdbm, !map_based), map_based)),
        [f, rest @ ..] => {
            let function = HashFunction::from_name(f)
                .ok_or_else(|| format!("unknown hash function '{f}' (sdbm, djb2, wt6, crc32)"))?;
            match rest {
                [] => Ok((HashType::new(function, false), map_based)),
                [a] if a == "avalanche" => Ok((HashType::new(function, true), map_based)),
                [o, ..] => Err(format!("unexpected '{o}' after the hash function")),
            }
        }
    }
}

/// Parses the backends and listen sections of an HAProxy configuration (with
/// their settings inherited from `defaults`).
///
/// # Errors
/// Syntax errors and unsupported directives, naming the line.
fn sections(text: &str) -> anyhow::Result<Vec<Section>> {
    let mut defaults = Settings {
        weight: 1,
        ..Settings::default()
    };
    let mut out: Vec<Section> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    // Which kind of section we are in: "defaults", "backend"/"listen", other.
    let mut kind = String::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let w = words(raw, n)?;
        let Some(head) = w.first().map(String::as_str) else {
            continue;
        };
        if SECTIONS.contains(&head) {
            kind = head.to_string();
            match head {
                "defaults" => {
                    if w.len() > 1 {
                        bail!("line {n}: named `defaults` sections are not supported");
                    }
                    defaults = Settings {
                        weight: 1,
                        ..Settings::default()
                    };
                }
                "backend" | "listen" => {
                    let Some(name) = w.get(1) else {
                        bail!("line {n}: `{head}` needs a name");
                    };
                    if w.get(2).is_some_and(|f| f == "from") {
                        bail!("line {n}: `{head} ... from` is not supported");
                    }
                    if !names.insert(name.clone()) {
                        bail!("line {n}: duplicate section '{name}'");
                    }
                    out.push(Section {
                        name: name.clone(),
                        line: n,
                        settings: defaults.clone(),
                        servers: Vec::new(),
                    });
                }
                _ => {}
            }
            continue;
        }
        let settings = match kind.as_str() {
            "defaults" => &mut defaults,
            "backend" | "listen" => match out.last_mut() {
                Some(s) => &mut s.settings,
                None => continue,
            },
            _ => continue,
        };
        match head {
            "balance" => settings.balance = Some((parse_balance(&w), n)),
            "hash-type" => settings.hash_type = Some((parse_hash_type(&w), n)),
            "hash-balance-factor" if w.get(1).is_none_or(|f| f != "0") => {
                bail!(
                    "line {n}: `hash-balance-factor` is not supported (bounded loads depend on \
                     the current load, not on the key)"
                );
            }
            "default-server" => {
                let mut id = 0;
                server_params(
                    w.get(1..).unwrap_or(&[]),
                    n,
                    &mut id,
                    &mut settings.weight,
                    true,
                )?;
            }
            "server" if kind != "defaults" => {
                let (Some(name), Some(address)) = (w.get(1), w.get(2)) else {
                    bail!("line {n}: expected `server NAME ADDR [params]`");
                };
                let mut s = HaproxyServer {
                    name: name.clone(),
                    address: address.clone(),
                    id: 0,
                    weight: settings.weight,
                    line: n,
                };
                server_params(
                    w.get(3..).unwrap_or(&[]),
                    n,
                    &mut s.id,
                    &mut s.weight,
                    false,
                )?;
                if let Some(sec) = out.last_mut() {
                    sec.servers.push(s);
                }
            }
            "server-template" => {
                bail!("line {n}: `server-template` is not supported (servers come from DNS)")
            }
            "cookie"
            | "stick"
            | "stick-table"
            | "stick-store-request"
            | "stick-store-response"
            | "use-server"
            | "persist"
            | "force-persist"
            | "ignore-persist"
                if kind != "defaults" || head == "cookie" =>
            {
                bail!(
                    "line {n}: `{head}` (persistence) is not supported: it sends a request to \
                     a server its key does not choose"
                )
            }
            "http-request" => {
                if let Some(a) = w.get(1).filter(|a| REWRITES.contains(&a.as_str())) {
                    bail!(
                        "line {n}: `http-request {a}` may rewrite what the balance algorithm \
                         reads: not supported in a hashing backend"
                    );
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses the backend or listen section named `pool` (or the only one with
/// servers).
///
/// # Errors
/// Syntax errors, unsupported directives, a missing or ambiguous backend.
pub fn parse(text: &str, pool: Option<&str>) -> anyhow::Result<HaproxyBackend> {
    check_size(text)?;
    let secs = sections(text)?;
    let names = |secs: &[&Section]| {
        let mut s = String::new();
        for x in secs {
            let _ = write!(s, "{}{}", if s.is_empty() { "" } else { ", " }, x.name);
        }
        s
    };
    let with_servers: Vec<&Section> = secs.iter().filter(|s| !s.servers.is_empty()).collect();
    let sec = match pool {
        Some(p) => match secs.iter().find(|s| s.name == p) {
            Some(s) => s,
            None => bail!(
                "no backend '{p}' (backends: {})",
                names(&secs.iter().collect::<Vec<_>>())
            ),
        },
        None => match with_servers.as_slice() {
            [] => bail!("no backend with servers"),
            [one] => *one,
            _ => bail!(
                "several backends have servers: pick one with --pool ({})",
                names(&with_servers)
            ),
        },
    };
    let at = sec.line;
    let key = match &sec.settings.balance {
        None => bail!(
            "backend '{}' (line {at}) has no `balance` (round robin): it does not hash keys",
            sec.name
        ),
        Some((Err(e), l)) => bail!("line {l}: {e}"),
        Some((Ok(k), _)) => k.clone(),
    };
    // No `hash-type`: HAProxy's default, map-based with sdbm.
    let (hash, map_based) = match &sec.settings.hash_type {
        None => (HashType::new(HashFunction::Sdbm, false), true),
        Some((Err(e), l)) => bail!("line {l}: {e}"),
        Some((Ok(h), _)) => *h,
    };
    if sec.servers.is_empty() {
        bail!("backend '{}' has no server", sec.name);
    }
    // The cap first, then one pass: a file of many servers fails at once.
    if sec.servers.len() > HAPROXY_MAX_SERVERS {
        return Err(LimitError::TooManyServers {
            count: sec.servers.len(),
            max: HAPROXY_MAX_SERVERS,
        })
        .with_context(|| format!("backend '{}' (line {at})", sec.name));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(sec.servers.len());
    for s in &sec.servers {
        if let Some(first) = seen.insert(&s.name, s.line) {
            bail!(
                "line {}: server name '{}' already used on line {first}",
                s.line,
                s.name,
            );
        }
    }
    Ok(HaproxyBackend {
        name: sec.name.clone(),
        hash,
        map_based,
        key,
        servers: sec.servers.clone(),
    })
}

enum Lookup {
    Consistent(Box<Consistent>),
    Map(Box<Map>),
}

/// A parsed backend, routing keys as HAProxy 2.6 does.
pub struct HaproxyRouter {
    lookup: Lookup,
    hash: HashType,
    key: KeySource,
    names: Vec<String>,
}

impl std::fmt::Debug for HaproxyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaproxyRouter")
            .field(
                "hash-type",
                &match self.lookup {
                    Lookup::Consistent(_) => "consistent",
                    Lookup::Map(_) => "map-based",
                },
            )
            .field("hash", &self.hash)
            .field("key", &self.key)
            .field("servers", &self.names)
            .finish()
    }
}

impl HaproxyRouter {
    /// Builds the router of a backend.
    ///
    /// # Errors
    /// Capacity ([`HAPROXY_MAX_SERVERS`], [`HAPROXY_MAX_NODES`],
    /// [`HAPROXY_MAX_MAP_SLOTS`]), ids, or chring errors.
    pub fn new(be: &HaproxyBackend) -> anyhow::Result<Self> {
        if be.servers.len() > HAPROXY_MAX_SERVERS {
            bail!("at most {HAPROXY_MAX_SERVERS} servers per backend are supported");
        }
        let hash = be.hash;
        let lookup = if be.map_based {
            let weights: Vec<u32> = be.servers.iter().map(|s| s.weight).collect();
            let mut map: Box<Map> = on_big_stack(move || Box::new(Map::new(hash)))?;
            map.set_weights(&weights).with_context(|| {
                format!(
                    "backend '{}': map-based needs at most {HAPROXY_MAX_MAP_SLOTS} slots \
                     (total weight / gcd of the weights)",
                    be.name
                )
            })?;
            Lookup::Map(map)
        } else {
            let total: u64 = be.servers.iter().map(|s| u64::from(s.weight)).sum();
            if total * u64::from(NODES_PER_WEIGHT) > HAPROXY_MAX_NODES as u64 {
                bail!(
                    "total weight {total} needs more than the {HAPROXY_MAX_NODES} nodes supported"
                );
            }
            let mut ids: Vec<u32> = be.servers.iter().map(|s| s.id).collect();
            assign_ids(&mut ids).context("server ids")?;
            let mut backend: Box<Consistent> =
                on_big_stack(move || Box::new(Consistent::new(hash)))?;
            for (s, id) in be.servers.iter().zip(ids) {
                backend
                    .add(id, s.weight)
                    .with_context(|| format!("line {}: server '{}' (id {id})", s.line, s.name))?;
            }
            Lookup::Consistent(backend)
        };
        Ok(Self {
            lookup,
            hash,
            key: be.key.clone(),
            names: be.servers.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The 32-bit hash HAProxy looks up for a request whose key (header value,
    /// URI, parameter value, client address) is `key`; `Err` with the reason
    /// when HAProxy does not pick by key for it.
    fn key_hash(&self, key: &[u8]) -> Result<u32, &'static str> {
        if let KeySource::Source = self.key {
            let ip = std::str::from_utf8(key)
                .ok()
                .map(|t| t.trim().trim_start_matches('[').trim_end_matches(']'))
                .and_then(|t| t.parse::<std::net::IpAddr>().ok())
                .ok_or(
                    "not an IPv4 or IPv6 address (`balance source` hashes the client address)",
                )?;
            return Ok(source_hash(ip, self.hash.avalanche));
        }
        let part = hashed_part(&self.key, key).ok_or(
            "nothing to hash (the header value is empty before its first comma): HAProxy \
             balances it by round robin",
        )?;
        Ok(self.hash.key_hash(part))
    }
}

/// The bytes HAProxy hashes for a request whose key (header value, URI,
/// parameter value) is `key`; `None` when it falls back to round robin.
/// `balance source` is handled by [`HaproxyRouter::key_hash`].
fn hashed_part<'k>(source: &KeySource, key: &'k [u8]) -> Option<&'k [u8]> {
    match source {
        KeySource::Header(_) | KeySource::HeaderDomain(_) => {
            let first = key.split(|&b| b == b',').next().unwrap_or(&[]);
            let first = first.trim_ascii();
            if first.is_empty() {
                return None;
            }
            Some(if matches!(source, KeySource::HeaderDomain(_)) {
                domain_only(first)
            } else {
                first
            })
        }
        KeySource::Uri {
            whole,
            len,
            depth,
            path_only: only,
        } => {
            let key = if *only { path_only(key) } else { key };
            let limit = if *len > 0 {
                key.len().min(*len)
            } else {
                key.len()
            };
            let mut slashes = 0;
            let mut end = 0;
            for &c in key.get(..limit).unwrap_or(&[]) {
                if c == b'/' {
                    slashes += 1;
                    if *depth > 0 && slashes == depth.saturating_add(1) {
                        break;
                    }
                } else if c == b'?' && !whole {
                    break;
                }
                end += 1;
            }
            key.get(..end)
        }
        // The value as HAProxy cuts it out of a query string: up to its first `&`.
        KeySource::UrlParam { .. } => {
            let end = key.iter().position(|&c| c == b'&').unwrap_or(key.len());
            key.get(..end)
        }
        KeySource::Source => None,
        KeySource::Expr(_) => Some(key),
    }
}

impl KeyRouter for HaproxyRouter {
    fn route(&mut self, key: &[u8]) -> Option<&str> {
        let h = self.key_hash(key).ok()?;
        let i = match &self.lookup {
            Lookup::Consistent(c) => c.lookup_hash(h),
            Lookup::Map(m) => m.lookup_hash(h),
        }?;
        self.names.get(i).map(String::as_str)
    }

    fn backends(&self) -> &[String] {
        &self.names
    }

    fn unrouted(&self, key: &[u8]) -> String {
        match self.key_hash(key) {
            Err(why) => why.into(),
            Ok(_) => "no server to route to (every weight is 0)".into(),
        }
    }
}

/// The router of the backend `pool` (or the only one with servers) of an
/// HAProxy configuration.
///
/// # Errors
/// Parse errors, unsupported directives, a missing or ambiguous backend.
pub fn router(text: &str, pool: Option<&str>) -> anyhow::Result<Box<dyn KeyRouter>> {
    Ok(Box::new(HaproxyRouter::new(&parse(text, pool)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: anyhow::Result<Box<dyn KeyRouter>>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => format!("{e:#}"),
        }
    }

    const CFG: &str = "
global
    maxconn 100
defaults
    mode http
    balance hdr(X-Key)
    hash-type consistent
    timeout connect 1s
frontend fe
    bind 127.0.0.1:8080
    default_backend cache
backend cache
    server a 10.0.0.1:80 check
    server b 10.0.0.2:80 weight 3 id 7
    server 'c' 10.0.0.3:80 # comment
backend uris
    balance uri depth 2 len 40
    hash-type consistent crc32 avalanche
    default-server weight 2
    server x 10.0.0.9:80
    server y 10.0.0.8:80 weight 1
";

    #[test]
    fn parses_backends_with_defaults() {
        let be = parse(CFG, Some("cache")).unwrap();
        assert_eq!(be.hash, HashType::new(HashFunction::Sdbm, true));
        assert_eq!(be.key, KeySource::Header("x-key".into()));
        let s: Vec<(&str, u32, u32)> = be
            .servers
            .iter()
            .map(|s| (s.name.as_str(), s.id, s.weight))
            .collect();
        assert_eq!(s, [("a", 0, 1), ("b", 7, 3), ("c", 0, 1)]);
        let be = parse(CFG, Some("uris")).unwrap();
        assert_eq!(be.hash, HashType::new(HashFunction::Crc32, true));
        assert_eq!(
            be.key,
            KeySource::Uri {
                whole: false,
                len: 40,
                depth: 2,
                path_only: false,
            }
        );
        assert_eq!(be.servers[0].weight, 2);
        assert_eq!(be.servers[1].weight, 1);
    }

    #[test]
    fn routes_like_chring_compat() {
        let mut r = router(CFG, Some("cache")).unwrap();
        let mut c: HaproxyConsistent<4, 256> = HaproxyConsistent::new(HashType::default());
        c.add(1, 1).unwrap();
        c.add(7, 3).unwrap();
        c.add(3, 1).unwrap(); // auto ids: a=1, (b explicit), c=3
        for i in 0..300 {
            let k = format!("key-{i}");
            let want = ["a", "b", "c"][c.lookup(k.as_bytes()).unwrap()];
            assert_eq!(r.route(k.as_bytes()), Some(want));
            let spaced = format!("  {k} , other");
            assert_eq!(r.route(spaced.as_bytes()), Some(want));
        }
        assert_eq!(r.route(b""), None);
        assert_eq!(r.route(b" ,x"), None);
    }

    #[test]
    fn uri_parts() {
        let u = |whole, len, depth| KeySource::Uri {
            whole,
            len,
            depth,
            path_only: false,
        };
        let k = b"/a/b/c?x=1";
        assert_eq!(hashed_part(&u(false, 0, 0), k), Some(&b"/a/b/c"[..]));
        assert_eq!(hashed_part(&u(true, 0, 0), k), Some(&k[..]));
        assert_eq!(hashed_part(&u(false, 0, 2), k), Some(&b"/a/b"[..]));
        assert_eq!(hashed_part(&u(false, 3, 0), k), Some(&b"/a/"[..]));
    }

    #[test]
    fn errors() {
        let base = "backend b\n balance hdr(k)\n hash-type consistent\n server s 1.1.1.1:1\n";
        assert!(router(base, None).is_ok());
        for (extra, want) in [
            (" server t 1.1.1.2:1 backup\n", "backup"),
            (" server t 1.1.1.2:1 disabled\n", "disabled"),
            (" server t 1.1.1.2:1 frobnicate\n", "frobnicate"),
            (" server t 1.1.1.2:1 weight 257\n", "weight"),
            (" server s 1.1.1.2:1\n", "already used"),
            (" server t 1.1.1.2:1 id 0\n", "id"),
            (" hash-balance-factor 150\n", "hash-balance-factor"),
            (" hash-type consistent md5\n", "md5"),
            (" balance roundrobin\n", "roundrobin"),
            (" balance url_param\n", "parameter name"),
            (" balance url_param k check_post 10\n", "only `check_post`"),
            (" balance url_param k post\n", "only `check_post`"),
            (" balance source 1\n", "no argument"),
            (
                " balance hdr(k) use_domain_only x\n",
                "only use_domain_only",
            ),
            (" balance uri path_only\n", "path-only"),
            (" balance rdp-cookie\n", "url_param NAME"),
            (" hash-type map-based md5\n", "md5"),
            (" cookie SRV insert\n", "persistence"),
            (" stick on src\n", "persistence"),
            (" http-request set-header k v\n", "rewrite"),
            (" server-template s 3 x:1\n", "server-template"),
        ] {
            let e = err(router(&format!("{base}{extra}"), None));
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = err(router(
            "backend b\n hash-type consistent\n server s a:1\n",
            None,
        ));
        assert!(e.to_string().contains("no `balance`"), "{e}");
        let e = err(router(CFG, None));
        assert!(e.to_string().contains("--pool"), "{e}");
    }

    /// Issue 10, part 5: cap before the duplicate check, duplicates in one pass.
    #[test]
    fn many_servers_fail_fast() {
        let head = "backend b\n balance hdr(k)\n hash-type consistent\n";
        let mut cfg = String::from(head);
        let mut i = 0;
        while cfg.len() < crate::MAX_CONFIG_BYTES - 64 {
            cfg.push_str(&format!(" server s{i} 1.1.1.1:1\n"));
            i += 1;
        }
        let t = std::time::Instant::now();
        let e = format!("{:#}", parse(&cfg, None).unwrap_err());
        assert!(e.contains("servers; at most 1024"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        let mut cfg = String::from(head);
        for i in 0..1023 {
            cfg.push_str(&format!(" server s{i} 1.1.1.1:1\n"));
        }
        cfg.push_str(" server s5 1.1.1.1:1\n");
        let e = format!("{:#}", parse(&cfg, None).unwrap_err());
        assert!(e.contains("line 1027") && e.contains("line 9"), "{e}");
        let mut cfg = String::new();
        let mut i = 0;
        while cfg.len() < crate::MAX_CONFIG_BYTES - 64 {
            cfg.push_str(&format!("backend b{i}\n"));
            i += 1;
        }
        cfg.push_str("backend b0\n");
        let t = std::time::Instant::now();
        let e = format!("{:#}", parse(&cfg, None).unwrap_err());
        assert!(e.contains("duplicate section 'b0'"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }

    /// Issue 10, part 5: `depth`/`len` beyond HAProxy's `int` are refused (as
    /// HAProxy does: its atoi turns them into values <= 0), never overflowed.
    #[test]
    fn uri_numbers_fit_haproxy_int() {
        let cfg = |opt: &str| {
            format!("backend b\n balance uri {opt}\n hash-type consistent\n server s 1.1.1.1:1\n")
        };
        let mut r = router(&cfg("depth 2147483647 len 2147483647"), None).unwrap();
        assert!(r.route(b"/a/b/c").is_some());
        for opt in [
            "depth 18446744073709551615",
            "depth 2147483648",
            "len 18446744073709551615",
            "depth 0",
        ] {
            let e = format!("{:#}", parse(&cfg(opt), None).unwrap_err());
            assert!(
                e.contains("2147483647") && e.contains("line 2"),
                "{opt}: {e}"
            );
        }
        let u = KeySource::Uri {
            whole: false,
            len: 0,
            depth: usize::MAX,
            path_only: false,
        };
        assert_eq!(hashed_part(&u, b"/a/b"), Some(&b"/a/b"[..]));
    }

    /// Issue 13: map-based (HAProxy's default), url_param, source, uri
    /// path-only and hdr use_domain_only route as chring's compat::haproxy.
    #[test]
    fn issue13_balances_and_map_based() {
        let cfg = |balance: &str, hash_type: &str| {
            format!(
                "backend b\n balance {balance}\n {hash_type}\n server a 1.1.1.1:1 weight 2\n \
                 server b 1.1.1.2:1 weight 4\n server c 1.1.1.3:1 weight 6\n"
            )
        };
        let names = ["a", "b", "c"];
        // No hash-type: map-based, sdbm, no avalanche.
        let be = parse(&cfg("url_param k", ""), None).unwrap();
        assert!(be.map_based);
        assert_eq!(be.hash, HashType::new(HashFunction::Sdbm, false));
        let mut map: HaproxyMap<4, 16> = HaproxyMap::new(be.hash);
        map.set_weights(&[2, 4, 6]).unwrap();
        let mut r = router(&cfg("url_param k check_post", ""), None).unwrap();
        for i in 0..300 {
            let v = format!("v{i}");
            let want = names[map.lookup(v.as_bytes()).unwrap()];
            assert_eq!(r.route(v.as_bytes()), Some(want));
            // A value is cut at `&`, as HAProxy cuts it out of a query string.
            assert_eq!(r.route(format!("{v}&x=1").as_bytes()), Some(want));
        }
        let be = parse(&cfg("source", "hash-type map-based djb2 avalanche"), None).unwrap();
        assert_eq!(
            (be.map_based, be.hash),
            (true, HashType::new(HashFunction::Djb2, true))
        );
        // `balance source` with consistent hashing: the function plays no part.
        let mut r = router(&cfg("source", "hash-type consistent wt6 avalanche"), None).unwrap();
        let mut c: HaproxyConsistent<4, 256> =
            HaproxyConsistent::new(HashType::new(HashFunction::Wt6, true));
        for (id, w) in [(1, 2), (2, 4), (3, 6)] {
            c.add(id, w).unwrap();
        }
        for ip in [
            "10.1.2.3",
            "127.0.0.1",
            "::1",
            "2001:db8::7",
            "[::1]",
            " 10.9.8.7 ",
        ] {
            let addr: std::net::IpAddr = ip.trim().trim_matches(['[', ']']).parse().unwrap();
            let want = names[c.lookup_hash(source_hash(addr, true)).unwrap()];
            assert_eq!(r.route(ip.as_bytes()), Some(want), "{ip}");
        }
        assert_eq!(r.route(b"not-an-ip"), None);
        assert!(r.unrouted(b"not-an-ip").contains("IPv4 or IPv6"));
        let mut r = router(&cfg("uri path-only", "hash-type consistent"), None).unwrap();
        for (abs, path) in [("http://h:8080/a/b?x", "/a/b"), ("https://u@h/c", "/c")] {
            let want = r.route(path.as_bytes()).map(str::to_owned);
            assert_eq!(r.route(abs.as_bytes()).map(str::to_owned), want, "{abs}");
        }
        let mut dom = router(
            &cfg("hdr(Host) use_domain_only", "hash-type consistent"),
            None,
        )
        .unwrap();
        let mut hdr = router(&cfg("hdr(Host)", "hash-type consistent"), None).unwrap();
        for host in ["www.example.com", "img.cdn.example.org", "localhost"] {
            let want = hdr.route(domain_only(host.as_bytes())).map(str::to_owned);
            assert_eq!(
                dom.route(host.as_bytes()).map(str::to_owned),
                want,
                "{host}"
            );
        }
        // Every weight 0: nothing to route to, said so.
        let zero = "backend b\n balance url_param k\n server a 1.1.1.1:1 weight 0\n";
        let mut r = router(zero, None).unwrap();
        assert_eq!(r.route(b"v"), None);
        assert!(r.unrouted(b"v").contains("weight is 0"));
        // Too many map slots for the cap: an error naming it.
        let mut big = String::from("backend b\n balance url_param k\n");
        for i in 0..300 {
            big.push_str(&format!(" server s{i} 1.1.1.1:1 weight {}\n", 200 + i % 57));
        }
        let e = err(router(&big, None));
        assert!(e.contains("65536 slots"), "{e}");
    }
}
