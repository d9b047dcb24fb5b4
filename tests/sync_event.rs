//! Event, AsyncResult and Semaphore across modes and plain threads; kills
//! and timeouts leave them usable; FIFO order.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::with_deadline;
use greenhub::sync::{AsyncResult, Event, Semaphore};
use greenhub::{Builder, Runtime};

use common::runtimes as modes;

#[test]
fn event_wakes_all_waiters_in_every_mode() {
    with_deadline("event", 30, || {
        for rt in modes() {
            rt.block_on(|| {
                let ev = Arc::new(Event::new());
                let woke = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..50)
                    .map(|_| {
                        let (ev, woke) = (ev.clone(), woke.clone());
                        greenhub::spawn(move || {
                            ev.wait();
                            woke.fetch_add(1, SeqCst);
                        })
                    })
                    .collect();
                greenhub::sleep(Duration::from_millis(5));
                assert_eq!(woke.load(SeqCst), 0);
                ev.set();
                hs.into_iter().for_each(|h| h.join().unwrap());
                assert_eq!(woke.load(SeqCst), 50);
                ev.clear();
                assert!(!ev.wait_timeout(Duration::from_millis(2)));
            });
        }
        // A plain thread sets what greenlets wait for, and waits for them.
        let rt = Builder::new().hubs(2).build().unwrap();
        let ev = Arc::new(Event::new());
        let back = Arc::new(Event::new());
        let (ev2, back2) = (ev.clone(), back.clone());
        let h = rt.spawn(move || {
            ev2.wait();
            back2.set();
        });
        std::thread::sleep(Duration::from_millis(5));
        ev.set();
        back.wait();
        h.join().unwrap();
    });
}

#[test]
fn event_killed_waiter_leaves_it_usable() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let ev = Arc::new(Event::new());
            let victims: Vec<_> = (0..3)
                .map(|_| {
                    let ev = ev.clone();
                    greenhub::spawn(move || ev.wait())
                })
                .collect();
            let ev2 = ev.clone();
            let survivor = greenhub::spawn(move || ev2.wait_timeout(Duration::from_secs(10)));
            greenhub::yield_now();
            victims.iter().for_each(|h| h.kill());
            for h in victims {
                assert!(h.join().unwrap_err().is_killed());
            }
            ev.set();
            assert!(survivor.join().unwrap());
        });
}

#[test]
fn async_result_delivers_once_to_many() {
    with_deadline("async result", 30, || {
        for rt in modes() {
            rt.block_on(|| {
                let r = Arc::new(AsyncResult::new());
                let hs: Vec<_> = (0..20)
                    .map(|_| {
                        let r = r.clone();
                        greenhub::spawn(move || r.get().unwrap())
                    })
                    .collect();
                greenhub::sleep(Duration::from_millis(2));
                r.set(String::from("answer")).unwrap();
                assert_eq!(r.set(String::from("other")), Err(String::from("other")));
                for h in hs {
                    assert_eq!(h.join().unwrap(), "answer");
                }
            });
        }
        let r = Arc::new(AsyncResult::<u8>::new());
        let r2 = r.clone();
        let t = std::thread::spawn(move || r2.get());
        std::thread::sleep(Duration::from_millis(5));
        r.set_error(std::io::Error::other("boom")).unwrap();
        assert_eq!(t.join().unwrap().unwrap_err().to_string(), "boom");
    });
}

#[test]
fn semaphore_fifo_order() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let sem = Arc::new(Semaphore::new(0));
            let order = Arc::new(Mutex::new(Vec::new()));
            let hs: Vec<_> = (0..5)
                .map(|i| {
                    let (sem, order) = (sem.clone(), order.clone());
                    greenhub::spawn(move || {
                        let _p = sem.acquire();
                        order.lock().unwrap().push(i);
                    })
                })
                .collect();
            greenhub::yield_now();
            sem.release(1).unwrap();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        });
}

#[test]
fn semaphore_no_barging_and_partial_grants() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let sem = Arc::new(Semaphore::new(2));
            let s2 = sem.clone();
            let big = greenhub::spawn(move || s2.acquire_many(3).count());
            greenhub::yield_now(); // big waits for 3 with 2 free
            assert!(sem.try_acquire().is_none(), "must not overtake the waiter");
            sem.release(1).unwrap();
            assert_eq!(big.join().unwrap(), 3);
            assert_eq!(sem.available_permits(), 3);
        });
}

/// Permit holders release while waiters time out or are killed: permits
/// are never lost or duplicated.
fn semaphore_storm(rt: Runtime) {
    rt.block_on(|| {
        let sem = Arc::new(Semaphore::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for i in 0..200u64 {
            let (sem, inside) = (sem.clone(), inside.clone());
            hs.push(greenhub::spawn(move || {
                if let Some(_p) = sem.acquire_timeout(Duration::from_micros(50 + i % 100)) {
                    assert!(inside.fetch_add(1, SeqCst) < 2);
                    greenhub::sleep(Duration::from_micros(30));
                    inside.fetch_sub(1, SeqCst);
                }
            }));
            if i % 5 == 0 {
                hs[i as usize / 2].kill();
            }
        }
        for h in hs {
            let _ = h.join();
        }
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn semaphore_timeouts_and_kills_lose_no_permit() {
    with_deadline("semaphore storm", 60, || {
        for rt in modes() {
            semaphore_storm(rt);
        }
    });
}

#[test]
fn semaphore_with_a_plain_thread() {
    let rt = Builder::new().hubs(2).build().unwrap();
    let sem = Arc::new(Semaphore::new(1));
    let permit = sem.acquire(); // the OS thread holds it
    let s2 = sem.clone();
    let h = rt.spawn(move || {
        let _p = s2.acquire();
        "got it"
    });
    std::thread::sleep(Duration::from_millis(10));
    assert!(!h.is_finished());
    drop(permit);
    assert_eq!(h.join().unwrap(), "got it");
}
