//! [`UnixListener`]: `std::os::unix::net::UnixListener`, cooperative.

use crate::net::common::socket_basics;
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

socket_basics!(
    UnixListener,
    std_unix::UnixListener,
    "use std::os::linux::net::SocketAddrExt;\nlet name = format!(\"gh-doc-{}-{:?}\", std::process::id(), std::thread::current().id());\nlet addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();\nlet s = greenhub::net::unix::UnixListener::from(std::os::unix::net::UnixListener::bind_addr(&addr).unwrap());"
);

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
