//! The blocking HTTP connection loop of the may and std servers, around the
//! same IO-free protocol code as greenhub's and tokio's servers
//! (`examples/http_common/`, included by path). Unlike those two it arms no
//! header/idle deadlines and does not drain on close: a plain read/write
//! loop, which favours these two servers slightly.

#[path = "../../../examples/http_common/mod.rs"]
#[allow(dead_code, missing_docs)]
mod http_common;

use http_common::{Limits, Next, Session};
use std::io::{Read, Write};

/// Serves one connection until the client closes or the protocol says close.
pub fn serve<S: Read + Write>(mut s: S) {
    let mut session = Session::new(Limits::default());
    loop {
        let next = session.step(false);
        if !session.out().is_empty() {
            if s.write_all(session.out()).is_err() {
                return;
            }
            session.clear_out();
        }
        if let Next::Close(_) = next {
            return;
        }
        match s.read(session.read_buf()) {
            Ok(0) | Err(_) => return,
            Ok(n) => session.filled(n),
        }
    }
}

/// The `--port P` and `--threads T` flags of the HTTP programs.
pub fn flags() -> (u16, usize) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<usize>().expect("a number"))
    };
    (
        value("--port").unwrap_or(0) as u16,
        value("--threads").unwrap_or(1),
    )
}
