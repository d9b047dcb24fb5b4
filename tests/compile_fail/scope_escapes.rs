// Rule: neither the `Scope` nor a `ScopedJoinHandle` can leave the closure
// given to `greenhub::scope` (`'scope` is a higher-ranked, invariant lifetime
// of that closure).
//
// Why soundness depends on it: `scope` waits only for the greenlets spawned
// before it returns. A `Scope` kept past that could spawn a greenlet that
// borrows `'env` data with nobody left to wait for it; a handle kept past it
// names a greenlet whose borrows were only good for the scope.
fn scope_escapes() {
    let mut kept = None;
    greenhub::scope(|s| {
        kept = Some(s);
    });
    drop(kept);
}

fn handle_escapes() {
    let h = greenhub::scope(|s| s.spawn(|| 1u32));
    drop(h);
}

fn main() {
    scope_escapes();
    handle_escapes();
}
