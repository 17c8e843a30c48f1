//! The data path alone: `cargo run -p chring-proxy --example serve -- FILE`
//! reads a nutcracker YAML file, starts every pool (`Proxy::start`, as the
//! `chring-proxy` binary does) and serves until Ctrl-C, then drains.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: serve NUTCRACKER_YML");
        return ExitCode::FAILURE;
    };
    let config = match chring_proxy::config::load(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let proxy = match chring_proxy::Proxy::start(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("serve: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        for (pool, addr) in proxy.local_addrs() {
            eprintln!("pool {pool} listens on {addr}");
        }
        let _ = tokio::signal::ctrl_c().await;
        proxy.shutdown().await;
        ExitCode::SUCCESS
    })
}
