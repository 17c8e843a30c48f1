//! The strategy traits as a proxy and a device use them (issue 11): a keyed
//! placement shared between threads and swapped on a fleet change, a chring
//! ring and a twemproxy-compatible ring behind one type, and the auto traits a
//! shared placement needs.

use std::sync::{Arc, RwLock};
use std::thread;

use chring::compat::haproxy::{HashFunction, HashType};
use chring::compat::placement::{HaproxyPlacement, KetamaPlacement, NginxPlacement};
use chring::compat::twemproxy::{Ketama, KeyHash};
use chring::prelude::*;
use chring::{BackendId, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, StrategyKind};

type SharedRing = Ring<16, 2048, 256>;

fn ring_of(n: u16) -> SharedRing {
    let mut r = SharedRing::new(RingConfig::new(100)).unwrap();
    for i in 0..n {
        r.add(BackendId(i), format!("cache-{i}:11211").as_bytes(), 1)
            .unwrap();
    }
    r
}

/// Every placement a proxy may share is `Send + Sync` and `Clone` (the swap
/// clones it), and the traits are object safe with those bounds.
#[test]
fn placements_are_send_sync_clone() {
    fn shared<T: Placement + Membership + Send + Sync + Clone + 'static>() {}
    shared::<SharedRing>();
    shared::<Maglev<16, 1031>>();
    shared::<Jump<16, 64>>();
    shared::<Rendezvous<16>>();
    shared::<Modulo<16>>();
    shared::<NginxPlacement<16, 2048>>();
    shared::<KetamaPlacement<16, 2560>>();
    shared::<HaproxyPlacement<16, 1024>>();
    let _: Option<Arc<dyn Placement + Send + Sync>> = None;
    let _: Option<Box<dyn Strategy + Send>> = None;
}

/// Readers look keys up through a shared `Arc<dyn Placement>` while a writer
/// clones it, removes a backend and swaps the `Arc`: readers never see a
/// half-changed placement (every answer is the old or the new one), and only
/// the removed backend's keys move. Bounded: 3 readers x 20,000 lookups.
#[test]
fn shared_placement_swaps_on_a_fleet_change() {
    let keys: Vec<u64> = (0..2_000u64).map(chring::hash_u64).collect();
    let old = ring_of(8);
    let mut new = old.clone();
    new.remove(BackendId(3)).unwrap();
    let before: Vec<_> = keys.iter().map(|&k| old.lookup(k)).collect();
    let after: Vec<_> = keys.iter().map(|&k| new.lookup(k)).collect();

    let current: Arc<RwLock<Arc<dyn Placement + Send + Sync>>> =
        Arc::new(RwLock::new(Arc::new(old)));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let current = Arc::clone(&current);
            let (keys, before, after) = (keys.clone(), before.clone(), after.clone());
            thread::spawn(move || {
                for i in 0..20_000usize {
                    let j = (i * 7 + t) % keys.len();
                    // Readers hold the lock only to clone the Arc.
                    let p = Arc::clone(&current.read().unwrap());
                    let got = p.lookup(keys[j]);
                    assert!(got == before[j] || got == after[j], "key {j}: {got:?}");
                }
            })
        })
        .collect();
    *current.write().unwrap() = Arc::new(new);
    for r in readers {
        r.join().unwrap();
    }
    for (b, a) in before.iter().zip(&after) {
        assert!(
            b == a || *b == Some(BackendId(3)),
            "only backend 3's keys move"
        );
    }
    let p = Arc::clone(&current.read().unwrap());
    assert_eq!(p.len(), 7);
}

/// A caller switches between a chring ring and a twemproxy-compatible ring
/// behind one type, routing by key with each placement's own key hash; the
/// ketama side agrees with `Ketama::server_for`.
#[test]
fn chring_and_twemproxy_rings_behind_one_type() {
    let names: Vec<String> = (0..5).map(|i| format!("10.0.1.{i}:11211")).collect();
    let mut raw: Ketama<8, 1280> = Ketama::new(KeyHash::Md5);
    let mut balancers: Vec<Box<dyn Strategy>> = vec![
        Box::new(Ring::<8, 1024, 0>::new(RingConfig::new(160)).unwrap()),
        Box::new(KetamaPlacement::<8, 1280>::new(KeyHash::Md5)),
        Box::new(NginxPlacement::<8, 1280>::new()),
    ];
    for (i, n) in names.iter().enumerate() {
        raw.add(n.as_bytes(), 1).unwrap();
        for b in &mut balancers {
            b.add(BackendId(i as u16), n.as_bytes(), 1).unwrap();
        }
    }
    for b in &mut balancers {
        b.set_up(BackendId(4), false).unwrap();
    }
    for k in 0..1_000 {
        let key = format!("session:{k}");
        for b in &mut balancers {
            let p = b.placement().expect("keyed");
            let h = p.key_hash(key.as_bytes());
            let owner = p.lookup(h).expect("five backends");
            let picked = p.pick(h).expect("four up");
            assert_ne!(picked, BackendId(4), "{}", b.name());
            if owner != BackendId(4) && b.name() != "ketama" {
                assert_eq!(picked, owner, "{}", b.name());
            }
            assert_eq!(b.pick(h), Some(picked), "{}", b.name());
            if b.name() == "ketama" {
                let want = raw.server_for(key.as_bytes()).map(|i| BackendId(i as u16));
                assert_eq!(Some(owner), want);
            }
        }
    }
}

/// `StrategyKind` names exactly what each strategy's `name()` returns.
#[test]
fn strategy_kind_names_match_the_strategies() {
    let built: Vec<(StrategyKind, Box<dyn Strategy>)> = vec![
        (
            StrategyKind::Ring,
            Box::new(Ring::<4, 256, 0>::new(RingConfig::new(8)).unwrap()),
        ),
        (StrategyKind::Maglev, Box::new(Maglev::<4, 251>::new())),
        (StrategyKind::Jump, Box::new(Jump::<4, 8>::new())),
        (StrategyKind::Rendezvous, Box::new(Rendezvous::<4>::new())),
        (StrategyKind::Modulo, Box::new(Modulo::<4>::new())),
        (
            StrategyKind::Bounded,
            Box::new(chring::BoundedLoad::<4, 256>::new(RingConfig::new(8), 1.25).unwrap()),
        ),
        (StrategyKind::P2c, Box::new(chring::PowerOfTwo::<4>::new())),
        (
            StrategyKind::RoundRobin,
            Box::new(chring::RoundRobin::<4>::new()),
        ),
    ];
    assert_eq!(built.len(), StrategyKind::ALL.len());
    for ((kind, s), want) in built.iter().zip(StrategyKind::ALL) {
        assert_eq!(*kind, want);
        assert_eq!(s.name(), kind.name());
        assert_eq!(s.is_keyed(), kind.is_key_affine());
        assert_eq!(s.placement().is_some(), kind.is_key_affine());
        assert_eq!(kind.name().parse::<StrategyKind>(), Ok(*kind));
    }
    let h = HaproxyPlacement::<4, 256>::new(HashType::new(HashFunction::Sdbm, true));
    assert_eq!(h.name(), "haproxy");
}
