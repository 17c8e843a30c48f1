//! chring-proxy's control port on arbitrary bytes: `LineBuffer` framing, the
//! extended grammar (`chring_proxy::control::Request`) and a `Session` over a
//! small in-memory fleet.
//!
//! Input: byte 0 bit 0 turns a token on (`AUTH fuzz-token-0123456789` then
//! needed); the rest is the byte stream of one connection.
//!
//! Checked after every line (proxy/src/control.rs module docs):
//! - a blank line gets no reply, every other line exactly one, ending in
//!   CR LF; `*n` is followed by exactly n `+` lines; errors are `-ERR ` + one line;
//! - a line that parses prints back (`Display`) as a line that parses to the
//!   same request; a line that does not gets `-ERR` + the parse error;
//! - an over-long line gets `-ERR line too long`;
//! - before `AUTH`, no command but `PING`, `QUIT`, `AUTH` changes anything;
//! - `ROUTE` names a server of the pool that is up; the fleet stays within
//!   its bounds; `QUIT` and a wrong token end the session;
//! - seed 001's `REP` / `ADD` / `RM` answer the pool's servers as they are
//!   after the line; an `ADD` or `RM` refused with `-ERR` leaves the pool as
//!   it was (all or nothing, the fleet's capacity included), an accepted one
//!   changes it by exactly `n` servers.
#![no_main]

use std::sync::{Arc, Mutex};

use chring::protocol::LineBuffer;
use chring_proxy::control::{Flow, LineError, Request, Session};
use chring_proxy::state::{
    Change, Control, ControlError, Health, PoolSnapshot, ServerSnapshot, Snapshot,
};
use libfuzzer_sys::fuzz_target;

const LINE: usize = 64;
const TOKEN: &str = "fuzz-token-0123456789";
const MAX_SERVERS: usize = 8;

/// Pools `p` and `q`; servers (name, up); changes counted.
struct Fleet {
    pools: Mutex<Vec<(String, Vec<(String, bool)>)>>,
    changes: Mutex<u64>,
}

impl Fleet {
    fn pool<T>(
        &self,
        pool: &str,
        f: impl FnOnce(&mut Vec<(String, bool)>) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut pools = self.pools.lock().unwrap();
        let (_, servers) = pools
            .iter_mut()
            .find(|(n, _)| n == pool)
            .ok_or_else(|| ControlError::UnknownPool(pool.into()))?;
        f(servers)
    }
}

fn check_change(
    pool: &str,
    servers: &[(String, bool)],
    change: &Change,
) -> Result<(), ControlError> {
    match change {
        Change::Add { name, weight, .. } => {
            assert!(*weight >= 1 && *weight <= chring::MAX_WEIGHT);
            if servers.iter().any(|(n, _)| n == name) {
                return Err(ControlError::Duplicate {
                    pool: pool.into(),
                    server: name.clone(),
                });
            }
            if servers.len() >= MAX_SERVERS {
                return Err(ControlError::Full {
                    pool: pool.into(),
                    max: MAX_SERVERS,
                });
            }
        }
        Change::Remove { name } => {
            if !servers.iter().any(|(n, _)| n == name) {
                return Err(ControlError::UnknownServer {
                    pool: pool.into(),
                    server: name.clone(),
                });
            }
        }
    }
    Ok(())
}

impl Control for Fleet {
    fn apply(&self, pool: &str, change: Change) -> Result<f64, ControlError> {
        self.pool(pool, |s| {
            check_change(pool, s, &change)?;
            match change {
                Change::Add { name, .. } => s.push((name, true)),
                Change::Remove { name } => s.retain(|(n, _)| *n != name),
            }
            *self.changes.lock().unwrap() += 1;
            Ok(1.0 / (s.len().max(1) as f64))
        })
    }
    fn moves(&self, pool: &str, change: &Change) -> Result<f64, ControlError> {
        self.pool(pool, |s| {
            check_change(pool, s, change)?;
            Ok(1.0 / ((s.len() + 1) as f64))
        })
    }
    fn set_up(&self, pool: &str, server: &str, up: bool) -> Result<(), ControlError> {
        self.pool(pool, |s| {
            let e = s.iter_mut().find(|(n, _)| n == server).ok_or_else(|| {
                ControlError::UnknownServer {
                    pool: pool.into(),
                    server: server.into(),
                }
            })?;
            e.1 = up;
            *self.changes.lock().unwrap() += 1;
            Ok(())
        })
    }
    fn route(&self, pool: &str, key: &[u8]) -> Result<Option<String>, ControlError> {
        self.pool(pool, |s| {
            let up: Vec<&String> = s.iter().filter(|(_, u)| *u).map(|(n, _)| n).collect();
            if up.is_empty() {
                return Ok(None);
            }
            let i = (chring::hash(key) % up.len() as u64) as usize;
            Ok(Some(up[i].clone()))
        })
    }
    fn pools(&self) -> Vec<String> {
        self.pools
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            service: "chring-proxy".into(),
            version: "0".into(),
            started_unix: 0,
            now_unix_ms: 0,
            pools: self
                .pools
                .lock()
                .unwrap()
                .iter()
                .map(|(p, servers)| pool_snapshot(p, servers))
                .collect(),
            events: Vec::new(),
        }
    }
}

fn pool_snapshot(name: &str, servers: &[(String, bool)]) -> PoolSnapshot {
    PoolSnapshot {
        name: name.into(),
        listen: String::new(),
        protocol: "redis".into(),
        distribution: "ketama".into(),
        hash: "fnv1a_64".into(),
        servers: servers
            .iter()
            .map(|(n, up)| ServerSnapshot {
                name: n.clone(),
                addr: "127.0.0.1:1".into(),
                weight: 1,
                health: if *up { Health::Up } else { Health::Down },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn servers_of(fleet: &Fleet, pool: &str) -> Option<Vec<(String, bool)>> {
    let pools = fleet.pools.lock().unwrap();
    pools
        .iter()
        .find(|(n, _)| n == pool)
        .map(|(_, s)| s.clone())
}

fn check_reply(reply: &str, line: &[u8]) {
    assert!(
        reply.ends_with("\r\n"),
        "reply {reply:?} to {line:?} lacks CR LF"
    );
    let lines: Vec<&str> = reply.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    let first = lines[0];
    match first.as_bytes().first() {
        Some(b'+') => assert_eq!(lines.len(), 1, "{reply:?}"),
        Some(b'-') => {
            assert!(first.starts_with("-ERR "), "{reply:?}");
            assert_eq!(lines.len(), 1, "{reply:?}");
        }
        Some(b'*') => {
            let n: usize = first[1..].parse().expect("array length");
            assert_eq!(lines.len(), n + 1, "array reply {reply:?}");
            assert!(lines[1..].iter().all(|l| l.starts_with('+')), "{reply:?}");
        }
        _ => panic!("reply {reply:?} to {line:?} has no type byte"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let fleet = Arc::new(Fleet {
        pools: Mutex::new(vec![
            ("p".into(), vec![("a".into(), true), ("b".into(), true)]),
            ("q".into(), vec![]),
        ]),
        changes: Mutex::new(0),
    });
    let token = (cfg & 1 == 1).then(|| Arc::<str>::from(TOKEN));
    let mut authed = token.is_none();
    let mut session = Session::new(token.clone());
    let mut buf: LineBuffer<LINE> = LineBuffer::new();
    let mut out = String::new();
    for &b in stream {
        let Some(line) = buf.push(b) else { continue };
        let owned = line.map(<[u8]>::to_vec);
        out.clear();
        let changes_before = *fleet.changes.lock().unwrap();
        let pools_before = fleet.pools.lock().unwrap().clone();
        let flow = session.handle(line, fleet.as_ref(), &mut out);
        let bytes = owned.as_deref().unwrap_or(&[]);
        let blank = owned.is_ok() && bytes.iter().all(|&c| c == b' ' || c == b'\t');
        assert_eq!(out.is_empty(), blank, "line {bytes:?}: replied {out:?}");
        if blank {
            continue;
        }
        check_reply(&out, bytes);
        if owned.is_err() {
            assert_eq!(out, "-ERR line too long\r\n");
            continue;
        }
        match Request::parse(bytes) {
            Ok(req) => {
                let canonical = req.to_string();
                assert_eq!(
                    Request::parse(canonical.as_bytes()),
                    Ok(req),
                    "{canonical:?}"
                );
                if !authed && !matches!(req, Request::Auth(_) | Request::Ping | Request::Quit) {
                    assert_eq!(out, "-ERR NOAUTH authentication required\r\n");
                    assert_eq!(*fleet.changes.lock().unwrap(), changes_before);
                }
                if let (Request::Route { pool, .. }, Some(name)) = (req, out.strip_prefix('+')) {
                    let name = name.trim_end_matches("\r\n");
                    let pools = fleet.pools.lock().unwrap();
                    let (_, servers) = pools.iter().find(|(n, _)| n == pool).unwrap();
                    assert!(
                        servers.iter().any(|(n, up)| n == name && *up),
                        "ROUTE -> {name:?}"
                    );
                }
                let listed = |pool: &str| {
                    let now = servers_of(&fleet, pool).unwrap_or_default();
                    let mut want = format!("*{}\r\n", now.len());
                    for (n, up) in &now {
                        want.push_str(&format!("+{n} {}\r\n", if *up { "up" } else { "down" }));
                    }
                    want
                };
                let before = |pool: &str| {
                    pools_before
                        .iter()
                        .find(|(n, _)| n == pool)
                        .map(|(_, s)| s.clone())
                };
                match req {
                    Request::Rep(pool)
                    | Request::AddReplicas { pool, .. }
                    | Request::RemoveReplicas { pool, .. }
                        if authed && !out.starts_with("-ERR") =>
                    {
                        assert_eq!(out, listed(pool), "{bytes:?}");
                        let (n, add) = match req {
                            Request::AddReplicas { n, .. } => (n, true),
                            Request::RemoveReplicas { n, .. } => (n, false),
                            _ => (0, true),
                        };
                        let (was, now) = (
                            before(pool).unwrap().len() as u64,
                            servers_of(&fleet, pool).unwrap().len() as u64,
                        );
                        assert_eq!(if add { was + n } else { was - n }, now, "{bytes:?}");
                    }
                    Request::AddReplicas { pool, .. } | Request::RemoveReplicas { pool, .. } => {
                        assert!(out.starts_with("-ERR "), "{out:?}");
                        assert_eq!(servers_of(&fleet, pool), before(pool), "{bytes:?}: {out:?}");
                    }
                    _ => {}
                }
                match req {
                    Request::Quit => {
                        assert_eq!(flow, Flow::Close);
                        return;
                    }
                    Request::Auth(t) if token.is_some() => {
                        if t == TOKEN {
                            authed = true;
                            assert_eq!(out, "+OK\r\n");
                        } else {
                            assert_eq!(flow, Flow::Close);
                            return;
                        }
                    }
                    _ => assert_eq!(flow, Flow::Continue),
                }
            }
            Err(LineError::Protocol(chring::protocol::ProtocolError::Empty)) => {
                unreachable!("blank lines are skipped above")
            }
            Err(e) => assert_eq!(out, format!("-ERR {e}\r\n")),
        }
        for (_, servers) in fleet.pools.lock().unwrap().iter() {
            assert!(servers.len() <= MAX_SERVERS);
        }
    }
});
