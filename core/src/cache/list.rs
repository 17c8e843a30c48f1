//! The intrusive lists of a [`TtlCache`]: each entry's `[Ix; 5]` links hold its
//! bucket chain's next entry and its places in two doubly linked lists, LRU
//! (least to most recently used) and expiry (oldest to newest stamp).

use super::{CacheIndex, TtlCache};

// Link slots in each entry's `[Ix; 5]`.
pub(super) const CHAIN: usize = 0;
// List ids; list `l` uses slots `1 + 2l` (prev) and `2 + 2l` (next).
pub(super) const LRU: usize = 0;
pub(super) const EXP: usize = 1;
pub(super) const HEAD: usize = 0;
pub(super) const TAIL: usize = 1;

#[inline]
pub(super) const fn prev_slot(list: usize) -> usize {
    1 + 2 * list
}

#[inline]
pub(super) const fn next_slot(list: usize) -> usize {
    2 + 2 * list
}

#[inline]
pub(super) fn decode<Ix: CacheIndex>(x: Ix) -> Option<usize> {
    if x == Ix::NIL {
        None
    } else {
        Some(x.to_usize())
    }
}

#[inline]
pub(super) fn encode<Ix: CacheIndex>(i: Option<usize>) -> Ix {
    match i {
        Some(i) => Ix::from_usize(i),
        None => Ix::NIL,
    }
}

impl<K, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    #[inline]
    pub(super) fn link(&self, i: usize, slot: usize) -> Option<usize> {
        match self.links.get(i).and_then(|l| l.get(slot)) {
            Some(&x) => decode(x),
            None => {
                debug_assert!(false, "link of a missing entry");
                None
            }
        }
    }

    #[inline]
    pub(super) fn set_link(&mut self, i: usize, slot: usize, to: Option<usize>) {
        match self.links.get_mut(i).and_then(|l| l.get_mut(slot)) {
            Some(x) => *x = encode(to),
            None => debug_assert!(false, "link of a missing entry"),
        }
    }

    #[inline]
    pub(super) fn end(&self, list: usize, which: usize) -> Option<usize> {
        self.ends
            .get(list)
            .and_then(|e| e.get(which))
            .and_then(|&x| decode(x))
    }

    #[inline]
    pub(super) fn set_end(&mut self, list: usize, which: usize, to: Option<usize>) {
        if let Some(x) = self.ends.get_mut(list).and_then(|e| e.get_mut(which)) {
            *x = encode(to);
        }
    }

    /// Sets link `slot` of entry `i` to `to`; a no-op if `i` is [`CacheIndex::NIL`]
    /// (or out of range), which lets the list splices below skip a branch.
    #[inline]
    fn put(&mut self, i: Ix, slot: usize, to: Ix) {
        if let Some(x) = self
            .links
            .get_mut(i.to_usize())
            .and_then(|l| l.get_mut(slot))
        {
            *x = to;
        }
    }

    /// Link `slot` of entry `i`, raw ([`CacheIndex::NIL`] if none or out of range).
    #[inline]
    fn raw(&self, i: usize, slot: usize) -> Ix {
        match self.links.get(i).and_then(|l| l.get(slot)) {
            Some(&x) => x,
            None => Ix::NIL,
        }
    }

    /// The raw `[HEAD, TAIL]` of `list`.
    #[inline]
    fn ends_of(&mut self, list: usize) -> Option<&mut [Ix; 2]> {
        self.ends.get_mut(list)
    }

    /// Takes entry `i` out of `list` (its links become NIL).
    pub(super) fn unlink(&mut self, list: usize, i: usize) {
        let (ps, ns) = (prev_slot(list), next_slot(list));
        let p = self.raw(i, ps);
        let n = self.raw(i, ns);
        let Some(ends) = self.ends_of(list) else {
            return;
        };
        if p == Ix::NIL {
            ends[HEAD] = n;
        }
        if n == Ix::NIL {
            ends[TAIL] = p;
        }
        self.put(p, ns, n);
        self.put(n, ps, p);
        let ix = Ix::from_usize(i);
        self.put(ix, ps, Ix::NIL);
        self.put(ix, ns, Ix::NIL);
    }

    /// Appends entry `i` (not in `list`) at the back of `list`.
    pub(super) fn push_back(&mut self, list: usize, i: usize) {
        let (ps, ns) = (prev_slot(list), next_slot(list));
        let ix = Ix::from_usize(i);
        let Some(ends) = self.ends_of(list) else {
            return;
        };
        let t = ends[TAIL];
        if t == Ix::NIL {
            ends[HEAD] = ix;
        }
        ends[TAIL] = ix;
        self.put(t, ns, ix);
        self.put(ix, ps, t);
        self.put(ix, ns, Ix::NIL);
    }

    /// Moves entry `i` (in `list`) to the back of `list`: one splice, no work if
    /// it is there already. The hot path of every hit: the links are read through
    /// one local slice (one length in a register), and a NIL neighbour is skipped
    /// by the bounds check rather than by a branch of its own.
    #[inline]
    pub(super) fn move_to_back(&mut self, list: usize, i: usize) {
        let (ps, ns) = (prev_slot(list), next_slot(list));
        let ix = Ix::from_usize(i);
        let Some(ends) = self.ends.get_mut(list) else {
            return;
        };
        let t = ends[TAIL];
        if t == ix {
            return;
        }
        let links: &mut [[Ix; 5]] = &mut self.links;
        let Some(l) = links.get_mut(i) else {
            debug_assert!(false, "link of a missing entry");
            return;
        };
        let (p, n) = match (l.get(ps), l.get(ns)) {
            (Some(&p), Some(&n)) => (p, n),
            _ => return,
        };
        if let Some(x) = l.get_mut(ps) {
            *x = t;
        }
        if let Some(x) = l.get_mut(ns) {
            *x = Ix::NIL;
        }
        // `i` is not the tail, so it has a successor `n` and the list a tail `t`.
        if p == Ix::NIL {
            ends[HEAD] = n;
        }
        ends[TAIL] = ix;
        let mut put = |at: Ix, slot: usize, to: Ix| {
            if let Some(x) = links.get_mut(at.to_usize()).and_then(|l| l.get_mut(slot)) {
                *x = to;
            }
        };
        put(p, ns, n);
        put(n, ps, p);
        put(t, ns, ix);
    }

    /// Makes whatever points at `target` in bucket `b`'s chain (the bucket head or
    /// the predecessor) point at `to` instead.
    pub(super) fn chain_redirect(&mut self, b: usize, target: usize, to: Option<usize>) {
        let Some(head) = self.buckets.get_mut(b) else {
            debug_assert!(false, "bucket out of range");
            return;
        };
        if decode(*head) == Some(target) {
            *head = encode(to);
            return;
        }
        let mut cur = decode(*head);
        let mut steps = 0;
        while let Some(c) = cur {
            let next = self.link(c, CHAIN);
            if next == Some(target) {
                self.set_link(c, CHAIN, to);
                return;
            }
            cur = next;
            steps += 1;
            if steps > N {
                break;
            }
        }
        debug_assert!(false, "entry missing from its bucket chain");
    }
}
