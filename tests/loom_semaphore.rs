//! Loom models of the **wait-list primitives** of `greenhub::sync`:
//! `Semaphore` acquire/release and `Mutex` lock/unlock handoff, each racing
//! with waiters whose timeouts fire at an arbitrary point.
//!
//! The real code runs on loom threads (no hubs): every internal lock and the
//! mutex's state word are the loom shim's, and `park_until` with a deadline
//! models the deadline passing at an arbitrary point (it yields once, then
//! reports `TimedOut`; see `park_thread_until` in `src/greenlet/wait.rs`).
//! So each model covers both outcomes of a grant racing with a timeout: the
//! grant wins (the waiter returns what it was given) or the timeout wins (the
//! waiter leaves the queue and the next one, or nobody, is served).
//!
//! A yielded loom thread is only scheduled again once the others have
//! yielded or blocked, so each holder yields once inside its critical
//! section: without that, a waiter's deadline would only ever pass after the
//! holder was done and the timeout-wins interleavings would go unexplored.
//!
//! Invariants asserted: no permit (or lock) is ever lost, duplicated or
//! leaked; at most one holder at a time; bounded semaphores refuse releases
//! past their bound. A waiter left parked forever shows up as a loom
//! deadlock. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test --release --test loom_semaphore`.

#![cfg(loom)]

use std::time::Duration;

use greenhub::sync::{Mutex, Semaphore};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// Any duration: under loom, a deadline fires at an arbitrary point.
const SOON: Duration = Duration::from_millis(1);

/// One permit: A takes and returns it, B tries with a timeout. B gets it or
/// times out, and afterwards exactly the one permit is free.
#[test]
fn semaphore_release_vs_timed_acquire() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        let (s, h) = (sem.clone(), holders.clone());
        let a = thread::spawn(move || {
            let p = s.acquire();
            assert_eq!(h.fetch_add(1, SeqCst), 0, "two holders");
            // A while in the critical section: lets B's deadline pass first.
            thread::yield_now();
            h.fetch_sub(1, SeqCst);
            drop(p);
        });
        let got = match sem.acquire_timeout(SOON) {
            Some(p) => {
                assert_eq!(holders.fetch_add(1, SeqCst), 0, "two holders");
                holders.fetch_sub(1, SeqCst);
                drop(p);
                true
            }
            None => false,
        };
        a.join().unwrap();
        assert_eq!(
            sem.available_permits(),
            1,
            "permit lost or duplicated (B got it: {got})"
        );
        assert!(!sem.is_locked());
    });
}

/// No free permit, two timed waiters, one release: at most one of them gets
/// the permit (and keeps it); if neither does, it is still free.
#[test]
fn semaphore_two_timed_waiters_one_release() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = |sem: Arc<Semaphore>| {
            thread::spawn(move || match sem.acquire_timeout(SOON) {
                Some(p) => {
                    p.forget();
                    1
                }
                None => 0,
            })
        };
        let (b, c) = (waiter(sem.clone()), waiter(sem.clone()));
        thread::yield_now();
        sem.release(1).unwrap();
        let got = b.join().unwrap() + c.join().unwrap();
        assert_eq!(
            got + sem.available_permits(),
            1,
            "permit lost or duplicated"
        );
    });
}

/// A bounded semaphore: a release while the one permit is held would take
/// it over the bound once the permit comes back, so it must fail; a release
/// after the permit came back must fail too. The bound holds in every
/// interleaving.
#[test]
fn bounded_semaphore_refuses_release_past_bound() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::bounded(1));
        let s = sem.clone();
        let a = thread::spawn(move || {
            let p = s.acquire();
            thread::yield_now();
            drop(p);
        });
        let released = sem.release(1).is_ok();
        a.join().unwrap();
        assert!(!released, "release past the bound accepted");
        assert_eq!(sem.available_permits(), 1);
    });
}

/// Mutex handoff vs. a timed waiter: A locks, increments and unlocks; B
/// tries `lock_timeout`. B gets the lock (handed over or free) or times out;
/// the lock is never leaked and every holder's increment is there.
#[test]
fn mutex_handoff_vs_lock_timeout() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(0usize));
        let m2 = m.clone();
        let a = thread::spawn(move || {
            let mut g = m2.lock();
            // A while in the critical section: lets B's deadline pass first.
            thread::yield_now();
            *g += 1;
        });
        let got = m.lock_timeout(SOON).map(|mut g| *g += 1).is_some();
        a.join().unwrap();
        assert!(!m.is_locked(), "lock leaked");
        let g = m.try_lock().expect("lock leaked");
        assert_eq!(*g, 1 + usize::from(got));
    });
}

/// Two timed waiters queue behind a holder: each gets the lock or times out;
/// none is left behind, the lock ends free, no increment is lost.
#[test]
fn mutex_two_timed_waiters() {
    loom::model(|| {
        let m = Arc::new(Mutex::new(0usize));
        let g = m.lock();
        let waiter = |m: Arc<Mutex<usize>>| {
            thread::spawn(move || usize::from(m.lock_timeout(SOON).map(|mut g| *g += 1).is_some()))
        };
        let (b, c) = (waiter(m.clone()), waiter(m.clone()));
        thread::yield_now();
        drop(g);
        let got = b.join().unwrap() + c.join().unwrap();
        assert!(!m.is_locked(), "lock leaked");
        assert_eq!(*m.try_lock().expect("lock leaked"), got);
    });
}
