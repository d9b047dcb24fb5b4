//! Loom models of **kill vs. wake**: `State::kill` (sticky `KILLED`, then a
//! wake) racing with `State::wake` against a greenlet that parks, as described
//! in the module docs of `src/greenlet/state.rs` ("Flags": `KILLED`) and
//! driven the way `JoinHandle::kill` (`src/greenlet/join.rs`),
//! `park_greenlet_until`/`pending_interrupt` (`src/greenlet/wait.rs`) and
//! `run_task`/`start` (`src/hub/run.rs`) drive it.
//!
//! A loom thread is the owning hub: it runs the greenlet with the hub's real
//! resume loop ([`run_until_suspended`]: resume, then the final CAS
//! `park_commit`, resuming again at once if it fails) and completes it when
//! it ends. Killers and wakers hand a greenlet they moved out of `PARKED` to
//! the hub with the real `Inbox::push_and_ring`, and the hub waits for its
//! inbox with the real `Doorbell::idle_with` (`loom_common`; loom's sticky
//! thread park stands in for the hub's poller and its eventfd waker).
//!
//! The greenlet's closure is `loop { greenhub::park() }`, woken spuriously by
//! the waker: only a kill ends it. Its code up to each suspension (`resume`
//! below, the greenlet's side of `park_greenlet_until`: the kill check, the
//! real [`State::take_notified`], else suspend) is the glue that stays here.
//! Invariants asserted:
//!
//! - **the kill is never lost**: the greenlet always ends, killed (a lost kill
//!   leaves the hub waiting on its inbox forever: loom reports a deadlock);
//! - **resumed exactly once per win**: every `wake`/`kill` that returned
//!   `true` pushed the greenlet once and the hub resumed it once from the
//!   inbox; nothing is pushed after it completed; the greenlet's stack (a loom
//!   `UnsafeCell` written by its owner of the moment) is never touched by two
//!   threads without a happens-before edge;
//! - **a kill is seen at once**: a resume that starts after `kill()` returned
//!   observes `KILLED` (the greenlet unwinds from that resume);
//! - **an unstarted greenlet that is killed never runs** (`kill_vs_start`).
//!
//! Does the model bite? Each mutation below was made in `src`, then undone,
//! and loom failed both models (each a deadlock):
//!
//! - `State::kill` wakes first and sets `KILLED` after;
//! - `run_until_suspended` ignores a failed final CAS;
//! - `Inbox::push_and_ring` unparks before it pushes;
//! - `Doorbell::prepare_idle` parks even when a notification is pending.

#![cfg(loom)]

mod loom_common;

use loom_common::Remote;

use greenhub::__private::{Ran, Resumed, State, run_until_suspended};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;

struct Greenlet {
    state: State,
    /// Stands in for the greenlet's stack: written by its owner of the moment.
    stack: UnsafeCell<usize>,
    /// Set right after `State::kill` returned.
    kill_returned: AtomicBool,
    /// How many `wake`/`kill` calls returned `true` (and pushed it).
    wins: AtomicUsize,
}

// SAFETY: `stack` is the only `!Sync` part; every access goes through loom's
// `UnsafeCell`, which fails the model if two of them race.
unsafe impl Sync for Greenlet {}

impl Greenlet {
    fn touch_stack(&self) {
        // SAFETY: only the greenlet's owner of the moment calls this; loom
        // checks that the callers are ordered by happens-before.
        self.stack.with_mut(|s| unsafe { *s += 1 });
    }

    /// `check_killed`: whether the greenlet must unwind now.
    fn check_killed(&self) -> bool {
        self.state.load().is_killed()
    }
}

/// The hub's side once the greenlet is started: run it, and every time it
/// parked for good, wait for the push that brings it back. Returns how many
/// times it was resumed from the inbox.
fn hub_loop(g: &Greenlet, remote: &Remote) -> usize {
    let mut from_inbox = 0;
    let mut finished = run_task(g, false);
    while !finished {
        assert_eq!(remote.wait_inbox(), 1, "greenlet pushed twice");
        from_inbox += 1;
        finished = run_task(g, true);
    }
    from_inbox
}

/// Runs `loop { park() }` from where it stopped (`resumed`: inside
/// `park_greenlet_until`, right after its `suspend`) to its next suspension;
/// `Return` when it unwound with the kill signal.
fn resume(g: &Greenlet, resumed: bool) -> Resumed {
    if resumed {
        // Read before the state word: if kill() had already returned, this
        // resume must see KILLED.
        let after_kill = g.kill_returned.load(SeqCst);
        // `park_greenlet_until`, after `suspend`: `pending_interrupt`.
        let killed = g.check_killed();
        assert!(killed || !after_kill, "resumed after kill() but not killed");
        if killed {
            return Resumed::Return;
        }
    }
    loop {
        // `park_greenlet_until`: `pending_interrupt`, then a token or a
        // suspend.
        if g.check_killed() {
            return Resumed::Return;
        }
        if !g.state.take_notified() {
            return Resumed::Park;
        }
        // Token: `park` returns at once, and the loop parks again.
    }
}

/// The hub's `run_task` for a started greenlet, with the real resume loop:
/// `true` once it completed.
fn run_task(g: &Greenlet, mut resumed: bool) -> bool {
    let ran = run_until_suspended(&g.state, || {
        g.touch_stack();
        let r = resume(g, resumed);
        resumed = true;
        r
    });
    match ran {
        Ran::Returned => {
            let prev = g.state.complete();
            assert!(prev.is_killed());
            true
        }
        Ran::Parked => false,
        Ran::Yielded => unreachable!("the greenlet never yields"),
        Ran::Abandoned => unreachable!("the model never abandons a greenlet"),
    }
}

/// What a winning waker or killer does: own the greenlet, push it to its hub.
fn push(g: &Greenlet, remote: &Remote, hub: &thread::Thread) {
    g.touch_stack();
    g.wins.fetch_add(1, SeqCst);
    remote.push(0, hub);
}

/// `JoinHandle::kill` from another thread.
fn spawn_killer(g: &Arc<Greenlet>, remote: &Arc<Remote>, hub: &thread::Thread) -> Join {
    let (g, remote, hub) = (g.clone(), remote.clone(), hub.clone());
    thread::spawn(move || {
        let must_push = g.state.kill();
        g.kill_returned.store(true, SeqCst);
        if must_push {
            push(&g, &remote, &hub);
        }
    })
}

/// `Greenlet::unpark` from another thread (a spurious wake-up of the park
/// loop).
fn spawn_waker(g: &Arc<Greenlet>, remote: &Arc<Remote>, hub: &thread::Thread) -> Join {
    let (g, remote, hub) = (g.clone(), remote.clone(), hub.clone());
    thread::spawn(move || {
        if g.state.wake() {
            push(&g, &remote, &hub);
        }
    })
}

type Join = thread::JoinHandle<()>;

fn setup() -> (Arc<Greenlet>, Arc<Remote>) {
    let g = Arc::new(Greenlet {
        state: State::new(true),
        stack: UnsafeCell::new(0),
        kill_returned: AtomicBool::new(false),
        wins: AtomicUsize::new(0),
    });
    (g, Arc::new(Remote::new()))
}

/// Checks the end state once every thread is done.
fn check_end(g: &Greenlet, remote: &Remote, from_inbox: usize) {
    assert_eq!(g.wins.load(SeqCst), from_inbox, "push/resume mismatch");
    assert!(
        remote.inbox.is_empty(),
        "greenlet pushed after it completed"
    );
    let end = g.state.load();
    assert!(end.is_complete() && end.is_killed(), "{end:?}");
    // Kills and wakes of a completed greenlet push nothing.
    assert!(!g.state.kill());
    assert!(!g.state.wake());
}

// In both models a spawned loom thread is the hub and the main thread only
// joins and checks: loom cannot deliver an unpark to a thread blocked in
// `JoinHandle::join`, and a killer or waker may unpark the hub after it is
// done.

/// A started greenlet blocked in `loop { park() }`, a concurrent kill and a
/// concurrent spurious wake.
#[test]
fn kill_vs_wake() {
    loom::model(|| {
        let (g, remote) = setup();
        let hub = {
            let (g, remote) = (g.clone(), remote.clone());
            thread::spawn(move || hub_loop(&g, &remote))
        };
        let k = spawn_killer(&g, &remote, hub.thread());
        let w = spawn_waker(&g, &remote, hub.thread());
        k.join().unwrap();
        w.join().unwrap();
        let from_inbox = hub.join().unwrap();
        // One kill and one wake: at most two pushes.
        assert!(from_inbox <= 2);
        check_end(&g, &remote, from_inbox);
    });
}

/// Kill vs. a greenlet's first run: the hub dequeues the unstarted greenlet
/// and `start` checks `KILLED` (cancelling it) while the kill races in. If
/// the kill returned before that check, the closure never runs; otherwise
/// it runs `loop { park() }` and is still killed at a blocking point.
#[test]
fn kill_vs_start() {
    loom::model(|| {
        let (g, remote) = setup();
        let hub = {
            let (g, remote) = (g.clone(), remote.clone());
            thread::spawn(move || {
                // `start`: a killed greenlet is cancelled instead of run.
                let kill_returned = g.kill_returned.load(SeqCst);
                if g.state.load().is_killed() {
                    // `cancel`: the hub completes it without running it.
                    let prev = g.state.complete();
                    assert!(prev.is_killed());
                    return 0;
                }
                assert!(!kill_returned, "started after kill() returned");
                hub_loop(&g, &remote)
            })
        };
        let k = spawn_killer(&g, &remote, hub.thread());
        k.join().unwrap();
        let from_inbox = hub.join().unwrap();
        assert!(from_inbox <= 1);
        check_end(&g, &remote, from_inbox);
    });
}
