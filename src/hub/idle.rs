//! The idle-hub protocol: when a hub with nothing to run goes to sleep, and
//! who wakes it when stealable work appears.
//!
//! Modelled on Go's `runtime/proc.go` ("Worker thread parking/unparking") and
//! rayon-core's `sleep` module.
//!
//! # The goal, and why it is hard
//!
//! Hubs that have nothing to do must sleep (no busy-polling), yet a greenlet
//! pushed onto a deque that another hub could steal, or onto the global
//! injector, must never sit there while every hub sleeps ("stranded work").
//! Waking a hub for every spawn would be a syscall per spawn and a thundering
//! herd.
//!
//! # Rejected approaches
//!
//! - Wake a sleeping hub on every push: a futex/eventfd write per spawn, and
//!   hubs woken for work that the pusher itself will run a microsecond later.
//! - Idle hubs poll with a timeout and look around: latency of the timeout,
//!   and idle CPU burn (may's 10 ms poll).
//!
//! # Chosen: searching hubs and sleepers
//!
//! Counters (all `SeqCst`):
//!
//! - `searching`: hubs that are awake and looking for work to steal. At most
//!   half of the hubs search at once (more only adds contention).
//! - `sleepers` (under a mutex) and its length `num_sleepers`: hubs that
//!   announced they are about to sleep, or sleep.
//!
//! **Posting stealable work** (spawn onto a hub's deque in M:N mode, or a push
//! to the injector): (1) push; (2) SeqCst fence; (3) if some hub is searching,
//! stop: it will find the work; (4) else if a hub sleeps, pop it from
//! `sleepers`, count it as searching, and unpark it.
//!
//! **A searcher that finds work** leaves the search; if it was the last
//! searcher and work remains visible, it notifies another sleeper (Go's
//! `resetspinning`, tokio's "last searcher notifies"): parallelism ramps up one
//! hub at a time.
//!
//! **Going to sleep**: (1) under the lock, push self to `sleepers` and, if
//! searching, leave the search; (2) SeqCst fence; (3) re-check every queue it
//! could take from (its inbox, the injector, every stealable deque); if any has
//! work, take self back out of `sleepers` and search again; (4) else park.
//! After waking, a hub takes itself out of `sleepers` if it is still there
//! (it was woken by a timer, IO or a targeted unpark, not by a notification);
//! if it is not there, the notifier counted it as searching.
//!
//! # The race
//!
//! A push racing with a hub going to sleep: the pusher's "push; fence; read
//! counters" and the sleeper's "write counters; fence; read queues" form a
//! Dekker pair, so at least one of them sees the other. Either the pusher sees
//! the sleeper (and wakes it) or a searcher, or the sleeper sees the work.
//! A searcher that the pusher relied on re-checks the queues after leaving the
//! search (step 3 of going to sleep, or the last-searcher rule), so the work
//! is not stranded. `tests/loom_idle.rs` checks this.
//!
//! Wake-ups of *started* greenlets do not go through this protocol: they are
//! pushed to the owning hub's inbox and that hub is unparked directly
//! (`park.rs`).

use crate::hub::queue::{Injector, Stealer};
use crate::loom::{AtomicUsize, Mutex, Ordering::SeqCst, fence};

/// The runtime as the idle protocol sees it: the queues a searching hub
/// takes from, and how to unpark a hub. `runtime::shared::Shared`
/// implements it, and so do the loom models' runtimes (`tests/loom_idle.rs`),
/// which therefore run the provided methods (posting's notification and the
/// stealable-work check) and the steps of `search.rs` as the hubs do.
pub trait IdleRuntime {
    /// What the queues hold (`TaskRef`; a number in the models).
    type Item;
    /// The searching/sleeping bookkeeping.
    fn idle(&self) -> &Idle;
    /// The global queue of greenlets spawned from outside the hubs.
    fn injector(&self) -> &Injector<Self::Item>;
    /// How many hubs the runtime has.
    fn num_hubs(&self) -> usize;
    /// Hub `hub`'s stealable deque (M:N mode only).
    fn stealer(&self, hub: usize) -> Option<&Stealer<Self::Item>>;
    /// Whether hubs steal from each other (M:N mode).
    fn steals(&self) -> bool;
    /// Whether shutdown has begun (a hub going to sleep must not sleep
    /// through it).
    fn shutting_down(&self) -> bool;
    /// Ends hub `hub`'s park (`HubRemote::unpark`, `park.rs`).
    fn unpark_hub(&self, hub: usize);

    /// Posting stealable work, steps 2-4 (the caller pushed it): wakes a
    /// sleeping hub, counted as a searcher, unless a hub is searching.
    #[inline]
    fn notify_one(&self) {
        if let Some(hub) = self.idle().hub_to_notify() {
            self.unpark_hub(hub);
        }
    }

    /// Whether any queue that a searching hub could take from is non-empty.
    #[inline]
    fn has_stealable_work(&self) -> bool {
        !self.injector().is_empty()
            || (0..self.num_hubs()).any(|i| self.stealer(i).is_some_and(|s| !s.is_empty()))
    }
}

/// Shared idle-hub bookkeeping for one runtime.
pub struct Idle {
    nhubs: usize,
    searching: AtomicUsize,
    num_sleepers: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
}

impl Idle {
    pub fn new(nhubs: usize) -> Idle {
        Idle {
            nhubs,
            searching: AtomicUsize::new(0),
            num_sleepers: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(nhubs)),
        }
    }

    /// After publishing stealable work: the hub to unpark, if one should be.
    /// The returned hub is already counted as searching.
    pub fn hub_to_notify(&self) -> Option<usize> {
        fence(SeqCst);
        if self.searching.load(SeqCst) != 0 || self.num_sleepers.load(SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.sleepers.lock();
        if self.searching.load(SeqCst) != 0 {
            return None;
        }
        let hub = sleepers.pop()?;
        self.num_sleepers.store(sleepers.len(), SeqCst);
        self.searching.fetch_add(1, SeqCst);
        Some(hub)
    }

    /// A hub that ran out of local work asks to search other hubs' queues.
    pub fn try_start_search(&self) -> bool {
        let n = self.searching.load(SeqCst);
        if 2 * n >= self.nhubs.max(2) {
            return false;
        }
        self.searching.fetch_add(1, SeqCst);
        true
    }

    /// A searching hub found work. Returns `true` if it was the last
    /// searcher: it must then check for more work and notify another hub.
    pub fn end_search(&self) -> bool {
        let prev = self.searching.fetch_sub(1, SeqCst);
        debug_assert!(
            prev > 0,
            "Idle: end_search by a hub that did not count as a searcher (searching was 0)"
        );
        if prev == 1 {
            fence(SeqCst);
            true
        } else {
            false
        }
    }

    /// Step 1 of going to sleep (the caller then re-checks every queue).
    pub fn announce_sleep(&self, hub: usize, searching: bool) {
        let mut sleepers = self.sleepers.lock();
        debug_assert!(
            !sleepers.contains(&hub),
            "Idle: hub {hub} announced sleep while already on the sleeper list"
        );
        sleepers.push(hub);
        self.num_sleepers.store(sleepers.len(), SeqCst);
        if searching {
            let prev = self.searching.fetch_sub(1, SeqCst);
            debug_assert!(
                prev > 0,
                "Idle: hub {hub} stopped searching but no hub counted as a searcher"
            );
        }
        drop(sleepers);
        fence(SeqCst);
    }

    /// After a wake-up, or when the re-check found work: takes `hub` out of
    /// `sleepers`. Returns `false` if it was no longer there, i.e. a notifier
    /// took it out and counted it as searching.
    pub fn cancel_sleep(&self, hub: usize) -> bool {
        let mut sleepers = self.sleepers.lock();
        match sleepers.iter().position(|&h| h == hub) {
            Some(i) => {
                sleepers.swap_remove(i);
                self.num_sleepers.store(sleepers.len(), SeqCst);
                true
            }
            None => false,
        }
    }
}
