//! Criterion group `lb`: one request's worth of load-aware balancing, `pick` +
//! `start` + `finish`, per strategy, with requests in flight.
//!
//! Dimensions: ids `lb/<strategy>/<B>`, `B` = 8 and 64 backends (the strategy's
//! capacity and its fleet), weights 1, 2, 3 cycling, all up. One iteration runs
//! 4096 requests (criterion's throughput is 4096 elements): request `i` picks a
//! backend for a pre-generated key hash, starts on it, and then the request
//! picked 32 requests earlier finishes (so 32 are in flight, in FIFO order), with
//! an [`Outcome`] whose latency depends on the backend (backend `b` takes
//! `500 + 250 x (b mod 8)` µs, jittered by a pre-generated 0..256 µs) and fails
//! one time in 64, at a clock advancing 50 µs per request. Keys, jitter and
//! failures are generated before the timed loop; the state (loads, estimates,
//! scores) carries over between iterations, as in a running balancer.
//!
//! Strategies: `least_conn` ([`LeastConn`]), `peak_ewma` ([`PeakEwma`]),
//! `health_score` ([`HealthScore`]), with their inherent `finish(id, outcome)`;
//! for reference the existing load-counting ones, `p2c` ([`PowerOfTwo`]) and
//! `round_robin` ([`RoundRobin`]), through [`LoadAware`] (which ignores the
//! outcome's latency).
//!
//! Peers: none. tower's `p2c` balancer over `PeakEwma` (what Linkerd runs) is the
//! well-known Rust implementation, but it is a `std` + tokio `Service` stack (a
//! `Discover` stream of services, polled readiness), not a pick function; no
//! `no_std` crate on crates.io offers these strategies.
//!
//! Run: `cargo bench -p chring-benches --bench lb` (about a minute), or with a
//! filter such as `-- 'lb/peak_ewma'`.

use std::hint::black_box;
use std::time::Duration;

use chring::{
    BackendId, HealthScore, LeastConn, LoadAware, Outcome, PeakEwma, PowerOfTwo, RoundRobin,
    Strategy,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::{Rng, SeedableRng};

/// Requests per iteration.
const OPS: usize = 4096;
/// Requests in flight.
const WINDOW: usize = 32;
/// Clock step per request, µs.
const STEP_US: u64 = 50;

/// The pre-generated inputs of one iteration.
struct Inputs {
    keys: Vec<u64>,
    jitter: Vec<u32>,
    fail: Vec<bool>,
}

fn inputs() -> Inputs {
    let mut r = rand_pcg::Pcg64Mcg::seed_from_u64(15);
    let mut keys = Vec::with_capacity(OPS);
    let mut jitter = Vec::with_capacity(OPS);
    let mut fail = Vec::with_capacity(OPS);
    for _ in 0..OPS {
        keys.push(r.next_u64());
        let x = r.next_u32();
        jitter.push(x & 0xFF);
        fail.push((x >> 8) & 63 == 0);
    }
    Inputs { keys, jitter, fail }
}

/// What the bench needs of a strategy.
trait Lb {
    fn pick(&mut self, key_hash: u64) -> Option<BackendId>;
    fn start(&mut self, id: BackendId);
    fn finish(&mut self, id: BackendId, o: Outcome);
}

macro_rules! inherent {
    ($t:ident) => {
        impl<const B: usize> Lb for $t<B> {
            fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
                $t::pick(self, key_hash)
            }
            fn start(&mut self, id: BackendId) {
                $t::start(self, id).expect("start");
            }
            fn finish(&mut self, id: BackendId, o: Outcome) {
                $t::finish(self, id, o).expect("finish");
            }
        }
    };
}
inherent!(LeastConn);
inherent!(PeakEwma);
inherent!(HealthScore);

macro_rules! via_trait {
    ($t:ident) => {
        impl<const B: usize> Lb for $t<B> {
            fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
                LoadAware::pick(self, key_hash)
            }
            fn start(&mut self, id: BackendId) {
                LoadAware::start(self, id).expect("start");
            }
            fn finish(&mut self, id: BackendId, o: Outcome) {
                LoadAware::finish(self, id, o).expect("finish");
            }
        }
    };
}
via_trait!(PowerOfTwo);
via_trait!(RoundRobin);

/// A strategy in a running state: its requests in flight and its clock.
struct Running<S> {
    s: S,
    window: [Option<(BackendId, u32)>; WINDOW],
    clock: u64,
    next: usize,
}

impl<S: Lb> Running<S> {
    fn new(s: S) -> Self {
        Self {
            s,
            window: [None; WINDOW],
            clock: 0,
            next: 0,
        }
    }

    /// One request: pick, start, and finish the one 32 requests older.
    #[inline]
    fn request(&mut self, inp: &Inputs, i: usize) -> BackendId {
        let id = self.s.pick(inp.keys[i]).expect("a backend is up");
        self.s.start(id);
        self.clock += STEP_US;
        let slot = &mut self.window[self.next];
        if let Some((old, latency_us)) = slot.take() {
            let o = Outcome {
                latency_us,
                ok: !inp.fail[i],
                at_us: self.clock,
            };
            self.s.finish(old, o);
        }
        *slot = Some((id, 500 + 250 * u32::from(id.0 % 8) + inp.jitter[i]));
        self.next = (self.next + 1) % WINDOW;
        id
    }
}

fn fleet<S: Strategy>(mut s: S, n: usize) -> S {
    for i in 0..n {
        let name = chring_benches::backend_name(i);
        s.add(BackendId(i as u16), name.as_bytes(), 1 + (i % 3) as u32)
            .expect("add");
    }
    s
}

fn bench_one<S: Lb>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    s: S,
    inp: &Inputs,
) {
    let mut run = Running::new(s);
    // Untimed warm pass: every backend is used (the strategies spread load).
    let mut seen = vec![false; n];
    for i in 0..OPS {
        seen[usize::from(run.request(inp, i).0)] = true;
    }
    assert!(
        seen.iter().filter(|&&x| x).count() >= n / 2,
        "{name}/{n}: too few backends used"
    );
    g.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter(|| {
            for i in 0..OPS {
                black_box(run.request(inp, black_box(i)));
            }
        });
    });
}

fn at<const B: usize>(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let inp = inputs();
    bench_one(g, "least_conn", B, fleet(LeastConn::<B>::new(), B), &inp);
    let pe = PeakEwma::<B>::new().with_seed(1);
    bench_one(g, "peak_ewma", B, fleet(pe, B), &inp);
    let hs = HealthScore::<B>::new().with_seed(1);
    bench_one(g, "health_score", B, fleet(hs, B), &inp);
    bench_one(g, "p2c", B, fleet(PowerOfTwo::<B>::new(), B), &inp);
    bench_one(g, "round_robin", B, fleet(RoundRobin::<B>::new(), B), &inp);
}

fn lb(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb");
    g.throughput(Throughput::Elements(OPS as u64));
    at::<8>(&mut g);
    at::<64>(&mut g);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = lb
}
criterion_main!(benches);
