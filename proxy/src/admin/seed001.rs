//! Seed 001's admin API on `--admin`, next to the pool-named JSON API:
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /rep[?pool=P]` | | 200 `{"message": {"N": n, "replicas": [names], ...}, "status": "successful"}` |
//! | `POST /add[?pool=P]` | `{"n": N, "hostnames": ["name=host:port[:weight]" or "host:port[:weight]", ...]}` | 200, the new `/rep` with `moved` |
//! | `DELETE /rm[?pool=P]` | `{"n": N, "hostnames": [names]}` | 200, the new `/rep` with `moved` |
//!
//! `message` also holds `pool`, `health` (name -> `up` | `down` | `ejected`),
//! `servers` (name, addr, weight, health) and, after a change, `moved` (the
//! fraction of the key space each change moved). `?pool=` is required when
//! the proxy has several pools. Errors, as seed 001 answers them:
//! `{"message": "one line", "status": "failure"}` with 400 (bad body, seed
//! 001's rules, unknown pool or server, duplicate, refused change), 401 (token),
//! 405 (method), 413 (body over [`super::MAX_BODY`]). The rules and the
//! all-or-nothing batch: [`crate::replicas`].

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{ApiError, json_response, param, query, read_body, text};
use crate::replicas::{self, ReplicaError};
use crate::state::Control;

/// Whether `path` is one of seed 001's endpoints.
#[must_use]
pub(super) fn is_seed_path(path: &str) -> bool {
    matches!(path, "/rep" | "/add" | "/rm")
}

fn failure(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let text = text.replace(['\r', '\n'], " ");
    json_response(status, &json!({ "message": text, "status": "failure" }))
}

/// Answers one request to a seed 001 path (`authed`: the token check passed).
pub(super) async fn handle(
    req: Request<Incoming>,
    ctl: &dyn Control,
    authed: bool,
) -> Response<Full<Bytes>> {
    if !authed {
        let mut r = failure(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return r;
    }
    match serve(req, ctl).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(ApiError(status, text)) => failure(status, &text),
    }
}

fn refused(e: ReplicaError) -> ApiError {
    // Seed 001 answers every refusal with 400, unknown server included.
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

/// `n` and `hostnames` of a seed 001 body.
fn body(bytes: &[u8]) -> Result<(u64, Vec<String>), ApiError> {
    let bad = |t: &str| ApiError(StatusCode::BAD_REQUEST, format!("Invalid request: {t}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("bad JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the body must be {\"n\": N, \"hostnames\": [...]}"))?;
    if let Some(k) = obj.keys().find(|k| *k != "n" && *k != "hostnames") {
        return Err(bad(&format!(
            "unknown field '{k}' (expected \"n\" and \"hostnames\")"
        )));
    }
    let n = obj
        .get("n")
        .ok_or_else(|| bad("'n' is missing"))?
        .as_u64()
        .ok_or_else(|| bad("'n' must be a non-negative integer"))?;
    let hostnames = match obj.get("hostnames") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|h| h.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("'hostnames' must be a list of strings"))?,
        Some(_) => return Err(bad("'hostnames' must be a list of strings")),
    };
    Ok((n, hostnames))
}

async fn serve(req: Request<Incoming>, ctl: &dyn Control) -> Result<Value, ApiError> {
    let path = req.uri().path().to_owned();
    let want = match path.as_str() {
        "/rep" => Method::GET,
        "/add" => Method::POST,
        _ => Method::DELETE,
    };
    if req.method() != want {
        return Err(ApiError(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} not allowed on {path} (use {want})", req.method()),
        ));
    }
    let q = query(req.uri().query())?;
    let pool = param(&q, "pool")
        .map(|p| text(p.to_vec(), "pool"))
        .transpose()?;
    let pool = replicas::pool_name(ctl, pool.as_deref()).map_err(refused)?;
    if path == "/rep" {
        return Ok(replicas::rep(ctl, &pool).map_err(refused)?.to_json());
    }
    let (n, hostnames) = body(&read_body(req).await?)?;
    let list: Vec<&str> = hostnames.iter().map(String::as_str).collect();
    let done = if path == "/add" {
        replicas::add(ctl, &pool, n, &list)
    } else {
        replicas::remove(ctl, &pool, n, &list)
    };
    Ok(done.map_err(refused)?.to_json())
}
