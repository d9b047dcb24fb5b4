//! The waiting hooks: `poll`, `select` and the sleeps (`nanosleep`,
//! `clock_nanosleep`, `usleep`, `sleep`).
//!
//! On a greenlet, with patching enabled, a sleep parks the greenlet on its
//! hub's timers, and a `poll`/`select` with a non-zero timeout over tracked
//! fds only parks it on the hub's poller. Everywhere else (off a greenlet,
//! zero timeouts, any untracked fd in the set) they are glibc's.
//!
//! A kill or an expired `greenhub::timeout` frame ends a sleep early with
//! -1/`EINTR` (`clock_nanosleep` returns `EINTR`) and the remaining time set
//! to zero, so that loops which sleep the rest again (std's `thread::sleep`)
//! return at once; `poll` and `select` fail with `ECANCELED` or `ETIMEDOUT`.

use std::time::{Duration, Instant};

use libc::{c_int, c_uint, clockid_t, fd_set, nfds_t, pollfd, timespec, timeval, useconds_t};

use super::emul::{self, select_coop, set_errno, sleep_for};
use super::real;

/// Whether the caller's waits are to be cooperative.
#[inline]
fn cooperative() -> bool {
    super::enabled() && emul::on_greenlet()
}

/// # Safety
/// As `poll(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: (both calls) the caller's arguments, as given.
    let passthrough = || unsafe { real::poll(fds, n, timeout) };
    if timeout == 0 || !cooperative() || (n > 0 && fds.is_null()) {
        return passthrough();
    }
    let copy: Vec<pollfd> = if n == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller passes `n` valid pollfds at `fds`; copied out,
        // so no reference outlives the kernel's writes below.
        unsafe { std::slice::from_raw_parts(fds, n as usize) }.to_vec()
    };
    if !super::pipes::all_pollable(copy.iter().map(|p| p.fd)) {
        return passthrough();
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    loop {
        // SAFETY: the caller's pollfds; a zero timeout never blocks.
        let r = unsafe { real::poll(fds, n, 0) };
        if r != 0 {
            return r;
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return 0;
        }
        if let Err(e) = select_coop(&copy, left) {
            set_errno(e);
            return -1;
        }
    }
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
    // SAFETY: (both calls) the caller's arguments, as given.
    let passthrough = || unsafe { real::select(n, r, w, e, t) };
    if !cooperative() || !(0..=libc::FD_SETSIZE as c_int).contains(&n) {
        return passthrough();
    }
    // SAFETY: a non-null `t` points at a timeval (the caller's contract).
    let timeout = unsafe { t.as_ref() }.map(|tv| {
        Duration::from_secs(tv.tv_sec.max(0) as u64)
            + Duration::from_micros(tv.tv_usec.max(0) as u64)
    });
    if timeout.is_some_and(|t| t.is_zero()) {
        return passthrough();
    }
    // SAFETY: non-null set pointers point at fd_sets (the caller's
    // contract); they are copied, not borrowed.
    let sets = [r, w, e].map(|s| unsafe { s.as_ref() }.copied());
    let mut pfds = Vec::new();
    for fd in 0..n {
        let mut events = 0;
        for (set, ev) in sets
            .iter()
            .zip([libc::POLLIN, libc::POLLOUT, libc::POLLPRI])
        {
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
    if !super::pipes::all_pollable(pfds.iter().map(|p| p.fd)) {
        return passthrough();
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let result = loop {
        // The caller's sets again, for a zero-timeout look.
        for (ptr, set) in [r, w, e].into_iter().zip(&sets) {
            if let Some(set) = set {
                // SAFETY: `ptr` is the non-null set `set` was copied from.
                unsafe { ptr.write(*set) };
            }
        }
        let mut zero = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: the caller's sets; a zero timeout never blocks.
        let ready = unsafe { real::select(n, r, w, e, &mut zero) };
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if ready != 0 || left.is_some_and(|l| l.is_zero()) {
            break ready;
        }
        if let Err(err) = select_coop(&pfds, left) {
            set_errno(err);
            break -1;
        }
    };
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
