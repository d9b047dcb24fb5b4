// Rule: `greenhub::spawn` takes only `Send` closures that return `Send`
// values (`F: Send`, `T: Send`).
//
// Why soundness depends on it: a spawned greenlet may be stolen by another
// hub before it first runs, so its closure runs on another OS thread, and its
// value is handed to whoever joins it, on any thread. An `Rc` captured or
// returned this way would have its count touched from two threads at once.
// (The task type itself is `unsafe impl Send + Sync`; only these bounds keep
// `!Send` data out of it.)
use std::rc::Rc;

fn captures_rc() {
    let shared = Rc::new(1u32);
    let _h = greenhub::spawn(move || *shared + 1);
}

fn returns_rc() {
    let _h = greenhub::spawn(|| Rc::new(1u32));
}

fn main() {
    captures_rc();
    returns_rc();
}
