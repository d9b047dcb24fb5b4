// Rule: `greenhub::spawn_local` relaxes `Send` but still requires `'static`
// closures and values (`F: 'static`, `T: 'static`).
//
// Why soundness depends on it: a local greenlet stays on the caller's hub,
// but it is an independent greenlet: it can outlive the caller's frame (a
// dropped `JoinHandle` detaches it), so a borrow of the caller's locals would
// dangle.
fn main() {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = greenhub::spawn_local(move || r.len());
}
