//! Fleets and helpers shared by the integration tests.

use chring::{BackendId, Strategy};

/// `(id, name, weight)`.
pub(crate) type Fleet = Vec<(u16, Vec<u8>, u32)>;

pub(crate) fn equal(n: u16) -> Fleet {
    (0..n)
        .map(|i| (i, format!("server-{i}").into_bytes(), 1))
        .collect()
}

pub(crate) fn weighted(weights: &[u32]) -> Fleet {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (i as u16, format!("10.0.0.{}:11211", i + 1).into_bytes(), w))
        .collect()
}

pub(crate) fn fill<S: Strategy + ?Sized>(s: &mut S, fleet: &Fleet) {
    for (id, name, w) in fleet {
        s.add(BackendId(*id), name, *w).expect("add");
    }
}

pub(crate) fn keys(n: u64) -> Vec<u64> {
    (0..n).map(chring::hash_u64).collect()
}

pub(crate) fn route<S: Strategy + ?Sized>(s: &mut S, keys: &[u64]) -> Vec<BackendId> {
    keys.iter()
        .map(|&k| s.pick(k).expect("non-empty"))
        .collect()
}

/// Coefficient of variation (population standard deviation / mean).
pub(crate) fn cov(counts: &[f64]) -> f64 {
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<f64>() / n;
    let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean
}

pub(crate) fn counts(assign: &[BackendId], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n];
    for a in assign {
        c[a.0 as usize] += 1.0;
    }
    c
}
