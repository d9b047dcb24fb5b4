//! [`TcpStream`]: std's `TcpStream`, with every blocking call parking only
//! the calling greenlet.

use super::common::{socket_basics, socket_timeouts, stream_read_write};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use super::addr::{ToSocketAddrs, each_addr};
use super::sys::fd_impls;
use crate::hub::readiness::Direction;
use crate::io::evented::Evented;
use crate::io::registration::Ready;

/// A TCP connection: [`std::net::TcpStream`]'s API, cooperative.
///
/// On a greenlet, `connect`, reads and writes that would block park the
/// greenlet until the socket is ready (the hub's poller watches it), so one
/// hub serves thousands of connections. Off a greenlet they block the thread
/// like std's. Read and write timeouts give std's errors (`WouldBlock`),
/// `connect_timeout` gives `TimedOut`, and a kill or a
/// [`timeout`](crate::timeout) frame interrupts any of them.
///
/// Reading and writing through `&TcpStream` (or [`try_clone`](Self::try_clone)d
/// halves) from two greenlets at once works: one reads while the other
/// writes. [`shutdown`](Self::shutdown) from one wakes the other: a blocked
/// read returns `Ok(0)`, a blocked write an error.
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::net::{TcpListener, TcpStream};
///
/// greenhub::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = greenhub::spawn(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap(); // echo
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut back = [0; 5];
///     client.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpStream {
    io: Evented<std::net::TcpStream>,
}

fd_impls!(TcpStream, std::net::TcpStream);

socket_basics!(
    TcpStream,
    std::net::TcpStream,
    "let l = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\nlet s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();"
);
socket_timeouts!(
    TcpStream,
    "let l = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\nlet s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();"
);
stream_read_write!(TcpStream);

fn connect_timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

impl TcpStream {
    pub(crate) fn from_evented(io: Evented<std::net::TcpStream>) -> TcpStream {
        TcpStream { io }
    }

    /// Opens a connection to `addr`, trying each address it resolves to in
    /// turn (host names are resolved on the blocking pool).
    ///
    /// # Errors
    ///
    /// The last address's error (e.g. `ConnectionRefused`), or
    /// `InvalidInput` if `addr` names no address.
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// greenhub::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    ///     let port = l.local_addr().unwrap().port();
    ///     assert!(TcpStream::connect(("localhost", port)).is_ok());
    /// });
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout` with
    /// `ErrorKind::TimedOut`, like std's.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero `timeout`, `TimedOut`, or the connect error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// greenhub::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_secs(1));
    ///     assert!(s.is_ok());
    ///     let zero = TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::ZERO);
    ///     assert_eq!(zero.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(addr, Instant::now().checked_add(timeout))
    }

    fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        // mio's connect makes a non-blocking socket and starts connecting.
        let started = mio::net::TcpStream::connect(*addr)?;
        // SAFETY: `into_raw_fd` hands over the open socket we own.
        let std = unsafe { std::net::TcpStream::from_raw_fd(started.into_raw_fd()) };
        let stream = TcpStream::from_evented(Evented::new(std));
        loop {
            let seq = stream.io.seq(Direction::Write);
            if let Some(e) = stream.io.get_ref().take_error()? {
                return Err(e);
            }
            match stream.io.get_ref().peer_addr() {
                Ok(_) => return Ok(stream),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
            if stream.io.wait(Direction::Write, seq, deadline)? == Ready::TimedOut {
                return Err(connect_timed_out());
            }
        }
    }

    /// The remote address.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both. Greenlets blocked
    /// on this socket (through `&TcpStream` or a clone) wake: reads return
    /// `Ok(0)`, writes an error.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.shutdown(std::net::Shutdown::Read).unwrap();
    /// assert_eq!(s.read(&mut [0; 8]).unwrap(), 0);
    /// # });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// ```
    /// # use std::io::{Read, Write};
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// c.write_all(b"hi").unwrap();
    /// let mut buf = [0; 2];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 2);
    /// s.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"hi");
    /// # });
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// # });
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// # });
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(42).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 42);
    /// # });
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL`.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.ttl().unwrap() > 0);
    /// # });
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}
