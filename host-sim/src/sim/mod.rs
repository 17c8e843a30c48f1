//! The simulation library: request streams, strategies, caches, the engine and
//! its metrics.

mod cache;
pub mod engine;
pub mod metrics;
pub mod strategy;
pub mod workload;

pub use cache::MAX_CACHE_CAPACITY;
pub use engine::{ChangeKind, FleetChange, Latencies, RunResult, SimConfig, simulate};
pub use metrics::{LatencySummary, ServerSummary, TimeSeries, WindowCounts};
pub use strategy::{StrategyKind, build_sim_strategy, server_name};
pub use workload::{Arrival, IdDistribution, Request, RequestStream, WorkloadConfig};
