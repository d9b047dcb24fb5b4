//! Monkey patching (feature `patch`) with a real, unmodified synchronous
//! client: the `redis` crate against a real `redis-server` (installed by
//! `.ci/run`), its blocking `BRPOP`s on greenlets of one hub at once.

mod patch_common;
#[path = "patch_common/redis_server.rs"]
mod redis_server;

use patch_common::one_hub;
use redis_server::Server;

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
