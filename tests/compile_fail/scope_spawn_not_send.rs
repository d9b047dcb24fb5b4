// Rule: `Scope::spawn` still requires `Send` closures and values
// (`F: Send + 'scope`, `T: Send + 'scope`); borrowing the caller's stack does
// not relax `Send`.
//
// Why soundness depends on it: a scoped greenlet is an ordinary spawned
// greenlet; it may be stolen by another hub before it starts, so it may run on
// another OS thread than the caller. A closure that borrows an `Rc` (needs
// `Rc: Sync`) or returns one would let two threads touch the same count.
use std::rc::Rc;

fn borrows_rc() {
    let shared = Rc::new(1u32);
    greenhub::scope(|s| {
        s.spawn(|| *shared + 1);
    });
}

fn returns_rc() {
    greenhub::scope(|s| {
        s.spawn(|| Rc::new(1u32));
    });
}

fn main() {
    borrows_rc();
    returns_rc();
}
