//! The waiting hooks: `poll`, `ppoll`, `select`, `pselect` and the sleeps
//! (`nanosleep`, `clock_nanosleep`, `usleep`, `sleep`).
//!
//! On a greenlet, with patching enabled, a sleep parks the greenlet on its
//! hub's timers.
//!
//! `poll`, `ppoll`, `select` and `pselect` with a non-zero timeout (or
//! none), over any mix of fds (tracked sockets, sockets, pipes, eventfds
//! and other fds made anywhere), park the greenlet:
//!
//! 1. The real call with a zero timeout answers first: anything ready
//!    (regular files always are, for `POLLIN`/`POLLOUT`), a closed fd
//!    (`POLLNVAL`; `EBADF` for the select calls), a negative fd (ignored),
//!    bad input (`nfds` over `RLIMIT_NOFILE`, a bad pointer: the kernel's
//!    `EINVAL` or `EFAULT`). A bad timeout (a negative timeval or timespec,
//!    `tv_nsec` out of range) goes to glibc as given: `EINVAL` at once.
//! 2. If nothing is ready, the greenlet parks until one of the fds may be
//!    ready, through its hub's poller (`crate::io::park_pollfds`: each fd
//!    watched through a private duplicate, for exactly the epoll events
//!    that make `poll` report what was asked, so readability never wakes a
//!    wait for `POLLPRI`), until the timeout, or until a kill or an expired
//!    `greenhub::timeout` frame: then it fails with -1 and `ECANCELED` or
//!    `ETIMEDOUT`. Fds that epoll refuses (regular files, directories, some
//!    devices) report a fixed readiness, so one not ready at step 1 never
//!    becomes ready and is not watched. For the select calls, an fd with an
//!    error or hang-up that select does not count (in the write or except
//!    set only) is not watched either.
//! 3. After each wake, and at the timeout, the real call with a zero
//!    timeout again gives the exact result (`revents`, the sets, the
//!    count); if nothing is ready (a reader elsewhere took it), back to 2.
//!    `select` then writes the time not slept into its timeval, as Linux.
//!
//! If the hub cannot watch the fds (`EMFILE` for a duplicate, epoll's
//! `ENOSPC`), the real blocking call runs for the time left, as unpatched.
//!
//! **Signals.** `ppoll` and `pselect` apply their mask only around the real
//! calls (glibc's, with a zero timeout), so a signal pending when the call
//! starts, or at a later look, is delivered as the kernel's call delivers it
//! (-1/`EINTR`). A signal arriving while the greenlet is parked runs its
//! handler on the hub's thread under the thread's own mask and does not end
//! the wait, for `poll` and `select` too (their kernel calls would fail with
//! `EINTR`); a signal that the mask blocks but the thread does not is thus
//! handled before the call returns. A `ppoll`/`pselect` whose mask unblocks
//! a signal that the calling thread blocks (the race-free signal wait:
//! block `SIGCHLD`, then wait with it unblocked) is passed to glibc as
//! given, blocking the hub, since parked it could not be ended by that
//! signal.
//!
//! Off a greenlet, with a zero timeout and in a `no_switch` scope, all four
//! are glibc's, unchanged.
//!
//! A kill or an expired `greenhub::timeout` frame ends a sleep early with
//! -1/`EINTR` (`clock_nanosleep` returns `EINTR`) and the remaining time set
//! to zero, so that loops which sleep the rest again (std's `thread::sleep`)
//! return at once.

use std::time::{Duration, Instant};

use libc::useconds_t;
use libc::{c_int, c_uint, clockid_t, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::emul::{self, set_errno, sleep_for};
use super::real;
use crate::greenlet::wait::Wake;

/// Whether the caller's waits are to be cooperative.
#[inline]
fn cooperative() -> bool {
    super::enabled() && emul::on_greenlet()
}

/// # Safety
/// As `poll(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !cooperative() {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    // SAFETY: the caller's arguments (`poll`'s contract).
    unsafe { poll_coop(fds, n, deadline, std::ptr::null()) }
}

/// # Safety
/// As `ppoll(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let passthrough = || unsafe { real::ppoll(fds, n, t, mask) };
    if !cooperative() {
        return passthrough();
    }
    // SAFETY: the caller's timeout and mask (`ppoll`/`pselect`'s contract).
    let Some(deadline) = (unsafe { masked_deadline(t, mask) }) else {
        return passthrough();
    };
    // SAFETY: the caller's arguments (`ppoll`'s contract).
    unsafe { poll_coop(fds, n, deadline, mask) }
}

/// `poll`/`ppoll` on a greenlet (see the module docs); `mask` is null or
/// the caller's signal mask for the real calls.
///
/// # Safety
/// As `ppoll(2)`.
unsafe fn poll_coop(
    fds: *mut pollfd,
    n: nfds_t,
    deadline: Option<Instant>,
    mask: *const sigset_t,
) -> c_int {
    let zero = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let look = || {
        // SAFETY: the caller's pollfds and mask; a zero timeout never
        // blocks. Without a mask this is glibc's `poll`, as called.
        unsafe {
            if mask.is_null() {
                real::poll(fds, n, 0)
            } else {
                real::ppoll(fds, n, &zero, mask)
            }
        }
    };
    // The kernel checks `fds` and `n` (EFAULT, EINVAL) before anything is
    // copied here; a negative or invalid fd is its answer too.
    let first = look();
    if first != 0 {
        return first;
    }
    let copy: Vec<pollfd> = if n == 0 {
        Vec::new()
    } else {
        // SAFETY: the kernel just read `n` pollfds at `fds`; copied out, so
        // no reference outlives its writes below.
        unsafe { std::slice::from_raw_parts(fds, n as usize) }.to_vec()
    };
    let block = |left: Option<Duration>| {
        let ts = left.map(to_timespec);
        // SAFETY: the caller's pollfds and mask, with the time left.
        unsafe { real::ppoll(fds, n, timespec_ptr(&ts), mask) }
    };
    cooperate(&copy, deadline, look, block)
}

/// The wait shared by the four hooks, after a first `look` (the real call
/// with a zero timeout) found nothing: `look` again answers whenever it
/// finds something or fails, and at the deadline; in between the greenlet parks until one of `pfds` may be ready
/// ([`crate::io::park_pollfds`]). If the hub cannot watch them (`EMFILE`
/// for a duplicate, epoll's `ENOSPC`), `block` makes the real, blocking
/// call for the time left, as unpatched.
fn cooperate(
    pfds: &[pollfd],
    deadline: Option<Instant>,
    mut look: impl FnMut() -> c_int,
    block: impl FnOnce(Option<Duration>) -> c_int,
) -> c_int {
    loop {
        match crate::io::park_pollfds(pfds, deadline) {
            Ok(Wake::Woken) => {}
            // The last look, at the deadline.
            Ok(Wake::TimedOut) => return look(),
            Ok(Wake::Interrupted(i)) => {
                set_errno(emul::interrupted(&i));
                return -1;
            }
            Err(_) => {
                return block(deadline.map(|d| d.saturating_duration_since(Instant::now())));
            }
        }
        let r = look();
        if r != 0 {
            return r;
        }
    }
}

/// The deadline of a `ppoll` or `pselect` that parks its greenlet (`None`
/// inside: no timeout), or `None` when the call must go to glibc as given: a
/// zero timeout, an invalid one (the kernel's `EINVAL`), or a mask that
/// unblocks a signal the thread blocks (see the module docs).
///
/// # Safety
///
/// `t` is null or points at a timespec; `mask` is null or points at a
/// sigset.
unsafe fn masked_deadline(t: *const timespec, mask: *const sigset_t) -> Option<Option<Instant>> {
    // SAFETY: the caller's promise.
    let timeout = match unsafe { t.as_ref() }.map(duration) {
        None => None,
        Some(None) => return None,
        Some(Some(d)) if d.is_zero() => return None,
        Some(Some(d)) => Some(d),
    };
    // SAFETY: the caller's promise.
    if unsafe { unblocks_a_blocked_signal(mask) } {
        return None;
    }
    Some(timeout.and_then(|t| Instant::now().checked_add(t)))
}

/// Whether `mask` (null: none) lets in a signal that the calling thread
/// blocks now: `ppoll`/`pselect` then pass through, since a signal arriving
/// while the greenlet is parked could not end the wait as the kernel's
/// call ends it (see the module docs).
///
/// # Safety
/// `mask` is null or points at a `sigset_t`.
unsafe fn unblocks_a_blocked_signal(mask: *const sigset_t) -> bool {
    if mask.is_null() {
        return false;
    }
    // SAFETY: an all-zero sigset is a valid (empty) set.
    let mut now: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: SIG_BLOCK of nothing only reads the thread's mask into `now`.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) } != 0 {
        return true;
    }
    // SAFETY: glibc's sigset_t starts with the kernel's 64-bit mask (bit
    // `sig - 1` for signal `sig`), which is all the kernel reads; `mask` is
    // valid (the caller's contract) and `now` is ours.
    let (now, mask) = unsafe {
        (
            (&raw const now).cast::<u64>().read(),
            mask.cast::<u64>().read(),
        )
    };
    now & !mask != 0
}

/// # Safety
/// As `select(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *mut timeval,
) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let passthrough = || unsafe { real::select(n, r, w, e, t) };
    if !cooperative() || !(0..=libc::FD_SETSIZE as c_int).contains(&n) {
        return passthrough();
    }
    // SAFETY: a non-null `t` points at a timeval (the caller's contract).
    let timeout = match unsafe { t.as_ref() } {
        None => None,
        // The kernel's EINVAL.
        Some(tv) if tv.tv_sec < 0 || tv.tv_usec < 0 => return passthrough(),
        Some(tv) => Some(
            Duration::from_secs(tv.tv_sec as u64)
                .saturating_add(Duration::from_micros(tv.tv_usec as u64)),
        ),
    };
    if timeout.is_some_and(|t| t.is_zero()) {
        return passthrough();
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let look = || {
        let mut zero = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: the caller's sets; a zero timeout never blocks.
        unsafe { real::select(n, r, w, e, &mut zero) }
    };
    let block = |left: Option<Duration>| {
        let mut tv = left.map(|l| timeval {
            tv_sec: l.as_secs() as _,
            tv_usec: l.subsec_micros() as _,
        });
        let tp = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t as *mut timeval);
        // SAFETY: the caller's sets, with the time left.
        unsafe { real::select(n, r, w, e, tp) }
    };
    // SAFETY: the caller's sets (`select`'s contract).
    let result = unsafe { sets_coop(n, [r, w, e], deadline, look, block) };
    // Linux writes the time not slept back into the timeval.
    if let (Some(d), false) = (deadline, t.is_null()) {
        let left = d.saturating_duration_since(Instant::now());
        // SAFETY: `t` is non-null and points at a timeval.
        unsafe {
            t.write(timeval {
                tv_sec: left.as_secs() as _,
                tv_usec: left.subsec_micros() as _,
            })
        };
    }
    result
}

/// # Safety
/// As `pselect(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let passthrough = || unsafe { real::pselect(n, r, w, e, t, mask) };
    if !cooperative() || !(0..=libc::FD_SETSIZE as c_int).contains(&n) {
        return passthrough();
    }
    // SAFETY: the caller's timeout and mask (`ppoll`/`pselect`'s contract).
    let Some(deadline) = (unsafe { masked_deadline(t, mask) }) else {
        return passthrough();
    };
    let zero = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: (both) the caller's sets and mask; a zero timeout never
    // blocks, and `block` waits for the time left.
    let look = || unsafe { real::pselect(n, r, w, e, &zero, mask) };
    let block = |left: Option<Duration>| {
        let ts = left.map(to_timespec);
        // SAFETY: as above.
        unsafe { real::pselect(n, r, w, e, timespec_ptr(&ts), mask) }
    };
    // SAFETY: the caller's sets (`pselect`'s contract).
    unsafe { sets_coop(n, [r, w, e], deadline, look, block) }
}

/// `select`/`pselect` on a greenlet: the caller's sets are kept aside and
/// put back before each real call (which overwrites them), then waited on
/// as pollfds (read: `POLLIN`, write: `POLLOUT`, except: `POLLPRI`, with
/// the band bits the kernel's select counts).
///
/// # Safety
/// `n` is in `0..=FD_SETSIZE` and each pointer is null or points at an
/// `fd_set`.
unsafe fn sets_coop(
    n: c_int,
    ptrs: [*mut fd_set; 3],
    deadline: Option<Instant>,
    mut look: impl FnMut() -> c_int,
    block: impl FnOnce(Option<Duration>) -> c_int,
) -> c_int {
    // SAFETY: non-null set pointers point at fd_sets (the caller's
    // contract); they are copied, not borrowed.
    let sets = ptrs.map(|s| unsafe { s.as_ref() }.copied());
    let restore = || {
        for (ptr, set) in ptrs.into_iter().zip(&sets) {
            if let Some(set) = set {
                // SAFETY: `ptr` is the non-null set `set` was copied from.
                unsafe { ptr.write(*set) };
            }
        }
    };
    let first = look();
    if first != 0 {
        return first;
    }
    let mut pfds = Vec::new();
    for fd in 0..n {
        let mut events = 0;
        for (set, ev) in sets.iter().zip([
            libc::POLLIN | libc::POLLRDNORM | libc::POLLRDBAND,
            libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND,
            libc::POLLPRI,
        ]) {
            let isset = |s: &fd_set| {
                // SAFETY: `fd` is below `n` <= FD_SETSIZE; `s` is a valid set.
                unsafe { libc::FD_ISSET(fd, s) }
            };
            if set.as_ref().is_some_and(isset) {
                events |= ev;
            }
        }
        if events != 0 {
            pfds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    // `poll` always reports an error or hang-up, which select counts only
    // for its read set (and an error for the write set): an fd whose such
    // condition select did not count could only wake the wait again and
    // again, so it is not watched (a hung-up fd gets no new events).
    let mut seen = pfds.clone();
    // SAFETY: valid pollfds of our own; a zero timeout never blocks.
    if unsafe { real::poll(seen.as_mut_ptr(), seen.len() as nfds_t, 0) } > 0 {
        for (p, s) in pfds.iter_mut().zip(&seen) {
            if s.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                p.fd = -1;
            }
        }
    }
    let look = || {
        restore();
        look()
    };
    let block = |left| {
        restore();
        block(left)
    };
    cooperate(&pfds, deadline, look, block)
}

/// # Safety
/// As `nanosleep(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    super::probe();
    // SAFETY: a non-null `req` points at a timespec (the caller's contract).
    let dur = match unsafe { req.as_ref() } {
        Some(ts) if cooperative() => duration(ts),
        // SAFETY: the caller's arguments, as given.
        _ => return unsafe { real::nanosleep(req, rem) },
    };
    let Some(dur) = dur else {
        set_errno(libc::EINVAL);
        return -1;
    };
    match sleep_for(dur) {
        Ok(()) => 0,
        Err(_) => {
            // SAFETY: a non-null `rem` points at a timespec to fill.
            unsafe { zero_rem(rem) };
            set_errno(libc::EINTR);
            -1
        }
    }
}

/// # Safety
/// As `clock_nanosleep(2)` (which returns the error instead of setting
/// `errno`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    super::probe();
    let known = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
    );
    // SAFETY: a non-null `req` points at a timespec (the caller's contract).
    let ts = match unsafe { req.as_ref() } {
        Some(ts) if known && cooperative() => ts,
        // SAFETY: the caller's arguments, as given.
        _ => return unsafe { real::clock_nanosleep(clock, flags, req, rem) },
    };
    let Some(mut dur) = duration(ts) else {
        return libc::EINVAL;
    };
    let absolute = flags & libc::TIMER_ABSTIME != 0;
    if absolute {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to fill.
        unsafe { libc::clock_gettime(clock, &mut now) };
        dur = dur.saturating_sub(duration(&now).unwrap_or_default());
    }
    match sleep_for(dur) {
        Ok(()) => 0,
        Err(_) => {
            if !absolute {
                // SAFETY: a non-null `rem` points at a timespec to fill.
                unsafe { zero_rem(rem) };
            }
            libc::EINTR
        }
    }
}

/// # Safety
/// As `usleep(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: useconds_t) -> c_int {
    if !cooperative() {
        // SAFETY: the caller's argument, as given.
        return unsafe { real::usleep(usec) };
    }
    match sleep_for(Duration::from_micros(usec.into())) {
        Ok(()) => 0,
        Err(_) => {
            set_errno(libc::EINTR);
            -1
        }
    }
}

/// # Safety
/// As `sleep(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    if !cooperative() {
        // SAFETY: the caller's argument, as given.
        return unsafe { real::sleep(secs) };
    }
    // Cut short: nothing is left to sleep (see the module docs).
    let _ = sleep_for(Duration::from_secs(secs.into()));
    0
}

/// A valid timespec as a duration (`None`: `EINVAL`).
fn duration(ts: &timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// # Safety
/// `rem` is null or points at a writable timespec.
unsafe fn zero_rem(rem: *mut timespec) {
    if !rem.is_null() {
        // SAFETY: non-null, writable (the caller's contract).
        unsafe {
            rem.write(timespec {
                tv_sec: 0,
                tv_nsec: 0,
            })
        };
    }
}

/// `d` as a `timespec` (the time left of a blocking `ppoll`/`pselect`).
fn to_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// The timeout argument for `ts`: null (wait without limit) when `None`.
fn timespec_ptr(ts: &Option<timespec>) -> *const timespec {
    ts.as_ref()
        .map_or(std::ptr::null(), |t| t as *const timespec)
}
