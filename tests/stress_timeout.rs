//! Stress: timeout storms racing wakes.
//!
//! - Channels: receivers loop on `recv_timeout` and on `timeout(recv)` with
//!   deadlines of 0 to 200 µs while senders send unique values at random
//!   moments, so deadlines keep expiring at the instant a value is handed
//!   over. Every value sent is received exactly once (by a receive that
//!   returned it, or drained at the end): a value given to a receiver whose
//!   deadline won the race must not vanish.
//! - Locks: greenlets take a `Mutex` and a `Semaphore` with tiny timeouts
//!   while others release them. Each success is counted under the lock, and
//!   at the end the mutex is free and every permit is back: a hand-off to a
//!   waiter that had just timed out must not leak the lock or a permit.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::with_deadline;
use greenhub::Builder;
use greenhub::channel::{self, Receiver, Sender};
use greenhub::sync::{Mutex, Semaphore};

/// xorshift64: deterministic jitter without a dependency.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn jitter(seed: &mut u64) -> Duration {
    Duration::from_micros(next(seed) % 200)
}

const SENDERS: usize = 8;
const RECEIVERS: usize = 16;
const PER_SENDER: u64 = 25_000;

fn channel_storm(tx: Sender<u64>, rx: Receiver<u64>, what: &str) -> (usize, usize) {
    let received = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS as u64)
        .map(|s| {
            let tx = tx.clone();
            greenhub::spawn(move || {
                let mut seed = s + 1;
                for i in 0..PER_SENDER {
                    if next(&mut seed) % 8 == 0 {
                        greenhub::sleep(jitter(&mut seed));
                    }
                    tx.send(s * PER_SENDER + i).unwrap();
                }
            })
        })
        .collect();
    let receivers: Vec<_> = (0..RECEIVERS as u64)
        .map(|r| {
            let (rx, received, timeouts) = (rx.clone(), received.clone(), timeouts.clone());
            greenhub::spawn(move || {
                let mut seed = 1000 + r;
                loop {
                    let d = jitter(&mut seed);
                    let got = if r % 2 == 0 {
                        rx.recv_timeout(d)
                            .map_err(|e| e == channel::RecvTimeoutError::Disconnected)
                    } else {
                        match greenhub::timeout(d, || rx.recv()) {
                            Ok(v) => v.map_err(|_| true),
                            Err(_) => Err(false),
                        }
                    };
                    match got {
                        Ok(v) => received.lock().push(v),
                        Err(true) => return,
                        Err(false) => drop(timeouts.fetch_add(1, SeqCst)),
                    }
                }
            })
        })
        .collect();
    for h in senders {
        h.join().unwrap();
    }
    drop(tx);
    // The receivers see the channel closed once it is empty.
    for h in receivers {
        h.join().unwrap();
    }
    while let Ok(v) = rx.try_recv() {
        received.lock().push(v);
    }
    let received = received.lock();
    let total = SENDERS * PER_SENDER as usize;
    let set: HashSet<_> = received.iter().copied().collect();
    assert_eq!(
        set.len(),
        received.len(),
        "{what}: a value was received twice"
    );
    assert_eq!(received.len(), total, "{what}: values lost");
    (total, timeouts.load(SeqCst))
}

const LOCKERS: usize = 32;
const LOCK_TRIES: usize = 5_000;

fn lock_storm(what: &str) -> (usize, usize) {
    let mutex = Arc::new(Mutex::new(0usize));
    let sem = Arc::new(Semaphore::new(3));
    let successes = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..LOCKERS as u64)
        .map(|g| {
            let (mutex, sem) = (mutex.clone(), sem.clone());
            let (successes, timeouts) = (successes.clone(), timeouts.clone());
            greenhub::spawn(move || {
                let mut seed = 77 + g;
                for i in 0..LOCK_TRIES {
                    let d = jitter(&mut seed);
                    if i % 2 == 0 {
                        match mutex.lock_timeout(d) {
                            Some(mut guard) => {
                                let seen = *guard;
                                if next(&mut seed) % 4 == 0 {
                                    greenhub::yield_now();
                                }
                                *guard = seen + 1;
                                successes.fetch_add(1, SeqCst);
                            }
                            None => drop(timeouts.fetch_add(1, SeqCst)),
                        }
                    } else {
                        match sem.acquire_timeout(d) {
                            Some(_permit) => greenhub::yield_now(),
                            None => drop(timeouts.fetch_add(1, SeqCst)),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(!mutex.is_locked(), "{what}: the mutex leaked");
    assert_eq!(
        *mutex.lock(),
        successes.load(SeqCst),
        "{what}: lost updates"
    );
    assert_eq!(sem.available_permits(), 3, "{what}: permits leaked");
    (LOCKERS * LOCK_TRIES, timeouts.load(SeqCst))
}

fn run(builder: Builder, what: &'static str) {
    with_deadline(what, 240, move || {
        let t0 = Instant::now();
        let rt = builder.build().unwrap();
        let (msgs, chan_timeouts) = rt.block_on(move || {
            let (a, b) = {
                let (tx, rx) = channel::bounded(4);
                channel_storm(tx, rx, what)
            };
            let (c, d) = {
                let (tx, rx) = channel::unbounded();
                channel_storm(tx, rx, what)
            };
            let (e, f) = {
                let (tx, rx) = channel::rendezvous();
                channel_storm(tx, rx, what)
            };
            (a + c + e, b + d + f)
        });
        let (tries, lock_timeouts) = rt.block_on(move || lock_storm(what));
        let migrated = rt.handle().metrics().total().migrated;
        drop(rt);
        eprintln!(
            "STRESS timeout storm {what}: greenlets={} messages={msgs} \
             channel_timeouts={chan_timeouts} lock_attempts={tries} \
             lock_timeouts={lock_timeouts} migrated={migrated} duration={:.1}s",
            3 * (SENDERS + RECEIVERS) + LOCKERS,
            t0.elapsed().as_secs_f64()
        );
    });
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn timeout_storm_racing_wakes_mn() {
    run(Builder::new().hubs(2), "M:N 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn timeout_storm_racing_wakes_single() {
    run(Builder::new().single_threaded(), "single-threaded");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn timeout_storm_racing_wakes_migrate() {
    // SAFETY: the greenlets keep channels, greenhub locks and `Arc`s across
    // their blocking calls; the parking_lot log is never locked across one.
    let builder = unsafe { Builder::new().hubs(2).migratable() };
    run(builder, "M:N 2 hubs, migratable");
}
