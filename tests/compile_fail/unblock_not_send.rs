// Rule: `blocking::unblock` takes only `Send + 'static` closures returning
// `Send + 'static` values.
//
// Why soundness depends on it: `unblock` runs its closure on a thread of the
// blocking pool and sends the value back to the calling greenlet; if the
// caller is killed or times out meanwhile, it stops waiting and the closure
// goes on running alone. An `Rc` would cross threads, and a borrow of the
// caller's stack could outlive it.
use std::rc::Rc;

fn captures_rc() {
    let shared = Rc::new(1u32);
    let _v = greenhub::blocking::unblock(move || *shared);
}

fn borrows_a_local() {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _v = greenhub::blocking::unblock(move || r.len());
}

fn main() {
    captures_rc();
    borrows_a_local();
}
