//! Cooperative child processes: `std::process` with every wait parking only
//! the calling greenlet (gevent's `gevent.subprocess`).
//!
//! [`Command`] builds and spawns a process like `std::process::Command` (it
//! wraps one); the [`Child`] it gives back waits for its exit, and its
//! [`ChildStdin`], [`ChildStdout`] and [`ChildStderr`] pipes read and write,
//! without stalling the hub: the other greenlets of the caller's hub keep
//! running meanwhile.
//!
//! ```
//! use std::io::{Read, Write};
//! use greenhub::process::{Command, Stdio};
//!
//! greenhub::run(|| {
//!     let mut child = Command::new("cat")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     let mut stdin = child.stdin.take().unwrap();
//!     // The writer and the reader are two greenlets of one hub.
//!     let writer = greenhub::spawn(move || stdin.write_all(b"hello").unwrap());
//!     let mut echoed = String::new();
//!     child.stdout.take().unwrap().read_to_string(&mut echoed).unwrap();
//!     writer.join().unwrap();
//!     assert_eq!(echoed, "hello");
//!     assert!(child.wait().unwrap().success());
//! });
//! ```
//!
//! # How it fits
//!
//! - **Pipes** are the parent's ends of std's pipes, switched to
//!   `O_NONBLOCK` (the child's ends are separate file descriptions, left as
//!   they are) and wrapped in the crate's cooperative fd type: a read or
//!   write that would block parks the greenlet until the hub's poller reports
//!   the pipe ready, as sockets do.
//! - **Exit** is watched through a *pidfd* (`pidfd_open`, Linux 5.3+), which
//!   becomes readable when the child exits: [`Child::wait`] parks on it like
//!   a read, then reaps the child with a non-blocking `waitpid`. No hub ever
//!   blocks in `waitpid`, and no `SIGCHLD` handler is installed. Where
//!   `pidfd_open` is unavailable (`ENOSYS` on older kernels, `EPERM` under
//!   some seccomp filters, or any other failure), the wait falls back to
//!   polling `try_wait` with a cooperative sleep that backs off from 1 ms to
//!   50 ms: still only the greenlet waits, at the cost of up to 50 ms of
//!   latency.
//! - **Off a greenlet** (a plain thread, with or without a runtime) every
//!   call blocks the thread like its std twin, in `poll(2)`.
//!
//! # Interruption and ownership
//!
//! A [`kill`](crate::JoinHandle::kill) or an expired
//! [`timeout`](crate::timeout) interrupts a greenlet blocked in a wait or a
//! pipe read or write, like any other blocking call. The child process is
//! not affected: it keeps running, and the [`Child`] stays usable (wait
//! again, or [`kill`](Child::kill) it). As with std, dropping a [`Child`]
//! neither kills nor reaps the process.
//!
//! # Limits
//!
//! - [`Command::spawn`] blocks the hub for the fork and exec themselves
//!   (std reports an exec failure through a pipe it reads blocking), usually
//!   well under a millisecond; only the waits are cooperative.
//! - Something else that reaps children (a `waitpid(-1)` loop, `SIGCHLD`
//!   set to `SIG_IGN`) takes the exit status away from [`Child`], as it
//!   would from `std::process::Child`.

mod child;
mod command;
mod exit;
mod pipe;
#[cfg(test)]
mod tests;

pub use child::Child;
pub use command::Command;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};
