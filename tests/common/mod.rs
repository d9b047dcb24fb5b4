//! Helpers shared by the runtime integration tests: a deadline around a test
//! body (so a hang fails the test with a message instead of blocking the
//! run), a drop counter, OS-thread counting through `/proc/self/task`, and
//! re-running the test binary as a child process.
#![allow(dead_code)]

pub mod blockers;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable that tells a child-process helper test to run.
pub const CHILD_ENV: &str = "GREENHUB_TEST_CHILD";

/// Runs `f` on its own OS thread and returns its value; panics with a clear
/// message if it does not finish within `secs` seconds (a hang or a dead hub),
/// and resumes its panic if it panicked.
pub fn with_deadline<T, F>(what: &str, secs: u64, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let t = std::thread::Builder::new()
        .name(format!("deadline:{what}"))
        .spawn(move || {
            let v = f();
            let _ = tx.send(v);
        })
        .expect("spawn deadline thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            t.join().expect("deadline thread");
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body neither returned nor panicked"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no result after {secs} s: the runtime hangs (or a hub died)")
        }
    }
}

/// Counts its drops: put one in a greenlet to see that its destructors ran.
pub struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The names (`comm`) of the calling process's OS threads.
pub fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("read /proc/self/task") {
        let Ok(entry) = entry else { continue };
        // A thread may exit between the listing and the read.
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            names.push(comm.trim_end().to_string());
        }
    }
    names
}

/// How many OS threads the process has.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// How many OS threads have a name starting with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with(prefix))
        .count()
}

/// Polls `cond` until it holds or `secs` pass; returns whether it held. For
/// effects that the OS publishes a moment after the call that caused them
/// (an exited thread leaving `/proc/self/task`).
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether this process is the child run for helper test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Re-runs this test binary as a child process that runs only the (ignored)
/// helper test `name`, with `envs` added; kills it after `secs` seconds.
/// Returns its exit status and output.
pub fn run_child(name: &str, envs: &[(&str, &str)], secs: u64) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name)
    .env_remove("RUST_BACKTRACE")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the child test process");
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait for the killed child");
            let stderr = t_err.join().unwrap_or_default();
            panic!(
                "child `{name}` did not finish within {secs} s (killed: {status}); stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Builders for the three scheduling modes every behaviour test runs in, by
/// name: `single` (one hub), `pinned` (two hubs, no stealing) and `mn` (two
/// hubs that steal unstarted greenlets: the default mode). The one list of
/// modes for the whole suite, so that mode coverage is the same everywhere.
pub fn mode_builders() -> Vec<(&'static str, greenhub::Builder)> {
    vec![
        ("single", greenhub::Builder::new().single_threaded()),
        ("pinned", greenhub::Builder::new().pinned().hubs(2)),
        ("mn", greenhub::Builder::new().hubs(2)),
    ]
}

/// A runtime of each mode of [`mode_builders`].
pub fn runtimes() -> Vec<greenhub::Runtime> {
    mode_builders()
        .into_iter()
        .map(|(_, b)| b.build().expect("build runtime"))
        .collect()
}

/// Runs `body(mode)` as the main greenlet of a runtime of each mode, under a
/// 120 s deadline.
pub fn in_each_mode(what: &'static str, body: fn(&'static str)) {
    with_deadline(what, 120, move || {
        for (mode, builder) in mode_builders() {
            builder
                .build()
                .expect("build runtime")
                .block_on(move || body(mode));
        }
    });
}

/// Lowers this process's `RLIMIT_NOFILE` to just above the fds open now and
/// opens the rest (dups of `/dev/null`), so that the next fd-creating call
/// fails with `EMFILE`. Dropping the returned fds frees them again. For
/// child-process tests only: the limit stays lowered.
pub fn use_up_fds() -> Vec<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let lim = libc::rlimit {
        rlim_cur: open + 8,
        rlim_max: open + 64,
    };
    // SAFETY: a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut fillers = Vec::new();
    loop {
        // SAFETY: dup of our own open fd; the result is checked.
        let fd = unsafe { libc::dup(devnull.as_raw_fd()) };
        if fd < 0 {
            break;
        }
        // SAFETY: a fresh fd that we own.
        fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    // Dropping `/dev/null` here would free one fd again.
    fillers.push(OwnedFd::from(devnull));
    fillers
}
