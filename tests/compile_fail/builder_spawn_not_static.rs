// Rule: `greenlet::Builder::spawn` and `Builder::spawn_local` take only
// `'static` closures (`F: 'static`); `spawn_local` relaxes `Send`, never
// `'static`.
//
// Why soundness depends on it: the greenlet can outlive the caller's frame
// (its `JoinHandle` may be dropped, which detaches it), so a borrow of the
// caller's locals would dangle. A local greenlet stays on the caller's
// thread, but not inside the caller's frame.
fn spawn_borrows_a_local() {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = greenhub::greenlet::Builder::new().spawn(move || r.len());
}

fn spawn_local_borrows_a_local() {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = greenhub::greenlet::Builder::new().spawn_local(move || r.len());
}

fn main() {
    spawn_borrows_a_local();
    spawn_local_borrows_a_local();
}
