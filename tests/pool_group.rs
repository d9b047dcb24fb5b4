//! `greenhub::pool::{Pool, Group}`: a pool never runs more than its size at
//! once, the worker-pool pattern runs jobs concurrently, `map`/`imap` keep
//! input order and `imap_unordered` completion order, slots come back after a
//! panic or a kill (also of a greenlet that never started), and a group joins
//! and kills its members. In single-threaded and M:N mode; `Group::join` also
//! from a plain thread.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DropCounter, in_each_mode, with_deadline};
use greenhub::Builder;
use greenhub::pool::{Group, Pool};

const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn pool_of_four_never_runs_a_fifth() {
    in_each_mode("pool_limit", |mode| {
        let pool = Pool::new(4);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                pool.spawn(move || {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    greenhub::sleep(Duration::from_millis(3));
                    running.fetch_sub(1, SeqCst);
                })
            })
            .collect();
        assert!(pool.len() <= 4, "{mode}: len {}", pool.len());
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(peak.load(SeqCst), 4, "{mode}: peak concurrency");
        assert_eq!(pool.free_count(), 4, "{mode}");
    });
}

#[test]
fn worker_pattern_runs_jobs_concurrently() {
    in_each_mode("worker_pattern", |mode| {
        // 20 jobs of 1..=20 ms (a fixed shuffle) on a pool of 3 workers.
        let sleeps: Vec<u64> = (0..20u64).map(|i| (i * 7) % 20 + 1).collect();
        let sum: u64 = sleeps.iter().sum();
        let pool = Pool::new(3);
        let t = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        for &ms in &sleeps {
            let done = done.clone();
            pool.spawn(move || {
                greenhub::sleep(Duration::from_millis(ms));
                done.fetch_add(1, SeqCst);
            });
        }
        pool.join();
        let took = t.elapsed();
        assert_eq!(done.load(SeqCst), 20, "{mode}");
        assert!(
            took < Duration::from_millis(sum * 6 / 10),
            "{mode}: {took:?} for jobs summing to {sum} ms on 3 workers"
        );
        assert!(took >= Duration::from_millis(sum / 3), "{mode}: {took:?}");
    });
}

#[test]
fn map_keeps_input_order() {
    in_each_mode("map_order", |mode| {
        let pool = Pool::new(3);
        let out = pool.map(0..12u64, |i| {
            greenhub::sleep(Duration::from_millis(12 - i)); // later items finish first
            i * 2
        });
        assert_eq!(out, (0..12).map(|i| i * 2).collect::<Vec<_>>(), "{mode}");
        assert!(pool.map(Vec::<u8>::new(), |x| x).is_empty());
    });
}

#[test]
fn imap_yields_in_order_while_later_items_already_finished() {
    let rt = Builder::new().single_threaded().build().unwrap();
    with_deadline("imap_order", 60, move || {
        rt.block_on(|| {
            let pool = Pool::new(3);
            let finished = Arc::new(Mutex::new(Vec::new()));
            let f2 = finished.clone();
            let mut it = pool.imap([30u64, 5, 10], move |ms| {
                greenhub::sleep(Duration::from_millis(ms));
                f2.lock().unwrap().push(ms);
                ms
            });
            assert_eq!(it.next(), Some(30));
            // The two later items finished before the first was yielded.
            assert_eq!(*finished.lock().unwrap(), [5, 10, 30]);
            assert_eq!(it.collect::<Vec<_>>(), [5, 10]);
        })
    });
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let rt = Builder::new().single_threaded().build().unwrap();
    with_deadline("imap_unordered", 60, move || {
        rt.block_on(|| {
            let pool = Pool::new(3);
            let sleep_ms = |ms: u64| {
                greenhub::sleep(Duration::from_millis(ms));
                ms
            };
            let order: Vec<u64> = pool.imap_unordered([30, 5, 15], sleep_ms).collect();
            assert_eq!(order, [5, 15, 30]);
            // gevent's example: with one worker, completion order is input order.
            let one = Pool::new(1);
            let order: Vec<u64> = one.imap_unordered([20, 2, 8], sleep_ms).collect();
            assert_eq!(order, [20, 2, 8]);
        })
    });
}

#[test]
fn imap_keeps_at_most_size_jobs_in_flight() {
    in_each_mode("imap_in_flight", |mode| {
        let pool = Pool::new(3);
        let started = Arc::new(AtomicUsize::new(0));
        let s2 = started.clone();
        let it = pool.imap(0..15, move |i: usize| {
            s2.fetch_add(1, SeqCst);
            greenhub::sleep(Duration::from_millis(1));
            i
        });
        for (consumed, v) in it.enumerate() {
            assert_eq!(v, consumed, "{mode}");
            let s = started.load(SeqCst);
            assert!(
                s <= consumed + 1 + 3,
                "{mode}: {s} started, {consumed} consumed"
            );
        }
        assert_eq!(started.load(SeqCst), 15);
    });
}

#[test]
fn slot_freed_after_panic_and_kill() {
    in_each_mode("slot_freed", |mode| {
        let pool = Pool::new(2);
        let err = pool.spawn(|| panic!("job failed")).join().unwrap_err();
        assert!(err.is_panic(), "{mode}");
        assert_eq!(pool.free_count(), 2, "{mode}: after a panic");

        let h = pool.spawn(|| greenhub::sleep(FOREVER));
        greenhub::sleep(Duration::from_millis(2)); // let it block
        h.kill();
        assert!(h.join().unwrap_err().is_killed(), "{mode}");
        assert_eq!(pool.free_count(), 2, "{mode}: after a kill");

        // Killed before it ever ran: its closure (holding the slot) is dropped.
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(drops.clone());
        let h = pool.spawn(move || drop(guard));
        h.kill();
        let _ = h.join(); // killed, or finished first in M:N
        assert_eq!(drops.load(SeqCst), 1, "{mode}");
        assert_eq!(pool.free_count(), 2, "{mode}: after a kill before start");

        // Still usable, and map propagates a job's panic after the others.
        assert_eq!(pool.map(1..=4, |x: i32| x + 1), [2, 3, 4, 5], "{mode}");
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.map(0..6, |x: i32| if x == 3 { panic!("bad item") } else { x })
        }));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad item"), "{mode}");
        pool.join();
        assert_eq!((pool.len(), pool.free_count()), (0, 2), "{mode}");
    });
}

#[test]
fn try_spawn_spawn_timeout_wait_available_and_kill() {
    in_each_mode("try_spawn", |mode| {
        let pool = Pool::new(2);
        let a = pool.spawn(|| greenhub::sleep(FOREVER));
        let b = pool.try_spawn(|| greenhub::sleep(FOREVER)).ok().unwrap();
        assert!(pool.try_spawn(|| ()).is_err(), "{mode}: full");
        let t = Instant::now();
        assert!(
            pool.spawn_timeout(Duration::from_millis(10), || ())
                .is_err()
        );
        assert!(t.elapsed() >= Duration::from_millis(10), "{mode}");
        assert_eq!((pool.len(), pool.free_count()), (2, 0), "{mode}");

        let pool = Arc::new(pool);
        let p2 = pool.clone();
        let waiter = greenhub::spawn(move || p2.wait_available());
        greenhub::sleep(Duration::from_millis(2));
        assert!(
            !waiter.is_finished(),
            "{mode}: wait_available returned while full"
        );
        pool.kill();
        assert!(waiter.join().unwrap() >= 1, "{mode}");
        assert!(a.join().unwrap_err().is_killed() && b.join().unwrap_err().is_killed());
        assert!(pool.join_timeout(Duration::from_secs(10)), "{mode}");
        assert_eq!(pool.free_count(), 2, "{mode}");
    });
}

#[test]
fn group_join_waits_for_all_members() {
    in_each_mode("group_join", |mode| {
        let group = Group::new();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..10u64 {
            let done = done.clone();
            group.spawn(move || {
                greenhub::sleep(Duration::from_millis(1 + i % 5));
                done.fetch_add(1, SeqCst);
            });
        }
        let text = group.spawn(|| "other types are fine");
        group.join();
        assert_eq!(done.load(SeqCst), 10, "{mode}");
        assert!(group.is_empty(), "{mode}");
        assert_eq!(text.join().unwrap(), "other types are fine");
        group.join(); // empty: returns at once
    });
}

#[test]
fn group_kill_kills_sleeping_and_parked_members() {
    in_each_mode("group_kill", |mode| {
        let group = Group::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let guard = DropCounter(drops.clone());
                let started = started.clone();
                group.spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, SeqCst);
                    if i % 2 == 0 {
                        greenhub::sleep(FOREVER);
                    } else {
                        loop {
                            greenhub::park();
                        }
                    }
                })
            })
            .collect();
        while started.load(SeqCst) < 6 {
            greenhub::sleep(Duration::from_millis(1));
        }
        assert!(!group.join_timeout(Duration::from_millis(5)), "{mode}");
        let t = Instant::now();
        group.kill();
        group.join();
        assert!(t.elapsed() < Duration::from_secs(5), "{mode}");
        assert_eq!(drops.load(SeqCst), 6, "{mode}: destructors ran");
        for h in handles {
            assert!(h.join().unwrap_err().is_killed(), "{mode}");
        }
    });
}

#[test]
fn group_join_from_a_plain_thread() {
    with_deadline("group_thread", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let group = Arc::new(Group::new());
        let done = Arc::new(AtomicUsize::new(0));
        let (g2, d2) = (group.clone(), done.clone());
        rt.block_on(move || {
            for _ in 0..5 {
                let d = d2.clone();
                g2.spawn(move || {
                    greenhub::sleep(Duration::from_millis(10));
                    d.fetch_add(1, SeqCst);
                });
            }
        });
        group.join(); // blocks this OS thread, not a hub
        assert_eq!(done.load(SeqCst), 5);
        assert!(group.is_empty());
    });
}
