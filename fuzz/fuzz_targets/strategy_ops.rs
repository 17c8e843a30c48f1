//! Operation sequences on every `Strategy`, each against a model of its fleet.
//!
//! The same sequence of `add` / `remove` / `set_up` / `set_weight` (the ring:
//! the only strategy with it) / `pick` / `start` / `finish`, with arbitrary ids,
//! names and weights (including 0, `MAX_WEIGHT`, `MAX_WEIGHT + 1`, `u32::MAX`),
//! is applied to Ring, Maglev, Jump, Rendezvous, BoundedLoad, PowerOfTwo,
//! Modulo and RoundRobin. After every step, per strategy (the contract of
//! `Strategy` and `Placement` in core/src/strategy/traits.rs):
//! - `backends()` is the model's fleet, in insertion order (id, weight, up, load);
//! - an `Ok` add / remove / set_up / start / finish is one the model allows, an
//!   `Err` names a reason that holds, and leaves the fleet unchanged;
//! - `pick(k)` is `None` exactly when no backend is up, else a backend of the
//!   fleet that is up; a key-affine strategy (`is_keyed`) answers the same
//!   twice in a row;
//! - a keyed strategy's `Placement` (`placement()`): `lookup` (health
//!   ignored) is `None` exactly when it is empty, its `pick` is the strategy's,
//!   and equals `lookup` when every backend is up;
//! - the ring's `replicas(k, n)` gives `min(n, len)` distinct backends.
#![no_main]

use arbitrary::Arbitrary;
use chring::{
    AddError, Backend, BackendId, BoundedLoad, Jump, LoadError, MAX_WEIGHT, Maglev, Modulo,
    Outcome, PowerOfTwo, Rendezvous, RingConfig, RoundRobin, Strategy, UnknownBackend, WeightError,
};
use libfuzzer_sys::fuzz_target;

const B: usize = 8;
type Ring = chring::Ring<B, 256, 16>;

#[derive(Debug, Arbitrary)]
enum Op {
    Add {
        id: u8,
        name: Name,
        weight: u8,
    },
    Remove {
        id: u8,
    },
    SetUp {
        id: u8,
        up: bool,
    },
    SetWeight {
        id: u8,
        weight: u8,
    },
    Pick {
        key: u64,
    },
    Start {
        id: u8,
    },
    Finish {
        id: u8,
        latency_us: u32,
        ok: bool,
        at_us: u64,
    },
}

/// Names: mostly from a small pool (so duplicates happen), or any bytes.
#[derive(Debug, Arbitrary)]
enum Name {
    Pool(u8),
    Bytes(Vec<u8>),
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Pool(i) => format!("10.0.0.{}:11211", i % 12).into_bytes(),
            Name::Bytes(b) => b.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    vnodes: u8,
    balance: u8,
    ops: Vec<Op>,
}

/// Small weights mostly, and the edges of the valid range.
fn weight(w: u8) -> u32 {
    match w {
        251 => MAX_WEIGHT,
        252 => MAX_WEIGHT + 1,
        253 => u32::MAX,
        254 => 100,
        255 => 1000,
        w => u32::from(w % 5),
    }
}

fn id(i: u8) -> BackendId {
    BackendId(u16::from(i % 12))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    backends: Vec<(BackendId, Vec<u8>, u32, bool, u32)>,
}

impl Model {
    fn find(&self, id: BackendId) -> Option<usize> {
        self.backends.iter().position(|b| b.0 == id)
    }
    fn any_up(&self) -> bool {
        self.backends.iter().any(|b| b.3)
    }
    fn check(&self, s: &dyn Strategy) {
        let got: Vec<(BackendId, u32, bool, u32)> = s
            .backends()
            .iter()
            .map(|b: &Backend| (b.id, b.weight, b.up, b.load))
            .collect();
        let want: Vec<(BackendId, u32, bool, u32)> =
            self.backends.iter().map(|b| (b.0, b.2, b.3, b.4)).collect();
        assert_eq!(got, want, "{}: fleet differs from the model", s.name());
        for (b, m) in s.backends().iter().zip(&self.backends) {
            assert_eq!(b.name_hash, chring::hash(&m.1), "{}: name hash", s.name());
        }
        assert_eq!(s.len(), self.backends.len());
    }
}

/// A strategy under test: the ring keeps its type (for `set_weight`, `lookup`
/// and `replicas`), the others are used through the trait only.
enum Target {
    Ring(Box<Ring>),
    Other(Box<dyn Strategy>),
}

impl Target {
    fn s(&mut self) -> &mut dyn Strategy {
        match self {
            Target::Ring(r) => r.as_mut(),
            Target::Other(s) => s.as_mut(),
        }
    }
    fn ring(&mut self) -> Option<&mut Ring> {
        match self {
            Target::Ring(r) => Some(r),
            Target::Other(_) => None,
        }
    }
}

struct Under {
    t: Target,
    m: Model,
}

fn step(u: &mut Under, op: &Op) {
    let name = u.t.s().name();
    match op {
        Op::Add {
            id: i,
            name: n,
            weight: w,
        } => {
            let (id, n, w) = (id(*i), n.bytes(), weight(*w));
            let before = u.m.clone();
            match u.t.s().add(id, &n, w) {
                Ok(()) => {
                    assert!((1..=MAX_WEIGHT).contains(&w), "{name}: added weight {w}");
                    assert!(u.m.find(id).is_none(), "{name}: added a duplicate id");
                    assert!(
                        u.m.backends
                            .iter()
                            .all(|b| chring::hash(&b.1) != chring::hash(&n)),
                        "{name}: added a duplicate name"
                    );
                    assert!(u.m.backends.len() < B, "{name}: added past B");
                    u.m.backends.push((id, n, w, true, 0));
                }
                Err(e) => {
                    let holds = match e {
                        AddError::Full => u.m.backends.len() == B,
                        AddError::DuplicateId => u.m.find(id).is_some(),
                        AddError::DuplicateName => {
                            u.m.backends
                                .iter()
                                .any(|b| chring::hash(&b.1) == chring::hash(&n))
                        }
                        AddError::ZeroWeight => w == 0,
                        AddError::WeightTooLarge => w > MAX_WEIGHT,
                        AddError::NoRoom => true,
                        _ => false,
                    };
                    assert!(
                        holds,
                        "{name}: add({id:?}, {n:?}, {w}) -> {e:?}, which does not hold"
                    );
                    assert_eq!(u.m, before);
                }
            }
        }
        Op::Remove { id: i } => {
            let id = id(*i);
            let r = u.t.s().remove(id);
            match u.m.find(id) {
                Some(slot) => {
                    assert_eq!(r, Ok(()), "{name}: remove");
                    u.m.backends.remove(slot);
                }
                None => assert!(r.is_err(), "{name}: removed an unknown id"),
            }
        }
        Op::SetUp { id: i, up } => {
            let id = id(*i);
            let r = u.t.s().set_up(id, *up);
            match u.m.find(id) {
                Some(slot) => {
                    assert_eq!(r, Ok(()), "{name}: set_up");
                    u.m.backends[slot].3 = *up;
                }
                None => assert!(r.is_err(), "{name}: set_up of an unknown id"),
            }
        }
        Op::SetWeight { id: i, weight: w } => {
            let Some(ring) = u.t.ring() else { return };
            let (id, w) = (id(*i), weight(*w));
            match ring.set_weight(id, w) {
                Ok(()) => {
                    assert!((1..=MAX_WEIGHT).contains(&w));
                    let slot = u.m.find(id).expect("set_weight of an unknown id succeeded");
                    u.m.backends[slot].2 = w;
                }
                Err(e) => {
                    let holds = match e {
                        WeightError::Unknown(UnknownBackend(u_id)) => {
                            u_id == id && u.m.find(id).is_none()
                        }
                        WeightError::ZeroWeight => w == 0,
                        WeightError::WeightTooLarge => w > MAX_WEIGHT,
                        WeightError::NoRoom => true,
                        _ => false,
                    };
                    assert!(
                        holds,
                        "ring: set_weight({id:?}, {w}) -> {e:?}, which does not hold"
                    );
                }
            }
        }
        Op::Pick { key } => {
            let first = u.t.s().pick(*key);
            match first {
                None => assert!(!u.m.any_up(), "{name}: None with a backend up"),
                Some(id) => {
                    let slot = u.m.find(id);
                    assert!(
                        slot.is_some_and(|s| u.m.backends[s].3),
                        "{name}: picked {id:?}, not a backend that is up"
                    );
                }
            }
            if u.t.s().is_keyed() {
                assert_eq!(u.t.s().pick(*key), first, "{name}: same key, other answer");
            }
            // The Placement contract: lookup ignores health (None only when
            // empty), the &self pick is the Strategy's, and equals lookup when
            // every backend is up.
            let all_up = u.m.backends.iter().all(|b| b.3);
            if let Some(p) = u.t.s().placement() {
                let owner = p.lookup(*key);
                assert_eq!(owner.is_none(), u.m.backends.is_empty(), "{name}: lookup");
                assert!(
                    owner.is_none_or(|o| u.m.find(o).is_some()),
                    "{name}: lookup"
                );
                assert_eq!(p.pick(*key), first, "{name}: Placement::pick");
                if all_up {
                    assert_eq!(owner, first, "{name}: pick != lookup with all up");
                }
            }
            if let Some(ring) = u.t.ring() {
                assert_eq!(ring.lookup(*key).is_none(), u.m.backends.is_empty());
                let n = (*key % 11) as usize;
                let mut reps: Vec<BackendId> = ring.replicas(*key, n).collect();
                assert_eq!(reps.len(), n.min(u.m.backends.len()), "ring: replica count");
                if n > 0 {
                    assert_eq!(reps.first().copied(), ring.lookup(*key));
                }
                reps.sort();
                reps.dedup();
                assert_eq!(
                    reps.len(),
                    n.min(u.m.backends.len()),
                    "ring: distinct replicas"
                );
            }
        }
        Op::Start { id: i } => {
            let id = id(*i);
            let r = u.t.s().start(id);
            match u.m.find(id) {
                Some(slot) => {
                    assert_eq!(r, Ok(()), "{name}: start");
                    u.m.backends[slot].4 += 1;
                }
                None => assert_eq!(
                    r,
                    Err(LoadError::Unknown(UnknownBackend(id))),
                    "{name}: start"
                ),
            }
        }
        Op::Finish {
            id: i,
            latency_us,
            ok,
            at_us,
        } => {
            let id = id(*i);
            let r = u.t.s().finish(id, Outcome::new(*latency_us, *ok, *at_us));
            match u.m.find(id) {
                Some(slot) if u.m.backends[slot].4 > 0 => {
                    assert_eq!(r, Ok(()), "{name}: finish");
                    u.m.backends[slot].4 -= 1;
                }
                Some(_) => assert_eq!(r, Err(LoadError::NotStarted), "{name}: finish"),
                None => assert_eq!(
                    r,
                    Err(LoadError::Unknown(UnknownBackend(id))),
                    "{name}: finish"
                ),
            }
        }
    }
    u.m.check(u.t.s());
}

fuzz_target!(|input: Input| {
    let vnodes = 1 + u32::from(input.vnodes % 16);
    // c in 1.0..=3.55.
    let c = 1.0 + f32::from(input.balance) / 100.0;
    let others: Vec<Box<dyn Strategy>> = vec![
        Box::new(Maglev::<B, 251>::new()),
        Box::new(Jump::<B, 32>::new()),
        Box::new(Rendezvous::<B>::new()),
        Box::new(BoundedLoad::<B, 256>::new(RingConfig::new(vnodes), c).expect("valid c")),
        Box::new(PowerOfTwo::<B>::new()),
        Box::new(Modulo::<B>::new()),
        Box::new(RoundRobin::<B>::new()),
    ];
    let ring = Ring::new(RingConfig::new(vnodes)).expect("vnodes <= P");
    let mut all: Vec<Under> = std::iter::once(Target::Ring(Box::new(ring)))
        .chain(others.into_iter().map(Target::Other))
        .map(|t| Under {
            t,
            m: Model {
                backends: Vec::new(),
            },
        })
        .collect();
    for op in input.ops.iter().take(256) {
        for u in &mut all {
            step(u, op);
        }
    }
});
