// Rule: what a `spawn_local` greenlet returns stays on its hub: the
// `JoinHandle<Rc<_>>` of a local greenlet cannot be moved into a `spawn`ed
// greenlet nor into another OS thread.
//
// Why soundness depends on it: `spawn_local` accepts `!Send` closures because
// the greenlet never leaves the hub it was spawned on, so it may share `Rc`s
// with the other greenlets of that hub. Its return value is the one way its
// `!Send` data leaves it; if the handle could be joined from another thread,
// a clone of a hub-local `Rc` would reach that thread.
use std::rc::Rc;

fn into_spawn() {
    let h = greenhub::spawn_local(|| Rc::new(1u32));
    let _j = greenhub::spawn(move || {
        let _ = h.join();
    });
}

/// Joins `h` on a new OS thread (`JoinHandle::join` works off greenlets).
/// Only the handle itself must be `Send` here.
fn join_on_a_thread<T: 'static>(h: greenhub::JoinHandle<T>)
where
    greenhub::JoinHandle<T>: Send,
{
    std::thread::spawn(move || {
        let _ = h.join();
    })
    .join()
    .unwrap();
}

fn into_thread() {
    let h = greenhub::spawn_local(|| Rc::new(1u32));
    join_on_a_thread(h);
}

fn main() {
    into_spawn();
    into_thread();
}
