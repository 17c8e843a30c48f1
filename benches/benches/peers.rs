//! The peers: consistent-hashing crates from crates.io, each in its closest
//! equivalent of chring's configuration (see the builders in `fleet.rs`).
//!
//! How each one hashes a key (inside the timed loop, as chring does):
//!
//! | id | key hash | lookup |
//! | --- | --- | --- |
//! | `pingora-ketama` | CRC-32 of the key bytes (u64: 8 LE bytes) | binary search, 160 points / backend |
//! | `hashring` | SipHash-2-4 (`Hash`) | binary search, 100 vnodes / backend |
//! | `conhash` | MD5 of the key bytes (u64: 8 LE bytes), into a new `Vec` | `BTreeMap::range`, 100 replicas / backend |
//! | `mpchash` | XXH3 (`Hash`), 23 probes by double hashing | 23 skip-list searches, 1 point / backend |
//! | `maglev` | SipHash-1-3 (`Hash`) | `% M` table read, M = 65537 |
//! | `jumphash` | SipHash-1-3 (`Hash`) | jump loop |
//! | `hash-rings` | SipHash-1-3 (`Hash`, random keys) | `BTreeMap::range`, 100 replicas / backend |
//! | `anchorhash` | SipHash-1-3 (`Hash`, random keys) | AnchorHash, capacity n, then a `HashMap` read |
//! | `rendezvous_hash` | SipHash-1-3 (`Hash`) per backend | scores all, collects into a `Vec`, sorts |
//!
//! u64 keys go to the `Hash`-based crates as `&u64` (one `write_u64`) and to the
//! byte-based ones as their 8 little-endian bytes; string keys as `&str` / bytes.

use std::net::SocketAddr;

use chring_benches::{N_BUILD, VNODES};
use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use maglev::ConsistentHasher;

use crate::Lookups;
use crate::fleet;

/// A socket address as a number (distinct per backend).
pub(crate) fn addr(a: Option<SocketAddr>) -> u64 {
    match a {
        Some(SocketAddr::V4(a)) => (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port()),
        _ => u64::MAX,
    }
}

fn num(x: Option<u16>) -> u64 {
    x.map_or(u64::MAX, u64::from)
}

pub(crate) fn lookups(l: &mut Lookups<'_, '_>) {
    let n = l.n();

    let mut c = fleet::pingora(&fleet::pingora_buckets(n));
    l.bench(
        "pingora-ketama",
        &mut c,
        |c, k| addr(c.node(&k.to_le_bytes())),
        |c, k| addr(c.node(k.as_bytes())),
    );
    drop(c);

    let mut r = fleet::hashring(n);
    l.bench(
        "hashring",
        &mut r,
        |r, k| num(r.get(&k).map(|v| v.0)),
        |r, k| num(r.get(&k).map(|v| v.0)),
    );
    drop(r);

    let mut c = fleet::conhash(n);
    l.bench(
        "conhash",
        &mut c,
        |c, k| num(c.get(&k.to_le_bytes()).map(|v| v.0)),
        |c, k| num(c.get_str(k).map(|v| v.0)),
    );
    drop(c);

    let mut r = fleet::mpchash(n);
    l.bench(
        "mpchash",
        &mut r,
        |r, k| num(r.node(&k).map(|t| *t.node())),
        |r, k| num(r.node(&k).map(|t| *t.node())),
    );
    drop(r);

    let mut m = fleet::maglev_crate(n);
    l.bench(
        "maglev",
        &mut m,
        |m, k| num(m.get(&k).copied()),
        |m, k| num(m.get(k).copied()),
    );
    drop(m);

    let mut j = (fleet::jumphash(), u32::try_from(n).expect("n fits in u32"));
    l.bench(
        "jumphash",
        &mut j,
        |(j, n), k| u64::from(j.slot(&k, *n)),
        |(j, n), k| u64::from(j.slot(&k, *n)),
    );

    let mut r = fleet::hash_rings(fleet::hash_rings_ids(n));
    l.bench(
        "hash-rings",
        &mut r,
        |r, k| u64::from(*r.get_node(&k)),
        |r, k| u64::from(*r.get_node(&k)),
    );
    drop(r);

    // The key type is a type parameter of AnchorHash: one instance per group.
    if l.is_str() {
        let mut a = fleet::anchorhash::<&str>(n, n);
        l.bench(
            "anchorhash",
            &mut a,
            |_, _| unreachable!("string keys"),
            |a, k| num(a.get_resource(k).copied()),
        );
    } else {
        let mut a = fleet::anchorhash::<u64>(n, n);
        l.bench(
            "anchorhash",
            &mut a,
            |a, k| num(a.get_resource(k).copied()),
            |_, _| unreachable!("u64 keys"),
        );
    }

    let mut r = fleet::rendezvous_crate(n);
    l.bench(
        "rendezvous_hash",
        &mut r,
        |r, k| num(r.calc_candidates(&k).next().map(|n| **n)),
        |r, k| num(r.calc_candidates(&k).next().map(|n| **n)),
    );
}

/// `build/<peer>/100` and `build/<peer>/add-to-100`. Crates without an
/// incremental add rebuild with 101 backends (pingora-ketama, maglev); crates
/// whose structure cannot be cloned start each add from a fresh build made
/// outside the timing. jumphash has no state to build.
pub(crate) fn build(g: &mut BenchmarkGroup<'_, WallTime>) {
    let n = N_BUILD;
    let new = u16::try_from(n).expect("n fits in u16");

    let buckets = fleet::pingora_buckets(n + 1);
    crate::bench_build(g, "pingora-ketama", || fleet::pingora(&buckets[..n]));
    crate::bench_add(
        g,
        "pingora-ketama",
        || (),
        |()| {
            std::hint::black_box(fleet::pingora(&buckets));
        },
    );

    crate::bench_build(g, "hashring", || fleet::hashring(n));
    let base = fleet::hashring(n);
    crate::bench_add(
        g,
        "hashring",
        || (base.clone(), fleet::hashring_vnodes(n)),
        |(r, vnodes)| r.batch_add(std::mem::take(vnodes)),
    );

    crate::bench_build(g, "conhash", || fleet::conhash(n));
    crate::bench_add(
        g,
        "conhash",
        || fleet::conhash(n),
        |c| {
            c.add(&fleet::ConhashNode(new), VNODES as usize);
        },
    );

    crate::bench_build(g, "mpchash", || fleet::mpchash(n));
    // Its clone shares the skip list (an `Arc`): start from a fresh one.
    crate::bench_add(g, "mpchash", || fleet::mpchash(n), |r| r.add(new));

    crate::bench_build(g, "maglev", || fleet::maglev_crate(n));
    crate::bench_add(
        g,
        "maglev",
        || (),
        |()| {
            std::hint::black_box(fleet::maglev_crate(n + 1));
        },
    );

    let ids = fleet::hash_rings_ids(n + 1);
    crate::bench_build(g, "hash-rings", || fleet::hash_rings(&ids[..n]));
    crate::bench_add(
        g,
        "hash-rings",
        || fleet::hash_rings(&ids[..n]),
        |r| {
            r.insert_node(&ids[n], VNODES as usize);
        },
    );

    // Capacity n + 1 so that one more resource fits.
    crate::bench_build(g, "anchorhash", || fleet::anchorhash::<u64>(n, n + 1));
    let base = fleet::anchorhash::<u64>(n, n + 1);
    crate::bench_add(
        g,
        "anchorhash",
        || base.clone(),
        |a| {
            a.add_resource(new).expect("capacity");
        },
    );

    crate::bench_build(g, "rendezvous_hash", || fleet::rendezvous_crate(n));
    crate::bench_add(
        g,
        "rendezvous_hash",
        || fleet::rendezvous_crate(n),
        |r| {
            r.insert(rendezvous_hash::IdNode::new(new));
        },
    );
}
