//! Prints the RAM each chring structure takes for a few typical configurations
//! (`core::mem::size_of`, exactly what a `static` of that type costs).
//!
//! Run: `cargo run -p chring --example footprint`

use chring::{Jump, Maglev, Modulo, Rendezvous, Ring, TtlCache};
use std::mem::size_of;

fn row(what: &str, bytes: usize, per: &str) {
    println!("| {what} | {bytes} | {per} |");
}

fn main() {
    println!("| structure | bytes | note |");
    println!("| --- | ---: | --- |");
    row(
        "ring point",
        Ring::<8, 512, 0>::bytes_per_point(),
        "u32 position + u16 slot + u16 id",
    );
    row(
        "`Ring<8, 512, 0>` (8 backends x 64 points, no index)",
        size_of::<Ring<8, 512, 0>>(),
        "the firmware's ring",
    );
    row(
        "`Ring<8, 512, 256>` (same, 256-entry prefix index)",
        size_of::<Ring<8, 512, 256>>(),
        "+4 B per index entry",
    );
    row(
        "`Ring<128, 16384, 16384>` (100 x 100 points, 2^14 index)",
        size_of::<Ring<128, 16384, 16384>>(),
        "host-sized",
    );
    row(
        "cache entry, `TtlCache<u64, u16, N, u16>`",
        TtlCache::<u64, u16, 1, u16>::bytes_per_entry(),
        "key 8 + value 2 + stamp 4 + 6 links x 2",
    );
    row(
        "cache entry, `TtlCache<u32, u16, N, u16>`",
        TtlCache::<u32, u16, 1, u16>::bytes_per_entry(),
        "32-bit flow key",
    );
    row(
        "cache entry, `TtlCache<u64, (), N, u32>`",
        TtlCache::<u64, (), 1, u32>::bytes_per_entry(),
        "the simulator's per-server cache",
    );
    row(
        "`TtlCache<u64, u16, 1024, u16>`",
        size_of::<TtlCache<u64, u16, 1024, u16>>(),
        "a 1024-flow table",
    );
    row(
        "`Maglev<8, 4099>`",
        size_of::<Maglev<8, 4099>>(),
        "2 B per table entry",
    );
    row("`Maglev<128, 65537>`", size_of::<Maglev<128, 65537>>(), "");
    row(
        "`Jump<128, 128>`",
        size_of::<Jump<128, 128>>(),
        "4 B per bucket (id + health)",
    );
    row(
        "`Rendezvous<128>`",
        size_of::<Rendezvous<128>>(),
        "fleet table only",
    );
    row(
        "`Modulo<128>`",
        size_of::<Modulo<128>>(),
        "fleet + cumulative weights",
    );
}
