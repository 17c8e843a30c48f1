#!/usr/bin/env python3
"""Reference implementation of chring's placement contract, written from DESIGN.md.

It shares no code with the Rust crate: it uses the `xxhash` package (the C
reference implementation of XXH3) and plain Python. `golden.csv` is its output;
`tests/tests/golden.rs` checks that chring routes every key exactly as it does.

Regenerate (only when the contract changes on purpose):
    pip install xxhash
    python3 tests/data/reference.py > tests/data/golden.csv
    python3 tests/data/reference.py --hash > tests/data/hash_golden.csv
    python3 tests/data/reference.py --maglev > tests/data/maglev_golden.csv
"""
import math
import struct
import sys
from fractions import Fraction

import xxhash

M64 = (1 << 64) - 1


def h(b: bytes) -> int:
    return xxhash.xxh3_64_intdigest(b)


def hash_u64(x: int) -> int:
    return h(struct.pack("<Q", x))


def mix(x: int, seed: int) -> int:
    return xxhash.xxh3_64_intdigest(struct.pack("<Q", x), seed=seed)


def pos(key_hash: int) -> int:
    return key_hash >> 32


def reduce32(x: int, n: int) -> int:
    return (x * n) >> 32


# ---- strategies -------------------------------------------------------------

def ring_lookup(fleet, vnodes, kh):
    pts = []
    for bid, name, w in fleet:
        nh = h(name)
        for i in range(vnodes * w):
            pts.append((pos(mix(nh, i)), nh, bid))
    pts.sort()
    kp = pos(kh)
    for p, _, bid in pts:
        if p >= kp:
            return bid
    return pts[0][2]


def modulo_lookup(fleet, kh):
    total = sum(w for _, _, w in fleet)
    x = kh % total
    for bid, _, w in fleet:
        if x < w:
            return bid
        x -= w


def rendezvous_lookup(fleet, kh):
    equal = len({w for _, _, w in fleet}) == 1
    best = None
    for bid, name, w in fleet:
        nh = h(name)
        s = mix(kh, nh)
        if equal:
            score = (s, nh)
        else:
            u = ((s >> 11) + 0.5) * (1.0 / 9007199254740992.0)
            score = (w / -math.log(u), s, nh)
        if best is None or score > best[0]:
            best = (score, bid)
    return best[1]


def jump_hash(key: int, n: int) -> int:
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & M64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return max(b, 0)


def jump_lookup(buckets, kh):
    """buckets: list of backend ids, None for a hole."""
    n = len(buckets)
    k = kh
    last = 0
    for attempt in range(32):
        last = jump_hash(k, n)
        if buckets[last] is not None:
            return buckets[last]
        k = mix(kh, attempt + 1)
    for d in range(1, n + 1):
        b = buckets[(last + d) % n]
        if b is not None:
            return b


OFFSET_SEED = 0x6D61676C65766F66
SKIP_SEED = 0x6D61676C6576736B


def maglev_table(fleet, m):
    """Weighted Maglev (DESIGN.md, "Maglev"): turn t = 0, 1, ... of a backend of
    weight w comes at time (2t + 1) / 2w; turns are taken in order of time (exact
    fractions), ties in insertion order; each claims the backend's next unclaimed
    entry of its permutation, until the table is full."""
    table = [None] * m
    nxt, skips, turns = [], [], []
    for _, name, _ in fleet:
        nh = h(name)
        nxt.append(mix(nh, OFFSET_SEED) % m)
        skips.append(mix(nh, SKIP_SEED) % (m - 1) + 1)
        turns.append(0)
    for _ in range(m):
        i = min(range(len(fleet)), key=lambda i: (Fraction(2 * turns[i] + 1, 2 * fleet[i][2]), i))
        while True:
            c = nxt[i]
            nxt[i] = (nxt[i] + skips[i]) % m
            if table[c] is None:
                table[c] = fleet[i][0]
                break
        turns[i] += 1
    return table


# ---- fleets (id, name, weight) and their jump bucket tables -----------------

EQUAL5 = [(i, f"server-{i}".encode(), 1) for i in range(5)]
WEIGHTED = [(i, f"10.0.0.{i + 1}:11211".encode(), w) for i, w in enumerate([1, 1, 2, 1, 3])]
ADDED6 = EQUAL5 + [(5, b"server-5", 1)]
REMOVED = [b for b in EQUAL5 if b[0] != 2]

FLEETS = {
    "equal5": (EQUAL5, [0, 1, 2, 3, 4]),
    "weighted": (WEIGHTED, [0, 1, 2, 2, 3, 4, 4, 4]),
    "added6": (ADDED6, [0, 1, 2, 3, 4, 5]),
    # server-2 removed from equal5: its bucket becomes a hole.
    "removed": (REMOVED, [0, 1, None, 3, 4]),
}

KEYS = [("s", f"customer-{i:05d}") for i in range(100)] + [("u", str(i * 7919)) for i in range(100)]


def key_hash(kind, text):
    return h(text.encode()) if kind == "s" else hash_u64(int(text))


def hash_main():
    out = sys.stdout
    out.write("function,input,seed,output\n")
    texts = ["", "a", "abc", "customer-00042", "0123456789abcdef", "x" * 100, "\u00e9t\u00e9 \u2603", "10.0.0.7:11211"]
    for t in texts:
        b = t.encode()
        out.write(f"hash,{b.hex()},0,{h(b):016x}\n")
        for seed in (1, 0xDEADBEEF):
            out.write(f"hash_seeded,{b.hex()},{seed},{xxhash.xxh3_64_intdigest(b, seed=seed):016x}\n")
    for x in (0, 1, 42, 0xFFFFFFFF, (1 << 64) - 1, 0x0123456789ABCDEF):
        out.write(f"hash_u64,{x:016x},0,{hash_u64(x):016x}\n")
        for seed in (0, 7, (1 << 64) - 1):
            out.write(f"mix,{x:016x},{seed},{mix(x, seed):016x}\n")


# Weighted Maglev with weights large next to M (issue 10): before the turns were
# interleaved, these split the table by the weights' size, not their ratio.
# (name, M, [(id, name, weight)], ids marked down)
MAGLEV_FLEETS = [
    ("big_equal", 4099, [(0, b"10.0.0.1:11211", 65535), (1, b"10.0.0.2:11211", 65535)], []),
    ("equal3_100", 1031, [(i, f"10.0.0.{i + 1}:11211".encode(), 100) for i in range(3)], []),
    # WEIGHTED with every weight x 8191: the same table as WEIGHTED.
    ("scaled", 4099, [(i, n, w * 8191) for i, n, w in WEIGHTED], []),
    ("mixed", 4099, [(i, f"10.0.0.{i + 1}:11211".encode(), w)
                     for i, w in enumerate([40271, 19847, 4589, 23250, 4410])], []),
    # mixed with backend 1 marked down: left out of the table.
    ("mixed_down", 4099, [(i, f"10.0.0.{i + 1}:11211".encode(), w)
                          for i, w in enumerate([40271, 19847, 4589, 23250, 4410])], [1]),
]


def maglev_main():
    out = sys.stdout
    out.write("fleet,m,key,backend\n")
    for fname, m, fleet, down in MAGLEV_FLEETS:
        table = maglev_table([b for b in fleet if b[0] not in down], m)
        for kind, text in KEYS:
            kh = key_hash(kind, text)
            out.write(f"{fname},{m},{kind}:{text},{table[reduce32(pos(kh), m)]}\n")


def main():
    if sys.argv[1:] == ["--hash"]:
        return hash_main()
    if sys.argv[1:] == ["--maglev"]:
        return maglev_main()
    out = sys.stdout
    out.write("fleet,strategy,key,backend\n")
    for fname, (fleet, buckets) in FLEETS.items():
        tables = {"maglev": maglev_table(fleet, 4099)}
        for kind, text in KEYS:
            kh = key_hash(kind, text)
            rows = [
                ("ring", ring_lookup(fleet, 100, kh)),
                ("ring64", ring_lookup(fleet, 64, kh)),
                ("maglev", tables["maglev"][reduce32(pos(kh), 4099)]),
                ("jump", jump_lookup(buckets, kh)),
                ("rendezvous", rendezvous_lookup(fleet, kh)),
                ("modulo", modulo_lookup(fleet, kh)),
            ]
            for strat, bid in rows:
                out.write(f"{fname},{strat},{kind}:{text},{bid}\n")


if __name__ == "__main__":
    main()
