//! Load-aware and stateful strategies behave as documented.

use chring::prelude::*;
use chring::{
    BackendId, BoundedLoad, LoadAware, Outcome, PowerOfTwo, RingConfig, RoundRobin, Strategy,
};

use crate::common::{equal, fill, keys};

#[test]
fn smooth_weighted_round_robin_sequence() {
    let mut rr = RoundRobin::<4>::new();
    rr.add(BackendId(0), b"a", 5).unwrap();
    rr.add(BackendId(1), b"b", 1).unwrap();
    rr.add(BackendId(2), b"c", 1).unwrap();
    let seq: Vec<u16> = (0..14).map(|_| rr.pick(0).unwrap().0).collect();
    // nginx's documented sequence for weights 5, 1, 1, twice.
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    assert!(!rr.is_keyed());
    rr.set_up(BackendId(0), false).unwrap();
    let seq: Vec<u16> = (0..4).map(|_| rr.pick(0).unwrap().0).collect();
    assert!(seq.iter().all(|&b| b != 0));
}

#[test]
fn bounded_load_caps_every_backend() {
    let mut s = BoundedLoad::<8, 1024, 64>::new(RingConfig::new(100), 1.25).unwrap();
    fill(&mut s, &equal(5));
    // Open many requests without finishing: one hot key.
    let hot = chring::hash(b"hot");
    let first = s.pick(hot).unwrap();
    for _ in 0..1000 {
        let b = s.pick(hot).unwrap();
        s.start(b).unwrap();
        let total: u64 = s.backends().iter().map(|b| u64::from(b.load)).sum();
        for b in s.backends() {
            let cap = (1.25 * (total as f64) / 5.0).ceil() as u64 + 1;
            assert!(u64::from(b.load) <= cap, "load {} > cap {cap}", b.load);
        }
    }
    // With no load in flight it routes as the plain ring.
    for b in s.backends().iter().map(|b| b.id).collect::<Vec<_>>() {
        while s.finish(b, Outcome::default()).is_ok() {}
    }
    assert_eq!(s.pick(hot), Some(first));
    assert_eq!(s.pick(hot), s.ring().lookup(hot));
}

#[test]
fn two_choices_prefers_the_less_loaded() {
    let mut p = PowerOfTwo::<8>::new();
    fill(&mut p, &equal(4));
    for k in keys(2000) {
        let b = p.pick(k).unwrap();
        p.start(b).unwrap();
    }
    let loads: Vec<u32> = p.backends().iter().map(|b| b.load).collect();
    let spread = |l: &[u32]| l.iter().max().unwrap() - l.iter().min().unwrap();
    // One choice (the first of the two, i.e. plain hashing) on the same keys.
    let mut one = [0u32; 4];
    for k in keys(2000) {
        one[(((k >> 32) * 4) >> 32) as usize] += 1;
    }
    assert!(spread(&loads) <= 6, "two choices: {loads:?}");
    assert!(
        spread(&loads) * 4 < spread(&one),
        "{loads:?} vs one choice {one:?}"
    );
}
