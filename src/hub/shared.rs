//! The scheduler's registry: the state of one runtime that all its hubs and
//! handles share (the hubs' remotes, the global injector, the idle-hub
//! protocol, the shutdown flags, the offload pool). It belongs to the hub
//! layer, which reads it on every search for work; `runtime/` builds it and
//! hands out `Handle`s to it.

use std::sync::Arc;

use crate::error::JoinError;
use crate::greenlet::task::TaskRef;
use crate::hub::idle::{Idle, IdleRuntime};
use crate::hub::queue::{Injector, Stealer};
use crate::hub::remote::HubRemote;
use crate::hub::stats::Outside;
use crate::loom::{AtomicBool, AtomicUsize, Ordering::*, fence};
use crate::offload::BlockingPool;

/// How hubs share work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// M:N: idle hubs steal unstarted greenlets from busy ones.
    MN,
    /// N hubs, no stealing: a greenlet runs on the hub it was spawned on.
    Pinned,
    /// One hub, one FIFO run queue: gevent's semantics, deterministic.
    Single,
}

pub(crate) struct Shared {
    pub(crate) mode: Mode,
    pub(crate) hubs: Box<[Arc<HubRemote>]>,
    /// Greenlets spawned from outside the runtime's hubs.
    pub(crate) injector: Injector<TaskRef>,
    pub(crate) idle: Idle,
    /// Set once, by `Runtime::shutdown`/drop.
    pub(crate) shutdown: AtomicBool,
    /// Set once, when every hub is quiescent during shutdown.
    pub(crate) terminated: AtomicBool,
    /// Active hubs plus queued inbox items (the shutdown termination count).
    pub(crate) pending: Arc<AtomicUsize>,
    /// Default stack size for greenlets of this runtime.
    pub(crate) stack_size: usize,
    /// Where `blocking::unblock` runs its closures.
    pub(crate) blocking: Arc<BlockingPool>,
    /// Spawns and joins from threads off the hubs (`hub::stats`).
    pub(crate) outside: Outside,
    /// Whether an observer (the blocking monitor) may read the hubs'
    /// `RunningSlot`s, so that hubs must `retire` greenlets before letting
    /// go of them (`hub::watch`).
    pub(crate) watched: bool,
    /// `Builder::migratable`: every greenlet spawned with `spawn` may move
    /// between hubs once started (M:N only).
    pub(crate) migrate_all: bool,
    /// Set once a migratable greenlet was built for this runtime: hubs then
    /// route their inbox greenlet by greenlet (`hub::migrate`).
    pub(crate) migrating: AtomicBool,
    /// Escalated panics on their way to `block_on` (`hub::escalate`).
    pub(crate) escalation: crate::hub::escalate::Escalation,
}

impl Shared {
    /// Queues an unstarted greenlet from outside the hubs.
    pub(crate) fn inject(&self, task: TaskRef) {
        if self.shutdown.load(Acquire) {
            // SAFETY: the greenlet was never queued; we own it.
            unsafe { task.cancel(JoinError::killed()) };
            return;
        }
        self.injector.push(task);
        self.notify_one();
        // Pairs with the SeqCst store in `begin_shutdown`: either the hubs'
        // final drain sees our push, or we see the flag and drain ourselves.
        fence(SeqCst);
        if self.shutdown.load(SeqCst) {
            self.cancel_injected();
        }
    }

    /// Wakes a idle hub if no hub is searching (see `hub/idle.rs`).
    #[inline]
    pub(crate) fn notify_one(&self) {
        IdleRuntime::notify_one(self);
    }

    /// Cancels every greenlet still in the injector (shutdown).
    pub(crate) fn cancel_injected(&self) {
        while let Some(task) = self.injector.pop() {
            // SAFETY: popped from the injector, so we own the unstarted
            // greenlet (only `spawn`-ed, `Send` closures go there).
            unsafe { task.cancel(JoinError::killed()) };
        }
    }

    /// Starts shutting down: hubs kill their greenlets and exit when no
    /// more progress is possible.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        self.blocking.shutdown();
        for hub in self.hubs.iter() {
            hub.ring();
        }
    }

    /// Every hub is quiescent: let them all exit.
    pub(crate) fn terminate(&self) {
        self.terminated.store(true, SeqCst);
        for hub in self.hubs.iter() {
            hub.ring();
        }
    }
}

impl IdleRuntime for Shared {
    type Item = TaskRef;

    #[inline]
    fn idle(&self) -> &Idle {
        &self.idle
    }

    #[inline]
    fn injector(&self) -> &Injector<TaskRef> {
        &self.injector
    }

    #[inline]
    fn num_hubs(&self) -> usize {
        self.hubs.len()
    }

    #[inline]
    fn stealer(&self, hub: usize) -> Option<&Stealer<TaskRef>> {
        self.hubs[hub].stealer.as_ref()
    }

    #[inline]
    fn steals(&self) -> bool {
        self.mode == Mode::MN
    }

    #[inline]
    fn shutting_down(&self) -> bool {
        self.shutdown.load(Acquire)
    }

    #[inline]
    fn ring_hub(&self, hub: usize) {
        self.hubs[hub].ring();
    }
}
