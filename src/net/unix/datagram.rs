//! [`UnixDatagram`]: `std::os::unix::net::UnixDatagram`, cooperative.

use crate::net::common::{socket_basics, socket_timeouts};
use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;

use crate::io::evented::Evented;
use crate::net::sys::fd_impls;

/// A Unix datagram socket: sends and receives park only the calling
/// greenlet; read and write timeouts give `WouldBlock` as std's do.
///
/// ```
/// use greenhub::net::unix::UnixDatagram;
///
/// greenhub::run(|| {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     let rx = greenhub::spawn(move || {
///         let mut buf = [0; 8];
///         let n = b.recv(&mut buf).unwrap(); // parks until the send
///         buf[..n].to_vec()
///     });
///     a.send(b"dgram").unwrap();
///     assert_eq!(rx.join().unwrap(), b"dgram");
/// });
/// ```
pub struct UnixDatagram {
    io: Evented<std_unix::UnixDatagram>,
}

fd_impls!(UnixDatagram, std_unix::UnixDatagram);

socket_basics!(
    UnixDatagram,
    std_unix::UnixDatagram,
    "let (s, _peer) = greenhub::net::unix::UnixDatagram::pair().unwrap();"
);
socket_timeouts!(
    UnixDatagram,
    "let (s, _peer) = greenhub::net::unix::UnixDatagram::pair().unwrap();"
);

impl UnixDatagram {
    fn from_evented(io: Evented<std_unix::UnixDatagram>) -> UnixDatagram {
        UnixDatagram { io }
    }

    fn wrap(s: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        s.set_nonblocking(true)?;
        Ok(UnixDatagram::from_evented(Evented::new(s)))
    }

    /// A socket bound to `path`.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let path = std::env::temp_dir().join(format!("gh-d-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let s = greenhub::net::unix::UnixDatagram::bind(&path).unwrap();
    /// assert_eq!(s.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std_unix::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::net::unix::UnixDatagram::unbound().unwrap();
    /// assert!(s.local_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std_unix::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// # drop((a, b));
    /// # });
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std_unix::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Sets the default peer for `send` and `recv`.
    ///
    /// ```
    /// # use greenhub::net::unix::UnixDatagram;
    /// # greenhub::run(|| {
    /// let path = std::env::temp_dir().join(format!("gh-dc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path).unwrap();
    /// let client = UnixDatagram::unbound().unwrap();
    /// client.connect(&path).unwrap();
    /// client.send(b"x").unwrap();
    /// assert_eq!(server.recv(&mut [0; 4]).unwrap(), 1);
    /// std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sends to the connected peer.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.send(b"abc").unwrap(), 3);
    /// # });
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"abc").unwrap();
    /// assert_eq!(b.recv(&mut [0; 8]).unwrap(), 3);
    /// # });
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf))
    }

    /// Sends to the socket at `path`.
    ///
    /// ```
    /// # use greenhub::net::unix::UnixDatagram;
    /// # greenhub::run(|| {
    /// let path = std::env::temp_dir().join(format!("gh-st-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path).unwrap();
    /// UnixDatagram::unbound().unwrap().send_to(b"hi", &path).unwrap();
    /// let (n, _from) = server.recv_from(&mut [0; 4]).unwrap();
    /// assert_eq!(n, 2);
    /// std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write_with(|s| s.send_to(buf, path))
    }

    /// Receives a datagram and its sender's address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// a.send(b"abc").unwrap();
    /// let (n, from) = b.recv_from(&mut [0; 8]).unwrap();
    /// assert_eq!(n, 3);
    /// assert!(from.is_unnamed());
    /// # });
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf))
    }

    /// The local address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down a half or both. (Linux does not end a receive on a
    /// datagram socket whose read half was shut down: it keeps waiting; use a
    /// read timeout or kill the greenlet.)
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixDatagram::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert!(a.send(b"x").is_err()); // EPIPE
    /// # });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}
