//! `greenhub::scope`: scoped greenlets borrow the caller's stack (shared and
//! split `&mut` borrows); the scope returns only after they finished; an
//! unjoined panicking child makes the scope panic after its siblings finished;
//! a scope that unwinds (its closure panics, or its owner is killed while it
//! waits) kills its children and waits for them first; a runtime shutdown with
//! a scope in flight unwinds everything. In single-threaded and M:N mode.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{DropCounter, in_each_mode, with_deadline};

const FOREVER: Duration = Duration::from_secs(3600);

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn borrows_a_vec_and_split_mut_counters() {
    in_each_mode("scope_borrows", |mode| {
        let data: Vec<u64> = (1..=100).collect();
        let mut sums = [0u64; 4];
        let mut calls = 0usize;
        let t = Instant::now();
        let len = greenhub::scope(|s| {
            let (data, calls) = (&data, &mut calls);
            for (chunk, sum) in data.chunks(25).zip(sums.iter_mut()) {
                s.spawn(move || {
                    greenhub::sleep(Duration::from_millis(10));
                    *sum = chunk.iter().sum();
                });
            }
            // A `&mut` moved into one greenlet, and read back through its handle.
            let h = s.spawn(move || {
                *calls += 1;
                *calls
            });
            assert_eq!(h.join().unwrap(), 1);
            data.len()
        });
        // Every child finished before `scope` returned.
        assert!(t.elapsed() >= Duration::from_millis(10), "{mode}");
        assert_eq!(len, 100);
        assert_eq!(sums, [325, 950, 1575, 2200], "{mode}");
        assert_eq!(sums.iter().sum::<u64>(), 5050);
        assert_eq!(calls, 1);
    });
}

#[test]
fn scope_waits_for_unjoined_children_and_nested_spawns() {
    in_each_mode("scope_waits", |mode| {
        let flags: Vec<AtomicBool> = (0..6).map(|_| AtomicBool::new(false)).collect();
        greenhub::scope(|s| {
            for (i, flag) in flags.iter().enumerate() {
                s.spawn(move || {
                    greenhub::sleep(Duration::from_millis(2 * i as u64 + 1));
                    // A child may spawn into the same scope.
                    s.spawn(move || {
                        greenhub::sleep(Duration::from_millis(3));
                        flag.store(true, SeqCst);
                    });
                });
            }
        });
        assert!(flags.iter().all(|f| f.load(SeqCst)), "{mode}");
    });
}

#[test]
fn unjoined_panic_makes_the_scope_panic_after_the_others() {
    in_each_mode("scope_child_panic", |mode| {
        let finished = AtomicUsize::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            greenhub::scope(|s| {
                s.spawn(|| panic!("child failed"));
                for _ in 0..3 {
                    s.spawn(|| {
                        greenhub::sleep(Duration::from_millis(15));
                        finished.fetch_add(1, SeqCst);
                    });
                }
            })
        }));
        let payload = caught.expect_err("the scope must panic");
        assert!(
            panic_text(&*payload).contains("scoped greenlet panicked"),
            "{mode}"
        );
        // The siblings ran to completion (they were not killed).
        assert_eq!(finished.load(SeqCst), 3, "{mode}");

        // A joined panic is handled: no scope panic.
        let v = greenhub::scope(|s| {
            let bad = s.spawn(|| -> u8 { panic!("handled") });
            bad.join().unwrap_err().is_panic()
        });
        assert!(v, "{mode}");
    });
}

#[test]
fn panicking_scope_closure_kills_and_waits_for_children() {
    in_each_mode("scope_closure_panic", |mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let started = AtomicUsize::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            greenhub::scope(|s| {
                for _ in 0..4 {
                    let guard = DropCounter(drops.clone());
                    let started = &started;
                    s.spawn(move || {
                        let _guard = guard;
                        started.fetch_add(1, SeqCst);
                        greenhub::sleep(FOREVER);
                    });
                }
                while started.load(SeqCst) < 4 {
                    greenhub::sleep(Duration::from_millis(1));
                }
                panic!("owner failed");
            })
        }));
        assert_eq!(panic_text(&*caught.unwrap_err()), "owner failed", "{mode}");
        assert_eq!(
            drops.load(SeqCst),
            4,
            "{mode}: children unwound before the scope did"
        );
    });
}

#[test]
fn killed_owner_waits_for_its_children() {
    in_each_mode("scope_owner_killed", |mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let owner_unwound = Arc::new(AtomicUsize::new(0));
        let (d, s2, o) = (drops.clone(), started.clone(), owner_unwound.clone());
        let owner = greenhub::spawn(move || {
            let _owner_guard = DropCounter(o);
            let local_state = vec![1u8; 16]; // borrowed by the children
            greenhub::scope(|s| {
                for _ in 0..3 {
                    let (guard, started, state) =
                        (DropCounter(d.clone()), s2.clone(), &local_state);
                    s.spawn(move || {
                        let _guard = guard;
                        started.fetch_add(1, SeqCst);
                        greenhub::sleep(FOREVER);
                        assert_eq!(state.len(), 16);
                    });
                }
                // The owner returns from the closure and waits in `scope`.
            });
            unreachable!("the owner was killed inside scope");
        });
        while started.load(SeqCst) < 3 {
            greenhub::sleep(Duration::from_millis(1));
        }
        let t = Instant::now();
        owner.kill();
        assert!(owner.join().unwrap_err().is_killed(), "{mode}");
        assert!(t.elapsed() < Duration::from_secs(10), "{mode}");
        assert_eq!(drops.load(SeqCst), 3, "{mode}: all children finished first");
        assert_eq!(owner_unwound.load(SeqCst), 1, "{mode}");
    });
}

#[test]
fn timeout_around_a_scope_cancels_it() {
    in_each_mode("scope_timeout", |mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let r = greenhub::timeout(Duration::from_millis(20), || {
            greenhub::scope(|s| {
                for _ in 0..3 {
                    let guard = DropCounter(drops.clone());
                    s.spawn(move || {
                        let _guard = guard;
                        greenhub::sleep(FOREVER);
                    });
                }
            })
        });
        assert!(r.is_err(), "{mode}: timed out");
        assert!(t.elapsed() < Duration::from_secs(10), "{mode}");
        assert_eq!(drops.load(SeqCst), 3, "{mode}");
    });
}

#[test]
fn runtime_shutdown_with_a_scope_in_flight() {
    with_deadline("scope_shutdown", 60, || {
        for (mode, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            let drops = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let (d, s2) = (drops.clone(), started.clone());
            rt.block_on(move || {
                let s3 = s2.clone();
                greenhub::spawn(move || {
                    let (s2, buf) = (s3, [7u8; 64]);
                    greenhub::scope(|s| {
                        for _ in 0..3 {
                            let (guard, started, buf) = (DropCounter(d.clone()), s2.clone(), &buf);
                            s.spawn(move || {
                                let _guard = guard;
                                started.fetch_add(1, SeqCst);
                                greenhub::sleep(FOREVER);
                                buf[0]
                            });
                        }
                    });
                });
                while s2.load(SeqCst) < 3 {
                    greenhub::sleep(Duration::from_millis(1));
                }
                // Return: the runtime shuts down with the scope waiting.
            });
            drop(rt);
            assert_eq!(drops.load(SeqCst), 3, "{mode}");
            assert_eq!(started.load(SeqCst), 3, "{mode}");
        }
    });
}
