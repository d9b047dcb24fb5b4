//! Stress: cross-hub wake storms.
//!
//! - Ping-pong: 1,000 pairs of greenlets, spawned from outside the runtime
//!   so that they start on either hub, each do 5,000 round trips over a pair
//!   of `bounded(1)` channels; every reply must carry the number sent, and
//!   the pairs whose two greenlets run on different hubs (recorded by hub
//!   thread) wake each other across threads on every message. M:N and
//!   pinned, two hubs each.
//! - Unpark storm: 4 plain OS threads hand out 2,000,000 tokens in all to 64
//!   parked greenlets with `Greenlet::unpark`; each greenlet parks until it
//!   has seen every token meant for it. A lost wake-up shows as a hang (the
//!   deadline fails the test); every token is counted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use common::with_deadline;
use greenhub::Builder;
use greenhub::channel;

const PAIRS: usize = 1_000;
const ROUNDS: u64 = 5_000;

fn hub_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

fn ping_pong(builder: Builder, what: &'static str) {
    with_deadline(what, 240, move || {
        let t0 = Instant::now();
        let rt = builder.build().unwrap();
        let mut handles = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            let (to_b, from_a) = channel::bounded(1);
            let (to_a, from_b) = channel::bounded(1);
            handles.push(rt.spawn(move || {
                let hub = hub_name();
                for k in 0..ROUNDS {
                    to_b.send(k).unwrap();
                    assert_eq!(from_b.recv().unwrap(), k, "reply");
                }
                hub
            }));
            handles.push(rt.spawn(move || {
                let hub = hub_name();
                for k in 0..ROUNDS {
                    assert_eq!(from_a.recv().unwrap(), k, "ping");
                    to_a.send(k).unwrap();
                }
                hub
            }));
        }
        let hubs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let migrated = rt.handle().metrics().total().migrated;
        drop(rt);
        let crossing = hubs.chunks(2).filter(|p| p[0] != p[1]).count();
        let messages = 2 * PAIRS * ROUNDS as usize;
        assert!(crossing > 0, "{what}: no pair ran across the two hubs");
        eprintln!(
            "STRESS cross-hub ping-pong {what}: greenlets={} messages={messages} \
             pairs_across_hubs={crossing} migrated={migrated} duration={:.1}s",
            2 * PAIRS,
            t0.elapsed().as_secs_f64()
        );
    });
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn cross_hub_ping_pong_mn() {
    ping_pong(Builder::new().hubs(2), "M:N 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn cross_hub_ping_pong_pinned() {
    ping_pong(Builder::new().pinned().hubs(2), "pinned 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn cross_hub_ping_pong_migrate() {
    // SAFETY: the greenlets keep channels, integers and `Arc`s of atomics
    // across their blocking calls: nothing tied to an OS thread.
    let builder = unsafe { Builder::new().hubs(2).migratable() };
    ping_pong(builder, "M:N 2 hubs, migratable");
}

const PARKERS: usize = 64;
const THREADS: usize = 4;
const TOKENS: usize = 2_000_000;

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn unpark_storm_from_os_threads() {
    with_deadline("unpark storm", 240, || {
        let t0 = Instant::now();
        let rt = Builder::new().hubs(2).build().unwrap();
        let given: Arc<Vec<AtomicUsize>> =
            Arc::new((0..PARKERS).map(|_| AtomicUsize::new(0)).collect());
        let started = Arc::new(AtomicUsize::new(0));
        let parkers: Vec<_> = (0..PARKERS)
            .map(|i| {
                let (given, started) = (given.clone(), started.clone());
                rt.spawn(move || {
                    started.fetch_add(1, SeqCst);
                    let want = TOKENS / PARKERS;
                    let mut parks = 0usize;
                    while given[i].load(SeqCst) < want {
                        greenhub::park();
                        parks += 1;
                    }
                    parks
                })
            })
            .collect();
        while started.load(SeqCst) < PARKERS {
            std::thread::yield_now();
        }
        let greenlets: Arc<Vec<greenhub::Greenlet>> =
            Arc::new(parkers.iter().map(|h| h.greenlet()).collect());
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (given, greenlets) = (given.clone(), greenlets.clone());
                std::thread::spawn(move || {
                    // Thread t hands out tokens for greenlets t, t + 4, ...
                    let mut handed = 0;
                    for _ in 0..TOKENS / PARKERS {
                        for i in (t..PARKERS).step_by(THREADS) {
                            given[i].fetch_add(1, SeqCst);
                            greenlets[i].unpark();
                            handed += 1;
                        }
                    }
                    handed
                })
            })
            .collect();
        let handed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let parks: usize = parkers.into_iter().map(|h| h.join().unwrap()).sum();
        drop(rt);
        assert_eq!(handed, TOKENS, "tokens handed out");
        let seen: usize = given.iter().map(|g| g.load(SeqCst)).sum();
        assert_eq!(seen, TOKENS, "tokens counted");
        eprintln!(
            "STRESS unpark storm: greenlets={PARKERS} os_threads={THREADS} unparks={handed} \
             parks={parks} duration={:.1}s",
            t0.elapsed().as_secs_f64()
        );
    });
}
