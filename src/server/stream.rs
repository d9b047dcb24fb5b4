//! [`StreamServer`]: a TCP server that runs a handler in a new greenlet for
//! each connection (gevent's `StreamServer`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::accept::{self, Gate};
use super::common::{Core, Placement};
use super::{ServerStats, StopReport};
use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::runtime::Handle;

/// A running TCP server: one acceptor greenlet per listening socket, one
/// handler greenlet per connection.
///
/// Built with [`StreamServer::bind`] or [`StreamServer::from_listener`],
/// then [`serve`](StreamBuilder::serve). The handler gets the connection
/// and the peer's address; the connection closes when the handler returns
/// (it owns the stream). A handler that panics is counted
/// ([`ServerStats::panicked`]) and the server goes on.
///
/// The handle is cheap to clone and `Send + Sync`: a signal handler or any
/// greenlet or thread may [`stop`](Self::stop) the server while another
/// [`wait`](Self::wait)s. Dropping every handle does not stop the server
/// (as dropping a `JoinHandle` detaches a greenlet); it runs until `stop` or
/// until its runtime shuts down.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::Duration;
/// use greenhub::net::TcpStream;
/// use greenhub::server::StreamServer;
///
/// greenhub::run(|| {
///     let server = StreamServer::bind("127.0.0.1:0")
///         .unwrap()
///         .serve(|conn, _peer| {
///             // A line echo: one greenlet per connection.
///             let mut lines = BufReader::new(&conn);
///             let mut line = String::new();
///             while lines.read_line(&mut line).unwrap_or(0) > 0 {
///                 (&conn).write_all(line.to_uppercase().as_bytes()).unwrap();
///                 line.clear();
///             }
///         })
///         .unwrap();
///
///     let mut client = TcpStream::connect(server.local_addr()).unwrap();
///     client.write_all(b"hello\n").unwrap();
///     let mut reply = String::new();
///     BufReader::new(&client).read_line(&mut reply).unwrap();
///     assert_eq!(reply, "HELLO\n");
///     drop(client); // the handler sees EOF and returns
///
///     let report = server.stop(Duration::from_secs(5));
///     assert_eq!(report.killed, 0);
/// });
/// ```
#[derive(Clone)]
pub struct StreamServer {
    core: Arc<Core>,
    gate: Arc<Gate>,
    local_addr: SocketAddr,
}

/// Configures a [`StreamServer`] before it starts; see
/// [`StreamServer::bind`].
///
/// ```
/// # greenhub::run(|| {
/// let builder = greenhub::server::StreamServer::bind("127.0.0.1:0")
///     .unwrap()
///     .max_connections(100)
///     .per_hub(true);
/// let server = builder.serve(|_conn, _peer| ()).unwrap();
/// server.stop(std::time::Duration::ZERO);
/// # });
/// ```
#[derive(Debug)]
#[must_use = "a StreamBuilder does nothing until `serve` is called"]
pub struct StreamBuilder {
    source: Source,
    limit: Option<usize>,
    per_hub: bool,
    handle: Option<Handle>,
}

#[derive(Debug)]
enum Source {
    Addrs(Vec<SocketAddr>),
    Listener(TcpListener),
}

impl StreamServer {
    /// A server for `addr` (resolved now; bound by
    /// [`serve`](StreamBuilder::serve), which then knows whether to make one
    /// socket per hub).
    ///
    /// # Errors
    ///
    /// The resolver's error, or `InvalidInput` if `addr` names no address.
    ///
    /// ```
    /// use greenhub::server::StreamServer;
    ///
    /// assert!(StreamServer::bind("127.0.0.1:0").is_ok());
    /// assert!(StreamServer::bind("no port").is_err());
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<StreamBuilder> {
        let addrs = crate::net::addrs(&addr)?;
        Ok(StreamBuilder::new(Source::Addrs(addrs)))
    }

    /// A server that accepts on `listener` only (with
    /// [`per_hub`](StreamBuilder::per_hub), an acceptor on every hub shares
    /// it).
    ///
    /// ```
    /// use greenhub::net::TcpListener;
    /// use greenhub::server::StreamServer;
    ///
    /// greenhub::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let server = StreamServer::from_listener(listener).serve(|_, _| ()).unwrap();
    ///     assert_eq!(server.local_addr(), addr);
    ///     server.stop(std::time::Duration::ZERO);
    /// });
    /// ```
    pub fn from_listener(listener: TcpListener) -> StreamBuilder {
        StreamBuilder::new(Source::Listener(listener))
    }

    /// The address the server listens on (with the port chosen for port 0).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// assert_ne!(s.local_addr().port(), 0);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The number of connections whose handler has not finished.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// assert_eq!(s.connections(), 0);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn connections(&self) -> usize {
        self.core.active()
    }

    /// Counters: connections accepted per acceptor, accept errors, handler
    /// outcomes.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// let stats = s.stats();
    /// assert_eq!(stats.accepted, [0]); // one acceptor (no `per_hub`)
    /// assert_eq!(stats.panicked, 0);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.core.stats()
    }

    /// Stops the server and returns when every handler is gone: closes the
    /// listening sockets (new connections are refused), lets running
    /// handlers finish for up to `timeout`, then kills the rest and waits
    /// for them to unwind. Callable from any greenlet or thread, any number
    /// of times: later and concurrent calls wait for the first one and
    /// return its report. Not from one of the server's own handlers, which
    /// would wait for itself (spawn a greenlet that calls `stop` instead).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::net::TcpStream;
    ///
    /// greenhub::run(|| {
    ///     let server = greenhub::server::StreamServer::bind("127.0.0.1:0")
    ///         .unwrap()
    ///         .serve(|_conn, _| greenhub::sleep(Duration::from_secs(60)))
    ///         .unwrap();
    ///     let addr = server.local_addr();
    ///     let _c = TcpStream::connect(addr).unwrap();
    ///     while server.connections() == 0 {
    ///         greenhub::sleep(Duration::from_millis(1));
    ///     }
    ///     let report = server.stop(Duration::from_millis(10));
    ///     assert_eq!((report.drained, report.killed), (0, 1));
    ///     assert!(TcpStream::connect(addr).is_err());
    /// });
    /// ```
    pub fn stop(&self, timeout: Duration) -> StopReport {
        self.core.stop(timeout)
    }

    /// Stops taking connections without closing the listening sockets
    /// (gevent's `stop_accepting()`): new clients' `connect` still succeeds,
    /// and they wait in the kernel's listen backlog until
    /// [`start_accepting`](Self::start_accepting) (or are refused once the
    /// backlog is full; `stop` closes the sockets and resets them). Running
    /// handlers go on. When it returns, no acceptor is taking a connection
    /// and none will until `start_accepting`, on every hub (`per_hub`).
    ///
    /// Idempotent; callable from any greenlet or thread. Once `stop` has
    /// begun, it does nothing.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use greenhub::net::TcpStream;
    /// use greenhub::server::StreamServer;
    ///
    /// greenhub::run(|| {
    ///     let server = StreamServer::bind("127.0.0.1:0")
    ///         .unwrap()
    ///         .serve(|mut conn, _| {
    ///             std::io::Write::write_all(&mut conn, b"hi").unwrap();
    ///         })
    ///         .unwrap();
    ///     server.stop_accepting();
    ///     let mut client = TcpStream::connect(server.local_addr()).unwrap(); // queued
    ///     greenhub::sleep(Duration::from_millis(20));
    ///     assert_eq!(server.stats().accepted, [0]);
    ///
    ///     server.start_accepting(); // the queued client is served now
    ///     let mut reply = String::new();
    ///     client.read_to_string(&mut reply).unwrap();
    ///     assert_eq!(reply, "hi");
    ///     server.stop(Duration::from_secs(5));
    /// });
    /// ```
    pub fn stop_accepting(&self) {
        if self.core.is_running() {
            self.gate.close();
        }
    }

    /// Takes connections again after
    /// [`stop_accepting`](Self::stop_accepting), starting with those queued
    /// meanwhile (gevent's `start_accepting()`). Idempotent; callable from
    /// any greenlet or thread. Once `stop` has begun, it does nothing: a
    /// stopped server does not restart.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// s.stop_accepting();
    /// assert!(!s.is_accepting());
    /// s.start_accepting();
    /// s.start_accepting(); // no-op
    /// assert!(s.is_accepting());
    /// s.stop(std::time::Duration::ZERO);
    /// assert!(!s.is_accepting());
    /// s.start_accepting(); // no-op after stop
    /// assert!(!s.is_accepting());
    /// # });
    /// ```
    pub fn start_accepting(&self) {
        if self.core.is_running() {
            self.gate.open();
        }
    }

    /// Whether the server takes connections: neither paused by
    /// [`stop_accepting`](Self::stop_accepting) nor stopped.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// assert!(s.is_accepting());
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn is_accepting(&self) -> bool {
        self.core.is_running() && self.gate.is_open()
    }

    /// Parks the caller until the server has stopped (a `stop` from
    /// elsewhere has returned).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let server = greenhub::server::StreamServer::bind("127.0.0.1:0")
    ///         .unwrap()
    ///         .serve(|_, _| ())
    ///         .unwrap();
    ///     let stopper = server.clone();
    ///     greenhub::spawn(move || stopper.stop(std::time::Duration::ZERO));
    ///     server.wait();
    ///     assert!(server.is_stopped());
    /// });
    /// ```
    pub fn wait(&self) {
        self.core.wait()
    }

    /// Whether a `stop` has completed.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// assert!(!s.is_stopped());
    /// s.stop(std::time::Duration::ZERO);
    /// assert!(s.is_stopped());
    /// # });
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.core.is_stopped()
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connections())
            .field("accepting", &self.is_accepting())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl StreamBuilder {
    fn new(source: Source) -> StreamBuilder {
        StreamBuilder {
            source,
            limit: None,
            per_hub: false,
            handle: None,
        }
    }

    /// Runs at most `n` handlers at once. While `n` run, the server accepts
    /// nothing: further clients wait in the kernel's listen backlog (their
    /// `connect` succeeds, nothing is read) until a handler finishes, as
    /// with a gevent `Pool`.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// let b = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().max_connections(2);
    /// # drop(b);
    /// ```
    #[track_caller]
    pub fn max_connections(mut self, n: usize) -> StreamBuilder {
        assert!(
            n > 0,
            "greenhub::server: max_connections(0) would never serve anyone"
        );
        self.limit = Some(n);
        self
    }

    /// With `true`, accepts on every hub of the runtime, so that accepting
    /// scales with the cores (M:N and pinned mode): one acceptor greenlet
    /// per hub, started on that hub. From an address each acceptor gets its
    /// own socket bound with `SO_REUSEPORT` (the kernel spreads the
    /// connections); where that fails, and for a given listener, all
    /// acceptors share one socket. Off by default: one acceptor, one socket.
    ///
    /// ```
    /// let b = greenhub::server::StreamServer::bind("127.0.0.1:0").unwrap().per_hub(true);
    /// # drop(b);
    /// ```
    pub fn per_hub(mut self, on: bool) -> StreamBuilder {
        self.per_hub = on;
        self
    }

    /// Serves on `handle`'s runtime, so that [`serve`](Self::serve) works
    /// off the runtime too (from a plain thread). By default: the runtime
    /// of the calling greenlet.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .handle(rt.handle().clone())
    ///     .serve(|_, _| ())
    ///     .unwrap();
    /// let report = server.stop(std::time::Duration::ZERO); // from the main thread
    /// assert_eq!(report.killed, 0);
    /// ```
    pub fn handle(mut self, handle: Handle) -> StreamBuilder {
        self.handle = Some(handle);
        self
    }

    /// Binds (for [`StreamServer::bind`]) and starts the acceptors; returns
    /// at once. Each connection runs `handler(stream, peer)` in a new
    /// greenlet.
    ///
    /// # Errors
    ///
    /// The bind error (e.g. `AddrInUse`) for the last address tried, or an
    /// error if there is no runtime (neither a current one nor
    /// [`handle`](Self::handle)).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// use greenhub::server::StreamServer;
    /// let a = StreamServer::bind("127.0.0.1:0").unwrap().serve(|_, _| ()).unwrap();
    /// let taken = StreamServer::bind(a.local_addr()).unwrap().serve(|_, _| ());
    /// assert_eq!(taken.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// # a.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn serve<F>(self, handler: F) -> io::Result<StreamServer>
    where
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let handle = super::runtime(self.handle)?;
        let (n, placement) = match self.per_hub {
            true => (handle.shared().hubs.len(), Placement::PerHub),
            false => (1, Placement::Anywhere),
        };
        let (listeners, own) = match self.source {
            Source::Listener(l) => (accept::shared(l, n), false),
            Source::Addrs(addrs) => accept::bind(&addrs, n)?,
        };
        let local_addr = listeners[0].local_addr()?;
        let core = Core::new(n, self.limit);
        // With a limit and a socket per acceptor, a slot is taken only once
        // a connection is pending: an acceptor holding a slot while waiting
        // on an idle socket could starve a connection queued on another.
        let pending_first = own && n > 1 && core.is_limited();
        let handler = Arc::new(handler);
        let gate = Arc::new(Gate::new(&listeners));
        for (i, listener) in listeners.into_iter().enumerate() {
            let (core2, gate2, handler) = (core.clone(), gate.clone(), handler.clone());
            let run = move || accept::run(&core2, &gate2, i, &listener, &handler, pending_first);
            core.start_worker(&handle, placement, i, format!("server-accept-{i}"), run)?;
        }
        Ok(StreamServer {
            core,
            gate,
            local_addr,
        })
    }
}
