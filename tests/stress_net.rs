//! Stress: 10,000 loopback TCP connections open at the same time.
//!
//! The server is this test process (a greenhub runtime, M:N with two hubs):
//! an accept loop that spawns a greenlet per connection. The clients are a
//! child process (this test binary re-run as the ignored helper
//! `stress_net_clients`, a greenhub runtime of its own): 10,000 client
//! greenlets that connect, send their number, read it back, and hold the
//! connection open until every client has been answered, then close. Two
//! processes, because both ends of 10,000 connections are 20,000 sockets and
//! the hard `RLIMIT_NOFILE` here is 20,000; each raises its soft limit.
//!
//! Checked: all 10,000 were open on the server at once (no EOF before the
//! last accept), every echo, byte, EOF and greenlet destructor on the
//! server, and the child's own count of answers.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{DropCounter, is_child, run_child, with_deadline};
use greenhub::Builder;
use greenhub::net::{TcpListener, TcpStream};
use greenhub::sync::Event;

const CONNS: usize = 10_000;

/// Raises the soft `RLIMIT_NOFILE` to `want` (the hard limit too, where the
/// process may); returns the soft limit in force.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit struct to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(lim.rlim_max),
    };
    // SAFETY: a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return want;
    }
    // Not allowed above the hard limit: take the hard limit.
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur
}

const CHILD: &str = "stress_net_clients";
const ADDR_ENV: &str = "GREENHUB_STRESS_NET_ADDR";

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    echoed: AtomicUsize,
    eofs: AtomicUsize,
    /// Connections open on the server when the last one was accepted.
    open_at_last_accept: AtomicUsize,
    bytes: AtomicUsize,
    drops: Arc<AtomicUsize>,
}

fn serve(mut s: TcpStream, c: Arc<Counts>) {
    let _guard = DropCounter(c.drops.clone());
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).expect("server read");
    s.write_all(&buf).expect("server write");
    c.bytes.fetch_add(8, SeqCst);
    c.echoed.fetch_add(1, SeqCst);
    // Held open until the client closes.
    let n = s.read(&mut buf).expect("server read EOF");
    assert_eq!(n, 0, "nothing more was sent");
    c.eofs.fetch_add(1, SeqCst);
}

fn client(addr: std::net::SocketAddr, i: u64, answered: Arc<AtomicUsize>, hold: Arc<Event>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(&i.to_le_bytes()).expect("client write");
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).expect("client read");
    assert_eq!(u64::from_le_bytes(buf), i, "echo of client {i}");
    if answered.fetch_add(1, SeqCst) + 1 == CONNS {
        hold.set();
    }
    hold.wait();
}

/// The client process: 10,000 client greenlets, all open at once, then
/// closed. Prints `ANSWERED <n>`.
#[test]
#[ignore = "helper: the client process of ten_thousand_concurrent_loopback_connections"]
fn stress_net_clients() {
    if !is_child(CHILD) {
        return;
    }
    let limit = raise_nofile(CONNS as u64 + 1024);
    assert!(limit >= CONNS as u64 + 256, "RLIMIT_NOFILE is {limit}");
    let addr = std::env::var(ADDR_ENV).unwrap().parse().unwrap();
    let rt = Builder::new()
        .hubs(2)
        .stack_size(32 * 1024)
        .build()
        .unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let a = answered.clone();
    rt.block_on(move || {
        let hold = Arc::new(Event::new());
        let clients: Vec<_> = (0..CONNS as u64)
            .map(|i| {
                let (a, hold) = (a.clone(), hold.clone());
                greenhub::spawn(move || client(addr, i, a, hold))
            })
            .collect();
        for h in clients {
            h.join().expect("client");
        }
    });
    println!("ANSWERED {}", answered.load(SeqCst));
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn ten_thousand_concurrent_loopback_connections() {
    let limit = raise_nofile(CONNS as u64 + 1024);
    assert!(limit >= CONNS as u64 + 256, "RLIMIT_NOFILE is {limit}");
    with_deadline("10k connections", 240, || {
        let started = Instant::now();
        let rt = Builder::new()
            .hubs(2)
            .stack_size(32 * 1024)
            .build()
            .unwrap();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let child_out = rt.block_on(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let child = std::thread::spawn(move || run_child(CHILD, &[(ADDR_ENV, &addr)], 200));
            let mut conns = Vec::with_capacity(CONNS);
            while conns.len() < CONNS {
                let (s, _) = listener.accept().expect("accept");
                let n = c.accepted.fetch_add(1, SeqCst) + 1;
                if n == CONNS {
                    c.open_at_last_accept.store(n - c.eofs.load(SeqCst), SeqCst);
                }
                let c2 = c.clone();
                conns.push(greenhub::spawn(move || serve(s, c2)));
            }
            for h in conns {
                h.join().expect("server greenlet");
            }
            // The child process is done once its connections are closed.
            let t0 = Instant::now();
            while !child.is_finished() {
                assert!(
                    t0.elapsed() < Duration::from_secs(60),
                    "client process hangs"
                );
                greenhub::sleep(Duration::from_millis(10));
            }
            child.join().expect("client process thread")
        });
        drop(rt);
        let stdout = String::from_utf8_lossy(&child_out.stdout);
        assert!(
            child_out.status.success(),
            "client process: {}\n{stdout}\n{}",
            child_out.status,
            String::from_utf8_lossy(&child_out.stderr)
        );
        let n = CONNS;
        assert!(stdout.contains(&format!("ANSWERED {n}")), "{stdout}");
        assert_eq!(counts.accepted.load(SeqCst), n, "accepted");
        assert_eq!(counts.open_at_last_accept.load(SeqCst), n, "open at once");
        assert_eq!(counts.echoed.load(SeqCst), n, "echoed");
        assert_eq!(counts.eofs.load(SeqCst), n, "EOFs");
        assert_eq!(counts.bytes.load(SeqCst), 8 * n, "bytes");
        assert_eq!(counts.drops.load(SeqCst), n, "server greenlet destructors");
        eprintln!(
            "STRESS 10k connections: connections={n} open_at_once={n} bytes_echoed={} \
             duration={:.1}s",
            8 * n,
            started.elapsed().as_secs_f64()
        );
    });
}
