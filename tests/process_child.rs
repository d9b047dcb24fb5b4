//! `greenhub::process`: child processes whose waits and pipes park only the
//! calling greenlet, in single-threaded and M:N mode, and the same calls off
//! a greenlet behaving like std.

mod common;

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{in_each_mode, with_deadline};
use greenhub::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

const MIB: usize = 1 << 20;

/// 1 MiB that does not repeat with any pipe-buffer-sized period.
fn pattern() -> Vec<u8> {
    (0..MIB).map(|i| (i * 7 + i / 4099) as u8).collect()
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn types_are_send_and_sync() {
    assert_send_sync::<Command>();
    assert_send_sync::<Child>();
    assert_send_sync::<ChildStdin>();
    assert_send_sync::<ChildStdout>();
    assert_send_sync::<ChildStderr>();
}

// ---- checks that run the same on a greenlet and off one ----

fn output_of_echo() {
    let out = Command::new("echo")
        .args(["hello", "world"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello world\n");
    assert!(out.stderr.is_empty());
}

fn exit_codes() {
    assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
    let status = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
    assert_eq!(status.code(), Some(7));
    assert!(Command::new("true").status().unwrap().success());
}

fn kill_then_wait() {
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    assert_eq!(status.code(), None);
    // Reaped: the same status again, and killing it is not an error.
    assert_eq!(child.wait().unwrap(), status);
    child.kill().unwrap();
}

fn wait_timeout_none_then_some() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3"])
        .spawn()
        .unwrap();
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(child.wait_timeout(Duration::from_millis(20)).unwrap(), None);
    let status = child.wait_timeout(Duration::from_secs(30)).unwrap();
    assert!(status.unwrap().success());
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), status);
}

fn timeout_around_wait() {
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let start = Instant::now();
    let r = greenhub::timeout(Duration::from_millis(100), || child.wait());
    assert!(r.is_err(), "the wait should have been cut short: {r:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    // The child kept running; the Child is still usable.
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
}

fn not_found() {
    let err = Command::new("/definitely/not/a/program")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = Command::new("greenhub-no-such-program-xyz")
        .output()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

fn wait_with_output_1mib_each() {
    let child = Command::new("sh")
        .args([
            "-c",
            "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), MIB);
    assert_eq!(out.stderr.len(), MIB);
    assert!(out.stdout.iter().chain(&out.stderr).all(|&b| b == 0));
}

fn pipeline_into_stdio() {
    // A cooperative pipe handed to another child goes back to blocking mode:
    // `cat` would fail with EAGAIN on a non-blocking stdin.
    let mut first = Command::new("sh")
        .args(["-c", "sleep 0.1; echo piped"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = first.stdout.take().unwrap();
    let out = Command::new("cat").stdin(pipe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"piped\n");
    assert!(first.wait().unwrap().success());
}

fn read_timeout_on_a_pipe() {
    let mut child = Command::new("sleep")
        .arg("5")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdout
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let err = stdout.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    child.kill().unwrap();
    child.wait().unwrap();
    // The child's end closed with it: end of file.
    assert_eq!(stdout.read(&mut [0; 8]).unwrap(), 0);
}

fn all_portable_checks() {
    output_of_echo();
    exit_codes();
    kill_then_wait();
    wait_timeout_none_then_some();
    timeout_around_wait();
    not_found();
    wait_with_output_1mib_each();
    pipeline_into_stdio();
    read_timeout_on_a_pipe();
}

#[test]
fn portable_checks_in_each_mode() {
    in_each_mode("process checks", |_| all_portable_checks());
}

#[test]
fn portable_checks_off_a_greenlet() {
    with_deadline("process checks off a greenlet", 120, all_portable_checks);
}

// ---- concurrency on the hubs ----

#[test]
fn hub_keeps_running_while_a_greenlet_waits() {
    in_each_mode("ticker", |mode| {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let waiter = greenhub::spawn(move || {
            let mut child = Command::new("sh")
                .args(["-c", "sleep 0.3"])
                .spawn()
                .unwrap();
            let status = child.wait().unwrap();
            flag.store(true, Ordering::SeqCst);
            status
        });
        let mut ticks = 0u32;
        while !done.load(Ordering::SeqCst) {
            greenhub::sleep(Duration::from_millis(5));
            ticks += 1;
        }
        assert!(waiter.join().unwrap().success());
        // About 60 ticks if every sleep were exact; a hub blocked in the
        // wait would allow one or two.
        assert!(
            ticks >= 10,
            "{mode}: only {ticks} ticks during a 0.3 s wait"
        );
    });
}

#[test]
fn ten_children_wait_concurrently() {
    in_each_mode("ten children", |mode| {
        let start = Instant::now();
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                greenhub::spawn(|| Command::new("sleep").arg("0.3").status().unwrap().success())
            })
            .collect();
        for w in waiters {
            assert!(w.join().unwrap());
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{mode}: 10 x 0.3 s took {took:?}"
        );
    });
}

#[test]
fn cat_round_trip_between_greenlets() {
    in_each_mode("cat round trip", |_| {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let writer = greenhub::spawn(move || {
            stdin.write_all(&pattern()).unwrap();
            // Dropping stdin closes the pipe: cat sees end of file.
        });
        let reader = greenhub::spawn(move || {
            let mut got = Vec::new();
            stdout.read_to_end(&mut got).unwrap();
            got
        });
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), MIB);
        assert!(got == pattern(), "the bytes came back changed");
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn cat_round_trip_off_a_greenlet() {
    with_deadline("cat off a greenlet", 60, || {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&pattern()).unwrap());
        let mut got = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == pattern(), "the bytes came back changed");
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn kill_interrupts_a_greenlet_blocked_in_wait_or_read() {
    in_each_mode("kill", |_| {
        let mut child = Command::new("sleep")
            .arg("5")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let started = AtomicUsize::new(0);
        let (started, waited) = (&started, &mut child);
        greenhub::scope(|s| {
            let waiter = s.spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                waited.wait()
            });
            let reader = s.spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                stdout.read(&mut [0; 8])
            });
            while started.load(Ordering::SeqCst) < 2 {
                greenhub::sleep(Duration::from_millis(5));
            }
            greenhub::sleep(Duration::from_millis(20));
            waiter.kill();
            reader.kill();
            assert!(waiter.join().is_err());
            assert!(reader.join().is_err());
        });
        // The child kept running through the kills.
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
    });
}
