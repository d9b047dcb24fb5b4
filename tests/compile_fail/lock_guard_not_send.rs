// Rule: lock guards are `!Send`: greenhub's `sync::MutexGuard`,
// `sync::RwLockReadGuard`, `sync::RwLockWriteGuard`, and std's `MutexGuard`
// and `RwLock` guards cannot be moved into a `spawn`ed greenlet. (The locks
// here are leaked to `'static`, so only `Send` is in question.)
//
// Why soundness depends on it: a `spawn`ed greenlet may run on another hub,
// i.e. another OS thread. std's locks must be released by the thread that
// took them (unlocking a pthread mutex from another thread is undefined
// behaviour), so their guards must never reach a greenlet that runs
// elsewhere. greenhub's guards are `!Send` by their documented contract
// (like std's); making one `Send` would at least need `T: Send`, or a guard
// of a `Mutex<Rc<_>>` sent to another hub would hand the `Rc` out there.
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn greenhub_mutex() {
    let guard = leak(greenhub::sync::Mutex::new(0u32)).lock();
    let _h = greenhub::spawn(move || *guard);
}

fn greenhub_rwlock_read() {
    let guard = leak(greenhub::sync::RwLock::new(0u32)).read();
    let _h = greenhub::spawn(move || *guard);
}

fn greenhub_rwlock_write() {
    let guard = leak(greenhub::sync::RwLock::new(0u32)).write();
    let _h = greenhub::spawn(move || *guard);
}

fn std_mutex() {
    let guard = leak(std::sync::Mutex::new(0u32)).lock().unwrap();
    let _h = greenhub::spawn(move || *guard);
}

fn std_rwlock() {
    let read = leak(std::sync::RwLock::new(0u32)).read().unwrap();
    let _h = greenhub::spawn(move || *read);
    let write = leak(std::sync::RwLock::new(0u32)).write().unwrap();
    let _h = greenhub::spawn(move || *write);
}

fn main() {
    greenhub_mutex();
    greenhub_rwlock_read();
    greenhub_rwlock_write();
    std_mutex();
    std_rwlock();
}
