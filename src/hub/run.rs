//! Running one greenlet on its hub: the first run (stack, coroutine,
//! ownership), each resume and what its suspension asks for (yield, park with
//! the final CAS of the park protocol, or completion).

use std::ptr::NonNull;

use corosensei::CoroutineResult;

use super::HubContext;
use crate::error::JoinError;
use crate::greenlet::state::State;
use crate::greenlet::task::{HubRef, StackInfo, Suspend, TaskRef};
use crate::hub::stats::{bump, count};
use crate::stack::guard_size;

/// How one resume of a greenlet came back to its hub.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resumed {
    /// It suspended with `Suspend::Yield`.
    Yield,
    /// It suspended with `Suspend::Park` (it found no `NOTIFIED` token).
    Park,
    /// Its closure returned (or unwound).
    Return,
    /// It suspended with `Suspend::Abandon`: never to be resumed.
    Abandon,
}

/// Where a greenlet stands once its hub is done running it for now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ran {
    /// It yielded: the hub queues it again.
    Yielded,
    /// It is `PARKED`: the first waker to move it out pushes it to its hub.
    Parked,
    /// It finished: the hub completes it.
    Returned,
    /// It gave itself up (`greenlet::abandon_current`): the hub completes it
    /// as killed and forgets its stack.
    Abandoned,
}

/// The hub's half of the park protocol (`greenlet/state.rs`): resumes the
/// greenlet (`resume`) until it yields, parks for good or returns. After a
/// `Suspend::Park` the hub makes the final CAS `SCHEDULED -> PARKED`
/// ([`State::park_commit`]), now that the greenlet's registers are saved; if
/// a wake-up raced in since the greenlet looked for a token, the CAS consumes
/// it instead and the hub resumes the greenlet again at once.
/// `run_task` runs every greenlet through this, and so do the loom models
/// (`tests/loom_park.rs`, `loom_kill.rs`, `loom_migrate.rs`).
#[inline(always)]
pub fn run_until_suspended(state: &State, mut resume: impl FnMut() -> Resumed) -> Ran {
    loop {
        match resume() {
            Resumed::Yield => return Ran::Yielded,
            Resumed::Park => {
                if state.park_commit() {
                    return Ran::Parked;
                }
                // A wake-up raced with the park: run it again now.
            }
            Resumed::Return => return Ran::Returned,
            Resumed::Abandon => return Ran::Abandoned,
        }
    }
}

impl HubContext {
    /// Runs `task` until it yields, parks or finishes.
    #[inline]
    pub(super) fn run_task(&self, task: TaskRef) {
        // Two copies of the loop, so that a greenlet that stays put does not
        // pay for the migration checks on every switch (as branches in one
        // loop they were a visible share of a switch: figures in
        // benches/compare/PROFILE.md); here it pays one load and one branch.
        if task.header().migratable {
            self.run_task_as::<true>(task)
        } else {
            self.run_task_as::<false>(task)
        }
    }

    /// [`run_task`](Self::run_task) for a greenlet that is `MIGRATABLE` or
    /// not (`Header::migratable`).
    fn run_task_as<const MIGRATABLE: bool>(&self, task: TaskRef) {
        let header = task.header();
        if !header.is_started() {
            if !self.start(&task) {
                return;
            }
        } else if MIGRATABLE {
            self.adopt(&task);
        }
        let ran = run_until_suspended(&header.state, || {
            // SAFETY: we dequeued the greenlet, so we are its owning hub
            // with exclusive use of the slot; the borrow ends before the slot
            // is touched again below.
            let coro = unsafe { header.coroutine() }
                .as_mut()
                .expect("greenhub: started greenlet without a coroutine");
            self.current.set(Some(NonNull::from(&*task)));
            self.panicking_at_resume.set(std::thread::panicking());
            // Always on (not a metric only): the deadlock report's sign of
            // progress (`runtime::deadlock`).
            count(&self.remote.stats.switches);
            // Published only for an observer (`hub::watch`); without one
            // the stores would be dead work on every switch.
            let watched = self.shared.watched;
            if watched {
                self.remote.watch.enter(header as *const _ as usize);
            }
            #[cfg(feature = "tracing")]
            let entered = header.span.enter();
            let result = coro.resume(HubRef::new(self));
            #[cfg(feature = "tracing")]
            drop(entered);
            if watched {
                self.remote.watch.leave();
            }
            self.current.set(None);
            if MIGRATABLE
                && !matches!(
                    result,
                    CoroutineResult::Return(()) | CoroutineResult::Yield(Suspend::Abandon)
                )
            {
                self.note_suspend(&task);
            }
            match result {
                CoroutineResult::Yield(Suspend::Yield) => Resumed::Yield,
                CoroutineResult::Yield(Suspend::Park) => Resumed::Park,
                CoroutineResult::Yield(Suspend::Abandon) => Resumed::Abandon,
                CoroutineResult::Return(()) => Resumed::Return,
            }
        });
        match ran {
            Ran::Yielded => {
                if MIGRATABLE {
                    self.requeue_migratable(task, false);
                } else {
                    self.ready.borrow_mut().push_back(task);
                }
                // Only M:N keeps unstarted greenlets apart (see `yielded`).
                self.yielded.set(self.maybe_unstarted.get());
            }
            Ran::Parked => bump(&self.remote.stats.parks),
            Ran::Returned => self.finish::<MIGRATABLE>(&task),
            Ran::Abandoned => self.abandon::<MIGRATABLE>(&task),
        }
    }

    /// First run: stack, coroutine, ownership. Returns `false` if the
    /// greenlet was completed instead (killed, shutting down, no stack).
    fn start(&self, task: &TaskRef) -> bool {
        let header = task.header();
        if header.state.load().is_killed() || self.is_shutting_down() {
            // SAFETY: we dequeued the unstarted greenlet.
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
            bump(&self.remote.stats.cancelled);
            return false;
        }
        let size = match header.stack_size {
            0 => self.shared.stack_size,
            n => n as usize,
        };
        let stack = match self.stacks.borrow_mut().alloc(size) {
            Ok(stack) => stack,
            Err(e) => {
                // SAFETY: as above.
                unsafe { task.cancel(JoinError::io(e)) };
                self.note_ended();
                return false;
            }
        };
        header.set_owner(self.remote.clone());
        let info = StackInfo {
            guard_lo: stack.bottom() - guard_size(),
            guard_hi: stack.bottom(),
            usable: stack.usable(),
        };
        // SAFETY: we own the greenlet and have not resumed it yet.
        unsafe {
            header.begin_run(info);
            task.start(stack);
        }
        if header.migratable {
            // After `begin_run`: a dump may read the run block of any
            // greenlet in this set, from any hub (`dump.rs`).
            self.shared.migrants.lock().insert(task.clone());
        } else {
            self.live.borrow_mut().insert(task.clone());
        }
        bump(&self.remote.stats.started);
        true
    }

    /// The greenlet gave itself up (`greenlet::abandon_current`): it is
    /// suspended for good, inside code that cannot be unwound. Forget its
    /// coroutine and stack (dropping the coroutine would unwind it), take it
    /// off the live set, and complete it as killed, as shutdown does with a
    /// greenlet stuck in a destructor (`shutdown.rs`). Its state word turns
    /// `COMPLETE`, so a later wake-up of it (a timer, an fd, a waiter list
    /// that still names it) finds nothing to schedule.
    #[cold]
    fn abandon<const MIGRATABLE: bool>(&self, task: &TaskRef) {
        let header = task.header();
        // SAFETY: owning hub; the greenlet is suspended and no borrow of the
        // slot is live.
        if let Some(coro) = unsafe { header.coroutine() }.take() {
            // Never resumed again, never unwound: its stack stays allocated
            // for good, so nothing it lent out dangles.
            std::mem::forget(coro);
        }
        if self.shared.watched {
            // The live set's `Arc` may be the last one (`hub::watch`).
            self.remote.watch.retire();
        }
        self.remove_live::<MIGRATABLE>(task);
        // SAFETY: as above; its frames may still point into the block.
        unsafe { header.leak_run() };
        // SAFETY: the greenlet will never run again and has stored no
        // outcome; completing it as killed lets its joiners return.
        unsafe { task.cancel(JoinError::killed()) };
        self.note_ended();
        bump(&self.remote.stats.killed);
    }

    /// The greenlet's closure returned: recycle its stack, publish completion.
    /// Inlined into both copies of the loop: as a call it added 60
    /// instructions to a spawn+join.
    #[inline(always)]
    fn finish<const MIGRATABLE: bool>(&self, task: &TaskRef) {
        let header = task.header();
        // SAFETY: owning hub; the coroutine has returned and no borrow of the
        // slot is live.
        let coro = unsafe { header.coroutine() }
            .take()
            .expect("greenhub: finished greenlet without a coroutine");
        self.stacks.borrow_mut().free(coro.into_stack());
        if self.shared.watched {
            // The live set's `Arc` may be the last one (`hub::watch`).
            self.remote.watch.retire();
        }
        self.remove_live::<MIGRATABLE>(task);
        // SAFETY: as above; the greenlet will never run again. Out of the
        // live set first: a dump reads the run block of a migratable one
        // from the shared set, under its lock (`dump.rs`).
        unsafe { header.end_run() };
        // SAFETY: the closure stored its outcome; coroutine removed above.
        unsafe { task.finish() };
        self.note_ended();
    }

    /// Takes a started greenlet that is done out of its live set: the
    /// shared one if it is migratable (`Shared::migrants`), else this hub's.
    #[inline(always)]
    fn remove_live<const MIGRATABLE: bool>(&self, task: &TaskRef) {
        if MIGRATABLE {
            self.shared.migrants.lock().remove(task);
        } else {
            self.live.borrow_mut().remove(task);
        }
    }
}
