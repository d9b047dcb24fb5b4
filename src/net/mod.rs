//! Cooperative networking. So far: name resolution that never stalls a hub
//! (sockets on the hubs' pollers come next).
//!
//! [`lookup_host`] resolves through the runtime's blocking pool
//! ([`blocking::unblock`](crate::blocking::unblock)), since the system
//! resolver (`getaddrinfo`) blocks its thread, sometimes for seconds.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::vec;

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
        host.to_socket_addrs()
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
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)].into_iter());
    }
    let host = host.to_owned();
    crate::blocking::unblock(move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(|it| it.collect::<Vec<_>>().into_iter())
    })
}
