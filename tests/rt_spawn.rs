//! Spawning and joining: a million greenlets (each returning its index, the
//! sum checked) in M:N, single-threaded and pinned mode; joining from a plain
//! OS thread; `Handle::spawn` from another std thread; the greenlet
//! `Builder`'s name and stack size; `spawn_local` with `Rc` state;
//! `is_finished`; and the configuration errors (`Builder::spawn` outside a
//! runtime, stack sizes over 64 MiB, zero hubs, a single-threaded runtime
//! with two hubs).

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::with_deadline;
use greenhub::{Builder, greenlet};

const MILLION: u64 = 1_000_000;

/// Spawns `n` greenlets from the main greenlet, each returning its index,
/// joins them all in spawn order and returns the sum.
fn spawn_join_sum(builder: Builder, n: u64) -> u64 {
    let rt = builder.build().expect("build runtime");
    rt.block_on(move || {
        let handles: Vec<_> = (0..n).map(|i| greenhub::spawn(move || i)).collect();
        assert_eq!(handles.len() as u64, n);
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let v = h.join().expect("a greenlet failed");
                assert_eq!(v, i as u64, "join returned another greenlet's value");
                v
            })
            .sum()
    })
}

#[test]
fn million_greenlets_mn() {
    let sum = with_deadline("million_greenlets_mn", 300, || {
        spawn_join_sum(Builder::new().hubs(2), MILLION)
    });
    assert_eq!(sum, MILLION * (MILLION - 1) / 2);
}

#[test]
fn million_greenlets_single_threaded() {
    let sum = with_deadline("million_greenlets_single_threaded", 300, || {
        spawn_join_sum(Builder::new().single_threaded(), MILLION)
    });
    assert_eq!(sum, MILLION * (MILLION - 1) / 2);
}

#[test]
fn million_greenlets_pinned() {
    let sum = with_deadline("million_greenlets_pinned", 300, || {
        spawn_join_sum(Builder::new().pinned().hubs(2), MILLION)
    });
    assert_eq!(sum, MILLION * (MILLION - 1) / 2);
}

#[test]
fn join_from_plain_os_thread() {
    with_deadline("join_from_plain_os_thread", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        // Joined on this (non-greenlet) thread, which blocks until each
        // greenlet returns; some of them sleep first so the join really waits.
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                rt.spawn(move || {
                    if i % 2 == 0 {
                        greenhub::sleep(Duration::from_millis(5));
                    }
                    i * 3
                })
            })
            .collect();
        assert!(greenlet::try_current().is_none());
        let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(values, (0..100u64).map(|i| i * 3).collect::<Vec<_>>());

        // A handle can also be moved to another plain thread and joined there.
        let h = rt.spawn(|| "moved");
        let t = std::thread::spawn(move || h.join().unwrap());
        assert_eq!(t.join().unwrap(), "moved");
    });
}

#[test]
fn handle_spawn_from_other_std_threads() {
    with_deadline("handle_spawn_from_other_std_threads", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let handle = rt.handle().clone();
                std::thread::spawn(move || {
                    let hs: Vec<_> = (0..250u64)
                        .map(|i| handle.spawn(move || t * 1000 + i))
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let expected: u64 = (0..4u64)
            .map(|t| (0..250u64).map(|i| t * 1000 + i).sum::<u64>())
            .sum();
        assert_eq!(total, expected);

        // Handle::current() taken inside a greenlet, used from a std thread
        // that the greenlet started.
        let v = rt.block_on(|| {
            let handle = greenhub::Handle::current();
            let t = std::thread::spawn(move || {
                assert!(greenhub::Handle::try_current().is_none());
                handle
                    .spawn(|| greenhub::current().id().as_u64() > 0)
                    .join()
            });
            // Wait without blocking the hub: the spawned greenlet may need it.
            while !t.is_finished() {
                greenhub::sleep(Duration::from_millis(1));
            }
            t.join().unwrap().unwrap()
        });
        assert!(v);
    });
}

#[test]
fn greenlet_builder_name_and_stack_size() {
    with_deadline("greenlet_builder_name_and_stack_size", 60, || {
        greenhub::run(|| {
            let h = greenlet::Builder::new()
                .name("worker-7".to_string())
                .spawn(|| greenhub::current().name().map(str::to_owned))
                .unwrap();
            assert_eq!(h.name(), Some("worker-7"));
            assert_eq!(h.greenlet().name(), Some("worker-7"));
            assert_eq!(h.join().unwrap().as_deref(), Some("worker-7"));

            let unnamed = greenhub::spawn(|| greenhub::current().name().is_none());
            assert_eq!(unnamed.name(), None);
            assert!(unnamed.join().unwrap());

            // A 2 MiB stack holds a 1 MiB frame that the default 256 KiB
            // stack could not (it would overflow and abort the process).
            let big = greenlet::Builder::new()
                .name("big".into())
                .stack_size(2 << 20)
                .spawn(|| {
                    let mut buf = [0u8; 1 << 20];
                    for (i, b) in buf.iter_mut().enumerate().step_by(4096) {
                        *b = (i >> 12) as u8;
                    }
                    std::hint::black_box(&mut buf);
                    buf.iter().map(|&b| b as u64).sum::<u64>()
                })
                .unwrap();
            assert_eq!(big.join().unwrap(), (0..256u64).sum::<u64>());

            // Tiny requests are rounded up to the 16 KiB minimum and work.
            let tiny = greenlet::Builder::new()
                .stack_size(1)
                .spawn(|| {
                    let buf = [7u8; 4096];
                    std::hint::black_box(&buf)
                        .iter()
                        .map(|&b| b as u32)
                        .sum::<u32>()
                })
                .unwrap();
            assert_eq!(tiny.join().unwrap(), 7 * 4096);

            // Exactly the maximum is accepted.
            let max = greenlet::Builder::new()
                .stack_size(greenhub::MAX_STACK_SIZE)
                .spawn(|| 1)
                .unwrap();
            assert_eq!(max.join().unwrap(), 1);
        });
    });
}

#[test]
fn spawn_local_shares_rc_state() {
    with_deadline("spawn_local_shares_rc_state", 60, || {
        for builder in [
            Builder::new().single_threaded(),
            Builder::new().pinned().hubs(2),
            Builder::new().hubs(2),
        ] {
            let rt = builder.build().unwrap();
            let (log, threads) = rt.block_on(|| {
                let log = Rc::new(RefCell::new(Vec::new()));
                let me = std::thread::current().id();
                let handles: Vec<_> = (0..10)
                    .map(|i| {
                        let log = log.clone();
                        greenhub::spawn_local(move || {
                            for step in 0..3 {
                                log.borrow_mut().push((i, step));
                                greenhub::yield_now();
                            }
                            // An Rc result is fine too: the handle is joined here.
                            (Rc::new(i), std::thread::current().id())
                        })
                    })
                    .collect();
                let mut threads = HashSet::new();
                for (i, h) in handles.into_iter().enumerate() {
                    let (rc, tid) = h.join().unwrap();
                    assert_eq!(*rc, i);
                    threads.insert(tid);
                }
                assert_eq!(Rc::strong_count(&log), 1, "every clone was dropped");
                let log = log.borrow().clone();
                (
                    log,
                    threads.into_iter().map(|t| t == me).collect::<Vec<_>>(),
                )
            });
            assert_eq!(log.len(), 30);
            for i in 0..10 {
                let steps: Vec<_> = log.iter().filter(|e| e.0 == i).map(|e| e.1).collect();
                assert_eq!(steps, [0, 1, 2], "greenlet {i}'s steps out of order");
            }
            // Local greenlets ran on the spawner's thread only.
            assert_eq!(threads, [true]);
        }
    });
}

#[test]
fn spawn_local_interleaves_fifo_in_single_threaded_mode() {
    let log = with_deadline("spawn_local_interleaves_fifo", 60, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        rt.block_on(|| {
            let log = Rc::new(RefCell::new(Vec::new()));
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let log = log.clone();
                    greenhub::spawn_local(move || {
                        for step in 0..2 {
                            log.borrow_mut().push(format!("g{i}.{step}"));
                            greenhub::yield_now();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            log.borrow().clone()
        })
    });
    assert_eq!(log, ["g0.0", "g1.0", "g2.0", "g0.1", "g1.1", "g2.1"]);
}

#[test]
fn is_finished_tracks_completion() {
    with_deadline("is_finished_tracks_completion", 60, || {
        for builder in [Builder::new().single_threaded(), Builder::new().hubs(2)] {
            let rt = builder.build().unwrap();
            rt.block_on(|| {
                let go = Arc::new(AtomicBool::new(false));
                let g2 = go.clone();
                let h = greenhub::spawn(move || {
                    while !g2.load(Ordering::Acquire) {
                        greenhub::park();
                    }
                    5
                });
                for _ in 0..10 {
                    greenhub::sleep(Duration::from_millis(1));
                    assert!(!h.is_finished(), "finished while still parked");
                }
                go.store(true, Ordering::Release);
                h.greenlet().unpark();
                while !h.is_finished() {
                    greenhub::yield_now();
                }
                assert!(h.is_finished());
                assert_eq!(h.join().unwrap(), 5);

                // A panicking greenlet is finished too.
                let p = greenhub::spawn(|| panic!("expected test panic"));
                while !p.is_finished() {
                    greenhub::yield_now();
                }
                assert!(p.join().unwrap_err().is_panic());
            });
            // From a plain thread.
            let go = Arc::new(AtomicBool::new(false));
            let g2 = go.clone();
            let h = rt.spawn(move || {
                while !g2.load(Ordering::Acquire) {
                    greenhub::park();
                }
            });
            std::thread::sleep(Duration::from_millis(10));
            assert!(!h.is_finished(), "finished while still parked");
            go.store(true, Ordering::Release);
            h.greenlet().unpark();
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            h.join().unwrap();
        }
    });
}

#[test]
fn builder_spawn_outside_runtime_is_an_error() {
    assert!(greenlet::try_current().is_none());
    let err = greenlet::Builder::new().spawn(|| 1).unwrap_err();
    assert!(
        err.to_string().contains("outside a greenhub runtime"),
        "unexpected message: {err}"
    );
    let err = greenlet::Builder::new().spawn_local(|| 1).unwrap_err();
    assert!(
        err.to_string().contains("outside a greenhub runtime"),
        "{err}"
    );
    // `greenhub::spawn` (no Result) panics instead.
    let caught = std::panic::catch_unwind(|| greenhub::spawn(|| 1));
    assert!(caught.is_err());

    // A plain thread started by a greenlet is outside the runtime as well.
    with_deadline("builder_spawn_outside_runtime", 60, || {
        greenhub::run(|| {
            let t = std::thread::spawn(|| greenlet::Builder::new().spawn(|| 1).is_err());
            while !t.is_finished() {
                greenhub::sleep(Duration::from_millis(1));
            }
            assert!(t.join().unwrap());
        })
    });
}

#[test]
fn stack_size_over_64_mib_is_invalid_input() {
    let too_big = greenhub::MAX_STACK_SIZE + 1;
    assert_eq!(greenhub::MAX_STACK_SIZE, 64 << 20);

    // Per greenlet: refused by spawn, inside a runtime.
    let kinds = with_deadline("stack_size_over_64_mib", 60, move || {
        greenhub::run(move || {
            let e1 = greenlet::Builder::new()
                .stack_size(too_big)
                .spawn(|| ())
                .unwrap_err();
            let e2 = greenlet::Builder::new()
                .stack_size(usize::MAX)
                .spawn_local(|| ())
                .unwrap_err();
            assert!(e1.to_string().contains("64 MiB"), "{e1}");
            // The runtime is unaffected.
            assert_eq!(greenhub::spawn(|| 3).join().unwrap(), 3);
            (e1.kind(), e2.kind())
        })
    });
    assert_eq!(
        kinds,
        (io::ErrorKind::InvalidInput, io::ErrorKind::InvalidInput)
    );

    // Per runtime: refused by build.
    let err = Builder::new().stack_size(too_big).build().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = Builder::new()
        .single_threaded()
        .stack_size(128 << 20)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn zero_hubs_is_an_error() {
    for builder in [
        Builder::new().hubs(0),
        Builder::new().pinned().hubs(0),
        Builder::new().single_threaded().hubs(0),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("at least one hub"), "{err}");
    }
}

#[test]
fn single_threaded_with_two_hubs_is_an_error() {
    let err = Builder::new()
        .single_threaded()
        .hubs(2)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("exactly one hub"), "{err}");
    // The order of the calls does not matter.
    let err = Builder::new()
        .hubs(2)
        .single_threaded()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    // One hub is fine.
    let rt = Builder::new().single_threaded().hubs(1).build().unwrap();
    assert_eq!(rt.hubs(), 1);
    assert_eq!(rt.block_on(|| 2 + 2), 4);
}

#[test]
fn mn_with_one_hub_runs_new_and_woken_greenlets_in_turn() {
    // One M:N hub has nobody to steal from; it runs without a stealable
    // deque but schedules as every M:N hub does: unstarted greenlets newest
    // first, and a `yield_now` lets the unstarted ones run.
    let rt = Builder::new().hubs(1).build().unwrap();
    assert_eq!(rt.hubs(), 1);
    let order = rt.block_on(|| {
        let (tx, rx) = greenhub::channel::unbounded();
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let tx = tx.clone();
                greenhub::spawn(move || {
                    for r in 0..2 {
                        tx.send((r, i)).unwrap();
                        greenhub::yield_now();
                    }
                })
            })
            .collect();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        rx.iter().collect::<Vec<_>>()
    });
    // Every greenlet's first round before anyone's second; newest first.
    assert_eq!(order, [(0, 2), (0, 1), (0, 0), (1, 2), (1, 1), (1, 0)]);
    let total = rt.handle().metrics().total();
    // The three spawned on the hub (`block_on`'s greenlet counts as spawned
    // from outside).
    assert_eq!((total.spawned, total.steals), (3, 0));
}

#[test]
fn mn_runs_the_newest_unstarted_first_but_not_for_ever() {
    // One M:N hub: deterministic. The main greenlet keeps spawning and
    // yielding; each yield runs the newest unstarted greenlet (the one just
    // spawned), yet the oldest one (`first`) must run within a bounded
    // number of turns (every 61st tick takes the oldest), not only when the
    // main greenlet stops spawning.
    let rt = Builder::new().hubs(1).build().unwrap();
    let turns = rt.block_on(|| {
        let started = Arc::new(AtomicBool::new(false));
        let first = {
            let started = started.clone();
            greenhub::spawn(move || started.store(true, Ordering::SeqCst))
        };
        let mut turns = 0;
        let mut others = Vec::new();
        while !started.load(Ordering::SeqCst) && turns < 10_000 {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            others.push(greenhub::spawn(move || flag.store(true, Ordering::SeqCst)));
            greenhub::yield_now();
            // Newest first: the greenlet spawned just before the yield ran.
            assert!(
                ran.load(Ordering::SeqCst),
                "turn {turns}: the newest did not run"
            );
            turns += 1;
        }
        first.join().unwrap();
        for h in others {
            h.join().unwrap();
        }
        turns
    });
    assert!(turns > 1, "the oldest was simply run first ({turns} turns)");
    assert!(turns <= 61, "the oldest waited {turns} turns");
}
