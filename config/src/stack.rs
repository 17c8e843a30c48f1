//! Building large fixed-capacity values off the caller's stack.

use std::thread;

/// Stack size of the helper thread that builds large fixed-capacity values.
const BIG_STACK: usize = 64 << 20;

/// Runs `f` on a helper thread with a 64 MiB stack and returns its result.
///
/// chring's rings, tables and caches are fixed-capacity values (up to a few MiB)
/// built by value; a debug build copies such a value through several stack
/// slots before it reaches its `Box`, which would overflow a test thread's
/// 2 MiB stack. Building them here keeps every caller's stack small without
/// `unsafe` in-place initialisation. Costs one thread spawn (tens of µs).
///
/// # Errors
/// The OS refused to spawn the thread.
pub fn on_big_stack<T, F>(f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = thread::Builder::new()
        .name("chring-build".into())
        .stack_size(BIG_STACK)
        .spawn(f)?;
    match handle.join() {
        Ok(v) => Ok(v),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
