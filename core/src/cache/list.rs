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

    pub(super) fn unlink(&mut self, list: usize, i: usize) {
        let p = self.link(i, prev_slot(list));
        let n = self.link(i, next_slot(list));
        match p {
            Some(p) => self.set_link(p, next_slot(list), n),
            None => self.set_end(list, HEAD, n),
        }
        match n {
            Some(n) => self.set_link(n, prev_slot(list), p),
            None => self.set_end(list, TAIL, p),
        }
        self.set_link(i, prev_slot(list), None);
        self.set_link(i, next_slot(list), None);
    }

    pub(super) fn push_back(&mut self, list: usize, i: usize) {
        let t = self.end(list, TAIL);
        self.set_link(i, prev_slot(list), t);
        self.set_link(i, next_slot(list), None);
        match t {
            Some(t) => self.set_link(t, next_slot(list), Some(i)),
            None => self.set_end(list, HEAD, Some(i)),
        }
        self.set_end(list, TAIL, Some(i));
    }

    pub(super) fn move_to_back(&mut self, list: usize, i: usize) {
        if self.end(list, TAIL) != Some(i) {
            self.unlink(list, i);
            self.push_back(list, i);
        }
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
