//! [`UdpSocket`]: std's `UdpSocket`, with sends and receives parking only
//! the calling greenlet.

use super::common::{socket_basics, socket_timeouts};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::addr::{ToSocketAddrs, addrs, each_addr};
use super::sys::fd_impls;
use crate::io::evented::Evented;

/// A UDP socket: [`std::net::UdpSocket`]'s API, cooperative.
///
/// `recv`, `recv_from`, `peek`, `peek_from` wait for a datagram and `send`,
/// `send_to` for buffer space, parking only the calling greenlet; read and
/// write timeouts give `WouldBlock` as std's do.
///
/// ```
/// use greenhub::net::UdpSocket;
///
/// greenhub::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b_addr = b.local_addr().unwrap();
///     let rx = greenhub::spawn(move || {
///         let mut buf = [0; 16];
///         let (n, from) = b.recv_from(&mut buf).unwrap(); // parks until the datagram
///         (buf[..n].to_vec(), from)
///     });
///     a.send_to(b"ping", b_addr).unwrap();
///     let (data, from) = rx.join().unwrap();
///     assert_eq!(data, b"ping");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    io: Evented<std::net::UdpSocket>,
}

fd_impls!(UdpSocket, std::net::UdpSocket);

socket_basics!(
    UdpSocket,
    std::net::UdpSocket,
    "let s = greenhub::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);
socket_timeouts!(
    UdpSocket,
    "let s = greenhub::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);

/// Generates one-line delegations to the std socket, each with a doc line
/// and an example.
macro_rules! delegate {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {$(
        $(#[$doc])*
        pub fn $name(&self $(, $arg: $ty)*) -> $ret {
            self.io.get_ref().$name($($arg),*)
        }
    )*};
}

impl UdpSocket {
    fn from_evented(io: Evented<std::net::UdpSocket>) -> UdpSocket {
        UdpSocket { io }
    }

    /// Binds to `addr` (the first of its addresses that works).
    ///
    /// # Errors
    ///
    /// The bind error, or `InvalidInput` if `addr` names no address.
    ///
    /// ```
    /// # greenhub::run(|| {
    /// let s = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// # });
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| {
            let s = std::net::UdpSocket::bind(a)?;
            s.set_nonblocking(true)?;
            Ok(UdpSocket::from_evented(Evented::new(s)))
        })
    }

    /// Receives one datagram and its sender's address.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"self", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// let (n, from) = a.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"self"[..], a.local_addr().unwrap()));
    /// # });
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf))
    }

    /// As [`recv_from`](Self::recv_from), without taking the datagram off
    /// the queue.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(a.peek_from(&mut buf).unwrap().0, 1);
    /// assert_eq!(a.recv_from(&mut buf).unwrap().0, 1);
    /// # });
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.peek_from(buf))
    }

    /// Sends `buf` to `addr` (its first address, as std does).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` names no address, or the send error.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"abc", a.local_addr().unwrap()).unwrap(), 3);
    /// # });
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addrs(&addr)?[0];
        self.io.write_with(|s| s.send_to(buf, to))
    }

    /// Sets the default peer for `send` and `recv` (and filters what is
    /// received).
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0; 4];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// # });
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.io.get_ref().connect(a))
    }

    /// Sends to the connected peer.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.send(b"me").unwrap(), 2);
    /// # });
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"me").unwrap();
    /// let mut buf = [0; 4];
    /// assert_eq!(a.recv(&mut buf).unwrap(), 2);
    /// # });
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf))
    }

    /// As [`recv`](Self::recv), without taking the datagram off the queue.
    ///
    /// ```
    /// # use greenhub::net::UdpSocket;
    /// # greenhub::run(|| {
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"me").unwrap();
    /// let mut buf = [0; 4];
    /// assert_eq!(a.peek(&mut buf).unwrap(), 2);
    /// # });
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    delegate! {
        /// The local address.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(a.local_addr().unwrap().ip().is_loopback());
        /// # });
        /// ```
        fn local_addr(&self) -> io::Result<SocketAddr>;
        /// The connected peer's address.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(a.peer_addr().is_err()); // not connected
        /// # });
        /// ```
        fn peer_addr(&self) -> io::Result<SocketAddr>;
        /// Sets `SO_BROADCAST`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// a.set_broadcast(true).unwrap();
        /// assert!(a.broadcast().unwrap());
        /// # });
        /// ```
        fn set_broadcast(&self, on: bool) -> io::Result<()>;
        /// Whether `SO_BROADCAST` is set.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(!a.broadcast().unwrap());
        /// # });
        /// ```
        fn broadcast(&self) -> io::Result<bool>;
        /// Sets `IP_MULTICAST_LOOP`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// a.set_multicast_loop_v4(false).unwrap();
        /// assert!(!a.multicast_loop_v4().unwrap());
        /// # });
        /// ```
        fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()>;
        /// Whether `IP_MULTICAST_LOOP` is set.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(a.multicast_loop_v4().unwrap());
        /// # });
        /// ```
        fn multicast_loop_v4(&self) -> io::Result<bool>;
        /// Sets `IP_MULTICAST_TTL`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// a.set_multicast_ttl_v4(4).unwrap();
        /// assert_eq!(a.multicast_ttl_v4().unwrap(), 4);
        /// # });
        /// ```
        fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()>;
        /// The `IP_MULTICAST_TTL`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert_eq!(a.multicast_ttl_v4().unwrap(), 1);
        /// # });
        /// ```
        fn multicast_ttl_v4(&self) -> io::Result<u32>;
        /// Sets `IPV6_MULTICAST_LOOP`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// if let Ok(a) = greenhub::net::UdpSocket::bind("[::1]:0") {
        ///     a.set_multicast_loop_v6(false).unwrap();
        /// }
        /// # });
        /// ```
        fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()>;
        /// Whether `IPV6_MULTICAST_LOOP` is set.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// if let Ok(a) = greenhub::net::UdpSocket::bind("[::1]:0") {
        ///     assert!(a.multicast_loop_v6().unwrap());
        /// }
        /// # });
        /// ```
        fn multicast_loop_v6(&self) -> io::Result<bool>;
        /// Joins an IPv4 multicast group.
        ///
        /// ```no_run
        /// # use std::net::Ipv4Addr;
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        /// a.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 123), &Ipv4Addr::UNSPECIFIED).unwrap();
        /// # });
        /// ```
        fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()>;
        /// Leaves an IPv4 multicast group.
        ///
        /// ```no_run
        /// # use std::net::Ipv4Addr;
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        /// a.leave_multicast_v4(&Ipv4Addr::new(224, 0, 0, 123), &Ipv4Addr::UNSPECIFIED).unwrap();
        /// # });
        /// ```
        fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()>;
        /// Joins an IPv6 multicast group.
        ///
        /// ```no_run
        /// # use std::net::Ipv6Addr;
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("[::]:0").unwrap();
        /// a.join_multicast_v6(&"ff02::123".parse().unwrap(), 0).unwrap();
        /// # });
        /// ```
        fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()>;
        /// Leaves an IPv6 multicast group.
        ///
        /// ```no_run
        /// # use std::net::Ipv6Addr;
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("[::]:0").unwrap();
        /// a.leave_multicast_v6(&"ff02::123".parse().unwrap(), 0).unwrap();
        /// # });
        /// ```
        fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()>;
        /// Sets `IP_TTL`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// a.set_ttl(9).unwrap();
        /// assert_eq!(a.ttl().unwrap(), 9);
        /// # });
        /// ```
        fn set_ttl(&self, ttl: u32) -> io::Result<()>;
        /// The `IP_TTL`.
        ///
        /// ```
        /// # greenhub::run(|| {
        /// let a = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        /// assert!(a.ttl().unwrap() > 0);
        /// # });
        /// ```
        fn ttl(&self) -> io::Result<u32>;
    }
}
