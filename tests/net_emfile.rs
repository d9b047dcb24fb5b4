//! `accept` when the process is out of file descriptors: the error comes
//! back (as std's), the next `accept` backs off instead of spinning, other
//! greenlets keep running, and accepting recovers once fds are freed. Runs in
//! a child process, whose `RLIMIT_NOFILE` it lowers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{is_child, run_child};
use greenhub::net::TcpListener;

#[test]
fn accept_backs_off_under_emfile_and_recovers() {
    let out = run_child("child_emfile", &[], 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("EMFILE-OK"), "{stdout}\n{stderr}");
}

#[test]
#[ignore = "run as a child process by accept_backs_off_under_emfile_and_recovers"]
fn child_emfile() {
    if !is_child("child_emfile") {
        return;
    }
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Three clients wait in the backlog (their fds are opened now).
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        // Lower the limit to just above what is open, then use up the rest.
        let fillers = common::use_up_fds();

        let ticks = Arc::new(AtomicUsize::new(0));
        let t2 = ticks.clone();
        let ticker = greenhub::spawn(move || {
            for _ in 0..30 {
                greenhub::sleep(Duration::from_millis(10));
                t2.fetch_add(1, Ordering::SeqCst);
            }
        });
        // An accept loop that retries at once on errors, as servers do.
        let start = Instant::now();
        let mut errors = 0;
        while start.elapsed() < Duration::from_millis(300) {
            match listener.accept() {
                Ok(_) => panic!("accepted with no fd free"),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                    errors += 1;
                }
            }
        }
        ticker.join().unwrap();
        assert!(errors >= 2, "errors: {errors}");
        assert!(errors < 30, "accept spun: {errors} errors in 300 ms");
        assert_eq!(ticks.load(Ordering::SeqCst), 30);
        // Free the fds: accepting recovers by itself.
        drop(fillers);
        let t = Instant::now();
        for _ in 0..3 {
            listener.accept().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(clients);
        println!("EMFILE-OK errors={errors}");
    });
}
