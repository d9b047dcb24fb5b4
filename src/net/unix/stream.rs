//! [`UnixStream`]: `std::os::unix::net::UnixStream`, cooperative.

use crate::net::common::{socket_basics, socket_timeouts, stream_read_write};
use std::io;
use std::net::Shutdown;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;

use crate::io::evented::Evented;
use crate::net::sys::fd_impls;

/// A connected Unix stream socket: `std::os::unix::net::UnixStream`'s API;
/// reads, writes and `connect` park only the calling greenlet. Read and write
/// timeouts give `WouldBlock` as std's do.
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::net::unix::{UnixListener, UnixStream};
///
/// greenhub::run(|| {
///     let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     let path = dir.join("stream.sock");
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path).unwrap();
///     let server = greenhub::spawn(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         s.write_all(b"hello").unwrap();
///     });
///     let mut c = UnixStream::connect(&path).unwrap();
///     let mut buf = String::new();
///     c.read_to_string(&mut buf).unwrap();
///     assert_eq!(buf, "hello");
///     server.join().unwrap();
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixStream {
    io: Evented<std_unix::UnixStream>,
}

fd_impls!(UnixStream, std_unix::UnixStream);

socket_basics!(
    UnixStream,
    std_unix::UnixStream,
    "let (s, _peer) = greenhub::net::unix::UnixStream::pair().unwrap();"
);
socket_timeouts!(
    UnixStream,
    "let (s, _peer) = greenhub::net::unix::UnixStream::pair().unwrap();"
);
stream_read_write!(UnixStream);

impl UnixStream {
    pub(crate) fn from_evented(io: Evented<std_unix::UnixStream>) -> UnixStream {
        UnixStream { io }
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// As std's (`NotFound`, `ConnectionRefused`, ...).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let err = greenhub::net::unix::UnixStream::connect("/nonexistent/sock").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # });
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let s = super::retry_full_backlog(|| mio::net::UnixStream::connect(path))?;
        // SAFETY: `into_raw_fd` hands over the open socket we own.
        let std = unsafe { std_unix::UnixStream::from_raw_fd(s.into_raw_fd()) };
        Ok(UnixStream::from_evented(Evented::new(std)))
    }

    /// A connected pair of sockets.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// # drop((a, b));
    /// # });
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from(a), UnixStream::from(b)))
    }

    /// The local address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// # });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down a half or both; greenlets blocked on the socket wake.
    ///
    /// ```
    /// # use std::io::Read;
    /// # greenhub::run(|| {
    /// let (a, mut b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
    /// # });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}
