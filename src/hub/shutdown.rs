//! Shutting a hub down: kill, unwind, and agree when nothing can progress.
//!
//! `Runtime::shutdown` (or drop) sets the runtime's `shutdown` flag and
//! rings every hub's doorbell. Each hub then:
//!
//! 1. **Kills** every live greenlet (`Phase::Draining`) once it runs out of
//!    work, or at its next fairness tick if it never does (greenlets that
//!    yield forever). Parked ones are woken; all of them unwind from their
//!    blocking point with their destructors run (docs/ARCHITECTURE.md, 'Kill,
//!    timeout and panic'). Unstarted greenlets popped from now on are
//!    cancelled without running, and new spawns are cancelled at once.
//! 2. **Runs** whatever becomes runnable: unwinding greenlets may wake others
//!    (on this or another hub) or sleep in a destructor.
//! 3. When it has nothing runnable, no inbox items and no timers, it is
//!    **quiescent** and blocks in its poller.
//!
//! Termination is decided with one counter, `pending` = active hubs + queued
//! inbox items. It starts at the number of hubs; every inbox push adds one
//! *before* pushing, every inbox drain subtracts what it took; a hub
//! subtracts one when it turns quiescent and adds one back (before draining
//! anything) when it is woken. So `pending` can only reach zero when every hub
//! is quiescent and no wake-up is in flight between hubs; the hub whose
//! decrement reaches zero sets `terminated` and rings the others' doorbells, and all
//! exit.
//!
//! A greenlet that is still parked at that point is blocked for good (in a
//! destructor, waiting for something that will not come). It cannot be
//! unwound a second time, so the hub **leaks** it: its stack and coroutine are
//! forgotten (never resumed, never freed), and its `JoinHandle` reports it as
//! killed. The hub prints how many it leaked.

use crate::error::JoinError;
use crate::loom::Ordering::*;

use super::HubContext;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    Running,
    /// Killed everything; `active` says whether this hub counts in `pending`.
    Draining {
        active: bool,
    },
}

impl HubContext {
    /// Called from the run loop when there is no local work and shutdown has
    /// begun. Returns `true` when the hub must exit.
    pub(super) fn shutdown_step(&self) -> bool {
        let active = match self.phase.get() {
            Phase::Running => {
                self.begin_draining();
                return false;
            }
            Phase::Draining { active } => active,
        };
        if self.shared.terminated.load(SeqCst) {
            return true;
        }
        self.shared.cancel_injected();
        let mut revived = false;
        while let Some(task) = self.fresh.pop() {
            if task.header().is_started() {
                // A migratable greenlet released here (`migrate`): take it over,
                // which kills it, and run it until it has unwound.
                self.adopt(&task);
                self.ready.borrow_mut().push_back(task);
                revived = true;
                continue;
            }
            // SAFETY: we popped the unstarted greenlet.
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
        }
        if revived {
            return false;
        }
        self.take_timer_cancels();
        if !self.timers.borrow().is_empty() {
            // A destructor sleeps: not quiescent until its timer fires.
            let timeout = self.timer_timeout();
            self.wait_in_poller(timeout);
            self.fire_timers();
            return false;
        }
        if active {
            self.phase.set(Phase::Draining { active: false });
            if self.shared.pending.fetch_sub(1, SeqCst) == 1 {
                self.shared.terminate();
                return true;
            }
        }
        self.wait_in_poller(None);
        if self.shared.terminated.load(SeqCst) {
            return true;
        }
        // Woken: count as active again before taking anything from the inbox.
        self.shared.pending.fetch_add(1, SeqCst);
        self.phase.set(Phase::Draining { active: true });
        false
    }

    pub(super) fn begin_draining(&self) {
        self.phase.set(Phase::Draining { active: true });
        if self.searching.replace(false) {
            self.shared.idle.end_search();
        }
        let live = self.live.borrow().snapshot();
        // Every hub sweeps the migratable greenlets too: whichever moves one
        // out of `PARKED` runs it (`hub::migrate`), the others find it killed
        // already.
        let migrants = self.shared.migrants.lock().snapshot();
        for task in live.into_iter().chain(migrants) {
            if task.header().state.kill() {
                self.push_ready(task);
            }
        }
    }

    /// After the loop: close the inbox and leak what could not be unwound.
    pub(super) fn exit(&self) {
        self.remote.set_exited();
        for task in self.remote.inbox.close() {
            // An unstarted greenlet pushed by `Builder::spawn_to_hub` after
            // termination: complete it so that its joiners return. Started
            // ones (late wake-ups) are in `live` and handled below.
            if !task.header().is_started() {
                // SAFETY: taken out of the closed inbox, so we own the
                // unstarted greenlet.
                unsafe { task.cancel(JoinError::killed()) };
                self.note_ended();
            }
        }
        let mut ready: Vec<_> = self.ready.borrow_mut().drain(..).collect();
        ready.extend(self.newborn.borrow_mut().drain(..));
        for task in ready {
            if !task.header().is_started() {
                // SAFETY: we popped the unstarted greenlet.
                unsafe { task.cancel(JoinError::killed()) };
                self.note_ended();
            }
        }
        if self.shared.watched {
            // See `run.rs` `finish`.
            self.remote.watch.retire();
        }
        let mut stuck = self.live.borrow_mut().take_all();
        // The first hub out takes the stuck migratable greenlets: every hub
        // is past its loop or about to leave it (`terminated`), so none runs
        // them again.
        stuck.extend(self.shared.migrants.lock().take_all());
        if !stuck.is_empty() {
            eprintln!(
                "greenhub: hub {}: {} greenlet(s) were still blocked at runtime shutdown \
                 (blocked inside a destructor while unwinding); they were leaked",
                self.index,
                stuck.len()
            );
        }
        for task in stuck {
            let header = task.header();
            // SAFETY: owning hub, after the loop: nothing else touches it.
            if let Some(coro) = unsafe { header.coroutine() }.take() {
                // It can never be resumed again; unwinding it a second time
                // is impossible, so forget its stack.
                std::mem::forget(coro);
            }
            // SAFETY: as above; frames on the leaked stack may point into
            // its run block, which is leaked with it.
            unsafe { header.leak_run() };
            // SAFETY: the greenlet will never run again; we complete it as
            // killed so that joiners return.
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
        }
    }
}
