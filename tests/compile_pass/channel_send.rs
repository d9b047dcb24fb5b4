// Positive control for channel_not_send: channels of `Send` values cross
// hubs (into `spawn`ed greenlets), and a channel of `Rc`s works between the
// local greenlets of one hub.
use std::rc::Rc;
use std::sync::Arc;

fn main() {
    greenhub::run(|| {
        let (tx, rx) = greenhub::channel::unbounded::<Arc<u32>>();
        let h = greenhub::spawn(move || tx.send(Arc::new(1)).unwrap());
        assert_eq!(*rx.recv().unwrap(), 1);
        h.join().unwrap();

        let q = Arc::new(greenhub::channel::Queue::<Arc<u32>>::new());
        let q2 = q.clone();
        greenhub::spawn(move || q2.put(Arc::new(2))).join().unwrap();
        assert_eq!(*q.get(), 2);

        let (tx, rx) = greenhub::channel::unbounded::<Rc<u32>>();
        let h = greenhub::spawn_local(move || tx.send(Rc::new(3)).unwrap());
        assert_eq!(*rx.recv().unwrap(), 3);
        h.join().unwrap();
    });
}
