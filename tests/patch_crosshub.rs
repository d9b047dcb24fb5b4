//! Monkey patching (feature `patch`), several hubs: a socket's readiness
//! reaches the greenlet waiting on it now, whichever hub that greenlet is
//! on, even while the hub that first registered the socket is busy (greenhub
//! issue 17, point 7).
//!
//! A greenlet on one hub makes a socket and waits on it once (which
//! registers it with that hub's poller), hands it over, then spins without
//! yielding. A greenlet that the other hub picks up reads from the same fd
//! while a plain thread writes to the peer 200 ms later: the read must end
//! when the data arrives, not when the first hub is free again.

mod common;
mod patch_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// How long the first hub stays busy.
const SPIN: Duration = Duration::from_millis(2500);
/// When the peer writes, after the reader started.
const DELAY: Duration = Duration::from_millis(200);

/// Busy for `d` without yielding: its hub runs nothing else meanwhile.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

struct Outcome {
    first_hub: ThreadId,
    reader_hub: ThreadId,
    got: Vec<u8>,
    took: Duration,
}

fn read_on_the_other_hub(rt: &greenhub::Runtime) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // The peer: a plain thread, writing `DELAY` after the reader says go.
    let peer = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        go_rx.recv().unwrap();
        thread::sleep(DELAY);
        conn.write_all(b"ready").unwrap();
        // Keep the connection open until the test is done with it.
        let _ = go_rx.recv();
    });
    let (sock_tx, sock_rx) = mpsc::channel::<Arc<TcpStream>>();
    let first = rt.handle().spawn(move || {
        let s = TcpStream::connect(addr).unwrap();
        assert!(greenhub::patch::is_tracked(
            std::os::fd::AsRawFd::as_raw_fd(&s)
        ));
        // One wait here: the socket is registered with this hub's poller.
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let err = (&s).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        s.set_read_timeout(None).unwrap();
        sock_tx.send(Arc::new(s)).unwrap();
        spin(SPIN);
        thread::current().id()
    });
    let s = sock_rx.recv().unwrap();
    // While the first hub spins, only the other one can start this.
    let reader = rt.handle().spawn(move || {
        let me = thread::current().id();
        go_tx.send(()).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 8];
        let n = (&*s).read(&mut buf).unwrap();
        let took = start.elapsed();
        let _ = go_tx.send(());
        (me, buf[..n].to_vec(), took)
    });
    let (reader_hub, got, took) = reader.join().unwrap();
    let first_hub = first.join().unwrap();
    peer.join().unwrap();
    Outcome {
        first_hub,
        reader_hub,
        got,
        took,
    }
}

#[test]
fn readiness_reaches_a_waiter_on_another_hub_while_the_first_is_busy() {
    patch_common::enable();
    common::with_deadline("cross-hub readiness", 60, || {
        for (mode, builder) in common::mode_builders() {
            if mode == "single" {
                continue; // one hub: nothing to cross
            }
            let rt = builder.build().unwrap();
            let o = read_on_the_other_hub(&rt);
            println!(
                "{mode}: a {DELAY:?} wait on hub B while hub A spins {SPIN:?} took {:?}",
                o.took
            );
            assert_ne!(o.first_hub, o.reader_hub, "{mode}: both ran on one hub");
            assert_eq!(o.got, b"ready", "{mode}");
            assert!(
                o.took >= DELAY - Duration::from_millis(20),
                "{mode}: {:?}",
                o.took
            );
            // Liveness: not held until the busy hub polls again.
            assert!(
                o.took < SPIN - Duration::from_millis(700),
                "{mode}: the read waited for the busy hub: {:?}",
                o.took
            );
        }
    });
}
