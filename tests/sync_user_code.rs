//! No user code under an internal spin lock: user `Clone`, `Ord` and `Drop`
//! impls that block (park their greenlet) while another greenlet of the same
//! hub uses the same primitive.
//!
//! Every primitive keeps its state behind a spin lock (`SpinLock`); a user
//! impl run under it that parks would leave every other greenlet of a
//! single-threaded hub spinning on that lock forever (the holder never runs
//! again). Each test runs its runtime on its own OS thread under a deadline,
//! so such a hang fails the test with a message instead of hanging the run.

mod common;

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::with_deadline;
use greenhub::Builder;
use greenhub::channel::Queue;
use greenhub::sync::AsyncResult;

/// Generous: each test finishes in well under a second when nothing hangs.
const DEADLINE_S: u64 = 20;

/// Runs `body` as the main greenlet of a single-threaded runtime, under the
/// deadline.
fn single(what: &'static str, body: fn()) {
    with_deadline(what, DEADLINE_S, move || {
        Builder::new()
            .single_threaded()
            .build()
            .expect("build runtime")
            .block_on(body)
    });
}

/// Runs `body` on a single-threaded runtime and on an M:N one with two hubs.
fn both_modes(what: &'static str, body: fn()) {
    single(what, body);
    with_deadline(what, DEADLINE_S, move || {
        Builder::new()
            .hubs(2)
            .build()
            .expect("build runtime")
            .block_on(body)
    });
}

/// A value whose `Clone` parks the cloning greenlet.
#[derive(Debug)]
struct SlowClone {
    v: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for SlowClone {
    fn clone(&self) -> Self {
        greenhub::sleep(Duration::from_millis(5));
        self.clones.fetch_add(1, SeqCst);
        SlowClone {
            v: self.v,
            clones: self.clones.clone(),
        }
    }
}

/// `AsyncResult::get` clones the value: a getter parked in `Clone` must not
/// keep other greenlets from reading the result (the repro of issue 18.5).
#[test]
fn async_result_clone_that_parks() {
    single("async_result_clone_that_parks", || {
        let clones = Arc::new(AtomicUsize::new(0));
        let r = Arc::new(AsyncResult::new());
        r.set(SlowClone {
            v: 7,
            clones: clones.clone(),
        })
        .unwrap();
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let r = r.clone();
                greenhub::spawn(move || r.get().unwrap().v)
            })
            .collect();
        greenhub::yield_now(); // the getters run and park inside `clone`
        assert!(r.is_ready());
        assert!(r.is_successful());
        assert!(
            r.set(SlowClone {
                v: 8,
                clones: clones.clone(),
            })
            .is_err()
        );
        assert_eq!(r.try_get().unwrap().unwrap().v, 7);
        assert!(format!("{r:?}").contains("value"));
        for g in getters {
            assert_eq!(g.join().unwrap(), 7);
        }
        assert_eq!(clones.load(SeqCst), 4);
    });
}

/// A waiter blocked in `get` before `set` also clones after being woken,
/// while other greenlets wait and read.
#[test]
fn async_result_waiters_clone_that_parks() {
    both_modes("async_result_waiters_clone_that_parks", || {
        let clones = Arc::new(AtomicUsize::new(0));
        let r = Arc::new(AsyncResult::<SlowClone>::new());
        let getters: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                greenhub::spawn(move || r.get_timeout(Duration::from_secs(10)).unwrap().unwrap().v)
            })
            .collect();
        greenhub::yield_now(); // all wait
        r.set(SlowClone {
            v: 3,
            clones: clones.clone(),
        })
        .unwrap();
        while !getters.iter().all(|g| g.is_finished()) {
            assert!(r.is_ready());
            greenhub::sleep(Duration::from_millis(1));
        }
        for g in getters {
            assert_eq!(g.join().unwrap(), 3);
        }
        assert_eq!(clones.load(SeqCst), 4);
    });
}

/// A queue item whose comparison parks (every few comparisons).
#[derive(Debug)]
struct SlowOrd {
    key: u32,
    calls: Arc<AtomicUsize>,
}

impl SlowOrd {
    fn new(key: u32, calls: &Arc<AtomicUsize>) -> SlowOrd {
        SlowOrd {
            key,
            calls: calls.clone(),
        }
    }
}

impl PartialEq for SlowOrd {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SlowOrd {}

impl PartialOrd for SlowOrd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SlowOrd {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.calls.fetch_add(1, SeqCst) % 3 == 0 {
            greenhub::sleep(Duration::from_millis(1));
        } else {
            greenhub::yield_now();
        }
        self.key.cmp(&other.key)
    }
}

/// Priority puts and gets whose `Ord` parks, from several greenlets at once,
/// with readers of the length meanwhile: every item comes out, in order.
#[test]
fn priority_queue_ord_that_parks() {
    both_modes("priority_queue_ord_that_parks", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let q = Arc::new(Queue::priority(None));
        let putters: Vec<_> = (0..3u32)
            .map(|p| {
                let (q, calls) = (q.clone(), calls.clone());
                greenhub::spawn(move || {
                    for i in 0..10u32 {
                        // Keys 0..30, each once, in scrambled order.
                        q.put(SlowOrd::new((p * 10 + i) * 7 % 30, &calls));
                    }
                })
            })
            .collect();
        let watcher = {
            let q = q.clone();
            greenhub::spawn(move || {
                let mut seen = 0;
                while seen < 30 {
                    let len = q.len();
                    assert!(q.unfinished_tasks() >= len);
                    seen = seen.max(len);
                    greenhub::yield_now();
                }
            })
        };
        for p in putters {
            p.join().unwrap();
        }
        watcher.join().unwrap();
        assert_eq!(q.len(), 30);
        // Two getters draining it at once, each in increasing order.
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                greenhub::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(item) = q.try_get() {
                        got.push(item.key);
                        q.task_done().unwrap();
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for g in getters {
            let got = g.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        assert!(q.is_empty());
        q.join();
        assert!(calls.load(SeqCst) > 0);
    });
}

/// A bounded priority queue: a get that frees room moves a waiting putter's
/// item in (a comparison that parks) while other greenlets put and get.
/// (Single-threaded only: the putters must queue in spawn order.)
#[test]
fn bounded_priority_queue_ord_that_parks() {
    single("bounded_priority_queue_ord_that_parks", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let q = Arc::new(Queue::priority(Some(2)));
        q.put(SlowOrd::new(50, &calls));
        q.put(SlowOrd::new(30, &calls));
        assert!(q.is_full());
        // Reads the queue's state while the comparisons below park.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (q, stop) = (q.clone(), stop.clone());
            greenhub::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(SeqCst) {
                    assert!(q.len() <= 2);
                    reads += 1;
                    greenhub::yield_now();
                }
                reads
            })
        };
        // Three putters wait for room (full queue).
        let putters: Vec<_> = [10, 40, 20]
            .into_iter()
            .map(|k| {
                let (q, calls) = (q.clone(), calls.clone());
                let h = greenhub::spawn(move || q.put(SlowOrd::new(k, &calls)));
                greenhub::sleep(Duration::from_millis(2)); // queue in this order
                h
            })
            .collect();
        // Each get returns the smallest item present, then the first waiting
        // putter's item moves in.
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(q.get().key);
        }
        for p in putters {
            p.join().unwrap();
        }
        stop.store(true, SeqCst);
        assert!(watcher.join().unwrap() > 0);
        assert_eq!(got, [30, 10, 40, 20, 50]);
        assert!(q.is_empty());
        assert_eq!(q.unfinished_tasks(), 5);
        // A waiting getter gets a put's item directly, no comparison needed.
        let getter = {
            let q = q.clone();
            greenhub::spawn(move || q.get().key)
        };
        greenhub::yield_now();
        q.put(SlowOrd::new(99, &calls));
        assert_eq!(getter.join().unwrap(), 99);
        // A timed-out put gives its item back.
        q.put(SlowOrd::new(1, &calls));
        q.put(SlowOrd::new(2, &calls));
        let back = q
            .put_timeout(SlowOrd::new(3, &calls), Duration::from_millis(2))
            .unwrap_err()
            .into_inner();
        assert_eq!(back.key, 3);
        assert_eq!(q.get().key, 1);
        assert_eq!(q.get().key, 2);
        assert_eq!(q.try_get().map(|i| i.key), None);
    });
}

/// A zero-capacity priority queue hands items from putter to getter
/// without comparing.
#[test]
fn zero_capacity_priority_queue() {
    both_modes("zero_capacity_priority_queue", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let q = Arc::new(Queue::priority(Some(0)));
        let putter = {
            let (q, calls) = (q.clone(), calls.clone());
            greenhub::spawn(move || {
                for k in [5, 1, 3] {
                    q.put(SlowOrd::new(k, &calls));
                }
            })
        };
        let got: Vec<u32> = (0..3).map(|_| q.get().key).collect();
        putter.join().unwrap();
        assert_eq!(got, [5, 1, 3]);
        assert_eq!(calls.load(SeqCst), 0);
    });
}

/// A value whose `Drop` parks the dropping greenlet.
#[derive(Debug)]
struct SlowDrop(Arc<AtomicUsize>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        // Counted first: in a killed greenlet the sleep raises the kill.
        self.0.fetch_add(1, SeqCst);
        greenhub::sleep(Duration::from_millis(2));
    }
}

/// Values dropped by a primitive (buffered values of a channel whose last
/// receiver goes, the item of a killed putter) are dropped after its lock
/// is released.
#[test]
fn drops_that_park() {
    single("drops_that_park", || {
        let drops = Arc::new(AtomicUsize::new(0));
        // Channel: the last receiver drops the buffered values.
        let (tx, rx) = greenhub::channel::bounded(4);
        for _ in 0..3 {
            tx.send(SlowDrop(drops.clone())).unwrap();
        }
        let dropper = greenhub::spawn(move || drop(rx));
        greenhub::yield_now(); // parked in the first value's `drop`
        assert!(tx.is_closed());
        assert!(tx.send(SlowDrop(drops.clone())).is_err()); // dropped here
        dropper.join().unwrap();
        assert_eq!(drops.load(SeqCst), 4);

        // Queue: a killed putter drops its item.
        let q = Arc::new(Queue::bounded(0));
        let putter = {
            let (q, drops) = (q.clone(), drops.clone());
            greenhub::spawn(move || q.put(SlowDrop(drops)))
        };
        greenhub::yield_now();
        putter.kill();
        greenhub::yield_now(); // the putter unwinds, parked in `drop`
        assert!(q.try_put(SlowDrop(drops.clone())).is_err()); // dropped here
        assert!(putter.join().unwrap_err().is_killed());
        assert_eq!(drops.load(SeqCst), 6);

        // AsyncResult: a refused `set` hands the value back.
        let r = Arc::new(AsyncResult::new());
        r.set(SlowDrop(drops.clone())).unwrap();
        let (r2, drops2) = (r.clone(), drops.clone());
        let refused = greenhub::spawn(move || drop(r2.set(SlowDrop(drops2))));
        greenhub::yield_now(); // parked in the refused value's `drop`
        assert!(r.is_ready());
        refused.join().unwrap();
        assert_eq!(drops.load(SeqCst), 7);
        drop(r);
        assert_eq!(drops.load(SeqCst), 8);
    });
}
