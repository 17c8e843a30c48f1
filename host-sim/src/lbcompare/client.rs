//! The load client: a fixed number of `GET /k/<key>` requests, at a fixed
//! concurrency (one keep-alive connection per worker thread), keys drawn from
//! a seed, bounded in time. Records what the client sees: latency, status and
//! which backend answered (the `X-Backend` header).

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg32;

use super::http;

/// Stream id of the key draws (mixed with the seed).
const KEYS_STREAM: u64 = 0x6b65_7973;

/// The workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Requests sent in all.
    pub requests: u64,
    /// Connections (worker threads) sending them, one request in flight each.
    pub concurrency: usize,
    /// Keys: request paths are `/k/0` .. `/k/<keys - 1>`, uniform.
    pub keys: u32,
    /// Seed of the key draws.
    pub seed: u64,
    /// Longest wait for one answer (connect included).
    pub request_timeout: Duration,
    /// The run stops sending after this long, whatever is left.
    pub deadline: Duration,
}

/// One request as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The key (`/k/<key>`).
    pub key: u32,
    /// From just before the request was written (or its connection opened) to
    /// the end of the answer, µs.
    pub latency_us: u64,
    /// The HTTP status; 0 when there was no answer (refused, reset, timeout,
    /// garbled).
    pub status: u16,
    /// The answering backend's index in the names given, from `X-Backend`.
    pub backend: Option<usize>,
}

impl Sample {
    /// A 2xx answer.
    #[must_use]
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The keys of the `requests`, in order: a function of `seed` alone.
#[must_use]
pub fn keys(w: &Workload) -> Vec<u32> {
    let mut rng = Pcg32::seed_from_u64(chring::mix(w.seed, KEYS_STREAM));
    let n = u64::from(w.keys.max(1));
    (0..w.requests)
        .map(|_| u32::try_from(rng.next_u64() % n).unwrap_or(0))
        .collect()
}

/// Runs `w` against the balancer at `addr`; `names` are the backends'
/// names, in the order [`Sample::backend`] indexes them. Returns the samples
/// (in no particular order) and the wall time of the run.
#[must_use]
pub fn run(addr: SocketAddr, w: &Workload, names: &[String]) -> (Vec<Sample>, Duration) {
    let keys = keys(w);
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + w.deadline;
    let samples = std::thread::scope(|s| {
        let workers: Vec<_> = (0..w.concurrency.max(1))
            .map(|_| s.spawn(|| worker(addr, w, names, &keys, &next, deadline)))
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    (samples, started.elapsed())
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<(TcpStream, BufReader<TcpStream>)> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let r = BufReader::new(s.try_clone()?);
    Ok((s, r))
}

fn worker(
    addr: SocketAddr,
    w: &Workload,
    names: &[String],
    keys: &[u32],
    next: &AtomicU64,
    deadline: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let i = next.fetch_add(1, Relaxed);
        let Some(&key) = usize::try_from(i).ok().and_then(|i| keys.get(i)) else {
            break;
        };
        if Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        let answer = (|| -> io::Result<(u16, Option<usize>, bool)> {
            if conn.is_none() {
                conn = Some(connect(addr, w.request_timeout)?);
            }
            let Some((s, r)) = conn.as_mut() else {
                return Err(io::Error::other("no connection"));
            };
            // One write: a request split over several segments meets Nagle and delayed ACKs.
            s.write_all(format!("GET /k/{key} HTTP/1.1\r\nHost: lb\r\n\r\n").as_bytes())?;
            let head = http::read_head(r)?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed"))?;
            head.read_body(r, true)?;
            let status = head
                .status()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
            let backend = head
                .header("x-backend")
                .and_then(|b| names.iter().position(|n| n == b));
            Ok((status, backend, head.closes()))
        })();
        let latency_us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        match answer {
            Ok((status, backend, closes)) => {
                if closes {
                    conn = None;
                }
                out.push(Sample {
                    key,
                    latency_us,
                    status,
                    backend,
                });
            }
            Err(_) => {
                conn = None;
                out.push(Sample {
                    key,
                    latency_us,
                    status: 0,
                    backend: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::backend::{Backend, BackendSpec};
    use super::*;

    fn workload(requests: u64) -> Workload {
        Workload {
            requests,
            concurrency: 4,
            keys: 50,
            seed: 9,
            request_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
        }
    }

    #[test]
    fn keys_are_seeded() {
        let w = workload(1000);
        assert_eq!(keys(&w), keys(&w));
        let k = keys(&w);
        assert!(k.iter().all(|&k| k < 50));
        assert_ne!(k, keys(&Workload { seed: 10, ..w }));
    }

    #[test]
    fn runs_against_a_backend_directly() {
        let b = Backend::start(BackendSpec::new("solo", 0.0, 0.2, 1)).unwrap();
        let names = vec!["other".to_string(), "solo".to_string()];
        let (samples, _) = run(b.addr(), &workload(300), &names);
        assert_eq!(samples.len(), 300);
        assert!(samples.iter().all(|s| s.ok() && s.backend == Some(1)));
        assert_eq!(b.counts().served, 300);
        assert_eq!(b.counts().connections, 4);
        let mut seen: Vec<u32> = samples.iter().map(|s| s.key).collect();
        let mut want = keys(&workload(300));
        seen.sort_unstable();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn refused_requests_are_errors() {
        let mut spec = BackendSpec::new("gone", 0.0, 0.0, 1);
        spec.refuse = true;
        let b = Backend::start(spec).unwrap();
        let (samples, _) = run(b.addr(), &workload(20), &[]);
        assert_eq!(samples.len(), 20);
        assert!(samples.iter().all(|s| s.status == 0 && !s.ok()));
    }
}
