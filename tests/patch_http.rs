//! Monkey patching (feature `patch`) with a real, unmodified synchronous
//! HTTP client: `minreq` (std `TcpStream`, buffered reads) fetching concurrently on one hub from a thread-per-connection
//! style server written against std's blocking API, also on that hub.

mod patch_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const CLIENTS: usize = 100;
/// Each request takes this long to serve (a blocking `thread::sleep`).
const WORK: Duration = Duration::from_millis(200);

/// Serves `n` requests, one greenlet per connection, in std's blocking
/// style: read the head, sleep, answer with the path.
fn serve(listener: TcpListener, n: usize) {
    for _ in 0..n {
        let (s, _) = listener.accept().unwrap();
        greenhub::spawn(move || handle(s));
    }
}

fn handle(mut s: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).unwrap() {
            0 => return,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    std::thread::sleep(WORK);
    let body = format!("you asked for {path}");
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
}

fn fetch(addr: SocketAddr, i: usize) -> String {
    // No `with_timeout`: minreq enforces it with a helper thread and a std
    // channel (a futex wait, which no hook can make cooperative).
    let resp = minreq::get(format!("http://{addr}/item/{i}"))
        .send()
        .unwrap();
    assert_eq!(resp.status_code, 200);
    resp.as_str().unwrap().to_owned()
}

#[test]
fn minreq_fetches_concurrently_on_one_hub() {
    let start = Instant::now();
    let bodies = patch_common::one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = greenhub::spawn(move || serve(listener, CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| greenhub::spawn(move || fetch(addr, i)))
            .collect();
        let bodies: Vec<String> = clients.into_iter().map(|h| h.join().unwrap()).collect();
        server.join().unwrap();
        bodies
    });
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body, &format!("you asked for /item/{i}"));
    }
    let took = start.elapsed();
    // One after another would take CLIENTS × WORK = 20 s.
    assert!(
        took < Duration::from_secs(8),
        "the requests did not overlap: {took:?}"
    );
}
