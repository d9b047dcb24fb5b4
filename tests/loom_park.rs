//! Loom models of **park vs. wake**: the greenlet state-word protocol that
//! `src/greenlet/state.rs` describes in its module docs (the final CAS after
//! the switch, `NOTIFIED` tokens, "the first waker wins").
//!
//! Each step is greenhub's own code, driven in the order the runtime drives
//! it:
//!
//! - a loom thread is the owning hub. It runs the greenlet with the hub's
//!   real resume loop, [`run_until_suspended`] (what `run_task` in
//!   `src/hub/run.rs` runs): resume, and after a park the final CAS
//!   ([`State::park_commit`]), resuming again at once if it fails; when the
//!   body returned, it completes the greenlet ([`State::complete`]);
//! - waker threads call [`State::wake`] and, when it returns `true`, hand the
//!   greenlet to the hub the way `hub::schedule` does from another thread:
//!   the real `Inbox::push_and_ring` onto the hub's real [`Inbox`] and
//!   `Doorbell`; the hub waits for its inbox with the real
//!   `Doorbell::idle_with` (`loom_common`). The hub's poller is stood in for
//!   by loom's thread park, which, like the eventfd-backed `mio::Waker`, is
//!   sticky (an unpark before the park still ends it).
//!
//! Glue that stays here: the greenlet's own code up to its next suspension
//! (`resume`), which plays the greenlet's side of `park_greenlet_until` in
//! `src/greenlet/wait.rs` (take a `NOTIFIED` token with the real
//! [`State::take_notified`], else suspend with `Suspend::Park`), and the
//! stand-ins for the stack and the poller.
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
//!
//! Does the model bite? Each mutation below was made in `src`, then undone,
//! and loom failed the models named (each a deadlock: the hub waits for a
//! wake-up that was lost):
//!
//! - `run_until_suspended` ignores a failed final CAS (returns `Parked`
//!   although a wake-up raced in and consumed nothing): every model;
//! - `Inbox::push_and_ring` unparks before it pushes: every model;
//! - `Doorbell::prepare_idle` parks even when a notification is pending:
//!   every model;
//! - `State::wake` returns early when its load already shows `NOTIFIED`
//!   (the bug the comment in `wake` describes): `wait_loop_vs_two_wakers`
//!   and `wait_loop_vs_repeated_wakes`.

#![cfg(loom)]

mod loom_common;

use loom_common::Remote;

use greenhub::__private::{Ran, Resumed, State, run_until_suspended};
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
/// `park_greenlet_until`) to its next suspension or its end.
fn resume(g: &Greenlet, body: Body, resumed: bool) -> Resumed {
    match body {
        Body::ParkOnce => {
            if resumed {
                // Back from `suspend`: `park` returns, the closure returns.
                return Resumed::Return;
            }
            // `park_greenlet_until`: a token makes `park` return at once.
            if g.state.take_notified() {
                return Resumed::Return;
            }
            Resumed::Park
        }
        Body::WaitFor(n) => loop {
            if g.events.load(SeqCst) >= n {
                return Resumed::Return;
            }
            if !g.state.take_notified() {
                return Resumed::Park;
            }
        },
    }
}

/// The hub's `run_task` with the real resume loop: resumes the greenlet
/// until it parks for good (`false`) or returns (`true`, the greenlet is
/// then completed).
fn run_task(g: &Greenlet, body: Body, mut resumed: bool) -> bool {
    let ran = run_until_suspended(&g.state, || {
        g.touch_stack();
        let r = resume(g, body, resumed);
        // Any later resume comes back from the park's suspend.
        resumed = true;
        r
    });
    match ran {
        Ran::Returned => {
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
            true
        }
        Ran::Parked => false,
        Ran::Yielded => unreachable!("the greenlet never yields"),
        Ran::Abandoned => unreachable!("the model never abandons a greenlet"),
    }
}

/// A waker, `rounds` times: publishes an event, then wakes the greenlet,
/// pushing it to the hub if it moved it out of `PARKED` (what `Waiter::wake`
/// and `hub::schedule` do from another thread).
fn waker(g: &Greenlet, remote: &Remote, hub: &thread::Thread, rounds: usize) {
    for _ in 0..rounds {
        g.events.fetch_add(1, SeqCst);
        g.wakes_started.fetch_add(1, SeqCst);
        if g.state.wake() {
            // We own the parked greenlet until the hub takes it.
            g.touch_stack();
            g.wins.fetch_add(1, SeqCst);
            remote.push(0, hub);
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
    let remote = Arc::new(Remote::new());
    let hub = {
        let (g, remote) = (g.clone(), remote.clone());
        thread::spawn(move || {
            let mut from_inbox = 0;
            let mut finished = run_task(&g, body, false);
            while !finished {
                // Parked: only a waker's push brings it back, one per park.
                assert_eq!(remote.wait_inbox(), 1, "greenlet pushed twice");
                from_inbox += 1;
                finished = run_task(&g, body, true);
            }
            from_inbox
        })
    };
    let wakers: Vec<_> = (0..nwakers)
        .map(|_| {
            let (g, remote, hub) = (g.clone(), remote.clone(), hub.thread().clone());
            thread::spawn(move || waker(&g, &remote, &hub, rounds))
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    let from_inbox = hub.join().unwrap();

    let wins = g.wins.load(SeqCst);
    assert_eq!(wins, from_inbox, "a push without a resume, or the reverse");
    assert!(
        remote.inbox.is_empty(),
        "greenlet pushed after it completed"
    );
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
