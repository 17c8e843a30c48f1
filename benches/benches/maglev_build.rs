//! `build/chring-maglev*/1024`: Maglev table builds for a fleet of 1,024 backends
//! (issue 11: a proxy loads and reloads such configurations, budget 10 ms).
//!
//! - `chring-maglev-bulk/1024`: one `Maglev::add_many` of 1,024 backends of weight
//!   1, `M = 65537` (one table rebuild);
//! - `chring-maglev-bulk-131071/1024`: the same at `M = 131071`, above the paper's
//!   `M > 100 n`;
//! - `chring-maglev-bulk-weighted/1024`: `M = 65537`, weights drawn uniformly
//!   from `1..=65535` (seeded): the rebuild orders turns with its heap;
//! - `chring-maglev/add-to-1024`: one `add` to a built fleet of 1,024 (one
//!   rebuild; the copy it starts from is made outside the timing);
//! - `chring-maglev/1024`: 1,024 `add`s one by one (1,024 rebuilds), to compare
//!   with 1,024 × `add-to-1024`.
//!
//! Backends are named as everywhere else ([`chring_benches::backend_name`]).
//! The structures are boxed: `Maglev<1025, 131071>` is about 300 KB.

use std::hint::black_box;
use std::time::Instant;

use chring::{BackendId, Maglev};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId};
use rand_core::Rng;

use crate::fleet::names;

/// Backends in every build of this module.
const N: usize = 1024;

/// Backend capacity `B`: room for the one `add` of `add-to-1024`.
const CAP: usize = N + 1;

fn batch<'a>(names: &'a [String], weights: &[u32]) -> Vec<(BackendId, &'a [u8], u32)> {
    names
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (n, &w))| {
            (
                BackendId(u16::try_from(i).expect("n fits in u16")),
                n.as_bytes(),
                w,
            )
        })
        .collect()
}

fn bulk<const M: usize>(batch: &[(BackendId, &[u8], u32)]) -> Box<Maglev<CAP, M>> {
    let mut m = Box::new(Maglev::new());
    m.add_many(batch).expect("add_many");
    m
}

/// `build/<id>/1024`, sampled as the other builds (see [`crate::configure`]).
fn bench<T>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut make: impl FnMut() -> T) {
    let t = Instant::now();
    drop(black_box(make()));
    crate::configure(g, t.elapsed());
    g.bench_function(BenchmarkId::new(id, N), |b| b.iter(&mut make));
}

pub(crate) fn build(g: &mut BenchmarkGroup<'_, WallTime>) {
    let names = names(N + 1);
    let (first, extra) = names.split_at(N);
    let ones = vec![1; N];
    let mut r = crate::rng(11);
    let weights: Vec<u32> = (0..N).map(|_| 1 + r.next_u32() % 65_535).collect();
    let equal = batch(first, &ones);
    let weighted = batch(first, &weights);

    bench(g, "chring-maglev-bulk", || bulk::<65_537>(&equal));
    bench(g, "chring-maglev-bulk-131071", || bulk::<131_071>(&equal));
    bench(g, "chring-maglev-bulk-weighted", || {
        bulk::<65_537>(&weighted)
    });

    let base = bulk::<65_537>(&equal);
    let extra = extra[0].as_bytes();
    let add = |m: &mut Maglev<CAP, 65_537>| {
        m.add(BackendId(N as u16), extra, 1).expect("add");
    };
    let mut one = base.clone();
    let t = Instant::now();
    add(&mut one);
    crate::configure(g, t.elapsed());
    g.bench_function(BenchmarkId::new("chring-maglev", "add-to-1024"), |b| {
        b.iter_batched(
            || base.clone(),
            |mut m| {
                add(&mut m);
                m
            },
            BatchSize::LargeInput,
        );
    });

    bench(g, "chring-maglev", || {
        let mut m: Box<Maglev<CAP, 65_537>> = Box::new(Maglev::new());
        for &(id, name, w) in &equal {
            m.add(id, name, w).expect("add");
        }
        m
    });
}
