//! A TCP echo server on greenhub: one greenlet per connection, written as
//! plain blocking code (the std version differs only in its imports and in
//! `std::thread::spawn`).
//!
//! ```text
//! cargo run --release --example echo_server                 # self-test: 1,000 clients, then exit
//! cargo run --release --example echo_server -- --clients 5000 --single
//! cargo run --release --example echo_server -- --serve --port 7000   # serve until killed
//! ```
//!
//! In self-test mode the server and its clients run in one runtime: every
//! client greenlet sends a payload of its own, reads the echo back and checks
//! every byte; the program prints how many connections and bytes it served
//! and how long that took.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use greenhub::net::{TcpListener, TcpStream};

/// Echoes everything `conn` sends until it closes its write half.
pub fn handle(mut conn: TcpStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        conn.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Accepts `limit` connections (or forever with `None`), one greenlet each.
pub fn serve(listener: TcpListener, limit: Option<usize>) -> u64 {
    let mut handlers = Vec::new();
    let mut accepted = 0;
    while limit.is_none_or(|l| accepted < l) {
        match listener.accept() {
            Ok((conn, _peer)) => {
                accepted += 1;
                let _ = conn.set_nodelay(true);
                let h = greenhub::spawn(move || handle(conn).unwrap_or(0));
                if limit.is_some() {
                    handlers.push(h);
                }
            }
            // Out of fds: the listener backs off before the next accept.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    handlers.into_iter().map(|h| h.join().unwrap_or(0)).sum()
}

/// The payload of client `i`.
pub fn payload(i: usize) -> Vec<u8> {
    (0..4096 + i % 13 * 512)
        .map(|k| (k * 7 + i) as u8)
        .collect()
}

/// One client: send the payload, half-close, read the echo, check it.
pub fn client(addr: SocketAddr, i: usize) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(addr)?;
    let data = payload(i);
    s.write_all(&data)?;
    s.shutdown(Shutdown::Write)?;
    let mut back = Vec::with_capacity(data.len());
    s.read_to_end(&mut back)?;
    assert_eq!(back, data, "client {i}: echo differs");
    Ok(data.len())
}

/// Runs the server and `clients` client greenlets in one runtime; returns
/// (bytes sent by clients, bytes echoed by the server).
pub fn self_test(clients: usize) -> (u64, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = greenhub::spawn(move || serve(listener, Some(clients)));
    let hs: Vec<_> = (0..clients)
        .map(|i| greenhub::spawn(move || client(addr, i).expect("client") as u64))
        .collect();
    let sent = hs.into_iter().map(|h| h.join().unwrap()).sum();
    (sent, server.join().unwrap())
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<usize>()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
    };
    let builder = if flag("--single") {
        greenhub::Builder::new().single_threaded()
    } else {
        match value("--hubs") {
            Some(n) => greenhub::Builder::new().hubs(n),
            None => greenhub::Builder::new(),
        }
    };
    let rt = builder.build().expect("runtime");
    let hubs = rt.hubs();
    if flag("--serve") {
        let port = value("--port").unwrap_or(7000);
        rt.block_on(move || {
            let listener = TcpListener::bind(("127.0.0.1", port as u16)).expect("bind");
            println!(
                "echo server on {} ({hubs} hub(s))",
                listener.local_addr().unwrap()
            );
            serve(listener, None);
        });
        return;
    }
    let clients = value("--clients").unwrap_or(1000);
    let start = Instant::now();
    let (sent, echoed) = rt.block_on(move || self_test(clients));
    let took = start.elapsed();
    assert_eq!(sent, echoed);
    println!(
        "echo_server: {clients} concurrent connections on {hubs} hub(s), {echoed} bytes echoed and checked in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
}
