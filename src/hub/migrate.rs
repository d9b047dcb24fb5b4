//! Migratable greenlets: how a started greenlet moves between the hubs of an
//! M:N runtime, for those spawned with the `unsafe` opt-in
//! (`greenlet::Builder::migratable`, `Builder::migratable`; the promise the
//! caller makes is in their `# Safety` sections). Every other started greenlet
//! stays on its hub (docs/ARCHITECTURE.md, 'The soundness rule') and never
//! comes here.
//!
//! # States
//!
//! A started migratable greenlet is, as far as the hubs are concerned:
//!
//! - **owned** by hub H: in H's live set (`live_slot` is its index) and
//!   `owner` is H. It is running on H, parked, or queued in H's `ready`
//!   (only while H shuts down or while the greenlet is `suspended_unwinding`).
//! - **in transit**: queued in the stealable deque (`fresh`) of the hub that
//!   released it, in no live set (`live_slot == IN_TRANSIT`); `owner` still
//!   names the hub that released it.
//!
//! # Moves, and who makes them
//!
//! - *owned by H -> in transit*: H, on its own thread, when the greenlet
//!   becomes runnable there (a wake on H, H draining its inbox, a yield),
//!   unless H is shutting down or the greenlet suspended mid-unwind
//!   (`suspended_unwinding`: std counts panics per OS thread). H takes it out of its
//!   live set, pushes it on `fresh` and wakes an idle hub to come and steal.
//! - *in transit -> owned by K*: the hub K that pops it (K = H) or steals it,
//!   in `run_task`, before resuming it: `owner` becomes K (the old owner's
//!   `Arc` is released) and K inserts it in its live set. A K that is
//!   shutting down also marks it killed, since K's kill sweep
//!   (`begin_draining`) may have run before it arrived.
//!
//! Throughout both moves the state word says `SCHEDULED` and exactly one
//! queue (or one hub's hands) holds the greenlet, so no other thread can make
//! a move at the same time: a wake-up only sets `NOTIFIED`, and wakers read
//! `owner` only after moving a greenlet `PARKED -> SCHEDULED`, never while it
//! is in transit (`Header::owner`). The deque's push (release) and steal
//! (acquire) order the old hub's last writes to the header and the stack
//! before the new hub's first resume.
//!
//! Why the greenlet leaves the live set while in transit: the live set is
//! H's `RefCell`, touched only on H's thread, so the hub that steals it could
//! not take it out. While in transit the queue's `TaskRef` keeps it alive;
//! a shutdown finds it when the hub drains its `fresh` deque
//! (`shutdown_step`), and the run-info dump counts it with the queued
//! greenlets. A timer it armed on H stays in H's heap when it moves (only H
//! may touch it): the new hub asks H to cancel it
//! (`HubRemote::cancel_timer_later`); one that fires before H gets to it is
//! a spurious wake-up, which every park tolerates (`greenlet::wait::TimerGuard`).

use std::ptr;
use std::sync::Arc;

use super::HubContext;
use super::queue::StealQueue;
use super::remote::HubRemote;
use crate::greenlet::task::{IN_TRANSIT, LIVE_ORDER, TaskRef};
use crate::hub::stats::bump;
use std::sync::atomic::Ordering::Relaxed;

/// A started migratable greenlet, as the moves see it. `TaskRef`
/// implements it; so do the loom models' greenlets (`tests/loom_migrate.rs`),
/// which therefore make the moves with [`release_to`] and [`adopt_by`].
pub trait Migrant {
    /// What names a hub (`Arc<HubRemote>`; an index in the models).
    type Hub: ?Sized;
    /// Marks it in transit (`live_slot`). Only its owning hub, which has
    /// just taken it out of its live set.
    fn set_in_transit(&self);
    /// Whether it is in transit. Only a hub that has it dequeued.
    fn in_transit(&self) -> bool;
    /// Whether `hub` owns it. Only a hub that has it dequeued.
    fn owned_by(&self, hub: &Self::Hub) -> bool;
    /// Makes `hub` its owner.
    ///
    /// # Safety
    ///
    /// Only a hub that has it dequeued (`Header::migrate_to`).
    unsafe fn migrate_to(&self, hub: &Self::Hub);
}

/// *owned -> in transit* (see the module docs), after the owning hub took
/// `task` out of its live set: marks it in transit, then pushes it on the
/// hub's stealable deque (the push publishes the mark, and every write the
/// hub made to the greenlet, to whichever hub pops or steals it), then
/// `notify` (`IdleRuntime::notify_one`: it is stealable work).
#[inline]
pub fn release_to<T: Migrant>(fresh: &StealQueue<T>, task: T, notify: impl FnOnce()) {
    task.set_in_transit();
    fresh.push(task);
    notify();
}

/// *in transit -> owned by `hub`* (see the module docs), by the hub that took
/// `task` off a deque: makes `hub` the owner unless it already is. Returns
/// whether the owner changed. The caller then puts the greenlet in its live
/// set (which ends "in transit").
///
/// # Safety
///
/// The caller has `task` dequeued and it is in transit.
#[inline]
pub unsafe fn adopt_by<T: Migrant>(task: &T, hub: &T::Hub) -> bool {
    debug_assert!(
        task.in_transit(),
        "migrate: adopting a greenlet that is not in transit"
    );
    if task.owned_by(hub) {
        return false;
    }
    // SAFETY: the caller has it dequeued.
    unsafe { task.migrate_to(hub) };
    true
}

impl Migrant for TaskRef {
    type Hub = Arc<HubRemote>;

    #[inline]
    fn set_in_transit(&self) {
        self.header().live_slot.store(IN_TRANSIT, LIVE_ORDER);
    }

    #[inline]
    fn in_transit(&self) -> bool {
        self.header().live_slot.load(LIVE_ORDER) == IN_TRANSIT
    }

    #[inline]
    fn owned_by(&self, hub: &Arc<HubRemote>) -> bool {
        self.header().owner().is_some_and(|o| ptr::eq(o, &**hub))
    }

    #[inline]
    unsafe fn migrate_to(&self, hub: &Arc<HubRemote>) {
        // SAFETY: forwarded from the caller (the same contract).
        unsafe { self.header().migrate_to(hub.clone()) };
    }
}

impl HubContext {
    /// Queues a started greenlet of this hub that became runnable: on the
    /// stealable deque if it may move now, else on `ready`.
    #[inline(always)]
    pub(super) fn requeue(&self, task: TaskRef) {
        if task.header().migratable {
            self.requeue_migratable(task);
        } else {
            // Every switch of a greenlet that stays put comes through here:
            // keep it as cheap as the plain push it replaced.
            self.ready.borrow_mut().push_back(task);
        }
    }

    #[inline(never)]
    pub(super) fn requeue_migratable(&self, task: TaskRef) {
        if self.may_release(&task) {
            self.release(task);
        } else {
            self.ready.borrow_mut().push_back(task);
        }
    }

    fn may_release(&self, task: &TaskRef) -> bool {
        let header = task.header();
        // Unstarted greenlets may come through the inbox (`spawn_to_hub`);
        // they are in no live set and stay on `ready`.
        header.is_started() && !header.suspended_unwinding.load(Relaxed) && !self.is_shutting_down()
    }

    /// *owned -> in transit* (see the module docs).
    fn release(&self, task: TaskRef) {
        let removed = self.live.borrow_mut().remove(&task);
        debug_assert!(
            removed.is_some(),
            "greenhub: released a greenlet it did not own"
        );
        release_to(&self.fresh, task, || self.shared.notify_one());
    }

    /// Whether the started, migratable greenlet `task` is in transit, to
    /// be adopted before it runs.
    #[inline]
    pub(super) fn in_transit(task: &TaskRef) -> bool {
        Migrant::in_transit(task)
    }

    /// *in transit -> owned by this hub* (see the module docs).
    pub(super) fn adopt(&self, task: &TaskRef) {
        // SAFETY: we dequeued the greenlet, in transit; nobody else reads or
        // writes its owner while it is in transit (module docs).
        if unsafe { adopt_by(task, &self.remote) } {
            bump(&self.remote.stats.migrated);
        }
        self.live.borrow_mut().insert(task.clone());
        if self.is_shutting_down() {
            // It was in no live set when this hub swept them: kill it now,
            // it unwinds at its blocking point.
            task.header().state.kill();
        }
    }

    /// After a migratable greenlet suspended: whether it may move (see
    /// `Header::suspended_unwinding`).
    #[inline]
    pub(super) fn note_suspend(&self, task: &TaskRef) {
        task.header()
            .suspended_unwinding
            .store(std::thread::panicking(), Relaxed);
    }
}
