//! gevent's tutorial, "Synchronous & Asynchronous Execution": two greenlets
//! hand control to each other with `sleep(0)` (an explicit context switch),
//! in single-threaded mode, where the order of the output is deterministic
//! and exactly gevent's:
//!
//! ```text
//! Running in foo
//! Explicit context to bar
//! Explicit context switch to foo again
//! Implicit context switch back to bar
//! ```
//!
//! Run it with `cargo run --example gevent_switch`. The test
//! `tests/examples_run.rs` runs [`run`] and checks the lines.

use std::sync::Arc;
use std::time::Duration;

/// Where the example's lines go: stdout for the example, a `Vec` for the
/// test. Shared by the greenlets, hence `Send + Sync`.
pub type Emit = Arc<dyn Fn(&str) + Send + Sync>;

/// The Python original:
///
/// ```python
/// def foo():
///     print('Running in foo')
///     gevent.sleep(0)
///     print('Explicit context switch to foo again')
///
/// def bar():
///     print('Explicit context to bar')
///     gevent.sleep(0)
///     print('Implicit context switch back to bar')
///
/// gevent.joinall([gevent.spawn(foo), gevent.spawn(bar)])
/// ```
#[allow(clippy::disallowed_names)] // `foo` and `bar` are gevent's names
pub fn run(emit: Emit) {
    let rt = greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("cannot start the runtime");
    rt.block_on(move || {
        let e = emit.clone();
        let foo = greenhub::spawn(move || {
            e("Running in foo");
            greenhub::sleep(Duration::ZERO);
            e("Explicit context switch to foo again");
        });
        let e = emit;
        let bar = greenhub::spawn(move || {
            e("Explicit context to bar");
            greenhub::sleep(Duration::ZERO);
            e("Implicit context switch back to bar");
        });
        // gevent.joinall
        foo.join().expect("foo failed");
        bar.join().expect("bar failed");
    });
}

#[allow(dead_code)]
fn main() {
    run(Arc::new(|line| println!("{line}")));
}
