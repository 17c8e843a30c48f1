//! TCP pools (`mode: tcp`): whole client connections forwarded to a server.
//!
//! Per client: pick a server through the pool's placement (keyed strategies
//! hash the client's IP address as text, `127.0.0.1` or `::1`, port excluded:
//! `ROUTE pool 127.0.0.1` on the control port names the same server),
//! connect within `timeout:` (the proxy's connect timeout when unset), and on a
//! connect failure try the next choice, up to `retries:` more servers, never
//! one already tried. Then copy bytes both ways: an EOF from one side is
//! passed on as a shutdown of the other side's write half (half-close), an
//! error on either side closes both, and `idle_timeout:` closes a connection
//! with no bytes either way for that long.
//!
//! The next choice: for keyed strategies, the placement of the live servers
//! with the tried ones marked down as well (built for the retry, so a retry
//! costs one placement build: up to a few ms for ring and Maglev); for
//! unkeyed ones, another pick from the pool's live placement (so load-aware
//! strategies see the connection), skipping the tried servers.
//!
//! Counters: per server `requests` (connections forwarded), `request_bytes`
//! (client to server), `response_bytes` (server to client),
//! `server_connections` (open), `server_err` / `server_timedout` (connect
//! failures), `server_eof` (the server closed first), and the `connect`
//! latency histogram; per pool `client_bytes_in` / `client_bytes_out`,
//! `client_eof` / `client_err`, and `forward_error` (no server could take the
//! client).
//!
//! On `stop` (SIGTERM) a connection keeps flowing for the drain grace (the
//! pool's `timeout:`, else 5 s), then closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::Server;
use crate::placement::LoadGuard;
use crate::pool::Pool;

/// Bytes copied per read.
const CHUNK: usize = 16 * 1024;
/// Drain grace when the pool has no `timeout:`.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// The key a tcp pool hashes for `peer`: its IP address as text (an
/// IPv4-mapped IPv6 address as IPv4), without the port.
#[must_use]
pub fn source_key(peer: SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}

/// How a forwarded connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both sides closed their half.
    Done,
    /// Reading or writing failed on one side.
    Error,
    /// No bytes either way for `idle_timeout`.
    Idle,
    /// The drain grace passed after `stop`.
    Drained,
}

/// Serves one client of a tcp pool until the connection ends.
pub async fn serve(
    pool: Arc<Pool>,
    client: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let key = source_key(peer);
    let Some((server, guard, upstream)) = connect(&pool, key.as_bytes()).await else {
        pool.stats.forward_error.fetch_add(1, Relaxed);
        pool.stats.client_err.fetch_add(1, Relaxed);
        log::debug!("pool '{}': no server took the client {peer}", pool.cfg.name);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    server.stats.requests.fetch_add(1, Relaxed);
    server.stats.server_connections.fetch_add(1, Relaxed);
    let idle =
        (pool.cfg.idle_timeout_ms > 0).then(|| Duration::from_millis(pool.cfg.idle_timeout_ms));
    let grace = pool
        .cfg
        .timeout_ms
        .map_or(DEFAULT_GRACE, Duration::from_millis);
    let activity = Activity::new();
    let (crd, cwr) = client.into_split();
    let (srd, swr) = upstream.into_split();
    let ps = &pool.stats;
    let ss = &server.stats;
    let up = pump(
        crd,
        swr,
        CLIENT,
        [&ps.client_bytes_in, &ss.request_bytes],
        &activity,
    );
    let down = pump(
        srd,
        cwr,
        SERVER,
        [&ss.response_bytes, &ps.client_bytes_out],
        &activity,
    );
    let both = async { tokio::try_join!(up, down) };
    tokio::pin!(both);
    let stopping = async {
        if !*stop.borrow() {
            // An error means the proxy is gone: drain as for a stop.
            let _ = stop.changed().await;
        }
        tokio::time::sleep(grace).await;
    };
    let end = tokio::select! {
        r = &mut both => match r {
            Ok(((), ())) => {
                if activity.first_eof.load(Relaxed) == SERVER {
                    ss.server_eof.fetch_add(1, Relaxed);
                }
                End::Done
            }
            Err(()) => End::Error,
        },
        () = activity.idle(idle) => End::Idle,
        () = stopping => End::Drained,
    };
    server.stats.server_connections.fetch_sub(1, Relaxed);
    match end {
        End::Done => ps.client_eof.fetch_add(1, Relaxed),
        End::Error | End::Idle | End::Drained => ps.client_err.fetch_add(1, Relaxed),
    };
    if end != End::Done {
        log::debug!(
            "pool '{}': client {peer} via {}: {end:?}",
            pool.cfg.name,
            server.name
        );
    }
    finish(guard, end == End::Done);
}

/// Reports the end of the connection (or of a failed connect) to a
/// load-aware placement: its latency is the time since the pick.
fn finish(guard: Option<LoadGuard>, ok: bool) {
    if let Some(g) = guard {
        g.finish(ok);
    }
}

/// Picks and connects: the first choice, then up to `retries` more servers
/// not tried yet. `None` when none could be reached.
async fn connect(
    pool: &Arc<Pool>,
    key: &[u8],
) -> Option<(Arc<Server>, Option<LoadGuard>, TcpStream)> {
    let limit = Duration::from_millis(
        pool.cfg
            .timeout_ms
            .unwrap_or(pool.limits.connect_timeout_ms),
    );
    let mut tried: Vec<Arc<Server>> = Vec::new();
    let attempts = usize::try_from(pool.cfg.retries)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    for _ in 0..attempts {
        let (server, guard) = pool.route_avoiding(key, &tried)?;
        let started = Instant::now();
        match tokio::time::timeout(limit, TcpStream::connect(&server.addr)).await {
            Ok(Ok(sock)) => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                server.stats.latency_of("connect").record(us);
                return Some((server, guard, sock));
            }
            Ok(Err(e)) => {
                server.stats.server_err.fetch_add(1, Relaxed);
                log::debug!(
                    "pool '{}': connect to {} ({}): {e}",
                    pool.cfg.name,
                    server.name,
                    server.addr
                );
            }
            Err(_) => {
                server.stats.server_timedout.fetch_add(1, Relaxed);
                log::debug!(
                    "pool '{}': connect to {} ({}) timed out",
                    pool.cfg.name,
                    server.name,
                    server.addr
                );
            }
        }
        finish(guard, false);
        tried.push(server);
    }
    None
}

/// [`Activity::first_eof`]: the client closed its half first.
const CLIENT: u8 = 1;
/// [`Activity::first_eof`]: the server closed its half first.
const SERVER: u8 = 2;

/// The time of the last byte either way (for `idle_timeout`), and which side
/// closed first.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    first_eof: AtomicU8,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            first_eof: AtomicU8::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Relaxed);
    }

    /// Resolves once nothing moved for `limit`; never without one.
    async fn idle(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Relaxed));
            let due = last + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Copies `rd` (the `side` reading) to `wr` until EOF, then shuts `wr` down
/// (half-close passed on); counts the bytes in both `counters`. `Err` on an
/// I/O error on either side.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    side: u8,
    counters: [&AtomicU64; 2],
    activity: &Activity,
) -> Result<(), ()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = rd.read(&mut buf).await.map_err(|_| ())?;
        if n == 0 {
            let _ = activity
                .first_eof
                .compare_exchange(0, side, Relaxed, Relaxed);
            // The peer may already be gone; its own side reports that.
            let _ = wr.shutdown().await;
            return Ok(());
        }
        activity.touch();
        wr.write_all(buf.get(..n).unwrap_or_default())
            .await
            .map_err(|_| ())?;
        for c in counters {
            c.fetch_add(n as u64, Relaxed);
        }
        activity.touch();
    }
}
