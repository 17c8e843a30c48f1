//! Operation sequences on the load-aware strategies (`LeastConn`, `PeakEwma`,
//! `HealthScore`) and `PowerOfTwo::pick_two`, each against a model of its fleet.
//!
//! `add` / `remove` / `set_up` / `start` / `finish(id, Outcome)` with any ids,
//! weights, latencies, success flags and clock values (`at_us` jumping
//! forwards, backwards and across the `u64` wrap), `set_now` (peak EWMA), any
//! decay constant and initial estimate, `pick` and `pick_two`. After every step,
//! per strategy:
//! - `backends()` is the model's fleet (id, weight, up, in-flight), in
//!   insertion order; a refused `finish` / `start` names a reason that holds
//!   (`Unknown` id, `NotStarted` with nothing in flight) and changes nothing;
//! - `pick` and `pick_two` are `None` exactly when no backend is up, else an up
//!   backend; `pick_two`'s second is another up backend, `None` exactly when one
//!   backend is up; `PowerOfTwo::pick_two` leads with what `pick` returns;
//! - the peak EWMA estimate and the health score stay in range.
#![no_main]

use std::num::NonZeroU64;

use arbitrary::Arbitrary;
use chring::strategy::{SCORE_FLOOR, SCORE_ONE};
use chring::{
    Backend, BackendId, FleetView, HealthScore, LeastConn, LoadAware, LoadError, Membership,
    Outcome, PeakEwma, PowerOfTwo, UnknownBackend,
};
use libfuzzer_sys::fuzz_target;

const B: usize = 8;

#[derive(Debug, Arbitrary)]
enum Op {
    Add {
        id: u8,
        weight: u8,
    },
    Remove {
        id: u8,
    },
    SetUp {
        id: u8,
        up: bool,
    },
    Start {
        id: u8,
    },
    Finish {
        id: u8,
        latency_us: u32,
        ok: bool,
        at: Clock,
    },
    SetNow {
        at: Clock,
    },
    Pick {
        key: u64,
    },
}

/// Clock values: small steps from the last one, either way, or anywhere.
#[derive(Debug, Arbitrary)]
enum Clock {
    Forward(u32),
    Backward(u16),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    tau_us: u64,
    default_rtt_us: u32,
    seed: u64,
    ops: Vec<Op>,
}

fn id(i: u8) -> BackendId {
    BackendId(u16::from(i % 12))
}

fn weight(w: u8) -> u32 {
    match w {
        255 => chring::MAX_WEIGHT,
        254 => chring::MAX_WEIGHT + 1,
        w => u32::from(w % 5),
    }
}

/// The inherent API the three share (PowerOfTwo through the traits).
trait Lb {
    fn name(&self) -> &'static str;
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> bool;
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend>;
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend>;
    fn start(&mut self, id: BackendId) -> Result<(), LoadError>;
    fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError>;
    fn pick(&mut self, key: u64) -> Option<BackendId>;
    fn pick_two(&mut self, key: u64) -> Option<(BackendId, Option<BackendId>)>;
    fn backends(&self) -> &[Backend];
    /// Strategy-specific checks after each step.
    fn check(&self) {}
}

macro_rules! lb {
    ($t:ident, $name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> bool {
            $t::add(self, id, name, weight).is_ok()
        }
        fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
            $t::remove(self, id)
        }
        fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
            $t::set_up(self, id, up)
        }
        fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
            $t::start(self, id)
        }
        fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError> {
            $t::finish(self, id, o)
        }
        fn pick(&mut self, key: u64) -> Option<BackendId> {
            $t::pick(self, key)
        }
        fn pick_two(&mut self, key: u64) -> Option<(BackendId, Option<BackendId>)> {
            $t::pick_two(self, key)
        }
        fn backends(&self) -> &[Backend] {
            $t::backends(self)
        }
    };
}

impl Lb for LeastConn<B> {
    lb!(LeastConn, "least_conn");
}

impl Lb for PeakEwma<B> {
    lb!(PeakEwma, "peak_ewma");
    fn check(&self) {
        for b in PeakEwma::backends(self) {
            assert!(self.estimate_us(b.id).is_some(), "peak_ewma: estimate");
        }
    }
}

impl Lb for HealthScore<B> {
    lb!(HealthScore, "health_score");
    fn check(&self) {
        for b in HealthScore::backends(self) {
            let s = self.score(b.id).expect("health_score: score");
            assert!((SCORE_FLOOR..=SCORE_ONE).contains(&s), "score {s}");
        }
    }
}

impl Lb for PowerOfTwo<B> {
    fn name(&self) -> &'static str {
        "p2c"
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> bool {
        Membership::add(self, id, name, weight).is_ok()
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        Membership::remove(self, id)
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        Membership::set_up(self, id, up)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        LoadAware::start(self, id)
    }
    fn finish(&mut self, id: BackendId, o: Outcome) -> Result<(), LoadError> {
        LoadAware::finish(self, id, o)
    }
    fn pick(&mut self, key: u64) -> Option<BackendId> {
        LoadAware::pick(self, key)
    }
    fn pick_two(&mut self, key: u64) -> Option<(BackendId, Option<BackendId>)> {
        let two = PowerOfTwo::pick_two(self, key);
        assert_eq!(
            two.map(|t| t.0),
            LoadAware::pick(self, key),
            "p2c: pick_two leads with pick"
        );
        two
    }
    fn backends(&self) -> &[Backend] {
        FleetView::backends(self)
    }
}

/// `(id, weight, up, in flight)` per backend, in insertion order.
type Model = Vec<(BackendId, u32, bool, u32)>;

fn step(s: &mut dyn Lb, m: &mut Model, op: &Op, clock: u64) {
    let name = s.name();
    let find = |m: &Model, id: BackendId| m.iter().position(|b| b.0 == id);
    match *op {
        Op::Add { id: i, weight: w } => {
            let (id, w) = (id(i), weight(w));
            let n = [i % 12];
            let ok = (1..=chring::MAX_WEIGHT).contains(&w) && find(m, id).is_none() && m.len() < B;
            assert_eq!(s.add(id, &n, w), ok, "{name}: add({id:?}, {w})");
            if ok {
                m.push((id, w, true, 0));
            }
        }
        Op::Remove { id: i } => {
            let id = id(i);
            match find(m, id) {
                Some(slot) => {
                    assert_eq!(s.remove(id), Ok(()), "{name}: remove");
                    m.remove(slot);
                }
                None => assert_eq!(s.remove(id), Err(UnknownBackend(id)), "{name}"),
            }
        }
        Op::SetUp { id: i, up } => {
            let id = id(i);
            match find(m, id) {
                Some(slot) => {
                    assert_eq!(s.set_up(id, up), Ok(()), "{name}: set_up");
                    m[slot].2 = up;
                }
                None => assert_eq!(s.set_up(id, up), Err(UnknownBackend(id)), "{name}"),
            }
        }
        Op::Start { id: i } => {
            let id = id(i);
            match find(m, id) {
                Some(slot) => {
                    assert_eq!(s.start(id), Ok(()), "{name}: start");
                    m[slot].3 = m[slot].3.saturating_add(1);
                }
                None => assert!(matches!(s.start(id), Err(LoadError::Unknown(_))), "{name}"),
            }
        }
        Op::Finish {
            id: i,
            latency_us,
            ok,
            ..
        } => {
            let id = id(i);
            let o = Outcome {
                latency_us,
                ok,
                at_us: clock,
            };
            let r = s.finish(id, o);
            match find(m, id) {
                None => assert!(matches!(r, Err(LoadError::Unknown(_))), "{name}: {r:?}"),
                Some(slot) if m[slot].3 == 0 => {
                    assert_eq!(r, Err(LoadError::NotStarted), "{name}")
                }
                Some(slot) => {
                    assert_eq!(r, Ok(()), "{name}: finish");
                    m[slot].3 -= 1;
                }
            }
        }
        // Peak EWMA's clock: moved by the caller before the step.
        Op::SetNow { .. } => {}
        Op::Pick { key } => {
            let up: Vec<BackendId> = m.iter().filter(|b| b.2).map(|b| b.0).collect();
            let p = s.pick(key);
            assert_eq!(
                p.is_some(),
                !up.is_empty(),
                "{name}: pick {p:?} with up {up:?}"
            );
            assert!(
                p.is_none_or(|p| up.contains(&p)),
                "{name}: picked a down backend"
            );
            match s.pick_two(key) {
                None => assert!(up.is_empty(), "{name}: pick_two None with up {up:?}"),
                Some((a, b)) => {
                    assert!(up.contains(&a), "{name}: pick_two's first is down");
                    assert_eq!(b.is_some(), up.len() > 1, "{name}: runner-up {b:?}");
                    if let Some(b) = b {
                        assert_ne!(a, b, "{name}: runner-up equals the pick");
                        assert!(up.contains(&b), "{name}: runner-up is down");
                    }
                }
            }
        }
    }
    let got: Model = s
        .backends()
        .iter()
        .map(|b| (b.id, b.weight, b.up, b.load))
        .collect();
    assert_eq!(&got, m, "{name}: fleet differs from the model");
    s.check();
}

fuzz_target!(|input: Input| {
    let tau = NonZeroU64::new(input.tau_us).unwrap_or(NonZeroU64::MIN);
    let mut lc: LeastConn<B> = LeastConn::new();
    let mut pe: PeakEwma<B> = PeakEwma::with_decay(tau, input.default_rtt_us).with_seed(input.seed);
    let mut hs: HealthScore<B> = HealthScore::new().with_seed(input.seed);
    let mut p2: PowerOfTwo<B> = PowerOfTwo::new();
    let mut models: [Model; 4] = Default::default();
    let mut clock = 0u64;
    for op in input.ops.iter().take(512) {
        if let Op::Finish { at, .. } | Op::SetNow { at } = op {
            clock = match *at {
                Clock::Forward(d) => clock.wrapping_add(u64::from(d)),
                Clock::Backward(d) => clock.wrapping_sub(u64::from(d)),
                Clock::Any(t) => t,
            };
        }
        if let Op::SetNow { .. } = op {
            pe.set_now(clock);
        }
        step(&mut lc, &mut models[0], op, clock);
        step(&mut pe, &mut models[1], op, clock);
        step(&mut hs, &mut models[2], op, clock);
        step(&mut p2, &mut models[3], op, clock);
    }
});
