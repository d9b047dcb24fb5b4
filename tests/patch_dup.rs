//! Monkey patching (feature `patch`): an fd's poller registration never
//! outlives its readiness state, whatever `close`, `dup`, `dup2` and fd
//! number reuse do to the fd (greenhub issue 18, point 6).
//!
//! The poller keys a registration by (open file description, fd number) and
//! drops it only when the description is released, so a registration made
//! under a number that then stops naming that description (closed while a
//! dup keeps it open, `dup2` over it, reused by another socket) cannot be
//! taken off by number any more. Each test drives one such sequence and
//! checks the data each socket receives; the freed-state read they used to
//! cause is what valgrind sees (run this binary under
//! `valgrind --error-exitcode=1`).
//!
//! The tests depend on the kernel giving the lowest free fd number, so they
//! run one at a time (`serial`), and each asserts that the number it expects
//! to be reused was.

mod patch_common;

use patch_common::one_hub;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The tests reuse fd numbers: no other test of this binary may open or
/// close fds meanwhile.
fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Long enough for the hub to run the woken greenlets and poll (the tests
/// check data, not timing: a slow machine only makes them slower).
fn settle() {
    greenhub::sleep(Duration::from_millis(30));
}

/// A hooked, blocking `recv` on a raw fd: the data, or the errno.
fn recv_raw(fd: RawFd) -> Result<Vec<u8>, i32> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(buf[..n as usize].to_vec())
    }
}

/// Every datagram `s` receives until a read times out.
fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n) = s.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

fn udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn addr_of(fd: RawFd) -> SocketAddr {
    // SAFETY: `fd` is an open UDP socket; the borrow is forgotten, not
    // closed.
    let s = std::mem::ManuallyDrop::new(unsafe { UdpSocket::from_raw_fd(fd) });
    s.local_addr().unwrap()
}

/// Closes `fd` with the raw syscall: behind the hooks' back (as a crate
/// making raw syscalls, such as rustix's, does).
fn raw_close(fd: RawFd) {
    // SAFETY: closing an fd this test owns.
    assert_eq!(unsafe { libc::syscall(libc::SYS_close, fd) }, 0);
}

fn hooked_close(fd: RawFd) {
    // SAFETY: closing an fd this test owns.
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

fn hooked_dup(fd: RawFd) -> RawFd {
    // SAFETY: `dup` of an fd this test owns.
    let d = unsafe { libc::dup(fd) };
    assert!(d >= 0);
    d
}

/// A greenlet blocked in a hooked `recv` on `x`; returns once it parked on
/// the hub's poller (which registered `x` there).
fn blocked_reader(x: RawFd) -> greenhub::JoinHandle<Result<Vec<u8>, i32>> {
    let reader = greenhub::spawn(move || recv_raw(x));
    settle();
    assert!(!reader.is_finished(), "the reader did not block");
    reader
}

/// Registers `x` with the hub (a reader waits on it) and lets the wait end,
/// so that the registration stays with the fd-table entry alone.
fn register_and_release(x: RawFd, sender: &UdpSocket) {
    let reader = blocked_reader(x);
    sender.send_to(b"zero", addr_of(x)).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), b"zero");
}

/// A greenlet waits on `x`; another closes it (hooked) and a new socket
/// gets the number. The waiter must not go on under the new socket: it
/// used to retry there and register the new description under its old
/// state, which was freed when it returned, with the registration left in
/// the poller.
#[test]
fn close_while_a_greenlet_waits_then_the_number_is_reused() {
    let _one = serial();
    let (reader_got, b_got) = one_hub(|| {
        let x = udp().into_raw_fd();
        let reader = blocked_reader(x);
        hooked_close(x); // wakes the reader
        let b = udp();
        assert_eq!(
            std::os::fd::AsRawFd::as_raw_fd(&b),
            x,
            "the number was not reused"
        );
        settle(); // the reader runs
        let sender = udp();
        let b_addr = b.local_addr().unwrap();
        sender.send_to(b"one", b_addr).unwrap();
        settle();
        sender.send_to(b"two", b_addr).unwrap();
        settle(); // a poll that dispatches the event for b
        let reader_got = reader.join().unwrap();
        (reader_got, drain(&b))
    });
    assert_eq!(reader_got, Err(libc::EBADF), "the closed fd's reader");
    assert_eq!(b_got, [b"one".to_vec(), b"two".to_vec()]);
}

/// As above with `dup2` over the fd a greenlet waits on: the waiter sees
/// the fd closed, and the socket duplicated there keeps all its data.
#[test]
fn dup2_over_an_fd_a_greenlet_waits_on() {
    let _one = serial();
    let (reader_got, c_got) = one_hub(|| {
        let x = udp().into_raw_fd();
        let c = udp();
        let c_addr = c.local_addr().unwrap();
        let reader = blocked_reader(x);
        // SAFETY: both fds are open and owned by this test.
        let r = unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&c), x) };
        assert_eq!(r, x);
        settle(); // the reader runs
        let sender = udp();
        sender.send_to(b"one", c_addr).unwrap();
        settle();
        sender.send_to(b"two", c_addr).unwrap();
        settle();
        let reader_got = reader.join().unwrap();
        let got = drain(&c);
        hooked_close(x);
        (reader_got, got)
    });
    assert_eq!(reader_got, Err(libc::EBADF), "the replaced fd's reader");
    assert_eq!(c_got, [b"one".to_vec(), b"two".to_vec()]);
}

/// The sequence: a registered fd is closed behind the hooks' back
/// while a dup keeps its description open, so its registration stays in the
/// poller; a new socket gets the number. The stale entry's state used to be
/// freed (its deregistration by number failed on the new socket) while the
/// old description, still registered, went on delivering events.
#[test]
fn raw_close_with_a_dup_alive_then_a_new_socket_gets_the_number() {
    let _one = serial();
    let (y_got, b_got) = one_hub(|| {
        let sender = udp();
        let x = udp().into_raw_fd();
        let a_addr = addr_of(x);
        let y = hooked_dup(x);
        register_and_release(x, &sender);
        raw_close(x);
        let b = udp();
        assert_eq!(
            std::os::fd::AsRawFd::as_raw_fd(&b),
            x,
            "the number was not reused"
        );
        sender.send_to(b"one", a_addr).unwrap();
        settle(); // a poll that returns the old registration's event
        sender.send_to(b"two", b.local_addr().unwrap()).unwrap();
        settle();
        let y_got = recv_raw(y);
        hooked_close(y);
        (y_got, drain(&b))
    });
    assert_eq!(y_got.unwrap(), b"one");
    assert_eq!(b_got, [b"two".to_vec()]);
}

/// As above, but the number goes to an fd the hooks did not create (a
/// pipe), which the program then closes through the hook: that dropped the
/// stale entry's state too.
#[test]
fn raw_close_with_a_dup_alive_then_an_untracked_fd_gets_the_number() {
    let _one = serial();
    let y_got = one_hub(|| {
        let sender = udp();
        let x = udp().into_raw_fd();
        let a_addr = addr_of(x);
        let y = hooked_dup(x);
        register_and_release(x, &sender);
        raw_close(x);
        let mut pipe = [0; 2];
        // SAFETY: `pipe` has room for two fds (`pipe` is not hooked).
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        assert_eq!(pipe[0], x, "the number was not reused");
        hooked_close(pipe[0]);
        hooked_close(pipe[1]);
        sender.send_to(b"one", a_addr).unwrap();
        settle();
        let got = recv_raw(y);
        hooked_close(y);
        got
    });
    assert_eq!(y_got.unwrap(), b"one");
}

/// A stale entry (its fd closed behind the hooks' back, a dup alive) whose
/// number now names a greenhub socket registered with the same hub: a
/// hooked `fcntl` on the number must not take the greenhub socket's
/// registration off the poller (a deregistration by number reaches whatever
/// the number names now), and must not free the stale state either.
#[test]
fn stale_entry_does_not_deregister_the_socket_that_took_its_number() {
    let _one = serial();
    let (p_got, y_got) = one_hub(|| {
        let sender = udp();
        let x = udp().into_raw_fd();
        let a_addr = addr_of(x);
        let y = hooked_dup(x);
        register_and_release(x, &sender);
        // O_NONBLOCK for the description (the program's view, shared by
        // the dups): the entry of `x` keeps its registration.
        // SAFETY: F_GETFL/F_SETFL on an open fd.
        unsafe {
            let fl = libc::fcntl(y, libc::F_GETFL);
            assert_eq!(libc::fcntl(y, libc::F_SETFL, fl | libc::O_NONBLOCK), 0);
        }
        raw_close(x);
        let mut pair = [0; 2];
        // SAFETY: `pair` has room for two fds (`socketpair` is not hooked).
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        assert_eq!(pair[0], x, "the number was not reused");
        // SAFETY: both fds are new and owned here.
        let (p, q) = unsafe {
            (
                std::os::unix::net::UnixDatagram::from_raw_fd(pair[0]),
                std::os::unix::net::UnixDatagram::from_raw_fd(pair[1]),
            )
        };
        let p = greenhub::net::unix::UnixDatagram::from(p);
        p.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let p = std::sync::Arc::new(p);
        let recv_p = |p: std::sync::Arc<greenhub::net::unix::UnixDatagram>| {
            greenhub::spawn(move || {
                let mut buf = [0u8; 64];
                p.recv(&mut buf).map(|n| buf[..n].to_vec()).ok()
            })
        };
        // `p` registers with the hub.
        let first = recv_p(p.clone());
        settle();
        q.send(b"before").unwrap();
        let mut p_got = vec![first.join().unwrap()];
        // A hooked `fcntl` on the number, through the stale entry.
        // SAFETY: F_GETFL/F_SETFL on an open fd.
        unsafe {
            let fl = libc::fcntl(x, libc::F_GETFL);
            assert_eq!(libc::fcntl(x, libc::F_SETFL, fl | libc::O_NONBLOCK), 0);
        }
        let second = recv_p(p.clone());
        settle();
        q.send(b"after").unwrap();
        p_got.push(second.join().unwrap());
        drop(p); // hooked close of `x`: the stale entry goes
        sender.send_to(b"one", a_addr).unwrap();
        settle();
        let y_got = recv_raw(y);
        hooked_close(y);
        (p_got, y_got)
    });
    assert_eq!(
        p_got,
        [Some(b"before".to_vec()), Some(b"after".to_vec())],
        "the greenhub socket lost its registration"
    );
    assert_eq!(y_got.unwrap(), b"one");
}

/// The sequences the hooks always handled, kept working: a dup outlives
/// the closed original, and closing a dup leaves the original registered.
#[test]
fn dup_and_close_through_the_hooks_keep_every_fd_receiving() {
    let _one = serial();
    let (y_got, x_got) = one_hub(|| {
        let sender = udp();
        let x = udp().into_raw_fd();
        let a_addr = addr_of(x);
        // Original registered, dup closed.
        let y = hooked_dup(x);
        register_and_release(x, &sender);
        hooked_close(y);
        let reader = blocked_reader(x);
        sender.send_to(b"to x", a_addr).unwrap();
        let x_got = reader.join().unwrap();
        // Dup registered, original closed.
        let y = hooked_dup(x);
        register_and_release(y, &sender);
        hooked_close(x);
        let reader = blocked_reader(y);
        sender.send_to(b"to y", a_addr).unwrap();
        let y_got = reader.join().unwrap();
        hooked_close(y);
        (y_got, x_got)
    });
    assert_eq!(x_got.unwrap(), b"to x");
    assert_eq!(y_got.unwrap(), b"to y");
}
