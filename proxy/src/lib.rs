//! chring-proxy: a sharding proxy for Redis (RESP2) and memcached (ASCII)
//! servers that reads nutcracker's (twemproxy's) YAML unchanged and routes every
//! key through chring.
//!
//! The data path (pools, client and server connections, the two protocols,
//! health) implements [`state::Control`]; the control port, the admin HTTP
//! server and the nutcracker stats port are written against that trait only.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = chring_proxy::config::load(std::path::Path::new("nutcracker.yml"))?;
//! let proxy = chring_proxy::Proxy::start(config).await?;
//! for (pool, addr) in proxy.local_addrs() {
//!     println!("{pool} listens on {addr}");
//! }
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod backend;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod http;
pub mod http_key;
pub mod log;
pub mod memcache;
pub mod placement;
pub mod pool;
pub mod quantile;
pub mod replicas;
pub mod resp;
pub mod state;
pub mod stats;
pub mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::config::ProxyConfig;
use crate::pool::{Events, Pool};
use crate::state::{Change, Control, ControlError, Snapshot, unix_ms};

/// A running proxy: one listener per pool.
#[derive(Debug)]
pub struct Proxy {
    pools: Vec<Arc<Pool>>,
    addrs: Vec<(String, SocketAddr)>,
    events: Events,
    started_unix: u64,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    /// Binds every pool's `listen`, starts its health task (and connects to
    /// its servers with `preconnect`), and returns once every pool listens.
    /// Everything runs on the calling runtime (of either flavour).
    ///
    /// # Errors
    /// A pool whose placement cannot be built, or a `listen` that cannot be bound.
    pub async fn start(config: ProxyConfig) -> anyhow::Result<Arc<Proxy>> {
        Self::start_on(config, Vec::new()).await
    }

    /// [`Proxy::start`] with client connections served by `workers`
    /// (`--threads`: one current-thread runtime per core, the calling one
    /// first, each on a thread that called [`backend::set_worker`] with its
    /// position). Each pool still listens once, on the calling runtime, and
    /// hands its clients to the workers in turn; every worker has its own
    /// `server_connections` connections to every server, so a request and
    /// its reply never change threads. Health, control and stats stay on the
    /// calling runtime. With no workers, as [`Proxy::start`].
    ///
    /// # Errors
    /// As [`Proxy::start`].
    pub async fn start_on(
        config: ProxyConfig,
        workers: Vec<tokio::runtime::Handle>,
    ) -> anyhow::Result<Arc<Proxy>> {
        let rt = tokio::runtime::Handle::current();
        let events: Events = Arc::default();
        let (stop, _) = watch::channel(false);
        let mut pools = Vec::new();
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for cfg in config.pools {
            let listen = cfg.listen.clone();
            let name = cfg.name.clone();
            let backlog = cfg.backlog;
            let pool = Pool::new_on(
                cfg,
                config.limits,
                events.clone(),
                rt.clone(),
                workers.clone(),
            )?;
            let addr: SocketAddr = tokio::net::lookup_host(&listen)
                .await
                .with_context(|| format!("pool '{name}': listen {listen}"))?
                .next()
                .with_context(|| format!("pool '{name}': listen {listen}: no address"))?;
            let sock = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }?;
            sock.set_reuseaddr(true)?;
            sock.bind(addr)
                .with_context(|| format!("pool '{name}': cannot listen on {listen}"))?;
            let l = sock
                .listen(backlog.max(1))
                .with_context(|| format!("pool '{name}': cannot listen on {listen}"))?;
            addrs.push((name, l.local_addr()?));
            listeners.push(l);
            pools.push(pool);
        }
        let mut tasks = Vec::new();
        for (pool, l) in pools.iter().zip(listeners) {
            tasks.push(tokio::spawn(accept(pool.clone(), l, stop.subscribe())));
            match pool.cfg.mode {
                config::Mode::Cache => {
                    tasks.push(tokio::spawn(pool.clone().health_task(stop.subscribe())));
                }
                config::Mode::Tcp | config::Mode::Http => {
                    if let Some(spec) = check::CheckSpec::of(&pool.cfg) {
                        tasks.push(tokio::spawn(check::run(
                            pool.clone(),
                            spec,
                            stop.subscribe(),
                        )));
                    }
                }
            }
        }
        Ok(Arc::new(Proxy {
            pools,
            addrs,
            events,
            started_unix: unix_ms() / 1000,
            stop,
            tasks: std::sync::Mutex::new(tasks),
        }))
    }

    /// Every pool's name and bound address (port 0 in `listen` is resolved).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.addrs.clone()
    }

    /// Stops accepting, lets every client's requests already read finish
    /// (bounded by the longest pool `timeout:`, 5 s when none is set), then
    /// closes the connections.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            let _ = t.await;
        }
        let grace = self
            .pools
            .iter()
            .filter_map(|p| p.cfg.timeout_ms)
            .max()
            .map_or(Duration::from_secs(5), Duration::from_millis);
        let deadline = tokio::time::Instant::now() + grace;
        while self
            .pools
            .iter()
            .any(|p| p.stats.client_connections.load(Relaxed) > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn pool(&self, name: &str) -> Result<&Arc<Pool>, ControlError> {
        self.pools
            .iter()
            .find(|p| p.cfg.name == name)
            .ok_or_else(|| ControlError::UnknownPool(name.to_string()))
    }
}

/// Accepts clients until `stop`; refuses (closes) beyond `client_connections`.
async fn accept(pool: Arc<Pool>, l: TcpListener, mut stop: watch::Receiver<bool>) {
    // `mode: http` pools: one backend client for the pool's connections.
    let http_pool = pool.is_http().then(|| http::HttpPool::new(pool.clone()));
    // Each client is served on the next of the pool's worker runtimes in
    // turn (`--threads`), on this runtime when there are none. An HTTP
    // pool's one backend client is shared by the loops: each backend
    // connection runs on the loop that opened it, requests reach it over
    // hyper's channel from any loop.
    let mut next = 0usize;
    let workers = pool.workers();
    loop {
        let (sock, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    ::log::warn!("pool '{}': accept: {e}", pool.cfg.name);
                    // Out of descriptors and the like: back off a little.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let max = u64::from(pool.cfg.client_connections);
        let open = pool.stats.client_connections.fetch_add(1, Relaxed);
        if max > 0 && open >= max {
            pool.stats.client_connections.fetch_sub(1, Relaxed);
            pool.stats.client_err.fetch_add(1, Relaxed);
            drop(sock);
            continue;
        }
        pool.stats.client_accepted.fetch_add(1, Relaxed);
        let p = pool.clone();
        let stop = stop.clone();
        let h = http_pool.clone();
        let Some(handoff) = Handoff::new(sock, workers, &mut next) else {
            pool.stats.client_connections.fetch_sub(1, Relaxed);
            pool.stats.client_err.fetch_add(1, Relaxed);
            continue;
        };
        handoff.spawn(move |sock| async move {
            match (sock, p.cfg.mode, h) {
                (Ok(sock), config::Mode::Tcp, _) => tcp::serve(p.clone(), sock, peer, stop).await,
                (Ok(sock), _, Some(h)) => http::serve(h, sock, stop).await,
                (Ok(sock), _, None) => client::serve(p.clone(), sock, stop).await,
                (Err(e), ..) => {
                    ::log::warn!("pool '{}': registering a client: {e}", p.cfg.name);
                    p.stats.client_err.fetch_add(1, Relaxed);
                }
            }
            p.stats.client_connections.fetch_sub(1, Relaxed);
        });
    }
}

/// A client socket on its way to the runtime that will serve it.
enum Handoff {
    /// Served here (no workers).
    Here(tokio::net::TcpStream),
    /// Deregistered here, registered again on the worker's reactor.
    Worker(std::net::TcpStream, tokio::runtime::Handle),
}

impl Handoff {
    /// Picks the worker after `next` (round robin); `None` when the socket
    /// cannot leave this runtime's reactor.
    fn new(
        sock: tokio::net::TcpStream,
        workers: &[tokio::runtime::Handle],
        next: &mut usize,
    ) -> Option<Handoff> {
        let Some(h) = workers.get(*next % workers.len().max(1)) else {
            return Some(Handoff::Here(sock));
        };
        *next = next.wrapping_add(1);
        match sock.into_std() {
            Ok(s) => Some(Handoff::Worker(s, h.clone())),
            Err(e) => {
                ::log::warn!("handing a client to a worker: {e}");
                None
            }
        }
    }

    /// Runs `serve` with the socket on the chosen runtime (an error when
    /// the worker's reactor refuses it).
    fn spawn<F>(
        self,
        serve: impl FnOnce(std::io::Result<tokio::net::TcpStream>) -> F + Send + 'static,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match self {
            Handoff::Here(sock) => {
                tokio::spawn(serve(Ok(sock)));
            }
            Handoff::Worker(sock, h) => {
                h.spawn(async move { serve(tokio::net::TcpStream::from_std(sock)).await });
            }
        }
    }
}

impl Control for Proxy {
    fn apply(&self, pool: &str, change: Change) -> Result<f64, ControlError> {
        self.pool(pool)?.apply(change)
    }

    fn moves(&self, pool: &str, change: &Change) -> Result<f64, ControlError> {
        self.pool(pool)?.moves(change)
    }

    fn set_up(&self, pool: &str, server: &str, up: bool) -> Result<(), ControlError> {
        self.pool(pool)?.set_up(server, up)
    }

    fn route(&self, pool: &str, key: &[u8]) -> Result<Option<String>, ControlError> {
        Ok(self.pool(pool)?.route_name(key))
    }

    fn pools(&self) -> Vec<String> {
        self.pools.iter().map(|p| p.cfg.name.clone()).collect()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            service: "chring-proxy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix: self.started_unix,
            now_unix_ms: unix_ms(),
            pools: self.pools.iter().map(|p| p.snapshot()).collect(),
            events: self
                .events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect(),
        }
    }
}
