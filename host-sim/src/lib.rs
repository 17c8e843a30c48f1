//! # host-sim: a deterministic cache-tier simulator on chring
//!
//! A discrete-event simulation of the specification's architecture, built on
//! chring's own ring, strategies, TTL cache and workload generators:
//!
//! ```text
//! Source ──> LoadBalancer ──┬──> server-0 (TtlCache) ──┐
//!  (RequestStream)  (chring  ├──> server-1 (TtlCache) ──┼──> shared datastore
//!                  Strategy) └──> server-n (TtlCache) ──┘
//! ```
//!
//! | module | what |
//! | --- | --- |
//! | [`sim`] | request streams, the event engine, metrics |
//! | [`scenario`] | scenarios A–D of the specification and their report |
//! | [`export`] | `results.json`, CSVs, charts, the summary table |
//! | [`route`] | `host-sim route`: key → backend with any key-affine strategy |
//! | [`hil`] | `host-sim hil`: drive the firmware's UART protocol and check every reply |
//! | [`hil_udp`] | `host-sim hil --qemu --udp`: memcached UDP through the `udplb` firmware to real memcached servers |
//! | [`lbcompare`] | `host-sim lb-compare`: seed 004's algorithm comparison, live through chring-proxy and nginx |
//! | [`cli`] | the command line |
//!
//! Runs are deterministic: every random stream derives from one seed, events are
//! ordered by `(time, sequence number)`, and output floats are formatted
//! canonically, so the same seed gives byte-identical `results.json`, CSVs and
//! SVGs.
//!
//! # Example
//!
//! ```
//! use host_sim::sim::{SimConfig, StrategyKind, WorkloadConfig, simulate};
//!
//! // 500 requests/s for 5 s over 1000 customers, 5 servers behind the ring.
//! let cfg = SimConfig::new(WorkloadConfig::new(500.0, 5_000_000), StrategyKind::Ring);
//! let run = simulate(&cfg, &mut |_| {})?;
//! assert_eq!(run.hits + run.datastore_reads, run.requests);
//! # Ok::<(), anyhow::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod args;
pub mod cli;
pub mod error;
pub mod export;
pub mod fonts;
pub mod hil;
pub mod hil_udp;
pub mod lbcompare;
pub mod plot;
pub mod route;
pub mod scenario;
pub mod sim;
mod util;

/// The daemon-config readers (crate `chring-config`, shared with `chring-proxy`).
pub use chring_config as config;
pub use cli::{error_line, exit_code, run, run_with};
