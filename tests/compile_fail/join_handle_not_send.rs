// Rule: `JoinHandle<T>` is `Send` and `Sync` only when `T: Send`
// (`unsafe impl<T: Send> Send for JoinHandle<T>`).
//
// Why soundness depends on it: `join` moves the greenlet's value to whoever
// calls it. `spawn_local` allows `T = Rc<_>`; the `Rc`'s other clones live on
// the greenlet's hub, so the handle must not reach a thread that could join
// it. The handle holds only a `PhantomData<*const T>` and an `Arc` of the
// type-erased task, so these impls are the only thing that decide it.
use std::rc::Rc;

use greenhub::JoinHandle;

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

fn main() {
    assert_send::<JoinHandle<Rc<u32>>>();
    assert_sync::<JoinHandle<Rc<u32>>>();
}
