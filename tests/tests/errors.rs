//! Bad input gets the documented error or `None`, never a panic, and leaves the
//! fleet as it was.

use chring::{
    AddError, BackendId, BoundedLoad, ConfigError, Jump, LoadError, Maglev, Modulo, PowerOfTwo,
    Rendezvous, Ring, RingConfig, RoundRobin, Strategy, UnknownBackend,
};

fn all() -> Vec<Box<dyn Strategy>> {
    vec![
        Box::new(Ring::<2, 400, 16>::new(RingConfig::new(100)).unwrap()),
        Box::new(Maglev::<2, 251>::new()),
        Box::new(Jump::<2, 8>::new()),
        Box::new(Rendezvous::<2>::new()),
        Box::new(BoundedLoad::<2, 400, 16>::new(RingConfig::new(100), 1.25).unwrap()),
        Box::new(PowerOfTwo::<2>::new()),
        Box::new(Modulo::<2>::new()),
        Box::new(RoundRobin::<2>::new()),
    ]
}

#[test]
fn every_strategy_rejects_bad_input() {
    for mut s in all() {
        let name = s.name();
        assert_eq!(s.pick(1), None, "{name}: empty fleet");
        assert_eq!(
            s.add(BackendId(0), b"a", 0),
            Err(AddError::ZeroWeight),
            "{name}"
        );
        assert_eq!(
            s.add(BackendId(0), b"a", 100_000),
            Err(AddError::WeightTooLarge),
            "{name}"
        );
        assert_eq!(
            s.remove(BackendId(0)),
            Err(UnknownBackend(BackendId(0))),
            "{name}"
        );
        assert_eq!(
            s.set_up(BackendId(0), false),
            Err(UnknownBackend(BackendId(0))),
            "{name}"
        );
        assert_eq!(s.start(BackendId(0)), Err(LoadError::Unknown), "{name}");
        s.add(BackendId(0), b"a", 1).unwrap();
        assert_eq!(
            s.add(BackendId(0), b"b", 1),
            Err(AddError::DuplicateId),
            "{name}"
        );
        assert_eq!(
            s.add(BackendId(1), b"a", 1),
            Err(AddError::DuplicateName),
            "{name}"
        );
        s.add(BackendId(1), b"b", 1).unwrap();
        assert_eq!(s.add(BackendId(2), b"c", 1), Err(AddError::Full), "{name}");
        assert_eq!(s.len(), 2, "{name}: errors left the fleet unchanged");
        assert_eq!(s.finish(BackendId(0)), Err(LoadError::NotStarted), "{name}");
        s.start(BackendId(0)).unwrap();
        s.finish(BackendId(0)).unwrap();
        // Everything down: no answer, no panic.
        s.set_up(BackendId(0), false).unwrap();
        s.set_up(BackendId(1), false).unwrap();
        assert_eq!(s.pick(42), None, "{name}: all down");
        s.set_up(BackendId(1), true).unwrap();
        assert_eq!(s.pick(42), Some(BackendId(1)), "{name}: the one up backend");
        s.remove(BackendId(0)).unwrap();
        s.remove(BackendId(1)).unwrap();
        assert_eq!(s.pick(42), None, "{name}: emptied");
    }
}

#[test]
fn capacity_errors() {
    // Points: 2 backends x 100 vnodes fit in 250 points only at weight 1.
    let mut r = Ring::<4, 250, 0>::new(RingConfig::new(100)).unwrap();
    r.add(BackendId(0), b"a", 2).unwrap();
    assert_eq!(r.add(BackendId(1), b"b", 1), Err(AddError::NoRoom));
    // Buckets.
    let mut j = Jump::<4, 4>::new();
    j.add(BackendId(0), b"a", 3).unwrap();
    assert_eq!(j.add(BackendId(1), b"b", 2), Err(AddError::NoRoom));
    assert_eq!(j.len(), 1);
}

#[test]
fn bad_configuration() {
    assert_eq!(
        Ring::<4, 64, 0>::new(RingConfig::new(0)).err(),
        Some(ConfigError::ZeroVnodes)
    );
    assert_eq!(
        Ring::<4, 64, 0>::new(RingConfig::new(65)).err(),
        Some(ConfigError::TooManyVnodes)
    );
    for c in [0.5, f32::NAN, f32::INFINITY, -1.0] {
        assert_eq!(
            BoundedLoad::<4, 64, 0>::new(RingConfig::new(8), c).err(),
            Some(ConfigError::BalanceFactor),
            "c = {c}"
        );
    }
}

#[test]
fn errors_display_and_convert() {
    let e: chring::Error = AddError::Full.into();
    assert!(e.to_string().contains("full"));
    let e: &dyn std::error::Error = &ConfigError::ZeroVnodes;
    assert!(e.to_string().contains("vnodes"));
}

/// Every public type can cross threads (and sit in a `static` behind a mutex).
#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync + Unpin>() {}
    check::<Ring<8, 512, 64>>();
    check::<Maglev<8, 251>>();
    check::<Jump<8, 8>>();
    check::<Rendezvous<8>>();
    check::<BoundedLoad<8, 512, 0>>();
    check::<PowerOfTwo<8>>();
    check::<Modulo<8>>();
    check::<RoundRobin<8>>();
    check::<chring::TtlCache<u64, BackendId, 16, u16>>();
    check::<chring::workload::KeyStream>();
    check::<chring::Error>();
    check::<chring::Replicas<'static, 8, 512, 64>>();
}
