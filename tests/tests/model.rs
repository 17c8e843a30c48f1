//! Property tests: the ring against a naive model written from the documented
//! placement contract, under random fleet changes; and minimal disruption on
//! random fleets.

use chring::{BackendId, Jump, Rendezvous, Ring, RingConfig, Strategy as Routing};
use proptest::prelude::*;

const VNODES: u32 = 20;

/// The contract, naively: all points, sorted by (position, name hash); a key
/// takes the first point at or after its position, wrapping.
#[derive(Default, Clone)]
struct Model {
    fleet: Vec<(u16, u64, u32, bool)>, // id, name hash, weight, up
}

impl Model {
    fn points(&self) -> Vec<(u32, u64, u16)> {
        let mut pts = vec![];
        for &(id, nh, w, _) in &self.fleet {
            for i in 0..(VNODES * w) as u64 {
                pts.push(((chring::mix(nh, i) >> 32) as u32, nh, id));
            }
        }
        pts.sort();
        pts
    }
    fn order(&self, key: u64) -> Vec<u16> {
        let pts = self.points();
        let kp = (key >> 32) as u32;
        let start = pts.iter().position(|p| p.0 >= kp).unwrap_or(0);
        let mut seen = vec![];
        for i in 0..pts.len() {
            let id = pts[(start + i) % pts.len()].2;
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        seen
    }
    fn up(&self, id: u16) -> bool {
        self.fleet.iter().any(|b| b.0 == id && b.3)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u16, u32),
    Remove(u16),
    Weight(u16, u32),
    Health(u16, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..10, 1u32..4).prop_map(|(i, w)| Op::Add(i, w)),
        1 => (0u16..10).prop_map(Op::Remove),
        1 => (0u16..10, 1u32..4).prop_map(|(i, w)| Op::Weight(i, w)),
        1 => (0u16..10, any::<bool>()).prop_map(|(i, u)| Op::Health(i, u)),
    ]
}

fn name(id: u16) -> Vec<u8> {
    format!("node-{id}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ring_matches_model(ops in prop::collection::vec(op(), 1..30), keys in prop::collection::vec(any::<u64>(), 16)) {
        // Capacity 8 backends and 600 points: some adds must fail with the model unchanged.
        let mut ring = Ring::<8, 600, 32>::new(RingConfig::new(VNODES)).unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Add(id, w) => {
                    let points: u32 = model.fleet.iter().map(|b| b.2 * VNODES).sum();
                    let ok = !model.fleet.iter().any(|b| b.0 == id)
                        && model.fleet.len() < 8
                        && points + w * VNODES <= 600;
                    prop_assert_eq!(ring.add(BackendId(id), &name(id), w).is_ok(), ok);
                    if ok { model.fleet.push((id, chring::hash(&name(id)), w, true)); }
                }
                Op::Remove(id) => {
                    let ok = model.fleet.iter().any(|b| b.0 == id);
                    prop_assert_eq!(ring.remove(BackendId(id)).is_ok(), ok);
                    model.fleet.retain(|b| b.0 != id);
                }
                Op::Weight(id, w) => {
                    let points: u32 = model.fleet.iter().filter(|b| b.0 != id).map(|b| b.2 * VNODES).sum();
                    let ok = model.fleet.iter().any(|b| b.0 == id) && points + w * VNODES <= 600;
                    prop_assert_eq!(ring.set_weight(BackendId(id), w).is_ok(), ok);
                    if ok { for b in model.fleet.iter_mut().filter(|b| b.0 == id) { b.2 = w; } }
                }
                Op::Health(id, up) => {
                    let ok = model.fleet.iter().any(|b| b.0 == id);
                    prop_assert_eq!(ring.set_up(BackendId(id), up).is_ok(), ok);
                    for b in model.fleet.iter_mut().filter(|b| b.0 == id) { b.3 = up; }
                }
            }
            prop_assert_eq!(ring.len(), model.fleet.len());
            for &k in &keys {
                let order = model.order(k);
                prop_assert_eq!(ring.lookup(k), order.first().map(|&i| BackendId(i)));
                let healthy = order.iter().find(|&&i| model.up(i)).map(|&i| BackendId(i));
                prop_assert_eq!(ring.pick(k), healthy);
                let reps: Vec<u16> = ring.replicas(k, 3).map(|b| b.0).collect();
                prop_assert_eq!(&reps[..], &order[..order.len().min(3)]);
            }
        }
    }

    #[test]
    fn minimal_disruption_on_random_fleets(
        n in 2u16..12,
        weights in prop::collection::vec(1u32..4, 12),
        victim in 0u16..12,
        keys in prop::collection::vec(any::<u64>(), 200),
    ) {
        let victim = victim % n;
        let mut strategies: Vec<Box<dyn Routing>> = vec![
            Box::new(Ring::<16, 4096, 256>::new(RingConfig::new(50)).unwrap()),
            Box::new(Jump::<16, 64>::new()),
            Box::new(Rendezvous::<16>::new()),
        ];
        for s in strategies.iter_mut() {
            for i in 0..n {
                s.add(BackendId(i), &name(i), weights[i as usize]).unwrap();
            }
            let before: Vec<_> = keys.iter().map(|&k| s.pick(k).unwrap()).collect();
            s.add(BackendId(100), &name(100), 2).unwrap();
            let added: Vec<_> = keys.iter().map(|&k| s.pick(k).unwrap()).collect();
            for (b, a) in before.iter().zip(&added) {
                prop_assert!(b == a || *a == BackendId(100), "{}", s.name());
            }
            s.remove(BackendId(victim)).unwrap();
            let removed: Vec<_> = keys.iter().map(|&k| s.pick(k).unwrap()).collect();
            for (a, r) in added.iter().zip(&removed) {
                prop_assert!(*a == BackendId(victim) || a == r, "{}", s.name());
                prop_assert!(*r != BackendId(victim));
            }
        }
    }
}
