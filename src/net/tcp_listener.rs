//! [`TcpListener`]: std's `TcpListener`, with `accept` parking only the
//! calling greenlet, and a back-off when the process runs out of fds.

use super::common::socket_basics;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::addr::{ToSocketAddrs, each_addr};
use super::sys::{self, fd_impls};
use super::tcp_stream::TcpStream;
use crate::io::evented::Evented;
use crate::loom::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The first and the largest pause after an accept error that means "out of
/// fds or memory" (Go's net/http uses the same 5 ms doubling to 1 s).
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A TCP listening socket: [`std::net::TcpListener`]'s API, cooperative.
///
/// [`accept`](Self::accept) parks the calling greenlet until a connection
/// arrives (off a greenlet it blocks the thread). Several greenlets, on any
/// hubs, may accept on one listener (share it in an `Arc`): each connection
/// goes to one of them.
///
/// When `accept` fails because the process or the system is out of a
/// resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the error is returned
/// as std does, and the *next* `accept` on this listener first sleeps (5 ms,
/// doubling up to 1 s while the errors go on), so an accept loop that logs
/// and retries does not spin; it recovers by itself once fds are freed.
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::net::{TcpListener, TcpStream};
///
/// greenhub::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = greenhub::spawn(move || {
///         for conn in listener.incoming().take(3) {
///             let mut conn = conn.unwrap();
///             greenhub::spawn(move || {
///                 let mut buf = [0; 1];
///                 conn.read_exact(&mut buf).unwrap();
///                 conn.write_all(&[buf[0] + 1]).unwrap();
///             });
///         }
///     });
///     for i in 0..3u8 {
///         let mut c = TcpStream::connect(addr).unwrap();
///         c.write_all(&[i]).unwrap();
///         let mut b = [0; 1];
///         c.read_exact(&mut b).unwrap();
///         assert_eq!(b[0], i + 1);
///     }
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    io: Evented<std::net::TcpListener>,
    /// Set while a back-off is in force, so that an accept with no recent
    /// resource error touches no lock.
    backing_off: AtomicBool,
    backoff: Mutex<Backoff>,
}

/// The `accept(2)` call that [`TcpListener::accept_guarded`]'s guard runs.
pub(crate) type Accept<'a> = &'a mut dyn FnMut() -> Accepted;
/// What it returns: the new connection's fd and the peer's address.
pub(crate) type Accepted = io::Result<(std::os::fd::OwnedFd, SocketAddr)>;

#[derive(Default)]
struct Backoff {
    /// The pause after the last resource error (zero: none pending).
    delay: Duration,
    /// Do not try `accept` before this.
    until: Option<Instant>,
}

fd_impls!(TcpListener, std::net::TcpListener);

socket_basics!(
    TcpListener,
    std::net::TcpListener,
    "let s = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();"
);

impl TcpListener {
    fn from_evented(io: Evented<std::net::TcpListener>) -> TcpListener {
        TcpListener {
            io,
            backing_off: AtomicBool::new(false),
            backoff: Mutex::new(Backoff::default()),
        }
    }

    /// Binds to `addr` (the first of its addresses that works), with
    /// `SO_REUSEADDR` as std sets it, and a listen backlog as deep as the
    /// system allows (`net.core.somaxconn`; std uses 128), since a greenlet
    /// server takes thousands of connections at once.
    ///
    /// # Errors
    ///
    /// The bind error (e.g. `AddrInUse`), or `InvalidInput` if `addr` names
    /// no address.
    ///
    /// ```
    /// use greenhub::net::TcpListener;
    ///
    /// greenhub::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let taken = l.local_addr().unwrap();
    ///     assert_eq!(TcpListener::bind(taken).unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// });
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let l = std::net::TcpListener::bind(a)?;
            l.set_nonblocking(true)?;
            sys::listen_deep(std::os::fd::AsRawFd::as_raw_fd(&l))?;
            Ok(TcpListener::from_evented(Evented::new(l)))
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    ///
    /// As std's `accept`; see the type's docs for the back-off after
    /// resource errors.
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// greenhub::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (s, peer) = l.accept().unwrap();
    ///     assert_eq!(peer, c.local_addr().unwrap());
    ///     assert_eq!(s.peer_addr().unwrap(), peer);
    /// });
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let accepted = self.accept_guarded(|sys| Some(sys()))?;
        Ok(accepted.expect("greenhub: an unguarded accept gave up"))
    }

    /// [`accept`](Self::accept) whose every `accept(2)` runs inside `guard`:
    /// `guard(sys)` either calls `sys` and returns its result, or returns
    /// `None`, and then this returns `Ok(None)` without accepting. A
    /// greenlet parked here waiting for a connection re-asks `guard` when
    /// woken by [`wake_acceptors`](Self::wake_acceptors).
    ///
    /// The server's pause: `guard` holds a lock across the syscall (which
    /// never switches greenlets), so once the pausing side has taken that
    /// lock and changed its answer, no accept is in flight.
    pub(crate) fn accept_guarded(
        &self,
        mut guard: impl FnMut(Accept<'_>) -> Option<Accepted>,
    ) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        let backing_off = self.backing_off.load(Relaxed);
        if backing_off {
            self.pause_after_errors();
        }
        let fd = self.io.fd();
        let mut refused = false;
        let r = self.io.read_with(|_| {
            guard(&mut || sys::accept_inet(fd)).unwrap_or_else(|| {
                refused = true;
                Err(io::Error::other("accept refused by its guard"))
            })
        });
        if refused {
            return Ok(None);
        }
        match r {
            Ok((owned, peer)) => {
                if backing_off {
                    *self.backoff.lock() = Backoff::default();
                    self.backing_off.store(false, Relaxed);
                }
                let std = std::net::TcpStream::from(owned);
                Ok(Some((TcpStream::from_evented(Evented::new(std)), peer)))
            }
            Err(e) => {
                if sys::is_resource_error(&e) {
                    let mut b = self.backoff.lock();
                    b.delay = (b.delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                    b.until = Instant::now().checked_add(b.delay);
                    self.backing_off.store(true, Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Wakes the greenlets parked in [`accept_guarded`](Self::accept_guarded)
    /// on this listener, so that they ask their guard again.
    pub(crate) fn wake_acceptors(&self) {
        self.io.wake_readers();
    }

    /// Sleeps out the back-off after a resource error, if one is pending.
    fn pause_after_errors(&self) {
        let until = self.backoff.lock().until.take();
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                crate::sleep(until - now);
            }
        }
    }

    /// An endless iterator over incoming connections (`accept` in a loop).
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// greenhub::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let first = l.incoming().next().unwrap();
    ///     assert!(first.is_ok());
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `IP_TTL` for accepted sockets.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(42).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 42);
    /// # });
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL`.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.ttl().unwrap() > 0);
    /// # });
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}

/// The iterator of [`TcpListener::incoming`]: never ends; errors are items.
///
/// ```
/// # greenhub::run(|| {
/// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let _it: greenhub::net::Incoming<'_> = l.incoming();
/// # });
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
