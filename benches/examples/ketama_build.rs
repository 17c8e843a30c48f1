//! Builds a twemproxy ketama pool with `Ketama::add_many` `BUILDS` times, for a
//! profiler (the `ketama/chring-twemproxy-bulk/<n>` benchmark's work outside
//! criterion): `SERVERS` servers of weight 1 named as the benchmark names them,
//! `fnv1a_64`. Instructions per build under callgrind are the difference of two
//! runs (the setup cancels out):
//!
//! ```text
//! cargo build --release -p chring-benches --example ketama_build
//! for b in 1 2; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/kb.$b \
//!     $CARGO_TARGET_DIR/release/examples/ketama_build 1024 $b
//! done
//! ```
//!
//! Prints a checksum of the continuum.

use std::process::ExitCode;

use chring::compat::twemproxy::{Ketama, KeyHash};
use chring_benches::backend_name;

type Pool = Ketama<1024, { 160 * 1024 }, 64>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [n, b] => n.parse::<usize>().ok().zip(b.parse::<usize>().ok()),
        _ => None,
    };
    let Some((n, builds)) = parsed.filter(|&(n, _)| (1..=1024).contains(&n)) else {
        eprintln!("usage: ketama_build SERVERS(1..=1024) BUILDS");
        return ExitCode::FAILURE;
    };
    let names: Vec<Vec<u8>> = (0..n).map(|i| backend_name(i).into_bytes()).collect();
    let servers: Vec<(&[u8], u32)> = names.iter().map(|s| (s.as_slice(), 1)).collect();
    let mut pool: Box<Pool> = Box::new(Ketama::new(KeyHash::Fnv1a64));
    let mut sum = 0u64;
    for _ in 0..builds {
        pool.clear();
        if let Err(e) = pool.add_many(&servers) {
            eprintln!("add_many: {e:?}");
            return ExitCode::FAILURE;
        }
        sum = pool.points().iter().step_by(97).fold(sum, |s, p| {
            s.wrapping_mul(31).wrapping_add(u64::from(p.value))
        });
    }
    println!("{sum}");
    ExitCode::SUCCESS
}
