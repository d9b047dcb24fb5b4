//! Greenlets calling async Rust: each greenlet runs straight-line code that
//! awaits an async HTTP client (`reqwest`) and `tokio::time::sleep` through
//! `greenhub::future::block_on`, which parks only the greenlet while the
//! future is pending. A local server (on its own tokio runtime) answers each
//! request after 100 ms, so 200 greenlets on one hub finish in about that
//! long, not 20 s.
//!
//! ```text
//! cargo run --example async_from_greenlets --features tokio
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenhub::future::block_on;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests made, one greenlet each.
const GREENLETS: u32 = 200;
/// How long the server takes to answer.
const DELAY: Duration = Duration::from_millis(100);

fn main() {
    let (addr, _server) = start_server(DELAY);
    // One client for all greenlets (and threads): its connection pool lives
    // on the tokio runtime greenhub starts for `block_on`.
    let client = reqwest::Client::new();
    greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("runtime")
        .block_on(move || {
            let start = Instant::now();
            let workers: Vec<_> = (0..GREENLETS)
                .map(|i| {
                    let client = client.clone();
                    greenhub::spawn(move || fetch(&client, addr, i))
                })
                .collect();
            for (i, w) in workers.into_iter().enumerate() {
                assert_eq!(w.join().unwrap(), format!("hello {i}"));
            }
            println!(
                "{GREENLETS} greenlets, one hub: {GREENLETS} requests ({DELAY:?} each) in {:?}",
                start.elapsed()
            );

            // greenhub's `timeout` bounds a pending future like any blocking
            // call: the request is dropped (on this greenlet) when it fires.
            let slow = greenhub::timeout(Duration::from_millis(30), || fetch(&client, addr, 0));
            println!("a request under a 30 ms greenhub::timeout: {slow:?}");
        });
}

/// Plain blocking code from the greenlet's point of view.
fn fetch(client: &reqwest::Client, addr: SocketAddr, i: u32) -> String {
    // A tokio timer, awaited from a greenlet. It is created inside the
    // `async` block: tokio objects look for their runtime when created, and
    // `block_on` provides it only while it polls.
    block_on(async { tokio::time::sleep(Duration::from_millis(u64::from(i % 10))).await });
    block_on(async {
        let resp = client.get(format!("http://{addr}/{i}")).send().await?;
        resp.text().await
    })
    .expect("request failed")
}

/// A minimal HTTP/1.1 server on its own tokio runtime: `GET /N` answers
/// `hello N` after `delay`, then closes the connection.
fn start_server(delay: Duration) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().expect("server runtime");
    // A deep accept queue: the clients connect all at once.
    let listener = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        socket.listen(4096).expect("listen")
    });
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                tokio::time::sleep(delay).await;
                let body = format!("hello {}", &path[1..]);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, rt)
}
