//! HTTP keep-alive server on std threads: one OS thread (64 KiB stack) per
//! connection, `greenhub_compare::http::serve`. Prints `listening on ADDR`.

use std::io::Write;

fn main() {
    let (port, _) = greenhub_compare::http::flags();
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("listening on {}", l.local_addr().unwrap());
    let _ = std::io::stdout().flush();
    for s in l.incoming().flatten() {
        let _ = s.set_nodelay(true);
        let _ = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || greenhub_compare::http::serve(s));
    }
}
