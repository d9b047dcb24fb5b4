//! The scheduler's registry: the state of one runtime that all its hubs and
//! handles share (the hubs' remotes, the global injector, the idle-hub
//! protocol, the shutdown flags, the offload pool). It belongs to the hub
//! layer, which reads it on every search for work; `runtime/` builds it and
//! hands out `Handle`s to it.

use std::sync::Arc;

use crate::error::JoinError;
use crate::greenlet::task::TaskRef;
use crate::hub::context;
use crate::hub::idle::{Idle, IdleRuntime};
use crate::hub::live::LiveSet;
use crate::hub::queue::{Injector, Stealer};
use crate::hub::remote::HubRemote;
use crate::hub::stats::{HubStats, Outside, note_created, note_ended};
use crate::loom::{AtomicBool, AtomicUsize, Mutex, Ordering::*, fence};
use crate::offload::BlockingPool;
use std::sync::atomic::Ordering as StdOrdering;

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
    /// The runtime was built M:N: each hub runs its unstarted greenlets
    /// newest first (`HubContext::next_local`), also when it has one hub
    /// and so runs as `Pinned`.
    pub(crate) newest_first: bool,
    pub(crate) hubs: Box<[Arc<HubRemote>]>,
    /// Greenlets spawned from outside the runtime's hubs (M:N places them
    /// on the hubs' `incoming` queues instead, `inject`).
    pub(crate) injector: Injector<TaskRef>,
    /// The next hub `inject` places a greenlet on (M:N, round robin).
    pub(crate) place: AtomicUsize,
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
    /// The started, unfinished migratable greenlets of every hub: their live
    /// set (`hub/live.rs`), shared because any hub may wake, adopt and
    /// finish them (`hub::migrate`). Other greenlets are in their hub's own
    /// set.
    pub(crate) migrants: Mutex<LiveSet>,
    /// Escalated panics on their way to `block_on` (`hub::escalate`).
    pub(crate) escalation: crate::hub::escalate::Escalation,
    /// `Builder::deadlock_timeout`: how long the runtime must stay quiet
    /// before `block_on` reports a deadlock (`runtime::deadlock`).
    pub(crate) deadlock_after: Option<std::time::Duration>,
}

impl Shared {
    /// Queues an unstarted greenlet from outside the hubs.
    pub(crate) fn inject(&self, task: TaskRef) {
        if self.shutdown.load(Acquire) {
            // SAFETY: the greenlet was never queued; we own it.
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
            return;
        }
        if self.mode == Mode::MN && self.hubs.len() > 1 {
            // Placement: round robin over the hubs, so that greenlets spawned
            // together from outside start spread over the hubs, not on
            // whichever hub happened to wake first and took a batch (a
            // started greenlet stays on its hub: a lopsided start stays
            // lopsided, BENCHMARKS.md 'mixed'). The queue is stealable, so a
            // busy hub's share still goes to an idle one: the ring wakes the
            // hub if it is idle, and if it is not, posting follows the idle
            // protocol (`notify_one`) as for any stealable work.
            let i = self.place.fetch_add(1, Relaxed) % self.hubs.len();
            let hub = &self.hubs[i];
            hub.incoming.push(task);
            if !hub.ring() {
                self.notify_one();
            }
        } else {
            self.injector.push(task);
            self.notify_one();
        }
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

    /// Cancels every greenlet still in the injector or a hub's `incoming`
    /// (shutdown).
    pub(crate) fn cancel_injected(&self) {
        let queues = std::iter::once(&self.injector).chain(self.hubs.iter().map(|h| &h.incoming));
        while let Some(task) = queues.clone().find_map(|q| q.pop()) {
            // SAFETY: popped from the injector, so we own the unstarted
            // greenlet (only `spawn`-ed, `Send` closures go there).
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
        }
    }

    /// The calling thread's hub counters, if it is one of this runtime's
    /// hubs (a hub of another runtime counts as outside).
    fn own_hub_stats(&self) -> Option<&HubStats> {
        let hub = context::hub()?;
        std::ptr::eq(Arc::as_ptr(&hub.shared), self).then_some(&hub.remote.stats)
    }

    /// Counts a greenlet created for this runtime by the calling thread
    /// (see `hub::stats::note_created`), before it is queued.
    pub(crate) fn note_created(&self) {
        match self.own_hub_stats() {
            Some(stats) => note_created(&stats.created),
            None => {
                self.outside.created.fetch_add(1, StdOrdering::Relaxed);
            }
        }
    }

    /// Counts a greenlet of this runtime completed (run to its end, or
    /// cancelled) by the calling thread.
    pub(crate) fn note_ended(&self) {
        match self.own_hub_stats() {
            Some(stats) => note_ended(&stats.ended),
            None => {
                self.outside.ended.fetch_add(1, StdOrdering::Release);
            }
        }
    }

    /// How many greenlets of this runtime are alive (created and not
    /// completed, started or not), never fewer than at the moment between
    /// its two sets of loads: every `ended` first, with `Acquire`, then
    /// every `created` (the argument is at
    /// `hub::stats::note_created`). It may count greenlets created
    /// meanwhile.
    pub(crate) fn alive(&self) -> u64 {
        let mut ended = self.outside.ended.load(StdOrdering::Acquire);
        for hub in self.hubs.iter() {
            ended = ended.wrapping_add(hub.stats.ended.load(StdOrdering::Acquire));
        }
        let mut created = self.outside.created.load(StdOrdering::Relaxed);
        for hub in self.hubs.iter() {
            created = created.wrapping_add(hub.stats.created.load(StdOrdering::Relaxed));
        }
        // Never negative by the argument above; were it, wrapping makes it
        // huge, which reads as "busy", the safe side.
        created.wrapping_sub(ended)
    }

    /// Whether the runtime has nothing left to do but `except` greenlets
    /// (the caller, when it is one of them): no other greenlet alive,
    /// started or not, and no blocking-pool job queued or running.
    pub(crate) fn is_idle(&self, except: u64) -> bool {
        self.alive() == except && self.blocking.is_idle()
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

    #[inline]
    fn incoming(&self, hub: usize) -> Option<&Injector<TaskRef>> {
        (self.mode == Mode::MN).then(|| &self.hubs[hub].incoming)
    }
}
