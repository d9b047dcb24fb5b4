// Rule: `greenhub::spawn` takes only `'static` closures and values
// (`F: 'static`, `T: 'static`).
//
// Why soundness depends on it: a spawned greenlet may outlive the caller's
// frame (dropping its `JoinHandle` detaches it), so a borrow of a local it
// captured would dangle. Borrowing the caller's stack is what
// `greenhub::scope` is for: it waits for its greenlets before returning.
fn borrows_a_local() {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = greenhub::spawn(move || r.len());
}

fn main() {
    borrows_a_local();
}
