//! A real `redis-server` for the `patch` tests (installed by `.ci/run`),
//! included with `#[path]` by the tests that need one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, stopped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts a server on a port that was free a moment ago. Two tests of
    /// this file run at once, and the kernel may hand the same free port to
    /// both: the second `redis-server` then exits with "address in use"
    /// while the first one answers its probe, and the test fails later when
    /// the first test stops its server. So a start counts only when the
    /// server that answers is our child (its `INFO` names our pid), and a
    /// child that exited is retried on another port.
    pub fn start() -> Server {
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
