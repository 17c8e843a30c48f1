//! Tests shared by the load-aware strategies ([`LeastConn`], [`PeakEwma`],
//! [`HealthScore`]) and the runner-up of [`PowerOfTwo`]: the contract every one
//! keeps (health, errors, any clock, `pick_two`), and a small event-driven
//! simulation for their behaviour under load.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use proptest::prelude::*;

use crate::fleet::{AddError, Backend, BackendId, LoadError, UnknownBackend};
use crate::strategy::{
    FleetView, HealthScore, LeastConn, LoadAware, Membership, Outcome, PeakEwma, PowerOfTwo,
    Rendezvous,
};

/// The inherent API the three strategies share.
pub(super) trait Lb {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError>;
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend>;
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend>;
    fn pick(&mut self, key_hash: u64) -> Option<BackendId>;
    fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)>;
    fn start(&mut self, id: BackendId) -> Result<(), LoadError>;
    fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError>;
    fn backends(&self) -> &[Backend];
}

macro_rules! lb {
    ($t:ident) => {
        impl<const B: usize> Lb for $t<B> {
            fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
                $t::add(self, id, name, weight)
            }
            fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
                $t::remove(self, id)
            }
            fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
                $t::set_up(self, id, up)
            }
            fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
                $t::pick(self, key_hash)
            }
            fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
                $t::pick_two(self, key_hash)
            }
            fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
                $t::start(self, id)
            }
            fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError> {
                $t::finish(self, id, o)
            }
            fn backends(&self) -> &[Backend] {
                $t::backends(self)
            }
        }
    };
}
lb!(LeastConn);
lb!(PeakEwma);
lb!(HealthScore);

/// [`PowerOfTwo`] through the traits.
impl<const B: usize> Lb for PowerOfTwo<B> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        Membership::add(self, id, name, weight)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        Membership::remove(self, id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        Membership::set_up(self, id, up)
    }
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        LoadAware::pick(self, key_hash)
    }
    fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        PowerOfTwo::pick_two(self, key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        LoadAware::start(self, id)
    }
    fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError> {
        LoadAware::finish(self, id, o)
    }
    fn backends(&self) -> &[Backend] {
        FleetView::backends(self)
    }
}

fn ok(latency_us: u32, at_us: u64) -> Outcome {
    Outcome {
        latency_us,
        ok: true,
        at_us,
    }
}

/// Every implementation, fresh, as trait objects.
fn all() -> Vec<(&'static str, Box<dyn Lb>)> {
    vec![
        ("least_conn", Box::new(LeastConn::<16>::new())),
        ("peak_ewma", Box::new(PeakEwma::<16>::new().with_seed(3))),
        (
            "health_score",
            Box::new(HealthScore::<16>::new().with_seed(3)),
        ),
        ("p2c", Box::new(PowerOfTwo::<16>::new())),
    ]
}

fn add_n(lb: &mut dyn Lb, weights: &[u32]) {
    for (i, &w) in weights.iter().enumerate() {
        let name = format!("backend-{i}");
        lb.add(BackendId(i as u16), name.as_bytes(), w).unwrap();
    }
}

#[test]
fn empty_and_all_down_give_none() {
    for (name, mut lb) in all() {
        assert_eq!(lb.pick(1), None, "{name}");
        assert_eq!(lb.pick_two(1), None, "{name}");
        add_n(&mut *lb, &[1, 2, 3]);
        for i in 0..3 {
            lb.set_up(BackendId(i), false).unwrap();
        }
        for k in 0..50 {
            assert_eq!(lb.pick(k), None, "{name}");
            assert_eq!(lb.pick_two(k), None, "{name}");
        }
        lb.set_up(BackendId(1), true).unwrap();
        for k in 0..50 {
            assert_eq!(lb.pick(k), Some(BackendId(1)), "{name}");
            assert_eq!(lb.pick_two(k), Some((BackendId(1), None)), "{name}");
        }
    }
}

#[test]
fn unknown_ids_and_finish_without_start_are_errors() {
    let unknown = BackendId(99);
    for (name, mut lb) in all() {
        add_n(&mut *lb, &[1, 1]);
        let o = ok(10, 5);
        assert_eq!(
            lb.start(unknown),
            Err(LoadError::Unknown(UnknownBackend(unknown))),
            "{name}"
        );
        assert_eq!(
            lb.finish(unknown, o),
            Err(LoadError::Unknown(UnknownBackend(unknown))),
            "{name}"
        );
        assert_eq!(lb.remove(unknown), Err(UnknownBackend(unknown)), "{name}");
        assert_eq!(
            lb.set_up(unknown, false),
            Err(UnknownBackend(unknown)),
            "{name}"
        );
        assert_eq!(
            lb.finish(BackendId(0), o),
            Err(LoadError::NotStarted),
            "{name}"
        );
        lb.start(BackendId(0)).unwrap();
        assert_eq!(lb.finish(BackendId(0), o), Ok(()), "{name}");
        assert_eq!(
            lb.finish(BackendId(0), o),
            Err(LoadError::NotStarted),
            "{name}"
        );
        assert!(lb.backends().iter().all(|b| b.load == 0), "{name}");
        assert_eq!(lb.add(BackendId(0), b"x", 1), Err(AddError::DuplicateId));
        assert_eq!(lb.add(BackendId(5), b"y", 0), Err(AddError::ZeroWeight));
    }
}

#[test]
fn full_fleet_refuses_and_stays_consistent() {
    let mut lbs: Vec<Box<dyn Lb>> = vec![
        Box::new(LeastConn::<2>::new()),
        Box::new(PeakEwma::<2>::new()),
        Box::new(HealthScore::<2>::new()),
    ];
    for lb in &mut lbs {
        add_n(&mut **lb, &[1, 1]);
        assert_eq!(lb.add(BackendId(7), b"third", 1), Err(AddError::Full));
        lb.remove(BackendId(0)).unwrap();
        lb.add(BackendId(7), b"third", 1).unwrap();
        for k in 0..20 {
            let (a, b) = lb.pick_two(k).unwrap();
            assert_ne!(Some(a), b);
        }
    }
}

#[test]
fn any_clock_value_is_accepted() {
    let clocks = [
        0,
        u64::MAX,
        1,
        u64::MAX / 2,
        u64::MAX / 2 + 2,
        5,
        3,
        u64::MAX - 1,
        2,
        1 << 63,
        0,
    ];
    let lats = [0, u32::MAX, 1, 1000, u32::MAX - 1];
    for (name, mut lb) in all() {
        add_n(&mut *lb, &[1, 65_535, 7]);
        for (i, &at_us) in clocks.iter().cycle().take(200).enumerate() {
            let id = lb.pick(i as u64).unwrap();
            lb.start(id).unwrap();
            let o = Outcome {
                latency_us: lats[i % lats.len()],
                ok: i % 3 != 0,
                at_us,
            };
            lb.finish(id, o).unwrap();
            let (a, b) = lb.pick_two(i as u64).unwrap();
            assert_ne!(Some(a), b, "{name}");
        }
    }
}

/// One request in the simulation: `(finish time, sequence, backend)`.
type Pending = Reverse<(u64, u64, BackendId)>;

/// An open-loop run: a request arrives every `gap_us`, goes to `pick`, and
/// finishes `latency(id)` later with `ok(id, n)` (the n-th request). Returns the
/// requests per backend (by id).
pub(super) fn simulate(
    lb: &mut dyn Lb,
    requests: u64,
    gap_us: u64,
    latency: impl Fn(BackendId) -> u32,
    ok: impl Fn(BackendId, u64) -> bool,
) -> Vec<u64> {
    let mut counts = vec![0u64; 64];
    let mut pending: BinaryHeap<Pending> = BinaryHeap::new();
    for n in 0..requests {
        let now = n * gap_us;
        while let Some(Reverse((t, _, id))) = pending.peek().copied() {
            if t > now {
                break;
            }
            pending.pop();
            let o = Outcome {
                latency_us: latency(id),
                ok: ok(id, n),
                at_us: t,
            };
            lb.finish(id, o).unwrap();
        }
        let id = lb.pick(crate::hash_u64(n)).unwrap();
        counts[usize::from(id.0)] += 1;
        lb.start(id).unwrap();
        pending.push(Reverse((now + u64::from(latency(id)), n, id)));
    }
    counts
}

#[test]
fn a_slow_backend_gets_less_traffic() {
    // Three equal backends, #2 ten times slower; 20,000 requests at one per
    // 300 µs (the fast ones alone could take them all).
    for (name, mut lb) in all() {
        if name == "p2c" {
            continue;
        }
        add_n(&mut *lb, &[1, 1, 1]);
        let lat = |id: BackendId| if id.0 == 2 { 20_000 } else { 2_000 };
        let c = simulate(&mut *lb, 20_000, 300, lat, |_, _| true);
        let share = c[2] as f64 / 20_000.0;
        eprintln!("slow backend, {name}: {:?}", &c[..3]);
        assert!(c[2] * 3 < c[0] && c[2] * 3 < c[1], "{name}: {c:?}");
        assert!(share < 0.15, "{name}: slow backend share {share}");
    }
}

#[test]
fn weights_hold_in_the_long_run() {
    // Equal latencies, weights 1, 2, 5: shares near w / 8 under concurrency
    // (about 40 requests in flight: least-conn and peak EWMA weigh in-flight
    // counts, whose integer steps favour a light backend when few are in
    // flight).
    for (name, mut lb) in all() {
        add_n(&mut *lb, &[1, 2, 5]);
        let c = simulate(&mut *lb, 40_000, 100, |_| 4_000, |_, _| true);
        eprintln!("weights 1, 2, 5, {name}: {:?}", &c[..3]);
        for (i, w) in [1.0, 2.0, 5.0].into_iter().enumerate() {
            let share = c[i] as f64 / 40_000.0;
            let expect = w / 8.0;
            assert!(
                (share - expect).abs() < 0.25 * expect,
                "{name}: backend {i} share {share:.3}, expected {expect:.3} ({c:?})"
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u16, u32),
    Remove(u16),
    SetUp(u16, bool),
    Start(u16),
    Finish(u16, u32, bool, u64),
    Pick(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    let id = 0u16..10;
    prop_oneof![
        2 => (id.clone(), prop_oneof![1u32..4, Just(65_535u32), any::<u32>()])
            .prop_map(|(i, w)| Op::Add(i, w)),
        1 => id.clone().prop_map(Op::Remove),
        2 => (id.clone(), any::<bool>()).prop_map(|(i, u)| Op::SetUp(i, u)),
        3 => id.clone().prop_map(Op::Start),
        3 => (id, any::<u32>(), any::<bool>(), any::<u64>())
            .prop_map(|(i, l, o, t)| Op::Finish(i, l, o, t)),
        4 => any::<u64>().prop_map(Op::Pick),
    ]
}

/// Runs `ops`; after each, every pick is an up backend, `pick_two`'s second is
/// another up backend, and `None` comes exactly when nothing (or only one
/// backend, for the second) is up.
fn check_ops(lb: &mut dyn Lb, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::Add(i, w) => {
                let _ = lb.add(BackendId(i), &i.to_le_bytes(), w);
            }
            Op::Remove(i) => {
                let _ = lb.remove(BackendId(i));
            }
            Op::SetUp(i, u) => {
                let _ = lb.set_up(BackendId(i), u);
            }
            Op::Start(i) => {
                let _ = lb.start(BackendId(i));
            }
            Op::Finish(i, latency_us, ok, at_us) => {
                let before = lb.backends().iter().find(|b| b.id.0 == i).map(|b| b.load);
                let r = lb.finish(
                    BackendId(i),
                    Outcome {
                        latency_us,
                        ok,
                        at_us,
                    },
                );
                match before {
                    None => assert!(matches!(r, Err(LoadError::Unknown(_)))),
                    Some(0) => assert_eq!(r, Err(LoadError::NotStarted)),
                    Some(_) => assert_eq!(r, Ok(())),
                }
            }
            Op::Pick(k) => {
                let up: Vec<BackendId> = lb
                    .backends()
                    .iter()
                    .filter(|b| b.up)
                    .map(|b| b.id)
                    .collect();
                let p = lb.pick(k);
                assert_eq!(p.is_some(), !up.is_empty());
                assert!(p.is_none_or(|p| up.contains(&p)), "picked a down backend");
                match lb.pick_two(k) {
                    None => assert!(up.is_empty()),
                    Some((a, b)) => {
                        assert!(up.contains(&a));
                        assert_eq!(b.is_some(), up.len() > 1);
                        if let Some(b) = b {
                            assert_ne!(a, b);
                            assert!(up.contains(&b), "runner-up is down");
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn picks_are_up_and_runner_up_is_distinct(ops in proptest::collection::vec(op(), 0..120)) {
        check_ops(&mut LeastConn::<8>::new(), &ops);
        check_ops(&mut PeakEwma::<8>::new(), &ops);
        check_ops(&mut HealthScore::<8>::new(), &ops);
        check_ops(&mut PowerOfTwo::<8>::new(), &ops);
    }

    #[test]
    fn rendezvous_pick_two_is_the_pick_then_where_the_key_fails_over(
        weights in proptest::collection::vec(prop_oneof![Just(1u32), 1u32..5, Just(65_535)], 1..8),
        down in proptest::collection::vec(any::<bool>(), 8),
        keys in proptest::collection::vec(any::<u64>(), 1..20),
    ) {
        let mut r: Rendezvous<8> = Rendezvous::new();
        for (i, &w) in weights.iter().enumerate() {
            Membership::add(&mut r, BackendId(i as u16), &[i as u8], w).unwrap();
        }
        for (i, &d) in down.iter().enumerate().take(weights.len()) {
            Membership::set_up(&mut r, BackendId(i as u16), !d).unwrap();
        }
        let up = weights.len() - down.iter().take(weights.len()).filter(|&&d| d).count();
        for k in keys {
            let two = r.pick_two(k);
            prop_assert_eq!(two.map(|t| t.0), LoadAware::pick(&mut r, k));
            if let Some((a, b)) = two {
                prop_assert_eq!(b.is_some(), up > 1);
                if let Some(b) = b {
                    // Take the pick down: the key moves to the runner-up.
                    Membership::set_up(&mut r, a, false).unwrap();
                    prop_assert_eq!(LoadAware::pick(&mut r, k), Some(b));
                    Membership::set_up(&mut r, a, true).unwrap();
                }
            }
        }
    }

    #[test]
    fn p2c_pick_two_leads_with_pick(ops in proptest::collection::vec(op(), 0..60), keys in proptest::collection::vec(any::<u64>(), 1..20)) {
        let mut p: PowerOfTwo<8> = PowerOfTwo::new();
        check_ops(&mut p, &ops);
        for k in keys {
            prop_assert_eq!(p.pick_two(k).map(|(a, _)| a), LoadAware::pick(&mut p, k));
        }
    }
}

#[test]
fn public_types_are_send_sync_and_copy_where_small() {
    fn send_sync<T: Send + Sync + Clone + core::fmt::Debug>() {}
    fn copy<T: Copy + Eq + core::hash::Hash>() {}
    send_sync::<LeastConn<4>>();
    send_sync::<PeakEwma<4>>();
    send_sync::<HealthScore<4>>();
    copy::<Outcome>();
}
