//! Unix domain sockets: [`UnixStream`], [`UnixListener`] and
//! [`UnixDatagram`], the cooperative twins of `std::os::unix::net`'s types,
//! built like the TCP ones (a non-blocking fd, parked on `WouldBlock`).
//!
//! ```
//! use std::io::{Read, Write};
//! use greenhub::net::unix::UnixStream;
//!
//! greenhub::run(|| {
//!     let (mut a, mut b) = UnixStream::pair().unwrap();
//!     let echo = greenhub::spawn(move || {
//!         let mut buf = [0; 4];
//!         b.read_exact(&mut buf).unwrap(); // parks until `a` writes
//!         b.write_all(&buf).unwrap();
//!     });
//!     a.write_all(b"ping").unwrap();
//!     let mut back = [0; 4];
//!     a.read_exact(&mut back).unwrap();
//!     assert_eq!(&back, b"ping");
//!     echo.join().unwrap();
//! });
//! ```

mod datagram;
mod listener;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use std::os::unix::net::SocketAddr;
pub use stream::UnixStream;

use std::io;
use std::time::Duration;

/// Retries `f` while it reports `WouldBlock` (a unix socket's `connect` to a
/// listener whose backlog is full), sleeping 1 ms doubling to 50 ms between
/// tries: there is no readiness event for "the backlog has room".
pub(crate) fn retry_full_backlog<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}
