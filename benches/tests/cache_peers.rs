//! The adapters of the `cache_*` benchmark groups (`benches/cache_peers/impls.rs`,
//! compiled here as they are in the benchmark) do what the benchmark's ids claim:
//! a filled cache holds exactly its `N` keys with their values, a get finds a
//! present key and not an absent one, an insert of a new key into a full cache
//! evicts one entry (the least recently used, for the strict-LRU caches), and
//! chring's advancing clock expires nothing. Issue 11.

#[path = "../benches/cache_peers/impls.rs"]
#[allow(dead_code)]
mod impls;

use impls::{
    Chring, ConstLruPeer, Hashlink, Lru, PeerCache, QuickCache, Schnellru, Uluru, Workload,
};

/// Operations per benchmark iteration, as in the benchmark.
const OPS: usize = 4096;

/// Runs `f` on a thread with a large stack: a debug build copies the 3 MiB
/// caches through the stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("test thread");
}

/// Every contract the benchmark relies on, for one cache type.
fn contract<C: PeerCache>(w: &Workload) {
    let id = format!("{}/{}", C::ID, C::N);
    let mut c: C = w.filled();
    assert_eq!(c.len(), C::N, "{id}: full");
    for &k in &w.present {
        assert_eq!(c.peek(k), Some(Workload::value(k)), "{id}: filled key");
    }
    // Hits, in the benchmark's shuffled order.
    for &k in w.hits.iter().take(OPS) {
        assert_eq!(c.get(k), Some(Workload::value(k)), "{id}: hit");
    }
    // Misses.
    for &k in &w.misses {
        assert_eq!(c.get(k), None, "{id}: miss");
        assert_eq!(c.peek(k), None, "{id}: a miss inserted nothing");
    }
    assert_eq!(c.len(), C::N, "{id}: gets changed the size");
    c.check();

    // On a fresh fill (recency = insertion order): replacing a present key does
    // not evict.
    let mut c: C = w.filled();
    let k0 = w.present[0];
    c.insert(k0, 7);
    assert_eq!(c.len(), C::N, "{id}: replace evicted");
    assert_eq!(c.get(k0), Some(7), "{id}: replaced value");

    // Recency: touch present[1] (present[0] was just used too), then insert N - 2
    // new keys. A strict LRU keeps both touched keys and evicts every other
    // filled key, oldest first.
    let k1 = w.present[1];
    assert!(c.get(k1).is_some());
    let fresh = &w.fresh[..C::N - 2];
    for (i, &k) in fresh.iter().enumerate() {
        c.insert(k, Workload::value(k));
        assert_eq!(c.len(), C::N, "{id}: insert {i} did not evict exactly one");
        if C::STRICT_LRU {
            let victim = w.present[i + 2];
            assert_eq!(c.peek(victim), None, "{id}: insert {i} evicted not the LRU");
        }
    }
    if C::STRICT_LRU {
        assert_eq!(c.peek(k0), Some(7), "{id}: recently used key evicted");
        assert_eq!(
            c.peek(k1),
            Some(Workload::value(k1)),
            "{id}: touched key evicted"
        );
        for &k in fresh {
            assert_eq!(c.peek(k), Some(Workload::value(k)), "{id}: new key lost");
        }
    } else {
        // quick_cache is scan resistant: new keys enter a small probation queue and
        // evict each other there while the filled (now hot) keys stay, so only the
        // newest key is sure to be present; each insert still evicted one entry.
        let last = *fresh.last().expect("keys");
        assert_eq!(
            c.peek(last),
            Some(Workload::value(last)),
            "{id}: newest key"
        );
    }
    c.check();
}

#[test]
fn workload_streams_are_distinct_and_sized() {
    for n in [1024, 65_536] {
        let w = Workload::new(n, OPS);
        let stream = n.max(OPS);
        assert_eq!(w.present.len(), n);
        assert_eq!(w.hits.len(), stream);
        assert_eq!(w.misses.len(), OPS);
        assert_eq!(w.fresh.len(), 2 * stream);
        let mut all: Vec<u64> = w
            .present
            .iter()
            .chain(&w.misses)
            .chain(&w.fresh)
            .copied()
            .collect();
        let len = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), len, "keys repeat across lists");
        // The hit stream is a shuffle of the present keys, each equally often.
        let mut hits = w.hits.clone();
        hits.sort_unstable();
        let mut want: Vec<u64> = w.present.iter().copied().cycle().take(stream).collect();
        want.sort_unstable();
        assert_eq!(hits, want);
        let first: Vec<u64> = w.present.iter().copied().cycle().take(64).collect();
        assert_ne!(&w.hits[..64], &first[..], "not shuffled");
    }
}

#[test]
fn adapters_keep_the_contract_at_1024() {
    big_stack(|| {
        let w = Workload::new(1024, OPS);
        contract::<Chring<1024, u16>>(&w);
        contract::<Schnellru<1024>>(&w);
        contract::<Lru<1024>>(&w);
        contract::<Hashlink<1024>>(&w);
        contract::<QuickCache<1024>>(&w);
        contract::<Uluru<1024>>(&w);
        contract::<ConstLruPeer<1024, u16>>(&w);
    });
}

#[test]
fn adapters_keep_the_contract_at_65536() {
    big_stack(|| {
        let w = Workload::new(65_536, OPS);
        contract::<Chring<65_536, u32>>(&w);
        contract::<Schnellru<65_536>>(&w);
        contract::<Lru<65_536>>(&w);
        contract::<Hashlink<65_536>>(&w);
        contract::<QuickCache<65_536>>(&w);
        contract::<ConstLruPeer<65_536, u32>>(&w);
    });
}

#[test]
fn chring_clock_advances_one_tick_per_call_without_expiring() {
    big_stack(|| {
        let w = Workload::new(1024, OPS);
        let mut c: Chring<1024, u16> = w.filled();
        for &k in w.hits.iter().take(OPS) {
            assert!(c.get(k).is_some());
        }
        for &k in &w.fresh[..OPS] {
            c.insert(k, 1);
        }
        // 1024 + 4096 inserts and 4096 gets, one tick each, nothing expired.
        c.check();
    });
}
