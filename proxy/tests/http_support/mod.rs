//! HTTP test backends that answer with their name (hyper on a runtime of
//! their own, on 127.0.0.1 ports of their own, stopped on drop), and a
//! blocking HTTP/1.1 keep-alive client.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};

type B = BoxBody<Bytes, hyper::Error>;

fn full(s: impl Into<Bytes>) -> B {
    http_body_util::Full::new(s.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body fed by a channel (chunks as they come).
struct Chan(mpsc::Receiver<Bytes>);

impl Body for Chan {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// One backend's knobs and counters.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Added before every answer but `/health`'s, ms.
    pub delay_ms: AtomicU64,
    /// `/health` answers 503 when false.
    pub unhealthy: AtomicBool,
    /// Connections accepted.
    pub conns: AtomicU64,
    /// Requests answered (not counting `/health`).
    pub requests: AtomicU64,
    /// `/health` requests.
    pub checks: AtomicU64,
}

/// A backend: its name, port and knobs.
pub struct Backend {
    pub name: String,
    pub port: u16,
    pub knobs: Arc<Knobs>,
    stop: Option<watch::Sender<bool>>,
}

/// Test backends on their own runtime.
pub struct Backends {
    pub list: Vec<Backend>,
    rt: tokio::runtime::Runtime,
}

async fn answer(
    name: Arc<str>,
    knobs: Arc<Knobs>,
    req: Request<Incoming>,
) -> Result<Response<B>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        knobs.checks.fetch_add(1, Relaxed);
        let bad = knobs.unhealthy.load(Relaxed);
        let mut r = Response::new(full(if bad { "sick" } else { "ok" }));
        if bad {
            *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        }
        return Ok(r);
    }
    knobs.requests.fetch_add(1, Relaxed);
    let delay = knobs.delay_ms.load(Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let seen = |h: &str| {
        req.headers()
            .get_all(h)
            .iter()
            .map(|v| v.to_str().unwrap_or("?").to_string())
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut r = Response::builder()
        .header("x-backend", &*name)
        .header("x-got-xff", seen("x-forwarded-for"))
        .header("x-got-secret", seen("x-secret"))
        .header("x-got-host", seen("host"))
        .header("x-got-method", req.method().as_str());
    let body = match path.as_str() {
        // The request body, streamed back as it comes.
        "/echo" => req.into_body().boxed(),
        // "first", then after 400 ms "second": a streamed response.
        "/slow-stream" => {
            let (tx, rx) = mpsc::channel(2);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"first;")).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
                let _ = tx.send(Bytes::from_static(b"second")).await;
            });
            Chan(rx).boxed()
        }
        "/status" => {
            let code: u16 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("code="))
                .and_then(|c| c.parse().ok())
                .unwrap_or(200);
            r = r.status(code);
            full(name.to_string())
        }
        _ => {
            r = r
                .header("connection", "x-backend-hop")
                .header("x-backend-hop", "1");
            full(name.to_string())
        }
    };
    Ok(r.body(body).unwrap())
}

impl Backends {
    /// `n` backends named `b0`, `b1`, ...
    pub fn start(n: usize) -> Backends {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut b = Backends {
            list: Vec::new(),
            rt,
        };
        for i in 0..n {
            let be = b.spawn(format!("b{i}"), 0, Arc::new(Knobs::default()));
            b.list.push(be);
        }
        b
    }

    fn spawn(&self, name: String, port: u16, knobs: Arc<Knobs>) -> Backend {
        let (stop, rx) = watch::channel(false);
        let l = self.rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.set_reuseaddr(true).unwrap();
            sock.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                .unwrap();
            sock.listen(1024).unwrap()
        });
        let port = l.local_addr().unwrap().port();
        let nm: Arc<str> = name.clone().into();
        let k = knobs.clone();
        self.rt.spawn(async move {
            let mut stop = rx;
            loop {
                let (sock, _) = tokio::select! {
                    r = l.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = stop.changed() => return,
                };
                k.conns.fetch_add(1, Relaxed);
                let (nm, k, mut stop) = (nm.clone(), k.clone(), stop.clone());
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| answer(nm.clone(), k.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        Backend {
            name,
            port,
            knobs,
            stop: Some(stop),
        }
    }

    /// Stops backend `i`: its listener and every connection close.
    pub fn stop(&mut self, i: usize) {
        if let Some(s) = self.list[i].stop.take() {
            let _ = s.send(true);
        }
        // Let the tasks see it.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Starts backend `i` again on its port, with its knobs.
    pub fn restart(&mut self, i: usize) {
        let (name, port, knobs) = (
            self.list[i].name.clone(),
            self.list[i].port,
            self.list[i].knobs.clone(),
        );
        self.list[i] = self.spawn(name, port, knobs);
    }

    pub fn port(&self, i: usize) -> u16 {
        self.list[i].port
    }

    /// `servers:` lines `127.0.0.1:PORT:1 bI`.
    pub fn yaml(&self) -> String {
        self.list
            .iter()
            .map(|b| format!("   - 127.0.0.1:{}:1 {}\n", b.port, b.name))
            .collect()
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for b in &mut self.list {
            if let Some(s) = b.stop.take() {
                let _ = s.send(true);
            }
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking HTTP/1.1 client on one keep-alive connection.
pub struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client::from_source(Ipv4Addr::LOCALHOST, port)
    }

    /// A client connected from `src` (any 127.0.0.0/8 address).
    pub fn from_source(src: Ipv4Addr, port: u16) -> Client {
        // std cannot bind before connect: tokio's socket can.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sock = rt
            .block_on(async {
                let s = tokio::net::TcpSocket::new_v4()?;
                s.bind(SocketAddr::from((src, 0)))?;
                let c = s
                    .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                    .await?;
                c.into_std()
            })
            .expect("connect");
        sock.set_nonblocking(false).unwrap();
        let w = sock;
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        w.set_nodelay(true).unwrap();
        Client {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    /// Sends a request with `headers` and a `Content-Length` body (none when
    /// empty, for GET).
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test.local\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.w.write_all(head.as_bytes()).unwrap();
        self.w.write_all(body).unwrap();
    }

    pub fn get(&mut self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", target, headers, b"");
        self.read().expect("a response")
    }

    /// The status line and headers.
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Some((status, headers))
    }

    /// One chunk of a chunked body (`None` at the last chunk).
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        self.r.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if n == 0 {
            let mut end = String::new();
            self.r.read_line(&mut end).ok()?;
            return None;
        }
        let mut data = vec![0; n + 2];
        self.r.read_exact(&mut data).ok()?;
        data.truncate(n);
        Some(data)
    }

    /// A whole response (`Content-Length` or chunked); `None` when the
    /// connection closed first.
    pub fn read(&mut self) -> Option<Resp> {
        let (status, headers) = self.read_head()?;
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            while let Some(c) = self.read_chunk() {
                body.extend(c);
            }
        } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            self.r.read_exact(&mut body).ok()?;
        }
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    /// True when the server closed the connection (EOF within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.w.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        let r = self.r.read(&mut b);
        self.w
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        matches!(r, Ok(0))
    }
}

/// A blocking client of the control port: `ROUTE pool key` -> the server
/// named in the `+name` reply.
pub struct Control {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Control {
    pub fn new(port: u16) -> Control {
        let w = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect control");
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Control {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    pub fn route(&mut self, pool: &str, key: &str) -> String {
        self.w
            .write_all(format!("ROUTE {pool} {key}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        line.strip_prefix('+')
            .unwrap_or_else(|| panic!("ROUTE {pool} {key}: {line}"))
            .to_string()
    }
}
