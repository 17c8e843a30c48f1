//! Balance of keys over backends: vnodes and weights.

use chring::{Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy};

use crate::common::{counts, cov, equal, fill, keys, route, weighted};

const VNODES: [u32; 9] = [1, 2, 5, 10, 20, 50, 100, 200, 500];

/// Coefficient of variation of keys per backend for 5 backends named
/// `{prefix}server-{i}`.
fn ring_cov(prefix: &str, vnodes: u32, ks: &[u64]) -> f64 {
    let mut r = Ring::<8, 4096, 1024>::new(RingConfig::new(vnodes)).unwrap();
    let fleet: Vec<_> = equal(5)
        .into_iter()
        .map(|(i, n, w)| (i, [prefix.as_bytes(), &n].concat(), w))
        .collect();
    fill(&mut r, &fleet);
    cov(&counts(&route(&mut r, ks), 5))
}

/// Scenario C's claim: 5 backends, 10,000 keys: the coefficient of variation of
/// keys per backend falls as vnodes grow and is below 0.10 at 100 vnodes.
///
/// One fleet is one sample of the point placement, so the trend is measured as
/// the mean over 20 fleets (names `f{j}-server-{i}`), where it must fall at every
/// step; the Scenario-C fleet (`server-0..4`) must meet the thresholds on its own.
#[test]
fn cov_falls_with_vnodes() {
    let ks = keys(10_000);
    let mean: Vec<f64> = VNODES
        .iter()
        .map(|&v| {
            (0..20)
                .map(|j| ring_cov(&format!("f{j}-"), v, &ks))
                .sum::<f64>()
                / 20.0
        })
        .collect();
    let single: Vec<f64> = VNODES.iter().map(|&v| ring_cov("", v, &ks)).collect();
    eprintln!("vnodes      {VNODES:?}\nmean cov    {mean:.3?}\nserver-0..4 {single:.3?}");
    for w in mean.windows(2) {
        assert!(w[1] < w[0], "mean cov must fall at every step: {mean:.3?}");
    }
    let at = |c: &[f64], v: u32| c[VNODES.iter().position(|&x| x == v).unwrap()];
    assert!(at(&mean, 100) < 0.10, "mean cov(100) = {}", at(&mean, 100));
    assert!(at(&mean, 100) < 0.2 * at(&mean, 1));
    assert!(at(&single, 100) < 0.10, "cov(100) = {}", at(&single, 100));
    assert!(at(&single, 100) < 0.2 * at(&single, 1));
}

#[test]
fn keys_follow_weights() {
    let ks = keys(100_000);
    let ws = [1u32, 1, 2, 1, 3];
    let total: u32 = ws.iter().sum();
    let mut cases: Vec<(Box<dyn Strategy>, f64)> = vec![
        (
            Box::new(Ring::<8, 4096, 1024>::new(RingConfig::new(160)).unwrap()),
            0.15,
        ),
        (Box::new(Maglev::<8, 65_537>::new()), 0.03),
        (Box::new(Jump::<8, 64>::new()), 0.03),
        (Box::new(Rendezvous::<8>::new()), 0.03),
        (Box::new(Modulo::<8>::new()), 0.03),
    ];
    for (s, tol) in cases.iter_mut() {
        fill(s.as_mut(), &weighted(&ws));
        let c = counts(&route(s.as_mut(), &ks), 5);
        for (i, &w) in ws.iter().enumerate() {
            let want = ks.len() as f64 * f64::from(w) / f64::from(total);
            let err = (c[i] - want).abs() / want;
            assert!(
                err < *tol,
                "{} backend {i}: {} vs {want} ({err:.3})",
                s.name(),
                c[i]
            );
        }
    }
}
