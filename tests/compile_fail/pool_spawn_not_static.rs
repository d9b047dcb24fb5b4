// Rule: `pool::Pool::spawn`, `Pool::map` and `pool::Group::spawn` take only
// `'static` closures (`F: 'static`).
//
// Why soundness depends on it: a pool does not wait for its greenlets when
// the caller's frame ends (a `Pool` or `Group` can be dropped, or `join` never
// called, and the greenlets keep running), so a borrow of the caller's locals
// would dangle. `greenhub::scope` is the API that may borrow.
fn pool_spawn(pool: &greenhub::pool::Pool) {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = pool.spawn(move || r.len());
}

fn pool_map(pool: &greenhub::pool::Pool) {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _v = pool.map(0..3usize, move |i| r.len() + i);
}

fn group_spawn(group: &greenhub::pool::Group) {
    let name = String::from("on the caller's stack");
    let r = &name;
    let _h = group.spawn(move || r.len());
}

fn main() {
    let pool = greenhub::pool::Pool::new(2);
    let group = greenhub::pool::Group::new();
    pool_spawn(&pool);
    pool_map(&pool);
    group_spawn(&group);
}
