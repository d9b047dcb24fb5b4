//! Monkey patching (feature `patch`) with a real, unmodified synchronous
//! client: the `redis` crate against a real `redis-server` (installed by
//! `.ci/run`), its blocking `BRPOP`s on greenlets of one hub at once.

mod common;
mod patch_common;
#[path = "patch_common/redis_server.rs"]
mod redis_server;

use patch_common::one_hub;
use redis_server::Server;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `BRPOP key 5` on a new connection of its own.
fn brpop(url: &str, key: &str) -> Option<(String, String)> {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("BRPOP").arg(key).arg(5).query(&mut con).unwrap()
}

#[test]
fn four_brpops_block_at_once_on_one_hub() {
    let server = Server::start();
    let url = server.url();
    let start = Instant::now();
    let results = one_hub(move || {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                greenhub::spawn(move || brpop(&url, "nothing-here"))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let took = start.elapsed();
    assert_eq!(results, vec![None; 4]);
    assert!(took >= Duration::from_millis(4500), "{took:?}");
    assert!(
        took < Duration::from_secs(12),
        "the BRPOPs ran one after another: {took:?}"
    );
}

#[test]
fn pushes_from_another_client_wake_the_blocked_greenlets() {
    let server = Server::start();
    let url = server.url();
    let start = Instant::now();
    let mut got = one_hub(move || {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                greenhub::spawn(move || brpop(&url, "jobs"))
            })
            .collect();
        // Another client, another greenlet: the waiters do not block it.
        std::thread::sleep(Duration::from_millis(200));
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_connection().unwrap();
        for i in 0..4 {
            let _: i64 = redis::cmd("LPUSH")
                .arg("jobs")
                .arg(format!("job{i}"))
                .query(&mut con)
                .unwrap();
        }
        hs.into_iter()
            .map(|h| h.join().unwrap().expect("woken with a value").1)
            .collect::<Vec<_>>()
    });
    got.sort();
    assert_eq!(got, ["job0", "job1", "job2", "job3"]);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

/// Issue 17's kill case with a real client: a worker greenlet running the
/// usual loop (a `redis` call; on error `thread::sleep(1 s)` and reconnect)
/// is killed while blocked in `BRPOP`. Every hooked call then fails at once,
/// so the loop never reaches a greenhub blocking point; the runtime
/// abandons it after its grace, and `join` returns `Killed` (with the
/// kill's reason) within 5 s, while a ticker greenlet keeps running. On
/// one hub and in each multi-hub mode.
#[test]
fn killed_redis_retry_loop_ends_and_join_returns() {
    patch_common::enable();
    let server = Server::start();
    for (mode, builder) in common::mode_builders() {
        let url = server.url();
        let iterations = Arc::new(AtomicUsize::new(0));
        let its = iterations.clone();
        let (jobs, outcome, to_join, ticks) =
            common::with_deadline("redis retry loop", 60, move || {
                builder.build().unwrap().block_on(move || {
                    let jobs = Arc::new(Mutex::new(Vec::new()));
                    let got = jobs.clone();
                    let worker_url = url.clone();
                    let worker = greenhub::spawn(move || {
                        loop {
                            its.fetch_add(1, SeqCst);
                            let con = redis::Client::open(worker_url.as_str())
                                .and_then(|c| c.get_connection());
                            let mut con = match con {
                                Ok(con) => con,
                                Err(_) => {
                                    std::thread::sleep(Duration::from_secs(1));
                                    continue;
                                }
                            };
                            loop {
                                let job: redis::RedisResult<Option<(String, String)>> =
                                    redis::cmd("BRPOP").arg("retry-jobs").arg(0).query(&mut con);
                                match job {
                                    Ok(Some((_, job))) => got.lock().unwrap().push(job),
                                    Ok(None) => {}
                                    Err(_) => {
                                        std::thread::sleep(Duration::from_secs(1));
                                        break; // reconnect
                                    }
                                }
                            }
                        }
                    });
                    let ticks = Arc::new(AtomicUsize::new(0));
                    let t2 = ticks.clone();
                    let ticker = greenhub::spawn(move || {
                        for _ in 0..50 {
                            greenhub::sleep(Duration::from_millis(10));
                            t2.fetch_add(1, SeqCst);
                        }
                    });
                    // The worker serves a job, then blocks in BRPOP again.
                    let client = redis::Client::open(url.as_str()).unwrap();
                    let mut con = client.get_connection().unwrap();
                    let _: i64 = redis::cmd("LPUSH")
                        .arg("retry-jobs")
                        .arg("job0")
                        .query(&mut con)
                        .unwrap();
                    while jobs.lock().unwrap().is_empty() {
                        greenhub::sleep(Duration::from_millis(5));
                    }
                    greenhub::sleep(Duration::from_millis(50));
                    let killed_at = Instant::now();
                    worker.kill_with("shutting down");
                    let outcome = worker.join();
                    let to_join = killed_at.elapsed();
                    ticker.join().unwrap();
                    let jobs = jobs.lock().unwrap().clone();
                    (jobs, outcome, to_join, ticks.load(SeqCst))
                })
            });
        eprintln!("{mode}: killed redis retry loop joined {to_join:?} after the kill");
        assert_eq!(jobs, ["job0"], "{mode}");
        let err = outcome.unwrap_err();
        assert!(err.is_killed(), "{mode}: {err}");
        assert_eq!(
            err.kill_reason().and_then(|r| r.downcast_ref::<&str>()),
            Some(&"shutting down"),
            "{mode}"
        );
        assert!(to_join < Duration::from_secs(5), "{mode}: {to_join:?}");
        // The hub was never frozen: the ticker ran all its ticks.
        assert_eq!(ticks, 50, "{mode}");
        // Abandoned, not spinning on.
        let n = iterations.load(SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(iterations.load(SeqCst), n, "{mode}: the loop still runs");
    }
}
