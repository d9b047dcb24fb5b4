//! The few socket calls std does not offer in non-blocking form (`accept4`
//! with `SOCK_NONBLOCK`), converting `sockaddr`s, and the fd trait impls every
//! socket type shares.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the new socket is ready for
/// an `Evented` without another syscall.
pub(crate) fn accept_inet(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and `len` holds the
    // buffer's size, as accept4 requires.
    let new = unsafe {
        libc::accept4(
            fd,
            (&raw mut storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd that we own.
    let owned = unsafe { OwnedFd::from_raw_fd(new) };
    Ok((owned, to_socket_addr(&storage)?))
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "accepted a socket of an unexpected address family",
        )),
    }
}

/// Deepens the backlog of a listening socket to the system's maximum
/// (`listen` again on a listening socket only changes its backlog; the kernel
/// caps the value at `net.core.somaxconn`).
pub(crate) fn listen_deep(fd: RawFd) -> io::Result<()> {
    // SAFETY: listen takes no pointers; the result is checked.
    if unsafe { libc::listen(fd, i32::MAX) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an `accept` error means the process or system is out of a
/// resource (fds, buffers, memory): retrying at once would fail again.
pub(crate) fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// `AsRawFd`, `AsFd`, `IntoRawFd`, `FromRawFd`, `From<OwnedFd>`-free
/// conversions and `From<std type>` for a greenhub socket type that is
/// `struct T { io: Evented<Std> }` plus fields with `Default`.
macro_rules! fd_impls {
    ($t:ident, $std:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.io.get_ref())
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// Gives up the fd, still in non-blocking mode.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.into_std())
            }
        }

        impl std::os::fd::FromRawFd for $t {
            /// Takes ownership of `fd` and puts it in non-blocking mode.
            ///
            /// # Safety
            ///
            /// As for the std type: `fd` is an open socket of the right
            /// kind that the caller owns.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller's promise, passed on.
                let s = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                <$t>::from(s)
            }
        }

        impl From<$std> for $t {
            /// Wraps a std socket, putting it in non-blocking mode.
            fn from(s: $std) -> $t {
                let _ = crate::io::sys::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&s), true);
                <$t>::from_evented(crate::io::evented::Evented::new(s))
            }
        }

        impl From<$t> for std::os::fd::OwnedFd {
            fn from(s: $t) -> std::os::fd::OwnedFd {
                std::os::fd::OwnedFd::from(s.into_std())
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.io.get_ref(), f)
            }
        }
    };
}

pub(crate) use fd_impls;
