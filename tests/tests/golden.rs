//! Golden vectors: `tests/data/golden.csv` and `hash_golden.csv` come from
//! `tests/data/reference.py`, an independent Python implementation of the
//! placement contract over the C reference XXH3. Every key must route the same.

use std::collections::BTreeMap;

use chring::{BackendId, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy};

use crate::common::{Fleet, equal, fill, weighted};

fn data(name: &str) -> String {
    let path = format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fleet(name: &str) -> Fleet {
    match name {
        "equal5" => equal(5),
        "weighted" => weighted(&[1, 1, 2, 1, 3]),
        "added6" => equal(6),
        "removed" => equal(5),
        _ => panic!("unknown fleet {name}"),
    }
}

/// Builds the strategy named in the CSV on the named fleet, replaying the same
/// fleet changes as the reference (`removed` = equal5, then remove server-2).
fn build(fleet_name: &str, strategy: &str) -> Box<dyn Strategy> {
    let mut s: Box<dyn Strategy> = match strategy {
        "ring" => Box::new(Ring::<8, 2048, 256>::new(RingConfig::new(100)).unwrap()),
        "ring64" => Box::new(Ring::<8, 1024, 0>::new(RingConfig::new(64)).unwrap()),
        "maglev" => Box::new(Maglev::<8, 4099>::new()),
        "jump" => Box::new(Jump::<8, 64>::new()),
        "rendezvous" => Box::new(Rendezvous::<8>::new()),
        "modulo" => Box::new(Modulo::<8>::new()),
        _ => panic!("unknown strategy {strategy}"),
    };
    fill(s.as_mut(), &fleet(fleet_name));
    if fleet_name == "removed" {
        s.remove(BackendId(2)).unwrap();
    }
    s
}

fn key_hash(key: &str) -> u64 {
    match key.split_once(':') {
        Some(("s", text)) => chring::hash(text.as_bytes()),
        Some(("u", n)) => chring::hash_u64(n.parse().unwrap()),
        _ => panic!("bad key {key}"),
    }
}

#[test]
fn every_key_routes_like_the_reference() {
    let csv = data("golden.csv");
    let mut rows: BTreeMap<(String, String), Vec<(String, u16)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        rows.entry((f[0].into(), f[1].into()))
            .or_default()
            .push((f[2].into(), f[3].parse().unwrap()));
    }
    assert_eq!(rows.len(), 4 * 6, "fleets x strategies");
    let mut checked = 0;
    for ((fleet_name, strategy), keys) in &rows {
        let mut s = build(fleet_name, strategy);
        assert_eq!(keys.len(), 200);
        for (key, want) in keys {
            let got = s.pick(key_hash(key));
            assert_eq!(got, Some(BackendId(*want)), "{fleet_name}/{strategy}/{key}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4800);
}

#[test]
fn hash_matches_reference_xxh3() {
    let csv = data("hash_golden.csv");
    let mut n = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let seed: u64 = f[2].parse().unwrap();
        let want = u64::from_str_radix(f[3], 16).unwrap();
        let bytes: Vec<u8> = (0..f[1].len() / 2)
            .map(|i| u8::from_str_radix(&f[1][2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let got = match f[0] {
            "hash" => chring::hash(&bytes),
            "hash_seeded" => chring::hash_seeded(&bytes, seed),
            "hash_u64" => chring::hash_u64(u64::from_str_radix(f[1], 16).unwrap()),
            "mix" => chring::mix(u64::from_str_radix(f[1], 16).unwrap(), seed),
            other => panic!("unknown function {other}"),
        };
        assert_eq!(got, want, "{line}");
        n += 1;
    }
    assert_eq!(n, 48);
}

/// Issue 10: weighted Maglev with weights large next to `M` (where a backend
/// taking `w` turns in a row split the table by the weights' size) routes as the
/// reference's interleaved turns do (`maglev_golden.csv`, `reference.py --maglev`).
#[test]
fn weighted_maglev_routes_like_the_reference() {
    let fleet = |name: &str| -> (Vec<u32>, Vec<u16>) {
        let mixed = vec![40_271, 19_847, 4589, 23_250, 4410];
        match name {
            "big_equal" => (vec![65_535, 65_535], vec![]),
            "equal3_100" => (vec![100, 100, 100], vec![]),
            "scaled" => ([1, 1, 2, 1, 3].iter().map(|w| w * 8191).collect(), vec![]),
            "mixed" => (mixed, vec![]),
            "mixed_down" => (mixed, vec![1]),
            _ => panic!("unknown fleet {name}"),
        }
    };
    fn build<const M: usize>(weights: &[u32], down: &[u16]) -> Box<dyn Strategy> {
        let mut m = Box::new(Maglev::<8, M>::new());
        fill(m.as_mut(), &weighted(weights));
        for &id in down {
            m.set_up(BackendId(id), false).unwrap();
        }
        m
    }
    let csv = data("maglev_golden.csv");
    let mut rows: BTreeMap<(String, String), Vec<(String, u16)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        rows.entry((f[0].into(), f[1].into()))
            .or_default()
            .push((f[2].into(), f[3].parse().unwrap()));
    }
    assert_eq!(rows.len(), 5, "fleets");
    let mut checked = 0;
    for ((name, m), keys) in &rows {
        let (weights, down) = fleet(name);
        let mut s = match m.as_str() {
            "1031" => build::<1031>(&weights, &down),
            "4099" => build::<4099>(&weights, &down),
            _ => panic!("no table size {m}"),
        };
        for (key, want) in keys {
            assert_eq!(
                s.pick(key_hash(key)),
                Some(BackendId(*want)),
                "{name}/{m}/{key}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 1000);
}
