//! [`DatagramServer`]: a UDP server that runs a handler in a new greenlet
//! for each datagram (gevent's `DatagramServer`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::common::{Core, Errors, Placement};
use super::{ServerStats, StopReport};
use crate::net::{ToSocketAddrs, UdpSocket};
use crate::runtime::Handle;

/// The largest UDP payload (over IPv4; IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65_507;

/// A running UDP server: receiver greenlets on one socket, one handler
/// greenlet per datagram.
///
/// The handler gets the datagram, its sender's address and the server's
/// socket to reply with (`socket.send_to(reply, peer)`, gevent's
/// `sendto`). Each datagram gets its own greenlet, as in gevent, so a
/// handler may block (on a database, another socket) without holding up
/// the next datagram; [`max_in_flight`](DatagramBuilder::max_in_flight)
/// bounds how many run at once. A panicking handler is counted and
/// contained. Stop and wait as for a [`StreamServer`](super::StreamServer).
///
/// ```
/// use std::time::Duration;
/// use greenhub::net::UdpSocket;
/// use greenhub::server::DatagramServer;
///
/// greenhub::run(|| {
///     let server = DatagramServer::bind("127.0.0.1:0")
///         .unwrap()
///         .serve(|data, peer, socket| {
///             socket.send_to(&data.to_ascii_uppercase(), peer).unwrap();
///         })
///         .unwrap();
///     let client = UdpSocket::bind("127.0.0.1:0").unwrap();
///     client.send_to(b"ping", server.local_addr()).unwrap();
///     let mut buf = [0; 16];
///     let (n, _) = client.recv_from(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"PING");
///     server.stop(Duration::from_secs(5));
/// });
/// ```
#[derive(Clone)]
pub struct DatagramServer {
    core: Arc<Core>,
    local_addr: SocketAddr,
}

/// Configures a [`DatagramServer`] before it starts; see
/// [`DatagramServer::bind`].
///
/// ```
/// let b = greenhub::server::DatagramServer::bind("127.0.0.1:0")
///     .unwrap()
///     .max_in_flight(64)
///     .buffer_size(1500);
/// # drop(b);
/// ```
#[derive(Debug)]
#[must_use = "a DatagramBuilder does nothing until `serve` is called"]
pub struct DatagramBuilder {
    source: Source,
    limit: Option<usize>,
    per_hub: bool,
    buffer: usize,
    handle: Option<Handle>,
}

#[derive(Debug)]
enum Source {
    Addrs(Vec<SocketAddr>),
    Socket(UdpSocket),
}

impl DatagramServer {
    /// A server for `addr` (resolved now, bound by
    /// [`serve`](DatagramBuilder::serve)).
    ///
    /// # Errors
    ///
    /// The resolver's error, or `InvalidInput` if `addr` names no address.
    ///
    /// ```
    /// assert!(greenhub::server::DatagramServer::bind("127.0.0.1:0").is_ok());
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<DatagramBuilder> {
        let addrs = crate::net::addrs(&addr)?;
        Ok(DatagramBuilder::new(Source::Addrs(addrs)))
    }

    /// A server that receives on `socket`.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = socket.local_addr().unwrap();
    /// let s = greenhub::server::DatagramServer::from_socket(socket).serve(|_, _, _| ()).unwrap();
    /// assert_eq!(s.local_addr(), addr);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn from_socket(socket: UdpSocket) -> DatagramBuilder {
        DatagramBuilder::new(Source::Socket(socket))
    }

    /// The address the server receives on.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// assert_ne!(s.local_addr().port(), 0);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The number of handlers that have not finished.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// assert_eq!(s.in_flight(), 0);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn in_flight(&self) -> usize {
        self.core.active()
    }

    /// Counters; [`ServerStats::accepted`] counts datagrams per receiver.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// assert_eq!(s.stats().accepted, [0]);
    /// # s.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.core.stats()
    }

    /// Stops receiving (the socket closes once the last handler is gone),
    /// lets handlers finish for up to `timeout`, kills the rest, and returns
    /// when all are gone; as [`StreamServer::stop`](super::StreamServer::stop).
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// let report = s.stop(std::time::Duration::from_secs(1));
    /// assert_eq!((report.drained, report.killed), (0, 0));
    /// # });
    /// ```
    pub fn stop(&self, timeout: Duration) -> StopReport {
        self.core.stop(timeout)
    }

    /// Parks the caller until the server has stopped.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// let s2 = s.clone();
    /// greenhub::spawn(move || s2.stop(std::time::Duration::ZERO));
    /// s.wait();
    /// # });
    /// ```
    pub fn wait(&self) {
        self.core.wait()
    }

    /// Whether a `stop` has completed.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// s.stop(std::time::Duration::ZERO);
    /// assert!(s.is_stopped());
    /// # });
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.core.is_stopped()
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("local_addr", &self.local_addr)
            .field("in_flight", &self.in_flight())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl DatagramBuilder {
    fn new(source: Source) -> DatagramBuilder {
        DatagramBuilder {
            source,
            limit: None,
            per_hub: false,
            buffer: MAX_DATAGRAM,
            handle: None,
        }
    }

    /// Runs at most `n` handlers at once; while `n` run, nothing is
    /// received (datagrams queue in the socket's receive buffer, and the
    /// kernel drops what does not fit, as UDP does).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// let b = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().max_in_flight(8);
    /// # drop(b);
    /// ```
    #[track_caller]
    pub fn max_in_flight(mut self, n: usize) -> DatagramBuilder {
        assert!(
            n > 0,
            "greenhub::server: max_in_flight(0) would never serve anyone"
        );
        self.limit = Some(n);
        self
    }

    /// With `true`, one receiver greenlet per hub, all on the one socket (M:N
    /// and pinned mode); by default one receiver.
    ///
    /// ```
    /// let b = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().per_hub(true);
    /// # drop(b);
    /// ```
    pub fn per_hub(mut self, on: bool) -> DatagramBuilder {
        self.per_hub = on;
        self
    }

    /// The receive buffer of each receiver: a longer datagram is cut to
    /// this length (default 65,507 bytes, the largest UDP payload).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    ///
    /// ```
    /// let b = greenhub::server::DatagramServer::bind("127.0.0.1:0").unwrap().buffer_size(512);
    /// # drop(b);
    /// ```
    #[track_caller]
    pub fn buffer_size(mut self, bytes: usize) -> DatagramBuilder {
        assert!(bytes > 0, "greenhub::server: buffer_size(0)");
        self.buffer = bytes;
        self
    }

    /// Serves on `handle`'s runtime (by default the caller's); see
    /// [`StreamBuilder::handle`](super::StreamBuilder::handle).
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let s = greenhub::server::DatagramServer::bind("127.0.0.1:0")
    ///     .unwrap()
    ///     .handle(rt.handle().clone())
    ///     .serve(|_, _, _| ())
    ///     .unwrap();
    /// s.stop(std::time::Duration::ZERO);
    /// ```
    pub fn handle(mut self, handle: Handle) -> DatagramBuilder {
        self.handle = Some(handle);
        self
    }

    /// Binds (for [`DatagramServer::bind`]) and starts the receivers;
    /// returns at once. Each datagram runs `handler(data, peer, socket)` in
    /// a new greenlet.
    ///
    /// # Errors
    ///
    /// The bind error, or an error if there is no runtime.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// use greenhub::server::DatagramServer;
    /// let a = DatagramServer::bind("127.0.0.1:0").unwrap().serve(|_, _, _| ()).unwrap();
    /// let taken = DatagramServer::bind(a.local_addr()).unwrap().serve(|_, _, _| ());
    /// assert_eq!(taken.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// # a.stop(std::time::Duration::ZERO);
    /// # });
    /// ```
    pub fn serve<F>(self, handler: F) -> io::Result<DatagramServer>
    where
        F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
    {
        let handle = super::runtime(self.handle)?;
        let (n, placement) = match self.per_hub {
            true => (handle.shared().hubs.len(), Placement::PerHub),
            false => (1, Placement::Anywhere),
        };
        let socket = Arc::new(match self.source {
            Source::Socket(s) => s,
            Source::Addrs(addrs) => UdpSocket::bind(&addrs[..])?,
        });
        let local_addr = socket.local_addr()?;
        let core = Core::new(n, self.limit);
        let handler = Arc::new(handler);
        for i in 0..n {
            let (core2, socket, handler) = (core.clone(), socket.clone(), handler.clone());
            let size = self.buffer;
            let run = move || receive_loop(&core2, i, &socket, &handler, size);
            core.start_worker(&handle, placement, i, format!("server-recv-{i}"), run)?;
        }
        Ok(DatagramServer { core, local_addr })
    }
}

/// One receiver: until killed by `stop` (or the runtime's shutdown). All
/// receivers share the socket, so a slot taken before `recv_from` never
/// waits while a datagram is queued elsewhere.
fn receive_loop<F>(
    core: &Core,
    index: usize,
    socket: &Arc<UdpSocket>,
    handler: &Arc<F>,
    size: usize,
) where
    F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
{
    let mut errors = Errors::new("recv_from");
    let mut buf = vec![0; size];
    loop {
        let slot = core.reserve();
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                errors.reset();
                core.took(index);
                let data = buf[..n].to_vec();
                let (socket, handler) = (socket.clone(), handler.clone());
                core.spawn_handler(slot, move || handler(&data, peer, &socket));
            }
            Err(e) => {
                drop(slot);
                errors.record(core, &e, false);
            }
        }
    }
}
