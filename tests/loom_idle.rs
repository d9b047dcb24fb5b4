//! Loom models of **idle-hub park vs. push** ("no stranded work"): the
//! idle-hub protocol of `src/hub/idle.rs` (searching hubs and idlers, the
//! Dekker pair between a poster and a hub going idle) together with the
//! hub parker of `src/hub/doorbell.rs` (`prepare_idle`/`finish_idle` vs.
//! `unpark`), as `src/hub/mod.rs` composes them (`run`, `next_local`,
//! `search`, `leave_search`, `sleep`, `park`) and as `src/hub/shared.rs`
//! and `src/hub/remote.rs` post work (`inject`, also its M:N placement on
//! a hub's `incoming`; `notify_one`, `HubRemote::push`/`unpark`).
//!
//! Each hub is a loom thread that runs greenhub's own steps of the hub loop:
//! [`SearchHub::search_shared`] (step 2: in M:N mode
//! [`SearchHub::search_stealable`]: injector, search permit, steal,
//! `leave_search` with its last-searcher hand-off; in pinned mode the
//! injector) and
//! [`SearchHub::go_idle`] (step 3: announce, re-check every source,
//! park, take itself off the idler list), parked with the real
//! [`Doorbell::idle_with`]; work is posted with the real
//! [`IdleRuntime::notify_one`] and `Inbox::push_and_ring`, and hubs are
//! unparked with the real `Doorbell::ring_with`. These are the functions
//! `HubContext` runs (`src/hub/search.rs`), over the real [`Idle`],
//! [`Doorbell`], [`Inbox`], [`StealQueue`]/[`Stealer`] and [`Injector`]:
//! the model's `Shared` and `Hub` only implement the accessors of
//! [`IdleRuntime`] and [`SearchHub`].
//!
//! Glue that stays here: the loop that calls the steps (`HubContext::run`
//! less timers, the fairness tick and the shutdown phases: local queues
//! first, then the shutdown check, then search, then sleep), and the
//! stand-in for `mio::Poll`: a [`Driver`], a sticky flag under a loom mutex
//! plus a condvar, standing in for `epoll_wait` on the hub's eventfd-backed
//! `mio::Waker` (a wake written before the hub blocks still ends the block;
//! the block consumes it).
//!
//! Work items are numbers. Running one counts it; whoever runs the last item
//! starts a shutdown the way `Shared::begin_shutdown` does (set the flag,
//! unpark every hub), and a hub leaves its loop when it sees the flag with
//! no local work (a stand-in for `shutdown_step`).
//!
//! Invariants asserted:
//!
//! - **no stranded work**: every item posted is run. If an item could sit in
//!   a queue while every hub is idle, the hubs would block in their drivers
//!   forever and loom reports a deadlock;
//! - **each item runs exactly once**;
//! - **the idle bookkeeping balances**: once every hub is done, none is on
//!   the idler list and `searching` counts exactly the hubs that left
//!   their loop (at shutdown) while counted as searchers (a leaked count
//!   would make every later `hub_to_notify` return `None`, stranding all
//!   later work).
//!
//! Under loom the deques' `is_empty` reads a published length (an atomic,
//! not the stand-in's lock), like crossbeam's lock-free `is_empty`, so the
//! models see the protocol's own fences at work.
//!
//! Does the model bite? Each mutation below was made in `src`, then undone,
//! and loom failed the models named:
//!
//! - `SearchHub::go_idle` does not re-check the injector:
//!   `pinned_two_idle_hubs_vs_inject` (in M:N mode `has_stealable_work`
//!   re-checks it as well);
//! - `go_idle` does not re-check the stealable deques:
//!   `idle_hub_vs_spawn_on_busy_hub`, `two_idle_hubs_vs_two_spawns_on_busy_hub`;
//! - `IdleRuntime::has_stealable_work` does not look at the hubs'
//!   `incoming` queues: `idle_hub_vs_inject_placed_on_busy_hub`;
//! - no fence in `Idle::announce_idle` (F_a), or none in
//!   `Idle::hub_to_notify` (F_n): every model but `idle_hub_vs_inbox_push`;
//! - no fence in `Idle::end_search` (F_l), or no hand-off by the last
//!   searcher in `SearchHub::leave_search`: `two_idle_hubs_vs_two_busy_spawns`;
//! - `Inbox::push_and_ring` unparks before it pushes:
//!   `idle_hub_vs_inbox_push`;
//! - `Doorbell::prepare_idle` parks even when a notification is pending:
//!   every model.
//!
//! Each failure is a deadlock: every hub blocked in its driver with work
//! left in a queue.

#![cfg(loom)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use greenhub::__private::{
    Doorbell, Idle, IdleRuntime, Inbox, Injector, SearchHub, StealQueue, Stealer,
};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// Stands in for a hub's `mio::Poll` and its eventfd `mio::Waker`.
struct Driver {
    /// An eventfd written since the hub last returned from a block.
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            woken: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    /// `mio::Waker::wake`.
    fn wake(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_one();
    }

    /// `Poll::poll` with no timeout: returns once a wake was written
    /// (before or during the call), consuming it.
    fn block(&self) {
        let mut woken = self.woken.lock().unwrap();
        while !*woken {
            woken = self.cv.wait(woken).unwrap();
        }
        *woken = false;
    }
}

/// `HubRemote`: the part of a hub other threads touch.
struct Remote {
    inbox: Inbox<usize>,
    doorbell: Doorbell,
    driver: Driver,
    stealer: Option<Stealer<usize>>,
    /// `HubRemote::incoming`: greenlets placed on this hub from outside.
    incoming: Injector<usize>,
}

impl Remote {
    /// `HubRemote::ring`: returns whether the hub was idle (and woken).
    fn ring(&self) -> bool {
        let idle = self.doorbell.ring();
        if idle {
            self.driver.wake();
        }
        idle
    }

    /// `HubRemote::push`: a started greenlet of this hub, woken elsewhere.
    /// (The shutdown counter `pending` is left out.)
    fn push(&self, item: usize) {
        self.inbox
            .push_and_ring(item, &self.doorbell, || self.driver.wake())
            .expect("inbox closed");
    }
}

/// `Shared`, in M:N (stealing) or pinned mode.
struct Shared {
    hubs: Vec<Remote>,
    /// M:N mode (hubs have stealable deques); else pinned.
    steals: bool,
    injector: Injector<usize>,
    idle: Idle,
    shutdown: AtomicBool,
    /// Per item: how many times it ran.
    ran: Vec<AtomicUsize>,
    /// Items run so far, all together.
    total_ran: AtomicUsize,
    /// Set (under its lock) when every item has run; while it is unset, a
    /// hub running an item in `busy` mode blocks on `cv`.
    all_ran: Mutex<bool>,
    cv: Condvar,
    /// Each item keeps the hub that runs it busy until every item has run
    /// (a greenlet that never gives its hub back to the loop): no hub may
    /// count on running a second item, so each needs a hub of its own.
    busy: bool,
}

impl IdleRuntime for Shared {
    type Item = usize;

    fn idle(&self) -> &Idle {
        &self.idle
    }

    fn injector(&self) -> &Injector<usize> {
        &self.injector
    }

    fn num_hubs(&self) -> usize {
        self.hubs.len()
    }

    fn stealer(&self, hub: usize) -> Option<&Stealer<usize>> {
        self.hubs[hub].stealer.as_ref()
    }

    fn steals(&self) -> bool {
        self.steals
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.load(Acquire)
    }

    fn ring_hub(&self, hub: usize) {
        self.hubs[hub].ring();
    }

    fn incoming(&self, hub: usize) -> Option<&Injector<usize>> {
        self.steals.then(|| &self.hubs[hub].incoming)
    }
}

impl Shared {
    /// Builds the shared state (M:N mode) and each hub's deque of unstarted
    /// greenlets.
    fn new(nhubs: usize, nitems: usize) -> (Arc<Shared>, Vec<StealQueue<usize>>) {
        Shared::with_mode(nhubs, nitems, true, false)
    }

    /// As `new`, in M:N mode if `steals`, else in pinned mode (no hub's
    /// deque is stealable); in `busy` mode (see the field) if `busy`.
    fn with_mode(
        nhubs: usize,
        nitems: usize,
        steals: bool,
        busy: bool,
    ) -> (Arc<Shared>, Vec<StealQueue<usize>>) {
        let fresh: Vec<StealQueue<usize>> = (0..nhubs).map(|_| StealQueue::new()).collect();
        let shared = Shared {
            hubs: fresh
                .iter()
                .map(|q| Remote {
                    inbox: Inbox::new(),
                    doorbell: Doorbell::default(),
                    driver: Driver::new(),
                    stealer: steals.then(|| q.stealer()),
                    incoming: Injector::new(),
                })
                .collect(),
            steals,
            injector: Injector::new(),
            idle: Idle::new(nhubs),
            shutdown: AtomicBool::new(false),
            ran: (0..nitems).map(|_| AtomicUsize::new(0)).collect(),
            total_ran: AtomicUsize::new(0),
            all_ran: Mutex::new(false),
            cv: Condvar::new(),
            busy,
        };
        (Arc::new(shared), fresh)
    }

    /// `Shared::inject` from a thread outside the hubs (the shutdown
    /// re-check after the push is left out): push, then the real
    /// `notify_one`.
    fn inject(&self, item: usize) {
        self.injector.push(item);
        self.notify_one();
    }

    /// `Shared::inject` in M:N mode with several hubs: place the greenlet
    /// on hub `hub`'s `incoming`, ring that hub, and if it was not idle,
    /// the real `notify_one`.
    fn inject_placed(&self, hub: usize, item: usize) {
        self.hubs[hub].incoming.push(item);
        if !self.hubs[hub].ring() {
            self.notify_one();
        }
    }

    /// `HubContext::spawn` in M:N mode, on a hub that stays busy: push to
    /// its deque, then the real `notify_one`.
    fn spawn_on(&self, fresh: &StealQueue<usize>, item: usize) {
        fresh.push(item);
        self.notify_one();
    }

    /// `Shared::begin_shutdown`.
    fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        for i in 0..self.hubs.len() {
            self.ring_hub(i);
        }
    }

    /// After every thread is done: each item ran exactly once and the idle
    /// bookkeeping balances. `still_searching`: how many hubs left their
    /// loop (at shutdown) while counted as searchers; exactly those counts
    /// must remain.
    fn check_end(&self, still_searching: usize) {
        for (item, n) in self.ran.iter().enumerate() {
            assert_eq!(n.load(SeqCst), 1, "item {item} ran {n:?} times");
        }
        for i in 0..self.hubs.len() {
            assert!(!self.idle.cancel_idle(i), "hub {i} left on the idler list");
        }
        // `searching` is exactly `still_searching`: ending their searches
        // brings it to 0 (the last `end_search` sees 1), then we may start
        // one and are the last searcher when we end it.
        for k in (0..still_searching).rev() {
            assert_eq!(self.idle.end_search(), k == 0, "searching count wrong");
        }
        assert!(self.idle.try_start_search(), "searching count leaked");
        assert!(self.idle.end_search(), "searching count leaked");
        assert!(self.idle.hub_to_notify().is_none());
    }
}

/// `HubContext`: one hub's thread-owned state and loop.
struct Hub {
    index: usize,
    shared: Arc<Shared>,
    fresh: StealQueue<usize>,
    ready: RefCell<VecDeque<usize>>,
    /// Whether this hub counts in `Idle::searching`.
    searching: Cell<bool>,
}

impl SearchHub for Hub {
    type Runtime = Shared;

    fn runtime(&self) -> &Shared {
        &self.shared
    }

    fn index(&self) -> usize {
        self.index
    }

    fn fresh(&self) -> &StealQueue<usize> {
        &self.fresh
    }

    fn inbox(&self) -> &Inbox<usize> {
        &self.remote().inbox
    }

    fn searching(&self) -> &Cell<bool> {
        &self.searching
    }

    /// Every other hub in index order, from the next one on.
    fn steal_start(&self) -> usize {
        self.index + 1
    }
}

impl Hub {
    fn new(index: usize, shared: &Arc<Shared>, fresh: StealQueue<usize>) -> Hub {
        Hub {
            index,
            shared: shared.clone(),
            fresh,
            ready: RefCell::new(VecDeque::new()),
            searching: Cell::new(false),
        }
    }

    fn remote(&self) -> &Remote {
        &self.shared.hubs[self.index]
    }

    /// `HubContext::run`, until shutdown. Returns whether the hub still
    /// counts as a searcher when it leaves.
    fn run(self) -> bool {
        loop {
            if let Some(item) = self.next_local() {
                self.run_item(item);
                continue;
            }
            if self.shared.shutdown.load(Acquire) {
                break;
            }
            // `HubContext::search` (no timers; `ready` is empty here).
            if let Some(item) = self.search_shared() {
                self.run_item(item);
                continue;
            }
            // `HubContext::sleep` (no timers, no stack cache).
            let remote = self.remote();
            self.go_idle(|| remote.doorbell.idle_with(|| remote.driver.block()));
        }
        self.searching.get()
    }

    fn run_item(&self, item: usize) {
        let shared = &self.shared;
        shared.ran[item].fetch_add(1, SeqCst);
        let done = shared.total_ran.fetch_add(1, SeqCst) + 1;
        if done == shared.ran.len() {
            *shared.all_ran.lock().unwrap() = true;
            shared.cv.notify_all();
            shared.begin_shutdown();
        } else if shared.busy {
            let mut all_ran = shared.all_ran.lock().unwrap();
            while !*all_ran {
                all_ran = shared.cv.wait(all_ran).unwrap();
            }
        }
    }

    /// `HubContext::next_local` (no timers, no fairness tick): `ready`,
    /// then `fresh`, then the inbox, then `incoming` (`take_incoming`).
    fn next_local(&self) -> Option<usize> {
        if let Some(item) = self.ready.borrow_mut().pop_front() {
            return Some(item);
        }
        if let Some(item) = self.fresh.pop() {
            return Some(item);
        }
        {
            let mut ready = self.ready.borrow_mut();
            if self.remote().inbox.drain_into(&mut ready) > 0 {
                return ready.pop_front();
            }
        }
        let incoming = &self.remote().incoming;
        if incoming.is_empty() {
            return None;
        }
        incoming.steal_into(&self.fresh)
    }
}

type Join = thread::JoinHandle<bool>;

/// Spawns hub `index` running its loop.
fn spawn_hub(index: usize, shared: &Arc<Shared>, fresh: StealQueue<usize>) -> Join {
    let hub = Hub::new(index, shared, fresh);
    thread::spawn(move || hub.run())
}

/// One hub going idle while a thread outside the runtime injects a greenlet
/// (`Shared::inject`: push to the injector, then `notify_one`).
#[test]
fn idle_hub_vs_inject() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(1, 1);
        let hub = spawn_hub(0, &shared, fresh.pop().unwrap());
        let poster = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject(0))
        };
        poster.join().unwrap();
        let searching = hub.join().unwrap();
        shared.check_end(searching as usize);
    });
}

/// Hub 0 going idle while busy hub 1 spawns a greenlet onto its own deque
/// (`HubContext::spawn` in M:N mode: push to `fresh`, then `notify_one`)
/// and then stays busy (never looks at its deque again): hub 0 must steal
/// it.
#[test]
fn idle_hub_vs_spawn_on_busy_hub() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(2, 1);
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub1 = {
            let shared = shared.clone();
            thread::spawn(move || shared.spawn_on(&fresh1, 0))
        };
        hub1.join().unwrap();
        let searching = hub0.join().unwrap();
        shared.check_end(searching as usize);
    });
}

/// The direct path: a hub going idle while another thread wakes one of its
/// started greenlets (`hub::schedule` from another thread: push to the
/// hub's inbox, then `Doorbell::unpark` and the driver wake). Wake-ups of
/// started greenlets bypass `Idle`: only the hub's own sleep re-check and
/// its parker stand between the push and a lost wake-up.
#[test]
fn idle_hub_vs_inbox_push() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(1, 1);
        let hub = spawn_hub(0, &shared, fresh.pop().unwrap());
        let waker = {
            let shared = shared.clone();
            thread::spawn(move || shared.hubs[0].push(0))
        };
        waker.join().unwrap();
        let searching = hub.join().unwrap();
        shared.check_end(searching as usize);
    });
}

/// Two hubs going idle at once while one greenlet is injected: exactly one
/// runs it (the other may sleep through; the shutdown that follows must
/// still wake it), and the searching/sleeper counts balance.
#[test]
fn two_idle_hubs_vs_inject() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(2, 1);
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub1 = spawn_hub(1, &shared, fresh1);
        let poster = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject(0))
        };
        poster.join().unwrap();
        let searching = [hub0.join().unwrap(), hub1.join().unwrap()];
        shared.check_end(searching.iter().filter(|&&s| s).count());
    });
}

/// Two hubs of a pinned runtime (no stealing: `search_shared` takes from
/// the injector only) going idle at once while one greenlet is injected:
/// exactly one runs it, and the counts balance. Here the sleeper's re-check
/// of the injector is the only one that can see the item.
#[test]
fn pinned_two_idle_hubs_vs_inject() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::with_mode(2, 1, false, false);
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub1 = spawn_hub(1, &shared, fresh1);
        let poster = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject(0))
        };
        poster.join().unwrap();
        let searching = [hub0.join().unwrap(), hub1.join().unwrap()];
        shared.check_end(searching.iter().filter(|&&s| s).count());
    });
}

/// Two idle hubs while busy hub 1 spawns two greenlets onto its own deque
/// (push, `notify_one`, twice) and stays busy: both are stolen and run
/// exactly once, whichever hubs wake (the first notification wakes one hub
/// as a searcher; the second is skipped while it searches; the last
/// searcher that still sees work hands the search on).
#[test]
fn two_idle_hubs_vs_two_spawns_on_busy_hub() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(3, 2);
        let fresh2 = fresh.pop().unwrap();
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub2 = spawn_hub(2, &shared, fresh2);
        let hub1 = {
            let shared = shared.clone();
            thread::spawn(move || {
                for item in 0..2 {
                    shared.spawn_on(&fresh1, item);
                }
            })
        };
        hub1.join().unwrap();
        let searching = [hub0.join().unwrap(), hub2.join().unwrap()];
        shared.check_end(searching.iter().filter(|&&s| s).count());
    });
}

/// As `two_idle_hubs_vs_two_spawns_on_busy_hub`, but each greenlet keeps
/// the hub that runs it busy until both have run, so both idle hubs must
/// wake: the first notification wakes one hub as a searcher, the second is
/// skipped while it searches, and that searcher, the last one, must hand
/// the search on when it leaves it with the other greenlet still visible
/// (`leave_search`), or that greenlet is stranded.
#[test]
fn two_idle_hubs_vs_two_busy_spawns() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::with_mode(3, 2, true, true);
        let fresh2 = fresh.pop().unwrap();
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub2 = spawn_hub(2, &shared, fresh2);
        let hub1 = {
            let shared = shared.clone();
            thread::spawn(move || {
                for item in 0..2 {
                    shared.spawn_on(&fresh1, item);
                }
            })
        };
        hub1.join().unwrap();
        let searching = [hub0.join().unwrap(), hub2.join().unwrap()];
        shared.check_end(searching.iter().filter(|&&s| s).count());
    });
}

/// Placement (`Shared::inject` in M:N mode): a thread outside the runtime
/// places a greenlet on busy hub 1 (its `incoming`; the ring finds hub 1
/// not idle, so `notify_one` follows) while hub 0 goes idle: hub 0 must
/// steal it from hub 1's `incoming`.
#[test]
fn idle_hub_vs_inject_placed_on_busy_hub() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::new(2, 1);
        let _busy = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let poster = {
            let shared = shared.clone();
            thread::spawn(move || shared.inject_placed(1, 0))
        };
        poster.join().unwrap();
        let searching = hub0.join().unwrap();
        shared.check_end(searching as usize);
    });
}

/// Placement on two idle hubs, one greenlet each (round robin), each
/// greenlet keeping its hub busy until both have run: both hubs must run
/// one, whichever rings and notifications land first.
#[test]
fn two_idle_hubs_vs_placed_busy_injects() {
    loom::model(|| {
        let (shared, mut fresh) = Shared::with_mode(2, 2, true, true);
        let fresh1 = fresh.pop().unwrap();
        let hub0 = spawn_hub(0, &shared, fresh.pop().unwrap());
        let hub1 = spawn_hub(1, &shared, fresh1);
        let poster = {
            let shared = shared.clone();
            thread::spawn(move || {
                shared.inject_placed(0, 0);
                shared.inject_placed(1, 1);
            })
        };
        poster.join().unwrap();
        let searching = [hub0.join().unwrap(), hub1.join().unwrap()];
        shared.check_end(searching.iter().filter(|&&s| s).count());
    });
}
