//! Cooperative IO underneath [`net`](crate::net), [`process`](crate::process)
//! and the fd waits below: how a greenlet waits for a file descriptor.
//!
//! - `scheduled.rs`: the readiness state of one fd, shared by its waiters
//!   and the hub that polls it (the wake-up protocol).
//! - `registration.rs`: the lazy registration with the waiting greenlet's hub
//!   poller, and the "try the syscall, park on `WouldBlock`" loop; off a
//!   greenlet, `poll(2)` instead.
//! - `evented.rs`: an owned fd with its registration and timeouts, the core of
//!   every socket and pipe type.
//! - `sys.rs`: `poll(2)` for waits off a greenlet, `O_NONBLOCK`.
//! - `fdwait.rs`: the public waits on raw fds: [`wait_readable`],
//!   [`wait_writable`] and [`select`] (gevent's `wait_read`, `wait_write` and
//!   `gevent.select.select`).
//!
//! The hub's half (polling and dispatching events) is in `hub/io.rs`.

#[cfg(not(loom))]
pub(crate) mod evented;
#[cfg(not(loom))]
mod fdwait;
#[cfg(not(loom))]
pub(crate) mod registration;

#[cfg(not(loom))]
pub(crate) mod sys;

#[cfg(all(feature = "patch", not(loom)))]
pub(crate) use fdwait::park_pollfds;
#[cfg(not(loom))]
pub use fdwait::{Selected, select, wait_readable, wait_writable};
