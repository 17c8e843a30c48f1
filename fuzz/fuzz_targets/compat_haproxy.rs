//! `compat::haproxy` against a naive reference written here from HAProxy
//! 2.6's `lb_chash.c`: server ids from `assign_ids`, 16 nodes per unit of
//! weight at `full_hash(id * 4096 + j)` (Bob Jenkins' integer hash times
//! 3221225473, re-typed here), a `BTreeMap` tree, and `chash_get_server_hash`'s
//! choice of the closer of the node at or after the key and the one before it
//! (the one before on a tie). The key hash functions are chring's (pinned by
//! the daemon tests); the reference also checks `avalanche` on top of them.
//!
//! Input: explicit ids (0 = none), weights, a hash type, then keys and raw
//! hashes; `assign_ids`, every `add`, every lookup must agree.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use chring::compat::haproxy::{
    HaproxyAddError, HaproxyConsistent, HashFunction, HashType, IdError, assign_ids,
};
use libfuzzer_sys::fuzz_target;

const S: usize = 6;
const P: usize = 16 * 256 * 2;

#[derive(Debug, Arbitrary)]
struct Input {
    function: u8,
    avalanche: bool,
    /// (explicit id or 0, weight)
    servers: Vec<(Id, u16)>,
    keys: Vec<Vec<u8>>,
    hashes: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Id {
    None,
    Small(u8),
    Any(u32),
    /// Equal to a small id modulo 2^20.
    Alias(u8, u8),
}

impl Id {
    fn value(self) -> u32 {
        match self {
            Id::None => 0,
            Id::Small(i) => u32::from(i % 8),
            Id::Any(i) => i,
            Id::Alias(i, k) => u32::from(i % 8) + (u32::from(k % 8) << 20),
        }
    }
}

fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed55d16).wrapping_add(a << 12);
    a = (a ^ 0xc761c23c) ^ (a >> 19);
    a = a.wrapping_add(0x165667b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2646c) ^ (a << 9);
    a = a.wrapping_add(0xfd7046c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a4f09) ^ (a >> 16);
    a.wrapping_mul(3221225473)
}

/// HAProxy's numbering: explicit ids first; the others take the smallest free
/// id at or after a counter that moves past every server.
fn reference_ids(explicit: &[u32]) -> Result<Vec<u32>, IdError> {
    for (i, &id) in explicit.iter().enumerate() {
        if id > i32::MAX as u32 {
            return Err(IdError::OutOfRange);
        }
        if id != 0 && explicit[..i].contains(&id) {
            return Err(IdError::Duplicate);
        }
    }
    let mut ids = explicit.to_vec();
    let mut next = 1u32;
    for i in 0..ids.len() {
        if ids[i] == 0 {
            while ids.contains(&next) {
                next += 1;
                if next > i32::MAX as u32 {
                    return Err(IdError::Exhausted);
                }
            }
            ids[i] = next;
        }
        next = next.saturating_add(1);
    }
    Ok(ids)
}

#[derive(Default)]
struct Reference {
    ids: Vec<u32>,
    tree: BTreeMap<u32, usize>,
}

impl Reference {
    fn add(&mut self, id: u32, weight: u32) -> Result<usize, HaproxyAddError> {
        if weight > 256 {
            return Err(HaproxyAddError::WeightTooLarge);
        }
        if id == 0 {
            return Err(HaproxyAddError::ZeroId);
        }
        if self.ids.len() == S {
            return Err(HaproxyAddError::Full);
        }
        if self.ids.iter().any(|&o| o % (1 << 20) == id % (1 << 20)) {
            return Err(HaproxyAddError::DuplicateId);
        }
        if self.tree.len() + 16 * weight as usize > P {
            return Err(HaproxyAddError::NoRoom);
        }
        let index = self.ids.len();
        for j in 0..16 * weight {
            let prev = self
                .tree
                .insert(full_hash(id.wrapping_mul(4096).wrapping_add(j)), index);
            assert!(
                prev.is_none(),
                "two nodes on one key: ids differ modulo 2^20"
            );
        }
        self.ids.push(id);
        Ok(index)
    }

    fn lookup_hash(&self, hash: u32) -> Option<usize> {
        let (&nk, &ns) = self
            .tree
            .range(hash..)
            .next()
            .or_else(|| self.tree.iter().next())?;
        let (&pk, &ps) = self
            .tree
            .range(..nk)
            .next_back()
            .or_else(|| self.tree.iter().next_back())?;
        let dp = hash.wrapping_sub(pk);
        let dn = nk.wrapping_sub(hash);
        Some(if dp <= dn { ps } else { ns })
    }
}

fuzz_target!(|input: Input| {
    let function = [
        HashFunction::Sdbm,
        HashFunction::Djb2,
        HashFunction::Wt6,
        HashFunction::Crc32,
    ][usize::from(input.function % 4)];
    let ht = HashType::new(function, input.avalanche);
    let servers = &input.servers[..input.servers.len().min(8)];
    let mut ids: Vec<u32> = servers.iter().map(|s| s.0.value()).collect();
    let want = reference_ids(&ids);
    let got = assign_ids(&mut ids);
    match want {
        Ok(w) => {
            assert_eq!(got, Ok(()), "assign_ids");
            assert_eq!(ids, w, "assigned ids");
        }
        Err(e) => {
            assert_eq!(got, Err(e), "assign_ids error");
            // Still exercise add with the explicit ids.
            ids = servers.iter().map(|s| s.0.value()).collect();
        }
    }
    let mut be: HaproxyConsistent<S, P> = HaproxyConsistent::new(ht);
    let mut r = Reference::default();
    for (&id, s) in ids.iter().zip(servers) {
        let w = u32::from(s.1 % 300);
        assert_eq!(be.add(id, w), r.add(id, w), "add(id {id}, weight {w})");
    }
    assert_eq!(be.len(), r.ids.len());
    assert_eq!(be.nodes(), r.tree.len());
    for key in input.keys.iter().take(64) {
        let h = function.hash(key);
        let h = if input.avalanche { full_hash(h) } else { h };
        assert_eq!(ht.key_hash(key), h, "avalanche");
        assert_eq!(be.lookup(key), r.lookup_hash(h), "key {key:?}");
    }
    for &h in input.hashes.iter().take(64) {
        assert_eq!(be.lookup_hash(h), r.lookup_hash(h), "lookup_hash({h:#x})");
    }
});
