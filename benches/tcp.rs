//! TCP ping-pong over loopback: one connection, a client task writes 64
//! bytes, the server task echoes them, the client reads them back.
//!
//! One criterion iteration is one **round trip** (two `write`s, two `read`s,
//! each reader parked until the bytes arrive, so two trips through the
//! runtime's IO readiness path: epoll event, wake-up, switch). Lower is
//! better. The timed region covers only the round trips; the connection is
//! set up before. Every run checks the bytes.
//!
//! Benchmarks (group `tcp_pingpong`):
//!
//! - `greenhub/single_threaded`: `greenhub::net` streams, client and server
//!   greenlets on the one hub;
//! - `greenhub/mn`: the same on a 2-hub M:N runtime (the two greenlets may
//!   run on different hubs);
//! - `tokio/current_thread`, `tokio/multi_thread`: `tokio::net` streams with
//!   `AsyncReadExt`/`AsyncWriteExt`, two tasks;
//! - `std/threads`: `std::net` blocking streams on two OS threads.
//!
//! Run with `cargo bench --bench tcp`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const MSG: usize = 64;

fn greenhub_pingpong(rt: &greenhub::Runtime, trips: u64) -> Duration {
    rt.block_on(move || {
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = greenhub::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; MSG];
            while s.read_exact(&mut buf).is_ok() {
                s.write_all(&buf).unwrap();
            }
        });
        let mut c = greenhub::net::TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let msg = [7u8; MSG];
        let mut back = [0u8; MSG];
        let start = Instant::now();
        for _ in 0..trips {
            c.write_all(&msg).unwrap();
            c.read_exact(&mut back).unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(black_box(back), msg);
        drop(c);
        server.join().unwrap();
        elapsed
    })
}

fn tokio_pingpong(rt: &tokio::runtime::Runtime, trips: u64) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; MSG];
            while s.read_exact(&mut buf).await.is_ok() {
                s.write_all(&buf).await.unwrap();
            }
        });
        let client = tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.set_nodelay(true).unwrap();
            let msg = [7u8; MSG];
            let mut back = [0u8; MSG];
            let start = Instant::now();
            for _ in 0..trips {
                c.write_all(&msg).await.unwrap();
                c.read_exact(&mut back).await.unwrap();
            }
            let elapsed = start.elapsed();
            assert_eq!(black_box(back), msg);
            elapsed
        });
        let elapsed = client.await.unwrap();
        server.await.unwrap();
        elapsed
    })
}

fn std_pingpong(trips: u64) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; MSG];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).unwrap();
        }
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    let start = Instant::now();
    for _ in 0..trips {
        c.write_all(&msg).unwrap();
        c.read_exact(&mut back).unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(black_box(back), msg);
    drop(c);
    server.join().unwrap();
    elapsed
}

fn pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("tcp_pingpong");
    let single = greenhub::Builder::new().single_threaded().build().unwrap();
    group.bench_function("greenhub/single_threaded", |b| {
        b.iter_custom(|iters| greenhub_pingpong(&single, iters))
    });
    drop(single);
    let mn = greenhub::Builder::new().hubs(2).build().unwrap();
    group.bench_function("greenhub/mn", |b| {
        b.iter_custom(|iters| greenhub_pingpong(&mn, iters))
    });
    drop(mn);
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    group.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| tokio_pingpong(&ct, iters))
    });
    drop(ct);
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .unwrap();
    group.bench_function("tokio/multi_thread", |b| {
        b.iter_custom(|iters| tokio_pingpong(&mt, iters))
    });
    drop(mt);
    group.bench_function("std/threads", |b| b.iter_custom(std_pingpong));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = pingpong
}
criterion_main!(benches);
