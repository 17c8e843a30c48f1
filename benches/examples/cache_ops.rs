//! Runs one cache workload of the `cache_*` benchmarks outside criterion, for a
//! profiler: fills a cache, then does `OPS` operations of one kind on it and
//! prints a checksum. Instructions per operation under callgrind are the
//! difference of two runs divided by the difference of their `OPS` (the fill
//! cancels out):
//!
//! ```text
//! cargo build --release -p chring-benches --example cache_ops
//! for ops in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$ops \
//!     $CARGO_TARGET_DIR/release/examples/cache_ops chring 1024 hit $ops
//! done
//! ```
//!
//! Arguments: `IMPL N OP OPS` with IMPL one of `chring`, `schnellru`, `lru`,
//! `hashlink`, `quick_cache`, `uluru` (N = 1024 only), `const-lru`; N 1024 or
//! 65536; OP `hit`, `miss` or `insert`.

use std::hint::black_box;
use std::process::ExitCode;

#[path = "../benches/cache_peers/impls.rs"]
#[allow(dead_code)]
mod impls;

use impls::{
    Chring, ConstLruPeer, Hashlink, Lru, PeerCache, QuickCache, Schnellru, Uluru, Workload,
};

/// Operations per benchmark iteration, as in the benchmark (sizes the streams).
const KEYS: usize = 4096;

fn run<C: PeerCache>(op: &str, ops: usize) -> Option<u64> {
    let w = Workload::new(C::N, KEYS);
    let mut c: C = w.filled();
    let stream: &[u64] = match op {
        "hit" => &w.hits,
        "miss" => &w.misses,
        "insert" => &w.fresh,
        _ => return None,
    };
    let mask = stream.len() - 1;
    let mut sum = 0u64;
    for j in 0..ops {
        let k = stream[j & mask];
        if op == "insert" {
            c.insert(black_box(k), !k);
        } else {
            sum = sum.wrapping_add(c.get(black_box(k)).unwrap_or(1));
        }
    }
    c.check();
    // Inserts return nothing: their checksum is the number of entries kept.
    Some(if op == "insert" { c.len() as u64 } else { sum })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [imp, n, op, ops] = args.as_slice() else {
        eprintln!("usage: cache_ops IMPL N OP OPS   (see the source's header)");
        return ExitCode::FAILURE;
    };
    let Ok(ops) = ops.parse::<usize>() else {
        eprintln!("OPS must be a number");
        return ExitCode::FAILURE;
    };
    let sum = match (imp.as_str(), n.as_str()) {
        ("chring", "1024") => run::<Chring<1024, u16>>(op, ops),
        ("chring", "65536") => run::<Chring<65_536, u32>>(op, ops),
        ("schnellru", "1024") => run::<Schnellru<1024>>(op, ops),
        ("schnellru", "65536") => run::<Schnellru<65_536>>(op, ops),
        ("lru", "1024") => run::<Lru<1024>>(op, ops),
        ("lru", "65536") => run::<Lru<65_536>>(op, ops),
        ("hashlink", "1024") => run::<Hashlink<1024>>(op, ops),
        ("hashlink", "65536") => run::<Hashlink<65_536>>(op, ops),
        ("quick_cache", "1024") => run::<QuickCache<1024>>(op, ops),
        ("quick_cache", "65536") => run::<QuickCache<65_536>>(op, ops),
        ("uluru", "1024") => run::<Uluru<1024>>(op, ops),
        ("const-lru", "1024") => run::<ConstLruPeer<1024, u16>>(op, ops),
        ("const-lru", "65536") => run::<ConstLruPeer<65_536, u32>>(op, ops),
        _ => None,
    };
    match sum {
        Some(s) => {
            println!("{imp}/{n} {op} x {ops}: checksum {s:#x}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("unknown IMPL/N/OP: {imp} {n} {op}");
            ExitCode::FAILURE
        }
    }
}
