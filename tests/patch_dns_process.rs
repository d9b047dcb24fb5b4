//! Monkey patching (feature `patch`): DNS (`getaddrinfo`, `getnameinfo`)
//! runs on the blocking pool, and `std::process` (`waitpid`/`wait4`/
//! `waitid`, and the pipes of `Command::output` and `Stdio::piped()`) parks
//! only the calling greenlet. Results are compared with the same calls made
//! off the runtime.

mod common;
mod patch_common;

use patch_common::{enable, one_hub};

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Spawns a greenlet that counts 10 ms ticks until `stop` is set.
fn ticker(stop: Arc<AtomicBool>) -> (Arc<AtomicUsize>, greenhub::JoinHandle<()>) {
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let h = greenhub::spawn(move || {
        while !stop.load(SeqCst) {
            greenhub::sleep(Duration::from_millis(10));
            t.fetch_add(1, SeqCst);
        }
    });
    (ticks, h)
}

fn resolve(host: &str) -> BTreeSet<SocketAddr> {
    (host, 80).to_socket_addrs().unwrap().collect()
}

// ---------------------------------------------------------------- DNS

#[test]
fn fifty_greenlets_resolve_localhost_as_std_does_off_the_runtime() {
    let expected = resolve("localhost");
    assert!(!expected.is_empty());
    let got = one_hub(|| {
        let hs: Vec<_> = (0..50)
            .map(|_| greenhub::spawn(|| resolve("localhost")))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(got.len(), 50);
    for g in got {
        assert_eq!(g, expected);
    }
}

/// `getaddrinfo` through libc, returning the code and the addresses.
fn gai(node: Option<&str>, service: Option<&str>, family: i32) -> (i32, Vec<SocketAddr>) {
    let node = node.map(|s| CString::new(s).unwrap());
    let service = service.map(|s| CString::new(s).unwrap());
    // SAFETY: an all-zero addrinfo is valid hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res = std::ptr::null_mut();
    // SAFETY: valid strings or null, valid hints and out-pointer.
    let rc = unsafe {
        libc::getaddrinfo(
            node.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            &hints,
            &mut res,
        )
    };
    let mut out = Vec::new();
    if rc == 0 {
        let mut p = res;
        while !p.is_null() {
            // SAFETY: a node of the list getaddrinfo returned.
            let ai = unsafe { &*p };
            // SAFETY: ai_addr points at ai_addrlen bytes of a sockaddr.
            let addr = unsafe { sockaddr_to_std(ai.ai_addr, ai.ai_addrlen) };
            out.extend(addr);
            p = ai.ai_next;
        }
        // SAFETY: the list getaddrinfo returned, freed once.
        unsafe { libc::freeaddrinfo(res) };
    }
    out.sort();
    (rc, out)
}

/// # Safety
/// `sa` points at `len` bytes of a socket address.
unsafe fn sockaddr_to_std(sa: *const libc::sockaddr, len: libc::socklen_t) -> Option<SocketAddr> {
    // SAFETY: the caller's contract; the family says which struct it is.
    unsafe {
        match (*sa).sa_family as i32 {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                let a = &*sa.cast::<libc::sockaddr_in>();
                Some(SocketAddr::from((
                    u32::from_be(a.sin_addr.s_addr).to_be_bytes(),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                let a = &*sa.cast::<libc::sockaddr_in6>();
                Some(SocketAddr::from((
                    a.sin6_addr.s6_addr,
                    u16::from_be(a.sin6_port),
                )))
            }
            _ => None,
        }
    }
}

/// `getnameinfo` of 127.0.0.1:port through libc: the code, host, service.
fn gni(port: u16, flags: i32, hostlen: usize) -> (i32, String, String) {
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = port.to_be();
    sin.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    let mut host = vec![b'#' as libc::c_char; hostlen.max(1)];
    let mut serv = vec![b'#' as libc::c_char; 64];
    // SAFETY: a valid address of its size, and buffers of the lengths given.
    let rc = unsafe {
        libc::getnameinfo(
            (&raw const sin).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
            host.as_mut_ptr(),
            hostlen as libc::socklen_t,
            serv.as_mut_ptr(),
            serv.len() as libc::socklen_t,
            flags,
        )
    };
    let s = |b: &[libc::c_char]| {
        if rc != 0 {
            return String::new();
        }
        // SAFETY: on success both are NUL-terminated within their length.
        unsafe { CStr::from_ptr(b.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (rc, s(&host), s(&serv))
}

/// The calls the resolver tests make, off or on a greenlet.
fn resolver_calls() -> Vec<String> {
    vec![
        format!("{:?}", gai(Some("localhost"), Some("80"), libc::AF_UNSPEC)),
        format!("{:?}", gai(Some("127.0.0.1"), Some("http"), libc::AF_INET)),
        format!("{:?}", gai(Some("::1"), None, libc::AF_INET6)),
        // EAI_NONAME: neither node nor service.
        format!("{:?}", gai(None, None, libc::AF_UNSPEC)),
        // EAI_FAMILY.
        format!("{:?}", gai(Some("localhost"), None, 12345)),
        // EAI_SERVICE / EAI_NONAME for an unknown service name.
        format!(
            "{:?}",
            gai(Some("localhost"), Some("no-such-svc-zz"), libc::AF_INET)
        ),
        format!("{:?}", gni(8080, 0, 1025)),
        format!(
            "{:?}",
            gni(22, libc::NI_NUMERICHOST | libc::NI_NUMERICSERV, 1025)
        ),
        // EAI_OVERFLOW: a host buffer too small for "127.0.0.1".
        format!("{:?}", gni(22, libc::NI_NUMERICHOST, 4)),
    ]
}

#[test]
fn getaddrinfo_and_getnameinfo_on_greenlets_answer_as_off_the_runtime() {
    enable();
    let expected = resolver_calls();
    println!("off the runtime: {expected:#?}");
    assert!(expected[0].starts_with("(0, ["), "{}", expected[0]);
    assert!(expected[3].starts_with(&format!("({}, ", libc::EAI_NONAME)));
    assert!(expected[4].starts_with(&format!("({}, ", libc::EAI_FAMILY)));
    assert!(expected[8].starts_with(&format!("({}, ", libc::EAI_OVERFLOW)));
    common::in_each_mode("resolver calls", |mode| {
        let hs: Vec<_> = (0..8).map(|_| greenhub::spawn(resolver_calls)).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), resolver_calls_expected(), "{mode}");
        }
    });
}

/// The expected answers, computed off the runtime once per process.
fn resolver_calls_expected() -> Vec<String> {
    static EXPECTED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    EXPECTED
        .get_or_init(|| {
            std::thread::spawn(resolver_calls)
                .join()
                .expect("off-runtime resolver calls")
        })
        .clone()
}

const BLOCKING_LOOKUP_CHILD: &str = "blocking_lookup_child";
/// When the FIFO's writer starts letting the resolver through.
const RELEASE_AFTER: Duration = Duration::from_millis(1500);

/// A lookup that blocks without a network: glibc's DNS backend reads the
/// file named by `HOSTALIASES` for a name without a dot, and opening a FIFO
/// blocks until a writer opens it. A plain thread does so after
/// `RELEASE_AFTER`. The environment variable is set only in a child
/// process (changing the environment of a running multi-threaded test
/// process is unsound).
#[test]
fn a_lookup_that_blocks_parks_only_its_greenlet() {
    let (dir, fifo) = patch_common::hostaliases_fifo("dns");
    let out = common::run_child(BLOCKING_LOOKUP_CHILD, &[("HOSTALIASES", &fifo)], 60);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(out.status.success(), "child failed: {}", out.status);
    assert!(stdout.contains("blocking lookup: ok"), "{stdout}");
}

#[test]
#[ignore = "helper run as a child process by a_lookup_that_blocks_parks_only_its_greenlet"]
fn blocking_lookup_child() {
    if !common::is_child(BLOCKING_LOOKUP_CHILD) {
        return;
    }
    let fifo = std::env::var("HOSTALIASES").expect("HOSTALIASES");
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    let t0 = Instant::now();
    // The FIFO's writer: a plain thread, off the runtime.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(RELEASE_AFTER);
        let c = CString::new(fifo).unwrap();
        while !writer_stop.load(SeqCst) {
            // SAFETY: a valid path; the fd is closed at once.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
            if fd >= 0 {
                // SAFETY: an fd just opened.
                unsafe { libc::close(fd) };
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let host = "zzgreenhubalias"; // no dot: the DNS backend reads HOSTALIASES
    one_hub(move || {
        let tick_stop = Arc::new(AtomicBool::new(false));
        let (ticks, tick_h) = ticker(tick_stop.clone());
        let main = greenhub::spawn(move || {
            let r = (host, 80).to_socket_addrs().map(|a| a.count());
            (r.map_err(|e| e.to_string()), t0.elapsed())
        });
        // A lookup whose greenlet is killed: the kill completes before the
        // lookup does; the pool job finishes later and frees its result.
        let killed = greenhub::spawn(move || {
            let _ = (host, 81).to_socket_addrs();
            greenhub::sleep(Duration::from_millis(1)); // raises the kill
            unreachable!("the kill was lost");
        });
        // A lookup under a greenhub timeout: ETIMEDOUT from the hook.
        let timed = greenhub::spawn(move || {
            let started = Instant::now();
            let mut inner = None;
            let r = greenhub::timeout(Duration::from_millis(100), || {
                inner = Some((host, 82).to_socket_addrs().map(|a| a.count()));
            });
            (r.is_err(), inner, started.elapsed())
        });
        greenhub::sleep(Duration::from_millis(100));
        killed.kill();
        let killed_outcome = killed.join();
        let killed_at = t0.elapsed();
        let (timed_out, inner, timed_took) = timed.join().unwrap();
        let ticks_before = ticks.load(SeqCst);
        let (result, took) = main.join().unwrap();
        let ticks_during = ticks.load(SeqCst);
        tick_stop.store(true, SeqCst);
        tick_h.join().unwrap();
        println!("lookup of {host}: {result:?} after {took:?}; {ticks_during} ticks meanwhile");
        if took < RELEASE_AFTER - Duration::from_millis(100) {
            // This resolver does not read HOSTALIASES (nss-resolve,
            // systemd-resolved, a build without it): nothing blocked.
            println!("blocking lookup: ok (SKIPPED: the resolver did not block on HOSTALIASES)");
            return;
        }
        assert!(killed_outcome.unwrap_err().is_killed());
        assert!(
            killed_at < RELEASE_AFTER,
            "the kill waited for the lookup: {killed_at:?}"
        );
        let inner = inner.expect("the timed lookup returned");
        let e = inner.expect_err("the timed lookup was cut short");
        assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT), "{e}");
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        println!("timeout frame: raised {timed_out}; lookup cut short after {timed_took:?}");
        assert!(timed_took < RELEASE_AFTER);
        // The ticker ran while the lookups were pending (a blocked hub
        // would have let it tick at most once).
        assert!(ticks_before >= 5, "ticks while parked: {ticks_before}");
        assert!(
            ticks_during >= 20,
            "ticks during the lookup: {ticks_during}"
        );
        // Lookups work again once the resolver is let through.
        let off = std::thread::spawn(|| resolve("localhost")).join().unwrap();
        assert_eq!(resolve("localhost"), off);
        println!("blocking lookup: ok");
    });
    stop.store(true, SeqCst);
    writer.join().unwrap();
}

// ---------------------------------------------------- child processes

#[test]
fn twenty_sleep_1_outputs_on_one_hub_overlap() {
    let start = Instant::now();
    let statuses = one_hub(|| {
        let hs: Vec<_> = (0..20)
            .map(|_| greenhub::spawn(|| Command::new("sleep").arg("1").output().unwrap()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let took = start.elapsed();
    println!("20 x `sleep 1` output() on one hub: {took:?}");
    assert_eq!(statuses.len(), 20);
    for out in statuses {
        assert!(out.status.success(), "{:?}", out.status);
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    }
    assert!(took >= Duration::from_secs(1));
    assert!(
        took < Duration::from_secs(5),
        "the children did not overlap: {took:?}"
    );
}

/// The same on two hubs (pinned and M:N): each hub parks its own children's
/// waits.
#[test]
fn twenty_sleep_1_outputs_overlap_on_two_hubs() {
    enable();
    for (mode, builder) in common::mode_builders() {
        if mode == "single" {
            continue; // twenty_sleep_1_outputs_on_one_hub_overlap
        }
        let start = Instant::now();
        let outputs = common::with_deadline("20 x sleep 1", 60, move || {
            builder.build().unwrap().block_on(|| {
                let hs: Vec<_> = (0..20)
                    .map(|_| greenhub::spawn(|| Command::new("sleep").arg("1").output().unwrap()))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        });
        let took = start.elapsed();
        println!("{mode}: 20 x `sleep 1` output() on two hubs: {took:?}");
        assert_eq!(outputs.len(), 20, "{mode}");
        for out in outputs {
            assert!(out.status.success(), "{mode}: {:?}", out.status);
            assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{mode}");
        }
        assert!(took >= Duration::from_secs(1), "{mode}: {took:?}");
        assert!(
            took < Duration::from_secs(5),
            "{mode}: the children did not overlap: {took:?}"
        );
    }
}

#[test]
fn output_has_exact_streams_and_exit_code() {
    enable();
    common::in_each_mode("sh output", |mode| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                greenhub::spawn(|| {
                    Command::new("sh")
                        .args(["-c", "echo out; echo err >&2; exit 3"])
                        .output()
                        .unwrap()
                })
            })
            .collect();
        for h in hs {
            let out = h.join().unwrap();
            assert_eq!(out.stdout, b"out\n", "{mode}");
            assert_eq!(out.stderr, b"err\n", "{mode}");
            assert_eq!(out.status.code(), Some(3), "{mode}");
        }
        // Only stdout piped: std reads it with a blocking read_to_end.
        let out = Command::new("sh")
            .args(["-c", "sleep 0.2; echo late"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"late\n", "{mode}");
        assert!(out.status.success());
    });
}

#[test]
fn a_ticker_keeps_ticking_while_a_child_runs() {
    one_hub(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let (ticks, h) = ticker(stop.clone());
        let status = Command::new("sleep").arg("0.5").status().unwrap();
        let during = ticks.load(SeqCst);
        let out = Command::new("sh")
            .args(["-c", "sleep 0.5; echo done"])
            .output()
            .unwrap();
        let during_output = ticks.load(SeqCst) - during;
        stop.store(true, SeqCst);
        h.join().unwrap();
        println!("ticks during status(): {during}; during output(): {during_output}");
        assert!(status.success());
        assert_eq!(out.stdout, b"done\n");
        // 50 expected each; a blocked hub allows at most one.
        assert!(during >= 10, "{during}");
        assert!(during_output >= 10, "{during_output}");
    });
}

/// A child's stdin and stdout both piped, each driven by a greenlet of the
/// same hub: 1 MiB through `cat`. With blocking pipe calls the writer fills
/// the pipe and blocks the hub, and the reader never runs.
#[test]
fn piped_stdin_and_stdout_driven_by_two_greenlets_of_one_hub() {
    enable();
    common::in_each_mode("cat roundtrip", |mode| {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = greenhub::spawn(move || {
            stdin.write_all(&sent).unwrap();
            // Dropping stdin closes it: cat sees EOF.
        });
        let reader = greenhub::spawn(move || {
            let mut got = Vec::new();
            stdout.read_to_end(&mut got).unwrap();
            got
        });
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert!(child.wait().unwrap().success(), "{mode}");
        assert_eq!(got.len(), data.len(), "{mode}");
        assert!(got == data, "{mode}: the bytes differ");
    });
}

#[test]
fn kill_of_a_greenlet_blocked_in_child_wait_completes_and_leaves_the_child() {
    let (outcome, pid, took) = one_hub(|| {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let h = greenhub::spawn(move || {
            let mut child = child;
            let e = child.wait().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
            greenhub::yield_now(); // raises the kill
            unreachable!("the kill was lost");
        });
        greenhub::sleep(Duration::from_millis(100));
        let start = Instant::now();
        h.kill();
        let outcome = h.join();
        (outcome, pid, start.elapsed())
    });
    assert!(outcome.unwrap_err().is_killed());
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The child was left running, still ours to reap: no zombie is left
    // once we kill it and wait.
    let mut status = 0;
    // SAFETY: a wait with WNOHANG for our own child into a local.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }, 0);
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let reaped = one_hub(move || {
        let mut status = 0;
        // SAFETY: a blocking wait for our own child into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        (r, status)
    });
    assert_eq!(reaped.0, pid);
    assert!(libc::WIFSIGNALED(reaped.1));
    assert_eq!(libc::WTERMSIG(reaped.1), libc::SIGKILL);
}

#[test]
fn timeout_around_child_wait_gives_etimedout_and_the_child_can_be_waited_again() {
    one_hub(|| {
        let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
        let mut inner = None;
        let r = greenhub::timeout(Duration::from_millis(50), || {
            inner = Some(child.wait());
        });
        let e = inner.expect("wait returned").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
        println!("timeout frame raised: {}", r.is_err());
        // Not reaped behind our back: waiting again gets the status.
        assert!(child.wait().unwrap().success());
    });
}

/// `wait4`, `waitid` (P_PID and P_PIDFD), `waitpid` on a process group
/// (the polling path), WNOHANG and ECHILD, on greenlets, with a ticker.
#[test]
fn raw_wait_calls_on_a_greenlet() {
    one_hub(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let (ticks, h) = ticker(stop.clone());
        let spawn = |code: i32| {
            Command::new("sh")
                .args(["-c", &format!("sleep 0.2; exit {code}")])
                .process_group(0)
                .spawn()
                .unwrap()
                .id() as libc::pid_t
        };

        // WNOHANG passes through: 0 while the child runs.
        let pid = spawn(5);
        let mut status = 0;
        // SAFETY: waits for our own child into locals.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }, 0);
        // SAFETY: an all-zero rusage is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
        assert_eq!(libc::WEXITSTATUS(status), 5);

        // waitid(P_PID).
        let pid = spawn(6);
        // SAFETY: an all-zero siginfo is valid; waits for our own child.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED) };
        assert_eq!(r, 0);
        // SAFETY: filled for a SIGCHLD.
        assert_eq!(unsafe { (info.si_pid(), info.si_status()) }, (pid, 6));

        // waitid(P_PIDFD), as std's `Child` with a pidfd waits.
        let pid = spawn(7);
        // SAFETY: pidfd_open of our own child; checked.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd >= 0 {
            // SAFETY: as above.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: as above; P_PIDFD is 3.
            let r = unsafe { libc::waitid(3, pidfd as libc::id_t, &mut info, libc::WEXITED) };
            assert_eq!(r, 0);
            // SAFETY: filled for a SIGCHLD.
            assert_eq!(unsafe { (info.si_pid(), info.si_status()) }, (pid, 7));
            // SAFETY: our pidfd, closed once.
            unsafe { libc::close(pidfd) };
        } else {
            // SAFETY: a blocking wait for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        }

        // Any child of a process group: the polling path.
        let pid = spawn(8);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::waitpid(-pid, &mut status, 0) }, pid);
        assert_eq!(libc::WEXITSTATUS(status), 8);

        // Not our child: ECHILD at once, as unpatched.
        // SAFETY: a wait into a local.
        assert_eq!(unsafe { libc::waitpid(1, &mut status, 0) }, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ECHILD)
        );

        let during = ticks.load(SeqCst);
        stop.store(true, SeqCst);
        h.join().unwrap();
        println!("ticks during four 0.2 s children: {during}");
        assert!(during >= 20, "{during}");
    });
}

#[test]
fn status_off_the_runtime_is_unchanged() {
    enable();
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 3"])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.stdout.as_slice(),
            out.stderr.as_slice(),
            out.status.code()
        ),
        (&b"out\n"[..], &b"err\n"[..], Some(3))
    );
    let status = Command::new("sh")
        .args(["-c", "kill -9 $$"])
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}
