//! The acceptor side of [`StreamServer`](super::StreamServer): making its
//! listening sockets (an `SO_REUSEPORT` group, or one socket shared), the
//! loop each acceptor greenlet runs, and the [`Gate`] that pauses them.
//!
//! # `SO_REUSEPORT` groups
//!
//! Listening sockets that share one address (`SO_REUSEPORT`), one per hub:
//! the kernel spreads incoming connections over them by a hash of the
//! connection's addresses, so each hub accepts from its own queue.
//!
//! std cannot set a socket option between `socket` and `bind`, so these are
//! made with libc: `socket`, `SO_REUSEADDR` and `SO_REUSEPORT`, `bind`,
//! `listen` (as deep as `net.core.somaxconn` allows, like
//! `TcpListener::bind`).
//!
//! The kernel lets only sockets of the same effective user join a group,
//! and any such socket (another process of the same user) may join it and
//! take a share of the connections. So that a second server started on a
//! port already served does not silently join the first one's group, a
//! group on a given port is bound only after a probe socket *without*
//! `SO_REUSEPORT` could bind the address: `AddrInUse` if anyone listens
//! there, as std's `bind` would say.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use super::common::{Core, Errors};
use crate::net::tcp_listener::{Accept, Accepted};
use crate::net::{TcpListener, TcpStream};
use crate::sync::Event;

/// `n` listeners for the first of `addrs` that binds, and whether each is
/// its own socket (an `SO_REUSEPORT` group) rather than one shared.
pub(super) fn bind(addrs: &[SocketAddr], n: usize) -> io::Result<(Vec<Arc<TcpListener>>, bool)> {
    let mut last = None;
    for &addr in addrs {
        if n > 1 {
            match bind_group(addr, n) {
                Ok(group) => {
                    let own = group.into_iter().map(|l| Arc::new(l.into())).collect();
                    return Ok((own, true));
                }
                // Someone listens there already: do not join or share it.
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    last = Some(e);
                    continue;
                }
                Err(_) => {} // no SO_REUSEPORT: one shared socket below
            }
        }
        match TcpListener::bind(addr) {
            Ok(l) => return Ok((shared(l, n), false)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("addrs resolves to at least one address"))
}

/// One listener, shared by `n` acceptors.
pub(super) fn shared(listener: TcpListener, n: usize) -> Vec<Arc<TcpListener>> {
    let one = Arc::new(listener);
    (0..n).map(|_| one.clone()).collect()
}

/// Whether the acceptors of one server accept
/// ([`StreamServer::stop_accepting`](super::StreamServer::stop_accepting)).
///
/// `open` is the authority: every `accept(2)` of an acceptor runs under its
/// read lock after checking it (`TcpListener::accept_guarded`), and the
/// syscall never switches greenlets, so the lock is held for one syscall at
/// a time. Closing takes the write lock: once `close` returns, no accept is
/// in flight and none starts until `open`. Acceptors parked in `accept` are
/// then woken to find it closed; they wait on `opened` instead, without
/// holding a handler slot, while connections queue in the kernel.
pub(super) struct Gate {
    open: RwLock<bool>,
    /// Set while open: where closed acceptors wait.
    opened: Event,
    /// The listeners, to wake their acceptors. Weak: `stop` closes them by
    /// killing the acceptors, which own them.
    listeners: Vec<Weak<TcpListener>>,
}

impl Gate {
    /// An open gate for `listeners` (the same one may come several times).
    pub(super) fn new(listeners: &[Arc<TcpListener>]) -> Gate {
        let opened = Event::new();
        opened.set();
        let mut distinct: Vec<Weak<TcpListener>> = Vec::new();
        for l in listeners {
            if !distinct
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(l)))
            {
                distinct.push(Arc::downgrade(l));
            }
        }
        Gate {
            open: RwLock::new(true),
            opened,
            listeners: distinct,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        *self.open.read()
    }

    /// Stops accepting; returns once no accept is in flight.
    pub(super) fn close(&self) {
        // Cleared first, so that an acceptor that finds `open` false below
        // finds `opened` cleared too, and waits.
        self.opened.clear();
        *self.open.write() = false;
        for l in self.listeners.iter().filter_map(Weak::upgrade) {
            l.wake_acceptors();
        }
    }

    /// Accepts again.
    pub(super) fn open(&self) {
        *self.open.write() = true;
        self.opened.set();
    }

    /// Parks an acceptor while closed.
    fn wait_open(&self) {
        if !self.is_open() {
            self.opened.wait();
        }
    }

    /// Runs `accept(2)` if open (see the type's docs).
    fn admit(&self, sys: Accept<'_>) -> Option<Accepted> {
        let open = self.open.read();
        if *open { Some(sys()) } else { None }
    }
}

/// One acceptor: until killed by `stop` (or the runtime's shutdown).
pub(super) fn run<F>(
    core: &Core,
    gate: &Gate,
    index: usize,
    listener: &TcpListener,
    handler: &Arc<F>,
    pending_first: bool,
) where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let mut errors = Errors::new("accept");
    if pending_first {
        // The accept after the wait must not park with a slot held (the
        // client may have reset in between): it gives `WouldBlock` instead.
        let _ = listener.set_nonblocking(true);
    }
    loop {
        gate.wait_open();
        if pending_first {
            if let Err(e) = crate::io::wait_readable(listener.as_raw_fd(), None) {
                errors.record(core, &e, false);
                continue;
            }
        }
        let slot = core.reserve();
        match listener.accept_guarded(|sys| gate.admit(sys)) {
            Ok(Some((stream, peer))) => {
                errors.reset();
                core.took(index);
                let handler = handler.clone();
                core.spawn_handler(slot, move || handler(stream, peer));
            }
            // Closed: the connection stays queued; wait until reopened.
            Ok(None) => drop(slot),
            Err(e) if pending_first && e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                drop(slot);
                errors.record(core, &e, true);
            }
        }
    }
}

/// `n` listening sockets on `addr`, all in one `SO_REUSEPORT` group. With
/// port 0, the first socket picks the port and the others join it.
///
/// # Errors
///
/// Any syscall's error, e.g. `AddrInUse` when a socket outside the group
/// holds the address, or `ENOPROTOOPT` where `SO_REUSEPORT` is missing.
fn bind_group(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        // The probe: fails if any socket, in a group or not, holds `addr`.
        drop(socket_bound(addr, false)?);
    }
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut all = Vec::with_capacity(n);
    all.push(first);
    for _ in 1..n {
        all.push(bind_one(addr)?);
    }
    Ok(all)
}

/// One listening socket of a group on `addr`.
fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let fd = socket_bound(addr, true)?;
    // SAFETY: listen takes no pointers; the kernel caps the backlog at
    // `net.core.somaxconn`.
    if unsafe { libc::listen(fd.as_raw_fd(), i32::MAX) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(fd))
}

/// A non-blocking TCP socket with `SO_REUSEADDR` (and `SO_REUSEPORT` if
/// `reuse_port`), bound to `addr`.
fn socket_bound(addr: SocketAddr, reuse_port: bool) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(domain, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    set_flag(raw, libc::SO_REUSEADDR)?;
    if reuse_port {
        set_flag(raw, libc::SO_REUSEPORT)?;
    }
    let (storage, len) = to_sockaddr(&addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes for `domain`.
    if unsafe { libc::bind(raw, (&raw const storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sets a boolean `SOL_SOCKET` option.
fn set_flag(fd: RawFd, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a c_int, valid for reads of the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw const on).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in, and we own it exclusively here.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
