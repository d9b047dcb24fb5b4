//! Monkey patching (feature `patch`): `poll`, `ppoll`, `select` and
//! `pselect` with a timeout, over any pollable fd (eventfds and socketpairs
//! made by a plain thread, tracked sockets), park only the greenlet, and
//! return exactly what the real call returns (greenhub issue 17, point 3).
//!
//! Each call is checked through one helper, [`call`], that gives `poll`'s
//! view of all four (a count and `revents`); the hooked result on a
//! greenlet is compared with the real call's, made by a plain thread with a
//! zero timeout in the same situation right after.

mod common;
mod patch_common;

use patch_common::{enable, one_hub};

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Poll,
    Ppoll,
    Select,
    Pselect,
}

const CALLS: [Call; 4] = [Call::Poll, Call::Ppoll, Call::Select, Call::Pselect];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn pfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn timespec(ms: i32) -> libc::timespec {
    libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) as i64 * 1_000_000) as _,
    }
}

/// `which` over `pfds`, seen as `poll` (`timeout_ms` -1: none): returns the
/// count (or -1) and errno, and fills `revents`. For the select calls,
/// `POLLIN`, `POLLOUT` and `POLLPRI` select the read, write and except
/// sets, and `revents` gets those bits back for the fds left in them.
fn call(which: Call, pfds: &mut [libc::pollfd], timeout_ms: i32) -> (i32, i32) {
    call_masked(which, pfds, timeout_ms, None)
}

fn call_masked(
    which: Call,
    pfds: &mut [libc::pollfd],
    timeout_ms: i32,
    mask: Option<&libc::sigset_t>,
) -> (i32, i32) {
    let mask = mask.map_or(std::ptr::null(), |m| m as *const _);
    for p in pfds.iter_mut() {
        p.revents = 0;
    }
    let ts = timespec(timeout_ms);
    let ts_ptr = if timeout_ms < 0 {
        std::ptr::null()
    } else {
        &ts as *const _
    };
    let r = match which {
        // SAFETY: `pfds` is a valid array of its length.
        Call::Poll => unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, timeout_ms) },
        // SAFETY: as for poll; the timespec and mask are valid or null.
        Call::Ppoll => unsafe { libc::ppoll(pfds.as_mut_ptr(), pfds.len() as _, ts_ptr, mask) },
        Call::Select | Call::Pselect => {
            // SAFETY: all-zero fd_sets are empty sets.
            let mut sets: [libc::fd_set; 3] = unsafe { std::mem::zeroed() };
            let mut n = 0;
            for p in pfds.iter().filter(|p| p.fd >= 0) {
                for (set, ev) in sets
                    .iter_mut()
                    .zip([libc::POLLIN, libc::POLLOUT, libc::POLLPRI])
                {
                    if p.events & ev != 0 {
                        // SAFETY: fds below FD_SETSIZE in a valid set.
                        unsafe { libc::FD_SET(p.fd, set) };
                    }
                }
                n = n.max(p.fd + 1);
            }
            let [r, w, e] = &mut sets;
            let r = if which == Call::Select {
                let mut tv = libc::timeval {
                    tv_sec: (timeout_ms / 1000) as _,
                    tv_usec: ((timeout_ms % 1000) * 1000) as _,
                };
                let tv_ptr = if timeout_ms < 0 {
                    std::ptr::null_mut()
                } else {
                    &mut tv as *mut _
                };
                // SAFETY: valid sets and timeval (or null).
                unsafe { libc::select(n, r, w, e, tv_ptr) }
            } else {
                // SAFETY: valid sets, timespec and mask (or null).
                unsafe { libc::pselect(n, r, w, e, ts_ptr, mask) }
            };
            if r >= 0 {
                for p in pfds.iter_mut().filter(|p| p.fd >= 0) {
                    for (set, ev) in sets
                        .iter()
                        .zip([libc::POLLIN, libc::POLLOUT, libc::POLLPRI])
                    {
                        // SAFETY: as above.
                        if p.events & ev != 0 && unsafe { libc::FD_ISSET(p.fd, set) } {
                            p.revents |= ev;
                        }
                    }
                }
            }
            r
        }
    };
    (r, if r < 0 { errno() } else { 0 })
}

/// The real call's answer now: `which` with a zero timeout, made by a plain
/// thread (where every hook passes through).
fn real_now(which: Call, pfds: &[libc::pollfd]) -> (i32, i32, Vec<i16>) {
    let mut copy = pfds.to_vec();
    std::thread::spawn(move || {
        let (r, e) = call(which, &mut copy, 0);
        (r, e, copy.iter().map(|p| p.revents).collect())
    })
    .join()
    .unwrap()
}

fn revents(pfds: &[libc::pollfd]) -> Vec<i16> {
    pfds.iter().map(|p| p.revents).collect()
}

/// A greenlet of the caller's hub counting 10 ms ticks (hooked sleeps).
struct Ticker {
    stop: Arc<AtomicBool>,
    ticks: Arc<AtomicUsize>,
    h: greenhub::JoinHandle<()>,
}

impl Ticker {
    fn start() -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicUsize::new(0));
        let h = {
            let (stop, ticks) = (stop.clone(), ticks.clone());
            greenhub::spawn(move || {
                while !stop.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                    ticks.fetch_add(1, SeqCst);
                }
            })
        };
        // Let it start.
        greenhub::sleep(Duration::from_millis(1));
        Ticker { stop, ticks, h }
    }

    fn ticks(&self) -> usize {
        self.ticks.load(SeqCst)
    }

    fn stop(self) -> usize {
        self.stop.store(true, SeqCst);
        self.h.join().unwrap();
        self.ticks.load(SeqCst)
    }
}

/// An eventfd and a socketpair, made by a plain thread (never tracked).
fn foreign_fds() -> (RawFd, [RawFd; 2]) {
    std::thread::spawn(|| {
        // SAFETY: eventfd takes no pointer.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        let mut sp = [0; 2];
        // SAFETY: socketpair writes two fds into `sp`.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sp.as_mut_ptr(),
            )
        };
        assert!(efd >= 0 && r == 0);
        (efd, sp)
    })
    .join()
    .unwrap()
}

fn close(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: the test made these fds and no longer uses them.
        unsafe { libc::close(fd) };
    }
}

fn raw_write(fd: RawFd, buf: &[u8]) {
    // SAFETY: `buf` is readable for its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    assert_eq!(n, buf.len() as isize, "write: errno {}", errno());
}

fn raw_read(fd: RawFd, n: usize) {
    let mut buf = vec![0u8; n];
    // SAFETY: `buf` is writable for its length.
    let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), n) };
    assert_eq!(got, n as isize, "read: errno {}", errno());
}

/// One call over an eventfd and a socketpair end made by a plain thread, an
/// ignored negative fd and a tracked socket; each becomes ready in turn,
/// 100 ms after the call starts. `single`: the ticker shares the hub.
fn mixed_fds(which: Call, single: bool) {
    let (efd, sp) = foreign_fds();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    assert!(greenhub::patch::is_tracked(tcp.as_raw_fd()));
    assert!(!greenhub::patch::is_tracked(sp[0]) && !greenhub::patch::is_tracked(efd));
    let mut pfds = [
        pfd(efd, libc::POLLIN),
        pfd(sp[0], libc::POLLIN),
        pfd(-1, libc::POLLIN),
        pfd(tcp.as_raw_fd(), libc::POLLIN),
    ];
    let peer = Arc::new(std::sync::Mutex::new(Some(peer)));
    for (round, ready) in [1usize, 0, 3].into_iter().enumerate() {
        let ticker = Ticker::start();
        let sp1 = sp[1];
        let peer = peer.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            match ready {
                0 => raw_write(efd, &1u64.to_ne_bytes()),
                1 => raw_write(sp1, b"s"),
                _ => {
                    let mut g = peer.lock().unwrap();
                    g.as_mut().unwrap().write_all(b"t").unwrap();
                }
            }
        });
        let start = Instant::now();
        let (r, e) = call(which, &mut pfds, 10_000);
        let waited = start.elapsed();
        let ticked = ticker.ticks();
        writer.join().unwrap();
        ticker.stop();
        let what = format!("{which:?} round {round}");
        assert_eq!((r, e), (1, 0), "{what}: revents {:?}", revents(&pfds));
        let mut want = vec![0; pfds.len()];
        want[ready] = libc::POLLIN;
        assert_eq!(revents(&pfds), want, "{what}");
        assert_eq!(
            real_now(which, &pfds),
            (r, e, want),
            "{what}: the real call"
        );
        assert!(waited >= Duration::from_millis(90), "{what}: {waited:?}");
        if single {
            assert!(
                ticked >= 3,
                "{what}: the call blocked its hub ({ticked} ticks in {waited:?})"
            );
        }
        match ready {
            0 => raw_read(efd, 8),
            1 => raw_read(sp[0], 1),
            _ => {
                let mut b = [0u8; 1];
                tcp.read_exact(&mut b).unwrap();
            }
        }
    }
    drop(peer);
    close(&[efd, sp[0], sp[1]]);
}

#[test]
fn each_call_over_foreign_fds_and_a_tracked_socket_parks_only_the_greenlet() {
    enable();
    common::in_each_mode("mixed fds", |mode| {
        for which in CALLS {
            mixed_fds(which, mode == "single");
        }
    });
}

#[test]
fn a_timeout_returns_zero_after_at_least_the_timeout() {
    common::with_deadline("timeouts", 60, || {
        one_hub(|| {
            let (efd, sp) = foreign_fds();
            for which in CALLS {
                let ticker = Ticker::start();
                let mut pfds = [pfd(efd, libc::POLLIN), pfd(sp[0], libc::POLLIN)];
                let start = Instant::now();
                let (r, e) = call(which, &mut pfds, 200);
                let waited = start.elapsed();
                let ticked = ticker.stop();
                assert_eq!((r, e), (0, 0), "{which:?}");
                assert_eq!(revents(&pfds), [0, 0], "{which:?}");
                assert!(
                    waited >= Duration::from_millis(200),
                    "{which:?}: {waited:?}"
                );
                assert!(ticked >= 5, "{which:?}: blocked its hub ({ticked} ticks)");
            }
            close(&[efd, sp[0], sp[1]]);
        })
    });
}

#[test]
fn select_writes_back_the_time_not_slept() {
    one_hub(|| {
        let (efd, sp) = foreign_fds();
        // SAFETY: an all-zero fd_set is an empty set.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: `efd` is below FD_SETSIZE.
        unsafe { libc::FD_SET(efd, &mut set) };
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        let null = std::ptr::null_mut();
        // SAFETY: valid set and timeval.
        let r = unsafe { libc::select(efd + 1, &mut set, null, null, &mut tv) };
        assert_eq!(r, 0);
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 0));
        // SAFETY: as above.
        assert!(!unsafe { libc::FD_ISSET(efd, &set) });
        close(&[efd, sp[0], sp[1]]);
    });
}

#[test]
fn a_closed_fd_is_pollnval_or_ebadf_at_once() {
    common::with_deadline("closed fd", 60, || {
        one_hub(|| {
            let (efd, sp) = foreign_fds();
            // A number far above what the tests open (closing one of ours
            // would let a test running alongside reuse it), opened and
            // closed once so that the kernel's fd table covers it (select
            // ignores fds beyond the table, as never opened).
            let closed = 1000;
            // SAFETY: dup2 and close of fds of our own.
            unsafe {
                assert_eq!(libc::dup2(efd, closed), closed);
                assert_eq!(libc::close(closed), 0);
            }
            for which in CALLS {
                let mut pfds = [pfd(sp[0], libc::POLLIN), pfd(closed, libc::POLLIN)];
                let start = Instant::now();
                let got = call(which, &mut pfds, 5_000);
                assert!(start.elapsed() < Duration::from_secs(2), "{which:?}");
                let want = match which {
                    Call::Poll | Call::Ppoll => (1, 0),
                    _ => (-1, libc::EBADF),
                };
                assert_eq!(got, want, "{which:?}");
                if want.0 == 1 {
                    assert_eq!(revents(&pfds), [0, libc::POLLNVAL], "{which:?}");
                }
                let (r, e, rev) = real_now(which, &pfds);
                assert_eq!((r, e), got, "{which:?}: the real call");
                if r == 1 {
                    assert_eq!(rev, revents(&pfds), "{which:?}: the real call");
                }
            }
            close(&[efd, sp[0], sp[1]]);
        })
    });
}

#[test]
fn a_regular_file_is_ready_at_once_and_never_waited_on() {
    common::with_deadline("regular file", 60, || {
        one_hub(|| {
            let path = std::env::temp_dir().join(format!("greenhub-poll-{}", std::process::id()));
            let file = File::create(&path).unwrap();
            let fd = file.as_raw_fd();
            let (efd, sp) = foreign_fds();
            for which in CALLS {
                // Ready at once, whatever the timeout.
                let mut pfds = [
                    pfd(sp[0], libc::POLLIN),
                    pfd(fd, libc::POLLIN | libc::POLLOUT),
                ];
                let start = Instant::now();
                let got = call(which, &mut pfds, 10_000);
                assert!(start.elapsed() < Duration::from_secs(2), "{which:?}");
                let (r, e, rev) = real_now(which, &pfds);
                assert_eq!(got, (r, e), "{which:?}");
                assert_eq!(revents(&pfds), rev, "{which:?}");
                assert!(rev[1] & libc::POLLIN != 0 && rev[1] & libc::POLLOUT != 0);
                assert_eq!(rev[0], 0);

                // Asked only for what a regular file never reports
                // (POLLPRI): the call waits for the other fd, parked.
                let ticker = Ticker::start();
                let sp1 = sp[1];
                let writer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    raw_write(sp1, b"x");
                });
                let mut pfds = [pfd(sp[0], libc::POLLIN), pfd(fd, libc::POLLPRI)];
                let got = call(which, &mut pfds, 10_000);
                writer.join().unwrap();
                let ticked = ticker.stop();
                assert_eq!(got, (1, 0), "{which:?}");
                assert_eq!(revents(&pfds), [libc::POLLIN, 0], "{which:?}");
                assert!(ticked >= 3, "{which:?}: blocked its hub ({ticked} ticks)");
                raw_read(sp[0], 1);
            }
            close(&[efd, sp[0], sp[1]]);
            drop(file);
            let _ = std::fs::remove_file(path);
        })
    });
}

#[test]
fn bad_input_fails_as_the_kernel_says() {
    common::with_deadline("bad input", 60, || {
        one_hub(|| {
            let (efd, sp) = foreign_fds();
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills `lim`.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
            // nfds over RLIMIT_NOFILE: EINVAL, before anything is read.
            let mut one = [pfd(sp[0], libc::POLLIN)];
            let over = lim.rlim_cur as libc::nfds_t + 1;
            // SAFETY: the kernel rejects `over` before reading past `one`.
            let r = unsafe { libc::poll(one.as_mut_ptr(), over, 1_000) };
            assert_eq!((r, errno()), (-1, libc::EINVAL), "poll nfds");
            let ts = timespec(1_000);
            // SAFETY: as above.
            let r = unsafe { libc::ppoll(one.as_mut_ptr(), over, &ts, std::ptr::null()) };
            assert_eq!((r, errno()), (-1, libc::EINVAL), "ppoll nfds");

            // A bad timespec or timeval: EINVAL at once.
            let bad = [
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000_000,
                },
                libc::timespec {
                    tv_sec: -1,
                    tv_nsec: 0,
                },
            ];
            for ts in bad {
                // SAFETY: a valid pollfd array and timespec.
                let r = unsafe { libc::ppoll(one.as_mut_ptr(), 1, &ts, std::ptr::null()) };
                assert_eq!((r, errno()), (-1, libc::EINVAL), "ppoll {ts:?}");
                // SAFETY: an all-zero fd_set is an empty set.
                let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
                // SAFETY: `sp[0]` is below FD_SETSIZE.
                unsafe { libc::FD_SET(sp[0], &mut set) };
                let null = std::ptr::null_mut();
                // SAFETY: a valid set and timespec.
                let r = unsafe {
                    libc::pselect(sp[0] + 1, &mut set, null, null, &ts, std::ptr::null())
                };
                assert_eq!((r, errno()), (-1, libc::EINVAL), "pselect {ts:?}");
            }
            let mut tv = libc::timeval {
                tv_sec: -1,
                tv_usec: 500,
            };
            // SAFETY: an all-zero fd_set is an empty set.
            let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
            // SAFETY: `sp[0]` is below FD_SETSIZE.
            unsafe { libc::FD_SET(sp[0], &mut set) };
            let null = std::ptr::null_mut();
            // SAFETY: a valid set and timeval.
            let r = unsafe { libc::select(sp[0] + 1, &mut set, null, null, &mut tv) };
            assert_eq!((r, errno()), (-1, libc::EINVAL), "select tv_sec -1");
            close(&[efd, sp[0], sp[1]]);
        })
    });
}

#[test]
fn kill_of_a_greenlet_parked_in_each_call_completes() {
    common::with_deadline("kill", 60, || {
        for which in CALLS {
            let after = Arc::new(AtomicBool::new(false));
            let seen = after.clone();
            let start = Instant::now();
            let outcome = one_hub(move || {
                let (efd, sp) = foreign_fds();
                let h = greenhub::spawn(move || {
                    let mut pfds = [pfd(efd, libc::POLLIN), pfd(sp[0], libc::POLLIN)];
                    let got = call(which, &mut pfds, 3_000);
                    assert_eq!(got, (-1, libc::ECANCELED), "{which:?}");
                    greenhub::sleep(Duration::from_millis(1)); // raises the kill
                    seen.store(true, SeqCst);
                });
                greenhub::sleep(Duration::from_millis(50));
                h.kill();
                let r = h.join();
                close(&[efd, sp[0], sp[1]]);
                r
            });
            assert!(outcome.unwrap_err().is_killed(), "{which:?}");
            assert!(!after.load(SeqCst), "{which:?}");
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "{which:?}: took {took:?}");
        }
    });
}

#[test]
fn greenhub_timeout_around_each_call_gives_etimedout() {
    common::with_deadline("timeout", 60, || {
        one_hub(|| {
            let (efd, sp) = foreign_fds();
            for which in CALLS {
                let start = Instant::now();
                let r = greenhub::timeout(Duration::from_millis(100), || {
                    let mut pfds = [pfd(efd, libc::POLLIN), pfd(sp[0], libc::POLLIN)];
                    let got = call(which, &mut pfds, 3_000);
                    assert_eq!(got, (-1, libc::ETIMEDOUT), "{which:?}");
                    greenhub::sleep(Duration::from_secs(60)); // raises the timeout
                });
                assert!(r.is_err(), "{which:?}");
                let took = start.elapsed();
                assert!(took < Duration::from_secs(2), "{which:?}: took {took:?}");
            }
            close(&[efd, sp[0], sp[1]]);
        })
    });
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, SeqCst);
}

/// `ppoll`/`pselect` apply their mask around the real call: a signal that
/// the thread blocks, pending, and that the mask unblocks is delivered, and
/// the call fails with `EINTR` at once.
#[test]
fn the_mask_of_ppoll_and_pselect_lets_a_pending_signal_in() {
    common::with_deadline("sigmask", 60, || {
        one_hub(|| {
            // SAFETY: installs a handler that only bumps an atomic.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
            }
            let (efd, sp) = foreign_fds();
            for which in [Call::Ppoll, Call::Pselect] {
                // SAFETY: sigset operations on local sets; the signal goes
                // to this thread only, where it is blocked until the call.
                let (old, open) = unsafe {
                    let mut block: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut block);
                    libc::sigaddset(&mut block, libc::SIGUSR2);
                    let mut old: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
                    libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2);
                    let mut open = old;
                    libc::sigdelset(&mut open, libc::SIGUSR2);
                    (old, open)
                };
                let before = SIGNALS.load(SeqCst);
                let mut pfds = [pfd(efd, libc::POLLIN), pfd(sp[0], libc::POLLIN)];
                let start = Instant::now();
                let got = call_masked(which, &mut pfds, 5_000, Some(&open));
                // SAFETY: restores this thread's mask.
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
                assert_eq!(got, (-1, libc::EINTR), "{which:?}");
                assert_eq!(SIGNALS.load(SeqCst), before + 1, "{which:?}");
                assert!(start.elapsed() < Duration::from_secs(2), "{which:?}");
            }
            close(&[efd, sp[0], sp[1]]);
        })
    });
}
