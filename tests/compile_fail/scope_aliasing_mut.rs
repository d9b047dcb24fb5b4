// Rule: a scoped greenlet holds its borrows for the whole scope (`F: 'scope`),
// so two greenlets of one scope cannot both borrow the same data mutably.
//
// Why soundness depends on it: scoped greenlets of one scope may run at the
// same time on different hubs. If the mutable borrow ended when `spawn`
// returned, the two increments below would be a data race.
fn main() {
    let mut counter = 0u32;
    greenhub::scope(|s| {
        s.spawn(|| counter += 1);
        s.spawn(|| counter += 1);
    });
    assert_eq!(counter, 2);
}
