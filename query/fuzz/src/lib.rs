//! What the fuzz targets in `fuzz_targets/` share: the stack they parse on.

/// The stack every target parses and evaluates on: a quarter of the 32 MiB the engines give a
/// query (`admission::DEEP_STACK_BYTES` in `tributary-query`). A query within the default depth
/// bound needs far less, so text that admission lets through deeper than it should shows up
/// here as a stack overflow: a crash, with the input.
pub const STACK_BYTES: usize = 8 << 20;

/// Runs `f` on a thread with [`STACK_BYTES`] of stack and returns its answer; a panic in `f`
/// is a panic here.
pub fn on_query_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, f)
            .expect("starting the query thread");
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
