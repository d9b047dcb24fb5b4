//! Cooperative networking: std's socket types, whose blocking calls park
//! only the calling greenlet.
//!
//! | std | greenhub |
//! |---|---|
//! | `std::net::TcpListener` | [`TcpListener`] |
//! | `std::net::TcpStream` | [`TcpStream`] |
//! | `std::net::UdpSocket` | [`UdpSocket`] |
//! | `std::os::unix::net::*` | [`unix`]`::{UnixListener, UnixStream, UnixDatagram}` |
//! | `std::net::ToSocketAddrs` | [`ToSocketAddrs`] (same types; look-ups off the hub) |
//!
//! Each socket is non-blocking underneath. A call tries the syscall; if it
//! would block, the greenlet is parked until the poller of its hub reports
//! the socket ready (the socket is registered with that poller the first
//! time a greenlet waits on it; see `io/`). Off a greenlet the same calls
//! block the thread, so the types also work on plain threads.
//!
//! Host names are resolved on the runtime's blocking pool
//! ([`blocking::unblock`](crate::blocking::unblock)), since the system
//! resolver (`getaddrinfo`) blocks its thread, sometimes for seconds.

mod addr;
mod common;
pub(crate) mod sys;
pub(crate) mod tcp_listener;
mod tcp_stream;
mod udp;
pub mod unix;

pub(crate) use addr::addrs;
pub use addr::{ToSocketAddrs, lookup_host, resolve};
pub use tcp_listener::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;
