//! The lock primitives of `greenhub::sync` (`Mutex`, `RwLock`, `Condvar`,
//! `Barrier`, `WaitGroup`): mutual exclusion under contention across hubs,
//! FIFO order (single-threaded, where arrival order is deterministic), plain
//! OS threads on one side, kills and timeouts of blocked waiters (the
//! primitive stays usable, no other waiter is skipped), and handoffs racing
//! with timeouts (the lock is never leaked nor lost).

mod common;
#[path = "sync_locks/signals.rs"]
mod signals;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::with_deadline;
use greenhub::sync::{Mutex, RwLock};
use greenhub::{Builder, JoinHandle};

fn single<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(f)
}

/// Lets every runnable greenlet run until it blocks (single-threaded mode).
fn settle() {
    greenhub::sleep(Duration::from_millis(5));
}

fn assert_killed<T: std::fmt::Debug>(h: JoinHandle<T>) {
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn mutex_excludes_under_contention() {
    with_deadline("mutex_contention", 60, || {
        for (mode, b) in common::mode_builders() {
            let n = b.build().unwrap().block_on(|| {
                let m = Arc::new(Mutex::new(0usize));
                let hs: Vec<_> = (0..16)
                    .map(|_| {
                        let m = m.clone();
                        greenhub::spawn(move || {
                            for _ in 0..100 {
                                let mut g = m.lock();
                                let v = *g;
                                greenhub::yield_now();
                                *g = v + 1;
                            }
                        })
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                Arc::try_unwrap(m).unwrap().into_inner()
            });
            assert_eq!(n, 1600, "{mode}: lost updates");
        }
    });
}

#[test]
fn mutex_fifo_handoff_without_barging() {
    let order = with_deadline("mutex_fifo", 30, || {
        single(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let g = m.lock();
            let hs: Vec<_> = (0..5)
                .map(|i| {
                    let m = m.clone();
                    greenhub::spawn(move || m.lock().push(i))
                })
                .collect();
            settle();
            assert!(m.try_lock().is_none(), "try_lock barged past waiters");
            drop(g);
            // The unlocker relocks at once: it must queue behind all five.
            m.lock().push(99);
            hs.into_iter().for_each(|h| h.join().unwrap());
            m.lock().clone()
        })
    });
    assert_eq!(order, [0, 1, 2, 3, 4, 99]);
}

#[test]
fn mutex_with_plain_threads() {
    with_deadline("mutex_threads", 60, || {
        for (mode, b) in common::mode_builders() {
            let rt = b.build().unwrap();
            let m = Arc::new(Mutex::new(0usize));
            // A thread holds the lock while greenlets queue for it.
            let held = Arc::new(AtomicBool::new(false));
            let (m2, h2) = (m.clone(), held.clone());
            let t = std::thread::spawn(move || {
                let mut g = m2.lock();
                h2.store(true, SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                *g += 100;
            });
            let m3 = m.clone();
            rt.block_on(move || {
                while !held.load(SeqCst) {
                    greenhub::sleep(Duration::from_millis(1));
                }
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        let m = m3.clone();
                        greenhub::spawn(move || *m.lock() += 1)
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                assert_eq!(*m3.lock(), 104, "{mode}");
            });
            t.join().unwrap();
            // A greenlet holds it while a thread waits for it.
            let m5 = m.clone();
            rt.block_on(move || {
                let g = m5.lock();
                let m4 = m5.clone();
                let t = std::thread::spawn(move || *m4.lock() += 1);
                greenhub::sleep(Duration::from_millis(10));
                assert_eq!(*g, 104);
                drop(g);
                t.join().unwrap();
            });
            assert_eq!(*m.lock(), 105, "{mode}");
        }
    });
}

#[test]
fn mutex_killed_and_timed_out_waiters() {
    let order = with_deadline("mutex_kill", 30, || {
        single(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let g = m.lock();
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let m = m.clone();
                    greenhub::spawn(move || m.lock().push(i))
                })
                .collect();
            settle();
            let mut hs = hs.into_iter();
            let (a, b, c) = (hs.next().unwrap(), hs.next().unwrap(), hs.next().unwrap());
            assert_killed(b);
            // Timeouts while held: lock_timeout and a `timeout` frame.
            let t0 = Instant::now();
            assert!(m.lock_timeout(Duration::from_millis(10)).is_none());
            assert!(t0.elapsed() >= Duration::from_millis(10));
            assert!(greenhub::timeout(Duration::from_millis(10), || m.lock().len()).is_err());
            drop(g);
            a.join().unwrap();
            c.join().unwrap();
            m.lock().clone()
        })
    });
    assert_eq!(
        order,
        [0, 2],
        "killed waiter took a turn or a waiter was skipped"
    );
}

/// The waiter's deadline and the holder's unlock coincide: whichever wins,
/// the lock is either handed to the waiter (which returns it) or stays free;
/// it is never leaked, and every grant is seen by the waiter.
#[test]
fn mutex_handoff_racing_timeout_never_leaks() {
    with_deadline("mutex_race", 120, || {
        for (mode, b) in common::mode_builders() {
            let rt = b.build().unwrap();
            let m = Arc::new(Mutex::new(0usize));
            let mut granted = 0;
            for i in 0..150u64 {
                // Hold and deadline vary independently, around each other.
                let d = Duration::from_micros(200 + (i % 7) * 150);
                let hold = Duration::from_micros(200 + (i / 7 % 7) * 150);
                let held = Arc::new(AtomicBool::new(false));
                let (m2, h2) = (m.clone(), held.clone());
                // Holder: a plain thread, truly parallel with the hub.
                let t = std::thread::spawn(move || {
                    let g = m2.lock();
                    h2.store(true, SeqCst);
                    std::thread::sleep(hold);
                    drop(g);
                });
                let m3 = m.clone();
                let got = rt.block_on(move || {
                    while !held.load(SeqCst) {
                        greenhub::yield_now();
                    }
                    if i % 2 == 0 {
                        m3.lock_timeout(d).map(|mut g| *g += 1).is_some()
                    } else {
                        greenhub::timeout(d, || *m3.lock() += 1).is_ok()
                    }
                });
                t.join().unwrap();
                granted += usize::from(got);
                assert!(!m.is_locked(), "{mode}: lock leaked at iteration {i}");
                assert_eq!(*m.try_lock().expect("lock leaked"), granted, "{mode}");
            }
        }
    });
}

#[test]
fn rwlock_fifo_batches_readers_and_blocks_barging() {
    let log = with_deadline("rwlock_fifo", 30, || {
        single(|| {
            let l = Arc::new(RwLock::new(()));
            let log = Arc::new(Mutex::new(Vec::new()));
            let active = Arc::new(AtomicUsize::new(0));
            let w = l.write();
            let spawn = |name: &'static str, write: bool| {
                let (l, log, active) = (l.clone(), log.clone(), active.clone());
                greenhub::spawn(move || {
                    let _g = if write { Err(l.write()) } else { Ok(l.read()) };
                    let now = active.fetch_add(1, SeqCst) + 1;
                    log.lock().push((name, now));
                    settle();
                    active.fetch_sub(1, SeqCst);
                })
            };
            let hs = [
                spawn("r1", false),
                spawn("r2", false),
                spawn("w", true),
                spawn("r3", false),
            ];
            settle();
            drop(w);
            hs.into_iter().for_each(|h| h.join().unwrap());
            log.lock().clone()
        })
    });
    // r1 and r2 together, then w alone, then r3 (queued behind w).
    assert_eq!(log, [("r1", 1), ("r2", 2), ("w", 1), ("r3", 1)]);
}

#[test]
fn rwlock_contention_threads_kills_and_timeouts() {
    with_deadline("rwlock_mixed", 60, || {
        for (mode, b) in common::mode_builders() {
            let l = Arc::new(RwLock::new((0usize, 0usize)));
            let l2 = l.clone();
            b.build().unwrap().block_on(move || {
                let hs: Vec<_> = (0..8)
                    .map(|i| {
                        let l = l2.clone();
                        greenhub::spawn(move || {
                            for _ in 0..50 {
                                if i % 2 == 0 {
                                    let mut g = l.write();
                                    g.0 += 1;
                                    greenhub::yield_now();
                                    g.1 += 1;
                                } else {
                                    let g = l.read();
                                    greenhub::yield_now();
                                    assert_eq!(g.0, g.1, "reader saw a torn write");
                                }
                            }
                        })
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                // Reader held: a queued writer is killed, the reader queued
                // behind it must then get in while the first read is held.
                let r = l2.read();
                let lw = l2.clone();
                let w = greenhub::spawn(move || drop(lw.write()));
                // Once the writer queued, readers must queue behind it.
                let start = Instant::now();
                while let Some(g) = l2.try_read() {
                    drop(g);
                    assert!(start.elapsed() < Duration::from_secs(10), "{mode}");
                    greenhub::sleep(Duration::from_millis(1));
                }
                let lr = l2.clone();
                let r2 = greenhub::spawn(move || lr.read().0);
                greenhub::sleep(Duration::from_millis(5));
                assert_killed(w);
                assert_eq!(r2.join().unwrap(), 200, "{mode}");
                assert!(l2.write_timeout(Duration::from_millis(5)).is_none());
                drop(r);
            });
            // A plain thread holds the write lock; greenlets time out, then read.
            let g = l.write();
            let l3 = l.clone();
            let t = std::thread::spawn(move || {
                assert!(l3.read_timeout(Duration::from_millis(5)).is_none());
                l3.read().0
            });
            std::thread::sleep(Duration::from_millis(20));
            drop(g);
            assert_eq!(t.join().unwrap(), 200);
            assert!(l.try_write().is_some());
        }
    });
}
