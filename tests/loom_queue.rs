//! Loom models of **steal vs. local pop**: a hub's deque of unstarted
//! greenlets (`src/hub/queue.rs`: `StealQueue`/`Stealer`, under loom the
//! mutex-based stand-in for `crossbeam-deque`) used as `src/hub/mod.rs` uses
//! it — the owner spawns onto it (`HubContext::spawn`: push, then
//! `notify_one`) and pops it (`next_local`: newest first, the oldest on a
//! fairness tick) while searching hubs steal
//! batches from it (`search`/`steal`: a search permit from `Idle`, then
//! `Stealer::steal_into` their own deque, then `leave_search`) and run their
//! own deque — together with the `searching` counter of the idle protocol
//! (`src/hub/idle.rs`).
//!
//! The owner and the thieves are loom threads. A thief loops "run my own
//! deque, else search" and stops when a search finds nothing (where the real
//! hub would go idle, which `tests/loom_idle.rs` models). Invariants
//! asserted:
//!
//! - **each greenlet runs exactly once** (never lost in a batch move, never
//!   taken by two hubs), and every deque is empty at the end;
//! - **the search permit bookkeeping balances**: at the end `searching` counts
//!   exactly the thieves that stopped while still searching (their next step
//!   would be `announce_idle`, which ends the search).
//!
//! (The cap on searchers, "at most half of the hubs", is a heuristic and is
//! not asserted: `try_start_search` checks and then increments, so racing
//! hubs may overshoot it, and with 3 hubs it admits 2.)

#![cfg(loom)]

use greenhub::__private::{Idle, StealQueue, Stealer};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

struct Shared {
    idle: Idle,
    /// The stealers of every hub's deque, by hub index.
    stealers: Vec<Stealer<usize>>,
    /// Per greenlet: how many times it ran.
    ran: Vec<AtomicUsize>,
}

impl Shared {
    fn new(nhubs: usize, nitems: usize) -> (Arc<Shared>, Vec<StealQueue<usize>>) {
        let queues: Vec<StealQueue<usize>> = (0..nhubs).map(|_| StealQueue::new()).collect();
        let shared = Shared {
            idle: Idle::new(nhubs),
            stealers: queues.iter().map(|q| q.stealer()).collect(),
            ran: (0..nitems).map(|_| AtomicUsize::new(0)).collect(),
        };
        (Arc::new(shared), queues)
    }

    fn run(&self, item: usize) {
        self.ran[item].fetch_add(1, SeqCst);
    }

    /// `Shared::has_stealable_work` (no injector in these models).
    fn has_stealable_work(&self) -> bool {
        self.stealers.iter().any(|s| !s.is_empty())
    }

    /// `Shared::notify_one`. No hub is idle in these models, so it must find
    /// nobody to wake.
    fn notify_one(&self) {
        assert_eq!(
            self.idle.hub_to_notify(),
            None,
            "woke a hub that is not asleep"
        );
    }

    fn check_end(&self, still_searching: usize) {
        for (item, n) in self.ran.iter().enumerate() {
            assert_eq!(n.load(SeqCst), 1, "greenlet {item} ran {n:?} times");
        }
        assert!(!self.has_stealable_work(), "a greenlet was left behind");
        for k in (0..still_searching).rev() {
            assert_eq!(self.idle.end_search(), k == 0, "searching count wrong");
        }
        assert!(self.idle.try_start_search(), "searching count leaked");
        assert!(self.idle.end_search(), "searching count leaked");
    }
}

/// The owning hub: spawns `items` onto its deque (each followed by
/// `notify_one`), then runs its deque until it is empty.
fn owner(shared: &Shared, fresh: &StealQueue<usize>, items: &[usize]) {
    for &item in items {
        fresh.push(item);
        shared.notify_one();
    }
    // `next_local`: the newest first, the oldest on a fairness tick (here
    // every other pop).
    let mut tick = 0;
    loop {
        tick += 1;
        let oldest = if tick % 2 == 0 {
            fresh.pop_oldest()
        } else {
            None
        };
        let Some(item) = oldest.or_else(|| fresh.pop()) else {
            break;
        };
        shared.run(item);
    }
}

/// A hub out of local work: `search` (search permit, steal a batch from the
/// other hubs into its own deque, `leave_search`), then run its own deque,
/// until a search finds nothing. Returns whether it still counts as a
/// searcher when it stops.
fn thief(shared: &Shared, me: usize, fresh: &StealQueue<usize>) -> bool {
    let nhubs = shared.stealers.len();
    let mut searching = false;
    loop {
        while let Some(item) = fresh.pop() {
            shared.run(item);
        }
        // `search`: the permit first (at most half of the hubs search).
        if !searching {
            if !shared.idle.try_start_search() {
                return false;
            }
            searching = true;
        }
        // `steal`: every other hub, in order.
        let found = (0..nhubs)
            .filter(|&v| v != me)
            .find_map(|v| shared.stealers[v].steal_into(fresh));
        let Some(item) = found else {
            return searching;
        };
        // `leave_search`.
        searching = false;
        if shared.idle.end_search() && shared.has_stealable_work() {
            shared.notify_one();
        }
        shared.run(item);
    }
}

/// Hub 1 spawns two greenlets onto its deque and runs them while idle hub
/// 0 searches and steals: each runs exactly once, on one hub or the other.
#[test]
fn steal_vs_spawn_and_pop() {
    loom::model(|| {
        let (shared, mut queues) = Shared::new(2, 2);
        let q1 = queues.pop().unwrap();
        let q0 = queues.pop().unwrap();
        let hub1 = {
            let shared = shared.clone();
            thread::spawn(move || owner(&shared, &q1, &[0, 1]))
        };
        let hub0 = {
            let shared = shared.clone();
            thread::spawn(move || thief(&shared, 0, &q0))
        };
        hub1.join().unwrap();
        let searching = hub0.join().unwrap();
        shared.check_end(searching as usize);
    });
}

/// Two idle hubs steal from a third hub's deque of three greenlets (so a
/// steal moves a batch: one to run, one into the thief's own deque, where
/// the other thief may steal it again) while the owner pops it.
#[test]
fn two_thieves_vs_pop() {
    loom::model(|| {
        let (shared, mut queues) = Shared::new(3, 3);
        let q2 = queues.pop().unwrap();
        for item in 0..3 {
            q2.push(item);
        }
        let thieves: Vec<_> = queues
            .into_iter()
            .enumerate()
            .map(|(me, q)| {
                let shared = shared.clone();
                thread::spawn(move || thief(&shared, me, &q))
            })
            .collect();
        owner(&shared, &q2, &[]);
        let searching = thieves
            .into_iter()
            .map(|t| t.join().unwrap() as usize)
            .sum();
        shared.check_end(searching);
    });
}
