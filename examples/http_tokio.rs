//! The tokio twin of `examples/http_server.rs`, for benchmarks: the same
//! protocol code (`http_common`, included from the same file), the same
//! header and idle timeouts and the same closing, on tokio's runtime with
//! one task per connection.
//!
//! ```text
//! cargo run --release --example http_tokio -- --port 8081              # current_thread
//! cargo run --release --example http_tokio -- --port 8081 --threads 2  # multi_thread, 2 workers
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` once it accepts connections and
//! serves until killed. It has no connection limit and no graceful
//! shutdown (the greenhub server's are per-connection costs, not
//! per-request ones, so a keep-alive benchmark does not see them).

#[path = "http_common/mod.rs"]
mod http_common;

use std::io::{self, ErrorKind, Write as _};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout_at};

use http_common::{End, Limits, Next, Phase, Session, Status};

/// The time a request head may take (as the greenhub server's default).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a kept-alive connection may wait for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a closing connection reads what the client still sends.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// The most bytes a closing connection reads and drops.
const DRAIN_MAX: usize = 256 * 1024;

/// Reads into `buf`, giving up with `TimedOut` at `deadline`.
async fn read_until(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    match timeout_at(deadline, s.read(buf)).await {
        Ok(r) => r,
        Err(_) => Err(ErrorKind::TimedOut.into()),
    }
}

/// Serves one connection to its end, as the greenhub server's
/// `serve_connection` does; returns the requests answered and why it ended.
pub async fn serve_connection(mut s: TcpStream) -> io::Result<(u64, End)> {
    let accepted = Instant::now();
    s.set_nodelay(true)?;
    let mut session = Session::new(Limits::default());
    let mut head_deadline = accepted + HEADER_TIMEOUT;
    let end = loop {
        let next = session.step(false);
        if !session.out().is_empty() {
            match s.write_all(session.out()).await {
                Ok(()) => session.clear_out(),
                Err(_) => break End::Reset,
            }
        }
        let phase = match next {
            Next::Close(end) => break end,
            Next::Read(phase) => phase,
        };
        let now = Instant::now();
        let deadline = match phase {
            Phase::Idle if session.requests() == 0 => head_deadline,
            Phase::Idle => now + IDLE_TIMEOUT,
            Phase::Head { fresh } => {
                if fresh && session.requests() > 0 {
                    head_deadline = now + HEADER_TIMEOUT;
                }
                head_deadline
            }
            Phase::Body => now + HEADER_TIMEOUT,
        };
        let idle = phase == Phase::Idle;
        match read_until(&mut s, session.read_buf(), deadline).await {
            Ok(0) if idle => break End::ClientClosed,
            Ok(0) => break End::ClientClosedMidRequest,
            Ok(n) => session.filled(n),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if idle {
                    break End::IdleTimeout;
                }
                session.reject(Status::RequestTimeout);
                let _ = s.write_all(session.out()).await;
                break End::Rejected(Status::RequestTimeout);
            }
            Err(_) => break End::Reset,
        }
    };
    if !matches!(
        end,
        End::ClientClosed | End::ClientClosedMidRequest | End::Reset
    ) && s.shutdown().await.is_ok()
    {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut scratch = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_MAX {
            match read_until(&mut s, &mut scratch, deadline).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
    Ok((session.requests(), end))
}

/// Accepts forever, one task per connection.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream));
            }
            Err(e) => {
                eprintln!("http_tokio: accept: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<u16>()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
    };
    let port = value("--port").unwrap_or(8081);
    let rt = match value("--threads") {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.into());
            b
        }
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("listening on {}", listener.local_addr().unwrap());
        let _ = io::stdout().flush();
        serve(listener).await;
    });
}
