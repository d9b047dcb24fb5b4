//! Stack-overflow reports for greenlets.
//!
//! A greenlet that runs off the bottom of its stack touches the guard region
//! below it and gets SIGSEGV (or SIGBUS). std's own handler only recognises the
//! guard page of the *thread's* stack, so without this module the process
//! would die with a bare "Segmentation fault". greenhub installs a handler (on
//! an alternate signal stack, since the faulting stack is unusable) that
//! checks whether the fault address lies in the guard region of the greenlet
//! running on this thread; if so it prints
//!
//! ```text
//! greenlet '<name>' (id N) has overflowed its stack (S KiB)
//! fatal runtime error: stack overflow, aborting
//! ```
//!
//! and aborts, as std does for threads. Any other fault is passed to the
//! handler that was installed before ours (normally std's), or to the default
//! action.
//!
//! The allocator sits below the layer that runs greenlets, so it does not
//! know which greenlet runs on a thread: the hub passes a [`FaultCheck`] to
//! [`install`], which looks at its running greenlet's guard range and calls
//! [`report_and_abort`] on a hit. Everything on that path only reads a
//! thread-local pointer and the greenlet's header and calls `write(2)` and
//! `abort(3)`, all async-signal-safe.

use std::io;
use std::mem::MaybeUninit;
use std::sync::{Once, OnceLock};

static INSTALL: Once = Once::new();
static CHECK: OnceLock<FaultCheck> = OnceLock::new();
static PREV_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
static PREV_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Called by the handler with the fault address: if it lies in the guard of
/// the greenlet running on this thread, reports it with [`report_and_abort`];
/// otherwise returns. Runs in a signal handler: async-signal-safe code only.
pub(crate) type FaultCheck = fn(addr: usize);

/// Installs the process-wide handler (once), with the check that names the
/// greenlet whose stack overflowed.
pub(crate) fn install(check: FaultCheck) {
    // See `loom::Internal`: a wait here blocks the thread.
    let _internal = crate::loom::Internal::enter();
    INSTALL.call_once(|| {
        let _ = CHECK.set(check);
        for (sig, slot) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            // SAFETY: a zeroed sigaction is a valid "no handler" value; we fill
            // in the fields sigaction(2) reads.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: sa_mask is ours to initialise.
            unsafe { libc::sigemptyset(&mut new.sa_mask) };
            let mut old = MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: valid pointers to a sigaction and to space for the old one.
            if unsafe { libc::sigaction(sig, &new, old.as_mut_ptr()) } == 0 {
                // SAFETY: sigaction succeeded and filled `old`.
                let _ = slot.set(unsafe { old.assume_init() });
            }
        }
    });
}

/// An alternate signal stack for the current thread, removed on drop. Hub
/// threads need one so the handler can run while the greenlet's stack is
/// exhausted; std provides one for its threads only when its own handler is
/// installed, so this adds one where none exists.
pub(crate) struct AltStack {
    map: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    pub(crate) fn ensure() -> io::Result<Option<AltStack>> {
        let mut cur = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: querying only (null new stack), into valid memory.
        if unsafe { libc::sigaltstack(std::ptr::null(), cur.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaltstack filled it.
        let cur = unsafe { cur.assume_init() };
        if cur.ss_flags & libc::SS_DISABLE == 0 {
            return Ok(None);
        }
        let page = super::page_size();
        let size = (64 << 10).max(libc::SIGSTKSZ);
        let len = size + page;
        // SAFETY: a fresh private anonymous mapping.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of our own mapping becomes its guard.
        unsafe { libc::mprotect(map, page, libc::PROT_NONE) };
        let st = libc::stack_t {
            // SAFETY: within the mapping.
            ss_sp: unsafe { map.add(page) },
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: `st` describes memory we own for the lifetime of the guard.
        if unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping our own mapping.
            unsafe { libc::munmap(map, len) };
            return Err(err);
        }
        Ok(Some(AltStack { map, len }))
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let st = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the alternate stack before unmapping it; we are
        // not running on it (this is ordinary thread code).
        unsafe {
            libc::sigaltstack(&st, std::ptr::null_mut());
            libc::munmap(self.map, self.len);
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    // `OnceLock::get` is one atomic load: async-signal-safe.
    if let Some(check) = CHECK.get() {
        check(addr);
    }
    let prev = if sig == libc::SIGSEGV {
        PREV_SEGV.get()
    } else {
        PREV_BUS.get()
    };
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed as an
                // SA_SIGINFO handler with this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous handler was installed as a plain handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Not ours and no handler before us: restore the default action
            // and return, so the faulting instruction faults again and the
            // process dies with the usual signal.
            // SAFETY: a zeroed sigaction with SIG_DFL is valid.
            let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
            dfl.sa_sigaction = libc::SIG_DFL;
            // SAFETY: valid pointer; async-signal-safe.
            unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
        }
    }
}

/// Writes the overflow message of greenlet `id` (`usable` bytes of stack) to
/// stderr without allocating, and aborts. Async-signal-safe.
pub(crate) fn report_and_abort(name: Option<&str>, id: u64, usable: usize) -> ! {
    let mut buf = Buf::new();
    buf.push(b"\ngreenlet '");
    buf.push(name.unwrap_or("<unnamed>").as_bytes());
    buf.push(b"' (id ");
    buf.push_num(id);
    buf.push(b") has overflowed its stack (");
    buf.push_num((usable >> 10) as u64);
    buf.push(b" KiB)\nfatal runtime error: stack overflow, aborting\n");
    // SAFETY: writing our buffer to fd 2; async-signal-safe.
    unsafe { libc::write(2, buf.data.as_ptr().cast(), buf.len) };
    // SAFETY: abort is async-signal-safe.
    unsafe { libc::abort() }
}

struct Buf {
    data: [u8; 512],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: [0; 512],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.data.len() - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}
