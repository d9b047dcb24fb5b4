//! Monkey patching (feature `patch`): unmodified synchronous code — std's
//! sockets and `thread::sleep`, and the crates built on them — parks only
//! its greenlet instead of blocking the hub (gevent's `monkey.patch_all()`).
//!
//! With the feature, greenhub defines glibc's blocking socket and sleep
//! functions in the final executable (`socket`, `accept`, `accept4`,
//! `connect`, `read`, `readv`, `recv`, `recvfrom`, `recvmsg`, `write`,
//! `writev`, `send`, `sendto`, `sendmsg`, `poll`, `ppoll`, `select`,
//! `pselect`, `nanosleep`,
//! `clock_nanosleep`, `usleep`, `sleep`), DNS (`getaddrinfo`,
//! `getnameinfo`), child waits (`waitpid`, `wait4`, `waitid`, `wait`),
//! `pipe`/`pipe2`, and on x86-64 `syscall` for futex waits (`futex.rs`),
//! plus the state-tracking `close`, `dup`, `dup2`, `dup3`, `fcntl`, `ioctl`
//! and `setsockopt`. Calls from the
//! executable's own code bind to these; each finds glibc's real function
//! with `dlsym(RTLD_NEXT, ..)`. Until [`enable`] is called they only pass
//! through.
//!
//! # What the hooks do once enabled
//!
//! - A socket created by a hooked `socket`/`accept`/`accept4` *on a
//!   greenlet* is *tracked*: its real description is non-blocking, and the
//!   program's view (`O_NONBLOCK` via `fcntl`/`FIONBIO`,
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO`) is kept aside, through `dup*` and `close`.
//!   A call that would block on it parks the greenlet on the hub's poller, up
//!   to the socket's timeout, which then fails with the errno the blocking
//!   call gives (`EAGAIN`; `EINPROGRESS` for `connect`). Off a greenlet, a
//!   tracked socket blocks its thread in `poll(2)`, as a blocking socket
//!   would.
//! - Sleeps on a greenlet park it on the hub's timers; `poll`, `ppoll`,
//!   `select` and `pselect` with a timeout, over any mix of fds, park it on
//!   the poller until one is ready, and the real call with a zero timeout
//!   gives the result (`timing.rs`: regular files are ready at once; a
//!   signal arriving while parked runs its handler but does not end the
//!   wait; a `ppoll`/`pselect` mask that unblocks a signal the thread
//!   blocks passes through).
//! - `getaddrinfo` and `getnameinfo` on a greenlet run on the blocking pool
//!   (`dns.rs`); `waitpid`, `wait4`, `waitid` and `wait` park the greenlet
//!   until a child is ready (`process.rs`).
//! - Fds the hooks did not create (sockets made off a greenlet, by a pool's
//!   threads or before the runtime; `socketpair`s; pipes, FIFOs, eventfds
//!   and other anonymous inodes, whoever made them), when blocking: a
//!   greenlet's blocking read, write, `accept` or `connect` on one parks the
//!   greenlet, without changing the description that plain threads sharing
//!   it see (`foreign.rs`: per-call `MSG_DONTWAIT` on sockets, a readiness
//!   wait before the real call on pipes, `pipes.rs`). Each module's docs say
//!   how, and what a kill does.
//! - Everything else passes straight to glibc, unchanged: calls off a
//!   greenlet (the hubs' own calls, plain threads, the blocking pool), zero
//!   timeouts, stdin, stdout and stderr, non-blocking descriptions, regular
//!   files and devices.
//!
//! # Kills and timeouts never unwind out of a hook
//!
//! A greenlet killed, or whose [`timeout`](crate::timeout) expires, while it
//! is blocked in a hooked call gets an error return, not an unwind (which
//! would abort the process at the `extern "C"` boundary): socket calls,
//! `poll`, `ppoll`, `select` and `pselect` fail with `ECANCELED` (kill) or
//! `ETIMEDOUT` (timeout; not `EINTR`, which std retries at once), and
//! sleeps end early with `EINTR` and no time left. The kill or timeout
//! stays pending and is raised at the greenlet's next greenhub blocking
//! point (a greenhub sleep, lock, channel or join); until then hooked calls
//! keep failing the same way. A killed greenlet whose code ignores those
//! errors and never reaches such a point (a retry loop: on error, sleep and
//! reconnect) is **abandoned** after a grace of 1 s or 64 failing calls
//! (`killed.rs`): never resumed, its stack leaked, its joiners get
//! `Killed`. A `timeout` frame's `ETIMEDOUT` is not
//! escalated that way: the frame's code may handle it and go on.
//!
//! # Differences from a blocking socket
//!
//! - A write on a tracked stream socket may return a short count where a
//!   blocking socket would have waited to send everything (as it does when
//!   a signal interrupts it); std's `write_all` and most clients loop. A
//!   `recv` with `MSG_WAITALL` may likewise return less than asked.
//! - A signal handler that interrupts a greenlet and itself sleeps or uses a
//!   tracked socket is not supported (it would park inside the handler);
//!   writes to untracked fds, such as a self-pipe, pass through as always.
//! - A forked child (between `fork` and `exec`) sees every fd untracked.
//!
//! # Not covered
//!
//! - Static builds (glibc or musl): `dlsym` finds nothing; [`enable`] fails.
//! - Shared libraries (`libpq.so`, `libcurl.so`): a Rust executable does
//!   not export the hooks to them, so they keep binding to glibc.
//! - glibc's internal calls (`gethostbyname*`, `res_query`, `system`,
//!   `popen`/`pclose`), code issuing `syscall()` directly for anything but
//!   a private futex, and `parking_lot`'s waits (its per-thread parker
//!   data: see `futex.rs`). std's `thread::park`, shared by the greenlets of
//!   a hub, has its own protocol: `parker.rs`.
//! - Regular files (always "ready"): use [`blocking::unblock`](crate::blocking::unblock).
//! - C libraries with thread-local state held across a blocking call (see
//!   [`enable`]'s safety section).
//!
//! - `fdtable.rs`: which fds are tracked, and their state.
//! - `emul.rs`: blocking calls emulated on non-blocking fds; waits that
//!   never unwind.
//! - `hooks.rs`, `state.rs`, `timing.rs`, `dns.rs`, `process.rs`,
//!   `pipes.rs`: the hooks; `foreign.rs`: fds the hooks did not create.
//! - `futex.rs`: `syscall` and the futex wait table; kills there abandon
//!   the greenlet after a grace.
//! - `killed.rs`: the grace of a killed greenlet in the other hooks.
//! - `real.rs`: glibc's functions behind them.

mod dns;
mod emul;
mod fdtable;
mod foreign;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod futex;
mod hooks;
mod killed;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod parker;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod parkword;
mod pipes;
mod process;
mod real;
mod state;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod table;
mod timing;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROBING: AtomicBool = AtomicBool::new(false);
static PROBE_HITS: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// Counts a hook call while [`enable`]'s self-check runs.
#[inline]
fn probe() {
    if PROBING.load(Relaxed) {
        PROBE_HITS.fetch_add(1, Relaxed);
    }
}

/// Turns the hooks on for the whole process: from now on, blocking socket
/// calls and sleeps made on greenlets park only the greenlet (see the
/// [module docs](self) for what is covered). Idempotent.
///
/// It first checks that the hooks are really in effect: that glibc's real
/// functions are found, and that std's calls reach the hooks (a linker can
/// drop them, and a static build cannot use them).
///
/// # Errors
///
/// `ErrorKind::Unsupported`, with a message naming the cause, if the hooks
/// are not in effect; nothing is enabled then.
///
/// # Safety
///
/// Once enabled, a greenlet may switch out inside any hooked call, so code
/// that keeps thread-local state across such a call must not be run on
/// greenlets that share an OS thread: a C library with a non-reentrant
/// thread-local buffer or per-thread session around its socket calls, or a
/// lock held across a socket call or sleep that another greenlet of the same
/// hub may take (a `parking_lot` lock then deadlocks the hub; a std `Mutex`
/// no longer does on x86-64, whose waits park the greenlet; a reentrant lock,
/// such as stdout's, would be entered twice: writes to stdout, stderr and
/// files are not hooked for that reason). The caller promises that the
/// program's greenlets do not do that.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// // SAFETY: the greenlets below hold no thread-affine state across a
/// // blocking call.
/// unsafe { greenhub::patch::enable() }.expect("hooks in effect");
/// let start = Instant::now();
/// greenhub::Builder::new().single_threaded().build().unwrap().block_on(|| {
///     let idlers: Vec<_> = (0..10)
///         .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
///         .collect();
///     for h in idlers {
///         h.join().unwrap();
///     }
/// });
/// assert!(start.elapsed() < Duration::from_millis(900)); // not 10 × 100 ms
/// ```
pub unsafe fn enable() -> io::Result<()> {
    static CHECK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CHECK.lock().unwrap_or_else(|e| e.into_inner());
    if enabled() {
        return Ok(());
    }
    self_check()?;
    // SAFETY: `forked_child` is an `extern "C" fn()` that only stores to
    // atomics, which is async-signal-safe as a fork child handler must be.
    let r = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    ENABLED.store(true, Relaxed);
    Ok(())
}

/// In the child of a `fork` (between `fork` and `exec`, as std's
/// `Command` does when it cannot use `posix_spawn`) no hub runs and the
/// table's lock may have been held by another thread of the parent: every
/// hook passes straight through there.
extern "C" fn forked_child() {
    ENABLED.store(false, Relaxed);
    fdtable::forget_all();
}

/// Turns the hooks off again for new sockets and sleeps: calls pass through
/// to glibc. Sockets already tracked keep behaving as blocking sockets (they
/// stay non-blocking underneath).
///
/// ```
/// greenhub::patch::disable();
/// assert!(!greenhub::patch::is_enabled());
/// ```
pub fn disable() {
    ENABLED.store(false, Relaxed);
}

/// Whether [`enable`] has turned the hooks on.
///
/// ```
/// if !greenhub::patch::is_enabled() {
///     println!("std calls block the hub");
/// }
/// ```
pub fn is_enabled() -> bool {
    enabled()
}

/// Whether the hooks manage `fd`: a socket made by a hooked `socket` or
/// `accept` on a greenlet while enabled, or a dup of one, not yet closed.
/// Every other fd is passed straight to glibc.
///
/// ```
/// assert!(!greenhub::patch::is_tracked(0)); // stdin never is
/// ```
pub fn is_tracked(fd: std::os::fd::RawFd) -> bool {
    fdtable::get(fd).is_some()
}

/// The hooks are in effect: glibc's functions are found, and calls from std
/// (`thread::sleep` → `nanosleep` or `clock_nanosleep`) and from the `libc` crate (`read`) land in
/// the hooks.
fn self_check() -> io::Result<()> {
    let fail = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("greenhub::patch: the hooks are not in effect: {why}"),
        ))
    };
    if let Err(name) = real::resolve_all() {
        return fail(format!(
            "dlsym(RTLD_NEXT, \"{name}\") found no glibc function (a static or \
             non-glibc build? the feature needs a dynamically linked glibc executable)"
        ));
    }
    // Referencing the hooks keeps their objects in the link.
    let _ = std::hint::black_box(&hooks::greenhub_patch_hooks);
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    let _ = std::hint::black_box(futex::syscall as *const () as usize);
    PROBING.store(true, Relaxed);
    let before = PROBE_HITS.load(Relaxed);
    std::thread::sleep(Duration::from_nanos(1));
    let after_sleep = PROBE_HITS.load(Relaxed);
    let sleep_hit = after_sleep != before;
    // SAFETY: reading into a null buffer of length 0 from fd -1 touches no
    // memory (EBADF).
    let _ = unsafe { libc::read(-1, std::ptr::null_mut(), 0) };
    let after_read = PROBE_HITS.load(Relaxed);
    let read_hit = after_read != after_sleep;
    // SAFETY: getpid has no arguments and no failure.
    let _ = unsafe { libc::syscall(libc::SYS_getpid) };
    let syscall_hit = !cfg!(all(target_arch = "x86_64", target_os = "linux"))
        || PROBE_HITS.load(Relaxed) != after_read;
    PROBING.store(false, Relaxed);
    if !sleep_hit || !read_hit || !syscall_hit {
        return fail(format!(
            "calls to nanosleep or clock_nanosleep (from std: {sleep_hit}), read (from libc: {read_hit}) \
             and syscall (from libc: {syscall_hit}) \
             did not reach greenhub's definitions; were they dropped by the linker, or \
             is greenhub built into a shared library?"
        ));
    }
    Ok(())
}
