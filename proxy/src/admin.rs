//! Admin HTTP (`--admin 127.0.0.1:PORT`, HTTP/1.1 on hyper).
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /dashboard` | the live dashboard (HTML, self-contained; no token needed: it holds no data) |
//! | `GET /metrics` | Prometheus text exposition 0.0.4 (below) |
//! | `GET /api/state` | JSON of [`Control::snapshot`] |
//! | `POST /api/pools/{pool}/servers` `{"name":..,"addr":..,"weight":..}` | 201 `{"pool","server","moved"}` |
//! | `DELETE /api/pools/{pool}/servers/{name}` | 200 `{"pool","server","moved"}` |
//! | `POST /api/pools/{pool}/servers/{name}/down` (or `/up`) | 200 `{"pool","server","up"}` |
//! | `GET /api/pools/{pool}/route?key=K` | 200 `{"pool","key","server"}` (`server` null when none is up) |
//! | `GET /api/pools/{pool}/moves?op=add&name=N&addr=A[&weight=W]` | 200 `{"pool","moved"}` |
//! | `GET /api/pools/{pool}/moves?op=remove&name=N` | 200 `{"pool","moved"}` |
//! | `GET /rep`, `POST /add`, `DELETE /rm` | seed 001's API ([`seed001`], its own error shape) |
//!
//! `weight` defaults to 1. Path segments and query values are
//! percent-decoded (`+` is a space in queries). Errors are JSON
//! `{"error": "one line"}` with 400 (bad JSON, missing or bad parameter), 401
//! (token missing or wrong), 404 (no such path, pool or server), 405 (method),
//! 409 (duplicate server, pool full), 413 (body over 64 KiB), 422 (the
//! placement refused the change).
//!
//! With a token (`--token-file`), every request needs
//! `Authorization: Bearer TOKEN`.
//!
//! Metrics (all labelled by `pool`, server ones also by `server`; the latency
//! histograms also by `command`):
//! `chring_proxy_uptime_seconds`,
//! `chring_proxy_client_connections` (gauge),
//! `chring_proxy_client_connections_total`, `chring_proxy_client_eof_total`,
//! `chring_proxy_client_errors_total`, `chring_proxy_client_bytes_received_total`,
//! `chring_proxy_client_bytes_sent_total`, `chring_proxy_forward_errors_total`,
//! `chring_proxy_fragments_total`, `chring_proxy_server_ejects_total`,
//! `chring_proxy_server_up` (gauge, 1 when routed to), `chring_proxy_server_key_share`,
//! `chring_proxy_server_connections`, `chring_proxy_server_requests_total`,
//! `chring_proxy_server_request_bytes_total`, `chring_proxy_server_responses_total`,
//! `chring_proxy_server_response_bytes_total`, `chring_proxy_server_errors_total`,
//! `chring_proxy_server_timeouts_total`, `chring_proxy_server_eof_total`,
//! `chring_proxy_server_ejections_total`, `chring_proxy_server_in_queue`,
//! `chring_proxy_server_out_queue`, and the histogram
//! `chring_proxy_request_duration_seconds` (`_bucket{le=...}`, `_sum`, `_count`).
//!
//! `mode: http` pools add `chring_proxy_http_requests_total`,
//! `chring_proxy_http_responses_total` (by `class`: `1xx` .. `5xx`),
//! `chring_proxy_http_hedges_total`, `chring_proxy_http_hedge_wins_total`,
//! `chring_proxy_http_retries_total`, `chring_proxy_http_bad_gateway_total`,
//! `chring_proxy_http_unavailable_total`,
//! `chring_proxy_http_gateway_timeouts_total`, the histogram
//! `chring_proxy_http_request_duration_seconds` (request head to response
//! head), and per server `chring_proxy_http_server_responses_total` (by
//! `class`), `chring_proxy_http_server_hedges_total`,
//! `chring_proxy_http_server_hedge_wins_total`; their servers' latency is
//! `chring_proxy_request_duration_seconds{command="http"}`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::state::{Change, Control, ControlError, Health, HistogramSnapshot, Snapshot};

pub mod seed001;

/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Admin connections served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 256;

type Body = Full<Bytes>;

/// An error reply: status and one line of text.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::UnknownPool(_) | ControlError::UnknownServer { .. } => {
                StatusCode::NOT_FOUND
            }
            ControlError::Duplicate { .. } | ControlError::Full { .. } => StatusCode::CONFLICT,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError(status, e.to_string())
    }
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, text.into())
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut body = v.to_string();
    body.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: ApiError) -> Response<Body> {
    let text = e.1.replace(['\r', '\n'], " ");
    json_response(e.0, &json!({ "error": text }))
}

/// Percent-decodes `s` (`+` as space when `plus` is set); `None` for a
/// malformed escape.
fn percent_decode(s: &str, plus: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn text(bytes: Vec<u8>, what: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes).map_err(|_| bad(format!("{what} is not UTF-8")))
}

/// The decoded query parameters (the last of a repeated name wins).
fn query(q: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let mut out = Vec::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).ok_or_else(|| bad("bad percent-escape in the query"))?;
        let v = percent_decode(v, true).ok_or_else(|| bad("bad percent-escape in the query"))?;
        out.push((text(k, "a query parameter name")?, v));
    }
    Ok(out)
}

fn param<'q>(q: &'q [(String, Vec<u8>)], name: &str) -> Option<&'q [u8]> {
    q.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

fn need_param(q: &[(String, Vec<u8>)], name: &str) -> Result<String, ApiError> {
    let v = param(q, name).ok_or_else(|| bad(format!("missing query parameter '{name}'")))?;
    text(v.to_vec(), name)
}

/// The request body, at most [`MAX_BODY`] bytes.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Ok(Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {MAX_BODY} bytes"),
                )
            } else {
                bad(format!("reading the body failed: {e}"))
            }
        })?
        .to_bytes())
}

fn weight_of(v: Option<u64>) -> Result<u32, ApiError> {
    match v {
        None => Ok(1),
        Some(0) => Err(bad("weight must be at least 1")),
        Some(w) if w > u64::from(chring::MAX_WEIGHT) => Err(bad("weight too large")),
        Some(w) => u32::try_from(w).map_err(|_| bad("weight too large")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    name: String,
    addr: String,
    weight: Option<u64>,
}

/// Routes one request. *O*(snapshot) for `/metrics` and `/api/state`, else
/// the cost of the [`Control`] call.
async fn handle(
    req: Request<Incoming>,
    ctl: Arc<dyn Control>,
    token: Option<Arc<str>>,
) -> Response<Body> {
    match route(req, ctl.as_ref(), token.as_deref()).await {
        Ok(r) => r,
        Err(e) => error_response(e),
    }
}

fn authorized(req: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(want) = token else { return true };
    let got = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The dashboard (`GET /dashboard`): one self-contained page, no external
/// resource, polling `/api/state` every second.
pub const DASHBOARD: &str = include_str!("dashboard.html");

async fn route(
    req: Request<Incoming>,
    ctl: &dyn Control,
    token: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    // The dashboard page holds no data (it reads /api/state with the token
    // given in its URL fragment), so it is served without one.
    if req.uri().path() == "/dashboard" && req.method() == Method::GET {
        let mut r = Response::new(Full::new(Bytes::from_static(DASHBOARD.as_bytes())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r.headers_mut().insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:",
            ),
        );
        return Ok(r);
    }
    let authed = authorized(&req, token);
    if seed001::is_seed_path(req.uri().path()) {
        return Ok(seed001::handle(req, ctl, authed).await);
    }
    if !authed {
        let mut r = error_response(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ));
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return Ok(r);
    }
    let path = req.uri().path().to_owned();
    let q = req.uri().query().map(str::to_owned);
    let mut segs = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        let d = percent_decode(s, false).ok_or_else(|| bad("bad percent-escape in the path"))?;
        segs.push(text(d, "a path segment")?);
    }
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let allow = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed on {path}"),
            ))
        }
    };
    match segs.as_slice() {
        ["metrics"] => {
            allow(method == Method::GET)?;
            let mut r = Response::new(Full::new(Bytes::from(metrics(&ctl.snapshot()))));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        ["api", "state"] => {
            allow(method == Method::GET)?;
            let v = serde_json::to_value(ctl.snapshot())
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(json_response(StatusCode::OK, &v))
        }
        ["api", "pools", pool, "servers"] => {
            allow(method == Method::POST)?;
            let body = read_body(req).await?;
            let add: AddBody =
                serde_json::from_slice(&body).map_err(|e| bad(format!("bad JSON body: {e}")))?;
            let weight = weight_of(add.weight)?;
            let moved = ctl.apply(
                pool,
                Change::Add {
                    name: add.name.clone(),
                    addr: add.addr,
                    weight,
                },
            )?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "pool": pool, "server": add.name, "moved": moved }),
            ))
        }
        ["api", "pools", pool, "servers", name] => {
            allow(method == Method::DELETE)?;
            let moved = ctl.apply(
                pool,
                Change::Remove {
                    name: (*name).to_owned(),
                },
            )?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "pool": pool, "server": name, "moved": moved }),
            ))
        }
        [
            "api",
            "pools",
            pool,
            "servers",
            name,
            updown @ ("up" | "down"),
        ] => {
            allow(method == Method::POST)?;
            let up = *updown == "up";
            ctl.set_up(pool, name, up)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "pool": pool, "server": name, "up": up }),
            ))
        }
        ["api", "pools", pool, "route"] => {
            allow(method == Method::GET)?;
            let q = query(q.as_deref())?;
            let key = param(&q, "key").ok_or_else(|| bad("missing query parameter 'key'"))?;
            let server = ctl.route(pool, key)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "pool": pool, "key": String::from_utf8_lossy(key), "server": server }),
            ))
        }
        ["api", "pools", pool, "moves"] => {
            allow(method == Method::GET)?;
            let q = query(q.as_deref())?;
            let op = need_param(&q, "op")?;
            let name = need_param(&q, "name")?;
            let change = match op.as_str() {
                "add" => {
                    let weight = match param(&q, "weight") {
                        None => None,
                        Some(w) => Some(
                            std::str::from_utf8(w)
                                .ok()
                                .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
                                .and_then(|w| w.parse::<u64>().ok())
                                .ok_or_else(|| bad("bad number for 'weight'"))?,
                        ),
                    };
                    Change::Add {
                        name,
                        addr: need_param(&q, "addr")?,
                        weight: weight_of(weight)?,
                    }
                }
                "remove" => Change::Remove { name },
                _ => return Err(bad("op must be add or remove")),
            };
            let moved = ctl.moves(pool, &change)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "pool": pool, "moved": moved }),
            ))
        }
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no such path: {path}"),
        )),
    }
}

/// Escapes a Prometheus label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family being written: `# HELP`, `# TYPE`, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }
    fn sample(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{{{labels}}} {v}");
    }
}

/// The Prometheus text for `snap`. *O*(pools × servers × commands × buckets).
#[must_use]
pub fn metrics(snap: &Snapshot) -> String {
    let mut out = String::new();
    {
        let f = Family::new(
            &mut out,
            "chring_proxy_uptime_seconds",
            "gauge",
            "Seconds since the proxy started.",
        );
        let up = (snap.now_unix_ms / 1000).saturating_sub(snap.started_unix);
        let _ = writeln!(f.out, "chring_proxy_uptime_seconds {up}");
    }
    type PoolField = fn(&crate::state::PoolSnapshot) -> u64;
    let pool_metrics: [(&str, &str, &str, PoolField); 9] = [
        (
            "chring_proxy_client_connections",
            "gauge",
            "Open client connections.",
            |p| p.client_connections,
        ),
        (
            "chring_proxy_client_connections_total",
            "counter",
            "Client connections accepted.",
            |p| p.client_accepted,
        ),
        (
            "chring_proxy_client_eof_total",
            "counter",
            "Client connections the client closed.",
            |p| p.client_eof,
        ),
        (
            "chring_proxy_client_errors_total",
            "counter",
            "Client connections closed on an error.",
            |p| p.client_err,
        ),
        (
            "chring_proxy_client_bytes_received_total",
            "counter",
            "Bytes read from clients.",
            |p| p.client_bytes_in,
        ),
        (
            "chring_proxy_client_bytes_sent_total",
            "counter",
            "Bytes written to clients.",
            |p| p.client_bytes_out,
        ),
        (
            "chring_proxy_forward_errors_total",
            "counter",
            "Requests answered with an error because they could not be forwarded.",
            |p| p.forward_error,
        ),
        (
            "chring_proxy_fragments_total",
            "counter",
            "Sub-requests made by splitting multi-key requests.",
            |p| p.fragments,
        ),
        (
            "chring_proxy_server_ejects_total",
            "counter",
            "Ejections of any server of the pool.",
            |p| p.server_ejects,
        ),
    ];
    for (name, kind, help, get) in pool_metrics {
        let mut f = Family::new(&mut out, name, kind, help);
        for p in &snap.pools {
            f.sample(name, &format!("pool=\"{}\"", label(&p.name)), get(p));
        }
    }
    type ServerField = fn(&crate::state::ServerSnapshot) -> f64;
    #[allow(clippy::cast_precision_loss)]
    let server_metrics: [(&str, &str, &str, ServerField); 14] = [
        (
            "chring_proxy_server_up",
            "gauge",
            "1 when the server is routed to, 0 when ejected or down.",
            |s| f64::from(u8::from(s.health == Health::Up)),
        ),
        (
            "chring_proxy_server_key_share",
            "gauge",
            "Share of the key space the placement gives the server.",
            |s| s.key_share,
        ),
        (
            "chring_proxy_server_connections",
            "gauge",
            "Open connections to the server.",
            |s| s.server_connections as f64,
        ),
        (
            "chring_proxy_server_requests_total",
            "counter",
            "Requests forwarded to the server.",
            |s| s.requests as f64,
        ),
        (
            "chring_proxy_server_request_bytes_total",
            "counter",
            "Bytes of requests forwarded to the server.",
            |s| s.request_bytes as f64,
        ),
        (
            "chring_proxy_server_responses_total",
            "counter",
            "Responses read from the server.",
            |s| s.responses as f64,
        ),
        (
            "chring_proxy_server_response_bytes_total",
            "counter",
            "Bytes of responses read from the server.",
            |s| s.response_bytes as f64,
        ),
        (
            "chring_proxy_server_errors_total",
            "counter",
            "Connection errors with the server.",
            |s| s.server_err as f64,
        ),
        (
            "chring_proxy_server_timeouts_total",
            "counter",
            "Requests to the server that timed out.",
            |s| s.server_timedout as f64,
        ),
        (
            "chring_proxy_server_eof_total",
            "counter",
            "Connections the server closed.",
            |s| s.server_eof as f64,
        ),
        (
            "chring_proxy_server_ejections_total",
            "counter",
            "Times the server was ejected.",
            |s| s.ejections as f64,
        ),
        (
            "chring_proxy_server_in_queue",
            "gauge",
            "Requests waiting to be sent to the server.",
            |s| s.in_queue as f64,
        ),
        (
            "chring_proxy_server_out_queue",
            "gauge",
            "Requests sent to the server, waiting for their response.",
            |s| s.out_queue as f64,
        ),
        (
            "chring_proxy_server_ejected_at_seconds",
            "gauge",
            "Unix time of the server's last ejection, 0 if never.",
            |s| s.server_ejected_at as f64 / 1e6,
        ),
    ];
    for (name, kind, help, get) in server_metrics {
        let mut f = Family::new(&mut out, name, kind, help);
        for p in &snap.pools {
            for s in &p.servers {
                let l = format!("pool=\"{}\",server=\"{}\"", label(&p.name), label(&s.name));
                f.sample(name, &l, get(s));
            }
        }
    }
    let name = "chring_proxy_request_duration_seconds";
    let mut f = Family::new(
        &mut out,
        name,
        "histogram",
        "Time from sending a request to a server to its whole response, per command.",
    );
    for p in &snap.pools {
        for s in &p.servers {
            for (cmd, h) in &s.latency {
                let l = format!(
                    "pool=\"{}\",server=\"{}\",command=\"{}\"",
                    label(&p.name),
                    label(&s.name),
                    label(cmd)
                );
                histogram(&mut f, name, &l, h);
            }
        }
    }
    http_metrics(&mut out, snap);
    out
}

/// The families of `mode: http` pools (only pools and servers with HTTP
/// counters get samples).
fn http_metrics(out: &mut String, snap: &Snapshot) {
    type HttpField = fn(&crate::state::HttpPoolSnapshot) -> u64;
    let pool_metrics: [(&str, &str, HttpField); 7] = [
        (
            "chring_proxy_http_requests_total",
            "HTTP requests read from clients.",
            |h| h.requests,
        ),
        (
            "chring_proxy_http_hedges_total",
            "Hedged HTTP requests (a second request sent to the runner-up).",
            |h| h.hedges,
        ),
        (
            "chring_proxy_http_hedge_wins_total",
            "Hedged HTTP requests the runner-up answered first.",
            |h| h.hedge_wins,
        ),
        (
            "chring_proxy_http_retries_total",
            "HTTP requests sent to the next choice after a connect failure.",
            |h| h.retries,
        ),
        (
            "chring_proxy_http_bad_gateway_total",
            "502 answers of the proxy (no server connected, or a broken answer).",
            |h| h.bad_gateway,
        ),
        (
            "chring_proxy_http_unavailable_total",
            "503 answers of the proxy (no server up).",
            |h| h.unavailable,
        ),
        (
            "chring_proxy_http_gateway_timeouts_total",
            "504 answers of the proxy (no response head within timeout).",
            |h| h.gateway_timeout,
        ),
    ];
    let http_pools = || {
        snap.pools
            .iter()
            .filter_map(|p| Some((p, p.http.as_ref()?)))
    };
    for (name, help, get) in pool_metrics {
        let mut f = Family::new(out, name, "counter", help);
        for (p, h) in http_pools() {
            f.sample(name, &format!("pool=\"{}\"", label(&p.name)), get(h));
        }
    }
    let name = "chring_proxy_http_responses_total";
    let mut f = Family::new(
        out,
        name,
        "counter",
        "HTTP answers to clients by status class (the proxy's own included).",
    );
    for (p, h) in http_pools() {
        for (class, v) in &h.status {
            let l = format!("pool=\"{}\",class=\"{class}\"", label(&p.name));
            f.sample(name, &l, v);
        }
    }
    let name = "chring_proxy_http_request_duration_seconds";
    let mut f = Family::new(
        out,
        name,
        "histogram",
        "Time from a client's request head to the response head, per HTTP pool.",
    );
    for (p, h) in http_pools() {
        histogram(
            &mut f,
            name,
            &format!("pool=\"{}\"", label(&p.name)),
            &h.latency,
        );
    }
    type ServerField = fn(&crate::state::HttpServerSnapshot) -> u64;
    let server_metrics: [(&str, &str, ServerField); 2] = [
        (
            "chring_proxy_http_server_hedges_total",
            "Hedged HTTP requests sent to the server as the runner-up.",
            |h| h.hedges,
        ),
        (
            "chring_proxy_http_server_hedge_wins_total",
            "Hedged HTTP requests the server answered first as the runner-up.",
            |h| h.hedge_wins,
        ),
    ];
    let http_servers = || {
        snap.pools.iter().flat_map(|p| {
            p.servers
                .iter()
                .filter_map(move |s| Some((p, s, s.http.as_ref()?)))
        })
    };
    for (name, help, get) in server_metrics {
        let mut f = Family::new(out, name, "counter", help);
        for (p, s, h) in http_servers() {
            let l = format!("pool=\"{}\",server=\"{}\"", label(&p.name), label(&s.name));
            f.sample(name, &l, get(h));
        }
    }
    let name = "chring_proxy_http_server_responses_total";
    let mut f = Family::new(
        out,
        name,
        "counter",
        "HTTP responses from the server by status class.",
    );
    for (p, s, h) in http_servers() {
        for (class, v) in &h.status {
            let l = format!(
                "pool=\"{}\",server=\"{}\",class=\"{class}\"",
                label(&p.name),
                label(&s.name)
            );
            f.sample(name, &l, v);
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn histogram(f: &mut Family<'_>, name: &str, labels: &str, h: &HistogramSnapshot) {
    let mut cumulative = 0u64;
    for (i, c) in h.counts.iter().enumerate() {
        cumulative += c;
        let le = match h.bounds_us.get(i) {
            Some(&b) => format!("{}", b as f64 / 1e6),
            None => "+Inf".to_owned(),
        };
        f.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"{le}\""),
            cumulative,
        );
    }
    if h.counts.len() <= h.bounds_us.len() {
        // No overflow bucket in the snapshot: +Inf is the total.
        f.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            cumulative,
        );
    }
    f.sample(&format!("{name}_sum"), labels, h.sum_us as f64 / 1e6);
    f.sample(&format!("{name}_count"), labels, h.count());
}

/// Serves admin HTTP on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, ctl: Arc<dyn Control>, token: Option<Arc<str>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("accept on admin port failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (ctl, token) = (ctl.clone(), token.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (ctl, token) = (ctl.clone(), token.clone());
                async move { Ok::<_, Infallible>(handle(req, ctl, token).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(sock), svc);
            if let Err(e) = conn.await {
                log::debug!("admin client {peer}: {e}");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), b"a b c");
        assert_eq!(percent_decode("a+b", false).unwrap(), b"a+b");
        assert_eq!(percent_decode("%ff", false).unwrap(), [0xff]);
        assert!(percent_decode("%f", false).is_none());
        assert!(percent_decode("%zz", false).is_none());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
