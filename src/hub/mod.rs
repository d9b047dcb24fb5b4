//! A hub: one OS thread that runs greenlets, one at a time.
//!
//! Each hub owns (on its thread, in [`HubContext`]):
//!
//! - `ready`: started greenlets woken on this hub, and in single-threaded and
//!   pinned mode also new ones (FIFO). Never stolen.
//! - `fresh`: in M:N mode, greenlets spawned here that have not started yet:
//!   a `crossbeam-deque` worker that idle hubs steal from (`queue.rs`).
//! - its inbox (`inbox.rs`, in [`HubRemote`]): greenlets woken from other
//!   threads.
//! - timers (`time/heap.rs`), a `mio::Poll` it parks in, a stack cache
//!   (`stack/pool.rs`) and the set of live greenlets (`live.rs`).
//!
//! # The loop
//!
//! 1. Every tick: run the next greenlet from `ready`, else `fresh`, else the
//!    inbox; right after a greenlet yielded, `fresh` goes first (so
//!    `yield_now` lets new greenlets run too, not only started ones). Every 61st tick first take from the injector and `fresh`, move
//!    the inbox over and fire due timers, so no source starves (Go and tokio
//!    use the same 61).
//! 2. Out of local work: search (`search`): inbox, timers, the global
//!    injector, then (M:N only) steal a batch of unstarted greenlets from a
//!    random other hub.
//! 3. Nothing anywhere: go to sleep by the idle protocol (`idle.rs`), parked
//!    in the poller (`park.rs`) until the next timer, an IO event or a
//!    wake-up. A hub whose stack cache holds pages to give back sleeps at most
//!    `stack::pool::TRIM_AFTER` first, and trims the cache if it is still
//!    idle then (trimming costs syscalls and TLB flushes, too much for every
//!    short idle spell of a busy M:N runtime).
//!
//! Running a greenlet (`run_task`): on its first run the hub takes a stack,
//! builds the coroutine and becomes its owner for good; then it resumes it.
//! The greenlet runs until it yields (back of `ready`), parks (the final CAS of
//! the park protocol, `greenlet/state.rs`; if a wake-up raced in, it is resumed
//! again at once) or returns (stack back to the cache, completion published).
//!
//! Shutdown is in `shutdown.rs`.

pub(crate) mod context;
pub(crate) mod idle;
pub(crate) mod inbox;
pub(crate) mod live;
pub(crate) mod park;
pub(crate) mod queue;
pub(crate) mod remote;
mod shutdown;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use crate::error::JoinError;
use crate::greenlet::GreenletId;
use crate::greenlet::task::{HubRef, RawTask, StackInfo, Suspend, TaskRef};
use crate::greenlet::waiter::Waiter;
use crate::runtime::shared::{Mode, Shared};
use crate::stack::pool::TRIM_AFTER;
use crate::stack::{StackPool, guard_size};
use crate::time::heap::{TimerHeap, TimerKey};

use self::live::LiveSet;
use self::queue::LocalQueue;
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
    fresh: LocalQueue<TaskRef>,
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
    /// `std::thread::panicking()` when the hub last resumed a greenlet: true
    /// only while another greenlet of this hub is suspended mid-unwind.
    panicking_at_resume: Cell<bool>,
    /// Killed greenlets that could not be unwound yet because another
    /// greenlet of this hub was suspended mid-unwind (`greenlet::unwind_killed`).
    deferred_kills: RefCell<Vec<TaskRef>>,
    /// `!deferred_kills.is_empty()`, as a flag cheap enough to test after
    /// every greenlet run.
    has_deferred_kills: Cell<bool>,
    phase: Cell<Phase>,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
}

impl HubContext {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        fresh: LocalQueue<TaskRef>,
        poll: mio::Poll,
    ) -> HubContext {
        let remote = shared.hubs[index].clone();
        HubContext {
            index,
            shared,
            remote,
            current: Cell::new(None),
            ready: RefCell::new(VecDeque::new()),
            fresh,
            timers: RefCell::new(TimerHeap::default()),
            stacks: RefCell::new(StackPool::new()),
            live: RefCell::new(LiveSet::default()),
            tick: Cell::new(0),
            ids: Cell::new((0, 0)),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4)),
            searching: Cell::new(false),
            yielded: Cell::new(false),
            panicking_at_resume: Cell::new(false),
            deferred_kills: RefCell::new(Vec::new()),
            has_deferred_kills: Cell::new(false),
            phase: Cell::new(Phase::Running),
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
                self.run_task(task);
                if self.has_deferred_kills.get() {
                    self.retry_deferred_kills();
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
                self.run_task(task);
                if self.has_deferred_kills.get() {
                    self.retry_deferred_kills();
                }
                continue;
            }
            self.sleep();
        }
        self.exit();
    }

    /// See the field.
    #[inline]
    pub(crate) fn panicking_at_resume(&self) -> bool {
        self.panicking_at_resume.get()
    }

    /// Remembers a killed greenlet whose kill cannot be raised yet.
    pub(crate) fn defer_kill(&self, task: TaskRef) {
        self.deferred_kills.borrow_mut().push(task);
        self.has_deferred_kills.set(true);
    }

    /// Wakes the greenlets of `defer_kill` once no greenlet of this hub is
    /// suspended mid-unwind, so that they unwind now.
    #[cold]
    fn retry_deferred_kills(&self) {
        if std::thread::panicking() {
            return;
        }
        self.has_deferred_kills.set(false);
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
        if self.is_shutting_down() {
            // SAFETY: the greenlet was never queued; we own it.
            unsafe { task.cancel(JoinError::killed()) };
            return;
        }
        if self.shared.mode == Mode::Steal && !local {
            self.fresh.push(task);
            self.shared.notify_one();
        } else {
            self.ready.borrow_mut().push_back(task);
        }
    }

    /// Queues a started greenlet of this hub that was just woken here.
    #[inline]
    pub(crate) fn push_ready(&self, task: TaskRef) {
        self.ready.borrow_mut().push_back(task);
    }

    /// Arms a timer that wakes `waiter` at `deadline`.
    pub(crate) fn add_timer(&self, deadline: Instant, waiter: Waiter) -> TimerKey {
        self.timers.borrow_mut().insert(deadline, waiter)
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
            self.take_inbox();
            self.fire_timers();
            if let Some(task) = self.shared.injector.pop() {
                return Some(task);
            }
            if let Some(task) = self.fresh.pop() {
                return Some(task);
            }
        }
        if self.yielded.replace(false) {
            if let Some(task) = self.fresh.pop() {
                return Some(task);
            }
        }
        if let Some(task) = self.ready.borrow_mut().pop_front() {
            return Some(task);
        }
        if let Some(task) = self.fresh.pop() {
            return Some(task);
        }
        if self.take_inbox() > 0 {
            return self.ready.borrow_mut().pop_front();
        }
        None
    }

    /// Moves the inbox to the back of `ready`.
    fn take_inbox(&self) -> usize {
        let n = self.remote.inbox.drain_into(&mut self.ready.borrow_mut());
        self.remote.drained(n);
        n
    }

    /// Wakes the waiters of every due timer.
    fn fire_timers(&self) {
        if self.timers.borrow().is_empty() {
            return;
        }
        let now = Instant::now();
        loop {
            let waiter = self.timers.borrow_mut().pop_expired(now);
            match waiter {
                Some(w) => w.wake(),
                None => break,
            }
        }
    }

    /// Looks for work beyond the local queues (step 2 of the loop).
    fn search(&self) -> Option<TaskRef> {
        self.fire_timers();
        if let Some(task) = self.ready.borrow_mut().pop_front() {
            return Some(task);
        }
        let found = match self.shared.mode {
            Mode::Steal => {
                // The injector needs no search permit; stealing from other
                // hubs does (at most half of the hubs search at once).
                let injected = self.shared.injector.steal_into(&self.fresh);
                if injected.is_some() {
                    injected
                } else {
                    if !self.searching.get() {
                        if !self.shared.idle.try_start_search() {
                            return None;
                        }
                        self.searching.set(true);
                    }
                    self.steal()
                }
            }
            Mode::Pinned | Mode::Single => self.shared.injector.pop(),
        };
        if found.is_some() {
            self.leave_search();
        }
        found
    }

    /// Steals a batch of unstarted greenlets from a random other hub.
    fn steal(&self) -> Option<TaskRef> {
        let hubs = &self.shared.hubs;
        let n = hubs.len();
        if n < 2 {
            return None;
        }
        let start = (self.next_rand() % n as u64) as usize;
        for k in 0..n {
            let victim = (start + k) % n;
            if victim == self.index {
                continue;
            }
            if let Some(stealer) = &hubs[victim].stealer {
                if let Some(task) = stealer.steal_into(&self.fresh) {
                    return Some(task);
                }
            }
        }
        None
    }

    /// Stops counting as a searcher; the last searcher to find work hands
    /// the search on if more stealable work is visible (`idle.rs`).
    fn leave_search(&self) {
        if self.searching.replace(false)
            && self.shared.idle.end_search()
            && self.shared.has_stealable_work()
        {
            self.shared.notify_one();
        }
    }

    fn next_rand(&self) -> u64 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Step 3 of the loop: the idle protocol's "going to sleep".
    fn sleep(&self) {
        let idle = &self.shared.idle;
        idle.announce_sleep(self.index, self.searching.replace(false));
        // Re-check every source (the sleeper's half of the Dekker pair).
        let mut started = false;
        let work = !self.remote.inbox.is_empty()
            || !self.shared.injector.is_empty()
            || self.shared.shutdown.load(ACQUIRE)
            || (self.shared.mode == Mode::Steal && self.shared.has_stealable_work() && {
                started = idle.try_start_search();
                started
            });
        if work {
            let notified = !idle.cancel_sleep(self.index);
            if started && notified {
                // Counted twice (by us and by the notifier): keep one.
                idle.end_search();
            }
            self.searching.set(started || notified);
            return;
        }
        let timeout = self.timer_timeout();
        let trim = self.stacks.borrow().needs_trim() && timeout.is_none_or(|t| t >= TRIM_AFTER);
        if trim {
            // Sleep the grace period only; still idle after it, trim below
            // and go back to sleep through the main loop.
            let start = Instant::now();
            self.park(Some(TRIM_AFTER));
            if start.elapsed() >= TRIM_AFTER && self.has_no_local_work() {
                self.stacks.borrow_mut().trim();
            }
        } else {
            self.park(timeout);
        }
        if !idle.cancel_sleep(self.index) {
            // A notifier took us off the sleeper list and counted us as a
            // searcher.
            self.searching.set(true);
        }
        self.fire_timers();
    }

    /// Nothing queued for this hub (woken greenlets, inbox or new spawns).
    fn has_no_local_work(&self) -> bool {
        self.ready.borrow().is_empty() && self.remote.inbox.is_empty() && self.fresh.is_empty()
    }

    /// Time until the next timer, if any.
    fn timer_timeout(&self) -> Option<Duration> {
        let deadline = self.timers.borrow_mut().next_deadline()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Blocks in the poller until `timeout`, an event or an unpark.
    fn park(&self, timeout: Option<Duration>) {
        let park = &self.remote.park;
        if park.prepare_park() {
            self.poll(timeout);
        }
        park.finish_park();
    }

    /// One `epoll_wait`. The only registered source so far is the waker,
    /// whose events need no handling beyond returning.
    fn poll(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        // Round sub-millisecond timeouts up so a near timer does not spin.
        let timeout = timeout.map(|t| {
            if t.is_zero() || t >= Duration::from_millis(1) {
                t
            } else {
                Duration::from_millis(1)
            }
        });
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("greenhub: hub {} cannot poll: {e}", self.index),
        }
    }

    /// Runs `task` until it yields, parks or finishes.
    fn run_task(&self, task: TaskRef) {
        let header = task.header();
        if !header.is_started() && !self.start(&task) {
            return;
        }
        loop {
            // SAFETY: we dequeued the greenlet, so we are its owning hub
            // with exclusive use of the slot; the borrow ends before the slot
            // is touched again below.
            let coro = unsafe { header.coroutine() }
                .as_mut()
                .expect("greenhub: started greenlet without a coroutine");
            self.current.set(Some(NonNull::from(&*task)));
            self.panicking_at_resume.set(std::thread::panicking());
            let result = coro.resume(HubRef::new(self));
            self.current.set(None);
            match result {
                CoroutineResult::Yield(Suspend::Yield) => {
                    self.ready.borrow_mut().push_back(task);
                    // Only M:N keeps unstarted greenlets apart (see `yielded`).
                    self.yielded.set(self.shared.mode == Mode::Steal);
                    return;
                }
                CoroutineResult::Yield(Suspend::Park) => {
                    if header.state.park_commit() {
                        return;
                    }
                    // A wake-up raced with the park: run it again now.
                }
                CoroutineResult::Return(()) => {
                    self.finish(&task);
                    return;
                }
            }
        }
    }

    /// First run: stack, coroutine, ownership. Returns `false` if the
    /// greenlet was completed instead (killed, shutting down, no stack).
    fn start(&self, task: &TaskRef) -> bool {
        let header = task.header();
        if header.state.load().is_killed() || self.is_shutting_down() {
            // SAFETY: we dequeued the unstarted greenlet.
            unsafe { task.cancel(JoinError::killed()) };
            return false;
        }
        let size = match header.stack_size {
            0 => self.shared.stack_size,
            n => n,
        };
        let stack = match self.stacks.borrow_mut().alloc(size) {
            Ok(stack) => stack,
            Err(e) => {
                // SAFETY: as above.
                unsafe { task.cancel(JoinError::io(e)) };
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
            header.set_stack_info(info);
            task.start(stack);
        }
        self.live.borrow_mut().insert(task.clone());
        true
    }

    /// The greenlet's closure returned: recycle its stack, publish completion.
    fn finish(&self, task: &TaskRef) {
        let header = task.header();
        // SAFETY: owning hub; the coroutine has returned and no borrow of the
        // slot is live.
        let coro = unsafe { header.coroutine() }
            .take()
            .expect("greenhub: finished greenlet without a coroutine");
        self.stacks.borrow_mut().free(coro.into_stack());
        self.live.borrow_mut().remove(task);
        // SAFETY: the closure stored its outcome; coroutine removed above.
        unsafe { task.finish() };
    }
}

const ACQUIRE: crate::loom::Ordering = crate::loom::Ordering::Acquire;

/// Pushes a started greenlet that was just moved `PARKED -> SCHEDULED` to
/// its owning hub: straight onto the ready queue when the caller is that hub,
/// else through the hub's inbox.
pub(crate) fn schedule(task: TaskRef) {
    let owner = task
        .header()
        .owner()
        .expect("greenhub: woke a greenlet that never started");
    if let Some(hub) = context::hub() {
        if Arc::ptr_eq(&hub.remote, owner) {
            hub.push_ready(task);
            return;
        }
    }
    let owner = owner.clone();
    owner.push(task);
}
