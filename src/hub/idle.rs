//! The idle-hub protocol: when a hub with nothing to run goes idle, and
//! who wakes it when stealable work appears.
//!
//! Modelled on Go's `runtime/proc.go` ("Worker thread parking/unparking") and
//! rayon-core's `sleep` module (whose `README.md` this proof sketch follows).
//!
//! # The goal, and why it is hard
//!
//! Hubs that have nothing to do must go idle (no busy-polling), yet a greenlet
//! pushed onto a deque that another hub could steal, or onto the global
//! injector, must never sit there while every hub is idle ("stranded work").
//! Waking a hub for every spawn would be a syscall per spawn and a thundering
//! herd.
//!
//! # Rejected approaches
//!
//! - Wake a idle hub on every push: a futex/eventfd write per spawn, and
//!   hubs woken for work that the pusher itself will run a microsecond later.
//! - Idle hubs poll with a timeout and look around: latency of the timeout,
//!   and idle CPU burn (may's 10 ms poll).
//!
//! # Chosen: searching hubs and idlers
//!
//! Shared state (in [`Idle`]):
//!
//! - `searching`: how many hubs count as searchers: awake and looking for
//!   work to steal, or notified and about to. At most half of the hubs start
//!   a search on their own (more only adds contention). Every access is
//!   `SeqCst`.
//! - `idlers` (under a mutex) and its length `num_idlers` (a `SeqCst`
//!   atomic written only under that mutex, read without it): hubs that
//!   announced they are about to go idle, or are idle.
//!
//! The steps, each one function that the hubs run (`search.rs`,
//! [`IdleRuntime`]) and the loom models run too:
//!
//! - **Posting stealable work** (a spawn onto a hub's deque in M:N mode, a
//!   push to the injector, a released migratable greenlet): (1) push;
//!   (2) `notify_one` -> [`Idle::hub_to_notify`]: fence **F_n** (`SeqCst`);
//!   (3) if some hub is searching, stop: it will find the work; (4) else if a
//!   hub is idle, take it off `idlers` (under the lock, re-checking
//!   `searching` there), count it as searching, and ring its doorbell.
//! - **Searching** (`SearchHub::search_stealable`): take a batch from the
//!   injector, else start a search ([`Idle::try_start_search`]) and steal.
//!   **A searcher that finds work**, stolen or on its own queues (a
//!   notified hub counts as a searcher when it wakes), leaves the search
//!   before it runs it (`SearchHub::leave_search` -> [`Idle::end_search`],
//!   from `search_stealable` and `HubContext::leave_search_to_run`): a
//!   greenlet that never gives its hub back must not hold a search count
//!   (Go's `resetspinning` before `execute`); if it was the last
//!   searcher it runs fence **F_l** (`SeqCst`), and if work is still visible
//!   it notifies another idler (Go's `resetspinning`, tokio's "last
//!   searcher notifies"): parallelism ramps up one hub at a time.
//! - **Going idle** (`SearchHub::go_idle`): (1)
//!   [`Idle::announce_idle`]: under the lock, push self to `idlers`, store
//!   `num_idlers`, and, if it was searching, leave the search; then fence
//!   **F_a** (`SeqCst`); (2) re-check every source it could take from: its
//!   inbox, the injector, the shutdown flag, and (M:N) every stealable deque,
//!   the latter only if it can start a search to take from them; (3) if any
//!   has work, take self back off `idlers` ([`Idle::cancel_idle`]) and
//!   look again, as a searcher if it started one or a notifier counted it;
//!   (4) else block in the poller (`doorbell.rs`). After waking, a hub takes itself off
//!   `idlers` if it is still there (a timer, IO or a targeted ring woke
//!   it); if it is not, a notifier took it off and counted it as searching.
//!
//! # States of a hub
//!
//! | state     | on `idlers`   | counted in `searching` | doorbell (`doorbell.rs`)   |
//! |-----------|---------------|------------------------|----------------------------|
//! | running   | no            | no                     | `EMPTY`                    |
//! | searching | no            | yes                    | `EMPTY`                    |
//! | announced | yes           | no                     | `EMPTY` (or `NOTIFIED`)    |
//! | idle      | yes           | no                     | `IDLE`                     |
//! | notified  | no            | yes                    | `NOTIFIED` (or waking)     |
//!
//! Who moves a hub between them:
//!
//! - running -> searching: the hub itself (`try_start_search`);
//! - searching -> running: the hub itself (`end_search`, then, if it was the
//!   last searcher, F_l and a look at the stealable queues);
//! - running or searching -> announced: the hub itself (`announce_idle`, F_a);
//! - announced -> running or searching: the hub itself, when its re-check found
//!   work (`cancel_idle`);
//! - announced -> idle: the hub itself (`prepare_idle`);
//! - announced or idle -> notified: **another thread**, a poster or a last
//!   searcher (`hub_to_notify`, under the lock, then `ring`);
//! - idle -> running: the hub itself, woken by anything else (a timer,
//!   IO, its inbox, shutdown: `cancel_idle` finds it still listed);
//! - notified -> searching: the hub itself (`cancel_idle` finds it gone).
//!
//! So `searching` and `idlers` change only in those steps, and a hub's
//! count in `searching` is given up in exactly two places, each followed by
//! a `SeqCst` fence and a look at the stealable queues: `end_search` of the
//! last searcher (F_l) and `announce_idle` (F_a). (A third, `begin_draining`
//! at shutdown, needs none: nothing is left to run.)
//!
//! # No stranded work: the missed wake-up argument
//!
//! The rule behind every case, for `SeqCst` fences X and Y (C++20
//! \[atomics.order\]): if a write W is sequenced before X, a read R is
//! sequenced after Y, and X precedes Y in the single total order S of all
//! `SeqCst` operations, then R sees W or a later write to the same location.
//! The orderings of the operations themselves do not matter: the deques'
//! own (relaxed or release/acquire) index updates and reads are enough.
//!
//! Take a poster P that pushed an item and a hub H that goes idle
//! concurrently, and suppose nobody takes the item. P's fence is F_n, H's is
//! F_a; S orders them one way or the other:
//!
//! 1. **F_n before F_a.** P's push is sequenced before F_n; H's re-check of
//!    that queue is sequenced after F_a: the re-check sees the item, and H
//!    does not block. (If H can start no search because half of the hubs
//!    search, then `searching` is non-zero: see case 2 (a).)
//! 2. **F_a before F_n.** H's `num_idlers` store (and, if it was
//!    searching, its decrement of `searching`) are sequenced before F_a;
//!    P's loads are after F_n, so P sees H's announcement or later values:
//!    - (a) P sees `searching != 0`: P relies on a searcher. A searcher stops
//!      counting only in `end_search` or `announce_idle`, each followed by
//!      a fence and a look at the queues. The last one to stop (the
//!      decrement that makes the count 0) either has its fence before F_n in
//!      S, and then P's load of `searching` after F_n would see that
//!      decrement or a later write, i.e. 0 or a newer searcher (whom P then
//!      relies on instead: the same argument, one searcher later), or its
//!      fence after F_n, and then its look sees P's item (as in case 1): a
//!      last searcher notifies an idler, an announced hub does not block.
//!    - (b) P sees `searching == 0` and `num_idlers != 0`: P takes an idler
//!      off the list under the lock (re-checking `searching` there: a
//!      searcher that started meanwhile is case (a)) and counts it as a
//!      searcher, then rings its doorbell. The doorbell cannot lose that ring
//!      (`doorbell.rs`): the woken hub finds itself off the list, searches, and
//!      either takes the item or is a searcher of case (a).
//!    - (c) P sees `num_idlers == 0`: P read H's store or a later one
//!      (`num_idlers` is only written under the lock, so its
//!      modification order is the lock order). A later 0 means H was taken
//!      off the list after it announced: by a notifier, who counted H as a
//!      searcher and rang its doorbell (H then stops counting only through
//!      `end_search` or `announce_idle`, each followed by a fence and a
//!      look at the queues: the argument of case (a), with H as the last
//!      searcher), or by H itself in `cancel_idle`, after which H looks for
//!      work again: its next idle period is a new announcement with a new F_a, to
//!      which the case split applies again.
//!
//! Either P sees H (and wakes it or a searcher takes over), or H sees the
//! item: a hub that goes idle cannot miss stealable work pushed
//! concurrently. The same pairs protect a last searcher against a poster
//! (F_l against F_n).
//!
//! Work that does not go through this protocol:
//!
//! - **Wake-ups of started greenlets** are pushed to the owning hub's inbox
//!   and that hub's doorbell is rung directly (`Inbox::push_and_ring`). Here the
//!   doorbell orders them instead of a fence pair: the waker's swap to
//!   `NOTIFIED` is after its push, the hub's CAS to `PARKED` is after its
//!   re-check of the inbox, and both are read-modify-writes of one word, so
//!   one of them comes first: either the hub finds `NOTIFIED` and does not
//!   block (its next look at the inbox is ordered after the push by that
//!   swap), or the waker finds `PARKED` and writes the hub's eventfd.
//! - **Shutdown**: `begin_shutdown` stores the flag, then rings every hub's doorbell:
//!   the same argument as the inbox.
//!
//! `tests/loom_idle.rs` runs these steps (the functions above, not copies)
//! with one to three hubs against posters, inbox pushes and shutdown; taking
//! out any one of F_n, F_a or F_l makes loom find stranded work.

use crate::hub::queue::{Injector, Stealer};
use crate::loom::{AtomicUsize, Mutex, Ordering::SeqCst, fence};

/// The runtime as the idle protocol sees it: the queues a searching hub
/// takes from, and how to ring a hub's doorbell. `hub::shared::Shared`
/// implements it, and so do the loom models' runtimes (`tests/loom_idle.rs`),
/// which therefore run the provided methods (posting's notification and the
/// stealable-work check) and the steps of `search.rs` as the hubs do.
pub trait IdleRuntime {
    /// What the queues hold (`TaskRef`; a number in the models).
    type Item;
    /// The searching/idle bookkeeping.
    fn idle(&self) -> &Idle;
    /// The global queue of greenlets spawned from outside the hubs.
    fn injector(&self) -> &Injector<Self::Item>;
    /// How many hubs the runtime has.
    fn num_hubs(&self) -> usize;
    /// Hub `hub`'s stealable deque (M:N mode only).
    fn stealer(&self, hub: usize) -> Option<&Stealer<Self::Item>>;
    /// Whether hubs steal from each other (M:N mode).
    fn steals(&self) -> bool;
    /// Whether shutdown has begun (a hub going idle must not block
    /// through it).
    fn shutting_down(&self) -> bool;
    /// Rings hub `hub`'s doorbell (`HubRemote::ring`, `doorbell.rs`).
    fn ring_hub(&self, hub: usize);
    /// Hub `hub`'s queue of unstarted greenlets placed on it from outside
    /// (M:N mode only; `Shared::inject`), which searching hubs may steal
    /// from like its deque.
    #[inline]
    fn incoming(&self, hub: usize) -> Option<&Injector<Self::Item>> {
        let _ = hub;
        None
    }

    /// Posting stealable work, steps 2-4 (the caller pushed it): wakes a
    /// idle hub, counted as a searcher, unless a hub is searching.
    #[inline]
    fn notify_one(&self) {
        if let Some(hub) = self.idle().hub_to_notify() {
            self.ring_hub(hub);
        }
    }

    /// Whether any queue that a searching hub could take from is non-empty.
    #[inline]
    fn has_stealable_work(&self) -> bool {
        !self.injector().is_empty()
            || (0..self.num_hubs()).any(|i| {
                self.stealer(i).is_some_and(|s| !s.is_empty())
                    || self.incoming(i).is_some_and(|q| !q.is_empty())
            })
    }
}

/// Shared idle-hub bookkeeping for one runtime.
pub struct Idle {
    nhubs: usize,
    searching: AtomicUsize,
    num_idlers: AtomicUsize,
    idlers: Mutex<Vec<usize>>,
}

impl Idle {
    pub fn new(nhubs: usize) -> Idle {
        Idle {
            nhubs,
            searching: AtomicUsize::new(0),
            num_idlers: AtomicUsize::new(0),
            idlers: Mutex::new(Vec::with_capacity(nhubs)),
        }
    }

    /// After publishing stealable work: the hub to ring, if one should be.
    /// The returned hub is already counted as searching.
    pub fn hub_to_notify(&self) -> Option<usize> {
        fence(SeqCst);
        if self.searching.load(SeqCst) != 0 || self.num_idlers.load(SeqCst) == 0 {
            return None;
        }
        let mut idlers = self.idlers.lock();
        if self.searching.load(SeqCst) != 0 {
            return None;
        }
        let hub = idlers.pop()?;
        self.num_idlers.store(idlers.len(), SeqCst);
        self.searching.fetch_add(1, SeqCst);
        Some(hub)
    }

    /// How many hubs are on the sleeper list (asleep, or about to sleep).
    /// A racy hint for observers (the deadlock report's pre-check), never
    /// part of the protocol.
    pub fn idlers(&self) -> usize {
        self.num_idlers.load(SeqCst)
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

    /// Step 1 of going idle (the caller then re-checks every queue).
    pub fn announce_idle(&self, hub: usize, searching: bool) {
        let mut idlers = self.idlers.lock();
        debug_assert!(
            !idlers.contains(&hub),
            "Idle: hub {hub} announced idle while already on the idler list"
        );
        idlers.push(hub);
        self.num_idlers.store(idlers.len(), SeqCst);
        if searching {
            let prev = self.searching.fetch_sub(1, SeqCst);
            debug_assert!(
                prev > 0,
                "Idle: hub {hub} stopped searching but no hub counted as a searcher"
            );
        }
        drop(idlers);
        fence(SeqCst);
    }

    /// After a wake-up, or when the re-check found work: takes `hub` out of
    /// `idlers`. Returns `false` if it was no longer there, i.e. a notifier
    /// took it out and counted it as searching.
    pub fn cancel_idle(&self, hub: usize) -> bool {
        let mut idlers = self.idlers.lock();
        match idlers.iter().position(|&h| h == hub) {
            Some(i) => {
                idlers.swap_remove(i);
                self.num_idlers.store(idlers.len(), SeqCst);
                true
            }
            None => false,
        }
    }
}
