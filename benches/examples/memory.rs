//! Bytes each structure takes at n = 100 backends (100 points per backend where
//! the algorithm has points, 160 for pingora-ketama), built exactly as the
//! benchmarks build them (`benches/fleet.rs`).
//!
//! chring's structures are sized exactly for the fleet (`B = 100`,
//! `P = 10,000`): they own no heap, so their cost is `size_of`. The peers are
//! measured with a counting global allocator: heap bytes live after the build
//! (what the structure owns), the peak of live heap bytes during the build
//! (temporaries included) and the number of allocations.
//!
//! Run: `cargo run --release -p chring-benches --example memory` (a Markdown
//! table), or with `-- --json` (one JSON array, read by `scripts/bench-table.py`).

use std::mem::size_of;

use chring::{Jump, Maglev, Modulo, Rendezvous, Ring, TtlCache};
use chring_benches::{Counting, N_BUILD};

// The benches' builders; this example weighs a subset (one builder per structure).
#[allow(dead_code)]
#[path = "../benches/fleet.rs"]
mod fleet;

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measured structure.
struct Row {
    id: &'static str,
    what: String,
    size_of: usize,
    heap: usize,
    peak: usize,
    allocs: usize,
}

/// Builds `T` and weighs it: `size_of::<T>()` plus the heap it owns afterwards.
/// `boxed`: the builder returns `Box<T>`, whose allocation is the value itself
/// (counted in `size_of`, not in `heap`).
fn weigh<R, T>(id: &'static str, what: String, boxed: bool, build: impl FnOnce() -> R) -> Row {
    Counting::reset_peak();
    let before = Counting::snapshot();
    let built = build();
    let after = Counting::snapshot();
    let own = if boxed { size_of::<T>() } else { 0 };
    let row = Row {
        id,
        what,
        size_of: size_of::<T>(),
        heap: (after.live - before.live).saturating_sub(own),
        peak: (after.peak - before.live).saturating_sub(own),
        allocs: after.calls - before.calls - usize::from(boxed),
    };
    drop(built);
    row
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let n = N_BUILD;
    let names = fleet::names(n);
    let mut rows = Vec::new();

    // chring: inline storage, sized for exactly 100 backends.
    rows.push(weigh::<_, Ring<100, 10_000, 65_536>>(
        "chring-ring",
        "`Ring<100, 10_000, 65_536>`".into(),
        true,
        || fleet::ring::<100, 10_000, 65_536>(&names),
    ));
    rows.push(weigh::<_, Ring<100, 10_000, 0>>(
        "chring-ring-noindex",
        "`Ring<100, 10_000, 0>`".into(),
        true,
        || fleet::ring::<100, 10_000, 0>(&names),
    ));
    rows.push(weigh::<_, Maglev<100, { fleet::MAGLEV_M }>>(
        "chring-maglev",
        "`Maglev<100, 65_537>`".into(),
        true,
        || fleet::maglev::<100>(&names),
    ));
    rows.push(weigh::<_, Jump<100, 100>>(
        "chring-jump",
        "`Jump<100, 100>`".into(),
        true,
        || fleet::jump::<100, 100>(&names),
    ));
    rows.push(weigh::<_, Rendezvous<100>>(
        "chring-rendezvous",
        "`Rendezvous<100>`".into(),
        true,
        || fleet::rendezvous::<100>(&names),
    ));
    rows.push(weigh::<_, chring::BoundedLoad<100, 10_000, 65_536>>(
        "chring-bounded",
        "`BoundedLoad<100, 10_000, 65_536>`".into(),
        true,
        || fleet::bounded::<100, 10_000, 65_536>(&names),
    ));
    rows.push(weigh::<_, Modulo<100>>(
        "chring-modulo",
        "`Modulo<100>`".into(),
        true,
        || fleet::modulo::<100>(&names),
    ));
    rows.push(weigh::<_, TtlCache<u64, u16, 1024, u16>>(
        "chring-ttlcache-1024",
        "`TtlCache<u64, u16, 1024, u16>` (not per backend)".into(),
        true,
        || Box::new(TtlCache::<u64, u16, 1024, u16>::new(chring::Duration(1000)).expect("ttl")),
    ));
    rows.push(weigh::<_, TtlCache<u64, u16, 65_536, u32>>(
        "chring-ttlcache-65536",
        "`TtlCache<u64, u16, 65_536, u32>` (not per backend)".into(),
        true,
        || Box::new(TtlCache::<u64, u16, 65_536, u32>::new(chring::Duration(1000)).expect("ttl")),
    ));

    // Peers: what their builders allocate.
    let buckets = fleet::pingora_buckets(n);
    rows.push(weigh::<_, pingora_ketama::Continuum>(
        "pingora-ketama",
        "`Continuum`, 160 points / backend".into(),
        false,
        || fleet::pingora(&buckets),
    ));
    rows.push(weigh::<_, hashring::HashRing<(u16, u16)>>(
        "hashring",
        "`HashRing<(u16, u16)>`, 100 vnodes / backend".into(),
        false,
        || fleet::hashring(n),
    ));
    rows.push(weigh::<_, conhash::ConsistentHash<fleet::ConhashNode>>(
        "conhash",
        "`ConsistentHash<_>`, 100 replicas / backend".into(),
        false,
        || fleet::conhash(n),
    ));
    rows.push(weigh::<_, mpchash::HashRing<u16>>(
        "mpchash",
        "`HashRing<u16>`, 1 point / backend".into(),
        false,
        || fleet::mpchash(n),
    ));
    rows.push(weigh::<_, maglev::Maglev<u16>>(
        "maglev",
        "`Maglev<u16>`, M = 65,537".into(),
        false,
        || fleet::maglev_crate(n),
    ));
    rows.push(weigh::<_, jumphash::JumpHasher>(
        "jumphash",
        "`JumpHasher` (stateless)".into(),
        false,
        fleet::jumphash,
    ));
    rows.push(weigh::<_, hash_rings::consistent::Ring<'static, u16>>(
        "hash-rings",
        "`consistent::Ring<u16>`, 100 replicas / backend (+ its node ids)".into(),
        false,
        || fleet::hash_rings(fleet::hash_rings_ids(n)),
    ));
    rows.push(weigh::<
        _,
        anchorhash::AnchorHash<u64, u16, std::collections::hash_map::RandomState>,
    >(
        "anchorhash",
        "`AnchorHash<u64, u16, _>`, capacity 100".into(),
        false,
        || fleet::anchorhash::<u64>(n, n),
    ));
    rows.push(weigh::<_, fleet::RendezvousNodes>(
        "rendezvous_hash",
        "`RendezvousNodes<IdNode<u16>, _>`".into(),
        false,
        || fleet::rendezvous_crate(n),
    ));

    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"id\": \"{}\", \"what\": \"{}\", \"size_of\": {}, \"heap\": {}, \"peak\": {}, \"allocs\": {}}}",
                    r.id,
                    r.what.replace('"', "\\\""),
                    r.size_of,
                    r.heap,
                    r.peak,
                    r.allocs
                )
            })
            .collect();
        println!("[\n  {}\n]", items.join(",\n  "));
    } else {
        println!("Memory at n = {n} backends (bytes)\n");
        println!(
            "| impl | structure | size_of | heap after build | total | peak heap during build | allocations |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        for r in &rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.what,
                r.size_of,
                r.heap,
                r.size_of + r.heap,
                r.peak,
                r.allocs
            );
        }
    }
}
