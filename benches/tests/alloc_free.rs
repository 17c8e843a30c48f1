//! Proof that chring allocates nothing on its hot paths: a counting global
//! allocator records every allocation call made by the test's own thread, and
//! each check asserts that the count did not move across many lookups of every
//! strategy and every cache operation (fleet changes too, for good measure).
//!
//! `chring` is `no_std` without `alloc`, so it cannot allocate at all; this test
//! shows it on the host build that the benchmarks measure. Runs under
//! `cargo test --workspace`.

use chring::{
    BackendId, BoundedLoad, Duration, Instant, Jump, Maglev, Modulo, Outcome, PowerOfTwo,
    Rendezvous, Ring, RingConfig, RoundRobin, Strategy, TtlCache, hash, hash_u64,
};
use chring_benches::{Counting, backend_name, str_key};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and asserts that this thread made no allocation call meanwhile.
fn no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    Counting::count_calls_here(true);
    let before = Counting::calls_here();
    let r = f();
    let made = Counting::calls_here() - before;
    Counting::count_calls_here(false);
    assert_eq!(made, 0, "{what}: {made} allocation calls");
    r
}

/// Runs `f` on a thread with a large stack: the structures are hundreds of KiB
/// and a debug build copies them through the stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("test thread");
}

const N: u16 = 100;
const KEYS: u64 = 20_000;

fn fill(s: &mut dyn Strategy, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        s.add(BackendId(i as u16), name.as_bytes(), 1).expect("add");
    }
}

#[test]
fn the_counter_sees_allocations() {
    Counting::count_calls_here(true);
    let before = Counting::calls_here();
    let v = std::hint::black_box(vec![1u8; 64]);
    let made = Counting::calls_here() - before;
    Counting::count_calls_here(false);
    drop(v);
    assert_eq!(made, 1);
}

#[test]
fn lookups_allocate_nothing() {
    big_stack(|| {
        let names: Vec<String> = (0..usize::from(N) + 1).map(backend_name).collect();
        let str_keys: Vec<String> = (0..KEYS).map(str_key).collect();
        let mut ring: Box<Ring<128, 12_800, 65_536>> =
            Box::new(Ring::new(RingConfig::new(100)).expect("config"));
        let mut ring0: Box<Ring<128, 12_800, 0>> =
            Box::new(Ring::new(RingConfig::new(100)).expect("config"));
        let mut maglev: Box<Maglev<128, 65_537>> = Box::new(Maglev::new());
        let mut jump: Box<Jump<128, 128>> = Box::new(Jump::new());
        let mut hrw: Box<Rendezvous<128>> = Box::new(Rendezvous::new());
        let mut bounded: Box<BoundedLoad<128, 12_800, 65_536>> =
            Box::new(BoundedLoad::new(RingConfig::new(100), 1.25).expect("config"));
        let mut modulo: Box<Modulo<128>> = Box::new(Modulo::new());
        let mut p2c: Box<PowerOfTwo<128>> = Box::new(PowerOfTwo::new());
        let mut rr: Box<RoundRobin<128>> = Box::new(RoundRobin::new());
        let all: [&mut dyn Strategy; 9] = [
            ring.as_mut(),
            ring0.as_mut(),
            maglev.as_mut(),
            jump.as_mut(),
            hrw.as_mut(),
            bounded.as_mut(),
            modulo.as_mut(),
            p2c.as_mut(),
            rr.as_mut(),
        ];
        let fleet = &names[..usize::from(N)];
        for s in all {
            let name = s.name();
            no_alloc(&format!("{name}: build"), || fill(s, fleet));
            no_alloc(&format!("{name}: pick"), || {
                let mut sum = 0u64;
                for k in 0..KEYS {
                    let b = s.pick(hash_u64(k)).expect("backend");
                    s.start(b).expect("start");
                    s.finish(b, Outcome::default()).expect("finish");
                    sum += u64::from(b.0);
                }
                for k in &str_keys {
                    sum += u64::from(s.pick(hash(k.as_bytes())).expect("backend").0);
                }
                std::hint::black_box(sum)
            });
            no_alloc(&format!("{name}: fleet changes"), || {
                s.set_up(BackendId(3), false).expect("down");
                s.pick(hash_u64(1)).expect("backend");
                s.set_up(BackendId(3), true).expect("up");
                s.add(BackendId(N), names[usize::from(N)].as_bytes(), 2)
                    .expect("add");
                s.remove(BackendId(N)).expect("remove");
            });
        }
        // The inherent lookups the benchmarks time.
        no_alloc("inherent lookups", || {
            let mut sum = 0u64;
            for k in 0..KEYS {
                let h = hash_u64(k);
                for b in [
                    ring.lookup(h),
                    ring.pick(h),
                    ring0.lookup(h),
                    maglev.lookup(h),
                    jump.lookup(h),
                    hrw.lookup(h),
                    modulo.lookup(h),
                ] {
                    sum += u64::from(b.expect("backend").0);
                }
                sum += u64::from(chring::strategy::jump_hash(h, u32::from(N)));
                sum += ring.replicas(h, 3).map(|b| u64::from(b.0)).sum::<u64>();
            }
            std::hint::black_box(sum)
        });
    });
}

#[test]
fn cache_operations_allocate_nothing() {
    /// Longer than the test's 3 x 65536 ticks, so the big cache fills and evicts.
    const TTL: u32 = 1 << 20;
    big_stack(|| {
        fn exercise<const C: usize, Ix: chring::CacheIndex + Send>(
            cache: &mut TtlCache<u64, u16, C, Ix>,
        ) {
            let keys: Vec<u64> = (0..3 * C as u64).map(hash_u64).collect();
            no_alloc("cache", || {
                let mut t = 0u32;
                for (i, &k) in keys.iter().enumerate() {
                    t += 1;
                    // New keys, evictions once full, replacements.
                    cache.advance(Instant(t)).expect("clock");
                    let _ = cache.insert(k, i as u16);
                    let _ = cache.insert(k, 1);
                    assert!(cache.get(&k).is_some());
                    let _ = cache.get_mut(&(k ^ 1));
                    let _ = cache.peek(&keys[i / 2]);
                    if i % 7 == 0 {
                        let _ = cache.remove(&k);
                    }
                    if i == 100 {
                        cache.set_seed(k);
                    }
                }
                // Expiry: jump past the TTL, then the purge.
                t += 2 * TTL;
                let _ = cache.advance(Instant(t)).expect("clock");
                assert!(cache.is_empty());
                std::hint::black_box(cache.stats())
            });
            assert!(cache.stats().evictions > 0);
        }
        let mut small: Box<TtlCache<u64, u16, 1024, u16>> =
            Box::new(TtlCache::new(Duration(TTL)).expect("ttl"));
        exercise(small.as_mut());
        let mut big: Box<TtlCache<u64, u16, 65_536, u32>> =
            Box::new(TtlCache::new_idle(Duration(TTL)).expect("ttl"));
        exercise(big.as_mut());
    });
}
