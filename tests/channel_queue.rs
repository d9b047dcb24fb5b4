//! Queue: the asyncio tutorial's worker queue, task_done/join, LIFO and
//! priority order, bounded puts, kills of blocked getters and putters.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::with_deadline;
use greenhub::Builder;
use greenhub::channel::Queue;

use common::runtimes as modes;

/// The asyncio docs' queue example: 20 random sleeps shared by 3 workers
/// take about a third of their sum, not the sum.
#[test]
fn asyncio_worker_queue() {
    with_deadline("worker queue", 60, || {
        for rt in modes() {
            rt.block_on(|| {
                let q = Arc::new(Queue::new());
                let mut seed = 0x2545_f491_4f6c_dd1du64;
                let mut total = Duration::ZERO;
                for _ in 0..20 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let d = Duration::from_millis(5 + seed % 45);
                    total += d;
                    q.put(d);
                }
                let slept = Arc::new(Mutex::new(Duration::ZERO));
                let start = Instant::now();
                let workers: Vec<_> = (0..3)
                    .map(|_| {
                        let (q, slept) = (q.clone(), slept.clone());
                        greenhub::spawn(move || {
                            loop {
                                let d: Duration = q.get();
                                greenhub::sleep(d);
                                *slept.lock().unwrap() += d;
                                q.task_done().unwrap();
                            }
                        })
                    })
                    .collect();
                q.join();
                let elapsed = start.elapsed();
                for w in &workers {
                    w.kill();
                }
                for w in workers {
                    assert!(w.join().unwrap_err().is_killed());
                }
                assert_eq!(*slept.lock().unwrap(), total);
                assert!(elapsed >= total / 3, "{elapsed:?} < {total:?} / 3");
                assert!(
                    elapsed < total * 2 / 3,
                    "{elapsed:?} not near {total:?} / 3"
                );
            });
        }
    });
}

#[test]
fn orders() {
    let q = Queue::lifo(None);
    (0..4).for_each(|i| q.put(i));
    assert_eq!((0..4).map(|_| q.get()).collect::<Vec<_>>(), [3, 2, 1, 0]);
    let q = Queue::priority(Some(10));
    for v in [5, 1, 4, 2, 3] {
        q.put(v);
    }
    assert_eq!((0..5).map(|_| q.get()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(q.unfinished_tasks(), 5);
    (0..5).for_each(|_| q.task_done().unwrap());
    assert!(q.task_done().is_err());
}

#[test]
fn bounded_put_waits_for_room_in_fifo_order() {
    Builder::new()
        .single_threaded()
        .build()
        .unwrap()
        .block_on(|| {
            let q = Arc::new(Queue::bounded(1));
            q.put(0);
            let putters: Vec<_> = (1..=3)
                .map(|i| {
                    let q = q.clone();
                    greenhub::spawn(move || q.put(i))
                })
                .collect();
            greenhub::yield_now();
            assert_eq!(q.len(), 1);
            let got: Vec<i32> = (0..4).map(|_| q.get()).collect();
            assert_eq!(got, [0, 1, 2, 3]);
            putters.into_iter().for_each(|h| h.join().unwrap());
            // Zero capacity: each put hands over to a getter.
            let q0 = Arc::new(Queue::bounded(0));
            let q1 = q0.clone();
            let h = greenhub::spawn(move || q1.put("direct"));
            assert_eq!(q0.get(), "direct");
            h.join().unwrap();
        });
}

#[test]
fn killed_getters_and_putters_lose_nothing() {
    with_deadline("queue kills", 60, || {
        for rt in modes() {
            rt.block_on(|| {
                let q = Arc::new(Queue::bounded(2));
                let got = Arc::new(AtomicUsize::new(0));
                let put = Arc::new(AtomicUsize::new(0));
                let mut hs = Vec::new();
                for i in 0..40 {
                    let (qg, got2) = (q.clone(), got.clone());
                    hs.push(greenhub::spawn(move || {
                        for _ in 0..10 {
                            qg.get();
                            // No blocking point between the get and the count:
                            // a kill cannot fall in between.
                            got2.fetch_add(1, SeqCst);
                        }
                    }));
                    let (qp, put2) = (q.clone(), put.clone());
                    hs.push(greenhub::spawn(move || {
                        for _ in 0..10 {
                            qp.put(i);
                            put2.fetch_add(1, SeqCst);
                        }
                    }));
                    if i % 3 == 0 {
                        greenhub::yield_now();
                        hs[i].kill();
                    }
                }
                // Getters and putters no longer matched by a partner are
                // blocked now: kill them all.
                greenhub::sleep(Duration::from_millis(50));
                hs.iter().for_each(|h| h.kill());
                for h in hs {
                    let _ = h.join();
                }
                // Everything put was either taken by a getter or is still queued.
                let left = std::iter::from_fn(|| q.try_get()).count();
                assert_eq!(got.load(SeqCst) + left, put.load(SeqCst));
                assert_eq!(q.unfinished_tasks(), put.load(SeqCst));
            });
        }
    });
}

#[test]
fn plain_thread_producer() {
    let rt = Builder::new().hubs(2).build().unwrap();
    let q = Arc::new(Queue::new());
    let q2 = q.clone();
    let consumer = rt.spawn(move || (0..100).map(|_| q2.get()).sum::<u32>());
    for i in 0..100 {
        q.put(i);
    }
    assert_eq!(consumer.join().unwrap(), 4950);
}
