//! `host-sim route --config`'s libmemcached reader (a libmemcached
//! configuration string) on arbitrary text: it must return Ok or Err, never
//! panic, and stay within bounded memory (run with `-rss_limit_mb` and
//! `-max_len`, see README.md "Fuzzing"; the dictionary
//! `fuzz/dict/libmemcached.dict` holds the format's keywords).
//!
//! The checks are shared with the other `config_*` targets:
//! [`chring_fuzz::check_config_reader`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chring_fuzz::check_config_reader(data, host_sim::config::libmemcached::router);
});
