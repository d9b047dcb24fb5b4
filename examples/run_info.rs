//! Seeing inside a running server: the run-info dump, the metrics table and
//! a blocking report.
//!
//! Runs an echo `StreamServer` on two hubs, 20 clients that keep their
//! connections open (so their handlers are parked on socket reads), a
//! greenlet waiting on a channel, a sleeper, and one badly behaved greenlet
//! that calls `std::thread::sleep` (which blocks its hub). Then prints what
//! `Handle::run_info` and `Handle::metrics` see, as an operator would on
//! `kill -QUIT` (see `Builder::run_info_on_signal`).
//!
//! ```text
//! cargo run --example run_info
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

fn main() {
    let rt = greenhub::Builder::new()
        .hubs(2)
        .max_blocking_time(Some(Duration::from_millis(50)))
        .on_blocking(|r| eprintln!("[monitor] {r}"))
        .run_info_on_signal(libc::SIGQUIT)
        .build()
        .expect("runtime");
    rt.block_on(|| {
        let server = StreamServer::bind("127.0.0.1:0")
            .expect("bind")
            .serve(|mut conn: TcpStream, _peer| {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })
            .expect("serve");
        let addr = server.local_addr();

        // Clients that send one line, read it back, then stay connected.
        let (done_tx, done_rx) = greenhub::channel::unbounded::<()>();
        let mut clients = Vec::new();
        for i in 0..20 {
            let done = done_rx.clone();
            let h = greenhub::greenlet::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.write_all(b"hello\n").unwrap();
                    let mut back = [0u8; 6];
                    s.read_exact(&mut back).unwrap();
                    let _ = done.recv(); // parked on a channel until the end
                })
                .unwrap();
            clients.push(h);
        }
        let sleeper = greenhub::greenlet::Builder::new()
            .name("sleeper".into())
            .spawn(|| greenhub::sleep(Duration::from_secs(5)))
            .unwrap();
        // A greenlet that blocks its hub: the monitor reports it.
        let hog = greenhub::greenlet::Builder::new()
            .name("hog".into())
            .spawn(|| std::thread::sleep(Duration::from_millis(200)))
            .unwrap();
        hog.join().unwrap();
        greenhub::sleep(Duration::from_millis(100));

        let handle = greenhub::Handle::current();
        println!("{}", handle.run_info());
        println!("{}", handle.metrics());

        drop(done_tx);
        for c in clients {
            c.join().unwrap();
        }
        sleeper.kill();
        let _ = sleeper.join();
        let report = server.stop(Duration::from_secs(1));
        println!("server stopped: {report:?}");
    });
}
