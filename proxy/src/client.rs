//! Client connections: requests are framed as they arrive, routed, forwarded
//! (split across servers for multi-key commands), and answered in order by
//! the same task as each reply comes back; a client can have up to
//! `max_pipeline` requests in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use crate::backend::{BackendError, Expect, Job};
use crate::memcache::{self, Command, ReplyShape};
use crate::pool::Pool;
use crate::resp;

type Rx = oneshot::Receiver<Result<Bytes, BackendError>>;

/// How to merge the fragments of a split request.
#[derive(Debug)]
enum Merge {
    /// MGET: `n` elements; fragment `f` answers the positions `idx[f]`.
    Mget { n: usize, idx: Vec<Vec<usize>> },
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the integers.
    Sum,
    /// MSET: `+OK` when every fragment says so.
    AllOk,
    /// KEYS: every array's elements, concatenated.
    Concat,
    /// memcached get: the blocks in the client's key order.
    McGet { keys: Vec<Bytes> },
}

/// One reply the client is owed, in order.
#[derive(Debug)]
enum Reply {
    /// Already known.
    Ready(Bytes),
    /// One server's reply, passed through.
    Wait(Rx),
    /// A reply to await and drop (memcached `noreply`).
    Discard(Rx),
    /// Fragments to merge.
    Multi(Vec<Part>, Merge),
    /// Write this, then close.
    Close(Bytes),
}

/// One fragment of a split request.
#[derive(Debug)]
enum Part {
    /// Not answered yet.
    Waiting(Rx),
    /// Its server's answer.
    Done(Result<Bytes, BackendError>),
}

/// The fragments' reply channels, none answered yet.
fn waiting(rxs: Vec<Rx>) -> Vec<Part> {
    rxs.into_iter().map(Part::Waiting).collect()
}

/// Serves one client until it closes, framing is lost, or `stop` fires (then
/// the requests already read are answered first).
///
/// One task does everything for its client: it frames what arrives, forwards
/// it, and writes the replies in order as they come back, so that a request
/// costs the client one wake-up (its reply) rather than a hand-off to a
/// writer task as well. Up to `max_pipeline` requests are in flight; past that
/// it stops reading until the oldest is answered.
pub async fn serve(pool: Arc<Pool>, mut sock: TcpStream, stop: watch::Receiver<bool>) {
    let _ = sock.set_nodelay(true);
    let max = pool.limits.max_pipeline.max(1);
    let mut pending: VecDeque<Reply> = VecDeque::with_capacity(max.min(32));
    let mut out: Vec<u8> = Vec::with_capacity(4 * 1024);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut st = State {
        authed: pool.cfg.redis_auth.is_none(),
        args: Vec::new(),
        argv: Vec::new(),
        hint: CLIENTS.fetch_add(1, Relaxed),
    };
    let redis = pool.cfg.redis;
    // Made once: a fresh `changed()` per read would register with the watch
    // on every request.
    let mut stop_rx = stop.clone();
    let stopped = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    // No more requests are read (end of input, framing lost, QUIT, stop):
    // what is pending is answered, then the connection closes.
    let mut reading = true;
    loop {
        while reading && pending.len() < max {
            let step = if redis {
                redis_step(&pool, &mut buf, &mut st).await
            } else {
                memcache_step(&pool, &mut buf, st.hint).await
            };
            match step {
                Step::More => break,
                Step::Reply(r) => {
                    if matches!(r, Reply::Close(_)) {
                        reading = false;
                    }
                    pending.push_back(r);
                }
            }
        }
        if reading && *stop.borrow() {
            reading = false;
        }
        if !reading && pending.is_empty() {
            break;
        }
        let can_read = reading && pending.len() < max;
        if can_read {
            reserve(&mut buf);
        }
        let mut close = false;
        tokio::select! {
            biased;
            () = std::future::poll_fn(|cx| drain(&pool, &mut pending, &mut out, &mut close, cx)),
                if !pending.is_empty() => {
                // Written once everything read so far is answered (one write
                // for a whole pipeline), or when it is large.
                if close || pending.is_empty() || out.len() >= 64 * 1024 {
                    if let Err(e) = sock.write_all(&out).await {
                        closed_on(&pool, &e);
                        return;
                    }
                    pool.stats
                        .client_bytes_out
                        .fetch_add(out.len() as u64, Relaxed);
                    out.clear();
                }
                if close {
                    let _ = sock.shutdown().await;
                    return;
                }
            }
            n = sock.read_buf(&mut buf), if can_read => match n {
                Ok(0) => {
                    pool.stats.client_eof.fetch_add(1, Relaxed);
                    reading = false;
                }
                Err(e) => {
                    closed_on(&pool, &e);
                    return;
                }
                Ok(n) => {
                    pool.stats.client_bytes_in.fetch_add(n as u64, Relaxed);
                }
            },
            () = &mut stopped, if reading => reading = false,
        }
    }
}

/// Counts a client connection ended by an I/O error: `client_eof` when the
/// client went away (reset, or closed while its replies were being written:
/// it closed its connection), else `client_err`.
fn closed_on(pool: &Pool, e: &std::io::Error) {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
        pool.stats.client_eof.fetch_add(1, Relaxed);
    } else {
        pool.stats.client_err.fetch_add(1, Relaxed);
    }
}

/// Moves every answered reply at the head of `pending` into `out` (at most
/// 64 KiB's worth before a write); ready when it moved at least one.
/// `close`: the reply moved last asks for the connection to close.
fn drain(
    pool: &Pool,
    pending: &mut VecDeque<Reply>,
    out: &mut Vec<u8>,
    close: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let mut moved = false;
    while let Some(front) = pending.front_mut() {
        match poll_reply(pool, front, out, cx) {
            Poll::Ready(c) => {
                pending.pop_front();
                moved = true;
                if c {
                    *close = true;
                    break;
                }
                if out.len() >= 64 * 1024 {
                    break;
                }
            }
            Poll::Pending => break,
        }
    }
    if moved {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// Read buffers grow by this much when they run low.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// Keeps at least a quarter of [`READ_CHUNK`] free in `buf` before a read,
/// so that reading after many split-off frames takes one allocation of a
/// whole chunk (or none, when the frames are gone and the space is reused)
/// rather than the few bytes `read_buf` would reserve.
pub(crate) fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
}

struct State {
    authed: bool,
    args: Vec<Range<usize>>,
    /// The arguments of the request being handled (kept for its capacity).
    argv: Vec<Bytes>,
    hint: usize,
}

/// Numbers clients (for [`Job::hint`]).
static CLIENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

enum Step {
    More,
    Reply(Reply),
}

fn ready(b: &[u8]) -> Step {
    Step::Reply(Reply::Ready(Bytes::copy_from_slice(b)))
}

fn err(pool: &Pool, text: &str) -> Bytes {
    if pool.cfg.redis {
        Bytes::from(resp::error(text))
    } else {
        Bytes::from(format!(
            "SERVER_ERROR {}\r\n",
            text.replace(['\r', '\n'], " ")
        ))
    }
}

thread_local! {
    /// Command names as shared strings, made once per thread and name (the
    /// names that reach a server are a fixed set: the known commands).
    static NAMES: std::cell::RefCell<std::collections::HashMap<Box<str>, Arc<str>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Most names [`NAMES`] keeps per thread; past it a name is allocated per use.
const MAX_NAMES: usize = 512;

/// `command` as an `Arc<str>`, without an allocation after its first use on
/// this thread.
fn name_arc(command: &str) -> Arc<str> {
    NAMES.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(a) = m.get(command) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(command);
        if m.len() < MAX_NAMES {
            m.insert(Box::from(command), a.clone());
        }
        a
    })
}

/// The lower-case form of a command name, on the stack when it is short
/// (every command chring-proxy knows is).
enum Lower {
    Short([u8; 24], usize),
    Long(String),
}

impl Lower {
    fn of(name: &[u8]) -> Lower {
        let mut b = [0u8; 24];
        match b.get_mut(..name.len()) {
            Some(dst) if std::str::from_utf8(name).is_ok() => {
                dst.copy_from_slice(name);
                dst.make_ascii_lowercase();
                Lower::Short(b, name.len())
            }
            _ => Lower::Long(String::from_utf8_lossy(name).to_ascii_lowercase()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // A lower-cased copy of valid UTF-8 (checked in `of`) is UTF-8.
            Lower::Short(b, n) => std::str::from_utf8(b.get(..*n).unwrap_or(&[])).unwrap_or(""),
            Lower::Long(s) => s,
        }
    }
}

/// Forwards one request for `key`; the reply arrives on the returned channel.
async fn forward(
    pool: &Pool,
    key: &[u8],
    bytes: Bytes,
    expect: Expect,
    command: &str,
    hint: usize,
) -> Rx {
    let (tx, rx) = oneshot::channel();
    match pool.route(key) {
        Some((server, guard)) => {
            server
                .send(Job {
                    bytes,
                    expect,
                    reply: tx,
                    command: name_arc(command),
                    guard,
                    hint,
                })
                .await;
        }
        None => {
            let _ = tx.send(Err(BackendError::NoServer));
        }
    }
    rx
}

/// Single-key Redis commands, forwarded by their first key (`argv[1]`).
const KEYED: &[&str] = &[
    "append",
    "bitcount",
    "bitfield",
    "bitpos",
    "decr",
    "decrby",
    "dump",
    "expire",
    "expireat",
    "get",
    "getbit",
    "getdel",
    "getex",
    "getrange",
    "getset",
    "incr",
    "incrby",
    "incrbyfloat",
    "persist",
    "pexpire",
    "pexpireat",
    "psetex",
    "pttl",
    "restore",
    "set",
    "setbit",
    "setex",
    "setnx",
    "setrange",
    "strlen",
    "ttl",
    "type",
    "sort",
    "hdel",
    "hexists",
    "hget",
    "hgetall",
    "hincrby",
    "hincrbyfloat",
    "hkeys",
    "hlen",
    "hmget",
    "hmset",
    "hrandfield",
    "hscan",
    "hset",
    "hsetnx",
    "hstrlen",
    "hvals",
    "lindex",
    "linsert",
    "llen",
    "lmove",
    "lpop",
    "lpos",
    "lpush",
    "lpushx",
    "lrange",
    "lrem",
    "lset",
    "ltrim",
    "rpop",
    "rpoplpush",
    "rpush",
    "rpushx",
    "sadd",
    "scard",
    "sdiff",
    "sdiffstore",
    "sinter",
    "sinterstore",
    "sismember",
    "smembers",
    "smismember",
    "smove",
    "spop",
    "srandmember",
    "srem",
    "sscan",
    "sunion",
    "sunionstore",
    "zadd",
    "zcard",
    "zcount",
    "zincrby",
    "zinterstore",
    "zlexcount",
    "zmscore",
    "zpopmax",
    "zpopmin",
    "zrandmember",
    "zrange",
    "zrangebylex",
    "zrangebyscore",
    "zrank",
    "zrem",
    "zremrangebylex",
    "zremrangebyrank",
    "zremrangebyscore",
    "zrevrange",
    "zrevrangebylex",
    "zrevrangebyscore",
    "zrevrank",
    "zscan",
    "zscore",
    "zunionstore",
    "pfadd",
    "pfcount",
    "pfmerge",
    "geoadd",
    "geodist",
    "geohash",
    "geopos",
    "georadius",
    "georadiusbymember",
    "geosearch",
];

async fn redis_step(pool: &Arc<Pool>, buf: &mut BytesMut, st: &mut State) -> Step {
    let max = pool.limits.max_request_bytes;
    let len = match resp::parse_request(buf, max, &mut st.args) {
        Ok(None) => return Step::More,
        Ok(Some(n)) => n,
        Err(e) => {
            pool.stats.client_err.fetch_add(1, Relaxed);
            buf.clear();
            return Step::Reply(Reply::Close(Bytes::from(resp::error(&format!("ERR {e}")))));
        }
    };
    let frame = buf.split_to(len).freeze();
    let mut args = std::mem::take(&mut st.argv);
    args.clear();
    args.extend(st.args.iter().map(|r| frame.slice(r.clone())));
    let step = redis_command(pool, &frame, &args, st).await;
    args.clear();
    st.argv = args;
    step
}

async fn redis_command(pool: &Arc<Pool>, frame: &Bytes, args: &[Bytes], st: &mut State) -> Step {
    let Some(name) = args.first() else {
        return Step::More;
    };
    let lower = Lower::of(name);
    let cmd = lower.as_str();
    let arity = |n: usize| args.len() >= n;
    let wrong = |cmd: &str| {
        ready(&resp::error(&format!(
            "ERR wrong number of arguments for '{cmd}' command"
        )))
    };
    match cmd {
        "auth" => {
            return match (&pool.cfg.redis_auth, args.get(1)) {
                (_, None) => wrong("auth"),
                (None, Some(_)) => ready(b"-ERR Client sent AUTH, but no password is set\r\n"),
                (Some(pw), Some(given)) if pw.as_bytes() == &given[..] => {
                    st.authed = true;
                    ready(b"+OK\r\n")
                }
                (Some(_), Some(_)) => {
                    st.authed = false;
                    ready(b"-ERR invalid password\r\n")
                }
            };
        }
        "quit" => return Step::Reply(Reply::Close(Bytes::from_static(b"+OK\r\n"))),
        _ if !st.authed => return ready(b"-NOAUTH Authentication required.\r\n"),
        "ping" => {
            return match args.get(1) {
                None => ready(b"+PONG\r\n"),
                Some(a) => {
                    let mut out = Vec::new();
                    resp::push_bulk(&mut out, a);
                    ready(&out)
                }
            };
        }
        "echo" => {
            let Some(a) = args.get(1).filter(|_| args.len() == 2) else {
                return wrong("echo");
            };
            let mut out = Vec::new();
            resp::push_bulk(&mut out, a);
            return ready(&out);
        }
        "command" => return ready(b"*0\r\n"),
        "select" => {
            let db = args
                .get(1)
                .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u32>().ok());
            return match db {
                Some(d) if d == pool.cfg.redis_db => ready(b"+OK\r\n"),
                Some(_) => ready(b"-ERR SELECT of another db is not supported by chring-proxy\r\n"),
                None => ready(b"-ERR invalid DB index\r\n"),
            };
        }
        _ => {}
    }
    if KEYED.contains(&cmd) {
        let Some(key) = args.get(1) else {
            return wrong(cmd);
        };
        let rx = forward(pool, key, frame.clone(), Expect::Resp, cmd, st.hint).await;
        return Step::Reply(Reply::Wait(rx));
    }
    match cmd {
        "eval" | "evalsha" => {
            let numkeys = args
                .get(2)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            match (numkeys, args.get(3)) {
                (Some(n), Some(key)) if n >= 1 => {
                    let rx = forward(pool, key, frame.clone(), Expect::Resp, cmd, st.hint).await;
                    Step::Reply(Reply::Wait(rx))
                }
                _ => ready(&resp::error(&format!(
                    "ERR {} needs at least one key to be routed by chring-proxy",
                    cmd.to_uppercase()
                ))),
            }
        }
        "mget" | "del" | "unlink" | "exists" | "touch" if arity(2) => {
            split(pool, cmd, &args[1..], 1, st.hint).await
        }
        "mset" if args.len() >= 3 && args.len() % 2 == 1 => {
            split(pool, cmd, &args[1..], 2, st.hint).await
        }
        "mget" | "del" | "unlink" | "exists" | "touch" | "mset" => wrong(cmd),
        "keys" if args.len() == 2 => {
            let servers = pool.live_servers();
            let mut rxs = Vec::with_capacity(servers.len());
            for s in servers {
                let (tx, rx) = oneshot::channel();
                pool.stats.fragments.fetch_add(1, Relaxed);
                s.send(Job {
                    bytes: frame.clone(),
                    expect: Expect::Resp,
                    reply: tx,
                    command: name_arc("keys"),
                    guard: None,
                    hint: st.hint,
                })
                .await;
                rxs.push(rx);
            }
            Step::Reply(Reply::Multi(waiting(rxs), Merge::Concat))
        }
        "keys" => wrong("keys"),
        _ => ready(&resp::error(&format!(
            "ERR unsupported command '{}' (chring-proxy: MULTI, SUBSCRIBE, blocking and \
             cross-server commands are not proxied)",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// Splits a multi-key command (`step` arguments per key) into one command per
/// server, keys in the client's order within each.
async fn split(pool: &Arc<Pool>, cmd: &str, keyargs: &[Bytes], step: usize, hint: usize) -> Step {
    let n = keyargs.len() / step;
    if n > pool.limits.max_keys {
        return ready(&resp::error(&format!(
            "ERR too many keys ({n}; at most {})",
            pool.limits.max_keys
        )));
    }
    // Group key positions by server (in first-seen server order).
    let mut groups: Vec<(
        Arc<crate::backend::Server>,
        Vec<usize>,
        Vec<crate::placement::LoadGuard>,
    )> = Vec::new();
    let mut missing = Vec::new();
    for i in 0..n {
        let key = &keyargs[i * step];
        match pool.route(key) {
            Some((s, g)) => {
                if let Some(grp) = groups.iter_mut().find(|(x, _, _)| Arc::ptr_eq(x, &s)) {
                    grp.1.push(i);
                    grp.2.extend(g);
                } else {
                    groups.push((s, vec![i], g.into_iter().collect()));
                }
            }
            None => missing.push(i),
        }
    }
    let upper = cmd.to_uppercase();
    let mut rxs = Vec::with_capacity(groups.len() + 1);
    let mut idx = Vec::with_capacity(groups.len() + 1);
    for (server, positions, mut guards) in groups {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + positions.len() * step);
        parts.push(upper.as_bytes());
        for &i in &positions {
            for j in 0..step {
                parts.push(&keyargs[i * step + j]);
            }
        }
        let (tx, rx) = oneshot::channel();
        pool.stats.fragments.fetch_add(1, Relaxed);
        server
            .send(Job {
                bytes: Bytes::from(resp::command(&parts)),
                expect: Expect::Resp,
                reply: tx,
                command: name_arc(cmd),
                guard: guards.pop(),
                hint,
            })
            .await;
        rxs.push(rx);
        idx.push(positions);
    }
    if !missing.is_empty() {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(BackendError::NoServer));
        rxs.push(rx);
        idx.push(missing);
    }
    let merge = match cmd {
        "mget" => Merge::Mget { n, idx },
        "mset" => Merge::AllOk,
        _ => Merge::Sum,
    };
    Step::Reply(Reply::Multi(waiting(rxs), merge))
}

async fn memcache_step(pool: &Arc<Pool>, buf: &mut BytesMut, hint: usize) -> Step {
    let req = match memcache::parse_request(buf, pool.limits.max_request_bytes) {
        Ok(None) => return Step::More,
        Ok(Some(r)) => r,
        Err(e) => {
            pool.stats.client_err.fetch_add(1, Relaxed);
            buf.clear();
            return Step::Reply(Reply::Close(Bytes::from(format!("{e}\r\n"))));
        }
    };
    let frame = buf.split_to(req.len).freeze();
    let lower = Lower::of(frame.get(req.name.clone()).unwrap_or(&[]));
    let name = lower.as_str();
    match req.command {
        Command::Refused(e) => ready(format!("{e}\r\n").as_bytes()),
        Command::Quit => Step::Reply(Reply::Close(Bytes::new())),
        Command::Version => {
            ready(concat!("VERSION chring-proxy-", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes())
        }
        Command::Keyed {
            key,
            noreply,
            noreply_span,
        } => {
            let key = frame.slice(key);
            let bytes = match noreply_span {
                Some(span) => {
                    let mut b = Vec::with_capacity(frame.len());
                    b.extend_from_slice(&frame[..span.start]);
                    b.extend_from_slice(&frame[span.end..]);
                    Bytes::from(b)
                }
                None => frame.clone(),
            };
            let rx = forward(
                pool,
                &key,
                bytes,
                Expect::Memcache(ReplyShape::Line),
                name,
                hint,
            )
            .await;
            Step::Reply(if noreply {
                Reply::Discard(rx)
            } else {
                Reply::Wait(rx)
            })
        }
        Command::Get { cas, keys } => {
            let keys: Vec<Bytes> = keys.into_iter().map(|k| frame.slice(k)).collect();
            if let [key] = keys.as_slice() {
                let rx = forward(
                    pool,
                    key,
                    frame.clone(),
                    Expect::Memcache(ReplyShape::Values),
                    name,
                    hint,
                )
                .await;
                return Step::Reply(Reply::Wait(rx));
            }
            let verb: &[u8] = if cas { b"gets" } else { b"get" };
            let mut groups: Vec<(Arc<crate::backend::Server>, Vec<u8>)> = Vec::new();
            for k in &keys {
                let Some((s, _)) = pool.route(k) else {
                    continue;
                };
                let at = match groups.iter().position(|(x, _)| Arc::ptr_eq(x, &s)) {
                    Some(at) => at,
                    None => {
                        groups.push((s, verb.to_vec()));
                        groups.len() - 1
                    }
                };
                let Some((_, line)) = groups.get_mut(at) else {
                    continue;
                };
                line.push(b' ');
                line.extend_from_slice(k);
            }
            let mut rxs = Vec::with_capacity(groups.len());
            for (s, mut line) in groups {
                line.extend_from_slice(b"\r\n");
                let (tx, rx) = oneshot::channel();
                pool.stats.fragments.fetch_add(1, Relaxed);
                s.send(Job {
                    bytes: Bytes::from(line),
                    expect: Expect::Memcache(ReplyShape::Values),
                    reply: tx,
                    command: name_arc(name),
                    guard: None,
                    hint,
                })
                .await;
                rxs.push(rx);
            }
            Step::Reply(Reply::Multi(waiting(rxs), Merge::McGet { keys }))
        }
    }
}

/// A server's answer, with a failure counted as a forward error.
fn poll_rx(pool: &Pool, rx: &mut Rx, cx: &mut Context<'_>) -> Poll<Result<Bytes, BackendError>> {
    Pin::new(rx).poll(cx).map(|r| {
        let r = r.unwrap_or(Err(BackendError::NoServer));
        if r.is_err() {
            pool.stats.forward_error.fetch_add(1, Relaxed);
        }
        r
    })
}

/// Writes `r` into `out` once it is answered; `Ready(true)` when the
/// connection is to close after it.
fn poll_reply(pool: &Pool, r: &mut Reply, out: &mut Vec<u8>, cx: &mut Context<'_>) -> Poll<bool> {
    match r {
        Reply::Ready(b) => out.extend_from_slice(b),
        Reply::Close(b) => {
            out.extend_from_slice(b);
            return Poll::Ready(true);
        }
        Reply::Wait(rx) => match ready!(poll_rx(pool, rx, cx)) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => out.extend_from_slice(&err(pool, &format!("ERR {e}"))),
        },
        Reply::Discard(rx) => {
            let _ = ready!(poll_rx(pool, rx, cx));
        }
        Reply::Multi(parts, merge) => {
            let mut waiting = false;
            for p in parts.iter_mut() {
                if let Part::Waiting(rx) = p {
                    match poll_rx(pool, rx, cx) {
                        Poll::Ready(v) => *p = Part::Done(v),
                        Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                return Poll::Pending;
            }
            let parts = std::mem::take(parts)
                .into_iter()
                .map(|p| match p {
                    Part::Done(v) => v,
                    Part::Waiting(_) => Err(BackendError::NoServer),
                })
                .collect();
            let merge = std::mem::replace(merge, Merge::Sum);
            merge_into(pool, merge, parts, out);
        }
    }
    Poll::Ready(false)
}

fn merge_into(
    pool: &Pool,
    merge: Merge,
    parts: Vec<Result<Bytes, BackendError>>,
    out: &mut Vec<u8>,
) {
    match merge {
        Merge::Mget { n, idx } => {
            let mut slots: Vec<Option<Bytes>> = vec![None; n];
            for (part, positions) in parts.iter().zip(&idx) {
                let elems = part
                    .as_ref()
                    .ok()
                    .and_then(|b| Some((b, resp::array_elements(b)?)));
                for (j, &i) in positions.iter().enumerate() {
                    let v = match (&elems, part) {
                        (Some((b, e)), _) if e.len() == positions.len() => {
                            e.get(j).map(|r| b.slice(r.clone()))
                        }
                        (_, Ok(b)) if b.first() == Some(&b'-') => Some(b.clone()),
                        (_, Err(e)) => Some(Bytes::from(resp::error(&format!("ERR {e}")))),
                        _ => Some(Bytes::from(resp::error("ERR bad reply from server"))),
                    };
                    if let Some(slot) = slots.get_mut(i) {
                        *slot = v;
                    }
                }
            }
            resp::push_array(out, n);
            for s in slots {
                out.extend_from_slice(s.as_deref().unwrap_or(b"$-1\r\n"));
            }
        }
        Merge::Sum => {
            let mut total: i64 = 0;
            for p in &parts {
                match p {
                    Ok(b) => match resp::integer(b) {
                        Some(x) => total = total.saturating_add(x),
                        None => {
                            out.extend_from_slice(b);
                            return;
                        }
                    },
                    Err(e) => {
                        out.extend_from_slice(&resp::error(&format!("ERR {e}")));
                        return;
                    }
                }
            }
            out.extend_from_slice(format!(":{total}\r\n").as_bytes());
        }
        Merge::AllOk => {
            for p in &parts {
                match p {
                    Ok(b) if b.starts_with(b"+OK") => {}
                    Ok(b) => {
                        out.extend_from_slice(b);
                        return;
                    }
                    Err(e) => {
                        out.extend_from_slice(&resp::error(&format!("ERR {e}")));
                        return;
                    }
                }
            }
            out.extend_from_slice(b"+OK\r\n");
        }
        Merge::Concat => {
            let mut all: Vec<Bytes> = Vec::new();
            for p in &parts {
                match p.as_ref().map(|b| (b, resp::array_elements(b))) {
                    Ok((b, Some(e))) => all.extend(e.into_iter().map(|r| b.slice(r))),
                    Ok((b, None)) => {
                        out.extend_from_slice(b);
                        return;
                    }
                    Err(e) => {
                        out.extend_from_slice(&resp::error(&format!("ERR {e}")));
                        return;
                    }
                }
            }
            resp::push_array(out, all.len());
            for e in all {
                out.extend_from_slice(&e);
            }
        }
        Merge::McGet { keys } => {
            // Keys of a failed server read as misses (a cache's degraded
            // answer); the failure is counted in forward_error.
            let mut found: Vec<(Bytes, Bytes)> = Vec::new();
            for p in parts.iter().flatten() {
                let (blocks, _) = memcache::value_blocks(p);
                for (k, span) in blocks {
                    found.push((p.slice(k), p.slice(span)));
                }
            }
            for k in &keys {
                if let Some(pos) = found.iter().position(|(fk, _)| fk == k) {
                    let (_, block) = found.swap_remove(pos);
                    out.extend_from_slice(&block);
                }
            }
            out.extend_from_slice(b"END\r\n");
            let _ = pool;
        }
    }
}
