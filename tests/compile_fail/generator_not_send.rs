// Rule: `raw::Generator<Y, R>` and its `raw::Co<Y, R>` are neither `Send`
// nor `Sync`, so a generator cannot be moved into a `spawn`ed greenlet or
// another thread.
//
// Why soundness depends on it: a generator is a raw greenlet whose main is
// the context that created it; resuming it from another thread would run its
// stack there and race on the raw greenlet tree's `Rc`s and cells.
use greenhub::raw::{Co, Generator};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

fn into_spawn() {
    let mut g: Generator<u32> = Generator::new(|co| co.yield_(1));
    let _h = greenhub::spawn(move || g.resume().is_some());
}

fn main() {
    assert_send::<Generator<u32>>();
    assert_sync::<Generator<u32>>();
    assert_send::<Co<u32, ()>>();
    assert_sync::<Co<u32, ()>>();
    into_spawn();
}
