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

/// A greenlet that counts 10 ms ticks (hooked `thread::sleep`s) until
/// `stop` is set, and returns them: a blocked hub shows as too few ticks.
pub fn ticker(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> greenhub::JoinHandle<usize> {
    greenhub::spawn(move || {
        let mut ticks = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(10));
            ticks += 1;
        }
        ticks
    })
}

/// A FIFO for `HOSTALIASES` in a fresh temporary directory (named after
/// `tag` and the process): glibc's DNS backend reads that file for a name
/// without a dot, and opening a FIFO blocks until a writer opens it, so a
/// lookup blocks without any network. Returns the directory (remove it when
/// done) and the FIFO's path.
pub fn hostaliases_fifo(tag: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("greenhub-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("hostaliases");
    let _ = std::fs::remove_file(&fifo);
    let path = fifo.to_str().unwrap().to_string();
    let c = std::ffi::CString::new(path.clone()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    (dir, path)
}
