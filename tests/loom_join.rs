//! Loom models of **join vs. completion**: the output slot and join-waiter
//! slot of `src/greenlet/completion.rs` (see its module docs), handed between
//! the completing hub and the `JoinHandle` by the `JOIN_INTEREST` and
//! `JOIN_WAITER` bits of the state word (`src/greenlet/state.rs`).
//!
//! The real [`Completion`] and [`State`] are driven the way the runtime
//! drives them: the completer thread does what the greenlet's root and
//! `Task::finish` do (`store`, `State::complete`, `after_complete`); the
//! joiner does what `JoinHandle::join` does off a hub (`poll_join`, then
//! park, until it gets the outcome) or what `JoinHandle`'s drop does
//! (`drop_handle`). Off a hub, `poll_join` registers `Waiter::current()`,
//! i.e. the joiner's loom thread, which `after_complete` wakes with
//! `Thread::unpark`.
//!
//! Invariants asserted:
//!
//! - **no lost wake-up**: the joiner always gets the outcome (a completer that
//!   missed the registered waiter leaves it parked forever: loom reports a
//!   deadlock);
//! - **the value arrives exactly once and intact**, and `take_output` never
//!   finds the slot empty (it panics if taken twice);
//! - **the output is dropped exactly once**, by the joiner, by the handle's
//!   drop or by the completer when no handle is left (counted by the value's
//!   `Drop`);
//! - **the slots never race**: both are loom `UnsafeCell`s, so loom fails the
//!   model if the completer and the handle could touch one of them without a
//!   happens-before edge.

#![cfg(loom)]

use greenhub::__private::{Completion, State, WaiterKey};
use greenhub::JoinError;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

const VALUE: u32 = 42;

/// A greenlet's output that counts its drops.
struct Output {
    value: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Output {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// What `Task<F, T>` holds for the protocol: the state word and the slots.
struct Task {
    state: State,
    completion: Completion<Output>,
}

// SAFETY: the same argument as `Task`'s own `Sync`/`Send` impls in
// `src/greenlet/task.rs`: the slots are only touched as the state word
// allows (which is what these models check; loom's `UnsafeCell` reports any
// racing access), and the output and the registered waiter (a loom
// `Thread`) may move between threads.
unsafe impl Sync for Task {}
// SAFETY: see `Sync`.
unsafe impl Send for Task {}

fn setup() -> (Arc<Task>, Arc<AtomicUsize>) {
    let task = Arc::new(Task {
        // A `spawn`ed greenlet: its `JoinHandle` exists.
        state: State::new(true),
        completion: Completion::new(),
    });
    (task, Arc::new(AtomicUsize::new(0)))
}

/// The owning hub finishing the greenlet: the closure's root stores the
/// outcome, then `Task::finish` publishes it.
fn spawn_completer(task: &Arc<Task>, drops: &Arc<AtomicUsize>) -> thread::JoinHandle<()> {
    let (task, drops) = (task.clone(), drops.clone());
    thread::spawn(move || {
        let out = Output {
            value: VALUE,
            drops,
        };
        // SAFETY: called once, by the only party finishing the greenlet,
        // before `State::complete`; nobody reads the output before that.
        unsafe { task.completion.store(Ok(out)) };
        let prev = task.state.complete();
        assert!(!prev.is_complete());
        // SAFETY: `prev` is what the `complete` call that completed the
        // greenlet returned, and this is the only call.
        unsafe { task.completion.after_complete(prev) };
    })
}

/// `JoinHandle::join` off a hub: poll, park, until the outcome is there.
fn join(task: &Task, registered: &mut Option<WaiterKey>) -> Result<Output, JoinError> {
    loop {
        // SAFETY: the caller is the greenlet's single handle, and it has not
        // taken the outcome yet (it stops polling once it has it).
        if let Some(outcome) = unsafe { task.completion.poll_join(&task.state, registered) } {
            return outcome;
        }
        thread::park();
    }
}

/// Checks the joined outcome and that it is dropped exactly once.
fn check_joined(outcome: Result<Output, JoinError>, drops: &AtomicUsize) {
    let out = outcome.expect("the greenlet returned a value");
    assert_eq!(out.value, VALUE);
    assert_eq!(
        drops.load(SeqCst),
        0,
        "output dropped before the joiner got it"
    );
    drop(out);
    assert_eq!(drops.load(SeqCst), 1);
}

// In every model the threads that register as join waiters are spawned
// loom threads that exit once done, and the main thread only joins and
// checks: the completer may unpark a waiter after it stopped waiting, and
// loom cannot deliver an unpark to a thread blocked in `JoinHandle::join`.

/// A joiner thread joins while the hub completes the greenlet. The value
/// arrives exactly once and is dropped exactly once.
#[test]
fn join_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let joiner = {
            let (task, drops) = (task.clone(), drops.clone());
            thread::spawn(move || {
                let mut registered = None;
                let outcome = join(&task, &mut registered);
                check_joined(outcome, &drops);
            })
        };
        joiner.join().unwrap();
        c.join().unwrap();
        // The completer saw JOIN_INTEREST and left the output alone.
        assert_eq!(drops.load(SeqCst), 1);
        assert!(task.state.load().is_complete());
    });
}

/// The handle changes waiter between two polls: a first waiter thread polls
/// once and registers itself, then the handle moves to a second waiter
/// thread, which must take the waiter slot back (`unset_join_waiter`),
/// register itself and be the one woken, all racing with completion. (This
/// is the path of a join that gave up, e.g. on a timeout, and is retried
/// elsewhere.)
///
/// `Waiter::current_key()` names an OS thread by its `std` thread id, and
/// loom runs all its threads on one OS thread, so both waiters would get
/// the same key; the handle's record of the first registration is therefore
/// replaced by a distinct key before the move, which is exactly what a real
/// second waiter would see.
#[test]
fn join_moves_to_another_waiter_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let first = {
            let task = task.clone();
            thread::spawn(move || {
                let mut registered = None;
                // SAFETY: single handle, outcome not taken.
                let outcome = unsafe { task.completion.poll_join(&task.state, &mut registered) };
                (registered, outcome)
            })
        };
        match first.join().unwrap() {
            (_, Some(outcome)) => check_joined(outcome, &drops),
            (registered, None) => {
                assert!(registered.is_some());
                // Stands for "registered by another waiter" (see above).
                let mut registered = Some(WaiterKey::Greenlet(usize::MAX));
                let (task, drops) = (task.clone(), drops.clone());
                let second = thread::spawn(move || {
                    let outcome = join(&task, &mut registered);
                    check_joined(outcome, &drops);
                });
                second.join().unwrap();
            }
        }
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1);
    });
}

/// The `JoinHandle` is dropped (the greenlet detached) while the hub
/// completes it: whoever comes second drops the output, exactly once.
#[test]
fn drop_handle_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        // SAFETY: the single handle, dropped once, outcome not taken.
        unsafe { task.completion.drop_handle(&task.state) };
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "output not dropped exactly once");
        assert!(task.state.load().is_complete());
    });
}

/// A handle that registered as the join waiter, then is dropped (its
/// joiner gave up, e.g. it was killed while joining), racing with
/// completion: the completer takes and wakes the stale waiter, and the
/// output is still dropped exactly once.
#[test]
fn join_then_drop_handle_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let handle = {
            let (task, drops) = (task.clone(), drops.clone());
            thread::spawn(move || {
                let mut registered = None;
                // SAFETY: single handle, outcome not taken.
                match unsafe { task.completion.poll_join(&task.state, &mut registered) } {
                    Some(outcome) => check_joined(outcome, &drops),
                    // SAFETY: the single handle, dropped once, outcome not
                    // taken (`poll_join` returned `None`).
                    None => unsafe { task.completion.drop_handle(&task.state) },
                }
            })
        };
        handle.join().unwrap();
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "output not dropped exactly once");
    });
}
