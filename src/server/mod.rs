//! Servers: a greenlet per connection or per datagram (gevent's
//! `StreamServer` and `DatagramServer`).
//!
//! - [`StreamServer`]: TCP. Acceptor greenlets take connections and run a
//!   handler `Fn(TcpStream, SocketAddr)` in a new greenlet for each; the
//!   connection closes when the handler returns.
//! - [`DatagramServer`]: UDP. Receiver greenlets take datagrams and run a
//!   handler `Fn(&[u8], SocketAddr, &UdpSocket)` in a new greenlet for each.
//!
//! Both own their sockets, their worker greenlets (acceptors, receivers),
//! and their handler greenlets (a [`pool::Group`](crate::pool::Group), with
//! an optional limit: while it is reached the workers stop taking work,
//! which then waits in the kernel, as with a gevent `Pool`). A panicking
//! handler is counted in [`ServerStats`] and contained; errors of `accept`
//! and `recv_from` are counted, logged to stderr at most once a second per
//! worker, and followed by a pause if retrying at once would fail again
//! (out of fds: `TcpListener` pauses by itself), so a worker never spins
//! and never dies of them.
//!
//! With `per_hub(true)` there is one worker per hub, started on that hub
//! (M:N and pinned mode; single-threaded mode has one hub): for TCP each
//! acceptor gets its own listening socket in an `SO_REUSEPORT` group, so
//! accepting scales with the cores. In pinned mode each connection is
//! then served on the hub that accepted it; in M:N mode idle hubs may take
//! new handlers as they take any unstarted greenlet.
//!
//! # Stopping
//!
//! A server is in one of three states:
//!
//! ```text
//! Running --stop(timeout)--> Stopping --all handlers gone--> Stopped
//! ```
//!
//! - **Running**: workers take work and spawn handlers. A stream server may
//!   be paused in this state ([`StreamServer::stop_accepting`]): its
//!   acceptors take nothing, its sockets stay open and new clients wait in
//!   the kernel's backlog, until [`StreamServer::start_accepting`].
//! - **Stopping**, entered by the first caller of `stop`, who then does the
//!   whole stop: it kills the workers and waits for them, which closes the
//!   listening sockets (new clients are refused; a datagram socket closes
//!   with its last handler); it waits for the handlers until `timeout` has
//!   passed since the call; then it kills those still running and waits
//!   until they have unwound.
//! - **Stopped**, set by that caller when no handler is left (or when its
//!   own greenlet is killed meanwhile, after killing the handlers). `stop`
//!   returns the [`StopReport`]; every other caller of `stop` and every
//!   caller of `wait` parks until Stopped and gets the same report.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use greenhub::net::TcpStream;
//! use greenhub::server::StreamServer;
//!
//! greenhub::run(|| {
//!     let server = StreamServer::bind("127.0.0.1:0")
//!         .unwrap()
//!         .max_connections(1000)
//!         .per_hub(true)
//!         .serve(|mut conn, _peer| {
//!             let mut buf = [0; 64];
//!             while let Ok(n @ 1..) = conn.read(&mut buf) {
//!                 if conn.write_all(&buf[..n]).is_err() {
//!                     break;
//!                 }
//!             }
//!         })
//!         .unwrap();
//!
//!     let mut c = TcpStream::connect(server.local_addr()).unwrap();
//!     c.write_all(b"echo").unwrap();
//!     let mut back = [0; 4];
//!     c.read_exact(&mut back).unwrap();
//!     assert_eq!(&back, b"echo");
//!     drop(c);
//!
//!     // Typically from a signal handler: `signal_handler(SIGTERM, move || { s.stop(..); })`.
//!     let stopper = server.clone();
//!     greenhub::spawn(move || stopper.stop(Duration::from_secs(10)));
//!     server.wait();
//! });
//! ```

mod accept;
mod common;
mod datagram;
mod stream;

pub use datagram::{DatagramBuilder, DatagramServer};
pub use stream::{StreamBuilder, StreamServer};

use std::io;

use crate::runtime::Handle;

/// What [`StreamServer::stop`] (or [`DatagramServer::stop`]) did with the
/// handlers running when the workers were gone.
///
/// ```
/// # greenhub::run(|| {
/// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
/// let greenhub::server::StopReport { drained, killed, .. } = s.stop(std::time::Duration::ZERO);
/// assert_eq!(drained + killed, 0);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Handlers that finished by themselves (returned or panicked) within
    /// the timeout.
    pub drained: usize,
    /// Handlers killed at the deadline (including ones that had not started
    /// yet).
    pub killed: usize,
}

/// A server's counters since it started ([`StreamServer::stats`],
/// [`DatagramServer::stats`]).
///
/// ```
/// # greenhub::run(|| {
/// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
/// let stats = s.stats();
/// assert_eq!(stats.accepted.iter().sum::<u64>(), 0);
/// assert_eq!((stats.errors, stats.active, stats.returned), (0, 0, 0));
/// # s.stop(std::time::Duration::ZERO);
/// # });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections accepted (datagrams received) by each worker; with
    /// `per_hub(true)` worker `i` runs on hub `i`.
    pub accepted: Vec<u64>,
    /// Errors of `accept` (`recv_from`), e.g. `EMFILE`.
    pub errors: u64,
    /// Handlers that have not finished.
    pub active: usize,
    /// Handlers that returned.
    pub returned: u64,
    /// Handlers that panicked.
    pub panicked: u64,
    /// Handlers killed (by `stop`, or by the runtime's shutdown), or that
    /// never ran.
    pub killed: u64,
}

/// `handle`, or the runtime of the calling greenlet.
fn runtime(handle: Option<Handle>) -> io::Result<Handle> {
    handle.or_else(Handle::try_current).ok_or_else(|| {
        io::Error::other(
            "greenhub::server: serve called outside a greenhub runtime; call it from a \
             greenlet, or pass the runtime's Handle to the builder's `handle`",
        )
    })
}
