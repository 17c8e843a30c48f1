//! `host-sim`: see the library crate for everything; this only maps errors to
//! one line on stderr and an exit status (2 usage, 3 `route` keys not routed, 1 runtime).

use std::process::ExitCode;

fn main() -> ExitCode {
    match host_sim::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", host_sim::error_line(&e));
            ExitCode::from(host_sim::exit_code(&e))
        }
    }
}
