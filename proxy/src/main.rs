//! The `chring-proxy` binary.

fn main() -> std::process::ExitCode {
    eprintln!("chring-proxy: under construction");
    std::process::ExitCode::FAILURE
}
