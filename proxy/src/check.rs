//! Active health checks of tcp and http pools, with HAProxy's `rise` / `fall`
//! semantics: a server goes down after `fall` consecutive failed checks and
//! comes back after `rise` consecutive passed ones; a check that contradicts
//! the current state restarts the count.
//!
//! The API, for both modes:
//! - [`RiseFall`]: the state machine of one server (pure, deterministic);
//! - [`CheckKind`] and [`check_once`]: one check of one address (TCP connect,
//!   TCP send/expect, or HTTP `GET check_path`);
//! - [`CheckSpec::of`]: what a pool's YAML asks for (`None`: no checks);
//! - [`run`]: the pool's check task (one round every `check_interval`, every
//!   server checked concurrently within `check_timeout`), which ejects and
//!   readmits servers as the cache pools' ejections do (the `ejected` /
//!   `readmitted` events, the `ejections` and `server_ejected_at` counters,
//!   the routing rebuilt so the server's keys follow chring's health fallback).
//!
//! The HTTP check is a minimal HTTP/1.1 request over a fresh
//! [`TcpStream`] (`GET path`, `Connection: close`, the status line read),
//! not hyper's client: a check is one request on a new connection, as
//! HAProxy's `httpchk` makes it, so a connection pool would only hide a server
//! that accepts no new connections, and the proxy's hyper stays server-only.
//!
//! Difference from HAProxy: servers start up with a full `fall` budget
//! (HAProxy starts them "up, but going down at the first failure").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::backend::Server;
use crate::config::{Mode, PoolConfig};
use crate::pool::Pool;
use crate::state::unix_ms;

/// Most bytes read from a server in one check (a send/expect answer, an HTTP
/// status line).
pub const MAX_CHECK_READ: usize = 16 * 1024;

/// A change of a server's state, from [`RiseFall::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The `fall`-th consecutive failure: take it out.
    Down,
    /// The `rise`-th consecutive success: bring it back.
    Up,
}

/// One server's rise/fall state: up or down, and how many consecutive checks
/// contradicted that state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    streak: u32,
}

impl RiseFall {
    /// A server that is up; `rise` and `fall` of 0 count as 1.
    #[must_use]
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
        }
    }

    /// Whether the server is up.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records one check; returns the transition it caused, if any. *O*(1).
    pub fn record(&mut self, ok: bool) -> Option<Transition> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let need = if self.up { self.fall } else { self.rise };
        if self.streak < need {
            return None;
        }
        self.up = ok;
        self.streak = 0;
        Some(if ok { Transition::Up } else { Transition::Down })
    }
}

/// What one check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connect (tcp pools without `check_send` / `check_expect`).
    Connect,
    /// Connect, send `send` (if any), then read until the answer contains
    /// `expect` (if any; else passing once sent).
    SendExpect {
        /// `check_send:`.
        send: Option<Vec<u8>>,
        /// `check_expect:`.
        expect: Option<Vec<u8>>,
    },
    /// HTTP/1.1 `GET path` with `Connection: close`; a 2xx or 3xx status passes.
    HttpGet {
        /// `check_path:`.
        path: String,
    },
}

/// Why a check failed (the text goes to the debug log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(String),
    /// No verdict within `check_timeout`.
    #[error("timed out")]
    Timeout,
    /// The server closed before the expected answer.
    #[error("closed before the expected answer")]
    Closed,
    /// [`MAX_CHECK_READ`] bytes read without the expected answer.
    #[error("no expected answer in {MAX_CHECK_READ} bytes")]
    TooLong,
    /// The HTTP answer did not start with a status line.
    #[error("not an HTTP status line")]
    NotHttp,
    /// An HTTP status other than 2xx / 3xx.
    #[error("HTTP status {0}")]
    Status(u16),
}

/// A pool's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// What each check does.
    pub kind: CheckKind,
    /// `check_interval:`.
    pub interval: Duration,
    /// `check_timeout:`.
    pub timeout: Duration,
    /// `rise:`.
    pub rise: u32,
    /// `fall:`.
    pub fall: u32,
}

impl CheckSpec {
    /// The checks `cfg` asks for; `None` for cache pools (they have their own
    /// probes) and for `check_interval: 0`.
    #[must_use]
    pub fn of(cfg: &PoolConfig) -> Option<CheckSpec> {
        let kind = match cfg.mode {
            Mode::Cache => return None,
            Mode::Tcp if cfg.check_send.is_none() && cfg.check_expect.is_none() => {
                CheckKind::Connect
            }
            Mode::Tcp => CheckKind::SendExpect {
                send: cfg.check_send.clone(),
                expect: cfg.check_expect.clone(),
            },
            Mode::Http => CheckKind::HttpGet {
                path: cfg.check_path.clone(),
            },
        };
        (cfg.check_interval_ms > 0).then(|| CheckSpec {
            kind,
            interval: Duration::from_millis(cfg.check_interval_ms),
            timeout: Duration::from_millis(cfg.check_timeout_ms.max(1)),
            rise: cfg.rise,
            fall: cfg.fall,
        })
    }
}

/// One check of `addr` (`host:port`) within `timeout`.
///
/// # Errors
/// [`CheckError`]: why it failed.
pub async fn check_once(kind: &CheckKind, addr: &str, timeout: Duration) -> Result<(), CheckError> {
    match tokio::time::timeout(timeout, check_inner(kind, addr)).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::Timeout),
    }
}

async fn check_inner(kind: &CheckKind, addr: &str) -> Result<(), CheckError> {
    let mut sock = TcpStream::connect(addr)
        .await
        .map_err(|e| CheckError::Connect(e.to_string()))?;
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    match kind {
        CheckKind::Connect => Ok(()),
        CheckKind::SendExpect { send, expect } => {
            if let Some(s) = send {
                sock.write_all(s).await.map_err(io)?;
            }
            let Some(want) = expect else { return Ok(()) };
            read_until(&mut sock, |buf| memchr::memmem::find(buf, want).is_some()).await
        }
        CheckKind::HttpGet { path } => {
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: chring-proxy-check\r\n\
                 Connection: close\r\n\r\n"
            );
            sock.write_all(req.as_bytes()).await.map_err(io)?;
            let mut status = None;
            read_until(&mut sock, |buf| {
                let Some(end) = memchr::memmem::find(buf, b"\r\n") else {
                    return false;
                };
                status = Some(http_status(buf.get(..end).unwrap_or_default()));
                true
            })
            .await?;
            match status {
                Some(Some(200..=399)) => Ok(()),
                Some(Some(code)) => Err(CheckError::Status(code)),
                _ => Err(CheckError::NotHttp),
            }
        }
    }
}

/// Reads until `done(buffer so far)`, EOF ([`CheckError::Closed`]) or
/// [`MAX_CHECK_READ`] bytes ([`CheckError::TooLong`]).
async fn read_until(
    sock: &mut TcpStream,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Result<(), CheckError> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if done(&buf) {
            return Ok(());
        }
        if buf.len() >= MAX_CHECK_READ {
            return Err(CheckError::TooLong);
        }
        let mut chunk = [0u8; 1024];
        let want = (MAX_CHECK_READ - buf.len()).min(chunk.len());
        let n = sock
            .read(chunk.get_mut(..want).unwrap_or_default())
            .await
            .map_err(|e| CheckError::Io(e.to_string()))?;
        if n == 0 {
            return Err(CheckError::Closed);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn http_status(line: &[u8]) -> Option<u16> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The check task of `pool`: a round at once, then one every
/// `spec.interval`, until `stop` fires. Each round checks every server
/// concurrently (operator-`DOWN` ones too, so their state is known when they
/// come back `UP`); a server's `fall`-th consecutive failure ejects it, its
/// `rise`-th consecutive success readmits it, and the routing is rebuilt once
/// per round when anything changed. A server added at run time starts up.
pub async fn run(pool: Arc<Pool>, spec: CheckSpec, mut stop: watch::Receiver<bool>) {
    // Keyed by the server object (held, so its address is not reused): a
    // server removed and added again starts afresh.
    let mut states: HashMap<usize, (Arc<Server>, RiseFall)> = HashMap::new();
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let servers = pool.current().servers.clone();
        let mut round = tokio::task::JoinSet::new();
        for s in &servers {
            let s = s.clone();
            let kind = spec.kind.clone();
            let timeout = spec.timeout;
            round.spawn(async move {
                let r = check_once(&kind, &s.addr, timeout).await;
                (s, r)
            });
        }
        let results = tokio::select! {
            r = round.join_all() => r,
            _ = stop.changed() => return,
        };
        let next = unix_ms().saturating_add(u64::try_from(spec.interval.as_millis()).unwrap_or(0));
        states.retain(|_, (held, _)| servers.iter().any(|s| Arc::ptr_eq(s, held)));
        let mut changed = false;
        for (s, r) in results {
            let (_, st) = states
                .entry(Arc::as_ptr(&s) as usize)
                .or_insert_with(|| (s.clone(), RiseFall::new(spec.rise, spec.fall)));
            if let Err(e) = &r {
                log::debug!(
                    "pool '{}': check of {} ({}): {e}",
                    pool.cfg.name,
                    s.name,
                    s.addr
                );
            }
            changed |= apply(&pool, &s, st.record(r.is_ok()), next);
        }
        if changed {
            pool.refresh();
        }
    }
}

/// Applies a transition to `s` (ejects or readmits it, with its event);
/// keeps a down server's retry time on the next check. Returns whether the
/// routing must be rebuilt.
fn apply(pool: &Pool, s: &Server, t: Option<Transition>, next_check: u64) -> bool {
    match t {
        Some(Transition::Down) => {
            if s.eject_by_check(next_check) {
                log::warn!(
                    "pool '{}': server {} ({}) down after failed checks",
                    pool.cfg.name,
                    s.name,
                    s.addr
                );
                pool.stats.server_ejects.fetch_add(1, Relaxed);
                pool.record_event(&s.name, "ejected");
            }
            true
        }
        Some(Transition::Up) => {
            s.readmit();
            log::info!(
                "pool '{}': server {} ({}) up after passed checks",
                pool.cfg.name,
                s.name,
                s.addr
            );
            pool.record_event(&s.name, "readmitted");
            true
        }
        None => {
            s.set_retry_at(next_check);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `checks` ('+' passed, '-' failed) and writes the state after each
    /// ('U' up, 'D' down), with the transitions in capitals of `^` / `v`.
    fn trace(rise: u32, fall: u32, checks: &str) -> String {
        let mut rf = RiseFall::new(rise, fall);
        checks
            .chars()
            .map(|c| match rf.record(c == '+') {
                Some(Transition::Down) => 'v',
                Some(Transition::Up) => '^',
                None if rf.is_up() => 'U',
                None => 'D',
            })
            .collect()
    }

    #[test]
    fn rise_and_fall_count_consecutive_checks_as_haproxy_does() {
        // fall 3: the third consecutive failure takes it down.
        assert_eq!(trace(2, 3, "---"), "UUv");
        // A success in between restarts the count.
        assert_eq!(trace(2, 3, "--+--+---"), "UUUUUUUUv");
        // rise 2: back after two consecutive successes, not after interleaved ones.
        assert_eq!(trace(2, 3, "---+-+-++"), "UUvDDDDD^");
        // rise 1 / fall 1: every contradicting check flips it.
        assert_eq!(trace(1, 1, "-+-+"), "v^v^");
        // 0 counts as 1.
        assert_eq!(trace(0, 0, "-+"), "v^");
        // Long streaks do not overflow or re-fire.
        let mut rf = RiseFall::new(2, 3);
        let downs = (0..10_000).filter(|_| rf.record(false).is_some()).count();
        assert_eq!((downs, rf.is_up()), (1, false));
    }

    #[test]
    fn spec_follows_the_pool_yaml() {
        let pool = |extra: &str| {
            let text =
                format!("p:\n  listen: 127.0.0.1:0\n{extra}  servers:\n   - 127.0.0.1:1:1\n");
            crate::config::ProxyConfig::parse(&text)
                .unwrap()
                .pools
                .remove(0)
        };
        assert_eq!(CheckSpec::of(&pool("")), None);
        assert_eq!(
            CheckSpec::of(&pool("  mode: tcp\n  check_interval: 0\n")),
            None
        );
        let s = CheckSpec::of(&pool("  mode: tcp\n")).unwrap();
        assert_eq!(
            (s.kind, s.interval, s.timeout, s.rise, s.fall),
            (
                CheckKind::Connect,
                Duration::from_secs(2),
                Duration::from_secs(1),
                2,
                3
            )
        );
        let s = CheckSpec::of(&pool("  mode: tcp\n  check_expect: \"+OK\"\n  rise: 4\n")).unwrap();
        assert_eq!(
            (s.kind, s.rise),
            (
                CheckKind::SendExpect {
                    send: None,
                    expect: Some(b"+OK".to_vec())
                },
                4
            )
        );
        let s = CheckSpec::of(&pool("  mode: http\n  check_timeout: 20\n")).unwrap();
        assert_eq!(
            (s.kind, s.timeout),
            (
                CheckKind::HttpGet {
                    path: "/health".into()
                },
                Duration::from_millis(20)
            )
        );
    }

    #[test]
    fn status_lines() {
        for (line, code) in [
            (&b"HTTP/1.1 200 OK"[..], Some(200)),
            (b"HTTP/1.0 302 Found", Some(302)),
            (b"HTTP/1.1 503", Some(503)),
            (b"HTTP/1.1 20x OK", None),
            (b"HTTP/2 200", None),
            (b"HTTP/1.1 2000 OK", None),
            (b"", None),
        ] {
            assert_eq!(http_status(line), code, "{}", String::from_utf8_lossy(line));
        }
    }

    /// A one-shot server on 127.0.0.1 that reads what comes, answers
    /// `answer` and closes.
    async fn server(answer: &'static [u8]) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for _ in 0..8 {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
                let _ = s.write_all(answer).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn check_kinds_pass_and_fail() {
        let t = Duration::from_secs(5);
        let send_expect = |send: Option<&[u8]>, expect: &[u8]| CheckKind::SendExpect {
            send: send.map(<[u8]>::to_vec),
            expect: Some(expect.to_vec()),
        };
        let get = CheckKind::HttpGet {
            path: "/health".into(),
        };
        let ok = server(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(check_once(&get, &ok, t).await, Ok(()));
        assert_eq!(check_once(&CheckKind::Connect, &ok, t).await, Ok(()));
        let sick = server(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert_eq!(
            check_once(&get, &sick, t).await,
            Err(CheckError::Status(503))
        );
        let pong = server(b"+PONG\r\n").await;
        assert_eq!(check_once(&get, &pong, t).await, Err(CheckError::NotHttp));
        assert_eq!(
            check_once(&send_expect(Some(b"PING\r\n"), b"PONG"), &pong, t).await,
            Ok(())
        );
        assert_eq!(
            check_once(&send_expect(Some(b"PING\r\n"), b"+OK"), &pong, t).await,
            Err(CheckError::Closed)
        );
        // Nothing listens on a port just freed.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(matches!(
            check_once(&CheckKind::Connect, &dead, t).await,
            Err(CheckError::Connect(_))
        ));
        // A server that accepts and never answers: the timeout decides.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = l.local_addr().unwrap().to_string();
        let short = Duration::from_millis(100);
        assert_eq!(
            check_once(&send_expect(None, b"hello"), &silent, short).await,
            Err(CheckError::Timeout)
        );
        drop(l);
    }
}
