//! [`UnixStream`]: `std::os::unix::net::UnixStream`, cooperative.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::time::Duration;

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

    /// A new handle to the same socket (a `dup`).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// # drop(a2);
    /// # });
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let s = self.io.get_ref().try_clone()?;
        let clone = UnixStream::from_evented(Evented::new(s));
        clone.io.timeouts().copy_from(self.io.timeouts());
        Ok(clone)
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

    /// Makes reads that wait longer than `dur` fail with `WouldBlock`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use std::time::Duration;
    /// # greenhub::run(|| {
    /// let (mut a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// assert_eq!(a.read(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # });
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.timeouts().set_read(dur)
    }

    /// Makes writes that wait longer than `dur` fail with `WouldBlock`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// a.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// # });
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.timeouts().set_write(dur)
    }

    /// The read timeout.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// # });
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeouts().read())
    }

    /// The write timeout.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// # });
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeouts().write())
    }

    /// With `true`, calls that would block return `WouldBlock` at once.
    ///
    /// ```
    /// # use std::io::Read;
    /// # greenhub::run(|| {
    /// let (mut a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// assert!(a.read(&mut [0; 4]).is_err());
    /// # });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.timeouts().set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// # });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
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

    /// Gives back the std socket, still in non-blocking mode.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
    /// let std = a.into_std();
    /// std.set_nonblocking(false).unwrap();
    /// # });
    /// ```
    pub fn into_std(self) -> std_unix::UnixStream {
        self.io.into_inner()
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io.read_with(|mut s| s.read_vectored(bufs))
    }
}

impl Write for UnixStream {
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

impl Write for &UnixStream {
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
