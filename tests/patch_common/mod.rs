//! What every `tests/patch_*.rs` needs: patching enabled, and a
//! single-threaded runtime (one hub) to run the body on.
#![allow(dead_code)]

/// Enables the hooks (once per process; later calls are no-ops).
pub fn enable() {
    // SAFETY: the tests' greenlets hold no thread-affine state (C thread
    // locals, locks) across a blocking call.
    unsafe { greenhub::patch::enable() }.expect("the hooks are in effect");
}

/// Runs `f` on a greenlet of a new single-threaded runtime, with the hooks
/// enabled.
pub fn one_hub<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    enable();
    greenhub::Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(f)
}
