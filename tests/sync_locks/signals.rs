//! `Condvar`, `Barrier` and `WaitGroup` (part of the `sync_locks` test
//! target): producer/consumer, FIFO notify order, notify_all, timeouts,
//! plain threads on one side, and kills of blocked waiters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use greenhub::sync::{Barrier, Condvar, Mutex, WaitGroup};

use super::{assert_killed, settle, single, with_deadline};

#[test]
fn condvar_producer_consumer_all_modes() {
    with_deadline("condvar_pc", 60, || {
        for (mode, b) in super::common::mode_builders() {
            let sum = b.build().unwrap().block_on(|| {
                let s = Arc::new((Mutex::new(VecDeque::<usize>::new()), Condvar::new()));
                let consumers: Vec<_> = (0..3)
                    .map(|_| {
                        let s = s.clone();
                        greenhub::spawn(move || {
                            let (m, cv) = &*s;
                            let mut sum = 0;
                            loop {
                                let mut q = cv.wait_while(m.lock(), |q| q.is_empty());
                                match q.pop_front().unwrap() {
                                    0 => return sum,
                                    v => sum += v,
                                }
                            }
                        })
                    })
                    .collect();
                for v in (1..=100).chain([0, 0, 0]) {
                    s.0.lock().push_back(v);
                    s.1.notify_one();
                    if v % 10 == 0 {
                        greenhub::yield_now();
                    }
                }
                consumers
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<usize>()
            });
            assert_eq!(sum, 5050, "{mode}");
        }
    });
}

#[test]
fn condvar_fifo_notify_one_skips_killed_waiter() {
    let order = with_deadline("condvar_fifo", 30, || {
        single(|| {
            let s = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let s = s.clone();
                    greenhub::spawn(move || {
                        let g = s.0.lock();
                        s.1.wait(g).push(i);
                    })
                })
                .collect();
            settle();
            let mut hs = hs.into_iter();
            let (h0, h1) = (hs.next().unwrap(), hs.next().unwrap());
            assert_killed(h1);
            assert!(s.0.try_lock().is_some(), "a killed waiter holds the mutex");
            for _ in 0..3 {
                s.1.notify_one();
                settle();
            }
            h0.join().unwrap();
            hs.for_each(|h| h.join().unwrap());
            s.0.lock().clone()
        })
    });
    assert_eq!(order, [0, 2, 3]);
}

#[test]
fn condvar_notify_all_timeout_and_threads() {
    with_deadline("condvar_all", 60, || {
        for (mode, b) in super::common::mode_builders() {
            let s = Arc::new((Mutex::new(false), Condvar::new()));
            let woken = Arc::new(AtomicUsize::new(0));
            // A plain thread waits too; a greenlet notifies it.
            let (s2, w2) = (s.clone(), woken.clone());
            let t = std::thread::spawn(move || {
                drop(s2.1.wait_while(s2.0.lock(), |go| !*go));
                w2.fetch_add(1, SeqCst);
            });
            let (s3, w3) = (s.clone(), woken.clone());
            b.build().unwrap().block_on(move || {
                let (m, cv) = &*s3;
                let (g, res) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
                assert!(res.timed_out() && !*g, "{mode}");
                drop(g);
                let hs: Vec<_> = (0..5)
                    .map(|_| {
                        let (s, w) = (s3.clone(), w3.clone());
                        greenhub::spawn(move || {
                            drop(s.1.wait_while(s.0.lock(), |go| !*go));
                            w.fetch_add(1, SeqCst);
                        })
                    })
                    .collect();
                greenhub::sleep(Duration::from_millis(10));
                *m.lock() = true;
                cv.notify_all();
                hs.into_iter().for_each(|h| h.join().unwrap());
            });
            t.join().unwrap();
            assert_eq!(woken.load(SeqCst), 6, "{mode}");
        }
    });
}

#[test]
fn barrier_one_leader_per_generation() {
    with_deadline("barrier_gens", 60, || {
        for (mode, b) in super::common::mode_builders() {
            let leaders = b.build().unwrap().block_on(|| {
                const N: usize = 4;
                const ROUNDS: usize = 6;
                let barrier = Arc::new(Barrier::new(N));
                let leaders = Arc::new(Mutex::new(vec![0; ROUNDS]));
                let arrived = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..N)
                    .map(|_| {
                        let (b, l, a) = (barrier.clone(), leaders.clone(), arrived.clone());
                        greenhub::spawn(move || {
                            for round in 0..ROUNDS {
                                a.fetch_add(1, SeqCst);
                                let r = b.wait();
                                // Nobody leaves a round before all arrived.
                                assert!(a.load(SeqCst) >= (round + 1) * N);
                                if r.is_leader() {
                                    l.lock()[round] += 1;
                                }
                                greenhub::yield_now();
                            }
                        })
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                leaders.lock().clone()
            });
            assert_eq!(leaders, [1; 6], "{mode}");
        }
    });
}

#[test]
fn barrier_killed_or_timed_out_party_withdraws() {
    with_deadline("barrier_kill", 30, || {
        single(|| {
            let barrier = Arc::new(Barrier::new(3));
            let spawn = || {
                let b = barrier.clone();
                greenhub::spawn(move || b.wait().is_leader())
            };
            let first = spawn();
            let victim = spawn();
            settle();
            assert_killed(victim);
            assert!(barrier.wait_timeout(Duration::from_millis(5)).is_none());
            assert!(greenhub::timeout(Duration::from_millis(5), || barrier.wait()).is_err());
            assert!(!first.is_finished(), "released with too few parties");
            let second = spawn();
            let me = barrier.wait().is_leader();
            let leaders = [first.join().unwrap(), second.join().unwrap(), me];
            assert_eq!(leaders.iter().filter(|&&l| l).count(), 1);
            // A plain thread and a greenlet share the next round.
            let b = barrier.clone();
            let b2 = barrier.clone();
            let t = std::thread::spawn(move || b2.wait().is_leader());
            let g = greenhub::spawn(move || b.wait().is_leader());
            let mine = barrier.wait().is_leader();
            let n = [t.join().unwrap(), g.join().unwrap(), mine];
            assert_eq!(n.iter().filter(|&&l| l).count(), 1);
        })
    });
}

#[test]
fn wait_group_all_modes_threads_and_kills() {
    with_deadline("wait_group", 60, || {
        for (mode, b) in super::common::mode_builders() {
            let wg = Arc::new(WaitGroup::new());
            // Greenlets finish work a plain thread waits for.
            wg.add(8);
            let w = wg.clone();
            let t = std::thread::spawn(move || w.wait());
            let wg2 = wg.clone();
            b.build().unwrap().block_on(move || {
                let finished = Arc::new(AtomicUsize::new(0));
                for _ in 0..8 {
                    let (wg, f) = (wg2.clone(), finished.clone());
                    greenhub::spawn(move || {
                        greenhub::sleep(Duration::from_millis(2));
                        f.fetch_add(1, SeqCst);
                        wg.done();
                    });
                }
                wg2.wait();
                assert_eq!(finished.load(SeqCst), 8, "{mode}");
                // Next round: a waiter is killed, the others are still woken.
                wg2.add(1);
                assert!(!wg2.wait_timeout(Duration::from_millis(5)));
                let waiter = || {
                    let wg = wg2.clone();
                    greenhub::spawn(move || wg.wait())
                };
                let (a, victim, c) = (waiter(), waiter(), waiter());
                greenhub::sleep(Duration::from_millis(5));
                assert_killed(victim);
                wg2.done();
                a.join().unwrap();
                c.join().unwrap();
                assert!(wg2.wait_timeout(Duration::ZERO));
            });
            t.join().unwrap();
            assert_eq!(wg.count(), 0);
        }
    });
}

#[test]
fn wait_group_done_below_zero_panics() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let err = std::panic::catch_unwind(|| wg.done()).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("WaitGroup::done"), "unclear panic: {msg:?}");
    // Still usable.
    wg.add(1);
    wg.done();
    wg.wait();
}
