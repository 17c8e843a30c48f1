//! chring-proxy: a sharding proxy for Redis (RESP2) and memcached (ASCII)
//! servers that reads nutcracker's (twemproxy's) YAML unchanged and routes every
//! key through chring.
//!
//! The data path (pools, client and server connections, the two protocols,
//! health) implements [`state::Control`]; the control port, the admin HTTP
//! server and the nutcracker stats port are written against that trait only.

pub mod config;
pub mod memcache;
pub mod placement;
pub mod resp;
pub mod state;
