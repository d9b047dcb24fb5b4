//! Migratable greenlets: how a started greenlet moves between the hubs of an
//! M:N runtime, for those spawned with the `unsafe` opt-in
//! (`greenlet::Builder::migratable`, `Builder::migratable`; the promise the
//! caller makes is in their `# Safety` sections). Every other started greenlet
//! stays on its hub (docs/ARCHITECTURE.md, 'The soundness rule') and never
//! comes here.
//!
//! # Where a migratable greenlet is
//!
//! From its start to its end it is in the runtime's shared live set
//! (`Shared::migrants`, behind a lock: any hub may start, adopt and finish
//! one), and its `owner` names the hub that last ran it. Between runs it is
//! parked, or queued in exactly one place: a hub's stealable deque
//! (`fresh`), a hub's `ready` queue, or its owner's inbox. The state word
//! says `SCHEDULED` whenever it is queued, so no waker can move it then.
//!
//! # Moves, and who makes them
//!
//! - **Wake** (`hub::schedule`): the waker that moved it `PARKED ->
//!   SCHEDULED` queues it. A waker running on a hub of the same runtime
//!   queues it *on its own hub* whichever hub owns it (adopt on wake, as Go's
//!   `ready` puts a woken goroutine on the waker's P), unless the greenlet
//!   suspended mid-unwind (`suspended_unwinding`: std counts panics per OS
//!   thread, so such a greenlet must go back to its own thread). Any other
//!   waker (a plain thread, another runtime's hub) pushes it to its owner's
//!   inbox. So a hub that is busy, or descheduled by the kernel, does not
//!   hold up the greenlets that another hub's poller or timers wake.
//! - **Requeue** (`HubContext::requeue`) on hub K (a wake on K, K draining
//!   its inbox, a yield): on K's stealable deque, and an idle hub is
//!   notified to come and steal ([`release_to`]); on K's `ready` instead
//!   when it was woken and K has nothing else ready (K runs it next: Go's
//!   `runnext`), while K shuts down, or while the greenlet is suspended
//!   mid-unwind.
//! - **Adopt**: the hub K that dequeues it (pops or steals it) makes itself
//!   the owner before resuming it, unless it already is ([`adopt_by`]): the
//!   old owner's `Arc` is released. A K that is shutting down also marks it
//!   killed, since K's kill sweep (`begin_draining`) may have run before it
//!   arrived.
//!
//! `owner` is written only by a hub that has the greenlet dequeued, and read
//! by that hub and by a waker right after its `PARKED -> SCHEDULED` (before
//! anyone can dequeue it): never at the same time (`Header::owner`). The
//! queue's push (release) and pop or steal (acquire) order the last run's
//! writes to the header and the stack before the next hub's first resume.
//!
//! A timer the greenlet armed on H stays in H's heap when it moves (only H
//! may touch it): the new hub asks H to cancel it
//! (`HubRemote::cancel_timer_later`); one that fires before H gets to it is
//! a spurious wake-up, which every park tolerates (`greenlet::wait::TimerGuard`).
//!
//! A migratable greenlet registers each fd it waits on with the poller of
//! every hub (`io/registration.rs`, "Every hub, for a migratable
//! greenlet"): whichever hub polls first wakes the greenlet and, by the wake
//! rule above, runs it.
//!
//! The loom models in `tests/loom_migrate.rs` run these moves ([`release_to`],
//! [`adopt_by`]) over the real state word, inbox and deques.

use std::ptr;
use std::sync::Arc;

use super::HubContext;
use super::queue::StealQueue;
use super::remote::HubRemote;
use crate::greenlet::task::{Header, TaskRef};
use crate::hub::stats::bump;
use std::sync::atomic::Ordering::Relaxed;

/// A started migratable greenlet, as the moves see it. `TaskRef`
/// implements it; so do the loom models' greenlets (`tests/loom_migrate.rs`),
/// which therefore make the moves with [`release_to`] and [`adopt_by`].
pub trait Migrant {
    /// What names a hub (`Arc<HubRemote>`; an index in the models).
    type Hub: ?Sized;
    /// Whether `hub` owns it. Only a hub that has it dequeued.
    fn owned_by(&self, hub: &Self::Hub) -> bool;
    /// Makes `hub` its owner.
    ///
    /// # Safety
    ///
    /// Only a hub that has it dequeued (`Header::migrate_to`).
    unsafe fn migrate_to(&self, hub: &Self::Hub);
}

/// *Requeue* (see the module docs): pushes `task` on the hub's stealable
/// deque (the push publishes every write the hub made to the greenlet to
/// whichever hub pops or steals it), then `notify` (`IdleRuntime::notify_one`:
/// it is stealable work).
#[inline]
pub fn release_to<T: Migrant>(fresh: &StealQueue<T>, task: T, notify: impl FnOnce()) {
    fresh.push(task);
    notify();
}

/// *Adopt* (see the module docs), by the hub that took `task` off a queue:
/// makes `hub` the owner unless it already is. Returns whether the owner
/// changed.
///
/// # Safety
///
/// The caller has `task` dequeued.
#[inline]
pub unsafe fn adopt_by<T: Migrant>(task: &T, hub: &T::Hub) -> bool {
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
    /// Queues a started greenlet that was woken on this hub (*requeue* in
    /// the module docs): on `ready`, or, if it is migratable, may move now
    /// and this hub has other greenlets ready, on the stealable deque.
    #[inline(always)]
    pub(super) fn requeue(&self, task: TaskRef) {
        if task.header().migratable {
            self.requeue_migratable(task, true);
        } else {
            // Every switch of a greenlet that stays put comes through here:
            // keep it as cheap as the plain push it replaced.
            self.ready.borrow_mut().push_back(task);
        }
    }

    /// [`requeue`](Self::requeue) for a migratable greenlet, woken or (if
    /// not `woken`) yielding.
    #[inline(never)]
    pub(super) fn requeue_migratable(&self, task: TaskRef, woken: bool) {
        // A woken greenlet that this hub runs next anyway stays local, as
        // Go's `runnext` and tokio's LIFO slot keep it: releasing it made
        // the other hub steal it, and the greenlets of a 2-hub HTTP server
        // bounced between the hubs (about 20% fewer requests per second,
        // benches/compare/PROFILE.md). A yield releases: it asks to let
        // others run.
        if self.may_release(&task) && !(woken && self.ready.borrow().is_empty()) {
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

    /// *Requeue* on the stealable deque (see the module docs).
    fn release(&self, task: TaskRef) {
        release_to(&self.fresh, task, || self.shared.notify_one());
    }

    /// *Adopt* (see the module docs): before this hub resumes a started,
    /// migratable greenlet it dequeued.
    #[inline]
    pub(super) fn adopt(&self, task: &TaskRef) {
        // SAFETY: we dequeued the greenlet; nobody else reads or writes its
        // owner while it is queued (module docs).
        if unsafe { adopt_by(task, &self.remote) } {
            bump(&self.remote.stats.migrated);
        }
        if self.is_shutting_down() {
            // It may have been elsewhere when this hub swept the live
            // greenlets: kill it now, it unwinds at its blocking point.
            task.header().state.kill();
        }
    }

    /// *Wake* (see the module docs): whether this hub, which has just moved
    /// the migratable greenlet of `header`, owned by `owner` (another hub),
    /// `PARKED -> SCHEDULED`, may queue it on itself: the same runtime, and
    /// not suspended mid-unwind.
    #[inline]
    pub(super) fn may_adopt_woken(&self, header: &Header, owner: &HubRemote) -> bool {
        // `suspended_unwinding` was stored by the owner before its park's
        // final CAS, which the waker's `PARKED -> SCHEDULED` read.
        owner.same_runtime(&self.remote) && !header.suspended_unwinding.load(Relaxed)
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
