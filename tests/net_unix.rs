//! Unix domain sockets: stream echo with many concurrent clients, datagrams,
//! timeouts and shutdown, in single-threaded and M:N mode.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::Duration;

use common::in_each_mode;
use greenhub::net::unix::{UnixDatagram, UnixListener, UnixStream};

fn sock_path(tag: &str, mode: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("greenhub-{tag}-{mode}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_echo_with_300_clients() {
    in_each_mode("unix echo", |mode| {
        const N: usize = 300;
        let path = sock_path("echo", mode);
        let listener = UnixListener::bind(&path).unwrap();
        let server = greenhub::spawn(move || {
            let mut hs = Vec::new();
            for conn in listener.incoming().take(N) {
                let mut s = conn.unwrap();
                hs.push(greenhub::spawn(move || {
                    let mut data = Vec::new();
                    s.read_to_end(&mut data).unwrap();
                    s.write_all(&data).unwrap();
                    data.len()
                }));
            }
            hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        let clients: Vec<_> = (0..N)
            .map(|i| {
                let path = path.clone();
                greenhub::spawn(move || {
                    let mut s = UnixStream::connect(&path).unwrap();
                    let data: Vec<u8> = (0..(i * 97 % 20_000)).map(|k| (k ^ i) as u8).collect();
                    s.write_all(&data).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).unwrap();
                    assert_eq!(back, data);
                    data.len()
                })
            })
            .collect();
        let sent: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(server.join().unwrap(), sent);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn unix_stream_halves_in_two_greenlets() {
    in_each_mode("unix halves", |_| {
        let (a, b) = UnixStream::pair().unwrap();
        let a2 = a.try_clone().unwrap();
        // One greenlet writes 1 MiB through `a` while another reads the echo
        // from `a2`; `b` echoes.
        let echo = greenhub::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut n_total = 0;
            loop {
                let n = (&b).read(&mut buf).unwrap();
                if n == 0 {
                    return n_total;
                }
                (&b).write_all(&buf[..n]).unwrap();
                n_total += n;
            }
        });
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let reader = greenhub::spawn(move || {
            let mut back = vec![0u8; expect.len()];
            (&a2).read_exact(&mut back).unwrap();
            assert_eq!(back, expect);
        });
        (&a).write_all(&data).unwrap();
        reader.join().unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(echo.join().unwrap(), data.len());
    });
}

#[test]
fn unix_datagrams_and_timeouts() {
    in_each_mode("unix dgram", |mode| {
        let path = sock_path("dgram", mode);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let err = server.recv_from(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        server.set_read_timeout(None).unwrap();
        let rx = greenhub::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..50 {
                let mut buf = [0u8; 8];
                let n = server.recv(&mut buf).unwrap();
                got.push(buf[..n].to_vec());
            }
            got
        });
        let client = UnixDatagram::unbound().unwrap();
        for i in 0..50u32 {
            client.send_to(&i.to_le_bytes(), &path).unwrap();
        }
        let got = rx.join().unwrap();
        let want: Vec<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
        assert_eq!(got, want);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn unix_read_timeout_and_plain_threads() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(
        a.read(&mut [0; 4]).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    let t = std::thread::spawn(move || {
        let mut b = b;
        b.write_all(b"thread").unwrap();
    });
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = String::new();
    a.read_to_string(&mut s).unwrap();
    assert_eq!(s, "thread");
    t.join().unwrap();
}
