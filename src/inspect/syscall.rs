//! Which system call a blocked hub thread is stuck in, for the blocking
//! monitor: read from `/proc/self/task/<tid>/syscall` (the number and
//! arguments of the call the thread is blocked in), named, and for calls on
//! a file descriptor, what that descriptor is (`/proc/self/fd/<fd>`). A
//! greenlet that blocks its hub is most often in a call greenhub does not
//! make cooperative (a std lock's `futex`, a `read` on a regular file, a C
//! library's own `poll`); naming it tells the user what to replace, where
//! the report could otherwise only guess.
//!
//! Best effort: the file may be unreadable (a hardened kernel, another
//! architecture's numbering), the thread may have moved on between the
//! monitor's two reads, and then the report just has no call.

use std::fmt::Write as _;

/// A description of the system call thread `tid` of this process is
/// blocked in, e.g. `futex (a std or parking_lot lock, condvar, channel or
/// thread::park)` or `read(fd 5: /var/log/app.log, a regular file)`; `None`
/// when the thread is running user code or the kernel does not say.
pub(crate) fn blocked_in(tid: i32) -> Option<String> {
    if tid <= 0 {
        return None;
    }
    let line = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    describe(&line)
}

/// Describes one line of `/proc/<pid>/task/<tid>/syscall`: `running`, `-1
/// sp pc` (blocked, not in a call), or the call's number, six arguments in
/// hex, then the stack and program counters.
fn describe(line: &str) -> Option<String> {
    let mut fields = line.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let args: Vec<u64> = fields
        .take(6)
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap_or(0))
        .collect();
    let name = name_of(nr);
    let mut out = String::new();
    match name {
        Some(n) if FD_CALLS.contains(&n) => {
            let fd = args.first().copied().unwrap_or(0) as i32;
            let _ = write!(out, "{n}(fd {fd}");
            if let Some(what) = fd_kind(fd) {
                let _ = write!(out, ": {what}");
            }
            out.push(')');
        }
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "system call {nr}");
        }
    }
    if let Some(hint) = name.and_then(hint_for) {
        let _ = write!(out, " ({hint})");
    }
    Some(out)
}

/// Calls whose first argument is a file descriptor worth naming.
const FD_CALLS: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "accept",
    "accept4",
    "connect",
    "fsync",
    "fdatasync",
    "flock",
    "fcntl",
    "sendfile",
    "ioctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
];

/// Why a call usually blocks a hub, and what the user can do.
fn hint_for(name: &str) -> Option<&'static str> {
    Some(match name {
        "futex" => "a std or parking_lot lock, condvar, channel or thread::park",
        "nanosleep" | "clock_nanosleep" => "std::thread::sleep or libc sleep",
        "poll" | "ppoll" | "select" | "pselect6" | "epoll_wait" | "epoll_pwait"
        | "epoll_pwait2" => "an event loop or poll outside greenhub",
        "wait4" | "waitid" => "waiting for a child process",
        "openat" | "fsync" | "fdatasync" | "pread64" | "pwrite64" => "file IO",
        _ => return None,
    })
}

/// What `fd` of this process is: a socket, a pipe, a regular file (with its
/// path), or another kind.
fn fd_kind(fd: i32) -> Option<String> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let t = target.to_string_lossy();
    Some(if t.starts_with("socket:") {
        "a socket".to_string()
    } else if t.starts_with("pipe:") {
        "a pipe".to_string()
    } else if t.starts_with("anon_inode:") {
        t.trim_start_matches("anon_inode:").to_string()
    } else if t.starts_with('/') {
        let regular = std::fs::metadata(&*t).map(|m| m.is_file()).unwrap_or(false);
        if regular {
            format!("{t}, a regular file")
        } else {
            t.into_owned()
        }
    } else {
        t.into_owned()
    })
}

/// The name of x86-64 system call `nr`, for the calls that block.
#[cfg(target_arch = "x86_64")]
fn name_of(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        7 => "poll",
        16 => "ioctl",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        35 => "nanosleep",
        40 => "sendfile",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        257 => "openat",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

/// Other architectures: numbers only.
#[cfg(not(target_arch = "x86_64"))]
fn name_of(_nr: i64) -> Option<&'static str> {
    None
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::describe;

    #[test]
    fn names_the_call_and_its_fd() {
        assert_eq!(describe("running"), None);
        assert_eq!(describe("-1 0x7ffd 0x7f00"), None);
        let futex = describe("202 0x55d0 0x80 0x2 0x0 0x0 0x0 0x7ffd 0x7f00").unwrap();
        assert!(
            futex.starts_with("futex (a std or parking_lot lock"),
            "{futex}"
        );
        assert_eq!(
            describe("230 0x0 0x0 0x7ffd 0x7ffd 0x0 0x0 0x7ffd 0x7f00").unwrap(),
            "clock_nanosleep (std::thread::sleep or libc sleep)"
        );
        // fd 0 of the test process: whatever it is, the fd is named.
        let read = describe("0 0x0 0x7ffd 0x1 0x0 0x0 0x0 0x7ffd 0x7f00").unwrap();
        assert!(read.starts_with("read(fd 0"), "{read}");
        assert_eq!(
            describe("999 0x0 0x0 0x0 0x0 0x0 0x0 0x0 0x0").unwrap(),
            "system call 999"
        );
    }
}
