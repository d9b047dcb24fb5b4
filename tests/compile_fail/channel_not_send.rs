// Rule: `channel::Sender<T>` and `channel::Receiver<T>` are `Send` only when
// `T: Send`, and `channel::Queue<T>` is `Sync` only when `T: Send`; a channel
// of `Rc`s cannot be handed to a `spawn`ed greenlet.
//
// Why soundness depends on it: a channel moves values between greenlets on
// any hubs and plain threads. If either half of a channel of `Rc`s could
// reach another hub, the `Rc`s sent through it would be shared by two
// threads. Values need `Send` to cross hubs.
use std::rc::Rc;
use std::sync::Arc;

use greenhub::channel::{Queue, Receiver, Sender};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

fn sender_into_spawn() {
    let (tx, rx) = greenhub::channel::unbounded::<Rc<u32>>();
    let _h = greenhub::spawn(move || tx.send(Rc::new(1)).is_ok());
    drop(rx);
}

fn receiver_into_spawn() {
    let (tx, rx) = greenhub::channel::unbounded::<Rc<u32>>();
    let _h = greenhub::spawn(move || rx.recv().is_ok());
    drop(tx);
}

fn queue_into_spawn() {
    let q = Arc::new(Queue::<Rc<u32>>::new());
    let _h = greenhub::spawn(move || q.put(Rc::new(1)));
}

fn main() {
    assert_send::<Sender<Rc<u32>>>();
    assert_send::<Receiver<Rc<u32>>>();
    assert_sync::<Queue<Rc<u32>>>();
    sender_into_spawn();
    receiver_into_spawn();
    queue_into_spawn();
}
