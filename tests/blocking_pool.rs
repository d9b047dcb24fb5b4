//! `blocking::unblock` and `net::lookup_host`: offloaded calls park only
//! their greenlet, the pool is bounded, idle threads retire, panics and
//! kills behave, and the gevent tutorial's concurrent DNS example.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{thread_names, with_deadline};
use greenhub::Builder;
use greenhub::blocking::unblock;

#[test]
fn values_and_panics_come_back() {
    greenhub::run(|| {
        assert_eq!(unblock(|| 6 * 7), 42);
        let r = std::panic::catch_unwind(|| unblock(|| -> u8 { panic!("in the pool") }));
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the pool"));
        assert_eq!(unblock(|| "still works"), "still works"); // pool survives
    });
}

#[test]
fn a_slow_call_does_not_delay_the_hub() {
    with_deadline("slow unblock", 30, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        rt.block_on(|| {
            let ticks = Arc::new(AtomicUsize::new(0));
            let t2 = ticks.clone();
            let ticker = greenhub::spawn(move || {
                for _ in 0..10 {
                    greenhub::sleep(Duration::from_millis(5));
                    t2.fetch_add(1, SeqCst);
                }
            });
            let start = Instant::now();
            unblock(|| std::thread::sleep(Duration::from_millis(300)));
            assert!(start.elapsed() >= Duration::from_millis(300));
            // All ten ticks (50 ms) happened while the hub's other greenlet
            // waited for the pool.
            assert_eq!(ticks.load(SeqCst), 10);
            ticker.join().unwrap();
        });
    });
}

#[test]
fn the_pool_is_bounded() {
    with_deadline("bounded", 30, || {
        let rt = Builder::new()
            .hubs(2)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        rt.block_on(|| {
            let running = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let (running, peak) = (running.clone(), peak.clone());
                    greenhub::spawn(move || {
                        unblock(move || {
                            let now = running.fetch_add(1, SeqCst) + 1;
                            peak.fetch_max(now, SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, SeqCst);
                        })
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(peak.load(SeqCst), 2);
        });
    });
}

fn pool_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("greenhub-block"))
        .count()
}

#[test]
fn idle_threads_retire() {
    with_deadline("retire", 30, || {
        let rt = Builder::new()
            .single_threaded()
            .blocking_keep_alive(Duration::from_millis(50))
            .build()
            .unwrap();
        rt.block_on(|| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    greenhub::spawn(|| unblock(|| std::thread::sleep(Duration::from_millis(20))))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert!(pool_threads() >= 1);
            let start = Instant::now();
            while pool_threads() > 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "pool threads never retired"
                );
                greenhub::sleep(Duration::from_millis(20));
            }
            // A new call starts a thread again.
            assert_eq!(unblock(|| 1), 1);
        });
    });
}

#[test]
fn kills_and_timeouts_do_not_wait_for_the_call() {
    with_deadline("kill unblock", 30, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        rt.block_on(|| {
            let done = Arc::new(AtomicUsize::new(0));
            let d2 = done.clone();
            let h = greenhub::spawn(move || {
                unblock(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    d2.fetch_add(1, SeqCst);
                })
            });
            greenhub::sleep(Duration::from_millis(10));
            h.kill();
            assert!(h.join().unwrap_err().is_killed());
            let r = greenhub::timeout(Duration::from_millis(10), || {
                unblock(|| std::thread::sleep(Duration::from_millis(100)))
            });
            assert!(r.is_err());
            // The offloaded calls still ran to completion.
            greenhub::sleep(Duration::from_millis(200));
            assert_eq!(done.load(SeqCst), 1);
        });
    });
}

#[test]
fn off_a_greenlet_it_runs_inline() {
    let me = std::thread::current().id();
    assert!(unblock(move || std::thread::current().id() == me));
}

#[test]
fn zero_blocking_threads_is_an_error() {
    let err = Builder::new().max_blocking_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// The gevent tutorial: resolve several names concurrently, with a 2 s
/// overall timeout (names that resolve without a network).
#[test]
fn concurrent_dns_with_overall_timeout() {
    with_deadline("dns", 30, || {
        greenhub::run(|| {
            let names = ["localhost:80", "127.0.0.1:80", "[::1]:80", "localhost:443"];
            let jobs: Vec<_> = names
                .iter()
                .map(|&n| greenhub::spawn(move || greenhub::net::lookup_host(n)))
                .collect();
            let (done, pending) = greenhub::joinall(jobs, Some(Duration::from_secs(2)));
            assert!(pending.is_empty());
            for r in done {
                let addrs: Vec<_> = r.unwrap().unwrap().collect();
                assert!(!addrs.is_empty());
                assert!(addrs.iter().all(|a| a.ip().is_loopback()));
            }
        });
    });
}
