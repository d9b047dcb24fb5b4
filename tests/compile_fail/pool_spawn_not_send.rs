// Rule: the pools spawn only `Send` closures returning `Send` values:
// `pool::Pool::{spawn, try_spawn, spawn_timeout, map}` and
// `pool::Group::spawn` (and `map`'s items must be `Send`).
//
// Why soundness depends on it: a pool's greenlets are ordinary spawned
// greenlets: they may be stolen by another hub before they start, and their
// values are joined (or collected by `map`) on the caller's hub. An `Rc`
// inside would be shared between threads.
use std::rc::Rc;

fn pool_spawn(pool: &greenhub::pool::Pool) {
    let shared = Rc::new(1u32);
    let _h = pool.spawn(move || *shared);
}

fn pool_try_spawn(pool: &greenhub::pool::Pool) {
    let _r = pool.try_spawn(|| Rc::new(1u32));
}

fn pool_spawn_timeout(pool: &greenhub::pool::Pool) {
    let shared = Rc::new(1u32);
    let _r = pool.spawn_timeout(std::time::Duration::from_secs(1), move || *shared);
}

fn pool_map_items(pool: &greenhub::pool::Pool) {
    let items = vec![Rc::new(1u32), Rc::new(2)];
    let _v = pool.map(items, |x: Rc<u32>| *x);
}

fn group_spawn(group: &greenhub::pool::Group) {
    let shared = Rc::new(1u32);
    let _h = group.spawn(move || *shared);
}

fn main() {
    let pool = greenhub::pool::Pool::new(2);
    let group = greenhub::pool::Group::new();
    pool_spawn(&pool);
    pool_try_spawn(&pool);
    pool_spawn_timeout(&pool);
    pool_map_items(&pool);
    group_spawn(&group);
}
