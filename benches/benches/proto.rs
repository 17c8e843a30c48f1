//! chring-proxy's request framing against the crate a proxy would otherwise
//! use (issue 12).
//!
//! - `proto/resp-parse/chring-proxy`: `chring_proxy::resp::parse_request` over
//!   a buffer of 1,000 pipelined `SET key:<i> <32-byte value>` commands (one
//!   iteration frames all of them, argument spans only, no copy);
//!   `proto/resp-parse/redis-protocol`: `redis_protocol::resp2::decode::decode_range`
//!   (redis-protocol 6, its zero-copy decoder: range frames) over the same
//!   buffer, the arguments counted so neither is optimised away.
//! - `proto/memcache-parse/chring-proxy`: `chring_proxy::memcache::parse_request`
//!   over 1,000 pipelined `set key:<i> 0 0 32` + data block, and
//!   `proto/memcache-parse/memchr-lines`: only finding every line end with
//!   memchr (the floor any memcached ASCII parser pays). No memcached
//!   protocol-parsing crate is among this workspace's dependencies to compare
//!   with.

use std::hint::black_box;

use criterion::{Criterion, Throughput};

const N: usize = 1000;

fn resp_buffer() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..N {
        let key = format!("key:{i}");
        out.extend(chring_proxy::resp::command(&[
            b"SET",
            key.as_bytes(),
            &[b'v'; 32],
        ]));
    }
    out
}

fn memcache_buffer() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..N {
        out.extend(format!("set key:{i} 0 0 32\r\n").bytes());
        out.extend_from_slice(&[b'v'; 32]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub(crate) fn proto(c: &mut Criterion) {
    let mut g = c.benchmark_group("proto");
    g.throughput(Throughput::Elements(N as u64));
    let buf = resp_buffer();
    g.bench_function("resp-parse/chring-proxy", |b| {
        let mut args = Vec::with_capacity(8);
        b.iter(|| {
            let mut rest = black_box(&buf[..]);
            let mut n = 0usize;
            while let Ok(Some(len)) = chring_proxy::resp::parse_request(rest, 1 << 20, &mut args) {
                n += args.len();
                rest = &rest[len..];
            }
            assert_eq!(n, 3 * N);
            n
        });
    });
    g.bench_function("resp-parse/redis-protocol", |b| {
        b.iter(|| {
            let mut rest = black_box(&buf[..]);
            let mut n = 0usize;
            while let Ok(Some((frame, len))) = redis_protocol::resp2::decode::decode_range(rest) {
                if let redis_protocol::resp2::types::RangeFrame::Array(a) = frame {
                    n += a.len();
                }
                rest = &rest[len..];
            }
            assert_eq!(n, 3 * N);
            n
        });
    });
    let buf = memcache_buffer();
    g.bench_function("memcache-parse/chring-proxy", |b| {
        b.iter(|| {
            let mut rest = black_box(&buf[..]);
            let mut n = 0usize;
            while let Ok(Some(req)) = chring_proxy::memcache::parse_request(rest, 1 << 20) {
                n += 1;
                rest = &rest[req.len..];
            }
            assert_eq!(n, N);
            n
        });
    });
    g.bench_function("memcache-parse/memchr-lines", |b| {
        b.iter(|| {
            let n = memchr::memchr_iter(b'\n', black_box(&buf[..])).count();
            assert_eq!(n, 2 * N);
            n
        });
    });
    g.finish();
}
