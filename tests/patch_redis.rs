//! Monkey patching (feature `patch`) with a real, unmodified synchronous
//! client: the `redis` crate against a real `redis-server` (installed by
//! `.ci/run`), its blocking `BRPOP`s on greenlets of one hub at once.

mod patch_common;

use patch_common::one_hub;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it with apt)");
        let server = Server { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
