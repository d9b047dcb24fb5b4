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
//!   waiters;
//! - **several hubs** (`io/registration.rs`, "Several hubs"): a waiter on
//!   hub B of an fd first registered with hub A, which is busy and never
//!   polls, registers the fd with B's poller before parking and is woken
//!   through B alone, whether the data arrives before, during or after that
//!   registration.

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

/// The kernel side of one fd watched by the epoll instances of two hubs:
/// its readiness, and per hub whether the fd is registered and an event is
/// pending. One lock, as the kernel's: a registration (`EPOLL_CTL_ADD`,
/// which reports the current readiness) and the data's arrival (which
/// queues an event on every registered instance) are atomic to each other.
#[derive(Default)]
struct Kernel {
    data: bool,
    registered: [bool; 2],
    pending: [bool; 2],
}

impl Kernel {
    fn register(&mut self, hub: usize) {
        self.registered[hub] = true;
        if self.data {
            self.pending[hub] = true;
        }
    }

    fn arrive(&mut self) {
        self.data = true;
        for hub in 0..2 {
            if self.registered[hub] {
                self.pending[hub] = true;
            }
        }
    }
}

#[test]
fn a_waiter_on_another_hub_is_woken_through_its_own_poller() {
    use loom::sync::Mutex;
    const A: usize = 0;
    const B: usize = 1;
    loom::model(|| {
        let io = Arc::new(ScheduledIo::default());
        let kernel = Arc::new(Mutex::new(Kernel::default()));
        let done = Arc::new(AtomicBool::new(false));
        // Hub A registered the fd first, and is now busy: it never polls.
        kernel.lock().unwrap().register(A);
        let peer = {
            let kernel = kernel.clone();
            thread::spawn(move || kernel.lock().unwrap().arrive())
        };
        // Hub B polls until it dispatched an event or the waiter is done.
        let hub_b = {
            let (io, kernel, done) = (io.clone(), kernel.clone(), done.clone());
            thread::spawn(move || {
                loop {
                    let event = std::mem::take(&mut kernel.lock().unwrap().pending[B]);
                    if event {
                        io.fire(Direction::Read);
                        return;
                    }
                    if done.load(Acquire) {
                        return;
                    }
                    thread::yield_now();
                }
            })
        };
        // The waiter, a greenlet of hub B: `Registration::io` and `park`.
        loop {
            let seq = io.load_seq(Direction::Read);
            if kernel.lock().unwrap().data {
                break; // the syscall succeeded
            }
            // `ensure_registered`: B's poller does not have the fd yet.
            kernel.lock().unwrap().register(B);
            if io.add_current_waiter(Direction::Read, seq) {
                thread::park();
            }
        }
        done.store(true, Release);
        peer.join().unwrap();
        hub_b.join().unwrap();
    });
}
