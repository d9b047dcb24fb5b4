//! The socket hooks: `#[no_mangle]` definitions of glibc's `socket`,
//! `accept`, `accept4`, `connect` and the read and write families. Linked
//! into the executable, they take precedence over glibc's for every call
//! from the executable's own code (std, Rust crates, statically linked C).
//!
//! Each looks the fd up in the table (`fdtable.rs`) first: an fd the hooks
//! did not create goes straight to the real function, unchanged. A tracked
//! fd that the program sees as blocking runs the emulation of `emul.rs`.

use std::ffi::c_void;

use libc::{c_int, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::emul::{self, blocking, errno, set_errno};
use super::fdtable::{self, Desc};
use super::foreign::{self, Kind};
use super::pipes;
use super::real;
use crate::hub::readiness::Direction::{Read, Write};

/// A symbol only this module defines, for checking that a build without the
/// feature has no hooks (`nm`, see `.ci/run`).
#[unsafe(no_mangle)]
#[used]
pub static greenhub_patch_hooks: u8 = 1;

/// Whether a socket or connection created now is to be tracked: patching is
/// enabled and the caller is a greenlet.
#[inline]
fn manage_new() -> bool {
    super::enabled() && emul::on_greenlet()
}

/// # Safety
/// As `socket(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let family = matches!(domain, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX);
    if !family || !manage_new() {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::socket(domain, ty, protocol) };
    }
    // SAFETY: as above, with the real socket non-blocking.
    let fd = unsafe { real::socket(domain, ty | libc::SOCK_NONBLOCK, protocol) };
    if fd >= 0 {
        fdtable::insert(fd, Desc::new(ty & libc::SOCK_NONBLOCK != 0));
    }
    fd
}

/// # Safety
/// As `accept(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if fdtable::get(fd).is_none() && !manage_new() {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::accept(fd, addr, len) };
    }
    // SAFETY: as `accept4` with no flags is `accept`.
    unsafe { accept4(fd, addr, len, 0) }
}

/// # Safety
/// As `accept4(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if foreign::is_socket(fd) {
        // A blocking listener made elsewhere: wait for a connection first.
        if let Err(e) = foreign::before_accept(fd) {
            set_errno(e);
            return -1;
        }
    }
    let track = manage_new();
    let real_flags = if track {
        flags | libc::SOCK_NONBLOCK
    } else {
        flags
    };
    let new = blocking(fd, Read, false, || {
        // SAFETY: the caller's arguments; on EAGAIN the kernel wrote nothing.
        unsafe { real::accept4(fd, addr, len, real_flags) as isize }
    }) as c_int;
    if new >= 0 && track {
        fdtable::insert(new, Desc::new(flags & libc::SOCK_NONBLOCK != 0));
    }
    new
}

/// # Safety
/// As `connect(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let entry = match fdtable::get(fd) {
        Some(e) if !e.desc.nonblocking() => e,
        // SAFETY: the caller's arguments, as given.
        None if foreign::is_socket(fd) => return unsafe { foreign::connect(fd, addr, len) },
        // SAFETY: the caller's arguments, as given.
        _ => return unsafe { real::connect(fd, addr, len) },
    };
    let mut seq = entry.reg.seq(Write);
    // SAFETY: the caller's arguments, as given.
    let r = unsafe { real::connect(fd, addr, len) };
    if r == 0 || errno() != libc::EINPROGRESS {
        return r;
    }
    // A blocking connect waits up to SO_SNDTIMEO, then fails with
    // EINPROGRESS (the attempt goes on).
    let deadline = entry
        .desc
        .timeout(Write)
        .and_then(|t| std::time::Instant::now().checked_add(t));
    loop {
        if let Err(e) = emul::wait_fd(&entry, fd, Write, seq, deadline, libc::EINPROGRESS) {
            set_errno(e);
            return -1;
        }
        seq = entry.reg.seq(Write);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        if unsafe { real::poll(&mut pfd, 1, 0) } > 0 {
            break;
        }
    }
    let mut err: c_int = 0;
    let mut n = size_of::<c_int>() as socklen_t;
    // SAFETY: SO_ERROR writes one int into `err`, whose size `n` says.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut n,
        )
    };
    if r < 0 {
        return -1;
    }
    if err != 0 {
        set_errno(err);
        return -1;
    }
    0
}

/// # Safety
/// As `read(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    super::probe();
    match foreign::kind(fd) {
        // SAFETY: the caller's arguments, as given.
        Some(Kind::Pollable) => return unsafe { pipes::read(fd, buf, n) },
        Some(Kind::Socket) => {
            return foreign::socket_io(fd, Read, || {
                // SAFETY: the caller's arguments; `recv` with no flags is
                // `read` on a socket.
                unsafe { real::recv(fd, buf, n, libc::MSG_DONTWAIT) }
            });
        }
        None => {}
    }
    blocking(fd, Read, false, || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::read(fd, buf, n) }
    })
}

/// # Safety
/// As `readv(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    match foreign::kind(fd) {
        // SAFETY: the caller's arguments, as given.
        Some(Kind::Pollable) => return unsafe { pipes::readv(fd, iov, n) },
        Some(Kind::Socket) if n >= 0 => {
            let mut msg = iov_msg(iov, n);
            return foreign::socket_io(fd, Read, || {
                // SAFETY: the caller's iovecs; `recvmsg` with no flags is
                // `readv` on a socket.
                unsafe { real::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) }
            });
        }
        _ => {}
    }
    blocking(fd, Read, false, || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::readv(fd, iov, n) }
    })
}

/// # Safety
/// As `recv(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Read, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::recv(fd, buf, n, flags | libc::MSG_DONTWAIT) }
        });
    }
    blocking(fd, Read, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::recv(fd, buf, n, flags) }
    })
}

/// # Safety
/// As `recvfrom(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Read, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::recvfrom(fd, buf, n, flags | libc::MSG_DONTWAIT, addr, len) }
        });
    }
    blocking(fd, Read, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::recvfrom(fd, buf, n, flags, addr, len) }
    })
}

/// # Safety
/// As `recvmsg(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Read, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT) }
        });
    }
    blocking(fd, Read, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::recvmsg(fd, msg, flags) }
    })
}

/// # Safety
/// As `write(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    match foreign::kind(fd) {
        // SAFETY: the caller's arguments, as given.
        Some(Kind::Pollable) => return unsafe { pipes::write(fd, buf, n) },
        Some(Kind::Socket) => {
            return foreign::socket_io(fd, Write, || {
                // SAFETY: the caller's arguments; `send` with no flags is
                // `write` on a socket.
                unsafe { real::send(fd, buf, n, libc::MSG_DONTWAIT) }
            });
        }
        None => {}
    }
    blocking(fd, Write, false, || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::write(fd, buf, n) }
    })
}

/// # Safety
/// As `writev(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    match foreign::kind(fd) {
        // SAFETY: the caller's arguments, as given.
        Some(Kind::Pollable) => return unsafe { pipes::writev(fd, iov, n) },
        Some(Kind::Socket) if n >= 0 => {
            let msg = iov_msg(iov, n);
            return foreign::socket_io(fd, Write, || {
                // SAFETY: the caller's iovecs; `sendmsg` with no flags is
                // `writev` on a socket.
                unsafe { real::sendmsg(fd, &msg, libc::MSG_DONTWAIT) }
            });
        }
        _ => {}
    }
    blocking(fd, Write, false, || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::writev(fd, iov, n) }
    })
}

/// # Safety
/// As `send(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Write, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::send(fd, buf, n, flags | libc::MSG_DONTWAIT) }
        });
    }
    blocking(fd, Write, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::send(fd, buf, n, flags) }
    })
}

/// # Safety
/// As `sendto(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Write, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::sendto(fd, buf, n, flags | libc::MSG_DONTWAIT, addr, len) }
        });
    }
    blocking(fd, Write, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::sendto(fd, buf, n, flags, addr, len) }
    })
}

/// # Safety
/// As `sendmsg(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if !dontwait(flags) && foreign::is_socket(fd) {
        return foreign::socket_io(fd, Write, || {
            // SAFETY: the caller's arguments, with MSG_DONTWAIT added.
            unsafe { real::sendmsg(fd, msg, flags | libc::MSG_DONTWAIT) }
        });
    }
    blocking(fd, Write, dontwait(flags), || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::sendmsg(fd, msg, flags) }
    })
}

fn dontwait(flags: c_int) -> bool {
    flags & libc::MSG_DONTWAIT != 0
}

/// A `msghdr` carrying only the caller's `n` iovecs at `iov`, for `readv`
/// and `writev` as `recvmsg` and `sendmsg`.
fn iov_msg(iov: *const iovec, n: c_int) -> msghdr {
    // SAFETY: an all-zero msghdr (no name, no control data) is valid.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = n as _;
    msg
}
