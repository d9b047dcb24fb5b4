// Rule: `raw::RawGreenlet<V>` is neither `Send` nor `Sync`, so it cannot be
// moved into a `spawn`ed greenlet or another thread.
//
// Why soundness depends on it: a raw greenlet is a handle (`Rc`) to a
// coroutine in a tree whose main is the current thread (or greenhub
// greenlet); switching into it from another thread would run its stack on
// two threads and race on the tree's unsynchronised state. The module docs
// promise that "using one from another thread does not compile".
use greenhub::raw::RawGreenlet;

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

fn into_spawn() {
    let g = RawGreenlet::new(|x: u32| x + 1);
    let _h = greenhub::spawn(move || g.switch(1));
}

fn main() {
    assert_send::<RawGreenlet<u32>>();
    assert_sync::<RawGreenlet<u32>>();
    into_spawn();
}
