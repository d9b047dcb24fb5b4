//! gevent and greenlet conformance, part 2: greenlet's kill of a dead raw
//! greenlet and parent restore after a kill on drop (`test_throw.py`,
//! `test_greenlet.py`), a timeout cancellable from inside its block (gevent's
//! `Timeout.cancel()`), and `StreamServer::stop_accepting` /
//! `start_accepting`.

mod common;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use greenhub::raw::{GreenletExit, RawGreenlet, SwitchError};

// ---- raw greenlets (point 3) ----

/// greenlet's `test_throw.py::test_kill`: killing a dead greenlet is a no-op
/// that answers as the first kill did (the exit "is immediately eaten by the
/// already-dead greenlet").
#[test]
fn kill_of_a_dead_greenlet_returns_exit_again() {
    let g = RawGreenlet::new(|x: i32| {
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        main.switch(x).unwrap(); // "ok"
        main.switch(-1).unwrap(); // "fail": never reached
        0
    });
    assert_eq!(g.switch(7).unwrap(), 7);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert!(g.is_dead());
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert_eq!(g.throw(GreenletExit), Err(SwitchError::Exit));
    assert!(g.is_dead());
    // A greenlet that returned normally, and one killed before it started.
    let g = RawGreenlet::new(|x: i32| x + 1);
    assert_eq!(g.switch(1).unwrap(), 2);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    let g = RawGreenlet::new(|x: i32| x);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    // Any other error thrown into a dead greenlet is still raised in its
    // nearest live ancestor, the caller here.
    let err = catch_unwind(AssertUnwindSafe(|| g.throw("boom"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
}

/// The exit of a dead greenlet goes where its return value went: to its
/// nearest live ancestor, which need not be the caller.
#[test]
fn kill_of_a_dead_greenlet_reaches_its_live_parent() {
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let child_slot: Rc<RefCell<Option<RawGreenlet<i32>>>> = Rc::default();
    let (l, slot) = (log.clone(), child_slot.clone());
    let parent = RawGreenlet::new(move |_: i32| {
        let child = RawGreenlet::new(|x: i32| x * 2);
        assert_eq!(child.switch(21).unwrap(), 42);
        *slot.borrow_mut() = Some(child);
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        // Main kills the dead child: its exit comes back here.
        let r = main.switch(1);
        l.borrow_mut().push(format!("parent got {r:?}"));
        5
    });
    assert_eq!(parent.switch(0).unwrap(), 1);
    let child = child_slot.borrow_mut().take().unwrap();
    assert!(child.is_dead());
    assert_eq!(child.kill().unwrap(), 5);
    assert_eq!(*log.borrow(), ["parent got Err(Exit)"]);
}

/// greenlet's `test_greenlet.py::test_parent_restored_on_kill`: a greenlet
/// killed by dropping its last handle has the dropper as its parent during
/// the kill, and gets its own parent back afterwards, here after it caught
/// the exit and lived on.
#[test]
fn greenlet_killed_on_drop_gets_its_parent_back() {
    let hub = RawGreenlet::new(|x: i32| x + 100);
    let main = RawGreenlet::<i32>::current();
    let seen: Rc<RefCell<Vec<RawGreenlet<i32>>>> = Rc::default();
    let (h, m, s) = (hub.clone(), main.clone(), seen.clone());
    let g = RawGreenlet::with_parent(&hub, move |x: i32| {
        // Wait to be killed by going back to the test.
        let caught = catch_unwind(AssertUnwindSafe(|| m.switch(x)));
        let payload = caught.expect_err("killed on drop");
        assert!(payload.is::<GreenletExit>());
        // Resurrect and switch elsewhere.
        let me = RawGreenlet::<i32>::current();
        s.borrow_mut().push(me.parent().unwrap());
        s.borrow_mut().push(me);
        h.switch(1).unwrap()
    });
    assert_eq!(g.switch(3).unwrap(), 3);
    assert_eq!(g.parent().unwrap(), hub);
    drop(g); // the hub greenlet's result (101) came back to the drop
    let seen = seen.take();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], main, "the dropper is the parent during the kill");
    assert!(seen[1].is_active(), "it survived the kill");
    assert_eq!(
        seen[1].parent().unwrap(),
        hub,
        "its parent is restored after the kill"
    );
    assert!(hub.is_dead());
}

/// The parent comes back too when the kill ends the greenlet.
#[test]
fn greenlet_that_dies_of_the_drop_kill_has_its_parent_back() {
    let other = RawGreenlet::new(|x: i32| x);
    let me_slot: Rc<RefCell<Option<RawGreenlet<i32>>>> = Rc::default();
    let slot = me_slot.clone();
    let main = RawGreenlet::<i32>::current();
    let m = main.clone();
    let g = RawGreenlet::with_parent(&other, move |x: i32| {
        *slot.borrow_mut() = Some(RawGreenlet::<i32>::current());
        m.switch(x).unwrap()
    });
    assert_eq!(g.switch(2).unwrap(), 2);
    drop(g);
    let me = me_slot.borrow_mut().take().unwrap();
    assert!(me.is_dead());
    assert_eq!(me.parent().unwrap(), other);
}
