//! Servers: `server_connections` pipelined connections each, connect and read
//! timeouts, reconnect with backoff, failure counting for ejection, and the
//! active health probe.
//!
//! Each connection is two tasks: a writer that batches queued requests into
//! one write, and a reader that matches replies to requests in order. A
//! request that cannot be sent or answered gets a [`BackendError`]; a
//! connection whose framing is lost (a timeout, a reply that is not the
//! protocol) is closed and reopened, as nutcracker does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::memcache::{self, ReplyShape};
use crate::placement::LoadGuard;
use crate::resp;
use crate::state::{ServerStats, unix_ms};

/// Why a request got no reply from its server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The server cannot be reached (connect failed, or in backoff after).
    #[error("server {0} unreachable: {1}")]
    Connect(String, String),
    /// The connection closed or broke before the reply.
    #[error("server {0} connection lost")]
    Closed(String),
    /// No reply within the pool's `timeout:`.
    #[error("server {0} timed out")]
    Timeout(String),
    /// The server's reply was not the protocol.
    #[error("server {0} protocol error: {1}")]
    Protocol(String, String),
    /// No server can take the key (all ejected or down).
    #[error("no server available")]
    NoServer,
}

/// What a forwarded request's reply looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One RESP2 value.
    Resp,
    /// A memcached reply of this shape.
    Memcache(ReplyShape),
}

/// The reply channel of one request.
pub type ReplyTx = oneshot::Sender<Result<Bytes, BackendError>>;

/// One request for a server.
#[derive(Debug)]
pub struct Job {
    /// The bytes to send.
    pub bytes: Bytes,
    /// Its reply's shape.
    pub expect: Expect,
    /// Where the reply goes.
    pub reply: ReplyTx,
    /// The command (lower case), for the latency histograms.
    pub command: Arc<str>,
    /// Bounded loads: the request's hold on its server.
    pub guard: Option<LoadGuard>,
    /// The client's number: a client's requests to one server all take the
    /// same connection (`hint % server_connections`), so they stay in order.
    pub hint: usize,
}

/// What every connection of a pool needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RESP (true) or memcached.
    pub redis: bool,
    /// `redis_auth:`.
    pub auth: Option<String>,
    /// `redis_db:`.
    pub db: u32,
    /// `timeout:` (reads and connects), `None` = wait.
    pub timeout: Option<Duration>,
    /// Connect timeout when `timeout` is `None`.
    pub connect_timeout: Duration,
    /// `auto_eject_hosts:`.
    pub auto_eject: bool,
    /// `server_failure_limit:`.
    pub failure_limit: u32,
    /// `server_retry_timeout:`.
    pub retry_timeout: Duration,
    /// `server_connections:`: connections per server, per worker.
    pub connections: usize,
    /// The runtimes that serve clients (`--threads`): each gets its own
    /// `connections` connections to every server, so a client's requests and
    /// their replies never leave its thread. Empty: the pool's runtime only.
    pub workers: Vec<tokio::runtime::Handle>,
}

thread_local! {
    /// This thread's worker number (0 unless [`set_worker`] said otherwise):
    /// which of a server's connection sets its clients use.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Declares the calling thread to be worker `i` (the runtime of
/// `Settings::workers[i]` runs on it): its clients' requests take worker
/// `i`'s connections. Threads that never call it are worker 0.
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// One server of a pool.
#[derive(Debug)]
pub struct Server {
    /// Its name (label).
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// Its weight.
    pub weight: u32,
    /// What the placement hashes.
    pub identity: Vec<u8>,
    /// Counters.
    pub stats: ServerStats,
    settings: Arc<Settings>,
    /// Per worker, its connections' queues.
    conns: Vec<Vec<mpsc::Sender<Job>>>,
    failures: AtomicU32,
    /// Unix ms until which it is ejected; 0 when not ejected.
    ejected_until: AtomicU64,
    down: AtomicBool,
    health_changed: Arc<Notify>,
}

/// Who a server is: what [`Server::spawn`] needs besides the pool's settings.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Its name (label).
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// Its weight.
    pub weight: u32,
    /// What the placement hashes.
    pub identity: Vec<u8>,
}

/// Queue depth of one connection before senders wait.
const QUEUE: usize = 4096;
/// Requests written in one batch at most.
const BATCH: usize = 256;
/// Passes of the event loop a connection's writer waits, once woken, for
/// more requests to put in the same write (see [`connection`]).
const COALESCE_ROUNDS: usize = 3;
/// A batch of this many requests is written without waiting for more.
const COALESCE_BELOW: usize = 16;

impl Server {
    /// A server with its connection tasks spawned on every runtime of
    /// `settings.workers` (`server_connections` each), or on `rt` when there
    /// is none; they connect on the first request, or now with `preconnect`.
    #[must_use]
    pub fn spawn(
        rt: &tokio::runtime::Handle,
        spec: ServerSpec,
        settings: Arc<Settings>,
        health_changed: Arc<Notify>,
        preconnect: bool,
    ) -> Arc<Server> {
        let n = settings.connections.max(1);
        let runtimes: Vec<tokio::runtime::Handle> = if settings.workers.is_empty() {
            vec![rt.clone()]
        } else {
            settings.workers.clone()
        };
        let mut rxs = Vec::with_capacity(n * runtimes.len());
        let mut conns = Vec::with_capacity(runtimes.len());
        for h in &runtimes {
            let mut set = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = mpsc::channel(QUEUE);
                set.push(tx);
                rxs.push((h.clone(), rx));
            }
            conns.push(set);
        }
        let ServerSpec {
            name,
            addr,
            weight,
            identity,
        } = spec;
        let server = Arc::new(Server {
            name,
            addr,
            weight,
            identity,
            stats: ServerStats::default(),
            settings,
            conns,
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            health_changed,
        });
        for (h, rx) in rxs {
            let weak = Arc::downgrade(&server);
            h.spawn(connection(weak, rx, preconnect));
        }
        server
    }

    /// A server of a tcp or http pool: routing, counters and health as
    /// [`Server::spawn`]'s, but no memcached/Redis connection tasks (its
    /// pool's mode opens its own connections; [`Server::send`] fails at once).
    #[must_use]
    pub fn detached(
        spec: ServerSpec,
        settings: Arc<Settings>,
        health_changed: Arc<Notify>,
    ) -> Arc<Server> {
        let ServerSpec {
            name,
            addr,
            weight,
            identity,
        } = spec;
        Arc::new(Server {
            name,
            addr,
            weight,
            identity,
            stats: ServerStats::default(),
            settings,
            conns: Vec::new(),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            health_changed,
        })
    }

    /// Queues `job` on connection `job.hint % server_connections` (a client's
    /// requests keep their order). Waits when that connection's queue is full.
    /// The connection is one of the calling thread's worker ([`set_worker`]).
    pub async fn send(&self, job: Job) {
        let w = WORKER.with(std::cell::Cell::get);
        let set = self
            .conns
            .get(w)
            .or_else(|| self.conns.first())
            .map_or(&[][..], Vec::as_slice);
        let i = job.hint % set.len().max(1);
        let Some(tx) = set.get(i) else {
            let _ = job.reply.send(Err(BackendError::Closed(self.name.clone())));
            return;
        };
        self.stats.in_queue.fetch_add(1, Relaxed);
        self.stats
            .in_queue_bytes
            .fetch_add(job.bytes.len() as u64, Relaxed);
        if let Err(e) = tx.send(job).await {
            let job = e.0;
            self.dequeued(job.bytes.len());
            let _ = job.reply.send(Err(BackendError::Closed(self.name.clone())));
        }
    }

    fn dequeued(&self, bytes: usize) {
        self.stats.in_queue.fetch_sub(1, Relaxed);
        self.stats.in_queue_bytes.fetch_sub(bytes as u64, Relaxed);
    }

    /// Not down, not ejected.
    #[must_use]
    pub fn is_live(&self) -> bool {
        !self.down.load(Relaxed) && self.ejected_until.load(Relaxed) == 0
    }

    /// Marked down by an operator.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.down.load(Relaxed)
    }

    /// Marks it down (or up); returns whether that changed anything.
    pub fn set_down(&self, down: bool) -> bool {
        self.down.swap(down, Relaxed) != down
    }

    /// Unix ms of the next retry when ejected.
    #[must_use]
    pub fn ejected_until(&self) -> Option<u64> {
        match self.ejected_until.load(Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Counts a failure; ejects at `server_failure_limit` with
    /// `auto_eject_hosts` (and wakes the pool's health task).
    pub fn failure(&self) {
        let f = self.failures.fetch_add(1, Relaxed) + 1;
        let s = &self.settings;
        if s.auto_eject && f >= s.failure_limit.max(1) && self.ejected_until.load(Relaxed) == 0 {
            let now = unix_ms();
            let retry = u64::try_from(s.retry_timeout.as_millis()).unwrap_or(u64::MAX);
            self.ejected_until
                .store(now.saturating_add(retry).max(1), Relaxed);
            self.stats.ejections.fetch_add(1, Relaxed);
            self.stats
                .server_ejected_at
                .store(now.saturating_mul(1000), Relaxed);
            log::warn!(
                "server {} ({}) ejected after {f} failures",
                self.name,
                self.addr
            );
            self.health_changed.notify_one();
        }
    }

    /// Counts a success: the failure count restarts.
    pub fn success(&self) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
    }

    /// Ejects it on the active health checks' verdict (`fall` failed checks):
    /// counted and stamped as an ejection; `retry_at` (Unix ms) is when the
    /// next check is due. Returns `false` when it was ejected already.
    pub fn eject_by_check(&self, retry_at: u64) -> bool {
        let was = self.ejected_until.swap(retry_at.max(1), Relaxed);
        if was != 0 {
            return false;
        }
        self.stats.ejections.fetch_add(1, Relaxed);
        self.stats
            .server_ejected_at
            .store(unix_ms().saturating_mul(1000), Relaxed);
        true
    }

    /// Moves the retry time of a server ejected by the checks (the next
    /// check); nothing when it is not ejected.
    pub fn set_retry_at(&self, retry_at: u64) {
        let _ = self
            .ejected_until
            .fetch_update(Relaxed, Relaxed, |t| (t != 0).then_some(retry_at.max(1)));
    }

    /// Readmits an ejected server (after a good probe).
    pub fn readmit(&self) {
        self.failures.store(0, Relaxed);
        self.ejected_until.store(0, Relaxed);
    }

    /// Keeps an ejected server out for another `server_retry_timeout`.
    pub fn extend_ejection(&self) {
        let retry = u64::try_from(self.settings.retry_timeout.as_millis()).unwrap_or(u64::MAX);
        self.ejected_until
            .store(unix_ms().saturating_add(retry).max(1), Relaxed);
    }

    /// One probe on a fresh connection: AUTH (if set) and PING for Redis,
    /// `version` for memcached, within the connect timeout (or the pool's
    /// timeout). `true` when the server answers as it should.
    pub async fn probe(&self) -> bool {
        let s = &self.settings;
        let limit = s
            .timeout
            .unwrap_or(s.connect_timeout)
            .min(s.connect_timeout * 2);
        let work = async {
            let mut sock = TcpStream::connect(&self.addr).await.ok()?;
            let mut req = Vec::new();
            let mut replies = 1;
            if s.redis {
                if let Some(a) = &s.auth {
                    req.extend(resp::command(&[b"AUTH", a.as_bytes()]));
                    replies += 1;
                }
                req.extend(resp::command(&[b"PING"]));
            } else {
                req.extend_from_slice(b"version\r\n");
            }
            sock.write_all(&req).await.ok()?;
            let mut buf = BytesMut::with_capacity(256);
            let mut pos = 0;
            let mut last = Bytes::new();
            while replies > 0 {
                let n = if s.redis {
                    resp::reply_len(buf.get(pos..)?).ok()?
                } else {
                    memcache::reply_len(buf.get(pos..)?, ReplyShape::Line).ok()?
                };
                match n {
                    Some(n) => {
                        last = Bytes::copy_from_slice(buf.get(pos..pos + n)?);
                        pos += n;
                        replies -= 1;
                    }
                    None => {
                        if sock.read_buf(&mut buf).await.ok()? == 0 {
                            return None;
                        }
                    }
                }
            }
            Some(if s.redis {
                last.starts_with(b"+PONG")
            } else {
                last.starts_with(b"VERSION")
            })
        };
        matches!(tokio::time::timeout(limit, work).await, Ok(Some(true)))
    }
}

/// A request sent and waiting for its reply.
#[derive(Debug)]
struct Inflight {
    expect: Expect,
    reply: Option<ReplyTx>,
    command: Arc<str>,
    bytes: usize,
    sent: Instant,
    /// The load-aware placement's hold: reports the outcome when the reply
    /// (or the failure) comes.
    guard: Option<LoadGuard>,
}

struct Link {
    wr: tokio::net::tcp::OwnedWriteHalf,
    inflight: mpsc::UnboundedSender<Inflight>,
}

/// Connects, then AUTH / SELECT as configured (their replies checked).
async fn open(weak: &std::sync::Weak<Server>, server: &Server) -> Result<Link, String> {
    let s = &server.settings;
    let limit = s.timeout.unwrap_or(s.connect_timeout);
    let sock = match tokio::time::timeout(limit, TcpStream::connect(&server.addr)).await {
        Ok(Ok(sock)) => sock,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connect timed out".into()),
    };
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    if s.redis && (s.auth.is_some() || s.db != 0) {
        let mut req = Vec::new();
        let mut n = 0;
        if let Some(a) = &s.auth {
            req.extend(resp::command(&[b"AUTH", a.as_bytes()]));
            n += 1;
        }
        if s.db != 0 {
            req.extend(resp::command(&[b"SELECT", s.db.to_string().as_bytes()]));
            n += 1;
        }
        let setup = async {
            wr.write_all(&req).await.map_err(|e| e.to_string())?;
            let mut buf = BytesMut::with_capacity(256);
            let mut pos = 0;
            while n > 0 {
                match resp::reply_len(buf.get(pos..).unwrap_or(&[])) {
                    Ok(Some(len)) => {
                        let r = buf.get(pos..pos + len).unwrap_or(&[]);
                        if !r.starts_with(b"+OK") {
                            return Err(String::from_utf8_lossy(r).trim_end().to_string());
                        }
                        pos += len;
                        n -= 1;
                    }
                    Ok(None) => {
                        if rd.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                            return Err("closed during AUTH/SELECT".into());
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        };
        tokio::time::timeout(limit, setup)
            .await
            .map_err(|_| "AUTH/SELECT timed out".to_string())??;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    server.stats.server_connections.fetch_add(1, Relaxed);
    tokio::spawn(read_replies(
        server.name.clone(),
        server.settings.timeout,
        rd,
        rx,
        ReaderStats(weak.clone()),
    ));
    Ok(Link { wr, inflight: tx })
}

/// The reader's link to its server: weak, so a removed server's
/// connections end with it.
struct ReaderStats(std::sync::Weak<Server>);

async fn read_replies(
    name: String,
    timeout: Option<Duration>,
    mut rd: OwnedReadHalf,
    mut inflight: mpsc::UnboundedReceiver<Inflight>,
    server: ReaderStats,
) {
    let mut buf = BytesMut::with_capacity(crate::client::READ_CHUNK);
    // This connection's histograms by command: no lock, no lookup in the
    // server's map after a command's first reply.
    let mut hists: Vec<(Arc<str>, Arc<crate::state::Histogram>)> = Vec::new();
    let fail = |e: BackendError| {
        if let Some(s) = server.0.upgrade() {
            match e {
                BackendError::Timeout(_) => s.stats.server_timedout.fetch_add(1, Relaxed),
                BackendError::Closed(_) => s.stats.server_eof.fetch_add(1, Relaxed),
                _ => s.stats.server_err.fetch_add(1, Relaxed),
            };
            s.failure();
        }
        e
    };
    'next: while let Some(mut p) = inflight.recv().await {
        loop {
            let parsed = match p.expect {
                Expect::Resp => resp::reply_len(&buf).map_err(|e| e.to_string()),
                Expect::Memcache(shape) => memcache::reply_len(&buf, shape).map_err(str::to_string),
            };
            match parsed {
                Ok(Some(n)) => {
                    let reply = buf.split_to(n).freeze();
                    if let Some(s) = server.0.upgrade() {
                        let st = &s.stats;
                        st.responses.fetch_add(1, Relaxed);
                        st.response_bytes.fetch_add(n as u64, Relaxed);
                        st.out_queue.fetch_sub(1, Relaxed);
                        st.out_queue_bytes.fetch_sub(p.bytes as u64, Relaxed);
                        let us = u64::try_from(p.sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let found = hists
                            .iter()
                            .find(|(c, _)| Arc::ptr_eq(c, &p.command) || **c == *p.command);
                        match found {
                            Some((_, h)) => h.record(us),
                            None => {
                                let h = st.latency_of(&p.command);
                                h.record(us);
                                hists.push((p.command.clone(), h));
                            }
                        }
                        s.success();
                    }
                    if let Some(tx) = p.reply.take() {
                        let _ = tx.send(Ok(reply));
                    }
                    continue 'next;
                }
                Ok(None) => {}
                Err(e) => {
                    let e = fail(BackendError::Protocol(name.clone(), e));
                    close(&server, p, e, &mut inflight);
                    return;
                }
            }
            crate::client::reserve(&mut buf);
            let read = rd.read_buf(&mut buf);
            let r = match timeout {
                Some(t) => match tokio::time::timeout_at(p.sent + t, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        let e = fail(BackendError::Timeout(name.clone()));
                        close(&server, p, e, &mut inflight);
                        return;
                    }
                },
                None => read.await,
            };
            match r {
                Ok(0) | Err(_) => {
                    let e = fail(BackendError::Closed(name.clone()));
                    close(&server, p, e, &mut inflight);
                    return;
                }
                Ok(_) => {}
            }
        }
    }
    if let Some(s) = server.0.upgrade() {
        s.stats.server_connections.fetch_sub(1, Relaxed);
    }
}

/// Fails `p` and every request still waiting on this connection.
fn close(
    server: &ReaderStats,
    p: Inflight,
    e: BackendError,
    inflight: &mut mpsc::UnboundedReceiver<Inflight>,
) {
    inflight.close();
    let s = server.0.upgrade();
    let finish = |mut p: Inflight| {
        if let Some(s) = &s {
            s.stats.out_queue.fetch_sub(1, Relaxed);
            s.stats.out_queue_bytes.fetch_sub(p.bytes as u64, Relaxed);
        }
        if let Some(g) = p.guard.take() {
            g.finish(false);
        }
        if let Some(tx) = p.reply.take() {
            let _ = tx.send(Err(e.clone()));
        }
    };
    finish(p);
    while let Ok(q) = inflight.try_recv() {
        finish(q);
    }
    if let Some(s) = &s {
        s.stats.server_connections.fetch_sub(1, Relaxed);
    }
}

/// One connection's writer: batches queued jobs into one write (a small
/// batch waits up to [`COALESCE_ROUNDS`] passes of the event loop for more),
/// reconnects with exponential backoff (50 ms doubling to 2 s) while failing
/// the jobs that arrive meanwhile.
async fn connection(
    server: std::sync::Weak<Server>,
    mut rx: mpsc::Receiver<Job>,
    preconnect: bool,
) {
    let mut link: Option<Link> = None;
    let mut backoff = Duration::from_millis(50);
    let mut retry_at = Instant::now();
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    if preconnect {
        if let Some(s) = server.upgrade() {
            match open(&server, &s).await {
                Ok(l) => link = Some(l),
                Err(e) => log::warn!("preconnect to {} ({}): {e}", s.name, s.addr),
            }
        }
    }
    while let Some(job) = rx.recv().await {
        batch.push(job);
        // Coalescing: while the batch is small, let the runtime poll its
        // sockets (up to a few times) before the write, so that the
        // requests of every client that becomes ready meanwhile go in the
        // same write. Fewer, larger writes cost the server (and this proxy)
        // less per request; the wait is a few passes of the event loop,
        // microseconds. A batch that is large already (pipelining clients)
        // goes at once.
        take_queued(&mut rx, &mut batch);
        for _ in 0..COALESCE_ROUNDS {
            if batch.len() >= COALESCE_BELOW {
                break;
            }
            tokio::task::yield_now().await;
            take_queued(&mut rx, &mut batch);
        }
        let Some(s) = server.upgrade() else { return };
        for j in &batch {
            s.dequeued(j.bytes.len());
        }
        if link.as_ref().is_some_and(|l| l.inflight.is_closed()) {
            link = None;
        }
        if link.is_none() {
            if Instant::now() < retry_at {
                let e = BackendError::Connect(s.name.clone(), "reconnecting (backoff)".into());
                fail_all(&mut batch, &e);
                continue;
            }
            match open(&server, &s).await {
                Ok(l) => {
                    link = Some(l);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    log::debug!("connect to {} ({}): {e}", s.name, s.addr);
                    s.stats.server_err.fetch_add(1, Relaxed);
                    s.failure();
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    fail_all(&mut batch, &BackendError::Connect(s.name.clone(), e));
                    continue;
                }
            }
        }
        let Some(l) = link.as_mut() else { continue };
        out.clear();
        let now = Instant::now();
        for j in batch.drain(..) {
            let len = j.bytes.len();
            out.extend_from_slice(&j.bytes);
            s.stats.requests.fetch_add(1, Relaxed);
            s.stats.request_bytes.fetch_add(len as u64, Relaxed);
            s.stats.out_queue.fetch_add(1, Relaxed);
            s.stats.out_queue_bytes.fetch_add(len as u64, Relaxed);
            let p = Inflight {
                expect: j.expect,
                reply: Some(j.reply),
                command: j.command,
                bytes: len,
                sent: now,
                guard: j.guard,
            };
            if let Err(e) = l.inflight.send(p) {
                let mut p = e.0;
                s.stats.out_queue.fetch_sub(1, Relaxed);
                s.stats.out_queue_bytes.fetch_sub(len as u64, Relaxed);
                if let Some(tx) = p.reply.take() {
                    let _ = tx.send(Err(BackendError::Closed(s.name.clone())));
                }
            }
        }
        if let Err(e) = l.wr.write_all(&out).await {
            log::debug!("write to {} ({}): {e}", s.name, s.addr);
            // The reader sees the broken connection and fails what was sent.
            link = None;
        }
    }
}

/// Moves what is queued into `batch`, up to [`BATCH`] jobs.
fn take_queued(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

fn fail_all(batch: &mut Vec<Job>, e: &BackendError) {
    for j in batch.drain(..) {
        let _ = j.reply.send(Err(e.clone()));
    }
}
