//! What the data path shares with the control surfaces (control port, admin
//! HTTP, nutcracker stats port): live counters, snapshots of them, and the
//! [`Control`] trait through which every run-time change is made.
//!
//! Counters are relaxed atomics written on the data path without locks; a
//! [`Snapshot`] copies them (not atomically across counters: each value is
//! exact, the set is taken over a few microseconds).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::SystemTime;

use serde::Serialize;

/// Upper bounds (µs) of the latency histogram buckets; one more bucket counts
/// everything above the last bound (Prometheus `+Inf`).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// Positions of the key-hash circle in [`PoolSnapshot::ring`].
pub const RING_SECTORS: usize = 360;

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_US`]), lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation of `us` microseconds. *O*(buckets).
    pub fn record(&self, us: u64) {
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// A copy of the counts.
    #[must_use]
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds_us: LATENCY_BOUNDS_US.to_vec(),
            counts: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            sum_us: self.sum_us.load(Relaxed),
        }
    }
}

/// A copy of a [`Histogram`]: `counts[i]` observations were `<= bounds_us[i]`
/// (and above the previous bound); the last count is above every bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistogramSnapshot {
    /// Bucket upper bounds in µs.
    pub bounds_us: Vec<u64>,
    /// Observations per bucket (not cumulative), `bounds_us.len() + 1` of them.
    pub counts: Vec<u64>,
    /// Sum of all observations in µs.
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Observations in all.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1), in µs;
    /// `None` with no observation; `u64::MAX` when it is above every bound.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(self.bounds_us.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

/// Counters of one server, with nutcracker's names where nutcracker has them
/// (`requests`, `request_bytes`, `responses`, `response_bytes`, `server_eof`,
/// `server_err`, `server_timedout`, `server_connections`, `server_ejected_at`,
/// `in_queue`, `in_queue_bytes`, `out_queue`, `out_queue_bytes`).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Requests forwarded to the server.
    pub requests: AtomicU64,
    /// Bytes of those requests.
    pub request_bytes: AtomicU64,
    /// Responses read from the server.
    pub responses: AtomicU64,
    /// Bytes of those responses.
    pub response_bytes: AtomicU64,
    /// Connections the server closed.
    pub server_eof: AtomicU64,
    /// Connection errors (connect refused, reset, protocol error from it).
    pub server_err: AtomicU64,
    /// Requests that timed out (`timeout:` of the pool).
    pub server_timedout: AtomicU64,
    /// Open connections to the server (a gauge).
    pub server_connections: AtomicU64,
    /// Unix time in µs of the last ejection, 0 if never (nutcracker's field).
    pub server_ejected_at: AtomicU64,
    /// Times the server was ejected.
    pub ejections: AtomicU64,
    /// Requests waiting to be sent (a gauge).
    pub in_queue: AtomicU64,
    /// Bytes of those requests (a gauge).
    pub in_queue_bytes: AtomicU64,
    /// Requests sent, waiting for their response (a gauge).
    pub out_queue: AtomicU64,
    /// Bytes of those requests (a gauge).
    pub out_queue_bytes: AtomicU64,
    /// Time from sending a request to its whole response, per command.
    pub latency: std::sync::Mutex<std::collections::BTreeMap<String, std::sync::Arc<Histogram>>>,
    /// HTTP pools: status classes and hedging (zero elsewhere).
    pub http: HttpServerStats,
}

impl ServerStats {
    /// The histogram of `command` (lower-case), created on first use.
    #[must_use]
    pub fn latency_of(&self, command: &str) -> std::sync::Arc<Histogram> {
        let mut map = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(command.to_owned()).or_default().clone()
    }
}

/// Counters of one pool, with nutcracker's names (`client_eof`, `client_err`,
/// `client_connections`, `server_ejects`, `forward_error`, `fragments`).
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Clients that closed their connection (seen as the end of their input,
    /// a reset, or a broken pipe while their replies were written).
    pub client_eof: AtomicU64,
    /// Client connections closed on an error (framing lost, limits).
    pub client_err: AtomicU64,
    /// Open client connections (a gauge).
    pub client_connections: AtomicU64,
    /// Client connections accepted in all.
    pub client_accepted: AtomicU64,
    /// Ejections of any server of the pool.
    pub server_ejects: AtomicU64,
    /// Requests answered with an error because they could not be forwarded.
    pub forward_error: AtomicU64,
    /// Sub-requests made by splitting multi-key requests.
    pub fragments: AtomicU64,
    /// Bytes read from clients.
    pub client_bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub client_bytes_out: AtomicU64,
    /// HTTP pools: requests, answers, hedging (zero elsewhere).
    pub http: HttpPoolStats,
}

/// Index of an HTTP status in the class counters: 0 for 1xx .. 4 for 5xx.
#[must_use]
pub fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// The names of the status classes, in counter order.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// HTTP counters of one server of a `mode: http` pool.
#[derive(Debug, Default)]
pub struct HttpServerStats {
    /// Responses the server sent, by status class ([`STATUS_CLASSES`]).
    pub status: [AtomicU64; 5],
    /// Hedged requests sent to this server (it was the runner-up).
    pub hedges: AtomicU64,
    /// Hedged requests this server answered first.
    pub hedge_wins: AtomicU64,
}

/// HTTP counters of a `mode: http` pool.
#[derive(Debug, Default)]
pub struct HttpPoolStats {
    /// Requests read from clients.
    pub requests: AtomicU64,
    /// Answers to clients by status class ([`STATUS_CLASSES`]), the proxy's
    /// own 502, 503 and 504 included.
    pub status: [AtomicU64; 5],
    /// Hedged requests sent (a second request to the runner-up).
    pub hedges: AtomicU64,
    /// Hedged requests the runner-up answered first.
    pub hedge_wins: AtomicU64,
    /// Requests sent again to the next choice after a connect failure.
    pub retries: AtomicU64,
    /// 502 answers: no server could be connected (after `retries`), or the
    /// server's answer broke.
    pub bad_gateway: AtomicU64,
    /// 503 answers: no server up.
    pub unavailable: AtomicU64,
    /// 504 answers: no response head within `timeout:`.
    pub gateway_timeout: AtomicU64,
    /// Time from reading a request's head to the response head (the first
    /// answer of a hedged request), every server together; `hedge_after: pNN`
    /// reads its percentile here.
    pub latency: Histogram,
}

/// An HTTP server's counters, as snapshots show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpServerSnapshot {
    /// Responses by status class, keyed `1xx` .. `5xx`.
    pub status: std::collections::BTreeMap<String, u64>,
    /// See [`HttpServerStats::hedges`].
    pub hedges: u64,
    /// See [`HttpServerStats::hedge_wins`].
    pub hedge_wins: u64,
}

/// An HTTP pool's counters, as snapshots show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpPoolSnapshot {
    /// `hash_key:` as configured.
    pub hash_key: String,
    /// See [`HttpPoolStats::requests`].
    pub requests: u64,
    /// Answers by status class, keyed `1xx` .. `5xx`.
    pub status: std::collections::BTreeMap<String, u64>,
    /// See [`HttpPoolStats::hedges`].
    pub hedges: u64,
    /// See [`HttpPoolStats::hedge_wins`].
    pub hedge_wins: u64,
    /// See [`HttpPoolStats::retries`].
    pub retries: u64,
    /// See [`HttpPoolStats::bad_gateway`].
    pub bad_gateway: u64,
    /// See [`HttpPoolStats::unavailable`].
    pub unavailable: u64,
    /// See [`HttpPoolStats::gateway_timeout`].
    pub gateway_timeout: u64,
    /// See [`HttpPoolStats::latency`].
    pub latency: HistogramSnapshot,
}

fn classes(c: &[AtomicU64; 5]) -> std::collections::BTreeMap<String, u64> {
    STATUS_CLASSES
        .iter()
        .zip(c)
        .map(|(n, v)| ((*n).to_string(), v.load(Relaxed)))
        .collect()
}

impl HttpServerStats {
    /// A copy.
    #[must_use]
    pub fn snapshot(&self) -> HttpServerSnapshot {
        HttpServerSnapshot {
            status: classes(&self.status),
            hedges: self.hedges.load(Relaxed),
            hedge_wins: self.hedge_wins.load(Relaxed),
        }
    }
}

impl HttpPoolStats {
    /// A copy, with the pool's `hash_key`.
    #[must_use]
    pub fn snapshot(&self, hash_key: String) -> HttpPoolSnapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        HttpPoolSnapshot {
            hash_key,
            requests: g(&self.requests),
            status: classes(&self.status),
            hedges: g(&self.hedges),
            hedge_wins: g(&self.hedge_wins),
            retries: g(&self.retries),
            bad_gateway: g(&self.bad_gateway),
            unavailable: g(&self.unavailable),
            gateway_timeout: g(&self.gateway_timeout),
            latency: self.latency.snapshot(),
        }
    }
}

/// A server's health as the pool sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Routed to.
    #[default]
    Up,
    /// Ejected after `server_failure_limit` failures; retried when
    /// `retry_at_unix_ms` passes (`auto_eject_hosts`).
    Ejected {
        /// When the next retry (probe) is due, Unix ms.
        retry_at_unix_ms: u64,
    },
    /// Marked down by an operator (`DOWN`); only `UP` brings it back.
    Down,
}

/// One server, as snapshots show it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ServerSnapshot {
    /// Its name (the `name` of `host:port:weight name`, else `host:port`).
    pub name: String,
    /// `host:port` (or a socket path) as configured.
    pub addr: String,
    /// Its weight.
    pub weight: u32,
    /// Health.
    pub health: Health,
    /// Share of the key space the pool's placement gives it (0..=1, exact from
    /// the ring / table; 0 for an unkeyed distribution).
    pub key_share: f64,
    /// Counters (see [`ServerStats`] for the meaning of each).
    pub requests: u64,
    /// See [`ServerStats::request_bytes`].
    pub request_bytes: u64,
    /// See [`ServerStats::responses`].
    pub responses: u64,
    /// See [`ServerStats::response_bytes`].
    pub response_bytes: u64,
    /// See [`ServerStats::server_eof`].
    pub server_eof: u64,
    /// See [`ServerStats::server_err`].
    pub server_err: u64,
    /// See [`ServerStats::server_timedout`].
    pub server_timedout: u64,
    /// See [`ServerStats::server_connections`].
    pub server_connections: u64,
    /// See [`ServerStats::server_ejected_at`].
    pub server_ejected_at: u64,
    /// See [`ServerStats::ejections`].
    pub ejections: u64,
    /// See [`ServerStats::in_queue`].
    pub in_queue: u64,
    /// See [`ServerStats::in_queue_bytes`].
    pub in_queue_bytes: u64,
    /// See [`ServerStats::out_queue`].
    pub out_queue: u64,
    /// See [`ServerStats::out_queue_bytes`].
    pub out_queue_bytes: u64,
    /// Latency per command (lower-case command name; `http` in HTTP pools).
    pub latency: std::collections::BTreeMap<String, HistogramSnapshot>,
    /// HTTP pools only: status classes and hedging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpServerSnapshot>,
}

/// One pool, as snapshots show it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PoolSnapshot {
    /// The pool's name (its YAML key).
    pub name: String,
    /// `listen:` as configured.
    pub listen: String,
    /// `redis` or `memcache`.
    pub protocol: String,
    /// `distribution:` (`ketama`, `modula`, `random`, `ring`, ...).
    pub distribution: String,
    /// `hash:` (`fnv1a_64`, ...).
    pub hash: String,
    /// The servers, in configuration order (added ones last).
    pub servers: Vec<ServerSnapshot>,
    /// The placement drawn as a circle: the owner (an index into `servers`) of
    /// each of [`RING_SECTORS`] evenly spaced positions of the 32-bit key-hash
    /// circle, health ignored. Empty for distributions whose keys are not laid
    /// out on a circle (modula, jump, rendezvous, random).
    pub ring: Vec<Option<usize>>,
    /// See [`PoolStats::client_eof`].
    pub client_eof: u64,
    /// See [`PoolStats::client_err`].
    pub client_err: u64,
    /// See [`PoolStats::client_connections`].
    pub client_connections: u64,
    /// See [`PoolStats::client_accepted`].
    pub client_accepted: u64,
    /// See [`PoolStats::server_ejects`].
    pub server_ejects: u64,
    /// See [`PoolStats::forward_error`].
    pub forward_error: u64,
    /// See [`PoolStats::fragments`].
    pub fragments: u64,
    /// See [`PoolStats::client_bytes_in`].
    pub client_bytes_in: u64,
    /// See [`PoolStats::client_bytes_out`].
    pub client_bytes_out: u64,
    /// HTTP pools only: requests, answers, hedging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPoolSnapshot>,
}

/// The whole proxy at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// `chring-proxy`.
    pub service: String,
    /// The crate version.
    pub version: String,
    /// Unix seconds when the proxy started.
    pub started_unix: u64,
    /// Unix ms when this snapshot was taken.
    pub now_unix_ms: u64,
    /// Every pool, in configuration order.
    pub pools: Vec<PoolSnapshot>,
    /// Recent events (ejections, readmissions, add/remove with the fraction
    /// moved), oldest first, at most a few hundred.
    pub events: Vec<Event>,
}

/// Something that happened to a pool's fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unix ms.
    pub at_unix_ms: u64,
    /// The pool.
    pub pool: String,
    /// The server.
    pub server: String,
    /// `ejected`, `readmitted`, `down`, `up`, `added`, `removed`.
    pub kind: String,
    /// For `added` / `removed`: the fraction of the key space that moved.
    pub moved: Option<f64>,
}

/// A fleet change to apply (or, for [`Control::moves`], to price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add a server.
    Add {
        /// Its name, unique in the pool.
        name: String,
        /// `host:port`.
        addr: String,
        /// Its weight (> 0).
        weight: u32,
    },
    /// Remove a server by name.
    Remove {
        /// Its name.
        name: String,
    },
}

/// Why a control operation was refused; the `Display` text is one line, sent
/// to the operator as is (`-ERR <text>` on the control port, JSON on admin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No pool of this name.
    #[error("no pool '{0}'")]
    UnknownPool(String),
    /// No server of this name in the pool.
    #[error("no server '{server}' in pool '{pool}'")]
    UnknownServer {
        /// The pool.
        pool: String,
        /// The server.
        server: String,
    },
    /// A server of this name is already in the pool.
    #[error("server '{server}' is already in pool '{pool}'")]
    Duplicate {
        /// The pool.
        pool: String,
        /// The server.
        server: String,
    },
    /// The pool is at its capacity of servers.
    #[error("pool '{pool}' is full ({max} servers)")]
    Full {
        /// The pool.
        pool: String,
        /// Its capacity.
        max: usize,
    },
    /// A value that cannot be used (address, weight, name).
    #[error("{0}")]
    Invalid(String),
    /// The placement refused the change (chring's error, as text).
    #[error("{0}")]
    Placement(String),
}

/// What the data path offers the control surfaces. Every change applies
/// without a restart and without dropping a client: routing switches to the
/// new placement atomically, requests in flight finish where they were sent.
pub trait Control: Send + Sync + 'static {
    /// Applies `change` to `pool`; returns the fraction of the key space that
    /// moved (0..=1).
    ///
    /// # Errors
    /// [`ControlError`]; nothing changes on error.
    fn apply(&self, pool: &str, change: Change) -> Result<f64, ControlError>;

    /// The fraction of the key space `change` would move, computed from the
    /// placement before it is made; nothing changes.
    ///
    /// # Errors
    /// As [`Control::apply`] would fail.
    fn moves(&self, pool: &str, change: &Change) -> Result<f64, ControlError>;

    /// Marks a server down (`up == false`: never routed to, its keys follow
    /// the health fallback) or up again.
    ///
    /// # Errors
    /// [`ControlError::UnknownPool`], [`ControlError::UnknownServer`].
    fn set_up(&self, pool: &str, server: &str, up: bool) -> Result<(), ControlError>;

    /// The server `key` routes to now (health considered), by name; `None`
    /// when no server can take it.
    ///
    /// # Errors
    /// [`ControlError::UnknownPool`].
    fn route(&self, pool: &str, key: &[u8]) -> Result<Option<String>, ControlError>;

    /// The pool names, in configuration order.
    fn pools(&self) -> Vec<String>;

    /// Everything, now.
    fn snapshot(&self) -> Snapshot;
}

/// Unix time in ms (0 before 1970).
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_bounds() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile_us(0.5), None);
        for us in [10, 60, 60, 700, 2_000_000] {
            h.record(us);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 5);
        assert_eq!(s.sum_us, 2_000_830);
        assert_eq!(s.quantile_us(0.2), Some(50));
        assert_eq!(s.quantile_us(0.5), Some(100));
        assert_eq!(s.quantile_us(0.8), Some(1_000));
        assert_eq!(s.quantile_us(1.0), Some(u64::MAX));
    }
}
