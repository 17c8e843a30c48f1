//! The experiment's backend: a small HTTP/1.1 server on 127.0.0.1 that answers
//! every request with its name (an `X-Backend` header and the body), after a
//! seeded service time, and can be made slow, heavy-tailed or failing.
//!
//! Service time of a request: `base + U(0, jitter) + extra`, plus `tail` with
//! probability `tail_share` (the heavy tail); then, with probability
//! `fail_share`, the answer is a `500` instead of a `200`. `GET /health`
//! answers `200 ok` at once and is counted apart (health checks are not load).
//! A backend with `refuse` binds a port and closes it: every connection to it
//! is refused. Each connection draws from its own `Pcg32`, seeded from the
//! backend's seed and the connection's number, so a run's service times are a
//! function of the seed and of which connections the balancer opens.
//!
//! One thread accepts and one thread serves each connection (keep-alive); a
//! [`Backend`] stops accepting when dropped, and its connection threads end at
//! their next request or after 5 s idle.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg32;
use serde::Serialize;

use super::http;

/// How long an idle client connection is kept.
const IDLE: Duration = Duration::from_secs(5);

/// How one backend behaves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendSpec {
    /// Its name: the `X-Backend` header and the body of every answer.
    pub name: String,
    /// Service time every request takes, ms.
    pub base_ms: f64,
    /// Plus a uniform draw in `[0, jitter_ms)`, ms.
    pub jitter_ms: f64,
    /// Plus this on every request (a slow backend), ms.
    pub extra_ms: f64,
    /// Share of requests that take `tail_ms` more (the heavy tail), in `[0, 1]`.
    pub tail_share: f64,
    /// The tail's extra time, ms.
    pub tail_ms: f64,
    /// Share of requests answered `500`, in `[0, 1]`.
    pub fail_share: f64,
    /// Refuse every connection (nothing listens on its port).
    pub refuse: bool,
    /// Seed of its service-time and failure draws.
    pub seed: u64,
}

impl BackendSpec {
    /// A well-behaved backend: `base_ms` plus up to `jitter_ms`, nothing else.
    #[must_use]
    pub fn new(name: &str, base_ms: f64, jitter_ms: f64, seed: u64) -> Self {
        Self {
            name: name.to_string(),
            base_ms,
            jitter_ms,
            extra_ms: 0.0,
            tail_share: 0.0,
            tail_ms: 0.0,
            fail_share: 0.0,
            refuse: false,
            seed,
        }
    }

    /// Checks the numbers.
    ///
    /// # Errors
    /// A negative or non-finite time, a share outside `[0, 1]`, an empty name
    /// or one with characters other than `[A-Za-z0-9._-]`.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(format!("bad backend name '{}'", self.name));
        }
        for (what, v) in [
            ("base", self.base_ms),
            ("jitter", self.jitter_ms),
            ("extra", self.extra_ms),
            ("tail", self.tail_ms),
        ] {
            if !(v.is_finite() && (0.0..=60_000.0).contains(&v)) {
                return Err(format!(
                    "{}: {what} time {v} ms not in [0, 60000]",
                    self.name
                ));
            }
        }
        for (what, v) in [("tail", self.tail_share), ("failure", self.fail_share)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{}: {what} share {v} not in [0, 1]", self.name));
            }
        }
        Ok(())
    }

    /// One request's service time and whether it fails, from `rng`.
    fn draw(&self, rng: &mut Pcg32) -> (Duration, bool) {
        let mut ms = self.base_ms + self.extra_ms;
        if self.jitter_ms > 0.0 {
            ms += self.jitter_ms * unit(rng);
        }
        if self.tail_share > 0.0 && unit(rng) < self.tail_share {
            ms += self.tail_ms;
        }
        let fail = self.fail_share > 0.0 && unit(rng) < self.fail_share;
        (Duration::from_secs_f64(ms / 1e3), fail)
    }
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut Pcg32) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// What a backend served.
#[derive(Debug, Default)]
struct Counters {
    served: AtomicU64,
    failed: AtomicU64,
    health: AtomicU64,
    connections: AtomicU64,
}

/// A snapshot of a backend's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendCounts {
    /// Requests answered (health checks excluded), failures included.
    pub served: u64,
    /// Of those, answered `500`.
    pub failed: u64,
    /// `GET /health` answered.
    pub health_checks: u64,
    /// Connections accepted.
    pub connections: u64,
}

/// A running backend; stops accepting when dropped.
#[derive(Debug)]
pub struct Backend {
    spec: Arc<BackendSpec>,
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts `spec` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// A bad spec, or no port to bind.
    pub fn start(spec: BackendSpec) -> io::Result<Self> {
        spec.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let spec = Arc::new(spec);
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept = if spec.refuse {
            // Nothing listens: connections are refused.
            drop(listener);
            None
        } else {
            let (spec, counters, stop) = (spec.clone(), counters.clone(), stop.clone());
            Some(
                std::thread::Builder::new()
                    .name(format!("backend-{}", spec.name))
                    .spawn(move || accept_loop(&listener, &spec, &counters, &stop))?,
            )
        };
        Ok(Self {
            spec,
            addr,
            counters,
            stop,
            accept,
        })
    }

    /// Its address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its spec.
    #[must_use]
    pub fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    /// What it served so far.
    #[must_use]
    pub fn counts(&self) -> BackendCounts {
        BackendCounts {
            served: self.counters.served.load(Relaxed),
            failed: self.counters.failed.load(Relaxed),
            health_checks: self.counters.health.load(Relaxed),
            connections: self.counters.connections.load(Relaxed),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.accept.take() {
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    spec: &Arc<BackendSpec>,
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stop.load(Relaxed) {
            return;
        }
        let Ok(stream) = conn else {
            // EMFILE and the like: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let n = counters.connections.fetch_add(1, Relaxed);
        let rng = Pcg32::seed_from_u64(chring::mix(n, spec.seed));
        let (spec, counters, stop) = (spec.clone(), counters.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{}", spec.name))
            .spawn(move || {
                let _ = serve(stream, &spec, &counters, &stop, rng);
            });
        if spawned.is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn serve(
    stream: TcpStream,
    spec: &BackendSpec,
    counters: &Counters,
    stop: &AtomicBool,
    mut rng: Pcg32,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while !stop.load(Relaxed) {
        let head = match http::read_head(&mut reader) {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = out.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                break;
            }
            Err(e) => return Err(e),
        };
        if head.header("transfer-encoding").is_some() {
            let _ = out.write_all(
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            break;
        }
        head.read_body(&mut reader, false)?;
        let close = head.closes();
        let conn = if close { "close" } else { "keep-alive" };
        let path = head.target().unwrap_or("/");
        let (status, body) = if path == "/health" || path.starts_with("/health?") {
            counters.health.fetch_add(1, Relaxed);
            ("200 OK", "ok\n".to_string())
        } else {
            let (wait, fail) = spec.draw(&mut rng);
            std::thread::sleep(wait);
            counters.served.fetch_add(1, Relaxed);
            if fail {
                counters.failed.fetch_add(1, Relaxed);
                (
                    "500 Internal Server Error",
                    format!("{} failed\n", spec.name),
                )
            } else {
                ("200 OK", format!("{}\n", spec.name))
            }
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nX-Backend: {}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: {conn}\r\n\r\n{body}",
            spec.name,
            body.len()
        );
        out.write_all(reply.as_bytes())?;
        if close {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    fn get(stream: &mut TcpStream, reader: &mut impl BufRead, path: &str) -> (u16, String, String) {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let head = http::read_head(reader).unwrap().unwrap();
        let body = head.read_body(reader, false).unwrap();
        (
            head.status().unwrap(),
            head.header("x-backend").unwrap_or("").to_string(),
            String::from_utf8(body).unwrap(),
        )
    }

    #[test]
    fn answers_with_its_name_and_counts() {
        let mut spec = BackendSpec::new("b-1", 0.0, 0.5, 7);
        spec.fail_share = 0.5;
        let b = Backend::start(spec).unwrap();
        let mut s = TcpStream::connect(b.addr()).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut fails = 0;
        for i in 0..200 {
            let (status, name, body) = get(&mut s, &mut r, &format!("/k/{i}"));
            assert_eq!(name, "b-1");
            match status {
                200 => assert_eq!(body, "b-1\n"),
                500 => fails += 1,
                other => panic!("status {other}"),
            }
        }
        assert_eq!(get(&mut s, &mut r, "/health").0, 200);
        let c = b.counts();
        assert_eq!(
            (c.served, c.failed, c.health_checks, c.connections),
            (200, fails, 1, 1)
        );
        // Half fail, give or take: the draw is seeded, so this is exact per seed.
        assert!((60..140).contains(&fails), "{fails}");
    }

    #[test]
    fn same_seed_same_draws() {
        let mut spec = BackendSpec::new("x", 1.0, 4.0, 3);
        spec.tail_share = 0.1;
        spec.tail_ms = 50.0;
        spec.fail_share = 0.2;
        let draws = |seed| {
            let mut rng = Pcg32::seed_from_u64(seed);
            (0..100).map(|_| spec.draw(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draws(5), draws(5));
        assert_ne!(draws(5), draws(6));
        let d = draws(5);
        assert!(d.iter().all(|(t, _)| *t >= Duration::from_millis(1)));
        assert!(d.iter().any(|(t, _)| *t >= Duration::from_millis(51)));
    }

    #[test]
    fn refusing_backend_refuses() {
        let mut spec = BackendSpec::new("gone", 0.0, 0.0, 1);
        spec.refuse = true;
        let b = Backend::start(spec).unwrap();
        assert!(TcpStream::connect(b.addr()).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut s = BackendSpec::new("ok", 1.0, 1.0, 1);
        s.fail_share = 1.5;
        assert!(Backend::start(s).is_err());
        assert!(BackendSpec::new("a b", 1.0, 1.0, 1).validate().is_err());
        assert!(BackendSpec::new("ok", -1.0, 1.0, 1).validate().is_err());
    }

    #[test]
    fn bad_request_gets_400() {
        let b = Backend::start(BackendSpec::new("b", 0.0, 0.0, 1)).unwrap();
        let mut s = TcpStream::connect(b.addr()).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nbroken\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        assert_eq!(
            http::read_head(&mut r).unwrap().unwrap().status(),
            Some(400)
        );
    }
}
