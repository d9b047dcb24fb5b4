//! Monkey patching (feature `patch`) with a real, unmodified thread-pool HTTP
//! server: `tiny_http`, served by a few worker greenlets of one runtime,
//! each looping on `server.recv()` (a std `Condvar` wait, woken by
//! tiny_http's own OS threads) and `request.respond(..)`, answers 100
//! concurrent keep-alive clients on plain OS threads (std `TcpStream`), each
//! checking that every response echoes its own request's path.

mod common;
mod patch_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

const WORKERS: usize = 3;
const CLIENTS: usize = 100;
/// Requests each client sends, one after another, on one keep-alive
/// connection.
const REQUESTS: usize = 3;
/// A handler's work: a blocking `thread::sleep` (hooked), so that the
/// workers' requests overlap only if the sleeping one parks alone.
const WORK: Duration = Duration::from_millis(5);

/// One client: `REQUESTS` requests on one connection, each answer checked.
fn client(addr: SocketAddr, i: usize) -> Result<(), String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("client {i}: connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    for j in 0..REQUESTS {
        let path = format!("/client/{i}/request/{j}");
        let close = if j + 1 == REQUESTS {
            "Connection: close\r\n"
        } else {
            ""
        };
        write!(w, "GET {path} HTTP/1.1\r\nHost: test\r\n{close}\r\n")
            .map_err(|e| format!("client {i}: write {j}: {e}"))?;
        let body = read_response(&mut r).map_err(|e| format!("client {i}: response {j}: {e}"))?;
        if body != format!("echo {path}") {
            return Err(format!("client {i}: request {j} got {body:?}"));
        }
    }
    Ok(())
}

/// Reads one `200 OK` response with a `Content-Length`; returns its body.
fn read_response(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(format!("status line {line:?}"));
    }
    let mut len = None;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let len = len.ok_or("no Content-Length")?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// Counts finished clients; the last one unblocks the workers' `recv()`s,
/// so that they end even when a client failed.
struct Done {
    finished: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Done {
    fn drop(&mut self) {
        if self.finished.fetch_add(1, SeqCst) + 1 == CLIENTS {
            for _ in 0..WORKERS {
                self.server.unblock();
            }
        }
    }
}

/// A worker greenlet's loop, as a thread-pool program writes it; returns
/// how many requests it answered.
fn worker(server: Arc<tiny_http::Server>) -> usize {
    let mut served = 0;
    // `recv` fails once `unblock` was called.
    while let Ok(request) = server.recv() {
        std::thread::sleep(WORK);
        let body = format!("echo {}", request.url());
        request
            .respond(tiny_http::Response::from_string(body))
            .unwrap();
        served += 1;
    }
    served
}

/// The server and its workers on greenlets of the current runtime, the
/// clients on OS threads; checks every answer and that each worker served.
fn serve_100_clients(mode: &'static str) {
    let start = Instant::now();
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let server = server.clone();
            greenhub::spawn(move || worker(server))
        })
        .collect();
    let finished = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let done = Done {
                finished: finished.clone(),
                server: server.clone(),
            };
            std::thread::spawn(move || {
                let _done = done;
                client(addr, i)
            })
        })
        .collect();
    let served: Vec<usize> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = start.elapsed();
    // Every client has finished (the last one's `Done` ended the workers):
    // these joins return at once.
    let errors: Vec<String> = clients
        .into_iter()
        .filter_map(|t| t.join().unwrap().err())
        .collect();
    eprintln!(
        "{mode}: tiny_http, {WORKERS} worker greenlets, {CLIENTS} clients x {REQUESTS} \
         requests: {elapsed:?} ({:.0} requests/s); served per worker {served:?}",
        (CLIENTS * REQUESTS) as f64 / elapsed.as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{mode}: {} failed: {errors:#?}",
        errors.len()
    );
    assert_eq!(served.iter().sum::<usize>(), CLIENTS * REQUESTS, "{mode}");
    // With 100 clients waiting, a worker parked in its handler's sleep
    // leaves the others to take requests.
    assert!(
        served.iter().all(|&n| n > 0),
        "{mode}: a worker served nothing: {served:?}"
    );
}

#[test]
fn tiny_http_worker_greenlets_answer_100_concurrent_clients() {
    patch_common::enable();
    common::in_each_mode("tiny_http workers", serve_100_clients);
}
