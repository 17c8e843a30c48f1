//! libmemcached's configuration string (memcached(3), "libmemcached
//! configuration": what `memcached()` / `memcached_create` with
//! `--CONFIGURE-FILE` read), as an application that shards through
//! libmemcached (or pylibmc, or another binding on it) has it, becomes chring's
//! [`LibmemcachedKetama`], which routes keys exactly as libmemcached 1.1 does.
//!
//! The file is the string, read with libmemcached's own rules: options are
//! separated by exactly one space; newlines, tabs and carriage returns do not
//! count as that space (they end an option and are skipped); a `#` at the start
//! of a line comments the line out and counts as an option (a space must
//! separate it from the next one). So a string libmemcached accepts is read as
//! is, and one it refuses (two spaces, a leading or trailing space, options
//! separated only by a newline) is an error naming the line. Over several
//! lines: start each line after the first with one space.
//!
//! ```text
//! # the shard map
//!  --SERVER=10.0.0.1:11211 --SERVER=10.0.0.2:11212/?2
//!  --DISTRIBUTION=consistent
//! ```
//!
//! - `--SERVER=HOST[:PORT][/?WEIGHT]`: a server (port 11211 and weight 1 by
//!   default). HOST is an IPv4 address or a host name as libmemcached's parser
//!   accepts them; it is never resolved (libmemcached hashes the text).
//! - `--DISTRIBUTION=consistent`: `MEMCACHED_DISTRIBUTION_CONSISTENT`, the
//!   same continuum as `MEMCACHED_BEHAVIOR_KETAMA`.
//! - `--HASH=MD5`: the key hash (default: one-at-a-time).
//! - Two options that are **not** libmemcached syntax stand for what an
//!   application sets in code (`memcached_behavior_set`, pylibmc's
//!   `behaviors=`): `--BEHAVIOR-KETAMA` (`MEMCACHED_BEHAVIOR_KETAMA`, pylibmc
//!   `{"ketama": True}`) and `--BEHAVIOR-KETAMA-WEIGHTED`
//!   (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`, pylibmc `{"ketama_weighted":
//!   True}`: MD5 keys and weighted points). Remove them before handing the
//!   string to libmemcached.
//!
//! Options apply in order, as libmemcached applies them: a server of weight
//! above 1 added while the distribution is consistent switches the continuum
//! to weighted, setting the distribution again switches it back, and a
//! `--HASH` after the last server changes the key hash but not the points
//! already built. Options that do not move keys (timeouts, protocol, socket
//! sizes, `--VERIFY-KEY`, `--NAMESPACE`, ...) are accepted; everything else is
//! an error naming the line: `--DISTRIBUTION=modula|random` (not a continuum),
//! other `--HASH` functions, `--SORT-HOSTS`, `--HASH-WITH-NAMESPACE`,
//! `--REMOVE-FAILED-SERVERS` and replicas (placement then depends on health or
//! reads several servers), `--SOCKET=`, `--USE-UDP`, `--CONFIGURE-FILE=` and
//! the `INCLUDE`/`RESET`/`END` statements.
//!
//! The output names a server `HOST:PORT`.

use anyhow::{Context, bail};
use chring::compat::libmemcached::{
    DEFAULT_PORT, Distribution, KeyHash, LibmemcachedKetama, MAX_HOST_LEN,
    POINTS_PER_SERVER_KETAMA, Server,
};

use crate::KeyRouter;
use crate::on_big_stack;
use crate::{LimitError, check_size};

/// Most servers in one configuration.
pub const LIBMEMCACHED_MAX_SERVERS: usize = 1024;
/// Points available (160 per server covers both continuums).
pub const LIBMEMCACHED_MAX_POINTS: usize =
    LIBMEMCACHED_MAX_SERVERS * POINTS_PER_SERVER_KETAMA as usize;

type Continuum = LibmemcachedKetama<LIBMEMCACHED_MAX_SERVERS, LIBMEMCACHED_MAX_POINTS>;

/// One `--SERVER=` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibmemcachedServer {
    /// HOST as written.
    pub host: String,
    /// PORT (11211 when absent).
    pub port: u16,
    /// WEIGHT (1 when absent).
    pub weight: u32,
    /// Line in the file (1-based).
    pub line: usize,
}

/// A configuration string, read in order into the state libmemcached ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibmemcachedConfig {
    /// The servers, in order.
    pub servers: Vec<LibmemcachedServer>,
    /// The continuum's kind when it was last built.
    pub distribution: Distribution,
    /// The hash the continuum's points were built with (unweighted only).
    pub point_hash: KeyHash,
    /// The key hash in the end.
    pub key_hash: KeyHash,
}

/// Options that do not change where keys go (some take a value).
const NEUTRAL: &[&str] = &[
    "--BINARY-PROTOCOL",
    "--BUFFER-REQUESTS",
    "--CONNECT-TIMEOUT",
    "--IO-BYTES-WATERMARK",
    "--IO-KEY-PREFETCH",
    "--IO-MSG-WATERMARK",
    "--NOREPLY",
    "--POLL-TIMEOUT",
    "--RCV-TIMEOUT",
    "--RETRY-TIMEOUT",
    "--SND-TIMEOUT",
    "--SOCKET-RECV-SIZE",
    "--SOCKET-SEND-SIZE",
    "--SUPPORT-CAS",
    "--TCP-KEEPALIVE",
    "--TCP-KEEPIDLE",
    "--TCP-NODELAY",
    "--USER-DATA",
    "--VERIFY-KEY",
    "--POOL-MIN",
    "--POOL-MAX",
    "--NAMESPACE",
    "--FETCH-VERSION",
];

/// Rejected options and why.
const REJECTED: &[(&str, &str)] = &[
    (
        "--SORT-HOSTS",
        "it reorders the servers on every rebuild: not supported yet",
    ),
    (
        "--HASH-WITH-NAMESPACE",
        "the key hash then includes the namespace: not supported yet",
    ),
    (
        "--REMOVE-FAILED-SERVERS",
        "the continuum then drops servers that fail, which depends on their health, not on the key",
    ),
    (
        "--NUMBER-OF-REPLICAS",
        "replicas store a key on several servers",
    ),
    (
        "--RANDOMIZE-REPLICA-READ",
        "replica reads pick a server at random",
    ),
    (
        "--SOCKET",
        "UNIX socket servers are not supported (only --SERVER=HOST[:PORT])",
    ),
    ("--USE-UDP", "UDP servers are not supported"),
    (
        "--CONFIGURE-FILE",
        "another file would be read: put its options here",
    ),
];

/// HOST as libmemcached's scanner accepts it: an IPv4 address, or
/// `[[:alnum:]]["."[:alnum:]_-]+[[:alnum:]]`.
fn valid_host(h: &str) -> bool {
    let b = h.as_bytes();
    let ipv4 = {
        let parts: Vec<&str> = h.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
    };
    ipv4 || (b.len() >= 3
        && b.len() <= MAX_HOST_LEN
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')))
}

/// `HOST[:PORT][/?WEIGHT]`.
fn parse_server(value: &str, line: usize) -> anyhow::Result<LibmemcachedServer> {
    let digits = |t: &str, what: &str| -> anyhow::Result<u32> {
        if t.is_empty() || t.len() > 5 || !t.bytes().all(|c| c.is_ascii_digit()) {
            bail!("line {line}: `--SERVER={value}`: {what} must be 1 to 5 digits (got '{t}')");
        }
        t.parse::<u32>()
            .with_context(|| format!("line {line}: `--SERVER={value}`: {what}"))
    };
    let (rest, weight) = match value.split_once("/?") {
        Some((r, w)) => (r, digits(w, "the weight")?),
        None => (value, 1),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => {
            let p = digits(p, "the port")?;
            let p = u16::try_from(p).ok().filter(|&p| p > 0).with_context(|| {
                format!("line {line}: `--SERVER={value}`: port {p} is not in 1..=65535")
            })?;
            (h, p)
        }
        None => (rest, DEFAULT_PORT),
    };
    if !valid_host(host) {
        bail!(
            "line {line}: `--SERVER={value}`: '{host}' is not a host libmemcached's parser \
             accepts (an IPv4 address, or a name of 3 to {MAX_HOST_LEN} letters, digits, '.', \
             '_' or '-' that starts and ends with a letter or digit)"
        );
    }
    Ok(LibmemcachedServer {
        host: host.to_string(),
        port,
        weight,
        line,
    })
}

/// Reads a libmemcached configuration string.
///
/// # Errors
/// Unsupported or malformed options (naming the line), no server, no
/// consistent distribution, more than [`LIBMEMCACHED_MAX_SERVERS`] servers.
pub fn parse(text: &str) -> anyhow::Result<LibmemcachedConfig> {
    check_size(text)?;
    let mut servers: Vec<LibmemcachedServer> = Vec::new();
    // libmemcached's state: distribution (None = modula, its default),
    // the weighted flag, the key (base) hash, and the hash of the last build.
    let mut consistent = false;
    let mut weighted = false;
    let mut hash = KeyHash::OneAtATime;
    let mut hash_set = false;
    let mut point_hash = KeyHash::OneAtATime;
    let mut distribution_set = false;
    for (word, n) in items(text)? {
        let word = word.as_str();
        {
            let (name, value) = match word.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (word.to_ascii_uppercase(), None),
            };
            match (name.as_str(), value) {
                ("--SERVER", Some(v)) => {
                    if servers.len() >= LIBMEMCACHED_MAX_SERVERS {
                        return Err(LimitError::TooManyServers {
                            count: servers.len() + 1,
                            max: LIBMEMCACHED_MAX_SERVERS,
                        })
                        .with_context(|| format!("line {n}"));
                    }
                    let s = parse_server(v, n)?;
                    // server_add: a weight above 1 under a consistent
                    // distribution turns weighted ketama on; then a rebuild.
                    if s.weight > 1 && consistent {
                        weighted = true;
                    }
                    point_hash = hash;
                    servers.push(s);
                }
                ("--DISTRIBUTION", Some(v)) => {
                    if distribution_set {
                        bail!("line {n}: --DISTRIBUTION can only be given once");
                    }
                    distribution_set = true;
                    let (d, fh) = match v.split_once(',') {
                        Some((d, h)) => (d, Some(h)),
                        None => (v, None),
                    };
                    match d.to_ascii_uppercase().as_str() {
                        "CONSISTENT" => {}
                        "MODULA" | "RANDOM" => bail!(
                            "line {n}: `--DISTRIBUTION={d}` is not supported (only consistent: \
                             the ketama continuum)"
                        ),
                        _ => bail!("line {n}: unknown distribution '{d}' (consistent)"),
                    }
                    // `consistent,HASH` sets the distribution hash, which the
                    // continuum does not use (libmemcached 1.1).
                    if let Some(h) = fh {
                        known_hash(h, n)?;
                    }
                    consistent = true;
                    weighted = false;
                    point_hash = hash;
                }
                ("--HASH", Some(v)) => {
                    if hash_set {
                        bail!("line {n}: --HASH can only be set once");
                    }
                    hash_set = true;
                    hash = known_hash(v, n)?;
                }
                ("--BEHAVIOR-KETAMA", None) => {
                    consistent = true;
                    weighted = false;
                    point_hash = hash;
                }
                ("--BEHAVIOR-KETAMA-WEIGHTED", None) => {
                    hash = KeyHash::Md5;
                    consistent = true;
                    weighted = true;
                    point_hash = hash;
                }
                (o, _) if NEUTRAL.contains(&o) => {}
                (o, _) => {
                    if let Some((_, why)) = REJECTED.iter().find(|(r, _)| *r == o) {
                        bail!("line {n}: `{word}` is not supported: {why}");
                    }
                    bail!(
                        "line {n}: unsupported option `{word}` (supported: --SERVER=HOST[:PORT]\
                         [/?WEIGHT], --DISTRIBUTION=consistent, --HASH=MD5, --BEHAVIOR-KETAMA, \
                         --BEHAVIOR-KETAMA-WEIGHTED, and options that do not move keys)"
                    );
                }
            }
        }
    }
    if servers.is_empty() {
        bail!("no --SERVER= in the configuration");
    }
    if !consistent {
        bail!(
            "no consistent distribution: libmemcached's default is modula (not supported); add \
             --DISTRIBUTION=consistent (or --BEHAVIOR-KETAMA / --BEHAVIOR-KETAMA-WEIGHTED for \
             what the application sets in code)"
        );
    }
    Ok(LibmemcachedConfig {
        servers,
        distribution: if weighted {
            Distribution::KetamaWeighted
        } else {
            Distribution::Ketama
        },
        point_hash,
        key_hash: hash,
    })
}

/// Splits a configuration string into its options (and comments), each with
/// the line it starts on, as libmemcached's scanner and grammar do: exactly one
/// space between two of them, `\t`, `\r` and `\n` no such space (they end
/// an option and are skipped), `#` at the start
/// of a line a comment to its end. Comments are dropped from the result.
fn items(text: &str) -> anyhow::Result<Vec<(String, usize)>> {
    #[derive(PartialEq)]
    enum Last {
        Start,
        Item,
        Space,
    }
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut word = String::new();
    let mut word_line = 0;
    let mut last = Last::Start;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        if line.starts_with('#') {
            // A comment is a statement of its own: a space before it unless
            // it comes first (a word running into it from the line before is
            // cut here, as the scanner's `^#` rule cuts it).
            if !word.is_empty() {
                out.push((std::mem::take(&mut word), word_line));
                last = Last::Item;
            }
            if last == Last::Item {
                bail!("line {n}: a comment must follow a space (libmemcached refuses the string)");
            }
            last = Last::Item;
            continue;
        }
        for c in line.chars() {
            match c {
                // Skipped by the scanner: they end a word, but are not the
                // space the grammar needs.
                '\t' | '\r' => {
                    if !word.is_empty() {
                        out.push((std::mem::take(&mut word), word_line));
                        last = Last::Item;
                    }
                }
                ' ' => {
                    if !word.is_empty() {
                        out.push((std::mem::take(&mut word), word_line));
                        last = Last::Item;
                    }
                    match last {
                        Last::Start => bail!(
                            "line {n}: a leading space (libmemcached refuses the string: options \
                             start at its first character)"
                        ),
                        Last::Space => bail!(
                            "line {n}: two spaces in a row (libmemcached needs exactly one \
                             between two options)"
                        ),
                        Last::Item => last = Last::Space,
                    }
                }
                c => {
                    if word.is_empty() {
                        if last == Last::Item {
                            bail!(
                                "line {n}: no space before this option (libmemcached ignores \
                                 newlines and tabs: options need one space between them)"
                            );
                        }
                        word_line = n;
                    }
                    word.push(c);
                }
            }
        }
        // A newline ends a word (the scanner skips it between tokens) but is
        // not the space the grammar needs between two options.
        if !word.is_empty() {
            out.push((std::mem::take(&mut word), word_line));
            last = Last::Item;
        }
    }
    if !word.is_empty() {
        out.push((word, word_line));
    } else if last == Last::Space {
        bail!("a trailing space at the end (libmemcached refuses the string)");
    }
    Ok(out)
}

fn known_hash(h: &str, line: usize) -> anyhow::Result<KeyHash> {
    match h.to_ascii_uppercase().as_str() {
        "MD5" => Ok(KeyHash::Md5),
        "CRC" | "FNV1_64" | "FNV1A_64" | "FNV1_32" | "FNV1A_32" | "HSIEH" | "MURMUR"
        | "JENKINS" => {
            bail!("line {line}: hash {h} is not supported (the default one-at-a-time, or MD5)")
        }
        _ => bail!("line {line}: unknown hash '{h}'"),
    }
}

/// A parsed configuration, routing keys as libmemcached does.
pub struct LibmemcachedRouter {
    continuum: Box<Continuum>,
    names: Vec<String>,
}

impl std::fmt::Debug for LibmemcachedRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibmemcachedRouter")
            .field("points", &self.continuum.points())
            .field("key_hash", &self.continuum.key_hash())
            .field("servers", &self.names)
            .finish()
    }
}

impl LibmemcachedRouter {
    /// Builds the continuum of a configuration.
    ///
    /// # Errors
    /// Capacity or chring errors (a weighted continuum whose weights are all 0).
    pub fn new(cfg: &LibmemcachedConfig) -> anyhow::Result<Self> {
        let servers: Vec<Server<'_>> = cfg
            .servers
            .iter()
            .map(|s| Server {
                host: s.host.as_bytes(),
                port: s.port,
                weight: s.weight,
            })
            .collect();
        let mut continuum: Box<Continuum> = on_big_stack(|| Box::new(Continuum::new()))?;
        continuum
            .build(&servers, cfg.distribution, cfg.point_hash)
            .context("building the continuum")?;
        continuum.set_key_hash(cfg.key_hash);
        Ok(Self {
            continuum,
            names: cfg
                .servers
                .iter()
                .map(|s| format!("{}:{}", s.host, s.port))
                .collect(),
        })
    }
}

impl KeyRouter for LibmemcachedRouter {
    fn route(&mut self, key: &[u8]) -> Option<&str> {
        let i = self.continuum.lookup(key)?;
        self.names.get(i).map(String::as_str)
    }

    fn backends(&self) -> &[String] {
        &self.names
    }
}

/// The router of a libmemcached configuration string (`pool` must be `None`:
/// the string has one server list).
///
/// # Errors
/// Parse errors, unsupported options, `--pool` given.
pub fn router(text: &str, pool: Option<&str>) -> anyhow::Result<Box<dyn KeyRouter>> {
    if let Some(p) = pool {
        bail!("a libmemcached configuration has one server list: no pool '{p}' to pick");
    }
    Ok(Box::new(LibmemcachedRouter::new(&parse(text)?)?))
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

    #[test]
    fn reads_servers_and_distribution() {
        let text = "# shard map\n --SERVER=10.0.0.1 --SERVER=cache-b.local:11212/?1 \n\
                    --DISTRIBUTION=consistent --TCP-NODELAY --CONNECT-TIMEOUT=100\n";
        let c = parse(text).unwrap();
        assert_eq!(c.distribution, Distribution::Ketama);
        assert_eq!(
            (c.point_hash, c.key_hash),
            (KeyHash::OneAtATime, KeyHash::OneAtATime)
        );
        let s: Vec<(&str, u16, u32, usize)> = c
            .servers
            .iter()
            .map(|s| (s.host.as_str(), s.port, s.weight, s.line))
            .collect();
        assert_eq!(
            s,
            [("10.0.0.1", 11211, 1, 2), ("cache-b.local", 11212, 1, 2)]
        );
        let mut r = router(text, None).unwrap();
        assert_eq!(r.backends(), ["10.0.0.1:11211", "cache-b.local:11212"]);
        let mut lm: LibmemcachedKetama<2, 200> = LibmemcachedKetama::new();
        let servers = [
            Server {
                host: b"10.0.0.1",
                port: 11211,
                weight: 1,
            },
            Server {
                host: b"cache-b.local",
                port: 11212,
                weight: 1,
            },
        ];
        lm.build(&servers, Distribution::Ketama, KeyHash::OneAtATime)
            .unwrap();
        for i in 0..300 {
            let k = format!("key:{i}");
            let want = r.backends()[lm.lookup(k.as_bytes()).unwrap()].clone();
            assert_eq!(r.route(k.as_bytes()), Some(want.as_str()));
        }
    }

    /// Options apply in libmemcached's order (issue 13).
    #[test]
    fn order_matters_as_in_libmemcached() {
        let weighted = |t: &str| parse(t).unwrap().distribution;
        // A weight above 1 under consistent: weighted.
        assert_eq!(
            weighted("--DISTRIBUTION=consistent --SERVER=aaa:1/?2 --SERVER=bbb:1"),
            Distribution::KetamaWeighted
        );
        // The same servers before the distribution: the weight is ignored.
        assert_eq!(
            weighted("--SERVER=aaa:1/?2 --SERVER=bbb:1 --DISTRIBUTION=consistent"),
            Distribution::Ketama
        );
        let c = parse("--BEHAVIOR-KETAMA-WEIGHTED --SERVER=aaa:1").unwrap();
        assert_eq!(
            (c.distribution, c.key_hash),
            (Distribution::KetamaWeighted, KeyHash::Md5)
        );
        // --HASH after the last build: keys MD5, points one-at-a-time.
        let c = parse("--BEHAVIOR-KETAMA --SERVER=aaa:1 --SERVER=bbb:2 --HASH=md5").unwrap();
        assert_eq!(
            (c.point_hash, c.key_hash),
            (KeyHash::OneAtATime, KeyHash::Md5)
        );
        let c = parse("--HASH=MD5 --BEHAVIOR-KETAMA --SERVER=aaa:1").unwrap();
        assert_eq!((c.point_hash, c.key_hash), (KeyHash::Md5, KeyHash::Md5));
    }

    /// libmemcached's separators: exactly one space; newlines and tabs
    /// ignored; `#` comments at a line's start (checked against the real
    /// parser by tests/compat_libmemcached.rs).
    #[test]
    fn separators_as_libmemcached() {
        let ok = |t: &str| parse(&format!("{t} --BEHAVIOR-KETAMA")).map(|c| c.servers.len());
        assert_eq!(ok("--SERVER=aaa \n--SERVER=bbb").unwrap(), 2);
        assert_eq!(ok("--SERVER=aaa\n --SERVER=bbb").unwrap(), 2);
        assert_eq!(ok("--SERVER=aaa\t --SERVER=bbb").unwrap(), 2);
        assert_eq!(ok("# c\n --SERVER=aaa \n# d\n --SERVER=bbb").unwrap(), 2);
        for (bad, want) in [
            ("--SERVER=aaa\n--SERVER=bbb", "line 2: no space"),
            ("--SERVER=aaa\t--SERVER=bbb", "line 1: no space"),
            ("--SERVER=aaa  --SERVER=bbb", "two spaces"),
            (" --SERVER=aaa", "leading space"),
            ("# c\n--SERVER=aaa", "line 2: no space"),
            ("--SERVER=aaa\n# c\n --SERVER=bbb", "line 2: a comment"),
            ("--SERVER=aaa # c", "unsupported option `#`"),
        ] {
            let e = format!(
                "{:#}",
                parse(&format!("{bad} --BEHAVIOR-KETAMA")).unwrap_err()
            );
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        let e = format!(
            "{:#}",
            parse("--BEHAVIOR-KETAMA --SERVER=aaa ").unwrap_err()
        );
        assert!(e.contains("trailing space"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        for (bad, want) in [
            ("--SERVER=aaa:1", "modula"),
            ("--DISTRIBUTION=consistent", "no --SERVER"),
            (
                "--SERVER=aaa:1 \n--DISTRIBUTION=modula",
                "line 2: `--DISTRIBUTION=modula`",
            ),
            ("--SERVER=aaa:1 --DISTRIBUTION=random", "only consistent"),
            (
                "--DISTRIBUTION=consistent --DISTRIBUTION=consistent --SERVER=aaa",
                "once",
            ),
            (
                "--HASH=CRC --BEHAVIOR-KETAMA --SERVER=aaa",
                "CRC is not supported",
            ),
            (
                "--HASH=MD5 --HASH=MD5 --BEHAVIOR-KETAMA --SERVER=aaa",
                "once",
            ),
            ("--BEHAVIOR-KETAMA --SERVER=a", "not a host"),
            ("--BEHAVIOR-KETAMA --SERVER=-ab", "not a host"),
            ("--BEHAVIOR-KETAMA --SERVER=aaa:70000", "1..=65535"),
            ("--BEHAVIOR-KETAMA --SERVER=aaa:123456", "1 to 5 digits"),
            ("--BEHAVIOR-KETAMA --SERVER=aaa/?x", "weight"),
            (
                "--BEHAVIOR-KETAMA --SERVER=aaa\n --SORT-HOSTS",
                "line 2: `--SORT-HOSTS`",
            ),
            (
                "--BEHAVIOR-KETAMA --SERVER=aaa --REMOVE-FAILED-SERVERS=1",
                "health",
            ),
            (
                "--BEHAVIOR-KETAMA --SERVER=aaa --FROB",
                "supported: --SERVER",
            ),
            (
                "--BEHAVIOR-KETAMA --SERVER=aaa INCLUDE",
                "unsupported option `INCLUDE`",
            ),
            (
                "--BEHAVIOR-KETAMA-WEIGHTED --SERVER=aaa/?0",
                "total weight of 0",
            ),
        ] {
            let e = err(router(bad, None));
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert!(
            err(router("--BEHAVIOR-KETAMA --SERVER=aaa", Some("p"))).contains("one server list")
        );
        let mut many = String::from("--BEHAVIOR-KETAMA");
        for i in 0..1025 {
            many.push_str(&format!(" --SERVER=h{i:03}:1"));
        }
        assert!(err(router(&many, None)).contains("at most 1024"));
    }
}
