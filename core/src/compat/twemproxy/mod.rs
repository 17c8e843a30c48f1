//! twemproxy (nutcracker) compatibility: `distribution: ketama` and `distribution:
//! modula` ([`Modula`]) with every one of its key hashes, bit for bit.
//!
//! twemproxy's ketama is libmemcached's: each server gets
//! `floor(weight / total_weight * 40 * servers) * 4` points (computed in `f32`,
//! as twemproxy does), the points are the four little-endian 32-bit words of
//! `MD5("{identity}-{i}")`, and a key goes to the first point at or after its
//! 32-bit hash, wrapping to the first point. The server's identity is its name
//! when the configuration gives one, else `host:port` as written, or the host
//! alone when the port is 11211 ([`ServerLine::identity`]). `DESIGN.md` §7c
//! describes the algorithm and each hash in full.
//!
//! No accessor panics and nothing allocates: [`Ketama`] keeps its servers, their
//! identities and its points in fixed storage sized by const generics.
//!
//! # Example
//!
//! ```
//! use chring::compat::twemproxy::{Ketama, KeyHash, ServerLine};
//!
//! // A pool of up to 8 servers and 8 x 160 points, names of up to 64 bytes.
//! let mut pool: Ketama<8, 1280> = Ketama::new(KeyHash::Fnv1a64);
//! for line in ["10.0.0.1:11211:1", "10.0.0.2:11212:1", "10.0.0.3:11211:2 cache-c"] {
//!     let server = ServerLine::parse(line.as_bytes())?;
//!     pool.add(server.identity(), server.weight)?;
//! }
//! assert_eq!(pool.name(0), Some(&b"10.0.0.1"[..])); // port 11211 is left out
//! assert_eq!(pool.name(1), Some(&b"10.0.0.2:11212"[..]));
//! assert_eq!(pool.name(2), Some(&b"cache-c"[..]));
//! let server = pool.server_for(b"customer-0012345").unwrap();
//! assert!(server < 3);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod hash;
mod ketama;
mod modula;
mod pool;
mod server;
#[cfg(test)]
mod tests;

pub use hash::*;
pub use ketama::*;
pub use modula::*;
pub use server::*;

/// Points of a server with the average weight (`40` MD5 digests of 4 points).
pub const POINTS_PER_SERVER: u32 = 160;
/// Points taken from one MD5 digest (its four little-endian 32-bit words).
pub const POINTS_PER_HASH: u32 = 4;
/// The port libmemcached (and so twemproxy) leaves out of an unnamed server's
/// identity.
pub const DEFAULT_PORT: u16 = 11211;
/// twemproxy hashes at most this many bytes of `"{identity}-{i}"` (its 273-byte
/// buffer less the terminating NUL).
pub const MAX_POINT_INPUT: usize = 272;
