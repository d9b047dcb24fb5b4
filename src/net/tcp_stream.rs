//! [`TcpStream`]: std's `TcpStream`, with every blocking call parking only
//! the calling greenlet.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use super::addr::{ToSocketAddrs, each_addr};
use super::sys::fd_impls;
use crate::io::evented::Evented;
use crate::io::registration::Ready;
use crate::io::scheduled::Direction;

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

    /// A new handle to the same socket (a `dup`), usable from another
    /// greenlet (on any hub) or thread.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s2 = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), s2.local_addr().unwrap());
    /// # });
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let s = self.io.get_ref().try_clone()?;
        let clone = TcpStream::from_evented(Evented::new(s));
        clone.io.timeouts().copy_from(self.io.timeouts());
        Ok(clone)
    }

    /// Makes reads that wait longer than `dur` fail with `WouldBlock`, as
    /// std's `SO_RCVTIMEO` does; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, like std.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use std::time::Duration;
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    /// let err = s.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # });
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.timeouts().set_read(dur)
    }

    /// As [`set_read_timeout`](Self::set_read_timeout), for writes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// # });
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.timeouts().set_write(dur)
    }

    /// The read timeout.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// # });
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeouts().read())
    }

    /// The write timeout.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// # });
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeouts().write())
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

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// # });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// With `true`, calls that would block return `WouldBlock` at once
    /// instead of waiting (the socket itself is always non-blocking).
    ///
    /// ```
    /// # use std::io::Read;
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!(s.read(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.timeouts().set_nonblocking(nonblocking);
        Ok(())
    }

    /// Gives back the std socket, still in non-blocking mode.
    ///
    /// ```
    /// # use greenhub::net::{TcpListener, TcpStream};
    /// # greenhub::run(|| {
    /// # let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let std: std::net::TcpStream = s.into_std();
    /// std.set_nonblocking(false).unwrap();
    /// # });
    /// ```
    pub fn into_std(self) -> std::net::TcpStream {
        self.io.into_inner()
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io.read_with(|mut s| s.read_vectored(bufs))
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|mut s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.write_with(|mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
