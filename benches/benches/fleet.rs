//! Builders: every chring strategy and every peer crate, filled with `n` backends
//! of weight 1. Shared by the benchmarks and `examples/memory.rs`, so what is
//! timed is what is weighed.
//!
//! Backend `i` is named `10.0.{i / 256}.{i % 256}:11211`
//! ([`chring_benches::backend_name`]). Points per backend: chring's ring 100
//! ([`VNODES`]); each peer's closest equivalent, listed on its builder.

use std::collections::hash_map::RandomState;
use std::hash::Hash;
use std::net::SocketAddr;

use chring::{
    BackendId, BoundedLoad, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy,
};
use chring_benches::{VNODES, backend_name};

/// chring's Maglev table size (prime), and the table the maglev crate is given.
pub(crate) const MAGLEV_M: usize = 65_537;

/// Bounded loads' balance factor (the paper's and HAProxy's usual 1.25).
pub(crate) const BALANCE: f32 = 1.25;

/// Names of backends `0..n`.
pub(crate) fn names(n: usize) -> Vec<String> {
    (0..n).map(backend_name).collect()
}

fn fill(s: &mut dyn Strategy, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let id = BackendId(u16::try_from(i).expect("n fits in u16"));
        s.add(id, name.as_bytes(), 1).expect("add");
    }
}

// ---------------------------------------------------------------- chring

/// `Ring<B, P, I>` with 100 points per backend.
pub(crate) fn ring<const B: usize, const P: usize, const I: usize>(
    names: &[String],
) -> Box<Ring<B, P, I>> {
    let mut r = Box::new(Ring::new(RingConfig::new(VNODES)).expect("config"));
    fill(r.as_mut(), names);
    r
}

/// The `(id, name, weight 1)` list of `names`, for the bulk constructors.
fn batch(names: &[String]) -> Vec<(BackendId, &[u8], u32)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                BackendId(u16::try_from(i).expect("n fits in u16")),
                n.as_bytes(),
                1,
            )
        })
        .collect()
}

/// [`ring`] built with one `Ring::add_many` (one sort, one index rebuild).
pub(crate) fn ring_bulk<const B: usize, const P: usize, const I: usize>(
    names: &[String],
) -> Box<Ring<B, P, I>> {
    let mut r = Box::new(Ring::new(RingConfig::new(VNODES)).expect("config"));
    r.add_many(&batch(names)).expect("add_many");
    r
}

/// [`maglev`] built with one `Maglev::add_many` (one table rebuild).
pub(crate) fn maglev_bulk<const B: usize>(names: &[String]) -> Box<Maglev<B, MAGLEV_M>> {
    let mut m = Box::new(Maglev::new());
    m.add_many(&batch(names)).expect("add_many");
    m
}

/// `BoundedLoad<B, P, I>`: the same ring, balance factor [`BALANCE`].
pub(crate) fn bounded<const B: usize, const P: usize, const I: usize>(
    names: &[String],
) -> Box<BoundedLoad<B, P, I>> {
    let mut r = Box::new(BoundedLoad::new(RingConfig::new(VNODES), BALANCE).expect("config"));
    fill(r.as_mut(), names);
    r
}

/// `Maglev<B, 65537>`: one table rebuild per added backend (chring has no bulk
/// constructor).
pub(crate) fn maglev<const B: usize>(names: &[String]) -> Box<Maglev<B, MAGLEV_M>> {
    let mut m = Box::new(Maglev::new());
    fill(m.as_mut(), names);
    m
}

/// `Jump<B, S>`: one bucket per backend.
pub(crate) fn jump<const B: usize, const S: usize>(names: &[String]) -> Box<Jump<B, S>> {
    let mut j = Box::new(Jump::new());
    fill(j.as_mut(), names);
    j
}

/// `Rendezvous<B>`.
pub(crate) fn rendezvous<const B: usize>(names: &[String]) -> Box<Rendezvous<B>> {
    let mut r = Box::new(Rendezvous::new());
    fill(r.as_mut(), names);
    r
}

/// `Modulo<B>`.
pub(crate) fn modulo<const B: usize>(names: &[String]) -> Box<Modulo<B>> {
    let mut m = Box::new(Modulo::new());
    fill(m.as_mut(), names);
    m
}

// ----------------------------------------------------------------- peers

/// pingora-ketama's buckets: the backend's `SocketAddr`, weight 1.
pub(crate) fn pingora_buckets(n: usize) -> Vec<pingora_ketama::Bucket> {
    (0..n)
        .map(|i| {
            let addr: SocketAddr = backend_name(i).parse().expect("socket address");
            pingora_ketama::Bucket::new(addr, 1)
        })
        .collect()
}

/// pingora-ketama (Cloudflare): nginx/libketama-compatible, CRC-32 points, a fixed
/// 160 points per weight unit (`Version::V1`, the default; the `v2` feature would
/// allow another multiple), binary search over a boxed slice.
pub(crate) fn pingora(buckets: &[pingora_ketama::Bucket]) -> pingora_ketama::Continuum {
    pingora_ketama::Continuum::new(buckets)
}

/// hashring's virtual nodes: the crate has none of its own, the caller adds one
/// node per point: `(backend, point)`.
pub(crate) fn hashring_vnodes(backend: usize) -> Vec<(u16, u16)> {
    let b = u16::try_from(backend).expect("n fits in u16");
    (0..VNODES as u16).map(|v| (b, v)).collect()
}

/// hashring: a sorted `Vec` of (SipHash-2-4 of the node, node), binary search;
/// 100 virtual nodes per backend, added with one `batch_add` (one sort).
pub(crate) fn hashring(n: usize) -> hashring::HashRing<(u16, u16)> {
    let mut r = hashring::HashRing::new();
    r.batch_add((0..n).flat_map(hashring_vnodes).collect());
    r
}

/// conhash's node: its name is the backend's address.
#[derive(Debug, Clone)]
pub(crate) struct ConhashNode(pub(crate) u16);

impl conhash::Node for ConhashNode {
    fn name(&self) -> String {
        backend_name(usize::from(self.0))
    }
}

/// conhash: a `BTreeMap<Vec<u8>, Node>` keyed by MD5 digests, 100 replicas per
/// backend.
pub(crate) fn conhash(n: usize) -> conhash::ConsistentHash<ConhashNode> {
    let mut c = conhash::ConsistentHash::new();
    for i in 0..n {
        c.add(
            &ConhashNode(u16::try_from(i).expect("n fits in u16")),
            VNODES as usize,
        );
    }
    c
}

/// mpchash: multi-probe consistent hashing, one point per backend (the algorithm
/// has no virtual nodes) in a crossbeam skip list; 23 probes per lookup (the
/// crate's default, for a peak-to-mean load ratio near 1.05), XXH3.
pub(crate) fn mpchash(n: usize) -> mpchash::HashRing<u16> {
    let r = mpchash::HashRing::new();
    for i in 0..n {
        r.add(u16::try_from(i).expect("n fits in u16"));
    }
    r
}

/// The maglev crate: table size 65537 like chring's (`with_capacity`; its default
/// would be the next prime above 100 n), SipHash-1-3 (`DefaultHasher`). Builds
/// every backend's full permutation first (n x M `usize`s).
pub(crate) fn maglev_crate(n: usize) -> maglev::Maglev<u16> {
    let nodes = (0..n).map(|i| u16::try_from(i).expect("n fits in u16"));
    maglev::Maglev::with_capacity(nodes, MAGLEV_M)
}

/// jumphash: stateless (the bucket count is a lookup argument); SipHash-1-3 with
/// fixed keys.
pub(crate) fn jumphash() -> jumphash::JumpHasher {
    jumphash::JumpHasher::new_with_keys(0, 0)
}

/// hash-rings' node ids: its ring borrows them for its whole life, so they are
/// leaked (2 bytes per backend, counted in the memory table).
pub(crate) fn hash_rings_ids(n: usize) -> &'static [u16] {
    let ids: Vec<u16> = (0..n)
        .map(|i| u16::try_from(i).expect("n fits in u16"))
        .collect();
    Box::leak(ids.into_boxed_slice())
}

/// hash-rings (`consistent::Ring`): a `BTreeMap<u64, &id>` plus a replica-count
/// `HashMap`, 100 replicas per backend, SipHash-1-3 with random keys
/// (`RandomState`, its default).
pub(crate) fn hash_rings(ids: &'static [u16]) -> hash_rings::consistent::Ring<'static, u16> {
    let mut r = hash_rings::consistent::Ring::new();
    for id in ids {
        r.insert_node(id, VNODES as usize);
    }
    r
}

/// anchorhash: AnchorHash with `capacity` anchor buckets (lookups use `capacity = n`,
/// no removed buckets: its fastest state) and a `HashMap<u16, R>` from bucket to
/// resource; keys hashed with SipHash-1-3 (`RandomState`, its default).
pub(crate) fn anchorhash<K: Hash>(
    n: usize,
    capacity: usize,
) -> anchorhash::AnchorHash<K, u16, RandomState> {
    anchorhash::Builder::default()
        .with_resources((0..n).map(|i| u16::try_from(i).expect("n fits in u16")))
        .build(u16::try_from(capacity).expect("capacity fits in u16"))
}

/// The rendezvous_hash crate's node set.
pub(crate) type RendezvousNodes = rendezvous_hash::RendezvousNodes<
    rendezvous_hash::IdNode<u16>,
    rendezvous_hash::DefaultNodeHasher,
>;

/// rendezvous_hash: a `Vec` of nodes; a lookup scores every node with SipHash-1-3
/// (`DefaultHasher`), collects and sorts them (`calc_candidates`), takes the first.
pub(crate) fn rendezvous_crate(n: usize) -> RendezvousNodes {
    let mut r = RendezvousNodes::default();
    for i in 0..n {
        r.insert(rendezvous_hash::IdNode::new(
            u16::try_from(i).expect("n fits in u16"),
        ));
    }
    r
}
