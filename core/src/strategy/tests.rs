//! The trait contract, run over every implementor by one generic function.

use super::*;
use crate::RingConfig;
use crate::fleet::LoadError;
use proptest::prelude::{ProptestConfig, any, proptest};

/// Checks the [`Placement`] contract on `p` (given `n` backends, ids `0..n`,
/// named `name(id)`) for `keys`: empty → `None`; `lookup` ignores health; `pick` never
/// returns a down backend; `pick == lookup` when all are up; the [`Strategy`]
/// view agrees with the placement.
pub(crate) fn check_placement<P>(
    mut p: P,
    n: u16,
    down: &[u16],
    keys: &[u64],
    name: fn(u16) -> String,
) where
    P: Placement + Membership + Strategy + Clone,
{
    // Empty: nothing to return.
    for &k in keys.iter().take(8) {
        assert_eq!(Placement::lookup(&p, k), None, "{}: empty lookup", p.name());
        assert_eq!(Placement::pick(&p, k), None, "{}: empty pick", p.name());
        assert_eq!(LoadAware::pick(&mut p, k), None);
    }
    for i in 0..n {
        Membership::add(
            &mut p,
            BackendId(i),
            name(i).as_bytes(),
            1 + u32::from(i % 3),
        )
        .unwrap();
    }
    assert_eq!(FleetView::len(&p), usize::from(n));
    assert!(Strategy::is_keyed(&p));
    let all_up: Vec<_> = keys.iter().map(|&k| Placement::lookup(&p, k)).collect();
    for (&k, &owner) in keys.iter().zip(&all_up) {
        assert!(owner.is_some(), "{}: lookup with backends", p.name());
        assert_eq!(
            Placement::pick(&p, k),
            owner,
            "{}: pick == lookup when all up",
            p.name()
        );
        assert_eq!(p.placement().and_then(|q| q.pick(k)), owner);
        assert_eq!(LoadAware::pick(&mut p, k), owner);
    }
    for &d in down {
        Membership::set_up(&mut p, BackendId(d), false).unwrap();
    }
    let up = |id: BackendId| !down.contains(&id.0);
    let any_up = (0..n).any(|i| up(BackendId(i)));
    for (&k, &owner) in keys.iter().zip(&all_up) {
        assert_eq!(
            Placement::lookup(&p, k),
            owner,
            "{}: lookup ignores health",
            p.name()
        );
        let picked = Placement::pick(&p, k);
        match picked {
            Some(id) => assert!(up(id), "{}: picked a down backend", p.name()),
            None => assert!(!any_up, "{}: pick None with a backend up", p.name()),
        }
        if owner.is_some_and(up)
            && p.name() != "maglev"
            && p.name() != "ketama"
            && p.name() != "haproxy"
        {
            // Strategies that fail over without rebuilding keep an up owner.
            assert_eq!(picked, owner, "{}: an up owner keeps its key", p.name());
        }
        assert_eq!(LoadAware::pick(&mut p, k), picked);
    }
    // Load feedback is counted and checked, whatever the strategy does with it.
    let id = BackendId(0);
    LoadAware::start(&mut p, id).unwrap();
    assert_eq!(FleetView::backends(&p)[0].load, 1);
    LoadAware::finish(&mut p, id, Outcome::new(120, true, u64::MAX)).unwrap();
    assert_eq!(
        LoadAware::finish(&mut p, id, Outcome::default()),
        Err(LoadError::NotStarted)
    );
    assert_eq!(
        LoadAware::start(&mut p, BackendId(u16::MAX)),
        Err(LoadError::Unknown(UnknownBackend(BackendId(u16::MAX))))
    );
    // Everything down: lookup still places, pick has nowhere to go.
    for i in 0..n {
        Membership::set_up(&mut p, BackendId(i), false).unwrap();
    }
    for (&k, &owner) in keys.iter().zip(&all_up) {
        assert_eq!(Placement::lookup(&p, k), owner);
        assert_eq!(Placement::pick(&p, k), None);
    }
    // Removing everything empties it again.
    for i in 0..n {
        Membership::remove(&mut p, BackendId(i)).unwrap();
    }
    assert!(FleetView::is_empty(&p));
    assert_eq!(Placement::lookup(&p, keys[0]), None);
    assert_eq!(
        Membership::remove(&mut p, BackendId(0)),
        Err(UnknownBackend(BackendId(0)))
    );
}

/// `backend-<i>`.
pub(crate) fn backend_name(i: u16) -> String {
    format!("backend-{i}")
}

fn keys() -> Vec<u64> {
    (0..2000u64).map(crate::hash_u64).collect()
}

/// Runs the contract on every keyed strategy of the crate.
fn check_all(n: u16, down: &[u16], keys: &[u64]) {
    check_placement(
        Ring::<16, 4096, 256>::new(RingConfig::new(64)).unwrap(),
        n,
        down,
        keys,
        backend_name,
    );
    check_placement(
        Ring::<16, 4096, 0>::new(RingConfig::new(64)).unwrap(),
        n,
        down,
        keys,
        backend_name,
    );
    check_placement(
        Box::new(Maglev::<16, 1031>::new()).as_ref().clone(),
        n,
        down,
        keys,
        backend_name,
    );
    check_placement(Jump::<16, 64>::new(), n, down, keys, backend_name);
    check_placement(Rendezvous::<16>::new(), n, down, keys, backend_name);
    check_placement(Modulo::<16>::new(), n, down, keys, backend_name);
}

#[test]
fn contract_holds_for_every_keyed_strategy() {
    let keys = keys();
    check_all(1, &[], &keys);
    check_all(1, &[0], &keys);
    check_all(5, &[2], &keys);
    check_all(8, &[0, 3, 7], &keys);
    check_all(8, &[0, 1, 2, 3, 4, 5, 6, 7], &keys);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn contract_holds_for_random_fleets(
        n in 1u16..12,
        down in proptest::collection::vec(0u16..12, 0..6),
        seed in any::<u64>(),
    ) {
        let down: Vec<u16> = {
            let mut d: Vec<u16> = down.into_iter().filter(|&d| d < n).collect();
            d.sort_unstable();
            d.dedup();
            d
        };
        let keys: Vec<u64> = (0..200u64).map(|i| crate::hash::mix(seed, i)).collect();
        check_all(n, &down, &keys);
    }
}

/// The load-aware strategies: pick never returns a down backend, `None` only
/// when none is up, and load feedback is checked.
#[test]
fn load_aware_strategies_skip_down_backends() {
    fn check<S: Strategy>(mut s: S) {
        assert_eq!(s.pick(1), None);
        for i in 0..6u16 {
            s.add(BackendId(i), format!("b{i}").as_bytes(), 1).unwrap();
        }
        assert!(!s.is_keyed());
        assert!(s.placement().is_none());
        s.set_up(BackendId(1), false).unwrap();
        s.set_up(BackendId(4), false).unwrap();
        for k in 0..500u64 {
            let id = s.pick(crate::hash_u64(k)).unwrap();
            assert!(id != BackendId(1) && id != BackendId(4), "{}", s.name());
            s.start(id).unwrap();
            s.finish(
                id,
                Outcome::new(10, k % 7 != 0, k.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )
            .unwrap();
        }
        assert_eq!(
            s.finish(BackendId(0), Outcome::default()),
            Err(LoadError::NotStarted)
        );
        for i in 0..6u16 {
            s.set_up(BackendId(i), false).unwrap();
        }
        assert_eq!(s.pick(7), None);
    }
    check(PowerOfTwo::<8>::new());
    check(RoundRobin::<8>::new());
    check(BoundedLoad::<8, 1024>::new(RingConfig::new(64), 1.25).unwrap());
}

/// `&mut dyn Strategy` and `&mut S` are strategies too (the firmware and the
/// controller hold them that way).
#[test]
fn borrowed_and_dyn_strategies_forward() {
    let mut ring: Ring<4, 512> = Ring::new(RingConfig::new(64)).unwrap();
    {
        let mut s: &mut dyn Strategy = &mut ring;
        Membership::add(&mut s, BackendId(1), b"a", 1).unwrap();
        assert_eq!(s.name(), "ring");
        assert!(s.pick(5).is_some());
        assert!(
            s.placement()
                .is_some_and(|p| p.lookup(5) == Some(BackendId(1)))
        );
    }
    fn takes<S: Strategy>(s: S) -> usize {
        s.len()
    }
    assert_eq!(takes(&mut ring), 1);
    let p: &dyn Placement = &ring;
    assert_eq!(p.key_hash(b"k"), crate::hash(b"k"));
}
