//! The parent's ends of a child's standard streams: std's pipe handles in
//! non-blocking mode inside an [`Evented`], so that a read or write that
//! would block parks only the calling greenlet.
//!
//! Converting one back into a std-style handle (an `OwnedFd`, a raw fd or a
//! [`Stdio`] for another child) puts the fd back into blocking mode, since
//! the receiver expects an ordinary blocking pipe.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{self, Stdio};
use std::time::Duration;

use crate::io::evented::Evented;

/// The writing end of a child's stdin ([`Child::stdin`](super::Child::stdin)).
/// A write that finds the pipe full parks the calling greenlet until the
/// child reads. Dropping it closes the pipe, so the child sees end of file.
///
/// ```
/// use std::io::Write;
/// use greenhub::process::{Command, Stdio};
///
/// greenhub::run(|| {
///     let mut child = Command::new("cat")
///         .stdin(Stdio::piped())
///         .stdout(Stdio::null())
///         .spawn()
///         .unwrap();
///     let mut stdin = child.stdin.take().unwrap();
///     stdin.write_all(&[b'x'; 200_000]).unwrap(); // more than a pipe holds
///     drop(stdin);
///     assert!(child.wait().unwrap().success());
/// });
/// ```
pub struct ChildStdin {
    inner: Evented<process::ChildStdin>,
}

/// The reading end of a child's stdout ([`Child::stdout`](super::Child::stdout)).
/// A read that finds the pipe empty parks the calling greenlet until the
/// child writes or exits.
///
/// ```
/// use std::io::Read;
/// use greenhub::process::{Command, Stdio};
///
/// greenhub::run(|| {
///     let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn().unwrap();
///     let mut out = String::new();
///     child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
///     assert_eq!(out, "hi\n");
///     child.wait().unwrap();
/// });
/// ```
pub struct ChildStdout {
    inner: Evented<process::ChildStdout>,
}

/// The reading end of a child's stderr ([`Child::stderr`](super::Child::stderr)),
/// like [`ChildStdout`].
///
/// ```
/// use std::io::Read;
/// use greenhub::process::{Command, Stdio};
///
/// greenhub::run(|| {
///     let mut child =
///         Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()).spawn().unwrap();
///     let mut err = String::new();
///     child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
///     assert_eq!(err, "oops\n");
///     child.wait().unwrap();
/// });
/// ```
pub struct ChildStderr {
    inner: Evented<process::ChildStderr>,
}

/// What the three types share: construction from std's handle and the fd
/// conversions.
macro_rules! pipe_common {
    ($name:ident, $std:ty) => {
        impl $name {
            /// Takes over std's handle, switching it to non-blocking mode.
            pub(super) fn from_std(pipe: $std) -> io::Result<$name> {
                crate::io::sys::set_nonblocking(pipe.as_raw_fd(), true)?;
                Ok($name {
                    inner: Evented::new(pipe),
                })
            }

            /// Takes the fd off the poller and back to blocking mode.
            fn into_owned(self) -> OwnedFd {
                let pipe = self.inner.into_inner();
                // Only fails for a closed fd, and this one is open.
                let _ = crate::io::sys::set_nonblocking(pipe.as_raw_fd(), false);
                OwnedFd::from(pipe)
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.get_ref().as_fd()
            }
        }

        /// Gives the fd back in blocking mode.
        impl From<$name> for OwnedFd {
            fn from(pipe: $name) -> OwnedFd {
                pipe.into_owned()
            }
        }

        /// Gives the fd back in blocking mode.
        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.into_owned().into_raw_fd()
            }
        }

        /// Hands the pipe to another child (a shell-style pipeline), in
        /// blocking mode.
        impl From<$name> for Stdio {
            fn from(pipe: $name) -> Stdio {
                Stdio::from(pipe.into_owned())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.as_raw_fd())
                    .finish()
            }
        }
    };
}

pipe_common!(ChildStdin, process::ChildStdin);
pipe_common!(ChildStdout, process::ChildStdout);
pipe_common!(ChildStderr, process::ChildStderr);

impl ChildStdin {
    /// Sets how long a write may wait for room in the pipe before it fails
    /// with `ErrorKind::WouldBlock` (as a std socket's `set_write_timeout`);
    /// `None` (the default) waits without limit.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::time::Duration;
    /// use greenhub::process::{Command, Stdio};
    ///
    /// greenhub::run(|| {
    ///     // `sleep` never reads its stdin: the pipe fills up.
    ///     let mut child = Command::new("sleep").arg("5").stdin(Stdio::piped()).spawn().unwrap();
    ///     let mut stdin = child.stdin.take().unwrap();
    ///     stdin.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
    ///     assert_eq!(stdin.write_timeout().unwrap(), Some(Duration::from_millis(20)));
    ///     let err = stdin.write_all(&vec![0; 1 << 20]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    ///     child.kill().unwrap();
    ///     child.wait().unwrap();
    /// });
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.timeouts().set_write(timeout)
    }

    /// The write timeout; see [`set_write_timeout`](Self::set_write_timeout).
    ///
    /// ```
    /// use greenhub::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    /// assert_eq!(child.stdin.as_ref().unwrap().write_timeout().unwrap(), None);
    /// child.wait().unwrap();
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.timeouts().write())
    }
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .write_with(|pipe| write_fd(pipe.as_raw_fd(), buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read side of stdout and stderr.
macro_rules! pipe_read {
    ($name:ident, $field:ident) => {
        impl $name {
            /// Sets how long a read may wait for data before it fails with
            /// `ErrorKind::WouldBlock` (as a std socket's
            /// `set_read_timeout`); `None` (the default) waits without limit.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for `Some(Duration::ZERO)`.
            ///
            /// ```
            /// use std::io::Read;
            /// use std::time::Duration;
            /// use greenhub::process::{Command, Stdio};
            ///
            /// greenhub::run(|| {
            ///     let mut child = Command::new("sleep")
            ///         .arg("5")
            ///         .stdout(Stdio::piped())
            ///         .stderr(Stdio::piped())
            ///         .spawn()
            ///         .unwrap();
            #[doc = concat!("    let mut pipe = child.", stringify!($field), ".take().unwrap();")]
            ///     pipe.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            ///     assert_eq!(pipe.read_timeout().unwrap(), Some(Duration::from_millis(20)));
            ///     let err = pipe.read(&mut [0; 16]).unwrap_err();
            ///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            ///     child.kill().unwrap();
            ///     child.wait().unwrap();
            /// });
            /// ```
            pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.inner.timeouts().set_read(timeout)
            }

            /// The read timeout; see [`set_read_timeout`](Self::set_read_timeout).
            ///
            /// ```
            /// use greenhub::process::{Command, Stdio};
            ///
            /// let mut child = Command::new("true")
            ///     .stdout(Stdio::piped())
            ///     .stderr(Stdio::piped())
            ///     .spawn()
            ///     .unwrap();
            #[doc = concat!("let pipe = child.", stringify!($field), ".take().unwrap();")]
            /// assert_eq!(pipe.read_timeout().unwrap(), None);
            /// child.wait().unwrap();
            /// ```
            pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
                Ok(self.inner.timeouts().read())
            }
        }

        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
        }

        impl Read for &$name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.inner.read_with(|pipe| read_fd(pipe.as_raw_fd(), buf))
            }
        }
    };
}

pipe_read!(ChildStdout, stdout);
pipe_read!(ChildStderr, stderr);

/// One `read(2)` into `buf`.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for writes of `len` bytes for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// One `read(2)` appended to `buf`'s spare capacity (grown first if small).
pub(super) fn read_append(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(64 * 1024);
    }
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is valid for writes of `spare.len()` bytes for the whole
    // call; `read` writes only initialized bytes.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: `read` initialized the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One `write(2)` of `buf`.
fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(isize::MAX as usize);
    // SAFETY: `buf` is valid for reads of `len` bytes for the whole call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
