//! TEMPORARY stand-in for the data path, which another branch builds: the lead
//! deletes this file (and its two lines in `lib.rs`) at merge. It declares the
//! names `main.rs` calls — `config::load`, [`ProxyConfig::pool_names`],
//! [`Proxy::start`], [`Proxy::local_addrs`], [`Proxy::shutdown`] and
//! `impl Control for Proxy` — so that the control surfaces compile and their
//! tests run on this branch. `config::load` really checks the file (with
//! chring-config's nutcracker reader); `Proxy::start` refuses to run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::state::{Change, Control, ControlError, Snapshot};

/// A loaded configuration (stand-in).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pools: Vec<String>,
}

impl ProxyConfig {
    /// The pool names, in file order.
    #[must_use]
    pub fn pool_names(&self) -> Vec<String> {
        self.pools.clone()
    }
}

/// Reading nutcracker's YAML (stand-in).
pub mod config {
    use super::{Path, ProxyConfig};

    /// Reads and checks `path`: every top-level key is a pool that chring's
    /// nutcracker reader accepts.
    ///
    /// # Errors
    /// I/O, YAML and every value nutcracker rejects.
    pub fn load(path: &Path) -> anyhow::Result<ProxyConfig> {
        let text = chring_config::read_config(path)?;
        let pools: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '\t', '#', '-']) && l.trim_end().ends_with(':'))
            .map(|l| l.trim_end().trim_end_matches(':').trim().to_owned())
            .collect();
        anyhow::ensure!(!pools.is_empty(), "no pool in the file");
        for p in &pools {
            chring_config::twemproxy::parse(&text, Some(p))?;
        }
        Ok(ProxyConfig { pools })
    }
}

/// The running proxy (stand-in: it cannot start).
#[derive(Debug)]
pub struct Proxy {
    _private: (),
}

impl Proxy {
    /// Starts the pools (stand-in: always fails).
    ///
    /// # Errors
    /// Always: the data path is not in this build.
    #[allow(clippy::unused_async)]
    pub async fn start(config: ProxyConfig) -> anyhow::Result<Arc<Proxy>> {
        anyhow::bail!(
            "the data path is not in this build ({} pools not started)",
            config.pools.len()
        )
    }

    /// The listening address of each pool.
    #[must_use]
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        Vec::new()
    }

    /// Stops accepting, finishes what is in flight.
    #[allow(clippy::unused_async)]
    pub async fn shutdown(&self) {}
}

impl Control for Proxy {
    fn apply(&self, pool: &str, _change: Change) -> Result<f64, ControlError> {
        Err(ControlError::UnknownPool(pool.to_owned()))
    }
    fn moves(&self, pool: &str, _change: &Change) -> Result<f64, ControlError> {
        Err(ControlError::UnknownPool(pool.to_owned()))
    }
    fn set_up(&self, pool: &str, _server: &str, _up: bool) -> Result<(), ControlError> {
        Err(ControlError::UnknownPool(pool.to_owned()))
    }
    fn route(&self, pool: &str, _key: &[u8]) -> Result<Option<String>, ControlError> {
        Err(ControlError::UnknownPool(pool.to_owned()))
    }
    fn pools(&self) -> Vec<String> {
        Vec::new()
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            service: "chring-proxy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix: 0,
            now_unix_ms: crate::state::unix_ms(),
            pools: Vec::new(),
            events: Vec::new(),
        }
    }
}
