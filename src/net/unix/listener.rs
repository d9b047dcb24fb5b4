//! [`UnixListener`]: `std::os::unix::net::UnixListener`, cooperative.

use std::io;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;

use super::UnixStream;
use crate::io::evented::Evented;
use crate::net::sys::fd_impls;

/// A Unix listening socket: [`accept`](Self::accept) parks the calling
/// greenlet until a connection arrives.
///
/// ```
/// use greenhub::net::unix::{UnixListener, UnixStream};
///
/// greenhub::run(|| {
///     let path = std::env::temp_dir().join(format!("gh-l-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let l = UnixListener::bind(&path).unwrap();
///     let _c = UnixStream::connect(&path).unwrap();
///     let (_s, _addr) = l.accept().unwrap();
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixListener {
    io: Evented<std_unix::UnixListener>,
}

fd_impls!(UnixListener, std_unix::UnixListener);

impl UnixListener {
    fn from_evented(io: Evented<std_unix::UnixListener>) -> UnixListener {
        UnixListener { io }
    }

    /// Binds to `path` (which must not exist yet).
    ///
    /// # Errors
    ///
    /// As std's (`AddrInUse` if `path` exists, ...).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let path = std::env::temp_dir().join(format!("gh-b-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let l = std_unix::UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        Ok(UnixListener::from_evented(Evented::new(l)))
    }

    /// Waits for a connection.
    ///
    /// ```
    /// # use greenhub::net::unix::{UnixListener, UnixStream};
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-a-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path).unwrap();
    /// let c = greenhub::spawn({ let p = path.clone(); move || UnixStream::connect(p).unwrap() });
    /// let (s, _) = l.accept().unwrap(); // parks until the connect
    /// # drop((s, c.join()));
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.io.read_with(|l| l.accept())?;
        s.set_nonblocking(true)?;
        Ok((UnixStream::from_evented(Evented::new(s)), addr))
    }

    /// An endless iterator over incoming connections.
    ///
    /// ```
    /// # use greenhub::net::unix::{UnixListener, UnixStream};
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-i-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path).unwrap();
    /// let _c = UnixStream::connect(&path).unwrap();
    /// assert!(l.incoming().next().unwrap().is_ok());
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-la-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// assert!(l.local_addr().unwrap().as_pathname().is_some());
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// A new handle to the same socket (a `dup`).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-c-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// # drop(l2);
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let l = self.io.get_ref().try_clone()?;
        let clone = UnixListener::from_evented(Evented::new(l));
        clone.io.timeouts().copy_from(self.io.timeouts());
        Ok(clone)
    }

    /// Takes the pending socket error.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-e-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// With `true`, `accept` returns `WouldBlock` at once instead of waiting.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-n-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// l.set_nonblocking(true).unwrap();
    /// assert_eq!(l.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.timeouts().set_nonblocking(nonblocking);
        Ok(())
    }

    /// Gives back the std listener, still in non-blocking mode.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// # let path = std::env::temp_dir().join(format!("gh-s-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
    /// let std = l.into_std();
    /// # drop(std);
    /// # std::fs::remove_file(&path).unwrap();
    /// # });
    /// ```
    pub fn into_std(self) -> std_unix::UnixListener {
        self.io.into_inner()
    }
}

/// The iterator of [`UnixListener::incoming`]: never ends; errors are items.
///
/// ```
/// # greenhub::run(|| {
/// # let path = std::env::temp_dir().join(format!("gh-it-{}.sock", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let l = greenhub::net::unix::UnixListener::bind(&path).unwrap();
/// let _it: greenhub::net::unix::Incoming<'_> = l.incoming();
/// # std::fs::remove_file(&path).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
