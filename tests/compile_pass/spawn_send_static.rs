// Positive control for spawn_not_send, spawn_not_static,
// handle_spawn_not_send, handle_spawn_not_static, builder_spawn_not_send,
// builder_spawn_not_static, pool_spawn_not_send, pool_spawn_not_static,
// unblock_not_send and join_handle_not_send: the same entry points accept
// `Send + 'static` closures (owned data, `Arc`s) and a `JoinHandle<T: Send>`
// can be joined from another greenlet or thread.
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let rt = greenhub::Runtime::new().unwrap();
    let shared = Arc::new(1u32);

    let s = shared.clone();
    assert_eq!(rt.handle().spawn(move || *s + 1).join().unwrap(), 2);
    let s = shared.clone();
    assert_eq!(*rt.spawn(move || Arc::new(*s + 2)).join().unwrap(), 3);

    let s = shared.clone();
    let total = rt.block_on(move || {
        let name = String::from("owned, moved in");
        let a = greenhub::spawn(move || name.len() as u32);
        let b = greenhub::greenlet::Builder::new()
            .spawn(move || Arc::new(*s))
            .unwrap();
        // A `JoinHandle<Arc<_>>` is `Send`: join it from another greenlet.
        let b = greenhub::spawn(move || *b.join().unwrap());

        let pool = greenhub::pool::Pool::new(2);
        let c = pool.spawn(|| 1u32);
        let d = pool.try_spawn(|| 1u32).ok().expect("a slot is free");
        c.join().unwrap();
        d.join().unwrap();
        let e = pool
            .spawn_timeout(Duration::from_secs(60), || Arc::new(1u32))
            .ok()
            .expect("a slot frees up");
        let mapped: u32 = pool
            .map(vec![Arc::new(1u32), Arc::new(2)], |x| *x)
            .iter()
            .sum();

        let group = greenhub::pool::Group::new();
        let f = group.spawn(|| 4u32);

        let g = greenhub::blocking::unblock(|| Arc::new(5u32));

        a.join().unwrap() + b.join().unwrap() + *e.join().unwrap() + mapped + f.join().unwrap() + *g
    });
    assert_eq!(total, 15 + 1 + 1 + 3 + 4 + 5);

    // And from a plain thread.
    let h = rt.spawn(|| Arc::new(6u32));
    let joined = std::thread::spawn(move || *h.join().unwrap())
        .join()
        .unwrap();
    assert_eq!(joined, 6);
    rt.shutdown();
}
