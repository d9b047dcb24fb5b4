//! Monkey patching (feature `patch`): fds made elsewhere become cooperative
//! when a greenlet blocks on them, and stay blocking for everyone else
//! (greenhub issue 17, point 4).
//!
//! - An `r2d2` pool of redis connections, made by the pool's own threads
//!   (so the hooks never tracked their sockets), shared by 4 greenlets doing
//!   `BLPOP key 1` at once, against a real `redis-server` (installed by
//!   `.ci/run`): all four end after about 1 s, not one after another.
//! - A socketpair, a pipe made by a raw syscall and an eventfd, all made
//!   before the runtime: a greenlet's blocking `read` parks only the
//!   greenlet (a ticker of its hub keeps ticking), and a plain thread
//!   sharing the fd still gets blocking semantics (its `read` waits for the
//!   data instead of failing with `EAGAIN`; `O_NONBLOCK` stays clear).

mod common;
mod patch_common;
#[path = "patch_common/redis_server.rs"]
mod redis_server;

use patch_common::one_hub;
use redis_server::Server;

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

type Popped = Option<(String, String)>;

/// Four greenlets of `rt`, one pooled connection each, `BLPOP <key> 1` on
/// keys `{prefix}0..3`. Returns what each popped and how long all took.
fn four_blpops(
    rt: &greenhub::Runtime,
    pool: r2d2::Pool<redis::Client>,
    prefix: &str,
) -> (Vec<Popped>, Duration) {
    let prefix = prefix.to_string();
    rt.block_on(move || {
        let start = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let pool = pool.clone();
                let key = format!("{prefix}{i}");
                greenhub::spawn(move || {
                    let mut con = pool.get().expect("a pooled connection");
                    redis::cmd("BLPOP")
                        .arg(&key)
                        .arg(1)
                        .query::<Popped>(&mut *con)
                        .unwrap()
                })
            })
            .collect();
        let got = hs.into_iter().map(|h| h.join().unwrap()).collect();
        (got, start.elapsed())
    })
}

#[test]
fn r2d2_pool_made_by_its_threads_serves_four_blpops_at_once() {
    patch_common::enable();
    let server = Server::start();
    let client = redis::Client::open(server.url()).unwrap();
    // The pool's threads make all four connections, before any greenlet.
    let pool = r2d2::Pool::builder()
        .max_size(4)
        .min_idle(Some(4))
        .build(client.clone())
        .unwrap();
    let mut admin = client.get_connection().unwrap();
    common::with_deadline("r2d2 BLPOPs", 60, move || {
        for (mode, builder) in common::mode_builders() {
            if mode == "pinned" {
                continue; // as `mn` here: spawned greenlets stay put
            }
            let prefix = format!("{mode}-key");
            // One key has a value: its BLPOP returns it at once.
            let _: i64 = redis::cmd("RPUSH")
                .arg(format!("{prefix}0"))
                .arg("v0")
                .query(&mut admin)
                .unwrap();
            let rt = builder.build().unwrap();
            let (got, took) = four_blpops(&rt, pool.clone(), &prefix);
            println!("{mode}: r2d2 pool of 4, 4 greenlets x BLPOP 1: {took:?}");
            assert_eq!(
                got,
                vec![
                    Some((format!("{prefix}0"), "v0".to_string())),
                    None,
                    None,
                    None
                ],
                "{mode}"
            );
            assert!(took >= Duration::from_millis(950), "{mode}: {took:?}");
            // One after another they take 3 s.
            assert!(
                took < Duration::from_millis(2500),
                "{mode}: the BLPOPs blocked the hub: {took:?}"
            );
        }
    });
}

/// One fd kind of the shared-fd tests.
struct Shared {
    name: &'static str,
    read_fd: RawFd,
    write_fd: RawFd,
    /// What one write sends (an eventfd takes 8 bytes: a count).
    payload: [u8; 8],
}

fn raw_read(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for its length.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
}

fn raw_write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: `buf` is readable for its length.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

fn check_shared(s: Shared) {
    let Shared {
        name,
        read_fd,
        write_fd,
        payload,
    } = s;
    assert!(!greenhub::patch::is_tracked(read_fd));
    common::with_deadline(name, 30, move || {
        one_hub(move || {
            // 1. A greenlet blocks in `read`; a plain thread writes later.
            let stop = Arc::new(AtomicBool::new(false));
            let ticks = Arc::new(AtomicUsize::new(0));
            let ticker = {
                let (stop, ticks) = (stop.clone(), ticks.clone());
                greenhub::spawn(move || {
                    while !stop.load(SeqCst) {
                        greenhub::sleep(Duration::from_millis(5));
                        ticks.fetch_add(1, SeqCst);
                    }
                })
            };
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                assert_eq!(raw_write(write_fd, &payload), 8);
            });
            let mut buf = [0u8; 8];
            let n = raw_read(read_fd, &mut buf);
            let ticked = ticks.load(SeqCst);
            stop.store(true, SeqCst);
            ticker.join().unwrap();
            writer.join().unwrap();
            assert_eq!(n, 8, "{name}: errno {}", errno());
            assert_eq!(buf, payload, "{name}");
            assert!(
                ticked >= 5,
                "{name}: the greenlet's read blocked its hub ({ticked} ticks)"
            );
            assert!(!nonblocking(read_fd), "{name}: O_NONBLOCK was set");

            // 2. A plain thread sharing the fd still blocks in `read` until
            // a greenlet writes.
            let written = Arc::new(AtomicBool::new(false));
            let reader = {
                let written = written.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8];
                    let n = raw_read(read_fd, &mut buf);
                    let e = errno();
                    (n, e, buf, written.load(SeqCst))
                })
            };
            greenhub::sleep(Duration::from_millis(100));
            written.store(true, SeqCst);
            assert_eq!(raw_write(write_fd, &payload), 8, "{name}");
            let (n, e, buf, after_write) = reader.join().unwrap();
            assert_eq!(n, 8, "{name}: the thread's read failed: errno {e}");
            assert_eq!(buf, payload, "{name}");
            assert!(after_write, "{name}: the thread's read did not wait");
            assert!(!nonblocking(read_fd) && !nonblocking(write_fd), "{name}");
        });
    });
}

fn close(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: the test made these fds and no longer uses them.
        unsafe { libc::close(fd) };
    }
}

#[test]
fn socketpair_shared_with_a_thread() {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into `fds`.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    check_shared(Shared {
        name: "socketpair",
        read_fd: fds[0],
        write_fd: fds[1],
        payload: *b"sockpair",
    });
    close(&fds);
}

#[test]
fn pipe_from_a_raw_syscall_shared_with_a_thread() {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`; a raw syscall, so the hooked
    // `pipe2` never sees them.
    let r = unsafe { libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0);
    check_shared(Shared {
        name: "pipe",
        read_fd: fds[0],
        write_fd: fds[1],
        payload: *b"pipe-end",
    });
    close(&fds);
}

#[test]
fn eventfd_shared_with_a_thread() {
    // SAFETY: eventfd takes no pointer.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    check_shared(Shared {
        name: "eventfd",
        read_fd: fd,
        write_fd: fd,
        payload: 7u64.to_ne_bytes(),
    });
    close(&[fd]);
}
