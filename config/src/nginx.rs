//! nginx.conf: an `upstream NAME { hash KEY [consistent]; server ADDR ...; }`
//! block (in `http` or `stream`) becomes chring's
//! [`NginxConsistent`] (`hash ... consistent;`) or [`NginxModulo`] (plain
//! `hash ...;`), and an `upstream NAME { ip_hash; server ...; }` block
//! chring's [`NginxIpHash`], which route keys exactly as nginx 1.22 does.
//!
//! The key read on stdin is the value of the `hash` directive's expression for
//! a request (for `hash $http_x_key consistent;`, the `X-Key` header's value),
//! or for `ip_hash` the client's IPv4 or IPv6 address as text (`10.1.2.3`,
//! `2001:db8::1`, `[::1]`). The output names a server by its address text as
//! written on its `server` line.
//!
//! Accepted in the upstream: `hash` or `ip_hash`, `server` with `weight=`,
//! `max_fails=`, `fail_timeout=` (passive health: routing is modelled with
//! every server healthy) and `down` (modelled exactly, as nginx skips it), and
//! the routing-neutral `keepalive*` and `zone`. Everything else in the upstream
//! (`backup`, `max_conns=`, `resolve`, `random`, `least_conn`, both `hash` and
//! `ip_hash`, ...) is an error: it would change where keys go in ways a key
//! cannot decide.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use anyhow::{Context, bail};
use chring::compat::nginx::{NginxConsistent, NginxIpHash, NginxModulo, POINTS_PER_WEIGHT};

use crate::KeyRouter;
use crate::on_big_stack;
use crate::{LimitError, check_size};

/// Most servers in one upstream.
pub const NGINX_MAX_SERVERS: usize = 1024;
/// Points available to `hash ... consistent` (`160 x total weight` must fit).
pub const NGINX_MAX_POINTS: usize = 262_144;

type Consistent = NginxConsistent<NGINX_MAX_SERVERS, NGINX_MAX_POINTS>;

/// One `server` line of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxServer {
    /// The address text as written (`127.0.0.1:8080`, `cache-a`, `unix:/s`).
    pub address: String,
    /// `weight=`, default 1.
    pub weight: u32,
    /// The `down` flag.
    pub down: bool,
    /// Line in the file (1-based).
    pub line: usize,
}

/// An `upstream` block that hashes by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxUpstream {
    /// Its name.
    pub name: String,
    /// The `hash` directive's key expression (e.g. `$request_uri`).
    pub key: String,
    /// `hash ... consistent;` (else plain `hash ...;`).
    pub consistent: bool,
    /// `ip_hash;` (then `key` is `$remote_addr`, as what it hashes).
    pub ip_hash: bool,
    /// Its servers in order.
    pub servers: Vec<NginxServer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String, usize),
    Semi(usize),
    Open(usize),
    Close(usize),
}

/// Splits nginx.conf into words, `;`, `{` and `}` (quotes and `#` comments
/// handled as nginx does; `\` escapes the next character in quotes).
fn tokens(text: &str) -> anyhow::Result<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |word: &mut String, out: &mut Vec<Tok>, l: usize| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word), l));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                flush(&mut word, &mut out, word_line);
                line += 1;
            }
            c if c.is_whitespace() => flush(&mut word, &mut out, word_line),
            '#' if word.is_empty() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut out, word_line);
                out.push(match c {
                    ';' => Tok::Semi(line),
                    '{' => Tok::Open(line),
                    _ => Tok::Close(line),
                });
            }
            '"' | '\'' if word.is_empty() => {
                word_line = line;
                let quote = c;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        c if c == quote => {
                            closed = true;
                            break;
                        }
                        '\n' => {
                            line += 1;
                            word.push(c);
                        }
                        c => word.push(c),
                    }
                }
                if !closed {
                    bail!("line {word_line}: unterminated quote");
                }
                // An empty quoted word is still a word.
                out.push(Tok::Word(std::mem::take(&mut word), word_line));
            }
            c => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut out, word_line);
    Ok(out)
}

/// One directive: its words, the line it starts on, and whether a block follows.
struct Directive {
    words: Vec<String>,
    line: usize,
    block: bool,
}

/// Reads the directives of the whole file, calling `f` with the block path
/// (names of enclosing block directives) for each.
fn walk(
    toks: &[Tok],
    mut f: impl FnMut(&[String], &Directive) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut path: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut first_line = 0;
    for t in toks {
        match t {
            Tok::Word(w, l) => {
                if words.is_empty() {
                    first_line = *l;
                }
                words.push(w.clone());
            }
            Tok::Semi(l) => {
                if words.is_empty() {
                    bail!("line {l}: unexpected ';'");
                }
                let d = Directive {
                    words: std::mem::take(&mut words),
                    line: first_line,
                    block: false,
                };
                f(&path, &d)?;
            }
            Tok::Open(l) => {
                if words.is_empty() {
                    bail!("line {l}: unexpected '{{'");
                }
                let d = Directive {
                    words: std::mem::take(&mut words),
                    line: first_line,
                    block: true,
                };
                f(&path, &d)?;
                path.push(d.words.join(" "));
            }
            Tok::Close(l) => {
                if !words.is_empty() {
                    bail!("line {l}: missing ';' before '}}'");
                }
                if path.pop().is_none() {
                    bail!("line {l}: unexpected '}}'");
                }
            }
        }
    }
    if !words.is_empty() {
        bail!("unexpected end of file: missing ';'");
    }
    if !path.is_empty() {
        bail!("unexpected end of file: missing '}}'");
    }
    Ok(())
}

/// Parses every `upstream` block of an nginx.conf (all of them, hashing or
/// not; `hash` is `None`-like: `key` empty when the upstream has no `hash`).
///
/// # Errors
/// Syntax errors and unsupported directives or parameters, naming the line.
pub fn parse(text: &str) -> anyhow::Result<Vec<NginxUpstream>> {
    check_size(text)?;
    let toks = tokens(text)?;
    let mut ups: Vec<NginxUpstream> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    walk(&toks, |path, d| {
        let inside = path.last().is_some_and(|p| p.starts_with("upstream "));
        let head = d.words.first().map(String::as_str).unwrap_or("");
        if !inside {
            if head == "upstream" {
                let [_, name] = d.words.as_slice() else {
                    bail!("line {}: expected `upstream NAME {{`", d.line);
                };
                if !d.block {
                    bail!("line {}: expected `upstream NAME {{`", d.line);
                }
                if !names.insert(name.clone()) {
                    bail!("line {}: duplicate upstream '{name}'", d.line);
                }
                ups.push(NginxUpstream {
                    name: name.clone(),
                    key: String::new(),
                    consistent: false,
                    ip_hash: false,
                    servers: Vec::new(),
                });
            }
            return Ok(());
        }
        let Some(up) = ups.last_mut() else {
            return Ok(());
        };
        let line = d.line;
        if d.block {
            bail!(
                "line {line}: unexpected block `{head} {{` in upstream '{}'",
                up.name
            );
        }
        match head {
            "hash" => {
                if up.ip_hash {
                    bail!(
                        "line {line}: both `ip_hash` and `hash` in upstream '{}' (nginx keeps \
                         the last with a warning): keep one",
                        up.name
                    );
                }
                if !up.key.is_empty() {
                    bail!("line {line}: a second `hash` in upstream '{}'", up.name);
                }
                match d.words.as_slice() {
                    [_, key] => up.key = key.clone(),
                    [_, key, c] if c == "consistent" => {
                        up.key = key.clone();
                        up.consistent = true;
                    }
                    [_, _, other] => bail!("line {line}: invalid parameter \"{other}\" of `hash`"),
                    _ => bail!("line {line}: `hash` takes a key and optionally `consistent`"),
                }
                if up.key.is_empty() {
                    bail!("line {line}: empty `hash` key");
                }
            }
            "ip_hash" => {
                if d.words.len() > 1 {
                    bail!("line {line}: `ip_hash` takes no argument");
                }
                if !up.key.is_empty() {
                    bail!(
                        "line {line}: both `hash` and `ip_hash` in upstream '{}' (nginx keeps \
                         the last with a warning): keep one",
                        up.name
                    );
                }
                up.ip_hash = true;
                up.key = "$remote_addr".into();
            }
            "server" => up.servers.push(parse_server(&d.words, line)?),
            "keepalive" | "keepalive_requests" | "keepalive_time" | "keepalive_timeout"
            | "zone" => {}
            "least_conn" | "random" | "sticky" | "ntlm" | "queue" | "resolver"
            | "resolver_timeout" | "least_time" => bail!(
                "line {line}: `{head}` in upstream '{}' changes how servers are picked: not \
                 supported (only `hash KEY [consistent]` and `ip_hash`)",
                up.name
            ),
            other => bail!(
                "line {line}: unsupported directive `{other}` in upstream '{}' (it may change \
                 routing)",
                up.name
            ),
        }
        Ok(())
    })?;
    Ok(ups)
}

fn parse_server(words: &[String], line: usize) -> anyhow::Result<NginxServer> {
    let Some(address) = words.get(1) else {
        bail!("line {line}: `server` needs an address");
    };
    let mut s = NginxServer {
        address: address.clone(),
        weight: 1,
        down: false,
        line,
    };
    for p in words.iter().skip(2) {
        if let Some(w) = p.strip_prefix("weight=") {
            s.weight = w
                .parse::<u32>()
                .ok()
                .filter(|&w| w > 0)
                .with_context(|| format!("line {line}: invalid weight \"{w}\""))?;
        } else if p.starts_with("max_fails=") || p.starts_with("fail_timeout=") {
            // Passive health checks: routing is modelled with healthy servers.
        } else if p == "down" {
            s.down = true;
        } else if p == "backup" {
            bail!(
                "line {line}: `backup` is not supported (nginx rejects it with `hash` after \
                 the hash directive, and ignores backups for hashing before it)"
            );
        } else if p.starts_with("max_conns=") {
            bail!(
                "line {line}: `max_conns=` is not supported: nginx then skips busy servers, \
                 which depends on load, not on the key"
            );
        } else {
            bail!("line {line}: unsupported server parameter `{p}` (it may change routing)");
        }
    }
    Ok(s)
}

/// Picks the upstream named `pool`, or the only one that hashes.
fn choose(ups: Vec<NginxUpstream>, pool: Option<&str>) -> anyhow::Result<NginxUpstream> {
    let names = |ups: &[NginxUpstream]| {
        let mut s = String::new();
        for u in ups {
            let _ = write!(s, "{}{}", if s.is_empty() { "" } else { ", " }, u.name);
        }
        s
    };
    let up = match pool {
        Some(p) => match ups.iter().position(|u| u.name == p) {
            Some(i) => ups.into_iter().nth(i),
            None => bail!("no upstream '{p}' (upstreams: {})", names(&ups)),
        },
        None => {
            let hashing: Vec<NginxUpstream> =
                ups.iter().filter(|u| !u.key.is_empty()).cloned().collect();
            match hashing.len() {
                0 if ups.is_empty() => bail!("no `upstream` block"),
                0 => bail!("no upstream hashes by key (upstreams: {})", names(&ups)),
                1 => hashing.into_iter().next(),
                _ => bail!(
                    "several upstreams hash by key: pick one with --pool ({})",
                    names(&hashing)
                ),
            }
        }
    };
    let Some(up) = up else {
        bail!("no upstream");
    };
    if up.key.is_empty() {
        bail!(
            "upstream '{}' has no `hash` directive (it balances by round robin, not by key)",
            up.name
        );
    }
    if up.servers.is_empty() {
        bail!("upstream '{}' has no server", up.name);
    }
    // The cap first, then one pass: a file of many servers fails at once.
    if up.servers.len() > NGINX_MAX_SERVERS {
        return Err(LimitError::TooManyServers {
            count: up.servers.len(),
            max: NGINX_MAX_SERVERS,
        })
        .with_context(|| format!("upstream '{}'", up.name));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(up.servers.len());
    for a in &up.servers {
        if let Some(first) = seen.insert(&a.address, a.line) {
            bail!(
                "line {first}: server '{}' repeats line {} (nginx would alternate between the \
                 two by round robin)",
                a.address,
                a.line
            );
        }
    }
    Ok(up)
}

enum Mode {
    Consistent(Box<Consistent>),
    Modulo(Box<NginxModulo<NGINX_MAX_SERVERS>>),
    IpHash(Box<NginxIpHash<NGINX_MAX_SERVERS>>),
}

/// The client address `ip_hash` hashes, from its text (`[...]` allowed).
fn client_addr(key: &[u8]) -> Option<std::net::IpAddr> {
    let t = std::str::from_utf8(key).ok()?.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    t.parse().ok()
}

/// A parsed upstream, routing keys as nginx does.
pub struct NginxRouter {
    mode: Mode,
    addresses: Vec<String>,
}

impl std::fmt::Debug for NginxRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NginxRouter")
            .field(
                "mode",
                &match self.mode {
                    Mode::Consistent(_) => "consistent",
                    Mode::Modulo(_) => "modulo",
                    Mode::IpHash(_) => "ip_hash",
                },
            )
            .field("servers", &self.addresses)
            .finish()
    }
}

impl NginxRouter {
    /// Builds the router of an upstream.
    ///
    /// # Errors
    /// Capacity ([`NGINX_MAX_SERVERS`], [`NGINX_MAX_POINTS`]) or chring errors.
    pub fn new(up: &NginxUpstream) -> anyhow::Result<Self> {
        if up.servers.len() > NGINX_MAX_SERVERS {
            bail!("at most {NGINX_MAX_SERVERS} servers per upstream are supported");
        }
        let mode = if up.ip_hash {
            let mut m = Box::new(NginxIpHash::<NGINX_MAX_SERVERS>::new());
            for s in &up.servers {
                let i = m
                    .add(s.weight)
                    .with_context(|| format!("line {}: server '{}'", s.line, s.address))?;
                m.set_down(i, s.down)?;
            }
            Mode::IpHash(m)
        } else if up.consistent {
            let total: u64 = up.servers.iter().map(|s| u64::from(s.weight)).sum();
            if total * u64::from(POINTS_PER_WEIGHT) > NGINX_MAX_POINTS as u64 {
                bail!(
                    "total weight {total} needs {} points, above the {NGINX_MAX_POINTS} supported",
                    total * u64::from(POINTS_PER_WEIGHT)
                );
            }
            let mut c: Box<Consistent> = on_big_stack(|| Box::new(Consistent::new()))?;
            for s in &up.servers {
                let i = c
                    .add(s.address.as_bytes(), s.weight)
                    .with_context(|| format!("line {}: server '{}'", s.line, s.address))?;
                c.set_down(i, s.down)?;
            }
            Mode::Consistent(c)
        } else {
            let mut m = Box::new(NginxModulo::<NGINX_MAX_SERVERS>::new());
            for s in &up.servers {
                let i = m
                    .add(s.weight)
                    .with_context(|| format!("line {}: server '{}'", s.line, s.address))?;
                m.set_down(i, s.down)?;
            }
            Mode::Modulo(m)
        };
        Ok(Self {
            mode,
            addresses: up.servers.iter().map(|s| s.address.clone()).collect(),
        })
    }
}

impl KeyRouter for NginxRouter {
    fn route(&mut self, key: &[u8]) -> Option<&str> {
        let i = match &self.mode {
            Mode::Consistent(c) => c.lookup(key),
            Mode::Modulo(m) => m.lookup(key),
            Mode::IpHash(m) => m.lookup(client_addr(key)?),
        }?;
        self.addresses.get(i).map(String::as_str)
    }

    fn backends(&self) -> &[String] {
        &self.addresses
    }

    fn unrouted(&self, key: &[u8]) -> String {
        if let Mode::IpHash(_) = self.mode {
            return if client_addr(key).is_none() {
                "not an IPv4 or IPv6 address (`ip_hash` hashes the client address)".into()
            } else {
                "every server nginx tries is down: it falls back to round robin".into()
            };
        }
        if key.is_empty() {
            "the key is empty: nginx balances it by round robin, not by key".into()
        } else {
            "every server nginx tries is down: it falls back to round robin".into()
        }
    }
}

/// The router of the upstream `pool` (or the only hashing one) of an nginx.conf.
///
/// # Errors
/// Parse errors, unsupported directives, a missing or ambiguous upstream.
pub fn router(text: &str, pool: Option<&str>) -> anyhow::Result<Box<dyn KeyRouter>> {
    let up = choose(parse(text)?, pool)?;
    Ok(Box::new(NginxRouter::new(&up)?))
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

    const CONF: &str = r#"
# two upstreams
http {
    upstream cache {
        hash $request_uri consistent;   # ketama-like
        server 10.0.0.1:11211;
        server 10.0.0.2:11211 weight=2 max_fails=3 fail_timeout=10s;
        server "10.0.0.3:11211" down;
        keepalive 8;
    }
    upstream plain { hash $arg_k; server a:1; server b:1 weight=3; }
    upstream rr { server c:1; }
    server { listen 80; location / { proxy_pass http://cache; } }
}
"#;

    #[test]
    fn parses_upstreams() {
        let ups = parse(CONF).unwrap();
        assert_eq!(ups.len(), 3);
        let c = &ups[0];
        assert_eq!(
            (c.name.as_str(), c.key.as_str(), c.consistent),
            ("cache", "$request_uri", true)
        );
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[1].weight, 2);
        assert!(c.servers[2].down);
        assert_eq!(c.servers[2].address, "10.0.0.3:11211");
        assert_eq!(c.servers[2].line, 8);
        assert!(!ups[1].consistent);
    }

    #[test]
    fn routes_like_chring_compat() {
        let mut r = router(CONF, Some("cache")).unwrap();
        let mut c: NginxConsistent<4, 1024> = NginxConsistent::new();
        c.add(b"10.0.0.1:11211", 1).unwrap();
        c.add(b"10.0.0.2:11211", 2).unwrap();
        c.add(b"10.0.0.3:11211", 1).unwrap();
        c.set_down(2, true).unwrap();
        let names = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"];
        for i in 0..200 {
            let k = format!("/k/{i}");
            assert_eq!(
                r.route(k.as_bytes()),
                Some(names[c.lookup(k.as_bytes()).unwrap()])
            );
        }
        let mut p = router(CONF, Some("plain")).unwrap();
        assert!(matches!(p.route(b"x"), Some("a:1" | "b:1")));
    }

    #[test]
    fn choice_and_errors() {
        let e = err(router(CONF, None));
        assert!(e.contains("--pool") && e.contains("cache, plain"), "{e}");
        let e = err(router(CONF, Some("rr")));
        assert!(e.contains("round robin"), "{e}");
        let e = err(router(CONF, Some("nope")));
        assert!(e.contains("no upstream 'nope'"), "{e}");
        for (bad, want) in [
            (
                "upstream u { hash $k consistent; server a backup; }",
                "backup",
            ),
            ("upstream u { hash $k; server a max_conns=2; }", "max_conns"),
            (
                "upstream u { hash $k; least_conn; server a; }",
                "least_conn",
            ),
            ("upstream u { hash $k; random; server a; }", "random"),
            ("upstream u { hash $k; server a weight=0; }", "weight"),
            (
                "upstream u { hash $k; server a slow_start=3; }",
                "slow_start",
            ),
            ("upstream u { hash $k foo; server a; }", "invalid parameter"),
            ("upstream u { hash $k; server a; server a; }", "repeats"),
            ("upstream u { hash $k; server a }", "missing ';'"),
            ("upstream u { hash $k; server a;", "missing '}'"),
            ("upstream u { hash $k; }", "no server"),
            ("upstream u { hash \"$k; }", "unterminated"),
        ] {
            let e = err(router(bad, None));
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    /// Issue 10, part 5: the server cap is checked before duplicates, and
    /// duplicates are found in one pass, so a near-1-MiB file of ~90,000 server
    /// lines fails at once instead of running a quadratic check.
    #[test]
    fn many_servers_fail_fast() {
        let mut conf = String::from("upstream u {\n hash $k consistent;\n");
        let mut i = 0;
        while conf.len() < crate::MAX_CONFIG_BYTES - 64 {
            conf.push_str(&format!(" server a{i};\n"));
            i += 1;
        }
        conf.push_str("}\n");
        let t = std::time::Instant::now();
        let e = err(router(&conf, None));
        assert!(e.contains("servers; at most 1024"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        // Duplicates are still found, naming both lines, at the cap.
        let mut conf = String::from("upstream u {\n hash $k consistent;\n");
        for i in 0..1023 {
            conf.push_str(&format!(" server a{i};\n"));
        }
        conf.push_str(" server a7;\n}\n");
        let e = err(router(&conf, None));
        assert!(e.contains("line 10") && e.contains("line 1026"), "{e}");
        // Many upstreams: one pass for their names too.
        let mut conf = String::new();
        let mut i = 0;
        while conf.len() < crate::MAX_CONFIG_BYTES - 64 {
            conf.push_str(&format!("upstream u{i} {{}}\n"));
            i += 1;
        }
        conf.push_str("upstream u0 {}\n");
        let t = std::time::Instant::now();
        let e = err(router(&conf, None));
        assert!(e.contains("duplicate upstream 'u0'"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        let big = " ".repeat(crate::MAX_CONFIG_BYTES + 1);
        assert!(err(router(&big, None)).contains("bytes"));
    }

    /// Issue 13: `ip_hash` routes client addresses as chring's NginxIpHash.
    #[test]
    fn ip_hash_routes_addresses() {
        let conf = "upstream u {\n ip_hash;\n server 10.0.0.1:80;\n server 10.0.0.2:80 weight=3;\n \
                    server 10.0.0.3:80 down;\n}\nupstream h { hash $k; server x:1; }\n";
        let ups = parse(conf).unwrap();
        assert!(ups[0].ip_hash && !ups[1].ip_hash);
        let mut r = router(conf, Some("u")).unwrap();
        let mut m: NginxIpHash<4> = NginxIpHash::new();
        for w in [1, 3, 1] {
            m.add(w).unwrap();
        }
        m.set_down(2, true).unwrap();
        let names = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
        for i in 0..300u32 {
            let ip = std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761));
            let want = m.lookup(ip.into()).map(|s| names[s]);
            assert_eq!(r.route(ip.to_string().as_bytes()), want, "{ip}");
        }
        let v6: std::net::IpAddr = "2001:db8::5".parse().unwrap();
        let want = m.lookup(v6).map(|s| names[s]);
        assert_eq!(r.route(b"[2001:db8::5]"), want);
        assert_eq!(r.route(b" 2001:db8::5 "), want);
        assert_eq!(r.route(b"example.com"), None);
        assert!(r.unrouted(b"example.com").contains("IPv4 or IPv6"));
        // Two hashing upstreams: --pool is needed; ip_hash counts as hashing.
        assert!(err(router(conf, None)).contains("--pool"));
        for (bad, want) in [
            ("upstream u { ip_hash; hash $k; server a; }", "keep one"),
            ("upstream u { hash $k; ip_hash; server a; }", "keep one"),
            ("upstream u { ip_hash on; server a; }", "no argument"),
            ("upstream u { ip_hash; server a backup; }", "backup"),
        ] {
            let e = err(router(bad, None));
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
