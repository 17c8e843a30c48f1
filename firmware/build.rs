//! Build script: puts each binary's `memory.x` where cortex-m-rt's `link.x` finds it, and turns
//! the golden vectors (`../tests/data/golden.csv`, made by the independent Python
//! reference `tests/data/reference.py`) into a compact table for the target.
//!
//! The CSV is ~140 KB of text; the firmware's flash budget is 64 KiB. Its keys
//! follow a formula (`customer-%05d` for i in 0..100, then the u64s `i * 7919`), so
//! this script checks that every row's key is the one the formula gives at that
//! position and emits only the expected backend ids, one byte each
//! (`OUT_DIR/golden.rs`). The target rebuilds every key and hashes it itself.
//! Anything unexpected in the CSV fails the build with a message saying what.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// Table order; `src/golden.rs` has enums in the same order (a unit test checks).
const FLEETS: [&str; 4] = ["equal5", "weighted", "added6", "removed"];
const STRATEGIES: [&str; 6] = ["ring", "ring64", "maglev", "jump", "rendezvous", "modulo"];
/// Keys per (fleet, strategy): 100 strings, then 100 integers.
const STRING_KEYS: usize = 100;
const U64_KEYS: usize = 100;
const KEYS: usize = STRING_KEYS + U64_KEYS;
const U64_KEY_STEP: u64 = 7919;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    // memory.x: cortex-m-rt's link.x INCLUDEs it. Each binary gets its own
    // search directory holding its budget's memory.x: 64 KiB / 32 KiB
    // (memory/default.x) for all but udplb, 128 KiB / 64 KiB (memory/udplb.x)
    // for udplb. No file named memory.x may sit in firmware/ itself: the
    // linker runs there and looks in its working directory before any -L.
    for (file, bins) in [
        ("default", &["balancer", "hil"][..]),
        ("udplb", &["udplb"][..]),
    ] {
        let src = manifest.join("memory").join(format!("{file}.x"));
        let dir = out.join("memory").join(file);
        fs::create_dir_all(&dir).expect("create a memory.x directory in OUT_DIR");
        fs::copy(&src, dir.join("memory.x"))
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dir.display()));
        for bin in bins {
            println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        }
        println!("cargo:rerun-if-changed={}", src.display());
    }

    let csv = manifest.join("../tests/data/golden.csv");
    println!("cargo:rerun-if-changed={}", csv.display());
    let text = fs::read_to_string(&csv)
        .unwrap_or_else(|e| panic!("cannot read the golden vectors {}: {e}", csv.display()));
    let table = parse(&csv, &text).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    fs::write(out.join("golden.rs"), emit(&table)).expect("write golden.rs");
}

/// The key the reference puts at position `i` of every (fleet, strategy) run.
fn expected_key(i: usize) -> String {
    if i < STRING_KEYS {
        format!("s:customer-{i:05}")
    } else {
        format!("u:{}", (i - STRING_KEYS) as u64 * U64_KEY_STEP)
    }
}

/// `table[strategy][fleet][key]` = expected backend id.
type Table = Vec<Vec<Vec<u8>>>;

fn parse(path: &Path, text: &str) -> Result<Table, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "fleet,strategy,key,backend")) => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    let mut runs: BTreeMap<(usize, usize), Vec<u8>> = BTreeMap::new();
    for (n, line) in lines {
        let at = || format!("{}:{}", path.display(), n + 1);
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let [fleet, strategy, key, backend] = f[..] else {
            return Err(format!("{}: expected 4 fields, got {line:?}", at()));
        };
        let fi = FLEETS
            .iter()
            .position(|&x| x == fleet)
            .ok_or_else(|| format!("{}: unknown fleet {fleet:?} (known: {FLEETS:?})", at()))?;
        let si = STRATEGIES
            .iter()
            .position(|&x| x == strategy)
            .ok_or_else(|| {
                format!(
                    "{}: unknown strategy {strategy:?} (known: {STRATEGIES:?})",
                    at()
                )
            })?;
        let run = runs.entry((si, fi)).or_default();
        let want = expected_key(run.len());
        if run.len() >= KEYS || key != want {
            return Err(format!(
                "{}: key {key:?} at position {} of {fleet}/{strategy}; the firmware rebuilds \
                 keys from the formula and expected {want:?} there (did reference.py change?)",
                at(),
                run.len()
            ));
        }
        let id: u8 = backend
            .parse()
            .ok()
            .filter(|&b: &u8| b < 16)
            .ok_or_else(|| format!("{}: backend {backend:?} is not an id below 16", at()))?;
        run.push(id);
    }
    let mut table = vec![vec![Vec::new(); FLEETS.len()]; STRATEGIES.len()];
    for (si, strategy) in STRATEGIES.iter().enumerate() {
        for (fi, fleet) in FLEETS.iter().enumerate() {
            let run = runs.remove(&(si, fi)).unwrap_or_default();
            if run.len() != KEYS {
                return Err(format!(
                    "{fleet}/{strategy}: {} keys, expected {KEYS}",
                    run.len()
                ));
            }
            table[si][fi] = run;
        }
    }
    Ok(table)
}

fn emit(table: &Table) -> String {
    let mut s = String::new();
    s.push_str("// @generated by build.rs from tests/data/golden.csv: do not edit.\n");
    let _ = writeln!(s, "/// Fleet names, in table order.");
    let _ = writeln!(
        s,
        "pub(crate) const FLEET_NAMES: [&str; {}] = {FLEETS:?};",
        FLEETS.len()
    );
    let _ = writeln!(s, "/// Strategy names, in table order.");
    let _ = writeln!(
        s,
        "pub(crate) const STRATEGY_NAMES: [&str; {}] = {STRATEGIES:?};",
        STRATEGIES.len()
    );
    let _ = writeln!(s, "/// Keys per (strategy, fleet) run.");
    let _ = writeln!(s, "pub(crate) const KEYS: usize = {KEYS};");
    let _ = writeln!(
        s,
        "/// String keys (`customer-%05d`) come first; then `u64`s."
    );
    let _ = writeln!(s, "pub(crate) const STRING_KEYS: usize = {STRING_KEYS};");
    let _ = writeln!(s, "/// The `u64` keys are `i * U64_KEY_STEP`.");
    let _ = writeln!(s, "pub(crate) const U64_KEY_STEP: u64 = {U64_KEY_STEP};");
    let _ = writeln!(
        s,
        "/// `EXPECTED[strategy][fleet][key]`: the reference's backend id."
    );
    let _ = writeln!(
        s,
        "pub(crate) static EXPECTED: [[[u8; {KEYS}]; {}]; {}] = [",
        FLEETS.len(),
        STRATEGIES.len()
    );
    for per_fleet in table {
        s.push_str("    [\n");
        for run in per_fleet {
            s.push_str("        [");
            for (i, id) in run.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{id}");
            }
            s.push_str("],\n");
        }
        s.push_str("    ],\n");
    }
    s.push_str("];\n");
    s
}
