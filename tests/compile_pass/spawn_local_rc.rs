// Positive control for spawn_local_handle_not_send, spawn_local_not_static
// and builder_spawn_not_static: `spawn_local` (and `Builder::spawn_local`)
// accept closures that capture and return `Rc`s, and the handle of a local
// greenlet returning an `Rc` is joined by a greenlet of the same hub.
use std::cell::RefCell;
use std::rc::Rc;

fn main() {
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    let n = rt.block_on(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let a = greenhub::spawn_local(move || {
            l.borrow_mut().push("a");
            l
        });
        let l = log.clone();
        let b = greenhub::greenlet::Builder::new()
            .spawn_local(move || l.borrow_mut().push("b"))
            .unwrap();
        // The `JoinHandle<Rc<_>>` moves into another local greenlet.
        let c = greenhub::spawn_local(move || a.join().unwrap().borrow().len());
        b.join().unwrap();
        let seen = c.join().unwrap();
        assert_eq!(*log.borrow(), ["a", "b"]);
        seen
    });
    assert!(n >= 1);
    rt.shutdown();
}
