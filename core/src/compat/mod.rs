//! Routing exactly like the software balancers a device sits beside: nginx's
//! `hash $key consistent` (and plain `hash $key`), twemproxy's (nutcracker's)
//! `distribution: ketama` with every one of its key hashes, and HAProxy's
//! `hash-type consistent`. Each mode reproduces the daemon's placement bit for
//! bit (proven against the real daemons by the test command), with no allocation.
//! `DESIGN.md` describes each in its own words.

pub mod haproxy;
pub mod libmemcached;
pub mod nginx;
pub mod placement;
pub mod twemproxy;
mod util;
