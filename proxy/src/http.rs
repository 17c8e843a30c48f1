//! HTTP pools (`mode: http`): HTTP/1.1 with keep-alive to clients, pooled
//! keep-alive connections to every server, each request placed by its key.
//!
//! A request's key comes from `hash_key:` ([`crate::http_key`]); a request
//! without it (no such header, parameter or cookie) is spread over the
//! servers like round robin (a per-pool counter is hashed in its place).
//! The pool's placement picks the server (health considered); the request is
//! forwarded with its body streamed, `X-Forwarded-For` appended, and the
//! hop-by-hop headers of RFC 9110 §7.6.1 removed both ways (`Connection` and
//! every header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//! `Transfer-Encoding`, `Upgrade`); hyper frames each side itself.
//!
//! Backends: hyper-util's pooled client (one pool of idle keep-alive
//! connections per server address, at most [`IDLE_PER_SERVER`] idle each,
//! closed after [`IDLE_CONNECTION`] unused).
//!
//! Answers of the proxy itself: **503** when no server is up, **502** when no
//! server could be connected after the pick and `retries:` next choices
//! ([`Pool::route_avoiding`]: where the key goes with the servers tried
//! down, as tcp pools retry), or
//! when the server's answer broke before its head, **504** when no response
//! head came within `timeout:` (connect included). A connect failure is
//! retried on the next choice, with the request body intact (it is read only
//! once a connection is made); any other failure is not (the server may have
//! acted on the request), except that a `GET`, `HEAD` or `OPTIONS` without a
//! body whose connection broke before any answer is sent once more (RFC 9110
//! §9.2.2; the usual cause is a pooled keep-alive connection the server
//! closed as it was reused).
//!
//! Hedging (`hedge_after:`): a `GET`, `HEAD` or `OPTIONS` request without a
//! body that has no response head after `hedge_after` (a fixed time, or the
//! pool's recent percentile of response-head latency, [`crate::quantile`]:
//! within 12.5 %, the last few thousand responses weighing most; at least
//! [`HEDGE_FLOOR`], once [`HEDGE_MIN_SAMPLES`] responses were seen) is sent
//! again to the runner-up (the next choice, [`Pool::route_avoiding`] with
//! the pick avoided: the ring's successor, rendezvous' second score, a
//! load-aware strategy's next pick); the first
//! response head wins and the other request is cancelled (its connection is
//! dropped). `hedges` and `hedge_wins` count them, per pool and per server.
//!
//! Client connections: `idle_timeout:` closes a connection with no request
//! in flight and no byte either way for that long; `client_connections:`
//! is enforced where connections are accepted. A request body left unread
//! (the server answered without it, or the proxy's own error answer) is read
//! and thrown away within bounds (1 MiB, 5 s) so that the connection
//! stays usable, as nginx discards it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chring_config::twemproxy::HedgeAfter;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::Server;
use crate::http_key::{self, Extracted};
use crate::placement::LoadGuard;
use crate::pool::Pool;
use crate::quantile::Quantiles;
use crate::state::status_class;

/// Idle keep-alive connections kept per server.
pub const IDLE_PER_SERVER: usize = 64;
/// An idle backend connection is closed after this long unused.
pub const IDLE_CONNECTION: Duration = Duration::from_secs(60);
/// The shortest hedge delay a percentile gives.
pub const HEDGE_FLOOR: Duration = Duration::from_millis(1);
/// Responses a pool must have seen before `hedge_after: pNN` hedges.
pub const HEDGE_MIN_SAMPLES: u64 = 20;

/// Most of a client's request body read and thrown away after the request
/// was answered without it (see [`ClientBody`]).
const DISCARD_MAX_BYTES: usize = 1 << 20;
/// How long such a body may take to arrive.
const DISCARD_MAX_TIME: Duration = Duration::from_secs(5);

/// A client's request body. Dropped unread (a server answered without
/// reading it all, or the request failed first), its rest is read and
/// thrown away, up to [`DISCARD_MAX_BYTES`] and [`DISCARD_MAX_TIME`], as
/// nginx discards it: so the client's keep-alive connection stays usable
/// (hyper closes a connection whose request body was left unread). Past the
/// bounds the connection closes.
#[derive(Debug)]
struct ClientBody(Option<Incoming>);

impl ClientBody {
    fn get(&mut self) -> Option<&mut Incoming> {
        self.0.as_mut()
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        let Some(body) = self.0.take() else { return };
        if body.is_end_stream() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(discard(body));
        }
    }
}

/// Reads `body` to its end and drops the data, within the bounds above.
async fn discard(mut body: Incoming) {
    let read = async {
        let mut n = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            n = n.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            if n > DISCARD_MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_MAX_TIME, read).await;
}

/// The body sent to a server: the client's, read only once a connection is
/// made (so a connect failure leaves it for the next choice), or none.
#[derive(Debug)]
pub struct ForwardBody {
    slot: Option<Arc<Mutex<Option<ClientBody>>>>,
    body: Option<ClientBody>,
    counted: Option<(Arc<Server>, Arc<Pool>)>,
}

impl ForwardBody {
    fn empty() -> Self {
        ForwardBody {
            slot: None,
            body: None,
            counted: None,
        }
    }

    fn take(&mut self) -> Option<&mut Incoming> {
        if self.body.is_none() {
            if let Some(slot) = &self.slot {
                self.body = slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
            }
        }
        self.body.as_mut().and_then(ClientBody::get)
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(body) = this.take() else {
            return Poll::Ready(None);
        };
        let r = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let (Some(d), Some((s, p))) = (f.data_ref(), &this.counted) {
                let n = d.len() as u64;
                s.stats.request_bytes.fetch_add(n, Relaxed);
                p.stats.client_bytes_in.fetch_add(n, Relaxed);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        match (&self.body, &self.slot) {
            (Some(b), _) => b.0.as_ref().is_none_or(Body::is_end_stream),
            (None, Some(slot)) => slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .and_then(|b| b.0.as_ref())
                .is_none_or(Body::is_end_stream),
            (None, None) => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let exact0 = || SizeHint::with_exact(0);
        match (&self.body, &self.slot) {
            (Some(b), _) => b.0.as_ref().map_or_else(exact0, Body::size_hint),
            (None, Some(slot)) => slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .and_then(|b| b.0.as_ref())
                .map_or_else(exact0, Body::size_hint),
            (None, None) => exact0(),
        }
    }
}

/// The end of a forwarded request: recorded once, when the response body
/// ends, fails or is dropped (the client went away).
#[derive(Debug)]
struct Finish {
    server: Arc<Server>,
    guard: Option<LoadGuard>,
    ok: bool,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.server.stats.out_queue.fetch_sub(1, Relaxed);
        // The load-aware strategies learn the outcome and the latency.
        if let Some(g) = self.guard.take() {
            g.finish(self.ok);
        }
    }
}

/// The body sent to a client: a server's (counted, streamed) or the proxy's
/// own.
#[derive(Debug)]
pub enum ReplyBody {
    /// A server's response body.
    Server {
        /// The body.
        body: Incoming,
        /// What to record at its end.
        finish: Option<Box<FinishHandle>>,
    },
    /// A body made here.
    Own(Option<Bytes>),
}

/// What the end of a server's response records (opaque).
#[derive(Debug)]
pub struct FinishHandle {
    finish: Finish,
    pool: Arc<Pool>,
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut *self {
            ReplyBody::Own(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReplyBody::Server { body, finish } => {
                let r = Pin::new(body).poll_frame(cx);
                match &r {
                    Poll::Ready(Some(Ok(f))) => {
                        if let (Some(d), Some(h)) = (f.data_ref(), finish.as_ref()) {
                            let n = d.len() as u64;
                            h.finish.server.stats.response_bytes.fetch_add(n, Relaxed);
                            h.pool.stats.client_bytes_out.fetch_add(n, Relaxed);
                        }
                    }
                    Poll::Ready(Some(Err(_))) => {
                        if let Some(h) = finish.as_mut() {
                            h.finish.ok = false;
                            h.finish.server.stats.server_err.fetch_add(1, Relaxed);
                        }
                        *finish = None;
                    }
                    Poll::Ready(None) => *finish = None,
                    Poll::Pending => {}
                }
                r
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Own(b) => b.is_none(),
            ReplyBody::Server { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Own(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReplyBody::Server { body, .. } => body.size_hint(),
        }
    }
}

/// One HTTP pool's data path: its backend client and its settings.
#[derive(Debug)]
pub struct HttpPool {
    pool: Arc<Pool>,
    client: Client<HttpConnector, ForwardBody>,
    /// Response-head timeout (`timeout:`, connect included).
    timeout: Option<Duration>,
    /// Requests without their key, hashed in its place.
    spread: AtomicU64,
    /// What `hedge_budget:` still allows.
    budget: HedgeBudget,
    /// Recent response-head latencies, for `hedge_after: pNN`.
    recent: Quantiles,
}

/// Most hedges the budget saves up (a burst after a quiet spell).
const HEDGE_BURST: i64 = 10;

/// `hedge_budget:` as a token bucket, in thousandths of a hedge: every
/// request earns `percent × 10`, a hedge spends 1,000, and at most
/// [`HEDGE_BURST`] hedges are saved. So over any long run hedges add at most
/// `percent`% of the requests (plus the burst), and a pool whose backends
/// all slow down at once (overload: hedging would double it) stops hedging
/// after the burst instead of sending every request twice. Starts full.
#[derive(Debug)]
struct HedgeBudget {
    milli: std::sync::atomic::AtomicI64,
    earn: i64,
}

impl HedgeBudget {
    fn new(percent: u32) -> HedgeBudget {
        HedgeBudget {
            milli: std::sync::atomic::AtomicI64::new(HEDGE_BURST * 1000),
            earn: i64::from(percent.min(100)) * 10,
        }
    }

    /// One request's share.
    fn earn(&self) {
        let _ = self.milli.fetch_update(Relaxed, Relaxed, |m| {
            Some((m + self.earn).min(HEDGE_BURST * 1000))
        });
    }

    /// Takes one hedge's worth; `false` when the budget is spent.
    fn spend(&self) -> bool {
        self.milli
            .fetch_update(Relaxed, Relaxed, |m| (m >= 1000).then_some(m - 1000))
            .is_ok()
    }
}

/// What an attempt (hedged or not) came to.
struct Answer {
    result: Result<Response<Incoming>, Failure>,
    /// The server that gave `result`.
    server: Arc<Server>,
    /// The runner-up's guard, when its answer won.
    hedge_guard: Option<LoadGuard>,
}

/// Why one attempt got no response.
#[derive(Debug)]
enum Failure {
    /// No connection could be made: try the next choice.
    Connect,
    /// The request was sent (or may have been) and failed.
    Broken,
    /// No head within the timeout.
    Timeout,
}

/// RFC 9110 §7.6.1's hop-by-hop headers (besides those `Connection` names).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers: every one `Connection` names, then the
/// fixed list.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

/// Appends `client` to `X-Forwarded-For` (one header, comma-separated).
pub fn add_forwarded_for(h: &mut HeaderMap, client: IpAddr) {
    let ip = http_key::SourceKey::new(client);
    let ip = String::from_utf8_lossy(ip.as_bytes()).into_owned();
    let joined = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .chain(std::iter::once(ip.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&joined) {
        h.insert("x-forwarded-for", v);
    }
}

fn own(status: StatusCode, text: &str) -> Response<ReplyBody> {
    let mut r = Response::new(ReplyBody::Own(Some(Bytes::from(format!("{text}\n")))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn idempotent(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD || *m == Method::OPTIONS
}

impl HttpPool {
    /// The data path of `pool` (a `mode: http` pool).
    #[must_use]
    pub fn new(pool: Arc<Pool>) -> Arc<HttpPool> {
        let timeout = pool.cfg.timeout_ms.map(Duration::from_millis);
        let pool_budget = pool.cfg.hedge_budget;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(
            timeout.unwrap_or(Duration::from_millis(pool.limits.connect_timeout_ms)),
        ));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_SERVER)
            .pool_idle_timeout(IDLE_CONNECTION)
            .set_host(false)
            .build(conn);
        Arc::new(HttpPool {
            pool,
            client,
            timeout,
            spread: AtomicU64::new(0),
            budget: HedgeBudget::new(pool_budget),
            recent: Quantiles::default(),
        })
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The delay after which a request is hedged now, if any.
    fn hedge_delay(&self) -> Option<Duration> {
        match self.pool.cfg.hedge_after? {
            HedgeAfter::Ms(ms) => Some(Duration::from_millis(ms)),
            HedgeAfter::Percentile(p) => {
                if self.recent.seen() < HEDGE_MIN_SAMPLES {
                    return None;
                }
                let us = self.recent.quantile_us(f64::from(p) / 100.0)?;
                (us != u64::MAX).then(|| Duration::from_micros(us).max(HEDGE_FLOOR))
            }
        }
    }

    /// One attempt: `parts` with `body` to `server`. Counts the request and
    /// the server's answer.
    async fn attempt(
        &self,
        server: &Arc<Server>,
        parts: &hyper::http::request::Parts,
        body: ForwardBody,
    ) -> Result<Response<Incoming>, Failure> {
        let pq = parts
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let uri: hyper::Uri = format!("http://{}{pq}", server.addr)
            .parse()
            .map_err(|_| Failure::Connect)?;
        let request = |body: ForwardBody| {
            let mut req = Request::new(body);
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri.clone();
            *req.headers_mut() = parts.headers.clone();
            if !req.headers().contains_key(header::HOST) {
                if let Ok(v) = HeaderValue::from_str(&server.addr) {
                    req.headers_mut().insert(header::HOST, v);
                }
            }
            req
        };
        // A safe request without a body may be sent again when its
        // connection broke before any answer (RFC 9110 §9.2.2): the usual
        // cause is a pooled keep-alive connection the server closed just as
        // it was reused.
        let resendable = idempotent(&parts.method) && body.is_end_stream();
        let st = &server.stats;
        st.requests.fetch_add(1, Relaxed);
        let t0 = Instant::now();
        let mut r = self.client.request(request(body)).await;
        if resendable && r.as_ref().is_err_and(|e| !e.is_connect()) {
            log::debug!(
                "pool '{}': {}: connection broke before the answer; sending again",
                self.pool.cfg.name,
                server.addr
            );
            st.requests.fetch_add(1, Relaxed);
            r = self.client.request(request(ForwardBody::empty())).await;
        }
        match r {
            Ok(resp) => {
                st.responses.fetch_add(1, Relaxed);
                if let Some(c) = st.http.status.get(status_class(resp.status().as_u16())) {
                    c.fetch_add(1, Relaxed);
                }
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                st.latency_of("http").record(us);
                Ok(resp)
            }
            Err(e) => {
                st.server_err.fetch_add(1, Relaxed);
                if e.is_connect() {
                    log::debug!(
                        "pool '{}': {}: connect: {e}",
                        self.pool.cfg.name,
                        server.addr
                    );
                    Err(Failure::Connect)
                } else {
                    log::debug!("pool '{}': {}: {e}", self.pool.cfg.name, server.addr);
                    Err(Failure::Broken)
                }
            }
        }
    }

    /// Sends a bodiless idempotent request to `a`, and after the hedge delay
    /// also to the runner-up; the first response head wins. Returns the
    /// result, the server that gave it, and the runner-up's load guard when
    /// the runner-up answered (the loser's guard is dropped: a success with
    /// the time since its pick, the time it was given).
    async fn hedged(
        &self,
        a: &Arc<Server>,
        runner_up: impl FnOnce() -> Option<(Arc<Server>, Option<LoadGuard>)>,
        parts: &hyper::http::request::Parts,
    ) -> Answer {
        let first = self.attempt(a, parts, ForwardBody::empty());
        tokio::pin!(first);
        let primary = |result| Answer {
            result,
            server: a.clone(),
            hedge_guard: None,
        };
        let Some(delay) = self.hedge_delay() else {
            return primary(first.await);
        };
        tokio::select! {
            r = &mut first => return primary(r),
            () = tokio::time::sleep(delay) => {}
        }
        if !self.budget.spend() {
            log::debug!("pool '{}': hedge budget spent", self.pool.cfg.name);
            return primary(first.await);
        }
        let Some((b, guard)) = runner_up() else {
            return primary(first.await);
        };
        let stats = &self.pool.stats.http;
        stats.hedges.fetch_add(1, Relaxed);
        b.stats.http.hedges.fetch_add(1, Relaxed);
        let second = self.attempt(&b, parts, ForwardBody::empty());
        tokio::pin!(second);
        let won = |result| {
            stats.hedge_wins.fetch_add(1, Relaxed);
            b.stats.http.hedge_wins.fetch_add(1, Relaxed);
            Answer {
                result,
                server: b.clone(),
                hedge_guard: guard,
            }
        };
        tokio::select! {
            r = &mut first => match r {
                Ok(resp) => primary(Ok(resp)),
                Err(_) => match second.await {
                    Ok(resp) => won(Ok(resp)),
                    Err(e) => primary(Err(e)),
                },
            },
            r = &mut second => match r {
                Ok(resp) => won(Ok(resp)),
                Err(_) => primary(first.await),
            },
        }
    }

    /// Answers one client request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: Option<IpAddr>,
    ) -> Response<ReplyBody> {
        let t0 = Instant::now();
        let pool = self.pool.clone();
        pool.stats.http.requests.fetch_add(1, Relaxed);
        let resp = self.forward(req, client, t0).await;
        if let Some(c) = pool
            .stats
            .http
            .status
            .get(status_class(resp.status().as_u16()))
        {
            c.fetch_add(1, Relaxed);
        }
        resp
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        client: Option<IpAddr>,
        t0: Instant,
    ) -> Response<ReplyBody> {
        let pool = &self.pool;
        let hs = &pool.stats.http;
        let key: Vec<u8> = match http_key::of_request(&pool.cfg.hash_key, &req, client) {
            Extracted::Missing => self.spread.fetch_add(1, Relaxed).to_le_bytes().to_vec(),
            k => k.bytes().unwrap_or_default().to_vec(),
        };
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(ip) = client {
            add_forwarded_for(&mut parts.headers, ip);
        }
        let bodiless = body.is_end_stream();
        let hedge = bodiless && idempotent(&parts.method) && pool.cfg.hedge_after.is_some();
        if pool.cfg.hedge_after.is_some() {
            self.budget.earn();
        }
        let slot = Arc::new(Mutex::new(Some(ClientBody(Some(body)))));
        let mut tried: Vec<Arc<Server>> = Vec::new();
        let retries = pool.cfg.retries as usize;
        let deadline = self.timeout.map(|t| t0 + t);
        for attempt in 0..=retries {
            // The pick, then the next choice after the servers tried.
            let Some((server, guard)) = pool.route_avoiding(&key, &tried) else {
                break;
            };
            tried.push(server.clone());
            if attempt > 0 {
                hs.retries.fetch_add(1, Relaxed);
            }
            server.stats.out_queue.fetch_add(1, Relaxed);
            let mut finish = Finish {
                server: server.clone(),
                guard,
                ok: false,
            };
            let work = async {
                if hedge {
                    let runner_up = || pool.route_avoiding(&key, &tried);
                    self.hedged(&server, runner_up, &parts).await
                } else {
                    let body = ForwardBody {
                        slot: Some(slot.clone()),
                        body: None,
                        counted: Some((server.clone(), pool.clone())),
                    };
                    Answer {
                        result: self.attempt(&server, &parts, body).await,
                        server: server.clone(),
                        hedge_guard: None,
                    }
                }
            };
            let answer = match deadline {
                Some(d) => tokio::time::timeout_at(d, work)
                    .await
                    .unwrap_or_else(|_| Answer {
                        result: Err(Failure::Timeout),
                        server: server.clone(),
                        hedge_guard: None,
                    }),
                None => work.await,
            };
            match answer.result {
                Ok(mut resp) => {
                    let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                    hs.latency.record(us);
                    self.recent.record(us);
                    strip_hop_by_hop(resp.headers_mut());
                    let (rparts, rbody) = resp.into_parts();
                    if !Arc::ptr_eq(&answer.server, &server) {
                        // The hedge answered: its server and guard hold the
                        // request now; the primary's guard goes (a success
                        // with the time it was given).
                        answer.server.stats.out_queue.fetch_add(1, Relaxed);
                        drop(std::mem::replace(
                            &mut finish,
                            Finish {
                                server: answer.server,
                                guard: answer.hedge_guard,
                                ok: false,
                            },
                        ));
                    }
                    finish.ok = rparts.status.as_u16() < 500;
                    let body = ReplyBody::Server {
                        body: rbody,
                        finish: Some(Box::new(FinishHandle {
                            finish,
                            pool: pool.clone(),
                        })),
                    };
                    return Response::from_parts(rparts, body);
                }
                Err(Failure::Connect) => {
                    drop(finish);
                    // The body is still in the slot unless it was read.
                    let body_left = slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .is_some();
                    if !body_left {
                        break;
                    }
                }
                Err(Failure::Timeout) => {
                    drop(finish);
                    server.stats.server_timedout.fetch_add(1, Relaxed);
                    hs.gateway_timeout.fetch_add(1, Relaxed);
                    pool.stats.forward_error.fetch_add(1, Relaxed);
                    return own(
                        StatusCode::GATEWAY_TIMEOUT,
                        &format!("504 no answer from {} within timeout", server.name),
                    );
                }
                Err(Failure::Broken) => {
                    drop(finish);
                    hs.bad_gateway.fetch_add(1, Relaxed);
                    pool.stats.forward_error.fetch_add(1, Relaxed);
                    return own(
                        StatusCode::BAD_GATEWAY,
                        &format!("502 the answer of {} broke", server.name),
                    );
                }
            }
        }
        pool.stats.forward_error.fetch_add(1, Relaxed);
        if tried.is_empty() {
            hs.unavailable.fetch_add(1, Relaxed);
            own(StatusCode::SERVICE_UNAVAILABLE, "503 no server is up")
        } else {
            hs.bad_gateway.fetch_add(1, Relaxed);
            own(
                StatusCode::BAD_GATEWAY,
                &format!("502 no server could be connected ({} tried)", tried.len()),
            )
        }
    }
}

/// A client connection's I/O, noting the time of its last byte either way.
struct Watched {
    io: TcpStream,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request in flight on a connection (the idle timer waits while any is).
struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Serves one client connection until it closes, `idle_timeout` passes with
/// nothing in flight, or `stop` fires (then the request in flight finishes
/// first).
pub async fn serve(http: Arc<HttpPool>, sock: TcpStream, mut stop: watch::Receiver<bool>) {
    let _ = sock.set_nodelay(true);
    let peer: Option<SocketAddr> = sock.peer_addr().ok();
    let client = peer.map(|p| p.ip());
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let io = Watched {
        io: sock,
        last: last.clone(),
        epoch,
    };
    let svc = {
        let in_flight = in_flight.clone();
        let http = http.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            in_flight.fetch_add(1, Relaxed);
            let guard = InFlight(in_flight.clone());
            let http = http.clone();
            async move {
                let r = http.handle(req, client).await;
                drop(guard);
                Ok::<_, Infallible>(r)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle = Duration::from_millis(http.pool.cfg.idle_timeout_ms);
    let tick = if idle.is_zero() {
        Duration::from_secs(3600)
    } else {
        (idle / 4).max(Duration::from_millis(5))
    };
    let mut stopping = false;
    let stats = &http.pool.stats;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                match r {
                    Ok(()) => stats.client_eof.fetch_add(1, Relaxed),
                    Err(_) => stats.client_err.fetch_add(1, Relaxed),
                };
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(tick), if !idle.is_zero() && !stopping => {
                let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                let quiet = now.saturating_sub(last.load(Relaxed));
                if in_flight.load(Relaxed) == 0 && quiet >= u64::try_from(idle.as_millis()).unwrap_or(u64::MAX) {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_connection_names_go_with_them() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "close"),
            ("trailer", "x-t"),
            ("x-kept", "yes"),
            ("host", "example.com"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let mut h = HeaderMap::new();
        add_forwarded_for(&mut h, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        h.append("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        add_forwarded_for(&mut h, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.1, 127.0.0.1");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn only_safe_methods_hedge() {
        assert!(idempotent(&Method::GET));
        assert!(idempotent(&Method::HEAD));
        assert!(idempotent(&Method::OPTIONS));
        assert!(!idempotent(&Method::POST));
        assert!(!idempotent(&Method::PUT));
        assert!(!idempotent(&Method::DELETE));
    }

    #[test]
    fn hedge_budget_allows_its_share_and_a_burst() {
        let b = HedgeBudget::new(10);
        // Full at the start: a burst of ten.
        assert!((0..10).all(|_| b.spend()));
        assert!(!b.spend());
        // Then one hedge per ten requests.
        let mut hedges = 0;
        for _ in 0..1000 {
            b.earn();
            hedges += usize::from(b.spend());
        }
        assert_eq!(hedges, 100);
        // Saved up to the burst only.
        for _ in 0..10_000 {
            b.earn();
        }
        assert_eq!((0..20).filter(|_| b.spend()).count(), 10);
        let all = HedgeBudget::new(100);
        assert!((0..10).all(|_| all.spend()));
        all.earn();
        assert!(all.spend() && !all.spend());
    }
}
