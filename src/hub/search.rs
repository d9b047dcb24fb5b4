//! A hub out of local work (steps 2 and 3 of the loop in `mod.rs`):
//! searching the injector and other hubs, then going idle by the idle
//! protocol (`idle.rs`) in the poller, and trimming the stack cache once the
//! hub has stayed idle for a while.

use crate::hub::stats::{add, bump, set};
use std::cell::Cell;
use std::time::{Duration, Instant};

use super::HubContext;
use super::idle::IdleRuntime;
use super::inbox::Inbox;
use super::queue::StealQueue;
use crate::greenlet::task::TaskRef;
use crate::hub::shared::Shared;
use crate::stack::pool::TRIM_AFTER;

/// What a hub's queues hold.
type Item<H> = <<H as SearchHub>::Runtime as IdleRuntime>::Item;

/// One hub as the search and idle steps see it. `HubContext` implements
/// it, and so do the loom models' hubs (`tests/loom_idle.rs`): the provided
/// methods are the steps themselves, run unchanged by both.
pub trait SearchHub {
    /// The runtime the hub belongs to.
    type Runtime: IdleRuntime;
    /// The runtime the hub belongs to.
    fn runtime(&self) -> &Self::Runtime;
    /// The hub's index in its runtime.
    fn index(&self) -> usize;
    /// The hub's stealable deque of unstarted greenlets.
    fn fresh(&self) -> &StealQueue<Item<Self>>;
    /// The hub's inbox (greenlets woken from other threads).
    fn inbox(&self) -> &Inbox<Item<Self>>;
    /// Whether the hub counts in `Idle::searching`.
    fn searching(&self) -> &Cell<bool>;
    /// Where a steal starts looking (reduced modulo the number of hubs):
    /// random in the runtime, so that thieves spread over the victims.
    fn steal_start(&self) -> usize;

    /// Runs `steal`, a steal from hub `victim` into `fresh`, with the hub's
    /// bookkeeping around it (statistics).
    #[inline]
    fn count_steal(
        &self,
        victim: usize,
        steal: impl FnOnce() -> Option<Item<Self>>,
    ) -> Option<Item<Self>> {
        let _ = victim;
        steal()
    }

    /// Step 2 of the loop, beyond the hub's own queues: in M:N mode
    /// [`search_stealable`](Self::search_stealable), else a greenlet from the
    /// injector. A hub that finds work leaves the search.
    #[inline]
    fn search_shared(&self) -> Option<Item<Self>> {
        let rt = self.runtime();
        if rt.steals() {
            return SearchHub::search_stealable(self);
        }
        let found = rt.injector().pop();
        if found.is_some() {
            SearchHub::leave_search(self);
        }
        found
    }

    /// Step 2 of the loop in M:N mode: a batch from the injector (no
    /// search permit needed), else, holding a search permit (at most half
    /// of the hubs search at once), a batch stolen from another hub. A hub
    /// that finds work leaves the search.
    #[inline]
    fn search_stealable(&self) -> Option<Item<Self>> {
        let rt = self.runtime();
        let found = match rt.injector().steal_into(self.fresh()) {
            Some(task) => Some(task),
            None => {
                if !self.searching().get() {
                    if !rt.idle().try_start_search() {
                        return None;
                    }
                    self.searching().set(true);
                }
                SearchHub::steal(self)
            }
        };
        if found.is_some() {
            SearchHub::leave_search(self);
        }
        found
    }

    /// Steals a batch of unstarted greenlets from another hub, trying each
    /// from [`steal_start`](Self::steal_start) on.
    #[inline]
    fn steal(&self) -> Option<Item<Self>> {
        let rt = self.runtime();
        let n = rt.num_hubs();
        if n < 2 {
            return None;
        }
        let start = self.steal_start() % n;
        for k in 0..n {
            let victim = (start + k) % n;
            if victim == self.index() {
                continue;
            }
            if let Some(stealer) = rt.stealer(victim) {
                if let Some(task) = self.count_steal(victim, || stealer.steal_into(self.fresh())) {
                    return Some(task);
                }
            }
            if let Some(incoming) = rt.incoming(victim) {
                if let Some(task) = self.count_steal(victim, || incoming.steal_into(self.fresh())) {
                    return Some(task);
                }
            }
        }
        None
    }

    /// Stops counting as a searcher; the last searcher to find work hands
    /// the search on if more stealable work is visible (`idle.rs`).
    #[inline]
    fn leave_search(&self) {
        let rt = self.runtime();
        if self.searching().replace(false) && rt.idle().end_search() && rt.has_stealable_work() {
            rt.notify_one();
        }
    }

    /// Step 3 of the loop: the idle protocol's "going idle" (`idle.rs`).
    /// Announces itself idle, re-checks every source, and runs `block` (block
    /// until woken) only if they are all empty. Returns whether it blocked;
    /// either way the hub then looks for work again, as a searcher if a
    /// notifier counted it as one.
    #[inline]
    fn go_idle(&self, block: impl FnOnce()) -> bool {
        let rt = self.runtime();
        let idle = rt.idle();
        idle.announce_idle(self.index(), self.searching().replace(false));
        // Re-check every source (the idler's half of the Dekker pair).
        let mut started = false;
        let work = !self.inbox().is_empty()
            || !rt.injector().is_empty()
            || rt.shutting_down()
            || (rt.steals() && rt.has_stealable_work() && {
                started = idle.try_start_search();
                started
            });
        if work {
            let notified = !idle.cancel_idle(self.index());
            if started && notified {
                // Counted twice (by us and by the notifier): keep one.
                idle.end_search();
            }
            self.searching().set(started || notified);
            return false;
        }
        block();
        if !idle.cancel_idle(self.index()) {
            // A notifier took us off the idler list and counted us as a
            // searcher.
            self.searching().set(true);
        }
        true
    }
}

impl SearchHub for HubContext {
    type Runtime = Shared;

    #[inline]
    fn runtime(&self) -> &Shared {
        &self.shared
    }

    #[inline]
    fn index(&self) -> usize {
        self.index
    }

    #[inline]
    fn fresh(&self) -> &StealQueue<TaskRef> {
        &self.fresh
    }

    #[inline]
    fn inbox(&self) -> &Inbox<TaskRef> {
        &self.remote.inbox
    }

    #[inline]
    fn searching(&self) -> &Cell<bool> {
        &self.searching
    }

    #[inline]
    fn steal_start(&self) -> usize {
        self.next_rand() as usize
    }

    #[inline]
    fn count_steal(
        &self,
        victim: usize,
        steal: impl FnOnce() -> Option<TaskRef>,
    ) -> Option<TaskRef> {
        let before = self.fresh.len();
        let task = steal()?;
        let stats = &self.remote.stats;
        let n = 1 + self.fresh.len().saturating_sub(before) as u64;
        bump(&stats.steals);
        add(&stats.stolen, n);
        add(&stats.stolen_from[victim], n);
        Some(task)
    }
}

impl HubContext {
    /// Looks for work beyond the local queues (step 2 of the loop).
    pub(super) fn search(&self) -> Option<TaskRef> {
        self.fire_timers();
        self.coarse.set(crate::greenlet::runinfo::coarse_now());
        #[cfg(not(loom))]
        self.check_dump();
        if let Some(task) = self.ready.borrow_mut().pop_front() {
            return Some(task);
        }
        if let Some(task) = self.pop_unstarted() {
            return Some(task);
        }
        if let Some(task) = self.take_incoming() {
            return Some(task);
        }
        SearchHub::search_shared(self)
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

    /// Step 3 of the loop: the idle protocol's "going idle"
    /// ([`SearchHub::go_idle`]), blocked in the poller until the next
    /// timer; a hub whose stack cache holds pages to give back stays idle at most the
    /// grace period only, and trims the cache if it is still idle then.
    pub(super) fn wait_for_work(&self) {
        let slept = SearchHub::go_idle(self, || {
            let timeout = self.timer_timeout();
            let trim = self.stacks.borrow().needs_trim() && timeout.is_none_or(|t| t >= TRIM_AFTER);
            if trim {
                // Sleep the grace period only; still idle after it, trim
                // below and go idle again through the main loop.
                let start = Instant::now();
                self.wait_in_poller(Some(TRIM_AFTER));
                if start.elapsed() >= TRIM_AFTER && self.has_no_local_work() {
                    self.stacks.borrow_mut().trim();
                }
            } else {
                self.wait_in_poller(timeout);
            }
        });
        if slept {
            self.fire_timers();
        }
    }

    /// Nothing queued for this hub (woken greenlets, inbox, new spawns, or
    /// greenlets placed on it from outside).
    fn has_no_local_work(&self) -> bool {
        self.ready.borrow().is_empty()
            && self.remote.inbox.is_empty()
            && self.fresh.is_empty()
            && self.newborn.borrow().is_empty()
            && self.remote.incoming.is_empty()
    }

    /// Time until the next timer, if any.
    pub(super) fn timer_timeout(&self) -> Option<Duration> {
        let deadline = self.timers.borrow_mut().next_deadline()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Blocks in the poller until `timeout`, an event or a ring of its doorbell.
    pub(super) fn wait_in_poller(&self, timeout: Option<Duration>) {
        bump(&self.remote.stats.idles);
        set(
            &self.remote.stats.stacks_cached,
            self.stacks.borrow().cached() as u64,
        );
        self.remote.doorbell.idle_with(|| {
            let timeout = if self.guard_idle() {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            self.poll(timeout);
            self.guard_settle();
        });
        self.coarse.set(crate::greenlet::runinfo::coarse_now());
    }
}
