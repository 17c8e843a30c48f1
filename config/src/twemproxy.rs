//! nutcracker (twemproxy) YAML configurations: a pool with `distribution:
//! ketama` routes exactly as [`chring::compat::twemproxy::Ketama`] does.
//!
//! The file maps pool names to pools, as nutcracker's does. Read from a pool:
//! `hash:` (default `fnv1a_64`, as twemproxy), `distribution:` (default
//! `ketama`; `modula` and `random` are errors), `hash_tag:` (two characters),
//! `auto_eject_hosts:` (`true` is an error: it reroutes keys on run-time
//! failures, which a configuration cannot predict) and `servers:` (`-
//! host:port:weight [name]` or `- /path/to/socket:weight [name]`). The
//! directives that do not change routing (`listen`, `timeout`, `redis`, ...) are
//! accepted and ignored; any other directive is an error, as in nutcracker.
//! Each key is printed with its server's name, or `host:port` when unnamed.
//!
//! Hostile input stays bounded: the text is at most
//! [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES), and a first pass over
//! the YAML event stream refuses anchors and aliases (as nutcracker does; an
//! alias bomb would otherwise expand exponentially) and nesting deeper than
//! [`MAX_DEPTH`] (the loaded tree is dropped recursively), naming the line.

use anyhow::{Context, anyhow, bail};
use chring::compat::twemproxy::{Ketama, KeyHash, ServerLine};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use crate::KeyRouter;
use crate::on_big_stack;
use crate::{LimitError, check_size};

/// Most servers a pool may have here.
pub const MAX_SERVERS: usize = 1024;
/// Longest server identity accepted (twemproxy cuts the MD5 input at 272 bytes).
pub const MAX_NAME: usize = 272;
/// Points for the fullest pool: never more than 160 per server.
const MAX_POINTS: usize = 160 * MAX_SERVERS;

/// Deepest YAML nesting accepted: nutcracker's files need 3 (pools, a pool's
/// directives, its `servers` list); the margin leaves room for values a future
/// directive might nest.
pub const MAX_DEPTH: usize = 16;

type Pool = Ketama<MAX_SERVERS, MAX_POINTS, MAX_NAME>;

/// Directives nutcracker knows that do not change where a key goes.
const IGNORED: &[&str] = &[
    "listen",
    "timeout",
    "backlog",
    "client_connections",
    "redis",
    "tcpkeepalive",
    "reuseport",
    "redis_auth",
    "redis_db",
    "preconnect",
    "server_connections",
    "server_retry_timeout",
    "server_failure_limit",
];

/// A twemproxy pool as a [`KeyRouter`].
pub struct TwemproxyRouter {
    pool: Box<Pool>,
    labels: Vec<String>,
}

impl std::fmt::Debug for TwemproxyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwemproxyRouter")
            .field("hash", &self.pool.key_hash())
            .field("hash_tag", &self.pool.hash_tag())
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
        let i = self.pool.server_for(key)?;
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
    check_size(text)?;
    prescan(text)?;
    let docs = YamlLoader::load_from_str(text).context("not valid YAML")?;
    let [root] = docs.as_slice() else {
        bail!("expected one YAML document of pools, found {}", docs.len());
    };
    let Yaml::Hash(pools) = root else {
        bail!("expected a mapping of pool names to pools at the top level");
    };
    let names: Vec<String> = pools.keys().map(scalar_text).collect();
    let (name, body) = match pool {
        Some(want) => pools
            .iter()
            .find(|(k, _)| scalar_text(k) == want)
            .map(|(k, v)| (scalar_text(k), v))
            .ok_or_else(|| anyhow!("no pool '{want}'; pools: {}", names.join(", ")))?,
        None => match pools.iter().next() {
            Some((k, v)) if pools.len() == 1 => (scalar_text(k), v),
            _ if pools.is_empty() => bail!("no pool in the file"),
            _ => bail!(
                "{} pools ({}): pick one with --pool NAME",
                pools.len(),
                names.join(", ")
            ),
        },
    };
    build_pool(body).with_context(|| format!("pool '{name}'"))
}

/// Walks the YAML event stream before anything is built: refuses anchors and
/// aliases (an alias bomb expands exponentially in the loader; nutcracker's
/// libyaml reader refuses them anyway) and nesting deeper than [`MAX_DEPTH`]
/// (the loaded tree is dropped recursively). The event parser keeps its own
/// state on the heap, so this pass needs *O*(1) stack and *O*(depth) memory.
///
/// # Errors
/// [`LimitError::Alias`], [`LimitError::TooDeep`], or the YAML syntax error.
fn prescan(text: &str) -> anyhow::Result<()> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let (event, mark) = parser.next_token().context("not valid YAML")?;
        let line = mark.line();
        let anchor = match event {
            Event::StreamEnd => return Ok(()),
            Event::Alias(_) => {
                return Err(LimitError::Alias {
                    line,
                    what: "aliases",
                }
                .into());
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(LimitError::TooDeep {
                        line,
                        max: MAX_DEPTH,
                    }
                    .into());
                }
                anchor
            }
            Event::SequenceEnd | Event::MappingEnd => {
                depth = depth.saturating_sub(1);
                0
            }
            Event::Scalar(_, _, anchor, _) => anchor,
            _ => 0,
        };
        if anchor != 0 {
            return Err(LimitError::Alias {
                line,
                what: "anchors",
            }
            .into());
        }
    }
}

fn scalar_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => "~".into(),
        other => format!("{other:?}"),
    }
}

fn as_string<'a>(key: &str, y: &'a Yaml) -> anyhow::Result<&'a str> {
    y.as_str()
        .ok_or_else(|| anyhow!("'{key}:' must be a string, not {}", scalar_text(y)))
}

fn build_pool(body: &Yaml) -> anyhow::Result<TwemproxyRouter> {
    let Yaml::Hash(map) = body else {
        bail!("expected a mapping of directives");
    };
    let mut hash = KeyHash::default();
    let mut hash_tag = None;
    let mut servers = None;
    for (k, v) in map {
        let key = k
            .as_str()
            .ok_or_else(|| anyhow!("directive names must be strings: {}", scalar_text(k)))?;
        match key {
            "hash" => {
                let s = as_string(key, v)?;
                hash = s.parse().map_err(|e| anyhow!("hash: '{s}': {e}"))?;
            }
            "distribution" => match as_string(key, v)? {
                "ketama" => {}
                d @ ("modula" | "random") => {
                    bail!("distribution: {d} is not supported (only ketama, the consistent one)")
                }
                d => bail!("distribution: unknown '{d}' (nutcracker has ketama, modula, random)"),
            },
            "hash_tag" => {
                let s = as_string(key, v)?;
                let tag: [u8; 2] = s.as_bytes().try_into().map_err(|_| {
                    anyhow!("hash_tag: '{s}' must be exactly two characters, as in \"{{}}\"")
                })?;
                hash_tag = Some(tag);
            }
            "auto_eject_hosts" => match v {
                Yaml::Boolean(false) => {}
                Yaml::Boolean(true) => bail!(
                    "auto_eject_hosts: true is not supported: nutcracker then removes failing \
                     servers from the continuum at run time, so routing depends on failures \
                     a configuration cannot predict (set it to false to route the healthy pool)"
                ),
                other => bail!(
                    "auto_eject_hosts: expected true or false, not {}",
                    scalar_text(other)
                ),
            },
            "servers" => servers = Some(v),
            k if IGNORED.contains(&k) => {}
            k => bail!("unknown directive '{k}:'"),
        }
    }
    let Some(Yaml::Array(list)) = servers else {
        bail!("'servers:' is missing or not a list");
    };
    if list.is_empty() {
        bail!("'servers:' is empty");
    }
    if list.len() > MAX_SERVERS {
        bail!(
            "{} servers; at most {MAX_SERVERS} are supported",
            list.len()
        );
    }
    let mut lines = Vec::with_capacity(list.len());
    for (i, y) in list.iter().enumerate() {
        let text = y.as_str().ok_or_else(|| {
            anyhow!(
                "server {}: expected a string, not {}",
                i + 1,
                scalar_text(y)
            )
        })?;
        lines.push(text.to_string());
    }
    // Validate before building the (large) pool on its own stack.
    for (i, text) in lines.iter().enumerate() {
        ServerLine::parse(text.as_bytes())
            .map_err(|e| anyhow!("server {} '{text}': {e}", i + 1))?;
    }
    on_big_stack(move || -> anyhow::Result<TwemproxyRouter> {
        let mut pool = Box::new(Pool::new(hash));
        pool.set_hash_tag(hash_tag);
        let mut labels = Vec::with_capacity(lines.len());
        let mut servers = Vec::with_capacity(lines.len());
        for (i, text) in lines.iter().enumerate() {
            let s = ServerLine::parse(text.as_bytes())
                .map_err(|e| anyhow!("server {} '{text}': {e}", i + 1))?;
            servers.push((s.identity(), s.weight));
            labels.push(String::from_utf8_lossy(s.label()).into_owned());
        }
        // One continuum build for the whole pool (one per server is O(n^2)).
        pool.add_many(&servers).map_err(|e| {
            let i = e.index;
            let e = e.error;
            anyhow!(
                "server {} '{}' (identity '{}'): {e}",
                i + 1,
                lines.get(i).map_or("", String::as_str),
                String::from_utf8_lossy(servers.get(i).map_or(&[][..], |s| s.0))
            )
        })?;
        Ok(TwemproxyRouter { pool, labels })
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
            ("  distribution: modula\n", "not supported"),
            ("  distribution: random\n", "not supported"),
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
}
