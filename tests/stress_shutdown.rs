//! Stress: shutting a runtime down while it is busy.
//!
//! Over and over, in each mode (single-threaded, M:N and pinned with two
//! hubs), a runtime is filled with work: channel pumps that never stop,
//! greenlets spinning on `yield_now`, idlers, spawners that keep spawning
//! short-lived greenlets, and greenlets blocked in every blocking primitive
//! (`common::blockers`). After a short, varying delay the test thread shuts
//! it down. Checked each time: the shutdown returns (under a deadline);
//! every greenlet closure ever created was dropped exactly once, whether it
//! finished, was killed mid-block or never started; every kept handle
//! reports finished or killed; no message was received twice or without
//! being sent.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::blockers::{Blockers, KINDS};
use common::{DropCounter, with_deadline};
use greenhub::channel::{self, Receiver, Sender};
use greenhub::{Builder, Handle, JoinHandle};

const ITERATIONS: usize = 100;

#[derive(Default)]
struct Counts {
    spawned: AtomicUsize,
    drops: Arc<AtomicUsize>,
    sent: AtomicU64,
    received: parking_lot::Mutex<Vec<u64>>,
}

/// Spawns `f` on `rt` (from outside) or on the current runtime, counting it
/// and its drop.
fn spawn_counted<F>(c: &Arc<Counts>, rt: Option<&Handle>, f: F) -> JoinHandle<()>
where
    F: FnOnce(Arc<Counts>) + Send + 'static,
{
    c.spawned.fetch_add(1, SeqCst);
    let guard = DropCounter(c.drops.clone());
    let c2 = c.clone();
    let body = move || {
        let _guard = guard;
        f(c2)
    };
    match rt {
        Some(h) => h.spawn(body),
        None => greenhub::spawn(body),
    }
}

fn pump_send(tx: Sender<u64>) -> impl FnOnce(Arc<Counts>) + Send {
    move |c| {
        loop {
            let v = c.sent.fetch_add(1, SeqCst);
            if tx.send(v).is_err() {
                return;
            }
            // A send that does not block is no switch point, and a kill or
            // a shutdown lands only at one (gevent's rule too): without
            // this, a pump on an unbounded channel could never be stopped.
            if v % 64 == 0 {
                greenhub::yield_now();
            }
        }
    }
}

fn pump_recv(rx: Receiver<u64>) -> impl FnOnce(Arc<Counts>) + Send {
    move |c| {
        while let Ok(v) = rx.recv() {
            c.received.lock().push(v);
            if v % 64 == 0 {
                greenhub::yield_now();
            }
        }
    }
}

/// Fills `rt` with busy and blocked greenlets; returns the handles kept.
fn fill(rt: &Handle, c: &Arc<Counts>) -> Vec<JoinHandle<()>> {
    let mut kept = Vec::new();
    for (tx, rx) in [
        channel::bounded(8),
        channel::unbounded(),
        channel::rendezvous(),
    ] {
        for _ in 0..3 {
            kept.push(spawn_counted(c, Some(rt), pump_send(tx.clone())));
            kept.push(spawn_counted(c, Some(rt), pump_recv(rx.clone())));
        }
    }
    for i in 0..8u64 {
        kept.push(spawn_counted(c, Some(rt), move |_| {
            loop {
                if i % 2 == 0 {
                    greenhub::yield_now();
                } else {
                    greenhub::sleep(Duration::from_micros(50 * i));
                }
            }
        }));
    }
    for _ in 0..4 {
        kept.push(spawn_counted(c, Some(rt), |c| {
            loop {
                let h = spawn_counted(&c, None, |_| greenhub::yield_now());
                greenhub::yield_now();
                drop(h);
            }
        }));
    }
    kept.push(spawn_counted(c, Some(rt), |c| {
        let (b, _holders) = Blockers::new();
        for k in 0..KINDS.len() {
            let b = b.clone();
            drop(spawn_counted(&c, None, move |_| b.block(k)));
        }
        b.block(0);
    }));
    kept
}

fn shutdown_busy(builder: fn() -> Builder, what: &'static str) {
    with_deadline(what, 240, move || {
        let t0 = Instant::now();
        let mut greenlets = 0;
        let mut messages = 0;
        for i in 0..ITERATIONS {
            let rt = builder().build().unwrap();
            let c = Arc::new(Counts::default());
            let kept = fill(rt.handle(), &c);
            std::thread::sleep(Duration::from_millis((i % 10) as u64 * 3));
            rt.shutdown();
            for h in kept {
                let r = h.join();
                assert!(
                    r.is_ok() || r.as_ref().is_err_and(|e| e.is_killed()),
                    "{what}: {r:?}"
                );
            }
            let spawned = c.spawned.load(SeqCst);
            assert_eq!(c.drops.load(SeqCst), spawned, "{what}: closures dropped");
            let received = c.received.lock();
            let unique: HashSet<_> = received.iter().collect();
            assert_eq!(unique.len(), received.len(), "{what}: received twice");
            let sent = c.sent.load(SeqCst);
            assert!(received.iter().all(|v| *v < sent), "{what}: never sent");
            greenlets += spawned;
            messages += received.len();
        }
        eprintln!(
            "STRESS shutdown while busy {what}: runtimes={ITERATIONS} greenlets={greenlets} \
             messages={messages} duration={:.1}s",
            t0.elapsed().as_secs_f64()
        );
    });
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn shutdown_while_busy_single() {
    shutdown_busy(|| Builder::new().single_threaded(), "single-threaded");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn shutdown_while_busy_mn() {
    shutdown_busy(|| Builder::new().hubs(2), "M:N 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn shutdown_while_busy_pinned() {
    shutdown_busy(|| Builder::new().pinned().hubs(2), "pinned 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn shutdown_while_busy_migrate() {
    shutdown_busy(
        || {
            // SAFETY: the greenlets keep channels and `Arc`s across their
            // blocking calls; the parking_lot counters are never locked
            // across one.
            unsafe { Builder::new().hubs(2).migratable() }
        },
        "M:N 2 hubs, migratable",
    );
}
