//! The compat modes behind the strategy traits: [`NginxPlacement`],
//! [`KetamaPlacement`] and [`HaproxyPlacement`] wrap
//! [`NginxConsistent`], [`Ketama`] and [`HaproxyConsistent`] as
//! [`Placement`] + [`Membership`] (+ [`LoadAware`] and [`Strategy`], as every
//! keyed strategy), so a caller can switch between a chring ring and a
//! daemon-compatible one behind one type (`Box<dyn Strategy>`, or
//! `Arc<dyn Placement>` in a proxy).
//!
//! # Key hashes
//!
//! Each daemon hashes keys its own way (CRC-32, MD5 or one of twemproxy's
//! twelve hashes, HAProxy's functions), so the `key_hash` these adapters take
//! is **their own** 32-bit hash, widened to `u64`: get it from
//! [`Placement::key_hash`] (`p.lookup(p.key_hash(key))`), which every
//! placement offers (chring's strategies return [`hash`](crate::hash())).
//! `lookup` and `pick` read the low 32 bits.
//!
//! # Ids and names
//!
//! Backends get a caller-chosen [`BackendId`] as everywhere in chring; the
//! name is what the daemon hashes: nginx's `server` address text, twemproxy's
//! server identity ([`ServerLine::identity`]), and, for HAProxy, the server's
//! numeric `id` written in decimal (`b"3"`, see [`assign_ids`]).
//!
//! # Health
//!
//! `lookup` is the daemon's placement with every server; `pick` is what the
//! daemon does once servers are down, which each adapter keeps in a second
//! table (so each uses twice the wrapped type's memory):
//!
//! | adapter | `pick` with servers down | cost of `set_up` |
//! | --- | --- | --- |
//! | [`NginxPlacement`] | the `down` flag: nginx walks past down servers' points, up to 20; after that (nginx's round-robin fallback) the `h % up`-th server that is up | *O*(1) |
//! | [`KetamaPlacement`] | `auto_eject_hosts`: the continuum rebuilt without the ejected servers, exactly as twemproxy rebuilds it | one continuum build |
//! | [`HaproxyPlacement`] | the server's nodes leave the tree, as HAProxy dequeues a down server | one tree build |

use crate::compat::haproxy::{self, HaproxyConsistent, HashType};
use crate::compat::nginx::{self, NginxAddError, NginxConsistent};
use crate::compat::twemproxy::{Ketama, KetamaError, KeyHash, hash_tag};
#[cfg(doc)]
use crate::compat::{haproxy::assign_ids, twemproxy::ServerLine};
use crate::fleet::{AddError, Backend, BackendId, BatchError, Fleet, UnknownBackend};
use crate::strategy::{
    FleetView, LoadAware, Membership, Placement, Strategy, fleet_view, keyed_load, keyed_strategy,
};

/// The up backend a failover picks when the daemon's own walk gives none:
/// the `(h mod up)`-th backend that is up, in insertion order.
fn nth_up(backends: &[Backend], h: u64) -> Option<BackendId> {
    let up = backends.iter().filter(|b| b.up).count() as u64;
    let n = h.checked_rem(up)? as usize;
    backends.iter().filter(|b| b.up).nth(n).map(|b| b.id)
}

/// The id of the backend in `slot`.
fn id_at(fleet_backends: &[Backend], slot: usize) -> Option<BackendId> {
    fleet_backends.get(slot).map(|b| b.id)
}

fn nginx_error(e: NginxAddError) -> AddError {
    match e {
        NginxAddError::Full => AddError::Full,
        NginxAddError::ZeroWeight => AddError::ZeroWeight,
        NginxAddError::Duplicate => AddError::DuplicateName,
        _ => AddError::NoRoom,
    }
}

// ---------------------------------------------------------------------------
// nginx

/// nginx's `hash $key consistent;` as a [`Placement`]: up to `S` servers, `P`
/// points per table (`160 x total weight`), addresses of up to `N` bytes.
///
/// `key_hash` is nginx's CRC-32 of the key. Differences from
/// [`NginxConsistent::lookup`]: an empty key is placed by its CRC (nginx uses
/// round robin for it), and `pick` replaces nginx's round-robin fallback (21
/// points in a row on down servers) by a key-derived choice among the up
/// servers.
///
/// Cost: `lookup` and `pick` are a binary search, *O*(log P); `add` re-sorts
/// both tables, *O*(P log P); `remove` rebuilds both from the kept addresses;
/// `set_up` is *O*(1). Memory: two [`NginxConsistent<S, P>`] plus `N` bytes per
/// server.
#[derive(Debug, Clone)]
pub struct NginxPlacement<const S: usize, const P: usize, const N: usize = 64> {
    fleet: Fleet<S>,
    names: heapless::Vec<heapless::Vec<u8, N>, S>,
    /// Every server, none marked down: `lookup`.
    all: NginxConsistent<S, P>,
    /// The same servers with the fleet's down flags: `pick`.
    marked: NginxConsistent<S, P>,
}

impl<const S: usize, const P: usize, const N: usize> Default for NginxPlacement<S, P, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const P: usize, const N: usize> NginxPlacement<S, P, N> {
    /// An empty upstream.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            names: heapless::Vec::new(),
            all: NginxConsistent::new(),
            marked: NginxConsistent::new(),
        }
    }

    /// The wrapped upstream, every server up (server index = insertion order).
    #[must_use]
    pub fn upstream(&self) -> &NginxConsistent<S, P> {
        &self.all
    }

    /// Rebuilds both tables from the kept addresses (after a removal).
    fn rebuild(&mut self) -> Result<(), AddError> {
        self.all = NginxConsistent::new();
        self.marked = NginxConsistent::new();
        for (name, b) in self.names.iter().zip(self.fleet.as_slice()) {
            self.all.add(name, b.weight).map_err(nginx_error)?;
            let i = self.marked.add(name, b.weight).map_err(nginx_error)?;
            self.marked
                .set_down(i, !b.up)
                .map_err(|_| AddError::NoRoom)?;
        }
        Ok(())
    }
}

impl<const S: usize, const P: usize, const N: usize> FleetView for NginxPlacement<S, P, N> {
    fleet_view!("nginx", |s| s.fleet);
}

impl<const S: usize, const P: usize, const N: usize> Placement for NginxPlacement<S, P, N> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        if backends.len() == 1 {
            return id_at(backends, 0);
        }
        id_at(backends, self.all.lookup_hash(key_hash as u32)?)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        if backends.len() == 1 {
            return backends.first().filter(|b| b.up).map(|b| b.id);
        }
        match self.marked.lookup_hash(key_hash as u32) {
            Some(slot) => id_at(backends, slot),
            None => nth_up(backends, key_hash),
        }
    }
    /// nginx's CRC-32 of the key.
    fn key_hash(&self, key: &[u8]) -> u64 {
        u64::from(nginx::crc32(key))
    }
}

impl<const S: usize, const P: usize, const N: usize> Membership for NginxPlacement<S, P, N> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        let stored = heapless::Vec::from_slice(name).map_err(|_| AddError::BadName)?;
        if self.names.is_full() {
            return Err(AddError::Full);
        }
        self.all.add(name, weight).map_err(nginx_error)?;
        // The same servers as `all`: what fits there fits here.
        let marked = self.marked.add(name, weight);
        debug_assert!(marked.is_ok());
        self.fleet.push(id, h, weight)?;
        self.names.push(stored).map_err(|_| AddError::Full)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        if slot < self.names.len() {
            self.names.remove(slot);
        }
        // The remaining servers fitted before, in the same order: cannot fail.
        let rebuilt = self.rebuild();
        debug_assert!(rebuilt.is_ok());
        Ok(())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.set_up(id, up)?;
        self.marked
            .set_down(slot, !up)
            .map_err(|_| UnknownBackend(id))
    }
}

impl<const S: usize, const P: usize, const N: usize> LoadAware for NginxPlacement<S, P, N> {
    keyed_load!(|s| s.fleet);
}

impl<const S: usize, const P: usize, const N: usize> Strategy for NginxPlacement<S, P, N> {
    keyed_strategy!();
}

// ---------------------------------------------------------------------------
// twemproxy ketama

fn ketama_error(e: KetamaError) -> AddError {
    match e {
        KetamaError::Full => AddError::Full,
        KetamaError::ZeroWeight => AddError::ZeroWeight,
        KetamaError::WeightOverflow => AddError::WeightTooLarge,
        KetamaError::BadName => AddError::BadName,
        KetamaError::DuplicateName => AddError::DuplicateName,
        _ => AddError::NoRoom,
    }
}

/// twemproxy's `distribution: ketama` as a [`Placement`]: up to `B` servers,
/// `P` continuum points per continuum (`160 x servers` suffices), identities
/// of up to `N` bytes.
///
/// `key_hash` is the pool's key hash of the key (after its `hash_tag`; the
/// empty key hashes to 0), as [`Ketama::server_for`] computes it, so
/// `lookup(key_hash(key))` is `server_for(key)`. `pick` follows
/// `auto_eject_hosts`: a second continuum over the servers that are up.
///
/// Cost: `lookup` and `pick` are a binary search; `add`, `remove` and
/// `set_up` rebuild a continuum (`40 x servers` MD5 digests; see [`Ketama`]),
/// and [`add_many`](Self::add_many) loads a whole pool with one build per
/// continuum.
#[derive(Debug, Clone)]
pub struct KetamaPlacement<const B: usize, const P: usize, const N: usize = 64> {
    fleet: Fleet<B>,
    /// Every server: `lookup`.
    all: Ketama<B, P, N>,
    /// The servers that are up: `pick`.
    live: Ketama<B, P, N>,
    /// `live`'s server index -> fleet slot.
    live_slots: heapless::Vec<u16, B>,
}

impl<const B: usize, const P: usize, const N: usize> KetamaPlacement<B, P, N> {
    /// An empty pool hashing keys with `key_hash`.
    #[must_use]
    pub const fn new(key_hash: KeyHash) -> Self {
        Self {
            fleet: Fleet::new(),
            all: Ketama::new(key_hash),
            live: Ketama::new(key_hash),
            live_slots: heapless::Vec::new(),
        }
    }

    /// Sets the pool's `hash_tag` (two bytes, e.g. `{}`), or none.
    pub fn set_hash_tag(&mut self, tag: Option<[u8; 2]>) {
        self.all.set_hash_tag(tag);
        self.live.set_hash_tag(tag);
    }

    /// The wrapped pool, every server in it (server index = insertion order).
    #[must_use]
    pub fn pool(&self) -> &Ketama<B, P, N> {
        &self.all
    }

    /// Adds several backends, `(id, identity, weight)` each in configuration
    /// order, building each continuum once: how a proxy loads a pool.
    ///
    /// # Errors
    /// [`BatchError`]: the first entry that cannot be added and why; nothing
    /// changes then.
    pub fn add_many(
        &mut self,
        backends: &[(BackendId, &[u8], u32)],
    ) -> Result<(), BatchError<AddError>> {
        let before = self.fleet.len();
        let undo = |fleet: &mut Fleet<B>| {
            while fleet.len() > before {
                fleet.remove_slot(fleet.len() - 1);
            }
        };
        let mut servers: heapless::Vec<(&[u8], u32), B> = heapless::Vec::new();
        for (index, &(id, name, weight)) in backends.iter().enumerate() {
            let pushed = self
                .fleet
                .check_add(id, name, weight)
                .and_then(|h| self.fleet.push(id, h, weight))
                .and_then(|_| servers.push((name, weight)).map_err(|_| AddError::Full));
            if let Err(error) = pushed {
                undo(&mut self.fleet);
                return Err(BatchError { index, error });
            }
        }
        if let Err(e) = self.all.add_many(&servers) {
            undo(&mut self.fleet);
            return Err(BatchError {
                index: e.index,
                error: ketama_error(e.error),
            });
        }
        self.rebuild_live();
        Ok(())
    }

    /// Rebuilds the continuum of the servers that are up.
    fn rebuild_live(&mut self) {
        let mut servers: heapless::Vec<(&[u8], u32), B> = heapless::Vec::new();
        self.live_slots.clear();
        for (slot, b) in self.fleet.as_slice().iter().enumerate() {
            if let (true, Some(name)) = (b.up, self.all.name(slot)) {
                let _ = servers.push((name, b.weight));
                let _ = self.live_slots.push(slot as u16);
            }
        }
        self.live.clear();
        // A subset of a pool that fitted: cannot fail.
        let built = self.live.add_many(&servers);
        debug_assert!(built.is_ok());
    }
}

/// `lookup`/`pick` on one continuum: one server takes every key, as in
/// [`Ketama::server_for`].
fn ketama_dispatch<const B: usize, const P: usize, const N: usize>(
    k: &Ketama<B, P, N>,
    key_hash: u64,
) -> Option<usize> {
    match k.len() {
        0 => None,
        1 => Some(0),
        _ => k.dispatch(key_hash as u32),
    }
}

impl<const B: usize, const P: usize, const N: usize> FleetView for KetamaPlacement<B, P, N> {
    fleet_view!("ketama", |s| s.fleet);
}

impl<const B: usize, const P: usize, const N: usize> Placement for KetamaPlacement<B, P, N> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        id_at(self.fleet.as_slice(), ketama_dispatch(&self.all, key_hash)?)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        let i = ketama_dispatch(&self.live, key_hash)?;
        id_at(self.fleet.as_slice(), usize::from(*self.live_slots.get(i)?))
    }
    /// The pool's key hash after its `hash_tag`; 0 for the empty key.
    fn key_hash(&self, key: &[u8]) -> u64 {
        let key = match self.all.hash_tag() {
            Some(tag) => hash_tag(key, tag),
            None => key,
        };
        if key.is_empty() {
            0
        } else {
            u64::from(self.all.key_hash().hash(key))
        }
    }
}

impl<const B: usize, const P: usize, const N: usize> Membership for KetamaPlacement<B, P, N> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.add_many(&[(id, name, weight)]).map_err(|e| e.error)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.all.remove(slot).map_err(|_| UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        self.rebuild_live();
        Ok(())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        let was = self.fleet.get(slot).map(|b| b.up);
        self.fleet.set_up(id, up)?;
        if was != Some(up) {
            self.rebuild_live();
        }
        Ok(())
    }
}

impl<const B: usize, const P: usize, const N: usize> LoadAware for KetamaPlacement<B, P, N> {
    keyed_load!(|s| s.fleet);
}

impl<const B: usize, const P: usize, const N: usize> Strategy for KetamaPlacement<B, P, N> {
    keyed_strategy!();
}

// ---------------------------------------------------------------------------
// HAProxy

/// HAProxy's `hash-type consistent` as a [`Placement`]: up to `S` servers, `P`
/// nodes per tree (`16 x total weight`), weights `1..=256`.
///
/// A backend's name is its HAProxy server `id` in decimal (`b"1"`, `b"42"`);
/// anything else is [`AddError::BadName`]. `key_hash` is the backend's
/// [`HashType::key_hash`] of the key. `pick` is the tree without the servers
/// that are down, as HAProxy dequeues them.
///
/// Cost: `lookup` and `pick` are a binary search; `add` re-sorts both trees,
/// `remove` rebuilds both, `set_up` rebuilds the live tree (*O*(P log P)).
#[derive(Debug, Clone)]
pub struct HaproxyPlacement<const S: usize, const P: usize> {
    fleet: Fleet<S>,
    /// HAProxy id per fleet slot.
    ids: heapless::Vec<u32, S>,
    /// Every server: `lookup`.
    all: HaproxyConsistent<S, P>,
    /// The servers that are up: `pick`.
    live: HaproxyConsistent<S, P>,
    /// `live`'s server index -> fleet slot.
    live_slots: heapless::Vec<u16, S>,
}

/// A decimal `u32` without sign or spaces.
fn decimal_id(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn haproxy_error(e: haproxy::HaproxyAddError) -> AddError {
    match e {
        haproxy::HaproxyAddError::Full => AddError::Full,
        haproxy::HaproxyAddError::WeightTooLarge => AddError::WeightTooLarge,
        haproxy::HaproxyAddError::ZeroId => AddError::BadName,
        haproxy::HaproxyAddError::DuplicateId => AddError::DuplicateName,
        _ => AddError::NoRoom,
    }
}

impl<const S: usize, const P: usize> HaproxyPlacement<S, P> {
    /// An empty backend hashing keys with `hash`.
    #[must_use]
    pub const fn new(hash: HashType) -> Self {
        Self {
            fleet: Fleet::new(),
            ids: heapless::Vec::new(),
            all: HaproxyConsistent::new(hash),
            live: HaproxyConsistent::new(hash),
            live_slots: heapless::Vec::new(),
        }
    }

    /// The wrapped backend, every server in it (server index = insertion order).
    #[must_use]
    pub fn backend(&self) -> &HaproxyConsistent<S, P> {
        &self.all
    }

    /// Rebuilds the live tree (`all` too when `all_too`) from the kept ids.
    fn rebuild(&mut self, all_too: bool) {
        let hash = self.all.hash_type();
        if all_too {
            self.all = HaproxyConsistent::new(hash);
        }
        self.live = HaproxyConsistent::new(hash);
        self.live_slots.clear();
        for (slot, (b, &id)) in self.fleet.as_slice().iter().zip(&self.ids).enumerate() {
            // Every server fitted before, in the same order: cannot fail.
            if all_too {
                let added = self.all.add(id, b.weight);
                debug_assert!(added.is_ok());
            }
            if b.up {
                let added = self.live.add(id, b.weight);
                debug_assert!(added.is_ok());
                let _ = self.live_slots.push(slot as u16);
            }
        }
    }
}

impl<const S: usize, const P: usize> FleetView for HaproxyPlacement<S, P> {
    fleet_view!("haproxy", |s| s.fleet);
}

impl<const S: usize, const P: usize> Placement for HaproxyPlacement<S, P> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        id_at(
            self.fleet.as_slice(),
            self.all.lookup_hash(key_hash as u32)?,
        )
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        let i = self.live.lookup_hash(key_hash as u32)?;
        id_at(self.fleet.as_slice(), usize::from(*self.live_slots.get(i)?))
    }
    /// The backend's [`HashType::key_hash`].
    fn key_hash(&self, key: &[u8]) -> u64 {
        u64::from(self.all.hash_type().key_hash(key))
    }
}

impl<const S: usize, const P: usize> Membership for HaproxyPlacement<S, P> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        let puid = decimal_id(name).ok_or(AddError::BadName)?;
        if self.ids.is_full() {
            return Err(AddError::Full);
        }
        self.all.add(puid, weight).map_err(haproxy_error)?;
        // A subset of `all`'s servers: what fits there fits here.
        let live = self.live.add(puid, weight);
        debug_assert!(live.is_ok());
        let slot = self.fleet.push(id, h, weight)?;
        let _ = self.live_slots.push(slot as u16);
        self.ids.push(puid).map_err(|_| AddError::Full)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        if slot < self.ids.len() {
            self.ids.remove(slot);
        }
        self.rebuild(true);
        Ok(())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        let was = self.fleet.get(slot).map(|b| b.up);
        self.fleet.set_up(id, up)?;
        if was != Some(up) {
            self.rebuild(false);
        }
        Ok(())
    }
}

impl<const S: usize, const P: usize> LoadAware for HaproxyPlacement<S, P> {
    keyed_load!(|s| s.fleet);
}

impl<const S: usize, const P: usize> Strategy for HaproxyPlacement<S, P> {
    keyed_strategy!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::haproxy::HashFunction;
    use crate::strategy::tests::{backend_name, check_placement};

    fn keys() -> Vec<u64> {
        // Spread over the 32 bits these placements read.
        (0..1500u64).map(|i| crate::hash_u64(i) >> 32).collect()
    }

    /// The trait contract (lookup ignores health, pick never down, pick ==
    /// lookup when all up, empty -> None) on each adapter.
    #[test]
    fn contract_holds_for_every_adapter() {
        let keys = keys();
        for (n, down) in [
            (1, &[][..]),
            (1, &[0][..]),
            (5, &[2][..]),
            (8, &[0, 3, 7][..]),
        ] {
            let nginx = Box::new(NginxPlacement::<8, 4096>::new());
            check_placement(nginx.as_ref().clone(), n, down, &keys, backend_name);
            let ketama = KetamaPlacement::<8, 1280>::new(KeyHash::Md5);
            check_placement(ketama, n, down, &keys, backend_name);
            let haproxy =
                HaproxyPlacement::<8, 1024>::new(HashType::new(HashFunction::Sdbm, false));
            check_placement(haproxy, n, down, &keys, |i| format!("{}", i + 1));
        }
    }

    /// Routing by key through the trait is the daemon's routing.
    #[test]
    fn key_routing_matches_the_wrapped_types() {
        let names: Vec<String> = (0..6).map(|i| format!("10.0.0.{i}:11211")).collect();
        let mut ng: Box<NginxPlacement<8, 4096>> = Box::default();
        let mut raw_ng: Box<NginxConsistent<8, 4096>> = Box::default();
        let mut kt: KetamaPlacement<8, 1280> = KetamaPlacement::new(KeyHash::Fnv1a64);
        kt.set_hash_tag(Some(*b"{}"));
        let mut raw_kt: Ketama<8, 1280> = Ketama::new(KeyHash::Fnv1a64);
        raw_kt.set_hash_tag(Some(*b"{}"));
        let ht = HashType::new(HashFunction::Djb2, true);
        let mut hp: HaproxyPlacement<8, 1024> = HaproxyPlacement::new(ht);
        let mut raw_hp: HaproxyConsistent<8, 1024> = HaproxyConsistent::new(ht);
        for (i, n) in names.iter().enumerate() {
            let id = BackendId(100 + i as u16);
            let w = 1 + i as u32 % 2;
            Membership::add(ng.as_mut(), id, n.as_bytes(), w).unwrap();
            raw_ng.add(n.as_bytes(), w).unwrap();
            Membership::add(&mut kt, id, n.as_bytes(), w).unwrap();
            raw_kt.add(n.as_bytes(), w).unwrap();
            Membership::add(&mut hp, id, format!("{}", i + 1).as_bytes(), w).unwrap();
            raw_hp.add(i as u32 + 1, w).unwrap();
        }
        let id = |i: usize| BackendId(100 + i as u16);
        for k in 0..500 {
            let key = format!("user:{k}:{{tag{}}}", k % 17);
            let key = key.as_bytes();
            let p: &dyn Placement = ng.as_ref();
            assert_eq!(p.lookup(p.key_hash(key)), raw_ng.lookup(key).map(id));
            let p: &dyn Placement = &kt;
            assert_eq!(p.lookup(p.key_hash(key)), raw_kt.server_for(key).map(id));
            let p: &dyn Placement = &hp;
            assert_eq!(p.lookup(p.key_hash(key)), raw_hp.lookup(key).map(id));
        }
        // nginx's down flag: pick is nginx's walk.
        Membership::set_up(ng.as_mut(), id(2), false).unwrap();
        raw_ng.set_down(2, true).unwrap();
        for k in 0..500 {
            let key = format!("k{k}");
            assert_eq!(
                Placement::pick(ng.as_ref(), ng.key_hash(key.as_bytes())),
                raw_ng.lookup(key.as_bytes()).map(id)
            );
        }
        // twemproxy's auto_eject_hosts: the continuum without the ejected server.
        Membership::set_up(&mut kt, id(1), false).unwrap();
        let mut ejected: Ketama<8, 1280> = Ketama::new(KeyHash::Fnv1a64);
        ejected.set_hash_tag(Some(*b"{}"));
        let kept: Vec<usize> = (0..6).filter(|&i| i != 1).collect();
        for &i in &kept {
            ejected.add(names[i].as_bytes(), 1 + i as u32 % 2).unwrap();
        }
        for k in 0..500 {
            let key = format!("k{k}");
            let want = ejected.server_for(key.as_bytes()).map(|j| id(kept[j]));
            assert_eq!(Placement::pick(&kt, kt.key_hash(key.as_bytes())), want);
        }
        // Removal: the same as a pool built without the server.
        Membership::remove(&mut hp, id(0)).unwrap();
        let mut fewer: HaproxyConsistent<8, 1024> = HaproxyConsistent::new(ht);
        for i in 1..6u32 {
            fewer.add(i + 1, 1 + i % 2).unwrap();
        }
        for k in 0..500 {
            let key = format!("k{k}");
            let want = fewer.lookup(key.as_bytes()).map(|j| id(j + 1));
            assert_eq!(Placement::lookup(&hp, hp.key_hash(key.as_bytes())), want);
        }
    }

    #[test]
    fn bad_names_and_batches_are_refused_whole() {
        let mut hp: HaproxyPlacement<4, 1024> =
            HaproxyPlacement::new(HashType::new(HashFunction::Sdbm, false));
        for bad in [&b""[..], b"x", b"-1", b"0", b"99999999999", b"1 "] {
            assert_eq!(
                Membership::add(&mut hp, BackendId(1), bad, 1),
                Err(AddError::BadName)
            );
        }
        assert_eq!(
            Membership::add(&mut hp, BackendId(1), b"7", 257),
            Err(AddError::WeightTooLarge)
        );
        assert!(hp.is_empty());
        let mut ng: NginxPlacement<4, 1024, 8> = NginxPlacement::new();
        assert_eq!(
            Membership::add(&mut ng, BackendId(1), b"toolong:11211", 1),
            Err(AddError::BadName)
        );
        assert!(ng.is_empty());
        let mut kt: KetamaPlacement<4, 640> = KetamaPlacement::new(KeyHash::Md5);
        let batch: [(BackendId, &[u8], u32); 3] = [
            (BackendId(1), b"a:1", 1),
            (BackendId(2), b"b:1", 1),
            (BackendId(1), b"c:1", 1),
        ];
        assert_eq!(
            kt.add_many(&batch),
            Err(BatchError {
                index: 2,
                error: AddError::DuplicateId
            })
        );
        assert!(kt.is_empty() && kt.pool().is_empty());
        kt.add_many(&batch[..2]).unwrap();
        assert_eq!(kt.len(), 2);
    }
}
