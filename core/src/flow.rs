//! Flow pinning: a [`TtlCache`] in front of a strategy, as an L4 balancer or
//! switch keeps it, so a live flow keeps its backend when the fleet changes and
//! only flows whose backend left (or went down) are placed again.
//!
//! [`route`] is the one decision, shared by the line protocol's controller
//! (`protocol::Controller::route`) and the firmware's balancer: the caller
//! advances the table's clock and checks that a backend is up first, so that an
//! error changes nothing.

use core::hash::Hash;

use crate::cache::{CacheIndex, TtlCache};
use crate::fleet::BackendId;

/// How a flow was routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum How {
    /// The flow table had the flow, on a live backend: sent there.
    Pinned,
    /// A new flow (or one whose entry had expired or been evicted): the strategy
    /// picked its backend, and the table remembers it.
    New,
    /// The flow table had the flow, but its backend has left or is down: the
    /// strategy picked again, and the entry now points at the new backend.
    Repinned,
}

/// Where a flow went, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Route {
    /// The backend.
    pub backend: BackendId,
    /// Why that one.
    pub how: How,
}

/// Routes one packet of `flow`: the backend `flows` has for it if
/// `live(strategy, backend)` says it is still up ([`How::Pinned`]), else
/// `pick(strategy)`'s choice, which `flows` then remembers ([`How::New`] or
/// [`How::Repinned`]). `strategy` is whatever both closures consult (a
/// [`Strategy`](crate::Strategy), or a controller's state): passed in, so that
/// `live` can read it and `pick` change it.
///
/// Does not advance the table's clock (call [`TtlCache::advance`] first). Cost:
/// one table lookup, plus `pick` and one insert when the flow is not pinned to a
/// live backend (an insert into a full table evicts its stalest entry).
///
/// Returns `None`, with the table's entries unchanged, only when `pick` finds
/// no backend (callers check that one is up first, so that it cannot happen).
pub fn route<K, const N: usize, Ix, S: ?Sized>(
    flows: &mut TtlCache<K, BackendId, N, Ix>,
    flow: K,
    strategy: &mut S,
    live: impl FnOnce(&S, BackendId) -> bool,
    pick: impl FnOnce(&mut S) -> Option<BackendId>,
) -> Option<Route>
where
    K: Hash + Eq,
    Ix: CacheIndex,
{
    let pinned = flows.get(&flow).copied();
    match pinned {
        Some(backend) if live(strategy, backend) => Some(Route {
            backend,
            how: How::Pinned,
        }),
        stale => {
            let backend = pick(strategy)?;
            let _ = flows.insert(flow, backend);
            let how = if stale.is_some() {
                How::Repinned
            } else {
                How::New
            };
            Some(Route { backend, how })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Duration, Instant};

    #[test]
    fn pins_new_keeps_live_repins_dead() {
        let mut t: TtlCache<u32, BackendId, 8, u16> = TtlCache::new_idle(Duration(100)).unwrap();
        t.advance(Instant(0)).unwrap();
        let (a, b) = (BackendId(1), BackendId(2));
        let first = route(&mut t, 7, &mut (), |_, _| true, |_| Some(a));
        assert_eq!(
            first,
            Some(Route {
                backend: a,
                how: How::New
            })
        );
        // Pinned: the strategy is not asked (it would say b).
        let again = route(&mut t, 7, &mut (), |_, _| true, |_| Some(b));
        assert_eq!(
            again,
            Some(Route {
                backend: a,
                how: How::Pinned
            })
        );
        // a is down: re-picked, and the table now says b.
        let moved = route(&mut t, 7, &mut (), |_, id| id != a, |_| Some(b));
        assert_eq!(
            moved,
            Some(Route {
                backend: b,
                how: How::Repinned
            })
        );
        assert_eq!(t.peek(&7), Some(&b));
        // No backend: None, and the entry stays.
        assert_eq!(route(&mut t, 7, &mut (), |_, _| false, |_| None), None);
        assert_eq!(t.peek(&7), Some(&b));
        assert_eq!(route(&mut t, 8, &mut (), |_, _| true, |_| None), None);
        assert_eq!(t.peek(&8), None);
    }
}
