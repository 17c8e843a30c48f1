//! A small in-memory fleet implementing `Control` (chring's `Ring` behind a
//! mutex), and helpers to run the control surfaces on 127.0.0.1 ports of
//! their own. Shared by the ops_* tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chring::{BackendId, Ring, RingConfig};
use chring_proxy::state::{
    Change, Control, ControlError, Event, Health, Histogram, PoolSnapshot, ServerSnapshot,
    Snapshot, unix_ms,
};

type TestRing = Ring<64, 16384, 0>;

/// Key hashes `moves` compares placements on.
const SAMPLES: u32 = 1 << 16;

#[derive(Debug, Clone)]
struct Srv {
    name: String,
    addr: String,
    weight: u32,
    up: bool,
    requests: u64,
    errors: u64,
    latency: BTreeMap<String, Arc<Histogram>>,
}

#[derive(Debug, Clone)]
struct Pool {
    name: String,
    servers: Vec<Srv>,
    clients: u64,
}

/// The test fleet.
#[derive(Debug)]
pub struct Fleet {
    pools: Mutex<Vec<Pool>>,
    started: u64,
}

fn ring_of(servers: &[Srv]) -> Result<Box<TestRing>, ControlError> {
    let mut ring = Box::new(
        TestRing::new(RingConfig::new(40)).map_err(|e| ControlError::Placement(e.to_string()))?,
    );
    for (i, s) in servers.iter().enumerate() {
        let id = BackendId(u16::try_from(i).map_err(|_| ControlError::Invalid("too many".into()))?);
        ring.add(id, s.name.as_bytes(), s.weight)
            .map_err(|e| ControlError::Placement(format!("{e:?}")))?;
        if !s.up {
            ring.set_up(id, false)
                .map_err(|e| ControlError::Placement(format!("{e:?}")))?;
        }
    }
    Ok(ring)
}

fn owner(ring: &TestRing, servers: &[Srv], key_hash: u64) -> Option<String> {
    ring.lookup(key_hash)
        .and_then(|id| servers.get(usize::from(id.0)))
        .map(|s| s.name.clone())
}

/// The share of `SAMPLES` key hashes whose owner differs.
fn moved(before: &[Srv], after: &[Srv]) -> Result<f64, ControlError> {
    let (a, b) = (ring_of(before)?, ring_of(after)?);
    let diff = (0..SAMPLES)
        .filter(|i| {
            let h = chring::hash(&i.to_le_bytes());
            owner(&a, before, h) != owner(&b, after, h)
        })
        .count();
    Ok(diff as f64 / f64::from(SAMPLES))
}

impl Fleet {
    /// Pools of `name -> servers` (names `s1..`, addresses 127.0.0.1:7001..).
    pub fn new(pools: &[(&str, usize)]) -> Arc<Self> {
        let pools = pools
            .iter()
            .map(|&(name, n)| Pool {
                name: name.into(),
                servers: (1..=n)
                    .map(|i| Srv {
                        name: format!("s{i}"),
                        addr: format!("127.0.0.1:{}", 7000 + i),
                        weight: 1,
                        up: true,
                        requests: 0,
                        errors: 0,
                        latency: BTreeMap::new(),
                    })
                    .collect(),
                clients: 0,
            })
            .collect();
        Arc::new(Self {
            pools: Mutex::new(pools),
            started: unix_ms() / 1000,
        })
    }

    /// Counts one request of `command` on a server, taking `us` µs.
    pub fn record(&self, pool: &str, server: &str, command: &str, us: u64, error: bool) {
        let mut pools = self.pools.lock().unwrap();
        let p = pools.iter_mut().find(|p| p.name == pool).unwrap();
        let s = p.servers.iter_mut().find(|s| s.name == server).unwrap();
        s.requests += 1;
        s.errors += u64::from(error);
        s.latency.entry(command.into()).or_default().record(us);
    }

    /// Sets the open client connections of a pool.
    pub fn set_clients(&self, pool: &str, n: u64) {
        let mut pools = self.pools.lock().unwrap();
        pools.iter_mut().find(|p| p.name == pool).unwrap().clients = n;
    }

    fn with_pool<T>(
        &self,
        pool: &str,
        f: impl FnOnce(&mut Pool) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut pools = self.pools.lock().unwrap();
        let p = pools
            .iter_mut()
            .find(|p| p.name == pool)
            .ok_or_else(|| ControlError::UnknownPool(pool.into()))?;
        f(p)
    }

    fn changed(p: &Pool, change: &Change) -> Result<Vec<Srv>, ControlError> {
        let mut servers = p.servers.clone();
        match change {
            Change::Add { name, addr, weight } => {
                if servers.iter().any(|s| &s.name == name) {
                    return Err(ControlError::Duplicate {
                        pool: p.name.clone(),
                        server: name.clone(),
                    });
                }
                if servers.len() >= 64 {
                    return Err(ControlError::Full {
                        pool: p.name.clone(),
                        max: 64,
                    });
                }
                servers.push(Srv {
                    name: name.clone(),
                    addr: addr.clone(),
                    weight: *weight,
                    up: true,
                    requests: 0,
                    errors: 0,
                    latency: BTreeMap::new(),
                });
            }
            Change::Remove { name } => {
                let i = servers
                    .iter()
                    .position(|s| &s.name == name)
                    .ok_or_else(|| ControlError::UnknownServer {
                        pool: p.name.clone(),
                        server: name.clone(),
                    })?;
                servers.remove(i);
            }
        }
        ring_of(&servers)?;
        Ok(servers)
    }
}

impl Control for Fleet {
    fn apply(&self, pool: &str, change: Change) -> Result<f64, ControlError> {
        self.with_pool(pool, |p| {
            let after = Self::changed(p, &change)?;
            let m = moved(&p.servers, &after)?;
            p.servers = after;
            Ok(m)
        })
    }

    fn moves(&self, pool: &str, change: &Change) -> Result<f64, ControlError> {
        self.with_pool(pool, |p| moved(&p.servers, &Self::changed(p, change)?))
    }

    fn set_up(&self, pool: &str, server: &str, up: bool) -> Result<(), ControlError> {
        self.with_pool(pool, |p| {
            let name = p.name.clone();
            let s = p
                .servers
                .iter_mut()
                .find(|s| s.name == server)
                .ok_or_else(|| ControlError::UnknownServer {
                    pool: name,
                    server: server.into(),
                })?;
            s.up = up;
            Ok(())
        })
    }

    fn route(&self, pool: &str, key: &[u8]) -> Result<Option<String>, ControlError> {
        self.with_pool(pool, |p| {
            let ring = ring_of(&p.servers)?;
            Ok(ring
                .pick(chring::hash(key))
                .and_then(|id| p.servers.get(usize::from(id.0)))
                .map(|s| s.name.clone()))
        })
    }

    fn pools(&self) -> Vec<String> {
        self.pools
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    fn snapshot(&self) -> Snapshot {
        let pools = self.pools.lock().unwrap();
        Snapshot {
            service: "chring-proxy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix: self.started,
            now_unix_ms: unix_ms(),
            pools: pools
                .iter()
                .map(|p| {
                    let total: u32 = p.servers.iter().map(|s| s.weight).sum();
                    PoolSnapshot {
                        name: p.name.clone(),
                        listen: "127.0.0.1:0".into(),
                        protocol: "redis".into(),
                        distribution: "ring".into(),
                        hash: "xxh3".into(),
                        servers: p
                            .servers
                            .iter()
                            .map(|s| ServerSnapshot {
                                name: s.name.clone(),
                                addr: s.addr.clone(),
                                weight: s.weight,
                                health: if s.up { Health::Up } else { Health::Down },
                                key_share: f64::from(s.weight) / f64::from(total.max(1)),
                                requests: s.requests,
                                request_bytes: s.requests * 10,
                                responses: s.requests - s.errors,
                                server_err: s.errors,
                                server_connections: 1,
                                latency: s
                                    .latency
                                    .iter()
                                    .map(|(k, h)| (k.clone(), h.snapshot()))
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        client_connections: p.clients,
                        client_accepted: p.clients,
                        ..Default::default()
                    }
                })
                .collect(),
            events: Vec::<Event>::new(),
        }
    }
}

/// A listener on 127.0.0.1, a port of its own.
pub async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A blocking client with 10 s timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the peer closes (bounded by the read timeout).
pub fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// One HTTP/1.1 request with `Connection: close`: (status, headers, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String, String) {
    let mut s = connect(addr);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).unwrap();
    let resp = read_to_close(&mut s);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// A surface served on its own runtime (stopped when dropped).
pub struct Served {
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
}

/// Runs `serve(listener)` on a fresh 2-thread runtime.
pub fn served<F, Fut>(serve: F) -> Served
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let l = rt.block_on(listener());
    let addr = l.local_addr().unwrap();
    rt.spawn(serve(l));
    Served { rt, addr }
}

/// A control-port client: send lines, read reply lines.
pub struct LineClient {
    r: std::io::BufReader<TcpStream>,
    w: TcpStream,
}

impl LineClient {
    pub fn new(addr: SocketAddr) -> Self {
        let s = connect(addr);
        Self {
            r: std::io::BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }
    /// One reply line without its CR LF ("" at end of stream).
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches(['\r', '\n']).to_owned()
    }
    /// Sends one command and reads one reply line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.line()
    }
    /// Sends one command and reads an array reply (`*n` then n lines).
    pub fn array(&mut self, line: &str) -> Vec<String> {
        let head = self.cmd(line);
        let n: usize = head
            .strip_prefix('*')
            .unwrap_or_else(|| panic!("{line}: not an array: {head}"))
            .parse()
            .unwrap();
        (0..n).map(|_| self.line()).collect()
    }
}
