//! Fault tests: running out of file descriptors or address space gives
//! errors that say which limit was hit, and the runtime keeps working.
//!
//! Each runs in a child process (this test binary re-run as an ignored
//! helper), because it lowers a process-wide limit:
//!
//! - fds: with `RLIMIT_NOFILE` used up (`common::use_up_fds`), building a
//!   runtime, binding and connecting sockets, socket pairs and spawning a
//!   process all return an `io::Error` (no panic, no abort): `Builder::build`
//!   names `RLIMIT_NOFILE`, the others keep the OS's `EMFILE` ("Too many
//!   open files"); everything works again once fds are freed.
//! - address space: with `RLIMIT_AS` (`ulimit -v`) just above what the
//!   process uses, greenlets with large stacks fail to start with an
//!   `io::Error` naming `ulimit -v`, reported by `join`; greenlets that fit
//!   still run.
//!
//! (Stack overflow in a named greenlet: `tests/stack_overflow.rs`; a panic
//! payload whose drop panics: `tests/rt_panic.rs`; `vm.max_map_count`:
//! `tests/stack_limit.rs`. RELIABILITY.md lists them all.)

mod common;

use common::{is_child, run_child};

fn names_fd_limit(e: &std::io::Error) -> bool {
    let msg = e.to_string();
    msg.contains("RLIMIT_NOFILE") || msg.contains("Too many open files")
}

#[test]
fn fd_exhaustion_errors_name_the_limit() {
    let out = run_child("child_fd_exhaustion", &[], 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("FD-LIMITS-OK"), "{stdout}\n{stderr}");
}

#[test]
#[ignore = "run as a child process by fd_exhaustion_errors_name_the_limit"]
fn child_fd_exhaustion() {
    if !is_child("child_fd_exhaustion") {
        return;
    }
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    rt.block_on(|| {
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fillers = common::use_up_fds();
        let mut errors = Vec::new();
        match greenhub::Builder::new().hubs(2).build() {
            Ok(_) => panic!("a runtime was built with no fd free"),
            Err(e) => errors.push(("Builder::build", e)),
        }
        match greenhub::net::TcpListener::bind("127.0.0.1:0") {
            Ok(_) => panic!("bound with no fd free"),
            Err(e) => errors.push(("TcpListener::bind", e)),
        }
        match greenhub::net::TcpStream::connect(addr) {
            Ok(_) => panic!("connected with no fd free"),
            Err(e) => errors.push(("TcpStream::connect", e)),
        }
        match greenhub::net::UdpSocket::bind("127.0.0.1:0") {
            Ok(_) => panic!("bound UDP with no fd free"),
            Err(e) => errors.push(("UdpSocket::bind", e)),
        }
        match greenhub::net::unix::UnixStream::pair() {
            Ok(_) => panic!("a socket pair with no fd free"),
            Err(e) => errors.push(("UnixStream::pair", e)),
        }
        let piped = greenhub::process::Command::new("true")
            .stdout(greenhub::process::Stdio::piped())
            .spawn();
        match piped {
            Ok(_) => panic!("spawned a process with no fd free"),
            Err(e) => errors.push(("Command::spawn", e)),
        }
        for (what, e) in &errors {
            println!("{what}: {e}");
            assert!(
                names_fd_limit(e),
                "{what}: the error does not name the limit: {e}"
            );
        }
        // greenhub's own constructor says which limit; socket and process
        // calls keep the OS error as it is (callers, and the accept back-off,
        // match on `raw_os_error() == EMFILE`).
        assert!(
            errors[0].1.to_string().contains("RLIMIT_NOFILE"),
            "{}",
            errors[0].1
        );
        assert!(
            errors[1..]
                .iter()
                .all(|(_, e)| e.raw_os_error() == Some(libc::EMFILE))
        );
        // Everything works again once fds are free.
        drop(fillers);
        let (a, _b) = greenhub::net::unix::UnixStream::pair().unwrap();
        drop(a);
        let conn = greenhub::net::TcpStream::connect(addr).unwrap();
        let (_served, _) = listener.accept().unwrap();
        drop(conn);
        let st = greenhub::process::Command::new("true").status().unwrap();
        assert!(st.success());
    });
    drop(rt);
    println!("FD-LIMITS-OK");
}

#[test]
fn address_space_exhaustion_names_the_limit() {
    let out = run_child("child_address_space", &[], 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("AS-LIMIT-OK"), "{stdout}\n{stderr}");
}

/// Bytes of address space the process has mapped now.
fn mapped_bytes() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}

#[test]
#[ignore = "run as a child process by address_space_exhaustion_names_the_limit"]
fn child_address_space() {
    if !is_child("child_address_space") {
        return;
    }
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        // Warm up: the default stack class is mapped already.
        greenhub::spawn(|| ()).join().unwrap();
        // 256 MiB more than now: room for small things, not for 64 MiB
        // stacks in slabs.
        let lim = mapped_bytes() + (256 << 20);
        let rl = libc::rlimit {
            rlim_cur: lim,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: a valid rlimit struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
        // Eight 64 MiB stacks at once (each greenlet holds its stack until
        // `go` is set): 512 MiB, over the limit.
        let go = std::sync::Arc::new(greenhub::sync::Event::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let go = go.clone();
                greenhub::greenlet::Builder::new()
                    .stack_size(greenhub::MAX_STACK_SIZE)
                    .spawn(move || go.wait())
                    .unwrap()
            })
            .collect();
        for _ in 0..16 {
            greenhub::yield_now();
        }
        go.set();
        let mut failed = 0;
        for h in handles {
            if let Err(e) = h.join() {
                let io = e
                    .io_error()
                    .unwrap_or_else(|| panic!("not an io error: {e}"));
                println!("big stack: {io}");
                assert!(io.to_string().contains("ulimit -v"), "{io}");
                failed += 1;
            }
        }
        assert!(failed > 0, "no 64 MiB stack failed under RLIMIT_AS");
        // Small greenlets still run on the stacks already mapped.
        let sum: u64 = (0..100u64)
            .map(|i| greenhub::spawn(move || i))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(sum, 4950);
    });
    drop(rt);
    println!("AS-LIMIT-OK");
}
