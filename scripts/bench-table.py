#!/usr/bin/env python3
"""Prints the README's benchmark tables from criterion's output.

    cargo bench -p chring-benches          # writes target/criterion/
    python3 scripts/bench-table.py         # prints Markdown on stdout

Reads every `<group>/<impl>/<param>/new/{benchmark,estimates}.json` under the
criterion directory (`$CARGO_TARGET_DIR/criterion`, else `target/criterion`),
takes the median point estimate, divides it by the benchmark's throughput
(4096 keys or operations per iteration) and prints one table per group
(lookup u64, lookup str, build, cache, lookups under cache pressure, pick,
ketama pool loads), the cache-against-its-peers tables
(`cache_get_hit`, `cache_get_miss`, `cache_insert_evict`), the memory table (from
`cargo run --release -p chring-benches --example memory -- --json`, run by this
script unless `--memory FILE` or `--no-memory` is given), and the issue's
targets with the measured ratios (`--cache-peers`: only the cache-peer tables
and their targets). The header names the machine (lscpu's model
name and CPU count), the toolchain and the command.

Python 3 standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Display order of the lookup and build rows.
CHRING = [
    "chring-ring",
    "chring-ring-bulk",
    "chring-ring-noindex",
    "chring-ring-noindex-bulk",
    "chring-maglev",
    "chring-maglev-bulk",
    "chring-jump",
    "chring-rendezvous",
    "chring-bounded",
    "chring-modulo",
]
BASELINES = [
    "baseline-search",
    "baseline-search-index",
    "baseline-table",
    "baseline-jump",
]
PEERS = [
    "pingora-ketama",
    "hashring",
    "conhash",
    "hash-rings",
    "mpchash",
    "maglev",
    "jumphash",
    "anchorhash",
    "rendezvous_hash",
]
# Peers built like ketama: many hashed points per backend on a sorted circle.
KETAMA_STYLE = ["pingora-ketama", "hashring", "conhash", "hash-rings"]

# The chring impl each row is compared with (the `x` columns).
COUNTERPART = {
    "chring-ring-bulk": "chring-ring",
    "chring-ring-noindex-bulk": "chring-ring-noindex",
    "chring-maglev-bulk": "chring-maglev",
    "chring-ring-noindex": "chring-ring",
    "baseline-search": "chring-ring-noindex",
    "baseline-search-index": "chring-ring",
    "baseline-table": "chring-maglev",
    "baseline-jump": "chring-jump",
    "pingora-ketama": "chring-ring",
    "hashring": "chring-ring",
    "conhash": "chring-ring",
    "hash-rings": "chring-ring",
    "mpchash": "chring-ring",
    "maglev": "chring-maglev",
    "jumphash": "chring-jump",
    "anchorhash": "chring-jump",
    "rendezvous_hash": "chring-rendezvous",
}

HOW = {
    "chring-ring": "XXH3; prefix index sized to the points (512 entries at n = 5, 16,384 at 100, 65,536 = I at 1000), 100 points / backend",
    "chring-ring-noindex": "XXH3; binary search (I = 0), 100 points / backend",
    "chring-maglev": "XXH3; one read of a 65,537-entry table",
    "chring-jump": "XXH3; jump loop + bucket table",
    "chring-rendezvous": "XXH3 per backend",
    "chring-bounded": "XXH3; ring lookup + capacity check (walks only past overloaded backends), no load",
    "chring-modulo": "XXH3; `% n`",
    "baseline-search": "XXH3; sorted `u32` array, binary search",
    "baseline-search-index": "XXH3; sorted array + 2^16 index",
    "baseline-table": "XXH3; 65,537-entry table read",
    "baseline-jump": "XXH3; the paper's jump loop",
    "pingora-ketama": "CRC-32; binary search, 160 points / backend (fixed)",
    "hashring": "SipHash-2-4; binary search, 100 vnodes / backend",
    "conhash": "MD5 into a `Vec`; `BTreeMap`, 100 replicas / backend",
    "hash-rings": "SipHash-1-3; `BTreeMap`, 100 replicas / backend",
    "mpchash": "XXH3 x 23 probes; skip list, 1 point / backend",
    "maglev": "SipHash-1-3; `% M` table read, M = 65,537",
    "jumphash": "SipHash-1-3; jump loop",
    "anchorhash": "SipHash-1-3; AnchorHash (capacity n) + `HashMap`",
    "rendezvous_hash": "SipHash-1-3 per backend; `Vec` + sort",
}

BUILD_NOTES = {
    "chring-ring": "100 × `add`: a binary-search merge each, index entries shifted, not rebuilt",
    "chring-ring-bulk": "`add_many`: one sort, one index rebuild",
    "chring-ring-noindex-bulk": "`add_many`: one sort",
    "chring-maglev-bulk": "`add_many`: one table rebuild",
    "chring-maglev": "one table rebuild per `add`",
    "pingora-ketama": "no incremental add: add = rebuild with 101",
    "maglev": "no incremental add: add = rebuild with 101",
    "hashring": "add = one `batch_add` of 100 vnodes (one sort)",
    "anchorhash": "capacity 101",
    "baseline-search": "bulk: generate 10,000 points, sort once",
    "baseline-search-index": "bulk, plus the 2^16 index",
}

NS = ["5", "100", "1000"]


def criterion_dir(arg):
    if arg:
        return Path(arg)
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "criterion"


def load(cdir):
    """{(group, function, value): ns per element} from criterion's `new/` runs."""
    out = {}
    for bj in sorted(cdir.glob("**/new/benchmark.json")):
        try:
            meta = json.loads(bj.read_text())
            est = json.loads((bj.parent / "estimates.json").read_text())
        except (OSError, ValueError) as e:
            print(f"warning: skipping {bj}: {e}", file=sys.stderr)
            continue
        elements = 1
        thr = meta.get("throughput") or {}
        for kind in ("Elements", "Bytes", "BytesDecimal"):
            if kind in thr:
                elements = thr[kind]
        key = (meta["group_id"], meta.get("function_id") or "", meta.get("value_str") or "")
        out[key] = est["median"]["point_estimate"] / elements
    return out


def cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine():
    model, cpus = "unknown CPU", str(os.cpu_count() or "?")
    for line in cmd(["lscpu"]).splitlines():
        k, _, v = line.partition(":")
        if k.strip() == "Model name":
            model = v.strip()
        elif k.strip() == "CPU(s)":
            cpus = v.strip()
    rustc = cmd(["rustc", "--version"]).strip() or "rustc ?"
    return f"{model}, {cpus} CPUs (lscpu), {rustc}"


def fmt_ns(ns):
    if ns is None:
        return "—"
    if ns < 10:
        return f"{ns:.2f}"
    if ns < 100:
        return f"{ns:.1f}"
    return f"{ns:,.0f}"


def fmt_us(ns):
    if ns is None:
        return "—"
    us = ns / 1000
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}" if r < 10 else f"{r:,.0f}" if r >= 100 else f"{r:.1f}"


def lookup_table(res, group, title):
    impls = [i for i in CHRING + BASELINES + PEERS if any((group, i, n) in res for n in NS)]
    if not impls:
        return []
    lines = [
        f"### {title}",
        "",
        "ns per lookup (median over 4096 keys per iteration, key hashing included); "
        "× = this row's time ÷ the time of the chring impl in the `vs` column "
        "(above 1: chring is faster).",
        "",
        "| impl | hash; structure | vs | n = 5 | × | n = 100 | × | n = 1000 | × |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in impls:
        vs = COUNTERPART.get(i)
        cells = []
        for n in NS:
            t = res.get((group, i, n))
            cells.append(fmt_ns(t))
            cells.append(ratio(t, res.get((group, vs, n))) if vs else "")
        name = f"**{i}**" if i.startswith("chring") else i
        lines.append(f"| {name} | {HOW.get(i, '')} | {vs or ''} | " + " | ".join(cells) + " |")
    return lines + [""]


def build_table(res):
    impls = [i for i in BASELINES + CHRING + PEERS if ("build", i, "100") in res]
    if not impls:
        return []
    lines = [
        "### Build, n = 100 backends",
        "",
        "µs (median); `add` adds a 101st backend to a built structure of 100 (the copy "
        "it starts from is made outside the timing); × = this row ÷ the chring impl in `vs`.",
        "",
        "| impl | vs | build 100 | × | add one to 100 | × | add ÷ build | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i in impls:
        vs = COUNTERPART.get(i)
        b = res.get(("build", i, "100"))
        a = res.get(("build", i, "add-to-100"))
        rb = ratio(b, res.get(("build", vs, "100"))) if vs else ""
        ra = ratio(a, res.get(("build", vs, "add-to-100"))) if vs else ""
        name = f"**{i}**" if i.startswith("chring") else i
        lines.append(
            f"| {name} | {vs or ''} | {fmt_us(b)} | {rb} | {fmt_us(a)} | {ra} | "
            f"{ratio(a, b)} | {BUILD_NOTES.get(i, '')} |"
        )
    lines.append("")
    lines.append("jumphash has no state to build (the bucket count is a lookup argument).")
    return lines + [""]


def cache_table(res):
    ops = [("get-hit", "get, hit"), ("get-miss", "get, miss"), ("insert-evict", "insert a new key, evicting the LRU entry")]
    if not any(("cache", o, c) in res for o, _ in ops for c in ("1024", "65536")):
        return []
    lines = [
        "### TtlCache<u64, u16, N, Ix>",
        "",
        "ns per operation (median over 4096 operations per iteration); `Ix = u16` at "
        "N = 1024, `u32` at N = 65536.",
        "",
        "| operation | N = 1024 | N = 65536 |",
        "| --- | ---: | ---: |",
    ]
    for o, what in ops:
        lines.append(
            f"| {what} | {fmt_ns(res.get(('cache', o, '1024')))} | "
            f"{fmt_ns(res.get(('cache', o, '65536')))} |"
        )
    return lines + [""]


# The cache peers (issue 11): display order, and what each one is.
CACHE_IMPLS = ["chring", "schnellru", "lru", "hashlink", "quick_cache", "uluru", "const-lru"]
CACHE_STD = ["schnellru", "lru", "hashlink", "quick_cache"]
CACHE_NO_ALLOC = ["uluru", "const-lru"]
CACHE_HOW = {
    "chring": "no alloc; own seeded hash (folded multiply, as foldhash); chained buckets, LRU + expiry lists; TTL tracked",
    "schnellru": "std; ahash (random seed); SwissTable + intrusive LRU list",
    "lru": "std; foldhash; hashbrown map of boxed list nodes",
    "hashlink": "std; foldhash; `LinkedHashMap`",
    "quick_cache": "std; foldhash; S3-FIFO-like CLOCK (not strict LRU), `unsync::Cache`",
    "uluru": "no alloc; no hash: linear walk of an array-backed list (N = 1024 only)",
    "const-lru": "no alloc; no hash: binary search of a sorted index (`Ord`)",
}
CACHE_GROUPS = [
    ("cache_get_hit", "get, hit (key present)"),
    ("cache_get_miss", "get, miss (key absent)"),
    ("cache_insert_evict", "insert a new key into a full cache (evicts one)"),
]
CACHE_NS = ["1024", "65536"]


def cache_peer_tables(res):
    if not any((g, i, n) in res for g, _ in CACHE_GROUPS for i in CACHE_IMPLS for n in CACHE_NS):
        return []
    lines = [
        "### TtlCache against its peers (u64 keys and values)",
        "",
        "ns per operation (median over 4096 operations per iteration, key hashing "
        "included, each cache with its default hasher); × = this row ÷ chring at the "
        "same N (above 1: chring is faster). chring's clock advances one tick per "
        "operation (TTL 2^31 − 1 ticks: nothing expires); the peers track no time.",
        "",
    ]
    for group, title in CACHE_GROUPS:
        impls = [i for i in CACHE_IMPLS if any((group, i, n) in res for n in CACHE_NS)]
        if not impls:
            continue
        lines += [
            f"`{group}`: {title}",
            "",
            "| impl | allocator; hash; structure | N = 1024 | × | N = 65536 | × |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for i in impls:
            cells = []
            for n in CACHE_NS:
                t = res.get((group, i, n))
                cells.append(fmt_ns(t))
                cells.append("" if i == "chring" else ratio(t, res.get((group, "chring", n))))
            name = f"**{i}**" if i == "chring" else i
            lines.append(f"| {name} | {CACHE_HOW.get(i, '')} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def cache_targets(res):
    """The issue-11 goals for `cache_get_hit`, with the measured ratios."""
    lines = []

    def row(what, measured, ok, miss=""):
        verdict = "met" if ok else f"**missed** {miss}".rstrip()
        lines.append(f"| {what} | {measured} | {verdict} |")

    for n in CACHE_NS:
        ours = res.get(("cache_get_hit", "chring", n))
        peers = [(res[("cache_get_hit", p, n)], p) for p in CACHE_STD if ("cache_get_hit", p, n) in res]
        if ours and peers:
            best, who = min(peers)
            x = ours / best
            row(
                f"`get` hit within 1.2× of the fastest std peer, N = {n}",
                f"chring {fmt_ns(ours)} ns vs {who} {fmt_ns(best)} ns: {x:.2f}×",
                x <= 1.2,
                f"(by {(x / 1.2 - 1) * 100:.0f}%: {x:.2f}× of 1.2×)",
            )
    ours = res.get(("cache_get_hit", "chring", "1024"))
    peers = [(res[("cache_get_hit", p, "1024")], p) for p in CACHE_NO_ALLOC if ("cache_get_hit", p, "1024") in res]
    if ours and peers:
        best, who = min(peers)
        x = best / ours
        row(
            "`get` hit ≥ 10× faster than the fastest no-allocator peer, N = 1024",
            f"chring {fmt_ns(ours)} ns vs {who} {fmt_ns(best)} ns: {x:.1f}×",
            x >= 10,
            f"({x:.1f}× of 10×)",
        )
    if not lines:
        return []
    return ["### Targets (issue 11)", "", "| target | measured | verdict |", "| --- | --- | --- |"] + lines + [""]
def cold_table(res):
    ids = ["chring-ring", "pingora-ketama"]
    stream = res.get(("lookup", "stream-only-cold", "100"))
    if not stream or not any(("lookup", f"{i}-cold", "100") in res for i in ids):
        return []
    lines = [
        "### Lookup under cache pressure, n = 100, u64 keys",
        "",
        "ns per lookup; `cold`: each lookup follows a 1 KiB read of a 32 MiB buffer "
        "(sequential, wrapping); lookup cost = cold − stream alone "
        f"({fmt_ns(stream)} ns).",
        "",
        "| impl | hot | cold | cold − stream |",
        "| --- | ---: | ---: | ---: |",
    ]
    for i in ids:
        hot = res.get(("lookup", i, "100"))
        cold = res.get(("lookup", f"{i}-cold", "100"))
        net = cold - stream if cold else None
        name = f"**{i}**" if i.startswith("chring") else i
        lines.append(f"| {name} | {fmt_ns(hot)} | {fmt_ns(cold)} | {fmt_ns(net)} |")
    return lines + [""]


def pick_table(res):
    bs = ["8", "1024", "16384"]
    if not any(("pick", "chring-ring-pick", b) in res for b in bs):
        return []
    lines = [
        "### pick vs lookup, B backends all up, 100 points each",
        "",
        "ns per call (median over 4096 u64 keys); `pick` is `Strategy::pick` "
        "(`Ring::lookup_healthy`), `lookup` ignores health. Target: pick ≤ 1.1 × lookup.",
        "",
        "| B | lookup | pick | pick ÷ lookup |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for b in bs:
        lk = res.get(("pick", "chring-ring-lookup", b))
        pk = res.get(("pick", "chring-ring-pick", b))
        lines.append(f"| {b} | {fmt_ns(lk)} | {fmt_ns(pk)} | {ratio(pk, lk)} |")
    return lines + [""]


def ketama_table(res):
    rows = [
        ("chring-twemproxy-bulk", "128", "`add_many` of 128 servers: one continuum build"),
        ("chring-twemproxy-add", "128", "128 × `add`: one continuum build each"),
        ("chring-twemproxy-bulk", "1024", "`add_many` of 1,024 servers (target ≤ 10 ms)"),
    ]
    if not any(("ketama", i, n) in res for i, n, _ in rows):
        return []
    lines = [
        "### twemproxy ketama pool loads",
        "",
        "ms (median), weight 1, `fnv1a_64`, 160 points per server.",
        "",
        "| load | ms |",
        "| --- | ---: |",
    ]
    for i, n, what in rows:
        t = res.get(("ketama", i, n))
        lines.append(f"| {what} | {'—' if t is None else f'{t / 1e6:.2f}'} |")
    return lines + [""]


def memory_rows(args):
    if args.no_memory:
        return None
    if args.memory:
        return json.loads(Path(args.memory).read_text())
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "chring-benches", "--example", "memory", "--", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"warning: memory example failed:\n{out.stderr}", file=sys.stderr)
        return None
    return json.loads(out.stdout)


def memory_table(rows):
    if not rows:
        return []
    by = {r["id"]: r for r in rows}
    lines = [
        "### Memory, n = 100 backends",
        "",
        "Bytes. chring's structures are sized exactly for 100 backends and own no heap "
        "(`size_of` is all); peers: `size_of` + heap bytes live after the build, measured "
        "with a counting global allocator. × = total ÷ the chring impl in `vs`.",
        "",
        "| impl | structure | vs | total | × | of which heap | peak heap during build | allocations |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        i = r["id"]
        total = r["size_of"] + r["heap"]
        vs = COUNTERPART.get(i)
        x = ""
        if vs and vs in by:
            x = ratio(total, by[vs]["size_of"] + by[vs]["heap"])
        name = f"**{i}**" if i.startswith("chring") else i
        lines.append(
            f"| {name} | {r['what']} | {vs or ''} | {total:,} | {x} | {r['heap']:,} | "
            f"{r['peak']:,} | {r['allocs']:,} |"
        )
    return lines + [""]


def targets(res):
    lines = ["### Targets (issue 5)", "", "| target | measured | verdict |", "| --- | --- | --- |"]

    def row(what, measured, ok, miss=""):
        verdict = "met" if ok else f"**missed** {miss}".rstrip()
        lines.append(f"| {what} | {measured} | {verdict} |")

    for group, label in (("lookup", "u64"), ("lookup_str", "str")):
        ring = res.get((group, "chring-ring", "100"))
        peers = [(res[(group, p, "100")], p) for p in KETAMA_STYLE if (group, p, "100") in res]
        if ring and peers:
            best, who = min(peers)
            x = best / ring
            row(
                f"ring lookup at n = 100 ≥ 5× faster than the fastest ketama-style peer ({label} keys)",
                f"{fmt_ns(ring)} ns vs {who} {fmt_ns(best)} ns: {x:.1f}×",
                x >= 5,
                f"({x:.1f}× of 5×)",
            )
    for impl, base, limit, what in (
        ("chring-maglev", "baseline-table", 1.3, "Maglev within 1.3× of hash + one table read"),
        ("chring-jump", "baseline-jump", 1.2, "jump within 1.2× of a plain jump loop"),
    ):
        for group, label in (("lookup", "u64"), ("lookup_str", "str")):
            parts, worst = [], 0.0
            for n in NS:
                a, b = res.get((group, impl, n)), res.get((group, base, n))
                if a and b:
                    parts.append(f"n={n}: {a / b:.2f}×")
                    worst = max(worst, a / b)
            if parts:
                row(f"{what} ({label} keys)", ", ".join(parts), worst <= limit, f"(worst {worst:.2f}×)")
    for impl in ("chring-ring", "chring-ring-bulk", "chring-ring-noindex", "chring-ring-noindex-bulk"):
        b = res.get(("build", impl, "100"))
        a = res.get(("build", impl.removesuffix("-bulk"), "add-to-100"))
        if b:
            row(f"`{impl}`: build 100 × 100 points < 1 ms", f"{fmt_us(b)} µs", b < 1e6, f"({b / 1e6:.1f}× the budget)")
        if a and b:
            row(f"`{impl}`: add one backend cheaper than rebuilding", f"{fmt_us(a)} µs vs {fmt_us(b)} µs ({b / a:.0f}× cheaper)", a < b)
    return lines + [""]


def targets_hot(res):
    lines = ["### Targets (issue 11, hot paths)", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    n = len(lines)

    def row(what, measured, ok, miss=""):
        verdict = "met" if ok else f"**missed** {miss}".rstrip()
        lines.append(f"| {what} | {measured} | {verdict} |")

    for b in ("8", "1024", "16384"):
        lk, pk = res.get(("pick", "chring-ring-lookup", b)), res.get(("pick", "chring-ring-pick", b))
        if lk and pk:
            row(f"pick ≤ 1.1 × lookup, B = {b}", f"{fmt_ns(pk)} vs {fmt_ns(lk)} ns: {pk / lk:.2f}×", pk <= 1.1 * lk, f"({pk / lk:.2f}×)")
    one = res.get(("build", "chring-ring", "add-to-100"))
    if one:
        row("ring: one add to 100 × 100 points ≤ 30 µs", f"{fmt_us(one)} µs", one <= 30e3, f"({one / 30e3:.1f}× the budget)")
    hundred = res.get(("build", "chring-ring", "100"))
    if hundred:
        row("ring: 100 single adds ≤ 2 ms", f"{fmt_us(hundred)} µs", hundred <= 2e6, f"({hundred / 2e6:.1f}× the budget)")
    k = res.get(("ketama", "chring-twemproxy-bulk", "1024"))
    if k:
        row("ketama: bulk build of 1,024 servers ≤ 10 ms", f"{k / 1e6:.2f} ms", k <= 10e6, f"({k / 10e6:.1f}× the budget)")
    return lines + [""] if len(lines) > n else []


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--criterion", help="criterion output directory (default: $CARGO_TARGET_DIR/criterion or target/criterion)")
    p.add_argument("--memory", help="JSON from `--example memory -- --json` (default: run the example)")
    p.add_argument("--no-memory", action="store_true", help="leave out the memory table")
    p.add_argument("--command", default="cargo bench -p chring-benches", help="the command line to print")
    p.add_argument(
        "--cache-peers",
        action="store_true",
        help="print only the cache-against-its-peers tables and their targets (issue 11)",
    )
    args = p.parse_args()

    cdir = criterion_dir(args.criterion)
    res = load(cdir)
    if not res:
        sys.exit(f"no criterion results under {cdir}: run `cargo bench -p chring-benches` first")

    out = [
        f"Machine: {machine()}. Command: `{args.command}`, then `python3 scripts/bench-table.py"
        f"{' --cache-peers' if args.cache_peers else ''}`. "
        "Medians from criterion.",
        "",
    ]
    if args.cache_peers:
        out += cache_peer_tables(res) + cache_targets(res)
        print("\n".join(out).rstrip())
        return
    out += lookup_table(res, "lookup", "Lookup, u64 keys")
    out += lookup_table(res, "lookup_str", "Lookup, 16-byte string keys (`customer-0012345`)")
    out += build_table(res)
    out += cache_table(res)
    out += cache_peer_tables(res)
    out += cold_table(res)
    out += pick_table(res)
    out += ketama_table(res)
    out += memory_table(memory_rows(args))
    out += targets(res)
    out += targets_hot(res)
    out += cache_targets(res)
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    main()
