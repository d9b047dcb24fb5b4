// Rule: greenhub's `sync::Mutex<T>` is `Sync` only when `T: Send`, and
// `sync::RwLock<T>` only when `T: Send + Sync`, so a lock around an `Rc`
// cannot be shared with a `spawn`ed greenlet.
//
// Why soundness depends on it: the lock hands `&mut T` (or `&T`) to whichever
// greenlet holds it, on whichever hub that greenlet runs. A `Mutex<Rc<_>>`
// shared between hubs would let two threads clone and drop the same `Rc`
// (one through the lock, one through a clone taken out of it earlier).
use std::rc::Rc;
use std::sync::Arc;

fn mutex() {
    let m = Arc::new(greenhub::sync::Mutex::new(Rc::new(1u32)));
    let _h = greenhub::spawn(move || **m.lock());
}

fn rwlock() {
    let l = Arc::new(greenhub::sync::RwLock::new(Rc::new(1u32)));
    let _h = greenhub::spawn(move || **l.read());
}

fn main() {
    mutex();
    rwlock();
}
