// Rule: a scoped greenlet may borrow only data that outlives the whole scope
// (`F: 'scope`, where `'env: 'scope`), not data local to the closure given to
// `greenhub::scope`.
//
// Why soundness depends on it: `scope` waits for its greenlets after the
// closure `f` has returned, so everything local to `f` is already dropped
// while they may still run. `Scope::spawn` erases the closure's lifetime to
// `'static` internally; this bound is what makes that erasure sound.
fn main() {
    greenhub::scope(|s| {
        let local = String::from("dropped when the closure returns");
        let r = &local;
        s.spawn(move || r.len());
    });
}
