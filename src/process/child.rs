//! [`Child`]: a spawned process, its pipes, and the waits for its exit.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::process::{self, ExitStatus, Output};
use std::time::{Duration, Instant};

use super::exit::ExitWatch;
use super::pipe::{self, ChildStderr, ChildStdin, ChildStdout};

/// A spawned child process, as `std::process::Child`, whose waits park only
/// the calling greenlet. Made by [`Command::spawn`](super::Command::spawn).
///
/// Dropping a `Child` neither kills nor reaps the process (as in std): call
/// [`kill`](Child::kill) and [`wait`](Child::wait) to clean up one that
/// should not outlive it. A kill or a [`timeout`](crate::timeout) that
/// interrupts a wait leaves the process running and the `Child` usable.
///
/// ```
/// use greenhub::process::Command;
///
/// greenhub::run(|| {
///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
///     assert_eq!(child.wait().unwrap().code(), Some(3));
/// });
/// ```
pub struct Child {
    /// The writing end of the child's stdin, if it was
    /// [`piped`](super::Stdio::piped). Take it to write from another
    /// greenlet.
    pub stdin: Option<ChildStdin>,
    /// The reading end of the child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The reading end of the child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    inner: process::Child,
    exit: ExitWatch,
}

impl Child {
    /// Takes over a child std just spawned, and its pipes.
    pub(super) fn from_std(mut inner: process::Child) -> io::Result<Child> {
        let stdin = inner.stdin.take().map(ChildStdin::from_std).transpose()?;
        let stdout = inner.stdout.take().map(ChildStdout::from_std).transpose()?;
        let stderr = inner.stderr.take().map(ChildStderr::from_std).transpose()?;
        Ok(Child {
            stdin,
            stdout,
            stderr,
            inner,
            exit: ExitWatch::Unopened,
        })
    }

    /// The child's process id.
    ///
    /// ```
    /// use greenhub::process::Command;
    ///
    /// let mut child = Command::new("true").spawn().unwrap();
    /// assert!(child.id() > 0);
    /// child.wait().unwrap();
    /// ```
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` to the child, as std does; a child that has exited
    /// already is not an error. The exit still has to be reaped with
    /// [`wait`](Child::wait).
    ///
    /// # Errors
    ///
    /// As `std::process::Child::kill`.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    ///     child.kill().unwrap();
    ///     assert_eq!(child.wait().unwrap().signal(), Some(9)); // SIGKILL
    /// });
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Waits for the child to exit and returns its status, parking only the
    /// calling greenlet (off a greenlet: blocking the thread). Closes the
    /// child's [`stdin`](Child::stdin) first, as std does, so a child that
    /// reads to end of file can finish. Later calls return the same status.
    ///
    /// A kill or an expired [`timeout`](crate::timeout) interrupts the wait
    /// (by unwinding, as every blocking call); the child keeps running.
    ///
    /// # Errors
    ///
    /// As `std::process::Child::wait` (`ECHILD` if something else reaped
    /// the child).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     let mut child = Command::new("sleep").arg("0.1").spawn().unwrap();
    ///     let ticker = greenhub::spawn(|| greenhub::sleep(Duration::from_millis(10)));
    ///     assert!(child.wait().unwrap().success()); // the ticker runs meanwhile
    ///     ticker.join().unwrap();
    /// });
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match self.exit.wait(&mut self.inner, None)? {
            Some(status) => Ok(status),
            None => unreachable!("greenhub: a wait without a deadline timed out"),
        }
    }

    /// Waits up to `timeout` for the child to exit: `Ok(Some(status))` once
    /// it has, `Ok(None)` if it is still running when `timeout` passes
    /// (gevent's `Popen.wait(timeout)`). Unlike [`wait`](Child::wait) it
    /// leaves [`stdin`](Child::stdin) open, so the child can still be fed
    /// between two calls.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    ///     assert_eq!(child.wait_timeout(Duration::from_millis(10)).unwrap(), None);
    ///     let status = child.wait_timeout(Duration::from_secs(10)).unwrap();
    ///     assert!(status.unwrap().success());
    /// });
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now().checked_add(timeout);
        self.exit.wait(&mut self.inner, deadline)
    }

    /// Returns the status if the child has exited (reaping it), `None` if it
    /// is still running; never waits.
    ///
    /// # Errors
    ///
    /// As `std::process::Child::try_wait`.
    ///
    /// ```
    /// use greenhub::process::Command;
    ///
    /// let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    /// assert_eq!(child.try_wait().unwrap(), None);
    /// child.kill().unwrap();
    /// let status = child.wait().unwrap();
    /// assert_eq!(child.try_wait().unwrap(), Some(status));
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes stdin, collects everything the child writes to its piped
    /// stdout and stderr, and waits for it to exit. Both pipes are read
    /// concurrently, so a child that fills one while the other is being
    /// read cannot deadlock; an unpiped stream gives an empty buffer.
    ///
    /// # Errors
    ///
    /// A read error, or as [`wait`](Child::wait).
    ///
    /// ```
    /// use greenhub::process::{Command, Stdio};
    ///
    /// greenhub::run(|| {
    ///     let child = Command::new("sh")
    ///         .args(["-c", "echo out; echo err >&2"])
    ///         .stdout(Stdio::piped())
    ///         .stderr(Stdio::piped())
    ///         .spawn()
    ///         .unwrap();
    ///     let output = child.wait_with_output().unwrap();
    ///     assert_eq!(output.stdout, b"out\n");
    ///     assert_eq!(output.stderr, b"err\n");
    ///     assert!(output.status.success());
    /// });
    /// ```
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        let mut bufs = [Vec::new(), Vec::new()];
        let fds = [
            stdout.as_ref().map(AsRawFd::as_raw_fd),
            stderr.as_ref().map(AsRawFd::as_raw_fd),
        ];
        read_all(fds, &mut bufs)?;
        drop((stdout, stderr));
        let status = self.wait()?;
        let [stdout, stderr] = bufs;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads the non-blocking pipes `fds` (`None`: absent) to end of file into
/// `bufs`, draining whichever is readable and waiting on the ones still open
/// with [`select`](crate::io::select) in between.
fn read_all(fds: [Option<RawFd>; 2], bufs: &mut [Vec<u8>; 2]) -> io::Result<()> {
    let mut open = fds;
    loop {
        for (fd_slot, buf) in open.iter_mut().zip(bufs.iter_mut()) {
            while let Some(fd) = *fd_slot {
                match pipe::read_append(fd, buf) {
                    Ok(0) => *fd_slot = None,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let waiting: Vec<RawFd> = open.iter().flatten().copied().collect();
        if waiting.is_empty() {
            return Ok(());
        }
        crate::io::select(&waiting, &[], None)?;
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}
