//! Monkey patching (feature `patch`): futex-based blocking of unmodified
//! std code parks only the greenlet (`src/patch/futex.rs`): std's `Mutex`,
//! `Condvar`, `RwLock` and `Once`; `mpsc` and `thread::park`, which wait on
//! the OS thread's parker, never hang (more in `patch_parker.rs`); waits from OS
//! threads keep working beside greenlet waits; timeouts are honoured; a kill
//! of a greenlet stuck in a futex wait completes.

mod common;
mod patch_common;

use patch_common::{enable, one_hub, ticker};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Once, RwLock};
use std::time::{Duration, Instant};

#[test]
fn two_greenlets_contending_for_a_std_mutex_held_across_a_sleep_both_finish() {
    enable();
    common::in_each_mode("std mutex across sleep", |mode| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                greenhub::spawn(move || {
                    let mut g = log.lock().unwrap();
                    g.push(i);
                    std::thread::sleep(Duration::from_millis(30));
                    g.push(i);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 6, "{mode}");
        for pair in log.chunks(2) {
            assert_eq!(pair[0], pair[1], "{mode}: mutual exclusion broken: {log:?}");
        }
    });
}

#[test]
fn std_condvar_producer_consumer_between_greenlets() {
    enable();
    common::in_each_mode("std condvar", |mode| {
        let state = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let consumer = {
            let state = state.clone();
            greenhub::spawn(move || {
                let (m, cv) = &*state;
                let mut got = Vec::new();
                let mut g = m.lock().unwrap();
                loop {
                    while let Some(v) = g.0.pop() {
                        got.push(v);
                    }
                    if g.1 {
                        return got;
                    }
                    g = cv.wait(g).unwrap();
                }
            })
        };
        for i in 0..50u32 {
            let (m, cv) = &*state;
            m.lock().unwrap().0.push(i);
            cv.notify_one();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        {
            let (m, cv) = &*state;
            m.lock().unwrap().1 = true;
            cv.notify_all();
        }
        let mut got = consumer.join().unwrap();
        got.sort();
        assert_eq!(got, (0..50).collect::<Vec<_>>(), "{mode}");
    });
}

/// std's `mpsc` (and `thread::park`) waits on the OS thread's parker, which
/// the greenlets of a hub share (`parker.rs`): those waits never hang. Two greenlets of one hub receiving at
/// once both get their values (with naive cooperative parker waits, the
/// second would corrupt the parker and the first would never wake).
#[test]
fn two_greenlets_in_mpsc_recv_on_one_hub_both_get_their_values() {
    let got = common::with_deadline("mpsc_two_receivers", 60, || {
        one_hub(|| {
            let (tx1, rx1) = mpsc::channel();
            let (tx2, rx2) = mpsc::channel();
            let a = greenhub::spawn(move || rx1.recv().unwrap());
            let b = greenhub::spawn(move || rx2.recv().unwrap());
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                tx1.send(1u32).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                tx2.send(2u32).unwrap();
            });
            let got = (a.join().unwrap(), b.join().unwrap());
            sender.join().unwrap();
            got
        })
    });
    assert_eq!(got, (1, 2));
}

#[test]
fn mpsc_recv_timeout_times_out_not_early() {
    let (r, waited) = one_hub(|| {
        let (_tx, rx) = mpsc::channel::<u8>();
        let start = Instant::now();
        let r = rx.recv_timeout(Duration::from_millis(150));
        (r, start.elapsed())
    });
    assert_eq!(r, Err(mpsc::RecvTimeoutError::Timeout));
    assert!(waited >= Duration::from_millis(150), "early: {waited:?}");
}

#[test]
fn thread_park_on_a_greenlet_is_unparked_from_a_thread() {
    let woke = common::with_deadline("thread_park", 60, || {
        one_hub(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let (htx, hrx) = mpsc::channel::<std::thread::Thread>();
            let f2 = flag.clone();
            // The unparker exists before the greenlet parks: the park
            // blocks the hub thread, so nothing of the hub runs meanwhile.
            let unparker = std::thread::spawn(move || {
                let handle = hrx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(50));
                f2.store(true, SeqCst);
                handle.unpark();
            });
            let parked = greenhub::spawn(move || {
                htx.send(std::thread::current()).unwrap();
                while !flag.load(SeqCst) {
                    std::thread::park();
                }
                true
            });
            let woke = parked.join().unwrap();
            unparker.join().unwrap();
            woke
        })
    });
    assert!(woke);
}

#[test]
fn std_rwlock_and_once_wait_cooperatively() {
    let (reads, inits) = one_hub(|| {
        let lock = Arc::new(RwLock::new(0));
        let w = {
            let lock = lock.clone();
            greenhub::spawn(move || {
                let mut g = lock.write().unwrap();
                std::thread::sleep(Duration::from_millis(50));
                *g = 7;
            })
        };
        greenhub::yield_now(); // the writer takes the lock first
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let lock = lock.clone();
                greenhub::spawn(move || *lock.read().unwrap())
            })
            .collect();
        w.join().unwrap();
        let reads: Vec<i32> = readers.into_iter().map(|h| h.join().unwrap()).collect();

        let once = Arc::new(Once::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (once, inits) = (once.clone(), inits.clone());
                greenhub::spawn(move || {
                    once.call_once(|| {
                        std::thread::sleep(Duration::from_millis(50));
                        inits.fetch_add(1, SeqCst);
                    });
                    inits.load(SeqCst)
                })
            })
            .collect();
        let seen: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(seen, vec![1, 1, 1], "a caller returned before the init ran");
        (reads, inits.load(SeqCst))
    });
    assert_eq!(reads, vec![7, 7, 7]);
    assert_eq!(inits, 1);
}

#[test]
fn an_os_thread_and_a_greenlet_share_a_std_mutex() {
    let (total, ticks) = one_hub(|| {
        let m = Arc::new(Mutex::new(0u32));
        let stop = Arc::new(AtomicBool::new(false));
        let t = ticker(stop.clone());
        // A thread holds it; the greenlet waits (cooperatively).
        let (held_tx, held_rx) = mpsc::channel();
        let th = {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut g = m.lock().unwrap();
                held_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                *g += 1;
            })
        };
        held_rx.recv().unwrap();
        *m.lock().unwrap() += 1;
        th.join().unwrap();
        // The greenlet holds it across a sleep; the thread waits in the
        // kernel.
        let mut g = m.lock().unwrap();
        let th = {
            let m = m.clone();
            std::thread::spawn(move || *m.lock().unwrap() += 1)
        };
        std::thread::sleep(Duration::from_millis(50));
        *g += 1;
        drop(g);
        th.join().unwrap();
        stop.store(true, SeqCst);
        (*m.lock().unwrap(), t.join().unwrap())
    });
    assert_eq!(total, 4);
    assert!(ticks >= 5, "only {ticks} ticks: the hub was blocked");
}

#[test]
fn parking_lot_mutex_contention_from_greenlets_and_threads() {
    enable();
    common::in_each_mode("parking_lot contention", |mode| {
        let m = Arc::new(parking_lot::Mutex::new(0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        let greenlets: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                greenhub::spawn(move || {
                    for i in 0..1000 {
                        *m.lock() += 1;
                        if i % 100 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for h in greenlets {
            h.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 8000, "{mode}");
    });
}

#[test]
fn kill_of_a_greenlet_blocked_in_std_mutex_lock_abandons_it() {
    let (outcome, waited, after) = one_hub(|| {
        let m = Arc::new(Mutex::new(0u32));
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let holder = {
            let m = m.clone();
            std::thread::spawn(move || {
                let _g = m.lock().unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
            })
        };
        held_rx.recv().unwrap();
        let h = {
            let m = m.clone();
            greenhub::spawn(move || {
                *m.lock().unwrap() += 1;
                greenhub::sleep(Duration::from_secs(60));
            })
        };
        greenhub::sleep(Duration::from_millis(20));
        let start = Instant::now();
        h.kill();
        let outcome = h.join();
        let waited = start.elapsed();
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        // The abandoned greenlet left the table: the lock works on.
        *m.lock().unwrap() += 10;
        let after = *m.lock().unwrap();
        (outcome, waited, after)
    });
    assert!(outcome.unwrap_err().is_killed());
    assert!(waited < Duration::from_secs(5), "join took {waited:?}");
    assert_eq!(after, 10, "the abandoned greenlet never got the lock");
}

#[test]
fn kill_of_a_greenlet_blocked_in_condvar_wait_completes() {
    let outcome = one_hub(|| {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let h = {
            let state = state.clone();
            greenhub::spawn(move || {
                let (m, cv) = &*state;
                let mut g = m.lock().unwrap();
                while !*g {
                    g = cv.wait(g).unwrap();
                }
            })
        };
        greenhub::sleep(Duration::from_millis(20));
        let start = Instant::now();
        h.kill();
        let outcome = h.join();
        assert!(start.elapsed() < Duration::from_secs(5));
        // The mutex is not left locked: the greenlet waited with it released.
        assert!(!*state.0.lock().unwrap());
        outcome
    });
    assert!(outcome.unwrap_err().is_killed());
}

#[test]
fn kill_while_waiting_for_a_lock_released_soon_unwinds_normally() {
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let seen = dropped.clone();
    let outcome = one_hub(move || {
        let m = Arc::new(Mutex::new(0u32));
        let holder = {
            let m = m.clone();
            greenhub::spawn(move || {
                let _g = m.lock().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            })
        };
        greenhub::yield_now();
        let h = {
            let m = m.clone();
            greenhub::spawn(move || {
                let _d = Dropped(seen);
                let _g = m.lock().unwrap();
                greenhub::sleep(Duration::from_secs(60)); // raises the kill
            })
        };
        greenhub::sleep(Duration::from_millis(20));
        h.kill();
        let outcome = h.join();
        holder.join().unwrap();
        // Unwound: the guard was dropped while unwinding (which poisons a
        // std mutex), and the lock is free.
        assert!(m.is_poisoned());
        drop(m.lock().unwrap_or_else(|e| e.into_inner()));
        outcome
    });
    assert!(outcome.unwrap_err().is_killed());
    assert!(
        dropped.load(SeqCst),
        "the greenlet was abandoned, not unwound"
    );
}
