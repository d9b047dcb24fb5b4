//! `timeout`, `join_timeout` and `joinall`: frames cancel the blocking call
//! in progress, nest, let values win, and work on plain threads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{DropCounter, with_deadline};
use greenhub::sync::{Event, Semaphore};
use greenhub::{Builder, channel};

use common::runtimes as modes;

#[test]
fn cancels_each_kind_of_blocking_call() {
    with_deadline("cancel", 30, || {
        for rt in modes() {
            rt.block_on(|| {
                let ms = Duration::from_millis(10);
                assert!(
                    greenhub::timeout(ms, || greenhub::sleep(Duration::from_secs(60))).is_err()
                );
                assert!(greenhub::timeout(ms, greenhub::park).is_err());
                let (_tx, rx) = channel::unbounded::<u8>();
                assert!(greenhub::timeout(ms, || rx.recv()).is_err());
                let sem = Semaphore::new(0);
                assert!(greenhub::timeout(ms, || drop(sem.acquire())).is_err());
                let ev = Event::new();
                assert!(greenhub::timeout(ms, || ev.wait()).is_err());
                let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
                let g = h.greenlet();
                let r = greenhub::timeout(ms, move || h.join());
                assert!(r.is_err());
                drop(g);
                // A yielding loop is cancelled at a yield.
                let r = greenhub::timeout(ms, || {
                    loop {
                        greenhub::yield_now();
                    }
                });
                assert!(r.is_err());
            });
        }
    });
}

#[test]
fn destructors_run_when_cancelled() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let d = drops.clone();
            let r = greenhub::timeout(Duration::from_millis(5), move || {
                let _guard = DropCounter(d);
                greenhub::sleep(Duration::from_secs(60));
            });
            assert!(r.is_err());
            assert_eq!(drops.load(SeqCst), 1);
        });
}

#[test]
fn nested_frames_fire_for_themselves() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            // Inner shorter: the inner frame reports, the outer goes on.
            let outer = greenhub::timeout(Duration::from_secs(5), || {
                let inner = greenhub::timeout(Duration::from_millis(5), || {
                    greenhub::sleep(Duration::from_secs(60))
                });
                assert!(inner.is_err());
                "outer finished"
            });
            assert_eq!(outer, Ok("outer finished"));
            // Outer shorter: the inner call unwinds through the inner frame.
            let t = Instant::now();
            let mut inner_returned = false;
            let outer = greenhub::timeout(Duration::from_millis(10), || {
                let _ = greenhub::timeout(Duration::from_secs(60), || {
                    greenhub::sleep(Duration::from_secs(60))
                });
                inner_returned = true;
            });
            assert!(outer.is_err());
            assert!(!inner_returned);
            assert!(t.elapsed() < Duration::from_secs(5));
            // After the frames, nothing is left armed.
            greenhub::sleep(Duration::from_millis(20));
        });
}

#[test]
fn a_value_that_arrived_wins() {
    with_deadline("value wins", 60, || {
        for rt in modes() {
            rt.block_on(|| {
                let (tx, rx) = channel::unbounded::<u32>();
                let mut lost = 0;
                let mut got = 0;
                for i in 0..300u32 {
                    let tx = tx.clone();
                    let h = greenhub::spawn(move || {
                        greenhub::sleep(Duration::from_micros(100));
                        tx.send(i).unwrap();
                    });
                    match greenhub::timeout(Duration::from_micros(100), || rx.recv()) {
                        Ok(v) => {
                            assert_eq!(v.unwrap(), i);
                            got += 1;
                        }
                        Err(_) => {
                            h.join().unwrap();
                            // Not received by the cancelled recv: still there.
                            match rx.try_recv() {
                                Ok(v) => assert_eq!(v, i),
                                Err(_) => lost += 1,
                            }
                            continue;
                        }
                    }
                    h.join().unwrap();
                }
                assert_eq!(lost, 0);
                assert!(got <= 300);
            });
        }
    });
}

#[test]
fn works_on_plain_threads() {
    let t = Instant::now();
    let (_tx, rx) = channel::unbounded::<u8>();
    assert!(greenhub::timeout(Duration::from_millis(10), || rx.recv()).is_err());
    assert!(
        greenhub::timeout(Duration::from_millis(10), || greenhub::sleep(
            Duration::from_secs(60)
        ))
        .is_err()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(greenhub::timeout(Duration::from_secs(1), || 5), Ok(5));
}

#[test]
fn kill_passes_through_a_frame() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let h = greenhub::spawn(|| {
                let _ = greenhub::timeout(Duration::from_secs(60), || {
                    greenhub::sleep(Duration::from_secs(60))
                });
                "survived"
            });
            greenhub::yield_now();
            h.kill();
            assert!(h.join().unwrap_err().is_killed());
        });
}

#[test]
fn join_timeout_and_joinall() {
    for rt in modes() {
        rt.block_on(|| {
            let mut h = greenhub::spawn(|| {
                greenhub::sleep(Duration::from_millis(20));
                1
            });
            assert!(h.join_timeout(Duration::from_millis(1)).is_none());
            assert_eq!(h.join_timeout(Duration::from_secs(5)).unwrap().unwrap(), 1);
            assert!(h.join_timeout(Duration::ZERO).unwrap().is_err()); // spent

            let hs: Vec<_> = (0..5u64)
                .map(|i| {
                    greenhub::spawn(move || {
                        greenhub::sleep(Duration::from_millis(if i == 4 { 10_000 } else { i }));
                        i
                    })
                })
                .collect();
            let (done, pending) = greenhub::joinall(hs, Some(Duration::from_millis(200)));
            let done: Vec<u64> = done.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(done, [0, 1, 2, 3]);
            assert_eq!(pending.len(), 1);
            pending[0].kill();
            let (done, pending) = greenhub::joinall(pending, None);
            assert!(done[0].as_ref().unwrap_err().is_killed());
            assert!(pending.is_empty());
        });
    }
}

/// A frame whose deadline passes between a blocking call's interrupt check
/// and the moment it arms its park used to be dropped from the park, which
/// then had no deadline at all: the call never returned. Frames of a few
/// microseconds hit that window often.
#[test]
fn a_frame_expiring_while_the_park_is_set_up_still_fires() {
    with_deadline("tiny frames", 120, || {
        let (_tx, rx) = channel::unbounded::<u8>();
        for i in 0..20_000u64 {
            let d = Duration::from_nanos(500 + i % 2_000);
            assert!(greenhub::timeout(d, || rx.recv()).is_err());
        }
        for rt in modes() {
            let rx = rx.clone();
            rt.block_on(move || {
                for i in 0..2_000u64 {
                    let d = Duration::from_nanos(500 + i % 2_000);
                    assert!(greenhub::timeout(d, || rx.recv()).is_err());
                    assert!(
                        greenhub::timeout(d, || greenhub::sleep(Duration::from_secs(9))).is_err()
                    );
                }
            });
        }
    });
}
