//! Helpers shared by chring's benchmarks, the `memory` example and the
//! allocation test: a counting global allocator and the fleet's names.
//!
//! The benchmarks themselves live under `benches/` (one criterion target,
//! `cargo bench -p chring-benches`); see `benches/main.rs` for what they measure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Number of backends in the memory and build measurements.
pub const N_BUILD: usize = 100;

/// Ring points (virtual nodes) per backend where the algorithm has points.
pub const VNODES: u32 = 100;

/// The name of backend `i`, as every benchmark and example spells it: an
/// `ip:port` string, so pingora-ketama (which hashes a `SocketAddr`) hashes the
/// same bytes as chring.
#[must_use]
pub fn backend_name(i: usize) -> String {
    format!("10.0.{}.{}:11211", i / 256, i % 256)
}

/// A string key of 16 bytes, `customer-0012345` style, for `n < 10^7`.
#[must_use]
pub fn str_key(n: u64) -> String {
    format!("customer-{:07}", n % 10_000_000)
}

/// A global allocator that forwards to [`System`] and counts.
///
/// Install it with `#[global_allocator] static A: Counting = Counting;` in a
/// binary, then read [`Counting::snapshot`]. Heap bytes are counted in every
/// thread; allocation *calls* are also counted per thread while
/// [`Counting::count_calls_here`] is on, so a test can prove that the code it
/// runs allocates nothing even though the test harness's other threads do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static THREAD_CALLS: Cell<usize> = const { Cell::new(0) };
}

/// Heap statistics since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapStats {
    /// Bytes allocated and not yet freed.
    pub live: usize,
    /// Largest `live` seen since the last [`Counting::reset_peak`].
    pub peak: usize,
    /// Bytes ever allocated (reallocations count their new size).
    pub total: usize,
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub calls: usize,
}

impl Counting {
    /// The counters now.
    #[must_use]
    pub fn snapshot() -> HeapStats {
        HeapStats {
            live: LIVE.load(Relaxed),
            peak: PEAK.load(Relaxed),
            total: TOTAL.load(Relaxed),
            calls: CALLS.load(Relaxed),
        }
    }

    /// Restarts the peak from the current live bytes.
    pub fn reset_peak() {
        PEAK.store(LIVE.load(Relaxed), Relaxed);
    }

    /// Starts (`true`) or stops counting this thread's allocation calls.
    pub fn count_calls_here(on: bool) {
        ARMED.with(|a| a.set(on));
    }

    /// Allocation calls this thread made while counting was on.
    #[must_use]
    pub fn calls_here() -> usize {
        THREAD_CALLS.with(Cell::get)
    }

    fn on_alloc(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(live, Relaxed);
        TOTAL.fetch_add(size, Relaxed);
        CALLS.fetch_add(1, Relaxed);
        // `try_with`: the thread-locals may already be gone while a thread exits.
        let _ = ARMED.try_with(|armed| {
            if armed.get() {
                let _ = THREAD_CALLS.try_with(|c| c.set(c.get() + 1));
            }
        });
    }

    fn on_free(size: usize) {
        LIVE.fetch_sub(size, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged,
// so `System`'s guarantees hold; the bookkeeping only touches atomics and
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::on_free(layout.size());
            Self::on_alloc(new_size);
        }
        p
    }
}
