//! A tokio HTTP server whose handlers run blocking code on greenlets instead
//! of `spawn_blocking` threads: each request spawns a greenlet on a greenhub
//! runtime with one call (`Handle::spawn`, from the tokio task) and awaits
//! its `JoinHandle`, which is a future. The blocking code (here a 50 ms
//! `greenhub::sleep` standing in for a sync database driver or a `patch`ed
//! std socket) parks only its greenlet, so 1,000 concurrent requests need
//! no more OS threads than the two runtimes already have.
//!
//! ```text
//! cargo run --example offload_from_tokio --features tokio
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Concurrent requests the built-in client makes.
const REQUESTS: usize = 1000;

/// The handler's blocking part: synchronous code, run on a greenlet.
fn lookup(key: &str) -> String {
    greenhub::sleep(Duration::from_millis(50)); // e.g. a sync DB query
    format!("value of {key}")
}

fn main() {
    let greenhub_rt = greenhub::Runtime::new().expect("greenhub runtime");
    let gh = greenhub_rt.handle().clone();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio_rt.block_on(async move {
        // A deep accept queue: the built-in client connects all at once.
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let listener = socket.listen(4096).expect("listen");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let gh = gh.clone();
                tokio::spawn(serve(s, gh));
            }
        });

        let start = Instant::now();
        let clients: Vec<_> = (0..REQUESTS).map(|i| tokio::spawn(get(addr, i))).collect();
        for (i, c) in clients.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), format!("value of key{i}"));
        }
        println!(
            "{REQUESTS} concurrent requests, each blocking 50 ms on a greenlet: {:?}, {} OS threads in the process",
            start.elapsed(),
            std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count()),
        );
    });
}

/// One connection: read a request head, run the handler on a greenlet,
/// answer, close.
async fn serve(mut s: TcpStream, gh: greenhub::Handle) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let key = head.split_whitespace().nth(1).unwrap_or("/")[1..].to_owned();
    // The offload: one call to spawn, then await the greenlet.
    let (status, body) = match gh.spawn(move || lookup(&key)).await {
        Ok(v) => ("200 OK", v),
        Err(e) => ("500 Internal Server Error", e.to_string()),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
}

/// A minimal client: `GET /key{i}`, returns the body.
async fn get(addr: SocketAddr, i: usize) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET /key{i} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let resp = String::from_utf8_lossy(&resp);
    resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}
