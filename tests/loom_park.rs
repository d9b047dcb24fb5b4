//! Loom models of **park vs. wake**: the greenlet state-word protocol that
//! `src/greenlet/state.rs` describes in its module docs (the final CAS after
//! the switch, `NOTIFIED` tokens, "the first waker wins").
//!
//! The real [`State`] is driven in the order the runtime drives it:
//!
//! - a loom thread is the owning hub. It "resumes" the greenlet by running
//!   the greenlet's code up to its next suspension (the greenlet side of
//!   `park_greenlet` in `src/greenlet/mod.rs`: `take_notified`, else
//!   suspend), then does what `run_task` in `src/hub/mod.rs` does after
//!   `resume()` returns: `park_commit` (resuming again at once if it fails)
//!   or, when the body returned, `complete`;
//! - waker threads call [`State::wake`] and, when it returns `true`, hand the
//!   greenlet to the hub the way `hub::schedule` does from another thread:
//!   push to the hub's real [`Inbox`], then unpark the hub. The hub's poller
//!   is stood in for by loom's thread park, which, like the eventfd-backed
//!   `mio::Waker`, is sticky (an unpark before the park still ends it).
//!
//! Invariants asserted by every model:
//!
//! - **no lost wake-up**: the greenlet always finishes; if a wake-up were lost
//!   the hub would wait for its inbox forever, which loom reports as a
//!   deadlock;
//! - **never two resumes / never two owners**: the greenlet's stack is stood
//!   in for by a loom `UnsafeCell` that its owner of the moment (the hub
//!   while it runs it, the waker that won it from `PARKED` until it pushes
//!   it) writes; loom fails the model if two threads could touch it without
//!   a happens-before edge. Every push is matched by exactly one resume from
//!   the inbox, and nothing is left in the inbox once every waker is done
//!   (no push of a running or completed greenlet).
//!
//! Model-specific invariants are on each model.

#![cfg(loom)]

mod loom_common;

use loom_common::wait_inbox;

use greenhub::__private::{Inbox, State};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// The parts of one greenlet that the protocol touches.
struct Greenlet {
    state: State,
    /// Stands in for the greenlet's stack: written by whoever owns the
    /// greenlet at that moment (see the file docs).
    stack: UnsafeCell<usize>,
    /// The condition the greenlet waits for (`wait_loop` models): how many
    /// wakers have published their event.
    events: AtomicUsize,
    /// How many wakers have started their `wake` (set just before it).
    wakes_started: AtomicUsize,
    /// How many `wake` calls returned `true` (and pushed the greenlet).
    wins: AtomicUsize,
}

// SAFETY: `stack` is the only `!Sync` part. Every access to it goes through
// loom's `UnsafeCell`, which checks that no two accesses race; proving that
// they never do is what the models are for.
unsafe impl Sync for Greenlet {}

impl Greenlet {
    fn new() -> Greenlet {
        Greenlet {
            // Join interest plays no part in park/wake.
            state: State::new(false),
            stack: UnsafeCell::new(0),
            events: AtomicUsize::new(0),
            wakes_started: AtomicUsize::new(0),
            wins: AtomicUsize::new(0),
        }
    }

    /// The current owner works on the greenlet's stack.
    fn touch_stack(&self) {
        // SAFETY: only the greenlet's owner of the moment calls this; loom
        // reports it if two callers are not ordered by happens-before.
        self.stack.with_mut(|s| unsafe { *s += 1 });
    }
}

/// Why a resume of the greenlet came back to the hub.
enum Suspend {
    /// `Suspend::Park` (from `park_greenlet`).
    Park,
    /// The closure returned.
    Return,
}

/// What the greenlet's closure does, cut at its suspension points.
#[derive(Clone, Copy)]
enum Body {
    /// `greenhub::park()` once, then return (`park` is a token park: it must
    /// return once somebody woke the greenlet, even if the wake-up came
    /// first).
    ParkOnce,
    /// `while events < n { greenhub::park() }`: the usual "register, re-check
    /// the condition, park" loop of every blocking primitive.
    WaitFor(usize),
}

/// Runs the greenlet from where it stopped (`resumed`: it had suspended in
/// `park_greenlet`) to its next suspension or its end.
fn resume(g: &Greenlet, body: Body, resumed: bool) -> Suspend {
    match body {
        Body::ParkOnce => {
            if resumed {
                // Back from `suspend`: `park` returns, the closure returns.
                return Suspend::Return;
            }
            // `park_greenlet`: a token makes `park` return at once.
            if g.state.take_notified() {
                return Suspend::Return;
            }
            Suspend::Park
        }
        Body::WaitFor(n) => loop {
            if g.events.load(SeqCst) >= n {
                return Suspend::Return;
            }
            if !g.state.take_notified() {
                return Suspend::Park;
            }
        },
    }
}

/// The hub's `run_task`: resumes the greenlet until it parks for good
/// (`false`) or returns (`true`, the greenlet is then completed).
fn run_task(g: &Greenlet, body: Body, mut resumed: bool) -> bool {
    loop {
        g.touch_stack();
        match resume(g, body, resumed) {
            Suspend::Return => {
                if let Body::ParkOnce = body {
                    // Nothing else wakes the greenlet, so a return from its
                    // park is only correct once a waker has started.
                    assert!(
                        g.wakes_started.load(SeqCst) > 0,
                        "park returned before anyone woke the greenlet"
                    );
                }
                let prev = g.state.complete();
                assert!(!prev.is_complete());
                return true;
            }
            Suspend::Park => {
                if g.state.park_commit() {
                    return false;
                }
                // A wake-up raced with the park: resume it again at once.
                resumed = true;
            }
        }
    }
}

/// A waker, `rounds` times: publishes an event, then wakes the greenlet,
/// pushing it to the hub if it moved it out of `PARKED` (what `Waiter::wake`
/// and `hub::schedule` do from another thread).
fn waker(g: &Greenlet, inbox: &Inbox<usize>, hub: &thread::Thread, rounds: usize) {
    for _ in 0..rounds {
        g.events.fetch_add(1, SeqCst);
        g.wakes_started.fetch_add(1, SeqCst);
        if g.state.wake() {
            // We own the parked greenlet until the hub takes it.
            g.touch_stack();
            g.wins.fetch_add(1, SeqCst);
            inbox.push(0).expect("inbox closed");
            hub.unpark();
        }
    }
}

/// Runs one model: a hub thread runs the greenlet, `nwakers` threads each
/// wake it `rounds` times, and the main thread checks the end state once all
/// are done. (The main thread is not the hub because loom cannot deliver an
/// unpark to a thread blocked in `JoinHandle::join`, and a waker may unpark
/// the hub after it is done.) Returns (times the greenlet was resumed from
/// the inbox, wins).
fn model(body: Body, nwakers: usize, rounds: usize) -> (usize, usize) {
    let g = Arc::new(Greenlet::new());
    let inbox = Arc::new(Inbox::new());
    let hub = {
        let (g, inbox) = (g.clone(), inbox.clone());
        thread::spawn(move || {
            let mut from_inbox = 0;
            let mut finished = run_task(&g, body, false);
            while !finished {
                // Parked: only a waker's push brings it back, one per park.
                assert_eq!(wait_inbox(&inbox), 1, "greenlet pushed twice");
                from_inbox += 1;
                finished = run_task(&g, body, true);
            }
            from_inbox
        })
    };
    let wakers: Vec<_> = (0..nwakers)
        .map(|_| {
            let (g, inbox, hub) = (g.clone(), inbox.clone(), hub.thread().clone());
            thread::spawn(move || waker(&g, &inbox, &hub, rounds))
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    let from_inbox = hub.join().unwrap();

    let wins = g.wins.load(SeqCst);
    assert_eq!(wins, from_inbox, "a push without a resume, or the reverse");
    assert!(inbox.is_empty(), "greenlet pushed after it completed");
    assert!(g.state.load().is_complete());
    // Late wake-ups of a completed greenlet are dropped.
    assert!(!g.state.wake());
    (from_inbox, wins)
}

/// One `park()` against one concurrent wake: the token is never lost (park
/// returns, and only after the wake started) and the greenlet is resumed
/// from the inbox at most once.
#[test]
fn park_vs_wake() {
    loom::model(|| {
        let (from_inbox, _) = model(Body::ParkOnce, 1, 1);
        assert!(from_inbox <= 1);
    });
}

/// One `park()` against two concurrent wakes: exactly one of them may win
/// the `PARKED -> SCHEDULED` CAS, so the greenlet is pushed (and resumed)
/// at most once; the other leaves a token or is dropped at completion.
#[test]
fn park_vs_two_wakes() {
    loom::model(|| {
        let (_, wins) = model(Body::ParkOnce, 2, 1);
        assert!(wins <= 1, "two wakers both won one park");
    });
}

/// A wait loop (`while events < 2 { park() }`) against two wakers that each
/// publish an event and wake: the greenlet sees both events (no lost
/// wake-up even when a wake lands between its condition check and the
/// hub's final CAS), and is pushed at most once per park (two in all).
#[test]
fn wait_loop_vs_two_wakers() {
    loom::model(|| {
        let (from_inbox, _) = model(Body::WaitFor(2), 2, 1);
        assert!(from_inbox <= 2);
    });
}

/// A wait loop (`while events < 2 { park() }`) against one waker that
/// publishes an event and wakes, twice (`x.store(1); g.unpark();
/// x.store(2); g.unpark()`, the documented `park` pattern): the greenlet sees
/// both events.
///
/// This is the shape in which a `wake` that trusts a plain load is caught:
/// the first wake leaves a token, the hub's final CAS consumes it, the
/// greenlet re-checks (one event) and parks, and the second wake's load may
/// still return the waker's own consumed `NOTIFIED` (nothing orders the
/// hub's later writes before it). `wake` must therefore settle every
/// non-completed case with a read-modify-write.
#[test]
fn wait_loop_vs_repeated_wakes() {
    loom::model(|| {
        let (from_inbox, _) = model(Body::WaitFor(2), 1, 2);
        assert!(from_inbox <= 2);
    });
}
