//! The resolver hooks: `getaddrinfo` (std's `ToSocketAddrs` with a host
//! name, and every crate that resolves through it) and `getnameinfo`.
//!
//! On a greenlet, with patching enabled, the real function runs on the
//! runtime's blocking pool and the greenlet parks until it returns; the
//! pool's size ([`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads))
//! caps how many lookups run at once. Off a greenlet (plain threads, the
//! pool itself, greenhub's own `net::lookup_host`), inside `no_switch`, and
//! when the pool takes no more work (the runtime shutting down), the real
//! function runs on the calling thread, as unpatched.
//!
//! The pool never sees the caller's memory: the node and service strings,
//! the hints and the socket address are copied into owned values first, and
//! `getnameinfo` writes into owned buffers, copied to the caller's only
//! when the caller is still waiting. The `addrinfo` list `getaddrinfo`
//! returns is handed to the caller in the same way; if the caller was
//! killed, or its `greenhub::timeout` expired, while the lookup ran, the
//! lookup runs to completion on its pool thread and its list is freed there
//! (`freeaddrinfo`), never leaked nor handed to anyone.
//!
//! Results and errors are the real function's (the `EAI_*` codes, with
//! `errno` for `EAI_SYSTEM`). A wait cut short by a kill or an expired
//! `timeout` frame returns `EAI_SYSTEM` with `errno` `ECANCELED` or
//! `ETIMEDOUT` (std reports an `io::Error` of that errno).

use std::ffi::{CStr, CString, c_char};
use std::panic::{self, AssertUnwindSafe};

use libc::{addrinfo, c_int, sockaddr, sockaddr_storage, socklen_t};

use super::emul::{self, errno, set_errno};
use super::real;
use crate::hub::context;

/// Whether the caller's lookups are to be offloaded.
fn cooperative() -> bool {
    super::enabled() && emul::on_greenlet()
}

/// How an offloaded call ended.
pub(crate) enum Offloaded<T> {
    /// It returned `T`, and the caller was still waiting.
    Done(T),
    /// The wait was cut short: this errno (the job still runs to completion
    /// and drops its value on the pool thread).
    Interrupted(c_int),
    /// No pool took it: run the call on this thread.
    NoPool,
}

/// Runs `f` on the blocking pool of the calling greenlet's runtime and parks
/// until it returns, without ever unwinding (see [`Offloaded`]).
pub(crate) fn offload<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Offloaded<T> {
    let Some(hub) = context::hub() else {
        return Offloaded::NoPool;
    };
    let (tx, rx) = crate::channel::bounded(1);
    let job = Box::new(move || {
        // Nothing here panics; if it did, the caller sees `EAI_SYSTEM`.
        if let Ok(value) = panic::catch_unwind(AssertUnwindSafe(f)) {
            // The caller may be gone (killed, timed out): the value is then
            // dropped here, or with the channel, never handed out.
            let _ = tx.send(value);
        }
    });
    if hub.shared.blocking.submit(job).is_err() {
        return Offloaded::NoPool;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| rx.recv())) {
        Ok(Ok(value)) => Offloaded::Done(value),
        Ok(Err(_)) => Offloaded::Interrupted(libc::EIO),
        Err(payload) => Offloaded::Interrupted(emul::payload_errno(&*payload)),
    }
}

/// An `addrinfo` list from the real `getaddrinfo`, freed when dropped
/// unless [`AddrInfoList::into_raw`] hands it out.
struct AddrInfoList(*mut addrinfo);

// SAFETY: the list is plain heap memory owned by whoever holds this value;
// glibc's `freeaddrinfo` may free it on any thread.
unsafe impl Send for AddrInfoList {}

impl AddrInfoList {
    fn into_raw(self) -> *mut addrinfo {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for AddrInfoList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list the real getaddrinfo returned, not handed out,
            // freed once.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// The fields of a hints `addrinfo` that `getaddrinfo` reads (the others
/// must be zero or null).
#[derive(Clone, Copy)]
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

impl Hints {
    fn to_addrinfo(self) -> addrinfo {
        // SAFETY: an all-zero addrinfo (null pointers) is a valid value.
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        h.ai_flags = self.flags;
        h.ai_family = self.family;
        h.ai_socktype = self.socktype;
        h.ai_protocol = self.protocol;
        h
    }
}

/// A copy of a nullable C string.
///
/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn owned(s: *const c_char) -> Option<CString> {
    // SAFETY: the caller's contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_owned())
}

fn ptr_of(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// # Safety
/// As `getaddrinfo(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    // SAFETY: (both calls) the caller's arguments, as given.
    let direct = || unsafe { real::getaddrinfo(node, service, hints, res) };
    if res.is_null() || !cooperative() {
        return direct();
    }
    // SAFETY: non-null strings are NUL-terminated, a non-null `hints`
    // points at an addrinfo (the caller's contract); all are copied.
    let (node_c, service_c) = unsafe { (owned(node), owned(service)) };
    // SAFETY: as above.
    let hints_c = unsafe { hints.as_ref() }.map(|h| Hints {
        flags: h.ai_flags,
        family: h.ai_family,
        socktype: h.ai_socktype,
        protocol: h.ai_protocol,
    });
    let lookup = move || {
        let h = hints_c.map(Hints::to_addrinfo);
        let mut list = std::ptr::null_mut();
        // SAFETY: owned strings and hints that live through the call, and
        // a local out-pointer.
        let rc = unsafe {
            real::getaddrinfo(
                ptr_of(&node_c),
                ptr_of(&service_c),
                h.as_ref()
                    .map_or(std::ptr::null(), |h| h as *const addrinfo),
                &mut list,
            )
        };
        let err = errno();
        // On failure `list` is not set (null): nothing to free.
        let list = AddrInfoList(if rc == 0 { list } else { std::ptr::null_mut() });
        (rc, err, list)
    };
    match offload(lookup) {
        Offloaded::Done((rc, err, list)) => {
            if rc == 0 {
                // SAFETY: `res` is non-null and writable (the caller's
                // contract); the list is now the caller's to free.
                unsafe { res.write(list.into_raw()) };
            } else {
                set_errno(err);
            }
            rc
        }
        Offloaded::Interrupted(e) => {
            set_errno(e);
            libc::EAI_SYSTEM
        }
        Offloaded::NoPool => direct(),
    }
}

/// The longest host or service buffer passed to the pool; names are far
/// shorter (`NI_MAXHOST` is 1025), so a larger claimed size changes nothing.
const MAX_NAME_BUF: usize = 64 * 1024;

/// # Safety
/// As `getnameinfo(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getnameinfo(
    sa: *const sockaddr,
    salen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: (both calls) the caller's arguments, as given.
    let direct = || unsafe { real::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags) };
    if sa.is_null() || salen as usize > size_of::<sockaddr_storage>() || !cooperative() {
        return direct();
    }
    // SAFETY: an all-zero sockaddr_storage is valid; `sa` points at `salen`
    // readable bytes (the caller's contract), no more than it holds.
    let addr = unsafe {
        let mut a: sockaddr_storage = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(sa.cast::<u8>(), (&raw mut a).cast::<u8>(), salen as usize);
        a
    };
    let buf = |p: *mut c_char, len: socklen_t| {
        (!p.is_null() && len > 0).then(|| vec![0u8; (len as usize).min(MAX_NAME_BUF)])
    };
    let (mut host_b, mut serv_b) = (buf(host, hostlen), buf(serv, servlen));
    let lookup = move || {
        let out = |b: &mut Option<Vec<u8>>| match b {
            Some(v) => (v.as_mut_ptr().cast::<c_char>(), v.len() as socklen_t),
            None => (std::ptr::null_mut(), 0),
        };
        let ((hp, hl), (sp, sl)) = (out(&mut host_b), out(&mut serv_b));
        // SAFETY: our copy of the address and our buffers of the lengths
        // given, all alive through the call.
        let rc =
            unsafe { real::getnameinfo((&raw const addr).cast(), salen, hp, hl, sp, sl, flags) };
        (rc, errno(), host_b, serv_b)
    };
    match offload(lookup) {
        Offloaded::Done((rc, err, host_b, serv_b)) => {
            if rc != 0 {
                set_errno(err);
                return rc;
            }
            for (src, dst) in [(host_b, host), (serv_b, serv)] {
                if let Some(src) = src {
                    // The string and its NUL, as the real function wrote it.
                    let n = src
                        .iter()
                        .position(|&c| c == 0)
                        .map_or(src.len(), |i| i + 1);
                    // SAFETY: `dst` has room for its stated length (the
                    // caller's contract), and `n` is no more than that.
                    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.cast::<u8>(), n) };
                }
            }
            0
        }
        Offloaded::Interrupted(e) => {
            set_errno(e);
            libc::EAI_SYSTEM
        }
        Offloaded::NoPool => direct(),
    }
}
