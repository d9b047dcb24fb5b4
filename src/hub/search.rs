//! A hub out of local work (steps 2 and 3 of the loop in `mod.rs`):
//! searching the injector and other hubs, then going to sleep by the idle
//! protocol (`idle.rs`) in the poller, and trimming the stack cache once the
//! hub has stayed idle for a while.

use crate::inspect::counters::{add, bump, set};
use std::time::{Duration, Instant};

use super::{ACQUIRE, HubContext};
use crate::greenlet::task::TaskRef;
use crate::runtime::shared::Mode;
use crate::stack::pool::TRIM_AFTER;

impl HubContext {
    /// Looks for work beyond the local queues (step 2 of the loop).
    pub(super) fn search(&self) -> Option<TaskRef> {
        self.fire_timers();
        self.coarse.set(crate::greenlet::trace::coarse_now());
        #[cfg(not(loom))]
        self.check_dump();
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
                let before = self.fresh.len();
                if let Some(task) = stealer.steal_into(&self.fresh) {
                    let stats = &self.remote.stats;
                    let n = 1 + self.fresh.len().saturating_sub(before) as u64;
                    bump(&stats.steals);
                    add(&stats.stolen, n);
                    add(&stats.stolen_from[victim], n);
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
    pub(super) fn sleep(&self) {
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
    pub(super) fn timer_timeout(&self) -> Option<Duration> {
        let deadline = self.timers.borrow_mut().next_deadline()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Blocks in the poller until `timeout`, an event or an unpark.
    pub(super) fn park(&self, timeout: Option<Duration>) {
        bump(&self.remote.stats.sleeps);
        set(
            &self.remote.stats.stacks_cached,
            self.stacks.borrow().cached() as u64,
        );
        let park = &self.remote.park;
        if park.prepare_park() {
            self.poll(timeout);
        }
        park.finish_park();
        self.coarse.set(crate::greenlet::trace::coarse_now());
    }
}
