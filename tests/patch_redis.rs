//! Monkey patching (feature `patch`) with a real, unmodified synchronous
//! client: the `redis` crate against a real `redis-server` (installed by
//! `.ci/run`), its blocking `BRPOP`s on greenlets of one hub at once.

mod patch_common;

use patch_common::one_hub;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts a server on a port that was free a moment ago. Two tests of
    /// this file run at once, and the kernel may hand the same free port to
    /// both: the second `redis-server` then exits with "address in use"
    /// while the first one answers its probe, and the test fails later when
    /// the first test stops its server. So a start counts only when the
    /// server that answers is our child (its `INFO` names our pid), and a
    /// child that exited is retried on another port.
    fn start() -> Server {
        for _ in 0..20 {
            if let Some(server) = Server::try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 20 free ports");
    }

    fn try_start() -> Option<Server> {
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
        let mut server = Server { child, port };
        let start = Instant::now();
        loop {
            if server.child.try_wait().unwrap().is_some() {
                return None; // it could not listen: the port was taken
            }
            match server.answering_pid() {
                Some(pid) if pid == server.child.id() => return Some(server),
                Some(_) => return None, // another test's server has the port
                None => {}
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` of whatever redis-server answers on our port (off
    /// any greenlet, so these are plain blocking calls).
    fn answering_pid(&self) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"INFO server\r\n").ok()?;
        let mut reply = String::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = reply.find("process_id:") {
                let rest = &reply[at + "process_id:".len()..];
                if let Some(end) = rest.find("\r\n") {
                    return rest[..end].trim().parse().ok();
                }
            }
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
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
