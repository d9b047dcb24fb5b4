// Rule: `greenlet::Builder::spawn` has `greenhub::spawn`'s bounds: `Send`
// closures returning `Send` values (`F: Send`, `T: Send`).
//
// Why soundness depends on it: the builder is the same spawn path with
// options; its greenlet may be stolen by another hub before it starts (and
// with `migratable` may even move later), and its value is joined on any
// thread. `!Send` closures go through `Builder::spawn_local` instead.
use std::rc::Rc;

fn captures_rc() {
    let shared = Rc::new(1u32);
    let _h = greenhub::greenlet::Builder::new().spawn(move || *shared);
}

fn returns_rc() {
    let _h = greenhub::greenlet::Builder::new().spawn(|| Rc::new(1u32));
}

fn main() {
    captures_rc();
    returns_rc();
}
