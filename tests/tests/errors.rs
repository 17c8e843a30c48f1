//! Bad input gets the documented error or `None`, never a panic, and leaves the
//! fleet as it was.

use chring::prelude::*;
use chring::{
    AddError, BackendId, BoundedLoad, ConfigError, Jump, LoadError, Maglev, Modulo, Outcome,
    PowerOfTwo, Rendezvous, Ring, RingConfig, RoundRobin, Strategy, UnknownBackend,
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
        assert_eq!(
            s.start(BackendId(0)),
            Err(LoadError::Unknown(UnknownBackend(BackendId(0)))),
            "{name}"
        );
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
        assert_eq!(
            s.finish(BackendId(0), Outcome::default()),
            Err(LoadError::NotStarted),
            "{name}"
        );
        s.start(BackendId(0)).unwrap();
        s.finish(BackendId(0), Outcome::default()).unwrap();
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

/// Issue 11: one `UnknownBackend` behind every "unknown id" error, `add_many`
/// failures that `?` into `chring::Error`, and a `source()` chain from
/// `chring::Error` down to the operation's own error.
#[test]
fn one_unknown_backend_and_a_source_chain() {
    use chring::compat::twemproxy::{Ketama, KetamaError, KeyHash};
    use chring::{BatchError, Error, WeightError};
    use std::error::Error as _;

    let unknown = UnknownBackend(BackendId(7));
    let mut r = Ring::<4, 400, 16>::new(RingConfig::new(100)).unwrap();
    assert_eq!(
        r.set_weight(BackendId(7), 2),
        Err(WeightError::Unknown(unknown))
    );
    let mut m = Maglev::<4, 251>::new();
    assert_eq!(m.start(BackendId(7)), Err(LoadError::Unknown(unknown)));
    let mut pool: Ketama<4, 640, 8> = Ketama::new(KeyHash::Md5);
    assert_eq!(
        pool.remove(7),
        Err(KetamaError::Unknown(unknown)),
        "a ketama index reads as a BackendId"
    );

    // Each operation's error names the same UnknownBackend as its source.
    for e in [
        &WeightError::Unknown(unknown) as &dyn std::error::Error,
        &LoadError::Unknown(unknown),
        &KetamaError::Unknown(unknown),
    ] {
        let src = e.source().expect("source");
        assert_eq!(src.downcast_ref::<UnknownBackend>(), Some(&unknown));
        assert_eq!(e.to_string(), unknown.to_string());
    }

    // add_many: a BatchError that `?`s into chring::Error, index kept.
    let batch: [(BackendId, &[u8], u32); 2] = [(BackendId(0), b"a", 1), (BackendId(1), b"b", 0)];
    let mut ring_batch = || -> Result<(), Error> {
        r.add_many(&batch)?;
        Ok(())
    };
    let e = ring_batch().unwrap_err();
    let want = BatchError {
        index: 1,
        error: AddError::ZeroWeight,
    };
    assert_eq!(e, Error::AddBatch(want));
    assert!(e.to_string().starts_with("batch entry 1: "), "{e}");
    // Error -> BatchError -> AddError.
    let batch_err = e.source().expect("Error has a source");
    assert_eq!(
        batch_err.downcast_ref::<BatchError<AddError>>(),
        Some(&want)
    );
    let add_err = batch_err.source().expect("BatchError has a source");
    assert_eq!(
        add_err.downcast_ref::<AddError>(),
        Some(&AddError::ZeroWeight)
    );
    assert!(add_err.source().is_none());
    assert_eq!(m.add_many(&batch), Err(want));

    let mut ketama_batch = || -> Result<(), Error> {
        pool.add_many(&[(b"a", 1), (b"a", 1)])?;
        Ok(())
    };
    let e = ketama_batch().unwrap_err();
    assert_eq!(
        e,
        Error::KetamaBatch(BatchError {
            index: 1,
            error: KetamaError::DuplicateName
        })
    );

    // Error -> WeightError -> UnknownBackend.
    let e: Error = WeightError::Unknown(unknown).into();
    let mut chain = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = next {
        chain.push(err.to_string());
        next = err.source();
    }
    assert_eq!(chain.len(), 3, "{chain:?}");
    assert!(
        chain.iter().all(|s| s == "no backend with id 7"),
        "{chain:?}"
    );
}

/// Issue 11: `chring::Error` also wraps the workload and protocol errors.
#[test]
fn error_wraps_workload_and_protocol() {
    use chring::Error;
    use chring::protocol::{Controller, ProtocolError};
    use chring::workload::Zipf;
    use std::error::Error as _;

    let zipf = || -> Result<(), Error> {
        Zipf::new(0, 1.0)?;
        Ok(())
    };
    let e = zipf().unwrap_err();
    assert!(matches!(e, Error::Workload(_)), "{e:?}");
    assert!(e.source().is_some());

    let mut ctl: Controller<2, 128, 251, 8> = Controller::new(8, chring::Duration(1_000)).unwrap();
    let mut route = || -> Result<(), Error> {
        ctl.remove("nobody")?;
        Ok(())
    };
    let e = route().unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    let src = e.source().expect("source");
    assert!(src.downcast_ref::<ProtocolError>().is_some());
}
