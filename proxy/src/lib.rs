//! chring-proxy: a sharding proxy for Redis (RESP2) and memcached (ASCII)
//! servers that reads nutcracker's (twemproxy's) YAML unchanged and routes every
//! key through chring.
//!
//! The data path (pools, client and server connections, the two protocols,
//! health) implements [`state::Control`]; the control port, the admin HTTP
//! server and the nutcracker stats port are written against that trait only.

pub mod admin;
pub mod cli;
pub mod control;
pub mod log;
pub mod state;
pub mod stats;

// TEMPORARY, deleted at merge together with proxy/src/dataplane_stub.rs: the
// data path (another branch) provides `config::load`, `ProxyConfig` and
// `Proxy` under these same paths.
mod dataplane_stub;
pub use dataplane_stub::{Proxy, ProxyConfig, config};
