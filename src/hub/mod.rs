//! A hub: one OS thread that runs greenlets, one at a time.
//!
//! Each hub owns (on its thread, in [`HubContext`]):
//!
//! - `ready`: started greenlets woken on this hub, and in single-threaded and
//!   pinned mode also new ones (FIFO). Never stolen.
//! - `fresh`: in M:N mode, greenlets spawned here that have not started yet:
//!   a `crossbeam-deque` worker, popped newest first (`pop_unstarted`), that
//!   idle hubs steal the oldest from (`queue.rs`); also started greenlets of
//!   the `unsafe` migration opt-in that became runnable (`migrate.rs`),
//!   which idle hubs may take over. (`newborn` plays its part for an M:N
//!   runtime with one hub, which runs as pinned.)
//! - `incoming` (in [`HubRemote`]): in M:N mode, greenlets spawned from
//!   outside the hubs and placed on this one (`Shared::inject`); stealable.
//! - its inbox (`inbox.rs`, in [`HubRemote`]): greenlets woken from other
//!   threads.
//! - timers (`time/heap.rs`), a `mio::Poll` it blocks in, a stack cache
//!   (`stack/pool.rs`) and the set of live greenlets (`live.rs`).
//!
//! # The loop
//!
//! 1. Every tick: run the next greenlet from `ready`, else the newest
//!    unstarted one, else the inbox, else `incoming`; right after a greenlet
//!    yielded, unstarted greenlets go first (so `yield_now` lets new
//!    greenlets run too, not only started ones). Every 61st tick first take
//!    from the injector, `incoming` and the *oldest* of `fresh`, move the
//!    inbox over and fire due timers, so no source starves (Go and tokio use
//!    the same 61).
//! 2. Out of local work: search (`search.rs`): inbox, timers, its own
//!    `incoming`, the global injector, then (M:N only) steal a batch of the
//!    oldest unstarted greenlets from a random other hub's deque or
//!    `incoming`.
//! 3. Nothing anywhere: go idle (`search.rs`) by the idle protocol
//!    (`idle.rs`), blocked in the poller (`doorbell.rs`) until the next timer, an
//!    IO event or a wake-up. A hub whose stack cache holds pages to give back stays blocked at most
//!    `stack::pool::TRIM_AFTER` first, and trims the cache if it is still
//!    idle then (trimming costs syscalls and TLB flushes, too much for every
//!    short idle spell of a busy M:N runtime).
//!
//! Running a greenlet (`run.rs`): on its first run the hub takes a stack,
//! builds the coroutine and becomes its owner for good (a migratable
//! greenlet's owner changes when another hub adopts it, `migrate.rs`); then
//! it resumes it.
//! The greenlet runs until it yields (back of `ready`), parks (the final CAS of
//! the park protocol, `greenlet/state.rs`; if a wake-up raced in, it is resumed
//! again at once) or returns (stack back to the cache, completion published).
//!
//! Shutdown is in `shutdown.rs`.

pub(crate) mod context;
pub(crate) mod doorbell;
#[cfg(not(loom))]
pub(crate) mod dump;
pub(crate) mod escalate;
pub(crate) mod guard;
pub(crate) mod idle;
pub(crate) mod inbox;
mod io;
pub(crate) mod live;
pub(crate) mod migrate;
pub(crate) mod queue;
pub(crate) mod readiness;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod search;
pub(crate) mod shared;
mod shutdown;
pub(crate) mod stats;
pub(crate) mod watch;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use crate::error::JoinError;
use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::coarse_now;
use crate::greenlet::task::{RawTask, TaskRef};
use crate::greenlet::waiter::Waiter;
use crate::hub::shared::{Mode, Shared};
use crate::hub::stats::{add, bump, note_created, note_ended};
use crate::stack::StackPool;
use crate::time::heap::{TimerHeap, TimerKey};

use self::live::LiveSet;
use self::queue::StealQueue;
use self::remote::HubRemote;
use self::shutdown::Phase;

/// How often (in ticks) a busy hub looks at its other work sources.
const FAIRNESS_INTERVAL: u32 = 61;
/// Greenlet ids are handed to hubs in blocks of this many.
const ID_BLOCK: u64 = 1024;

const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// A hub's thread-owned state. See the module docs.
pub(crate) struct HubContext {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) remote: Arc<HubRemote>,
    /// The greenlet being resumed right now (the hub holds its `Arc`).
    current: Cell<Option<NonNull<dyn RawTask>>>,
    ready: RefCell<VecDeque<TaskRef>>,
    fresh: StealQueue<TaskRef>,
    /// An M:N runtime's unstarted greenlets when it has one hub (and so runs
    /// as `Pinned`, without `fresh`): popped newest first, like `fresh`.
    newborn: RefCell<VecDeque<TaskRef>>,
    /// Reused buffer for routing the inbox when greenlets may migrate.
    inbox_batch: RefCell<VecDeque<TaskRef>>,
    timers: RefCell<TimerHeap<Waiter>>,
    stacks: RefCell<StackPool>,
    live: RefCell<LiveSet>,
    tick: Cell<u32>,
    ids: Cell<(u64, u64)>,
    rng: Cell<u64>,
    /// Whether this hub counts in `Idle::searching`.
    searching: Cell<bool>,
    /// A greenlet just yielded: give an unstarted greenlet the next turn, so
    /// that `yield_now` lets new greenlets run too (M:N keeps them apart from
    /// the started ones in `ready`).
    yielded: Cell<bool>,
    /// Whether `fresh` or `newborn` may hold unstarted greenlets: always in
    /// M:N mode; for `newborn`, set by a spawn and cleared when a pop finds
    /// it empty. A yield sets `yielded` only then, so that `yield_now` among
    /// started greenlets does not pay for a look at empty queues.
    maybe_unstarted: Cell<bool>,
    /// `std::thread::panicking()` when the hub last resumed a greenlet: true
    /// only while another greenlet of this hub is suspended mid-unwind.
    panicking_at_resume: Cell<bool>,
    /// Killed greenlets that could not be unwound yet because another
    /// greenlet of this hub was suspended mid-unwind (`greenlet::wait::pending_interrupt`).
    deferred_kills: RefCell<Vec<TaskRef>>,
    /// `greenlet::runinfo::coarse_now`, read every fairness tick and each time
    /// the hub looks for work: the birth time of the greenlets spawned here
    /// (a clock read per spawn would be a visible share of spawn+join).
    coarse: Cell<u64>,
    /// Work after a greenlet's run: killed greenlets in `deferred_kills`, or
    /// a switch guard (`hub::guard`). One flag, tested after every run, so
    /// that neither costs a run more than this one load and branch.
    after_run: Cell<bool>,
    phase: Cell<Phase>,
    /// Functions called around every resume (`hub::guard`).
    switch_guard: Cell<Option<&'static guard::SwitchGuard>>,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
}

impl HubContext {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        fresh: StealQueue<TaskRef>,
        poll: mio::Poll,
    ) -> HubContext {
        let remote = shared.hubs[index].clone();
        let mn = shared.mode == Mode::MN;
        HubContext {
            index,
            shared,
            remote,
            current: Cell::new(None),
            ready: RefCell::new(VecDeque::new()),
            fresh,
            newborn: RefCell::new(VecDeque::new()),
            inbox_batch: RefCell::new(VecDeque::new()),
            timers: RefCell::new(TimerHeap::default()),
            stacks: RefCell::new(StackPool::new()),
            live: RefCell::new(LiveSet::default()),
            tick: Cell::new(0),
            ids: Cell::new((0, 0)),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4)),
            searching: Cell::new(false),
            yielded: Cell::new(false),
            maybe_unstarted: Cell::new(mn),
            panicking_at_resume: Cell::new(false),
            deferred_kills: RefCell::new(Vec::new()),
            coarse: Cell::new(coarse_now()),
            after_run: Cell::new(false),
            phase: Cell::new(Phase::Running),
            switch_guard: Cell::new(None),
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(1024)),
        }
    }

    /// The token under which the hub's `mio::Waker` is registered.
    pub(crate) const fn waker_token() -> mio::Token {
        WAKER_TOKEN
    }

    /// Runs the hub until its runtime shuts down.
    pub(crate) fn run(&self) {
        let _enter = context::enter(self);
        loop {
            if let Some(task) = self.next_local() {
                self.leave_search_to_run();
                self.run_task(task);
                if self.after_run.get() {
                    self.after_run_slow();
                }
                continue;
            }
            if self.phase.get() != Phase::Running || self.shared.shutdown.load(ACQUIRE) {
                if self.shutdown_step() {
                    break;
                }
                continue;
            }
            if let Some(task) = self.search() {
                self.leave_search_to_run();
                self.run_task(task);
                if self.after_run.get() {
                    self.after_run_slow();
                }
                continue;
            }
            self.wait_for_work();
        }
        self.guard_settle();
        self.exit();
    }

    /// A hub that is about to run a greenlet stops counting as a searcher
    /// (`idle.rs`), wherever it found it: its own queues too, not only a
    /// steal (Go's `resetspinning` before `execute`). A notified hub counts
    /// as a searcher when it wakes; if it then ran a greenlet from its own
    /// queues that never gives the hub back, it kept `searching` at its
    /// limit for good, so no other hub could start a search, and posters
    /// relied on it: work on its queues was stranded while the other hub
    /// idled (`tests/rt_steal.rs` `mn_greenlets_placed_on_a_stuck_hub_are_stolen`
    /// hung in about 1 run in 12).
    #[inline(always)]
    fn leave_search_to_run(&self) {
        if self.searching.get() {
            self.leave_search_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn leave_search_slow(&self) {
        search::SearchHub::leave_search(self);
    }

    /// See the field.
    #[inline]
    pub(crate) fn panicking_at_resume(&self) -> bool {
        self.panicking_at_resume.get()
    }

    /// Remembers a killed greenlet whose kill cannot be raised yet.
    pub(crate) fn defer_kill(&self, task: TaskRef) {
        self.deferred_kills.borrow_mut().push(task);
        self.after_run.set(true);
    }

    /// What `after_run` stands for: the guard's `after` (once per run, not
    /// per resume: a resume repeated at once, for a wake that raced with the
    /// park, is the same greenlet's), then the deferred kills.
    #[cold]
    fn after_run_slow(&self) {
        self.guard_after();
        if !self.deferred_kills.borrow().is_empty() {
            self.retry_deferred_kills();
        }
        self.note_after_run();
    }

    /// Recomputes `after_run`.
    pub(super) fn note_after_run(&self) {
        let work = self.switch_guard.get().is_some() || !self.deferred_kills.borrow().is_empty();
        self.after_run.set(work);
    }

    /// Wakes the greenlets of `defer_kill` once no greenlet of this hub is
    /// suspended mid-unwind, so that they unwind now.
    #[cold]
    fn retry_deferred_kills(&self) {
        if std::thread::panicking() {
            return;
        }
        let tasks = std::mem::take(&mut *self.deferred_kills.borrow_mut());
        for task in tasks {
            Waiter::Greenlet(task).wake();
        }
    }

    /// The greenlet being resumed right now.
    #[inline]
    pub(crate) fn current(&self) -> Option<NonNull<dyn RawTask>> {
        self.current.get()
    }

    /// A recent `coarse_now` (see the field).
    #[inline]
    pub(crate) fn coarse_now(&self) -> u64 {
        self.coarse.get()
    }

    /// A fresh greenlet id.
    pub(crate) fn next_id(&self) -> GreenletId {
        let (next, end) = self.ids.get();
        if next < end {
            self.ids.set((next + 1, end));
            return GreenletId::from_u64(next);
        }
        let start = GreenletId::reserve(ID_BLOCK);
        self.ids.set((start + 1, start + ID_BLOCK));
        GreenletId::from_u64(start)
    }

    /// Whether the hub is shutting down (new greenlets are cancelled).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.phase.get() != Phase::Running
    }

    /// Queues a greenlet spawned on this hub. `local` greenlets (from
    /// `spawn_local`) are never put where another hub could take them.
    pub(crate) fn spawn(&self, task: TaskRef, local: bool) {
        note_created(&self.remote.stats.created);
        if self.is_shutting_down() {
            // SAFETY: the greenlet was never queued; we own it.
            unsafe { task.cancel(JoinError::killed()) };
            self.note_ended();
            return;
        }
        bump(&self.remote.stats.spawned);
        if local {
            self.ready.borrow_mut().push_back(task);
        } else if self.shared.mode == Mode::MN {
            self.fresh.push(task);
            self.shared.notify_one();
        } else if self.shared.newest_first {
            self.newborn.borrow_mut().push_back(task);
            self.maybe_unstarted.set(true);
        } else {
            self.ready.borrow_mut().push_back(task);
        }
    }

    /// Counts a greenlet of this runtime completed on this hub (run to its
    /// end or cancelled): `Handle::wait_idle`'s live count.
    #[inline(always)]
    pub(crate) fn note_ended(&self) {
        note_ended(&self.remote.stats.ended);
    }

    /// Queues a started greenlet of this hub that was just woken here.
    #[inline]
    pub(crate) fn push_ready(&self, task: TaskRef) {
        bump(&self.remote.stats.wakes_local);
        self.requeue(task);
    }

    /// Arms a timer that wakes `waiter` at `deadline`.
    pub(crate) fn add_timer(&self, deadline: Instant, waiter: Waiter) -> TimerKey {
        bump(&self.remote.stats.timers_armed);
        self.timers.borrow_mut().insert(deadline, waiter)
    }

    /// Cancels the timers that migrated greenlets asked this hub to cancel.
    #[inline]
    fn take_timer_cancels(&self) {
        for key in self.remote.take_timer_cancels() {
            self.cancel_timer(key);
        }
    }

    /// Disarms a timer (no effect if it fired).
    pub(crate) fn cancel_timer(&self, key: TimerKey) {
        let waiter = self.timers.borrow_mut().cancel(key);
        drop(waiter);
    }

    /// The next greenlet from this hub's own queues.
    #[inline]
    fn next_local(&self) -> Option<TaskRef> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick % FAIRNESS_INTERVAL == 0 {
            // A hub that never runs out of work (greenlets that yield or wake
            // each other forever) must still notice a shutdown.
            if self.phase.get() == Phase::Running && self.shared.shutdown.load(ACQUIRE) {
                self.begin_draining();
            }
            if self.remote.has_sources() {
                self.poll(Some(std::time::Duration::ZERO));
            }
            self.take_inbox();
            self.fire_timers();
            self.coarse.set(coarse_now());
            #[cfg(not(loom))]
            self.check_dump();
            if let Some(task) = self.shared.injector.pop() {
                return Some(task);
            }
            if let Some(task) = self.remote.incoming.pop() {
                return Some(task);
            }
            // Unstarted greenlets run newest first (`pop_unstarted`); the
            // oldest one goes now, so a steady stream of spawns cannot
            // postpone it for ever.
            if let Some(task) = self.fresh.pop_oldest() {
                return Some(task);
            }
            if let Some(task) = self.newborn.borrow_mut().pop_front() {
                return Some(task);
            }
        }
        if self.yielded.replace(false) {
            if let Some(task) = self.pop_unstarted() {
                return Some(task);
            }
        }
        if let Some(task) = self.ready.borrow_mut().pop_front() {
            return Some(task);
        }
        if let Some(task) = self.pop_unstarted() {
            return Some(task);
        }
        if self.take_inbox() > 0 {
            return self.ready.borrow_mut().pop_front();
        }
        // After the inbox: greenlets already started and woken go before
        // new ones from outside.
        self.take_incoming()
    }

    /// The newest unstarted greenlet (M:N only; single-threaded and pinned
    /// runtimes queue new greenlets in `ready`, in spawn order, as gevent
    /// does).
    ///
    /// Newest first is the work-first order of work-stealing schedulers
    /// (Cilk, rayon): a greenlet that spawns children and joins them has
    /// its children run, and finish, before its siblings start, so the
    /// greenlets started at once, each holding a touched stack, stay few
    /// (a tree of depth d and fanout f: about d * f, not the whole
    /// breadth). Thieves take the oldest, i.e. the largest pieces of work.
    #[inline]
    fn pop_unstarted(&self) -> Option<TaskRef> {
        // One of the two queues is in use, never both: `fresh` in M:N mode,
        // `newborn` when M:N has one hub (a call to an empty crossbeam
        // deque's `pop` would cost every `yield_now` there).
        if self.shared.mode == Mode::MN {
            self.fresh.pop()
        } else {
            let task = self.newborn.borrow_mut().pop_back();
            if task.is_none() {
                self.maybe_unstarted.set(false);
            }
            task
        }
    }

    /// M:N: a greenlet placed on this hub from outside (`Shared::inject`),
    /// with a batch more moved into `fresh`.
    #[inline]
    fn take_incoming(&self) -> Option<TaskRef> {
        let incoming = &self.remote.incoming;
        if incoming.is_empty() {
            return None;
        }
        incoming.steal_into(&self.fresh)
    }

    /// Moves the inbox to the back of `ready`.
    fn take_inbox(&self) -> usize {
        let n = if self.shared.migrating.load(crate::loom::Ordering::Relaxed) {
            // Route each one: a migratable greenlet may go to `fresh`.
            let mut batch = std::mem::take(&mut *self.inbox_batch.borrow_mut());
            let n = self.remote.inbox.drain_into(&mut batch);
            for task in batch.drain(..) {
                self.requeue(task);
            }
            *self.inbox_batch.borrow_mut() = batch;
            n
        } else {
            self.remote.inbox.drain_into(&mut self.ready.borrow_mut())
        };
        self.remote.drained(n);
        add(&self.remote.stats.wakes_inbox, n as u64);
        n
    }

    /// Wakes the waiters of every due timer.
    fn fire_timers(&self) {
        self.take_timer_cancels();
        if self.timers.borrow().is_empty() {
            return;
        }
        let now = Instant::now();
        loop {
            let waiter = self.timers.borrow_mut().pop_expired(now);
            match waiter {
                Some(w) => {
                    bump(&self.remote.stats.timers_fired);
                    w.wake()
                }
                None => break,
            }
        }
    }
}

const ACQUIRE: crate::loom::Ordering = crate::loom::Ordering::Acquire;

/// [`schedule`] for a hand-off (`greenlet::wake_and_yield_to`): when the
/// caller runs on `task`'s owning hub, puts it at the front of the ready
/// queue, to run next, and returns `true` (the caller then yields). A
/// migratable greenlet, or one of another hub, is scheduled normally.
pub(crate) fn schedule_next(task: TaskRef) -> bool {
    let header = task.header();
    if !header.migratable {
        if let Some(hub) = context::hub() {
            let owner = header
                .owner()
                .expect("greenhub: woke a greenlet that never started");
            if std::ptr::eq(Arc::as_ptr(&hub.remote), owner) {
                bump(&hub.remote.stats.wakes_local);
                hub.ready.borrow_mut().push_front(task);
                return true;
            }
        }
    }
    schedule(task);
    false
}

/// Pushes a started greenlet that was just moved `PARKED -> SCHEDULED` to
/// its owning hub: straight onto the ready queue when the caller is that hub,
/// else through the hub's inbox. A migratable greenlet woken on another hub
/// of its runtime goes to the waker's hub instead (adopt on wake,
/// `migrate.rs`).
pub(crate) fn schedule(task: TaskRef) {
    let header = task.header();
    let owner = header
        .owner()
        .expect("greenhub: woke a greenlet that never started");
    if let Some(hub) = context::hub() {
        if std::ptr::eq(Arc::as_ptr(&hub.remote), owner) {
            hub.push_ready(task);
            return;
        }
        if header.migratable && hub.may_adopt_woken(header, owner) {
            bump(&hub.remote.stats.wakes_adopted);
            hub.requeue(task);
            return;
        }
        bump(&hub.remote.stats.wakes_sent);
    }
    // Our own `Arc`, taken before the push: once queued, the greenlet may
    // be adopted by another hub, which releases the header's (`migrate`).
    let owner = header.owner_arc().expect("checked above");
    owner.push(task);
}
