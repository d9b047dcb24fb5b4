//! Loom models of the IO readiness protocol (src/hub/readiness.rs): a
//! greenlet that tried a syscall, got `WouldBlock` and waits for the next
//! edge, against the hub dispatching that edge. Loom threads stand in for
//! the greenlets and the hub; an `AtomicBool` stands in for the kernel's
//! socket buffer ("data arrived"), set before the edge is dispatched as the
//! kernel does before epoll reports it.
//!
//! Invariants asserted:
//!
//! - **no lost wake-up**: a waiter that saw `WouldBlock` always observes the
//!   data eventually (loom reports a deadlock otherwise), whether the edge
//!   comes before its registration, between its counter load and its push,
//!   or after it parked;
//! - every waiter of a direction is woken by one edge;
//! - an edge of one direction does not consume the other direction's
//!   waiters.

#![cfg(loom)]

use greenhub::__private::{Direction, ScheduledIo};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering::*};
use loom::thread;

/// The waiter's loop from `io::Registration::io`: load `seq`, try the
/// "syscall", register unless an edge arrived since, park.
fn wait_for(io: &ScheduledIo, data: &AtomicBool, dir: Direction) {
    loop {
        let seq = io.load_seq(dir);
        if data.load(Acquire) {
            return; // the syscall succeeded
        }
        if io.add_current_waiter(dir, seq) {
            thread::park();
        }
    }
}

#[test]
fn edge_racing_a_waiter_is_never_lost() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::default());
        let data = Arc::new(AtomicBool::new(false));
        let (io2, data2) = (io.clone(), data.clone());
        let hub = thread::spawn(move || {
            data2.store(true, Release);
            io2.fire(Direction::Read);
        });
        wait_for(&io, &data, Direction::Read);
        hub.join().unwrap();
    });
}

#[test]
fn one_edge_wakes_every_waiter_of_its_direction() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::default());
        let data = Arc::new(AtomicBool::new(false));
        let w = {
            let (io, data) = (io.clone(), data.clone());
            thread::spawn(move || wait_for(&io, &data, Direction::Read))
        };
        let (io2, data2) = (io.clone(), data.clone());
        let hub = thread::spawn(move || {
            data2.store(true, Release);
            io2.fire(Direction::Read);
        });
        wait_for(&io, &data, Direction::Read);
        w.join().unwrap();
        hub.join().unwrap();
    });
}

#[test]
fn directions_are_independent() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::default());
        let readable = Arc::new(AtomicBool::new(false));
        let writable = Arc::new(AtomicBool::new(false));
        let reader = {
            let (io, r) = (io.clone(), readable.clone());
            thread::spawn(move || wait_for(&io, &r, Direction::Read))
        };
        let (io2, r2, w2) = (io.clone(), readable.clone(), writable.clone());
        let hub = thread::spawn(move || {
            // A write edge first: it must not swallow the reader's wake-up.
            w2.store(true, Release);
            io2.fire(Direction::Write);
            r2.store(true, Release);
            io2.fire(Direction::Read);
        });
        wait_for(&io, &writable, Direction::Write);
        reader.join().unwrap();
        hub.join().unwrap();
    });
}
