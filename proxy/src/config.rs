//! The proxy's configuration: nutcracker's YAML, unchanged
//! ([`chring_config::twemproxy::parse_pools`]), plus the limits nutcracker
//! does not configure.

use std::path::Path;

use anyhow::{Context, bail};
pub use chring_config::twemproxy::{
    Distribution, HashKey, HedgeAfter, Mode, PoolConfig, ServerConfig,
};

use crate::placement::{MAX_MODULA_SLOTS, MAX_SERVERS};

/// Limits on what one client may send (not in nutcracker's file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request accepted (a RESP command with its arguments, a
    /// memcached command line with its data block), bytes. Above it the client
    /// gets an error and the connection closes (the rest of the request
    /// cannot be skipped safely).
    pub max_request_bytes: usize,
    /// Requests one client may have in flight; reading from it pauses at the
    /// limit (backpressure, nothing is refused).
    pub max_pipeline: usize,
    /// Keys in one multi-key request.
    pub max_keys: usize,
    /// Interval of the active health probes (PING / `version`) to every server.
    pub probe_interval_ms: u64,
    /// Connect timeout to a server when the pool has no `timeout:`.
    pub connect_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 64 << 20,
            max_pipeline: 1024,
            max_keys: 65_536,
            probe_interval_ms: 1_000,
            connect_timeout_ms: 1_000,
        }
    }
}

/// Every pool of a nutcracker file, and the limits.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The pools, in file order.
    pub pools: Vec<PoolConfig>,
    /// Limits (defaults: [`Limits::default`]).
    pub limits: Limits,
}

impl ProxyConfig {
    /// The pool names, in file order.
    #[must_use]
    pub fn pool_names(&self) -> Vec<String> {
        self.pools.iter().map(|p| p.name.clone()).collect()
    }

    /// Reads a nutcracker YAML text.
    ///
    /// # Errors
    /// Every error of [`chring_config::twemproxy::parse_pools`] (each names its
    /// line), a pool without `listen:`, two pools on one `listen:`, and pools
    /// beyond the proxy's capacity.
    pub fn parse(text: &str) -> anyhow::Result<ProxyConfig> {
        let pools = chring_config::twemproxy::parse_pools(text)?;
        for (i, p) in pools.iter().enumerate() {
            if p.listen.is_empty() {
                bail!("line {}: pool '{}' has no 'listen:'", p.line, p.name);
            }
            if let Some(q) = pools[..i].iter().find(|q| q.listen == p.listen) {
                bail!(
                    "line {}: pool '{}' listens on {} as pool '{}' does",
                    p.line,
                    p.name,
                    p.listen,
                    q.name
                );
            }
            if p.servers.len() > MAX_SERVERS {
                bail!(
                    "line {}: pool '{}' has {} servers; at most {MAX_SERVERS}",
                    p.line,
                    p.name,
                    p.servers.len()
                );
            }
            let slots: u64 = p.servers.iter().map(|s| u64::from(s.weight)).sum();
            if p.distribution == Distribution::Modula && slots > MAX_MODULA_SLOTS as u64 {
                bail!(
                    "line {}: pool '{}': modula weights add up to {slots}; at most {MAX_MODULA_SLOTS}",
                    p.line,
                    p.name
                );
            }
            if p.listen.starts_with('/') {
                bail!(
                    "line {}: pool '{}': unix socket listen '{}' is not supported (use host:port)",
                    p.line,
                    p.name,
                    p.listen
                );
            }
            if let Some(s) = p.servers.iter().find(|s| s.addr.starts_with('/')) {
                bail!(
                    "line {}: pool '{}': unix socket server '{}' is not supported (use host:port)",
                    s.line,
                    p.name,
                    s.addr
                );
            }
        }
        Ok(ProxyConfig {
            pools,
            limits: Limits::default(),
        })
    }
}

/// Reads nutcracker's YAML file (`-c FILE`; `-t` only tests it).
///
/// # Errors
/// I/O, size, and every error of [`ProxyConfig::parse`], prefixed with the path.
pub fn load(path: &Path) -> anyhow::Result<ProxyConfig> {
    let text = chring_config::read_config(path)?;
    ProxyConfig::parse(&text).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pools_and_refuses_what_it_cannot_serve() {
        let c = ProxyConfig::parse(
            "a:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
             b:\n  listen: 127.0.0.1:1\n  distribution: ring\n  servers:\n   - 127.0.0.1:11211:1\n",
        )
        .unwrap();
        assert_eq!(c.pool_names(), ["a", "b"]);
        let c = ProxyConfig::parse(
            "t:\n  listen: 127.0.0.1:0\n  mode: tcp\n  check_send: \"PING\\\\r\\\\n\"\n  \
             check_expect: PONG\n  servers:\n   - 127.0.0.1:6379:1\n\
             h:\n  listen: 127.0.0.1:1\n  mode: http\n  hash_key: header:X-User\n  \
             hedge_after: p95\n  servers:\n   - 127.0.0.1:8080:1 web\n",
        )
        .unwrap();
        assert_eq!(
            c.pools.iter().map(|p| p.mode).collect::<Vec<_>>(),
            [Mode::Tcp, Mode::Http]
        );
        assert_eq!(c.pools[0].check_send.as_deref(), Some(&b"PING\r\n"[..]));
        for (text, msg) in [
            (
                "a:\n  servers:\n   - 127.0.0.1:1:1\n",
                "line 1: pool 'a' has no 'listen:'",
            ),
            (
                "a:\n  listen: x:1\n  servers:\n   - h:1:1\nb:\n  listen: x:1\n  servers:\n   - h:1:1\n",
                "line 5: pool 'b' listens on x:1",
            ),
            (
                "a:\n  listen: x:1\n  nope: 1\n  servers:\n   - h:1:1\n",
                "line 3: unknown directive",
            ),
        ] {
            let e = format!("{:#}", ProxyConfig::parse(text).unwrap_err());
            assert!(e.contains(msg), "{e}");
        }
    }
}
