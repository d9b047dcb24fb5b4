//! The join half of a greenlet: its output slot and its join-waiter slot.
//!
//! Both slots are plain cells; who may touch them is decided by the state word
//! (see `state.rs`):
//!
//! - the output is written once, by the code that finishes the greenlet, before
//!   `State::complete`; after that it is read (taken) by exactly one party: the
//!   `JoinHandle` if `JOIN_INTEREST` was still set at completion, else the hub;
//! - the waiter slot is written by the joiner only while `JOIN_WAITER` is clear
//!   and the greenlet is not complete; the completer reads it only if
//!   `JOIN_WAITER` was set at the moment of completion.
//!
//! `tests/loom_join.rs` checks this protocol under every interleaving.

use crate::error::{JoinError, drop_output_safely};
use crate::greenlet::state::{Snapshot, State};
use crate::greenlet::waiter::{Waiter, WaiterKey};
use crate::loom::UnsafeCell;

/// The output and join-waiter slots of one greenlet.
pub struct Completion<T> {
    waiter: UnsafeCell<Option<Waiter>>,
    output: UnsafeCell<Option<Result<T, JoinError>>>,
}

impl<T> Completion<T> {
    pub fn new() -> Self {
        Completion {
            waiter: UnsafeCell::new(None),
            output: UnsafeCell::new(None),
        }
    }

    /// The finishing side, before `State::complete`: stores the outcome.
    ///
    /// # Safety
    ///
    /// Called at most once, by the one party finishing the greenlet (its
    /// closure on its own stack, or the hub cancelling it), before
    /// `State::complete`; nobody reads the output before then.
    pub unsafe fn store(&self, outcome: Result<T, JoinError>) {
        // SAFETY: per the contract, nobody else accesses the slot before
        // COMPLETE is published.
        self.output
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
    }

    /// The finishing side, right after `State::complete` returned `prev`: wakes
    /// the joiner and drops the output if no handle will ever read it.
    ///
    /// # Safety
    ///
    /// `prev` must be the snapshot returned by the `State::complete` call that
    /// completed this greenlet, and this is called once.
    pub unsafe fn after_complete(&self, prev: Snapshot) {
        if prev.has_join_waiter() {
            // SAFETY: JOIN_WAITER was set when COMPLETE was published, so the
            // joiner handed the slot to us and can no longer reclaim it
            // (`unset_join_waiter` fails once COMPLETE is set).
            let waiter = self.waiter.with_mut(|slot| unsafe { (*slot).take() });
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
        if !prev.has_join_interest() {
            // SAFETY: the JoinHandle was dropped before completion, so no
            // one else will ever read the output.
            let output = self.output.with_mut(|slot| unsafe { (*slot).take() });
            drop_output_safely(output);
        }
    }

    /// The `JoinHandle`: returns the outcome if the greenlet completed;
    /// otherwise makes sure the current waiter is registered to be woken at
    /// completion and returns `None` (the caller then parks and retries).
    /// `registered` remembers which waiter the handle last registered.
    ///
    /// # Safety
    ///
    /// Only the greenlet's single `JoinHandle` calls this, and it has not
    /// taken the outcome yet.
    pub unsafe fn poll_join(
        &self,
        state: &State,
        registered: &mut Option<WaiterKey>,
    ) -> Option<Result<T, JoinError>> {
        // SAFETY: forwarded contract.
        unsafe { self.poll_join_as(state, registered, Waiter::current_key(), Waiter::current) }
    }

    /// The `JoinHandle` awaited as a future: as [`poll_join`], but the
    /// waiter to wake at completion is the async task's `waker`.
    ///
    /// # Safety
    ///
    /// As for [`poll_join`].
    ///
    /// [`poll_join`]: Self::poll_join
    pub unsafe fn poll_join_waker(
        &self,
        state: &State,
        registered: &mut Option<WaiterKey>,
        waker: &std::task::Waker,
    ) -> Option<Result<T, JoinError>> {
        // SAFETY: forwarded contract.
        unsafe {
            self.poll_join_as(state, registered, WaiterKey::of_waker(waker), || {
                Waiter::Async(waker.clone())
            })
        }
    }

    /// [`poll_join`](Self::poll_join) for the waiter `me`, built by `waiter`
    /// only when it must be (re)registered.
    ///
    /// # Safety
    ///
    /// As for [`poll_join`](Self::poll_join).
    unsafe fn poll_join_as(
        &self,
        state: &State,
        registered: &mut Option<WaiterKey>,
        me: WaiterKey,
        waiter: impl FnOnce() -> Waiter,
    ) -> Option<Result<T, JoinError>> {
        if state.load().is_complete() {
            // SAFETY: COMPLETE is published after the output was stored, and
            // JOIN_INTEREST is still set (we are the handle), so the output is
            // ours.
            return Some(unsafe { self.take_output() });
        }
        if *registered == Some(me) {
            return None;
        }
        // Take the slot back if a previous registration left it with the
        // completer.
        if registered.is_some() && !state.unset_join_waiter() {
            // SAFETY: as above, the greenlet completed.
            return Some(unsafe { self.take_output() });
        }
        // The previous waiter (if any) is dropped after the slot is ours
        // again, outside the write: an async waker's drop is foreign code.
        let new = waiter();
        // SAFETY: JOIN_WAITER is clear and the greenlet is not complete, so
        // the completer will not read the slot until we set the flag again.
        let old = self.waiter.with_mut(|slot| unsafe { (*slot).replace(new) });
        drop(old);
        if !state.set_join_waiter() {
            *registered = None;
            // SAFETY: completed meanwhile; the completer saw JOIN_WAITER clear
            // and never touches the slot, and the output is ours.
            return Some(unsafe { self.take_output() });
        }
        *registered = Some(me);
        None
    }

    /// The `JoinHandle`, after observing `COMPLETE`: takes the outcome.
    ///
    /// # Safety
    ///
    /// The greenlet completed and the caller is its single `JoinHandle`.
    pub unsafe fn take_output(&self) -> Result<T, JoinError> {
        // SAFETY: per the contract the output is ours.
        self.output
            .with_mut(|slot| unsafe { (*slot).take() })
            .expect("greenhub: join output taken twice")
    }

    /// The `JoinHandle`'s drop.
    ///
    /// # Safety
    ///
    /// Called once, by the greenlet's single `JoinHandle`, which has not taken
    /// the outcome.
    pub unsafe fn drop_handle(&self, state: &State) {
        if state.drop_join_interest() {
            // SAFETY: completed with JOIN_INTEREST set, so the output is ours
            // to drop.
            let output = self.output.with_mut(|slot| unsafe { (*slot).take() });
            drop_output_safely(output);
        }
    }
}
