//! Addresses: [`ToSocketAddrs`], the trait every constructor takes, and
//! name resolution that never stalls a hub ([`lookup_host`], [`resolve`]).
//!
//! std's `ToSocketAddrs` resolves host names with `getaddrinfo` on the
//! calling thread, which can block for seconds; on a greenlet that would stall
//! its whole hub. greenhub's trait is implemented for the same types as
//! std's (so `TcpStream::connect("example.com:80")` compiles unchanged), parses
//! literal addresses in place and sends only real look-ups to the runtime's
//! blocking pool ([`blocking::unblock`](crate::blocking::unblock)).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

/// Types that name one or more socket addresses: greenhub's twin of
/// [`std::net::ToSocketAddrs`], implemented for the same types. Host names
/// are resolved on the blocking pool, so only the calling greenlet waits.
///
/// The trait is sealed: its method is private to greenhub.
///
/// ```
/// use greenhub::net::TcpListener;
///
/// greenhub::run(|| {
///     // Any of these work, as with std:
///     let a = TcpListener::bind("127.0.0.1:0").unwrap();
///     let b = TcpListener::bind(("localhost", 0)).unwrap();
///     let c = TcpListener::bind(a.local_addr().unwrap().ip().to_string() + ":0").unwrap();
///     # drop((a, b, c));
/// });
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

pub(crate) mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The private half of [`ToSocketAddrs`](super::ToSocketAddrs).
    pub trait Resolve {
        /// The addresses, resolved on the blocking pool if need be.
        fn resolve(&self) -> io::Result<Vec<SocketAddr>>;
    }
}

use sealed::Resolve;

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {}
        impl Resolve for $t {
            fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(std::net::ToSocketAddrs::to_socket_addrs(self)?.collect())
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for [SocketAddr] {}
impl Resolve for [SocketAddr] {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {}
impl<const N: usize> Resolve for [SocketAddr; N] {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ToSocketAddrs for str {}
impl Resolve for str {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(lookup_host(self)?.collect())
    }
}

impl ToSocketAddrs for String {}
impl Resolve for String {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Resolve for (&str, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(resolve(self.0, self.1)?.collect())
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Resolve for (String, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(resolve(&self.0, self.1)?.collect())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve()
    }
}

/// Resolves `addr`, failing like std when it names no address at all.
pub(crate) fn addrs<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<Vec<SocketAddr>> {
    let addrs = addr.resolve()?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}

/// Runs `f` on each address in turn until one succeeds, like std's
/// constructors; returns the last error otherwise.
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addrs(addr)? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one address"))
}

/// Resolves `"host:port"` (or a literal `"ip:port"`, `"[v6]:port"`) to
/// socket addresses, like `std::net::ToSocketAddrs` for `str`, but parking
/// only the calling greenlet: the lookup runs on the blocking pool. A
/// literal address is parsed in place, without a lookup. Off a greenlet it
/// resolves on the calling thread.
///
/// ```
/// greenhub::run(|| {
///     let addrs: Vec<_> = greenhub::net::lookup_host("localhost:80").unwrap().collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
///     let lit: Vec<_> = greenhub::net::lookup_host("127.0.0.1:8080").unwrap().collect();
///     assert_eq!(lit, ["127.0.0.1:8080".parse().unwrap()]);
///     assert!(greenhub::net::lookup_host("no port here").is_err());
/// });
/// ```
pub fn lookup_host(host: &str) -> io::Result<vec::IntoIter<SocketAddr>> {
    if let Ok(addr) = host.parse::<SocketAddr>() {
        return Ok(vec![addr].into_iter());
    }
    let host = host.to_owned();
    crate::blocking::unblock(move || {
        std::net::ToSocketAddrs::to_socket_addrs(host.as_str())
            .map(|it| it.collect::<Vec<_>>().into_iter())
    })
}

/// Resolves `host` with `port`, like `(host, port).to_socket_addrs()`, on
/// the blocking pool.
///
/// ```
/// greenhub::run(|| {
///     let addrs: Vec<_> = greenhub::net::resolve("localhost", 443).unwrap().collect();
///     assert!(!addrs.is_empty());
///     assert!(addrs.iter().all(|a| a.port() == 443));
/// });
/// ```
pub fn resolve(host: &str, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)].into_iter());
    }
    let host = host.to_owned();
    crate::blocking::unblock(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(|it| it.collect::<Vec<_>>().into_iter())
    })
}
