//! The real libc functions behind the hooks, found with
//! `dlsym(RTLD_NEXT, name)`: the next definition after the executable's own
//! (ours), that is glibc's.
//!
//! Every pointer is resolved before `main` by an `.init_array` constructor
//! (single-threaded, no signal handlers yet, so `dlsym`'s allocations are
//! harmless) and cached in an atomic; a hook that runs before the
//! constructor (another constructor calling `read`) resolves its own pointer
//! on first use. [`resolve_all`] is also called by `enable()`, which reports
//! a failure (a static build, where `dlsym` finds nothing) as an error.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libc::{addrinfo, c_char, id_t, idtype_t, pid_t, rusage, siginfo_t};
use libc::{
    c_int, c_long, c_uint, c_ulong, iovec, msghdr, nfds_t, pollfd, sockaddr, socklen_t, ssize_t,
};
use libc::{clockid_t, fd_set, sigset_t, size_t, timespec, timeval, useconds_t};

/// Loads the real function cached in `slot`, resolving it on first use.
/// `name` ends with a NUL. Aborts (with a message on stderr) if glibc has no
/// such function: a hook cannot do anything sensible without it.
#[inline]
fn load(slot: &AtomicUsize, name: &'static str) -> usize {
    let f = slot.load(Relaxed);
    if f != 0 {
        return f;
    }
    match resolve(slot, name) {
        Some(f) => f,
        None => missing(name),
    }
}

#[cold]
fn resolve(slot: &AtomicUsize, name: &'static str) -> Option<usize> {
    debug_assert!(name.ends_with('\0'));
    // SAFETY: `name` is a NUL-terminated string that outlives the call;
    // RTLD_NEXT is a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    if f == 0 {
        return None;
    }
    slot.store(f, Relaxed);
    Some(f)
}

#[cold]
fn missing(name: &'static str) -> ! {
    if name == "syscall\0" {
        // The message below would be written through `syscall` itself.
        std::process::abort()
    }
    let msg = format!(
        "greenhub patch: dlsym(RTLD_NEXT, \"{}\") found no libc function; \
         the `patch` feature needs a dynamically linked glibc executable\n",
        name.trim_end_matches('\0')
    );
    // SAFETY: a raw write(2) of a valid buffer (not through the hooked
    // `write`), then abort.
    unsafe {
        libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
        libc::abort()
    }
}

macro_rules! real_fns {
    ($(fn $name:ident($($arg:ident: $t:ty),*) -> $ret:ty;)*) => {
        /// One cache slot per real function.
        #[allow(non_upper_case_globals)]
        mod slots {
            use std::sync::atomic::AtomicUsize;
            $(pub(super) static $name: AtomicUsize = AtomicUsize::new(0);)*
        }

        $(
            /// Calls glibc's own function of this name.
            ///
            /// # Safety
            ///
            /// As for the libc function.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $t),*) -> $ret {
                let f = load(&slots::$name, concat!(stringify!($name), "\0"));
                // SAFETY: `f` is glibc's function of this name, whose C
                // signature is the one written here.
                let f: unsafe extern "C" fn($($t),*) -> $ret = unsafe { std::mem::transmute(f) };
                // SAFETY: the caller upholds the function's contract.
                unsafe { f($($arg),*) }
            }
        )*

        /// Resolves the functions listed here. Returns the name of one that
        /// cannot be found.
        fn resolve_listed() -> Result<(), &'static str> {
            $(
                let name = concat!(stringify!($name), "\0");
                if slots::$name.load(Relaxed) == 0 && resolve(&slots::$name, name).is_none() {
                    return Err(name.trim_end_matches('\0'));
                }
            )*
            Ok(())
        }
    };
}

real_fns! {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
    fn wait4(pid: pid_t, status: *mut c_int, options: c_int, usage: *mut rusage) -> pid_t;
    fn waitid(idtype: idtype_t, id: id_t, infop: *mut siginfo_t, options: c_int) -> c_int;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int;
    fn getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int;
    fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int;
    fn ppoll(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int;
    fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *const timespec, mask: *const sigset_t) -> c_int;
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    fn usleep(usec: useconds_t) -> c_int;
    fn sleep(secs: c_uint) -> c_uint;
    fn close(fd: c_int) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(fd: c_int, to: c_int) -> c_int;
    fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
}

static FCNTL: AtomicUsize = AtomicUsize::new(0);
static SYSCALL: AtomicUsize = AtomicUsize::new(0);

/// glibc's variadic `long syscall(long number, ...)` with six arguments
/// after the number, as many as any Linux system call takes.
///
/// # Safety
///
/// As for the system call `n` with those arguments (the ones it does not
/// use are ignored by the kernel).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn syscall6(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let f = load(&SYSCALL, "syscall\0");
    // SAFETY: `f` is glibc's `long syscall(long, ...)`.
    let f: unsafe extern "C" fn(c_long, ...) -> c_long = unsafe { std::mem::transmute(f) };
    // SAFETY: a variadic call with seven `long`s: on x86-64 SysV the first
    // six travel in rdi, rsi, rdx, rcx, r8, r9 and the seventh on the stack,
    // exactly where glibc's `syscall` reads its number and six arguments
    // (it always reads all six and moves them into the kernel's registers);
    // the caller upholds the system call's own contract.
    unsafe { f(n, a1, a2, a3, a4, a5, a6) }
}
static IOCTL: AtomicUsize = AtomicUsize::new(0);

/// glibc's variadic `fcntl`, with its one optional argument (an int or a
/// pointer, passed in the same register either way).
///
/// # Safety
///
/// As for `fcntl(2)` with `cmd`.
pub(crate) unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let f = load(&FCNTL, "fcntl\0");
    // SAFETY: `f` is glibc's `int fcntl(int, int, ...)`.
    let f: unsafe extern "C" fn(c_int, c_int, ...) -> c_int = unsafe { std::mem::transmute(f) };
    // SAFETY: the caller upholds fcntl's contract for `cmd`.
    unsafe { f(fd, cmd, arg) }
}

/// glibc's variadic `ioctl`, with its one argument.
///
/// # Safety
///
/// As for `ioctl(2)` with `request`.
pub(crate) unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let f = load(&IOCTL, "ioctl\0");
    // SAFETY: `f` is glibc's `int ioctl(int, unsigned long, ...)`.
    let f: unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int = unsafe { std::mem::transmute(f) };
    // SAFETY: the caller upholds ioctl's contract for `request`.
    unsafe { f(fd, request, arg) }
}

/// Resolves every real function now. Returns the name of one that cannot be
/// found.
pub(crate) fn resolve_all() -> Result<(), &'static str> {
    resolve_listed()?;
    for (slot, name) in [
        (&FCNTL, "fcntl\0"),
        (&IOCTL, "ioctl\0"),
        (&SYSCALL, "syscall\0"),
    ] {
        if slot.load(Relaxed) == 0 && resolve(slot, name).is_none() {
            return Err(name.trim_end_matches('\0'));
        }
    }
    Ok(())
}

/// Resolves everything before `main` (see the module docs).
extern "C" fn init() {
    let _ = resolve_all();
}

#[used]
// SAFETY: `.init_array` holds pointers to `extern "C" fn()` constructors,
// which `init` is; it only caches `dlsym` results.
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;
