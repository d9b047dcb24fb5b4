//! HTTP keep-alive server on may: `--threads` workers, one coroutine per
//! connection, `greenhub_compare::http::serve`. Prints `listening on ADDR`.

use std::io::Write;

/// Spawns a may coroutine.
fn go(f: impl FnOnce() + Send + 'static) -> may::coroutine::JoinHandle<()> {
    // SAFETY: the coroutines only do may's own socket IO and pure protocol
    // code, nothing that blocks the worker thread or holds thread-locals.
    unsafe { may::coroutine::spawn(f) }
}

fn main() {
    let (port, threads) = greenhub_compare::http::flags();
    may::config().set_workers(threads);
    let h = go(move || {
        let l = may::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
        println!("listening on {}", l.local_addr().unwrap());
        let _ = std::io::stdout().flush();
        for s in l.incoming().flatten() {
            let _ = s.set_nodelay(true);
            go(move || greenhub_compare::http::serve(s));
        }
    });
    let _ = h.join();
}
