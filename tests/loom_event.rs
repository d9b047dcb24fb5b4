//! Loom models of **event set / wait** (src/sync/event.rs) and of the
//! semaphore-style handoff in `AsyncResult`, on loom threads.
//!
//! Invariants asserted:
//!
//! - **no lost wake-up**: a waiter blocked before `set` always returns
//!   (loom reports a deadlock otherwise), also when several wait at once;
//! - a timed wait that returns `false` was not preceded by a `set` it
//!   should have seen: after `set` returned, every wait returns `true`;
//! - `AsyncResult` delivers the one value to every waiter;
//! - a **late waiter** (one that finds the flag set while a woken waiter has
//!   not come back from `wait` yet, src/sync/broadcast.rs) is always
//!   released: by the last woken waiter coming back, or by the next `set`.

#![cfg(loom)]

use greenhub::sync::{AsyncResult, Event};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

#[test]
fn set_wakes_waiters() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ev = ev.clone();
                thread::spawn(move || ev.wait())
            })
            .collect();
        ev.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(ev.is_set());
    });
}

#[test]
fn timed_wait_racing_set() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let ev2 = ev.clone();
        let w = thread::spawn(move || ev2.wait_timeout(Duration::from_millis(1)));
        ev.set();
        let _ = w.join().unwrap();
        // Once set, waits return at once and true.
        assert!(ev.wait_timeout(Duration::from_millis(1)));
    });
}

#[test]
fn clear_then_set_again() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let ev2 = ev.clone();
        let w = thread::spawn(move || {
            ev2.wait();
            ev2.clear();
        });
        ev.set();
        w.join().unwrap();
        assert!(!ev.is_set());
        ev.set();
        ev.wait();
    });
}

#[test]
fn async_result_reaches_every_waiter() {
    loom::model(|| {
        let r = Arc::new(AsyncResult::<u32>::new());
        let r2 = r.clone();
        let w = thread::spawn(move || r2.get().unwrap());
        r.set(11).unwrap();
        assert_eq!(r.get().unwrap(), 11);
        assert_eq!(w.join().unwrap(), 11);
    });
}

#[test]
fn late_waiter_behind_a_woken_timed_waiter() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let ev2 = ev.clone();
        let w = thread::spawn(move || ev2.wait_timeout(Duration::from_millis(1)));
        ev.set();
        // The setter waits again: behind `w` if `w` was woken and has not
        // come back yet (its deadline racing the grant).
        ev.wait();
        let _ = w.join().unwrap();
        assert!(ev.wait_timeout(Duration::from_millis(1)));
    });
}

#[test]
fn late_waiters_released_by_the_woken_one_or_a_second_set() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let (ev2, ev3) = (ev.clone(), ev.clone());
        let w = thread::spawn(move || ev2.wait());
        ev.set();
        let late = thread::spawn(move || ev3.wait());
        ev.clear();
        ev.set();
        ev.wait();
        w.join().unwrap();
        late.join().unwrap();
    });
}
