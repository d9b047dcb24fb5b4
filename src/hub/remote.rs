//! The part of a hub that other threads may touch.
//!
//! A hub's run loop state (`HubContext`) belongs to its thread. What other
//! threads need (its inbox for wake-ups of its greenlets, its doorbell and
//! poller waker, the stealer of its deque of unstarted greenlets) lives here,
//! behind an `Arc` that every greenlet started on this hub holds as its owner.

use std::sync::Arc;

use crate::greenlet::task::TaskRef;
use crate::hub::doorbell::Doorbell;
use crate::hub::inbox::Inbox;
use crate::hub::queue::{Injector, Stealer};
use crate::hub::stats::HubStats;
use crate::hub::watch::RunningSlot;
use crate::loom::{AtomicBool, AtomicUsize, Mutex, Ordering::*};
use std::sync::atomic::AtomicU64;

use crate::hub::readiness::ScheduledIo;
use crate::time::heap::TimerKey;

pub(crate) struct HubRemote {
    pub(crate) inbox: Inbox<TaskRef>,
    pub(crate) doorbell: Doorbell,
    waker: mio::Waker,
    /// A handle on the hub's poller (its own epoll fd), so any thread can
    /// (de)register fds, even after the hub has exited.
    registry: mio::Registry,
    /// How many fds are registered with the poller: a busy hub polls for IO
    /// every `FAIRNESS_INTERVAL` ticks only when there are any.
    sources: AtomicUsize,
    /// Readiness states of deregistered fds, dropped by the hub before its
    /// next poll (see `hub/readiness.rs`, "Lifetime of a token").
    released: Mutex<Vec<Arc<ScheduledIo>>>,
    /// Timers of this hub to cancel, asked for by a migratable greenlet
    /// that armed them here and moved on (`hub::migrate`).
    timer_cancels: Mutex<Vec<TimerKey>>,
    has_timer_cancels: AtomicBool,
    /// Set when the hub's loop has ended: its poller is never polled again.
    exited: AtomicBool,
    /// The hub's deque of unstarted greenlets, in M:N mode.
    pub(crate) stealer: Option<Stealer<TaskRef>>,
    /// M:N mode: unstarted greenlets spawned from outside the hubs and
    /// placed on this hub (`Shared::inject`). The hub moves them into its
    /// deque; idle hubs may steal them, as from the deque.
    pub(crate) incoming: Injector<TaskRef>,
    /// The runtime's shutdown counter: active hubs plus queued inbox items
    /// (see `hub/shutdown.rs`).
    pending: Arc<AtomicUsize>,
    /// The hub's counters (`hub::stats`), written by the hub only.
    pub(crate) stats: HubStats,
    /// Joins of this hub's greenlets from threads off the hubs (any thread
    /// writes it, so it is not in `stats`).
    pub(crate) outside_joins: AtomicU64,
    /// The greenlet the hub is running, for observers (`hub::watch`).
    pub(crate) watch: RunningSlot,
    /// The hub thread's kernel thread id (0 until it starts), so that the
    /// blocking monitor can read which system call it is stuck in
    /// (`inspect::syscall`). Diagnostic only: no protocol reads it.
    pub(crate) tid: std::sync::atomic::AtomicI32,
    /// A run-info dump waiting for this hub's answer (`inspect::dump`).
    #[cfg(not(loom))]
    pub(crate) dump: crate::hub::dump::DumpSlot,
}

impl HubRemote {
    pub(crate) fn new(
        waker: mio::Waker,
        registry: mio::Registry,
        stealer: Option<Stealer<TaskRef>>,
        pending: Arc<AtomicUsize>,
        hubs: usize,
    ) -> HubRemote {
        HubRemote {
            inbox: Inbox::new(),
            doorbell: Doorbell::default(),
            waker,
            registry,
            sources: AtomicUsize::new(0),
            released: Mutex::new(Vec::new()),
            timer_cancels: Mutex::new(Vec::new()),
            has_timer_cancels: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            stealer,
            incoming: Injector::new(),
            pending,
            stats: HubStats::new(hubs),
            outside_joins: AtomicU64::new(0),
            watch: RunningSlot::default(),
            tid: std::sync::atomic::AtomicI32::new(0),
            #[cfg(not(loom))]
            dump: Default::default(),
        }
    }

    /// Whether `other` is a hub of the same runtime (they share the
    /// runtime's termination count).
    #[inline]
    pub(crate) fn same_runtime(&self, other: &HubRemote) -> bool {
        Arc::ptr_eq(&self.pending, &other.pending)
    }

    /// Hands a woken greenlet to this hub from another thread.
    pub(crate) fn push(&self, task: TaskRef) {
        // An error means the hub has exited: its greenlets were unwound or
        // leaked, so there is nothing left to resume.
        drop(self.try_push(task));
    }

    /// Queues `task` in the inbox and rings the hub's doorbell, or gives the task
    /// back if the hub has exited. Also takes *unstarted* greenlets
    /// (`Builder::spawn_to_hub`): the hub moves its inbox into its `ready`
    /// queue, which is never stolen, and starts them there.
    pub(crate) fn try_push(&self, task: TaskRef) -> Result<(), TaskRef> {
        self.pending.fetch_add(1, SeqCst);
        if let Err(task) = self
            .inbox
            .push_and_ring(task, &self.doorbell, || self.wake_poller())
        {
            self.pending.fetch_sub(1, SeqCst);
            return Err(task);
        }
        Ok(())
    }

    /// Rings the hub's doorbell: ends its wait in the poller, if it waits
    /// (see `doorbell.rs`). Returns whether it did (the hub was idle).
    #[inline]
    pub(crate) fn ring(&self) -> bool {
        let idle = self.doorbell.ring();
        if idle {
            self.wake_poller();
        }
        idle
    }

    /// Writes the poller's waker (the ringer's half of `doorbell.rs`, once it
    /// found the hub `PARKED`).
    #[inline]
    fn wake_poller(&self) {
        // An error means the eventfd counter is saturated, i.e. a wake-up is
        // already pending.
        let _ = self.waker.wake();
    }

    /// Asks the hub to cancel one of its timers (from another hub's thread).
    pub(crate) fn cancel_timer_later(&self, key: TimerKey) {
        self.timer_cancels.lock().push(key);
        self.has_timer_cancels.store(true, Release);
        // A hub that is idle until that timer (while shutting down, say)
        // must not wait for it.
        self.ring();
    }

    /// The cancellations asked for since the last call (hub thread only).
    #[inline]
    pub(crate) fn take_timer_cancels(&self) -> Vec<TimerKey> {
        if !self.has_timer_cancels.load(Acquire) {
            return Vec::new();
        }
        self.has_timer_cancels.store(false, Relaxed);
        std::mem::take(&mut *self.timer_cancels.lock())
    }

    /// The hub took `n` items out of its inbox.
    pub(crate) fn drained(&self, n: usize) {
        if n > 0 {
            self.pending.fetch_sub(n, SeqCst);
        }
    }
}

impl HubRemote {
    /// Watches `fd` (edge-triggered, both directions) under `token`.
    /// `exclusive`: one of several pollers that watch `fd` (a migratable
    /// greenlet's fd, `io/registration.rs`): `EPOLLEXCLUSIVE`, so that an
    /// edge wakes one hub blocked in its poller rather than all of them
    /// (one whose poller is not blocked may still see it). The kernel
    /// refuses `EPOLLRDHUP` with it; a peer's close still reports
    /// `EPOLLIN`, which wakes readers as well. A kernel without
    /// `EPOLLEXCLUSIVE` (before 4.5: `EINVAL`) gets a plain registration.
    pub(crate) fn register(
        &self,
        fd: std::os::fd::RawFd,
        token: mio::Token,
        exclusive: bool,
    ) -> std::io::Result<()> {
        if exclusive {
            let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLEXCLUSIVE) as u32;
            match self.register_events(fd, token, events) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                r => return r,
            }
        }
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        self.registry
            .register(&mut mio::unix::SourceFd(&fd), token, interest)?;
        self.sources.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Watches `fd` under `token` for exactly the epoll `events` given
    /// (`EPOLLET` added; `EPOLLERR` and `EPOLLHUP` are always reported, so
    /// `events` may be 0), where mio's interests would ask for more (a
    /// waiter for `POLLPRI` only must not be woken by mere readability).
    /// Taken off with [`deregister`](Self::deregister) like any other fd.
    pub(crate) fn register_events(
        &self,
        fd: std::os::fd::RawFd,
        token: mio::Token,
        events: u32,
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event {
            events: events | libc::EPOLLET as u32,
            u64: token.0 as u64,
        };
        // SAFETY: EPOLL_CTL_ADD on the poller's own epoll fd, with a valid
        // event that the kernel copies; mio reads the token back from the
        // same `u64` field.
        let r =
            unsafe { libc::epoll_ctl(self.registry.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.sources.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Stops watching `fd`.
    pub(crate) fn deregister(&self, fd: std::os::fd::RawFd) -> std::io::Result<()> {
        self.sources.fetch_sub(1, Relaxed);
        self.registry.deregister(&mut mio::unix::SourceFd(&fd))
    }

    /// Whether any fd is registered with the poller.
    #[inline]
    pub(crate) fn has_sources(&self) -> bool {
        self.sources.load(Relaxed) > 0
    }

    /// Hands over the readiness state of a deregistered fd; the hub drops it
    /// before its next poll.
    pub(crate) fn release(&self, io: Arc<ScheduledIo>) {
        self.released.lock().push(io);
    }

    /// The hub, right before `epoll_wait`: drops what was released.
    pub(crate) fn drop_released(&self) {
        let released = std::mem::take(&mut *self.released.lock());
        drop(released);
    }

    /// The hub's loop has ended.
    pub(crate) fn set_exited(&self) {
        self.exited.store(true, Release);
    }

    /// Whether the hub's loop has ended (nothing polls its poller any more).
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Acquire)
    }
}
