//! Work stealing and the soundness rule. In default M:N mode with two hubs,
//! greenlets spawned by one (busy) greenlet are stolen by the idle hub and run
//! on more than one OS thread, while every started greenlet observes one and
//! the same `ThreadId` (and `thread_local!` address) across many `yield_now`,
//! `sleep`, `park` and `join` calls for its whole life. In pinned mode every
//! greenlet spawned from a hub runs on that hub's thread (even when the other
//! hub is idle), and a `thread_local!` counter incremented across yields
//! stays consistent per greenlet and per hub.

mod common;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::with_deadline;
use greenhub::{Builder, Greenlet};

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn tls_addr() -> usize {
    COUNTER.with(|c| c as *const Cell<u64> as usize)
}

fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A plain thread that unparks greenlets on request, so that some wake-ups
/// of the test come from outside the runtime (through the owner's inbox).
fn unparker() -> mpsc::Sender<(Greenlet, Arc<AtomicBool>)> {
    let (tx, rx) = mpsc::channel::<(Greenlet, Arc<AtomicBool>)>();
    std::thread::spawn(move || {
        for (g, flag) in rx {
            flag.store(true, Ordering::Release);
            g.unpark();
        }
    });
    tx
}

/// What a greenlet saw of its OS thread.
struct Observed {
    first: ThreadId,
    /// Points at which the thread (or the thread-local address) differed
    /// from the first.
    moves: usize,
    checks: usize,
}

/// Blocks in every way, checking after each switch that it is still on the
/// thread it started on.
fn wander(i: usize, unpark_tx: &mpsc::Sender<(Greenlet, Arc<AtomicBool>)>) -> Observed {
    let first = std::thread::current().id();
    let addr = tls_addr();
    let mut obs = Observed {
        first,
        moves: 0,
        checks: 0,
    };
    let check = |obs: &mut Observed| {
        obs.checks += 1;
        if std::thread::current().id() != first || tls_addr() != addr {
            obs.moves += 1;
        }
    };
    for round in 0..8 {
        greenhub::yield_now();
        check(&mut obs);
        greenhub::sleep(Duration::ZERO);
        check(&mut obs);
        greenhub::sleep(Duration::from_micros(200 + (i as u64 % 5) * 100));
        check(&mut obs);
        greenhub::greenlet::park_timeout(Duration::from_micros(300));
        check(&mut obs);
        // A real park, woken from a plain thread.
        let flag = Arc::new(AtomicBool::new(false));
        unpark_tx.send((greenhub::current(), flag.clone())).unwrap();
        while !flag.load(Ordering::Acquire) {
            greenhub::park();
        }
        check(&mut obs);
        // A join of a grandchild, which may itself run on either hub.
        if round % 4 == 0 {
            let gc = greenhub::spawn(move || {
                let t = std::thread::current().id();
                greenhub::yield_now();
                greenhub::sleep(Duration::from_micros(100));
                (t == std::thread::current().id(), round)
            });
            let (stayed, r) = gc.join().unwrap();
            assert!(stayed, "a grandchild moved");
            assert_eq!(r, round);
            check(&mut obs);
        }
    }
    obs
}

#[test]
fn mn_steals_unstarted_greenlets_but_never_moves_started_ones() {
    with_deadline("mn_steals_unstarted", 120, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let (spawner, firsts, moves, checks, stolen_while_busy) = rt.block_on(|| {
            let spawner = std::thread::current().id();
            let tx = unparker();
            const N: usize = 400;
            let started = Arc::new(AtomicUsize::new(0));
            let elsewhere = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let tx = tx.clone();
                    let (started, elsewhere) = (started.clone(), elsewhere.clone());
                    greenhub::spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        if std::thread::current().id() != spawner {
                            elsewhere.fetch_add(1, Ordering::SeqCst);
                        }
                        // A little CPU work first, so that the other hub
                        // cannot drain the whole queue alone in no time.
                        busy(Duration::from_micros(500));
                        wander(i, &tx)
                    })
                })
                .collect();
            // Stay busy without blocking: this hub cannot run any of them, so
            // whatever starts now was stolen by the other hub.
            let t = Instant::now();
            while elsewhere.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(30) {
                std::hint::spin_loop();
            }
            let stolen_while_busy = started.load(Ordering::SeqCst);
            let mut firsts = Vec::new();
            let (mut moves, mut checks) = (0, 0);
            for h in handles {
                let o = h.join().unwrap();
                firsts.push(o.first);
                moves += o.moves;
                checks += o.checks;
            }
            (spawner, firsts, moves, checks, stolen_while_busy)
        });
        assert!(
            stolen_while_busy > 0,
            "no greenlet was stolen while the spawner was busy"
        );
        let threads: HashSet<_> = firsts.iter().copied().collect();
        assert_eq!(
            threads.len(),
            2,
            "the greenlets of one spawner ran on {} OS thread(s)",
            threads.len()
        );
        let on_spawner = firsts.iter().filter(|&&t| t == spawner).count();
        assert!(on_spawner > 0 && on_spawner < firsts.len());
        assert!(checks >= 400 * 8 * 5);
        assert_eq!(
            moves, 0,
            "a started greenlet changed OS thread {moves} time(s)"
        );
    });
}

#[test]
fn mn_greenlets_from_outside_are_spread_and_stay_put() {
    with_deadline("mn_greenlets_from_outside", 120, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let tx = unparker();
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let tx = tx.clone();
                rt.spawn(move || {
                    busy(Duration::from_micros(500));
                    wander(i, &tx)
                })
            })
            .collect();
        let obs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(obs.iter().map(|o| o.moves).sum::<usize>(), 0);
        let threads: HashSet<_> = obs.iter().map(|o| o.first).collect();
        assert_eq!(
            threads.len(),
            2,
            "both hubs ran greenlets injected from outside"
        );
    });
}

/// Placement never strands work: greenlets spawned from outside are placed
/// round robin on the hubs' `incoming` queues, so half of them land on a hub
/// that is stuck in a greenlet that never gives it back; the idle hub must
/// steal those and run all of them while that hub is still stuck.
#[test]
fn mn_greenlets_placed_on_a_stuck_hub_are_stolen() {
    with_deadline("mn_placed_on_a_stuck_hub", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let stuck_on = Arc::new(Mutex::new(None));
        let blocker = {
            let (release, stuck_on) = (release.clone(), stuck_on.clone());
            rt.spawn(move || {
                *stuck_on.lock().unwrap() = Some(std::thread::current().id());
                while !release.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
        };
        while stuck_on.lock().unwrap().is_none() {
            std::thread::yield_now();
        }
        let stuck = stuck_on.lock().unwrap().unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| rt.spawn(move || (i, std::thread::current().id())))
            .collect();
        let ran: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            ran.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        assert!(
            ran.iter().all(|r| r.1 != stuck),
            "all ran on the free hub while the other was stuck: {ran:?}"
        );
        assert!(!release.load(Ordering::Acquire));
        release.store(true, Ordering::Release);
        blocker.join().unwrap();
        let total = rt.handle().metrics().total();
        assert!(total.stolen >= 1, "the free hub stole from the stuck one");
    });
}

#[test]
fn pinned_greenlets_stay_on_their_spawners_hub() {
    with_deadline("pinned_greenlets_stay", 120, || {
        let rt = Builder::new().pinned().hubs(2).build().unwrap();
        let tx = unparker();
        // Roots come from outside and land on either hub; each spawns children.
        let roots: Vec<_> = (0..6)
            .map(|r| {
                let tx = tx.clone();
                rt.spawn(move || {
                    let home = std::thread::current().id();
                    let started = Arc::new(AtomicUsize::new(0));
                    let children: Vec<_> = (0..50)
                        .map(|i| {
                            let (tx, started) = (tx.clone(), started.clone());
                            greenhub::spawn(move || {
                                started.fetch_add(1, Ordering::SeqCst);
                                let o = wander(r * 100 + i, &tx);
                                (o.first, o.moves)
                            })
                        })
                        .collect();
                    // Busy: in pinned mode nothing is stolen, even though the
                    // other hub may be idle, so no child has started yet.
                    busy(Duration::from_millis(20));
                    let started_while_busy = started.load(Ordering::SeqCst);
                    let mut moves = 0;
                    let mut elsewhere = 0;
                    for h in children {
                        let (first, m) = h.join().unwrap();
                        moves += m;
                        if first != home {
                            elsewhere += 1;
                        }
                    }
                    (home, started_while_busy, elsewhere, moves)
                })
            })
            .collect();
        for h in roots {
            let (_home, started_while_busy, elsewhere, moves) = h.join().unwrap();
            assert_eq!(
                started_while_busy, 0,
                "a child started while its hub was busy"
            );
            assert_eq!(elsewhere, 0, "a child ran on another hub than its spawner");
            assert_eq!(moves, 0, "a started child changed thread");
        }
    });
}

#[test]
fn pinned_thread_local_counter_is_consistent() {
    with_deadline("pinned_thread_local_counter", 120, || {
        const ROOTS: usize = 4;
        const CHILDREN: usize = 25;
        const ITERS: u64 = 200;
        let rt = Builder::new().pinned().hubs(2).build().unwrap();
        let roots_done = Arc::new(AtomicUsize::new(0));
        let roots: Vec<_> = (0..ROOTS)
            .map(|_| {
                let roots_done = roots_done.clone();
                rt.spawn(move || {
                    let home = std::thread::current().id();
                    let addr = tls_addr();
                    let children: Vec<_> = (0..CHILDREN)
                        .map(|c| {
                            greenhub::spawn(move || {
                                let addr = tls_addr();
                                let mut mine = 0u64;
                                let mut torn = 0;
                                for k in 0..ITERS {
                                    // Read-modify-write with no switch in
                                    // between: on a pinned hub no other
                                    // greenlet runs at the same time.
                                    let before = COUNTER.with(|n| {
                                        let v = n.get();
                                        n.set(v + 1);
                                        v
                                    });
                                    mine += 1;
                                    if COUNTER.with(Cell::get) != before + 1 {
                                        torn += 1;
                                    }
                                    match (k + c as u64) % 3 {
                                        0 => greenhub::yield_now(),
                                        1 => greenhub::sleep(Duration::ZERO),
                                        _ => greenhub::sleep(Duration::from_micros(50)),
                                    }
                                    if tls_addr() != addr {
                                        torn += 1_000_000;
                                    }
                                }
                                (std::thread::current().id(), mine, torn)
                            })
                        })
                        .collect();
                    let mut mine = 0;
                    for h in children {
                        let (t, n, torn) = h.join().unwrap();
                        assert_eq!(t, home, "a child left its hub");
                        assert_eq!(torn, 0, "the thread-local was not consistent");
                        mine += n;
                    }
                    // Wait (without blocking the hub) until every root's
                    // children are done, then read this hub's counter.
                    roots_done.fetch_add(1, Ordering::SeqCst);
                    while roots_done.load(Ordering::SeqCst) < ROOTS {
                        greenhub::sleep(Duration::from_millis(1));
                    }
                    assert_eq!(tls_addr(), addr);
                    (home, mine, COUNTER.with(Cell::get))
                })
            })
            .collect();
        let results: Vec<_> = roots.into_iter().map(|h| h.join().unwrap()).collect();
        // Per hub thread: the counter equals the increments of the children
        // that ran there, and every root on that thread read the same value.
        let mut expected: HashMap<ThreadId, u64> = HashMap::new();
        for (t, mine, _) in &results {
            *expected.entry(*t).or_default() += mine;
        }
        for (t, _, read) in &results {
            assert_eq!(
                *read, expected[t],
                "hub counter != its greenlets' increments"
            );
        }
        assert_eq!(
            expected.values().sum::<u64>(),
            ROOTS as u64 * CHILDREN as u64 * ITERS
        );
    });
}

#[test]
fn single_threaded_runs_everything_on_one_thread() {
    with_deadline("single_threaded_one_thread", 60, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let s = seen.clone();
        rt.block_on(move || {
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let s = s.clone();
                    greenhub::spawn(move || {
                        for _ in 0..5 {
                            s.lock().unwrap().insert(std::thread::current().id());
                            greenhub::yield_now();
                        }
                    })
                })
                .collect();
            busy(Duration::from_millis(5));
            for h in hs {
                h.join().unwrap();
            }
            s.lock().unwrap().insert(std::thread::current().id());
        });
        // Joined from outside too.
        let s = seen.clone();
        rt.spawn(move || s.lock().unwrap().insert(std::thread::current().id()))
            .join()
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}
