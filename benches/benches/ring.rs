//! chring's strategies: lookups and builds.
//!
//! Capacities (const generics) per fleet size `n`, backends `B`, ring points `P`,
//! prefix index entries `I`, jump buckets `S`:
//!
//! | n | B | P | I | S | Maglev M |
//! | --- | --- | --- | --- | --- | --- |
//! | 5 | 8 | 512 | 512 | 8 | 65537 |
//! | 100 | 128 | 12,800 | 65,536 | 128 | 65537 |
//! | 1000 | 1024 | 102,400 | 65,536 | 1024 | 65537 |
//!
//! `chring-ring-noindex` is the same ring with `I = 0` (binary search, the MCU
//! setting). Lookups hash the key with `chring::hash_u64` (u64 keys) or
//! `chring::hash` (string keys), XXH3-64, inside the timed loop. `chring-ring`
//! uses `Ring::lookup` (ignores health, like the peers' lookups);
//! `chring-bounded` uses `Strategy::pick` with no load reported (the walk to the
//! first backend under capacity, which is the owner); the others their `lookup`.

use chring::{BackendId, LoadAware, hash, hash_u64};
use chring_benches::N_BUILD;
use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

use crate::fleet::{self, names};
use crate::{Lookups, id};

pub(crate) fn lookups(l: &mut Lookups<'_, '_>) {
    match l.n() {
        5 => with::<8, 512, 512, 8>(l),
        100 => with::<128, 12_800, 65_536, 128>(l),
        1000 => with::<1024, 102_400, 65_536, 1024>(l),
        n => panic!("no capacities for n = {n}"),
    }
}

fn with<const B: usize, const P: usize, const I: usize, const S: usize>(l: &mut Lookups<'_, '_>) {
    let names = names(l.n());

    let mut ring = fleet::ring::<B, P, I>(&names);
    l.bench(
        "chring-ring",
        &mut ring,
        |r, k| id(r.lookup(hash_u64(k))),
        |r, k| id(r.lookup(hash(k.as_bytes()))),
    );
    drop(ring);

    let mut ring = fleet::ring::<B, P, 0>(&names);
    l.bench(
        "chring-ring-noindex",
        &mut ring,
        |r, k| id(r.lookup(hash_u64(k))),
        |r, k| id(r.lookup(hash(k.as_bytes()))),
    );
    drop(ring);

    let mut maglev = fleet::maglev::<B>(&names);
    l.bench(
        "chring-maglev",
        &mut maglev,
        |m, k| id(m.lookup(hash_u64(k))),
        |m, k| id(m.lookup(hash(k.as_bytes()))),
    );
    drop(maglev);

    let mut jump = fleet::jump::<B, S>(&names);
    l.bench(
        "chring-jump",
        &mut jump,
        |j, k| id(j.lookup(hash_u64(k))),
        |j, k| id(j.lookup(hash(k.as_bytes()))),
    );

    let mut hrw = fleet::rendezvous::<B>(&names);
    l.bench(
        "chring-rendezvous",
        &mut hrw,
        |r, k| id(r.lookup(hash_u64(k))),
        |r, k| id(r.lookup(hash(k.as_bytes()))),
    );

    let mut bounded = fleet::bounded::<B, P, I>(&names);
    l.bench(
        "chring-bounded",
        &mut bounded,
        |b, k| id(b.pick(hash_u64(k))),
        |b, k| id(b.pick(hash(k.as_bytes()))),
    );
    drop(bounded);

    let mut modulo = fleet::modulo::<B>(&names);
    l.bench(
        "chring-modulo",
        &mut modulo,
        |m, k| id(m.lookup(hash_u64(k))),
        |m, k| id(m.lookup(hash(k.as_bytes()))),
    );
}

/// `build/<impl>/100` and `build/<impl>/add-to-100` for chring's strategies at the
/// n = 100 capacities. Bounded loads builds exactly the ring, so it is not repeated.
pub(crate) fn build(g: &mut BenchmarkGroup<'_, WallTime>) {
    let names = names(N_BUILD + 1);
    let (first, extra) = names.split_at(N_BUILD);
    let extra = extra[0].as_bytes();
    let new_id = BackendId(N_BUILD as u16);

    // The ring: `n` merges of 100 points each, then the prefix index.
    build_pair(
        g,
        "chring-ring",
        || fleet::ring::<128, 12_800, 65_536>(first),
        |r| r.add(new_id, extra, 1).expect("add"),
    );
    build_pair(
        g,
        "chring-ring-noindex",
        || fleet::ring::<128, 12_800, 0>(first),
        |r| r.add(new_id, extra, 1).expect("add"),
    );
    // The same, built in one call: one sort and one index rebuild.
    crate::bench_build(g, "chring-ring-bulk", || {
        fleet::ring_bulk::<128, 12_800, 65_536>(first)
    });
    crate::bench_build(g, "chring-ring-noindex-bulk", || {
        fleet::ring_bulk::<128, 12_800, 0>(first)
    });
    crate::bench_build(g, "chring-maglev-bulk", || fleet::maglev_bulk::<128>(first));
    build_pair(
        g,
        "chring-maglev",
        || fleet::maglev::<128>(first),
        |m| m.add(new_id, extra, 1).expect("add"),
    );
    build_pair(
        g,
        "chring-jump",
        || fleet::jump::<128, 128>(first),
        |j| j.add(new_id, extra, 1).expect("add"),
    );
    build_pair(
        g,
        "chring-rendezvous",
        || fleet::rendezvous::<128>(first),
        |r| r.add(new_id, extra, 1).expect("add"),
    );
    build_pair(
        g,
        "chring-modulo",
        || fleet::modulo::<128>(first),
        |m| m.add(new_id, extra, 1).expect("add"),
    );
}

/// `<id>/100` and `<id>/add-to-100`, the add on a clone of a built one.
fn build_pair<T: Clone>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    make: impl Fn() -> Box<T>,
    add: impl Fn(&mut T),
) {
    crate::bench_build(g, id, &make);
    let base = make();
    crate::bench_add(g, id, || base.clone(), |s| add(s));
}
