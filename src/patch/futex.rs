//! The futex hook: greenhub's definition of libc's `syscall`, through which
//! std (`Mutex`, `RwLock`, `Condvar`, `Once`, `thread::park`, and so
//! `mpsc`) and `parking_lot` reach the kernel's `futex(2)`. (Waits on a hub
//! thread's std parker follow the protocol of `parker.rs`, on this table.) A futex wait on
//! a greenlet parks only the greenlet, in a process-wide table of waiters
//! keyed by address; a wake from any thread reaches those greenlets first,
//! then the kernel's waiters (OS threads). Every other system call number is
//! passed to glibc's `syscall` unchanged.
//!
//! # The protocol (futex(2)'s contract)
//!
//! - **Wait** (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, private): under the lock
//!   of the address's bucket, load the futex word; if it differs from the
//!   expected value fail with `EAGAIN`, else link a node (on the greenlet's
//!   stack) and park. Woken: return 0; deadline passed: `ETIMEDOUT`.
//! - **Wake** (`FUTEX_WAKE`, `FUTEX_WAKE_BITSET`, private): under the same
//!   lock, unlink up to `n` nodes of that address whose bitset matches, and
//!   wake them after the lock is released; then ask the kernel to wake the
//!   rest (`n` minus those) among OS threads sleeping there. Returns the sum.
//!
//! No wake-up is lost: a waker changes the word *before* it calls wake, and
//! takes the bucket lock after; a waiter checks the word and links itself
//! under that lock. So either the waiter's check sees the new value
//! (`EAGAIN`), or it is linked before the waker looks. The waker skips the
//! table while it is empty (the common case: no greenlet waits), reading a
//! counter that waiters raise before their check, with a SeqCst fence on
//! both sides (Dekker's pattern: the waiter's check sees the new word or the
//! waker sees the raised count). Spurious wake-ups are allowed by the
//! contract (a kill's wake-up, a requeue turned into a wake): the caller
//! re-checks its condition, as it must for the kernel's. The table and
//! these steps are `table.rs`, which the loom models of
//! `tests/loom_futex.rs` check.
//!
//! # When a wait parks the greenlet
//!
//! Only when all of these hold; otherwise it goes to the kernel and blocks
//! the thread, as unpatched:
//! - patching is enabled and the caller is a greenlet outside `no_switch`;
//! - the operation is private (`FUTEX_PRIVATE_FLAG`: std and `parking_lot`
//!   always use it). A shared futex may be woken from another process,
//!   which only the kernel can do;
//! - the caller is not inside greenhub's own code (`loom::Internal`, taken
//!   around greenhub's std lock acquisitions and one-time initialisations);
//! - the futex word is not in the calling thread's static thread-local
//!   storage. That is where `parking_lot` keeps each thread's parker (its
//!   `ThreadData`, one per OS thread): two greenlets of one thread parked in
//!   `parking_lot` at once would link the same `ThreadData` twice into its
//!   wait queue and corrupt it. So `parking_lot` (and with it every lock of
//!   greenhub's own scheduler, and `crossbeam`'s `Parker`-free paths that
//!   use it) keeps blocking the thread;
//! - the kernel accepts the address (a zero-timeout probe: a bad pointer
//!   gets `EFAULT`/`EINVAL` as from the kernel, never a fault here).
//!
//! This rule is complete for greenhub's internals: greenhub's own locks are
//! `parking_lot` (`loom::Mutex`, dump, signals, servers) or the loom shim's
//! spin locks (no futex at all), except the std locks and `OnceLock`s
//! listed at `loom::Internal`'s call sites; the hub's own code (between
//! greenlets) and plain threads are not greenlets.
//!
//! # Kills and timeouts
//!
//! std and `parking_lot` retry an interrupted futex wait (`EINTR`, or a
//! return without the word changing) at once, so an error return would only
//! spin. A futex wait therefore ignores `greenhub::timeout` frames (they fire
//! at the greenlet's next greenhub blocking point) and, for a kill, waits up
//! to [`KILL_GRACE`] more for its wake-up (a lock held briefly is released,
//! and the greenlet unwinds properly at its next blocking point). If none
//! comes, the greenlet is **abandoned**: it leaves the table, is never
//! resumed, its stack is leaked (never freed, so nothing it lent out
//! dangles) and its joiners get `Killed`. Its destructors never run: what it
//! held stays held.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libc::{c_int, c_long, timespec};

use super::emul::{on_greenlet, set_errno};
use super::real;
use super::table::{Node, Parked, Table, WakeUp};
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::task::RawTask;
use crate::greenlet::wait::{Wake, park_uninterruptible};
use crate::greenlet::waiter::Waiter;
use crate::hub::context;

/// How long a killed greenlet's futex wait still waits for its wake-up
/// before the greenlet is abandoned (see the module docs).
pub(crate) const KILL_GRACE: Duration = Duration::from_millis(500);

/// The hook's table of parked greenlets (`table.rs` has its protocol).
pub(super) static TABLE: Table<Waiter> = Table::new();

impl WakeUp for Waiter {
    fn wake_up(self) {
        self.wake();
    }
}

/// Greenhub's `syscall`: `SYS_futex` is handled here, everything else goes
/// to glibc's `syscall` with the same six arguments.
///
/// # Safety
///
/// As `syscall(2)` for the call `n`.
//
// ABI: C's `long syscall(long number, ...)` is variadic, which stable Rust
// cannot define. On x86-64 SysV a variadic callee finds its integer
// arguments where a non-variadic one with `long` parameters does: the first
// six in rdi, rsi, rdx, rcx, r8, r9, the seventh at 8(%rsp) (the count in
// al concerns vector registers only, which `syscall` never takes). A caller
// that passes fewer arguments leaves the unused registers and stack slot
// holding whatever they held; like glibc's own `syscall`, which always
// loads all six, we read them as plain integers and use only those the
// system call takes (passing the rest on untouched). Hence the gate on the
// target.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    super::probe();
    if n == libc::SYS_futex {
        // SAFETY: the caller's futex arguments, as given.
        return unsafe { futex(a1, a2, a3, a4, a5, a6) };
    }
    // SAFETY: the caller's arguments, as given.
    unsafe { real::syscall6(n, a1, a2, a3, a4, a5, a6) }
}

/// # Safety
///
/// As `futex(2)` with these arguments.
unsafe fn futex(
    uaddr: c_long,
    op: c_long,
    val: c_long,
    a4: c_long,
    uaddr2: c_long,
    val3: c_long,
) -> c_long {
    let forward = || {
        // SAFETY: the caller's arguments, as given.
        unsafe { real::syscall6(libc::SYS_futex, uaddr, op, val, a4, uaddr2, val3) }
    };
    let op32 = op as c_int;
    if op32 & libc::FUTEX_PRIVATE_FLAG == 0 {
        return forward();
    }
    let cmd = op32 & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    let addr = uaddr as usize;
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAIT {
                u32::MAX
            } else {
                val3 as u32
            };
            // `u32::MAX` is what std's thread parker waits for (`PARKED`,
            // -1). That word belongs to the OS thread, which every greenlet
            // of a hub shares, so it needs the protocol of `parker.rs`. A
            // wait for that value on any other word (a `RwLock` with every
            // bit set) blocks its thread, as unpatched.
            if val as u32 == u32::MAX && bitset != 0 && cooperative(addr) {
                // SAFETY: the caller's timeout argument, as the kernel reads it.
                let deadline = match unsafe { deadline_of(cmd, op32, a4 as *const timespec) } {
                    Ok(d) => d,
                    Err(e) => return fail(e),
                };
                if let Some(r) = super::parker::wait(addr, deadline) {
                    return match r {
                        Ok(()) => 0,
                        Err(e) => fail(e),
                    };
                }
            }
            if bitset == 0 || val as u32 == u32::MAX || !cooperative(addr) {
                return forward();
            }
            // SAFETY: the caller's timeout argument, as the kernel reads it.
            let deadline = match unsafe { deadline_of(cmd, op32, a4 as *const timespec) } {
                Ok(d) => d,
                Err(e) => return fail(e),
            };
            // The kernel checks the address (and the value) for us, without
            // waiting.
            let zero = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let probe_op = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as c_long;
            // SAFETY: a private FUTEX_WAIT with a zero timeout on the
            // caller's address; the kernel validates it.
            let r = unsafe {
                real::syscall6(
                    libc::SYS_futex,
                    uaddr,
                    probe_op,
                    val,
                    &raw const zero as c_long,
                    0,
                    0,
                )
            };
            if r == 0 {
                // Woken already (a wake-up raced with the probe): spurious
                // for the caller, who re-checks.
                return 0;
            }
            if super::emul::errno() != libc::ETIMEDOUT {
                return -1; // EAGAIN, EFAULT, EINVAL: as from the kernel
            }
            match wait(addr, val as u32, bitset, deadline) {
                Ok(()) => 0,
                Err(e) => fail(e),
            }
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            let bitset = if cmd == libc::FUTEX_WAKE {
                u32::MAX
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return forward(); // EINVAL
            }
            // The kernel wakes at least one waiter whatever the count.
            let n = (val as c_int).max(1) as usize;
            let ours = wake(addr, n, bitset);
            if ours >= n {
                return ours as c_long;
            }
            let rest = (n - ours) as c_long;
            // SAFETY: the caller's wake, for the waiters left.
            let r = unsafe { real::syscall6(libc::SYS_futex, uaddr, op, rest, a4, uaddr2, val3) };
            if r < 0 {
                if ours > 0 { ours as c_long } else { r }
            } else {
                r + ours as c_long
            }
        }
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP => {
            // Greenlets cannot be moved to the kernel's queue of `uaddr2`:
            // they are all woken instead (spuriously, which the contract
            // allows), before the kernel does its part for OS threads.
            let mut ours = wake(addr, usize::MAX, u32::MAX);
            if cmd == libc::FUTEX_WAKE_OP {
                ours += wake(uaddr2 as usize, usize::MAX, u32::MAX);
            }
            let r = forward();
            if r < 0 { r } else { r + ours as c_long }
        }
        _ => forward(),
    }
}

fn fail(e: c_int) -> c_long {
    set_errno(e);
    -1
}

/// Whether a private futex wait at `addr` from the caller parks its greenlet
/// (see the module docs).
fn cooperative(addr: usize) -> bool {
    super::enabled() && !crate::loom::in_internal() && on_greenlet() && !thread_local(addr)
}

/// The wait's deadline: a relative timeout for `FUTEX_WAIT`, an absolute
/// time on `CLOCK_MONOTONIC` (or `CLOCK_REALTIME` with that flag) for
/// `FUTEX_WAIT_BITSET`; `None` without a timeout.
///
/// # Safety
///
/// `ts` is null or points at a `timespec` (the caller's contract).
unsafe fn deadline_of(
    cmd: c_int,
    op: c_int,
    ts: *const timespec,
) -> Result<Option<Instant>, c_int> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise.
    let t = unsafe { ts.read() };
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(libc::EINVAL);
    }
    let now = Instant::now();
    let dur = Duration::new(t.tv_sec as u64, t.tv_nsec as u32);
    if cmd == libc::FUTEX_WAIT {
        return Ok(now.checked_add(dur));
    }
    let clock = if op & libc::FUTEX_CLOCK_REALTIME != 0 {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    let mut c = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec into `c`.
    unsafe { libc::clock_gettime(clock, &mut c) };
    let at = Duration::new(c.tv_sec.max(0) as u64, c.tv_nsec as u32);
    Ok(now.checked_add(dur.saturating_sub(at)))
}

/// Parks the running greenlet on `addr` (see the module docs). `Err(errno)`:
/// `EAGAIN` or `ETIMEDOUT`.
fn wait(addr: usize, val: u32, bitset: u32, deadline: Option<Instant>) -> Result<(), c_int> {
    let Some(task) = context::current_raw() else {
        return Err(libc::EAGAIN); // not reached: `cooperative` checked
    };
    // SAFETY: the hub holds an `Arc` to the running greenlet, alive while
    // it runs and while it is parked (in its hub's live set).
    let task: &dyn RawTask = unsafe { task.as_ref() };
    let mut node = Node::new(addr, bitset, Waiter::current());
    let raw = NonNull::from(&mut node);
    let check = || {
        // SAFETY: the kernel accepted `addr` as a futex word of this process
        // (the probe); a futex word is an aligned u32 that other threads
        // change atomically.
        unsafe { (*(addr as *const AtomicU32)).load(Ordering::SeqCst) == val }
    };
    // SAFETY: `node` stays on this stack, unmoved, until `after_park` says
    // it is woken or unlinked (the loop below returns, or abandons the
    // greenlet and so never frees this stack, only then).
    if unsafe { TABLE.link(raw, check) }.is_none() {
        return Err(libc::EAGAIN);
    }
    let on = WaitOn::new(WaitKind::Futex, addr as u64);
    let mut grace: Option<Instant> = None;
    loop {
        let killed = task.header().state.load().is_killed();
        if killed && grace.is_none() {
            grace = Instant::now().checked_add(KILL_GRACE);
        }
        let until = match (deadline, grace) {
            (Some(d), Some(g)) => Some(d.min(g)),
            (d, g) => d.or(g),
        };
        let wake = park_uninterruptible(task, until, on);
        let mut timed_out = false;
        let give_up = || {
            let now = Instant::now();
            timed_out = matches!(wake, Wake::TimedOut) && deadline.is_some_and(|d| now >= d);
            timed_out || grace.is_some_and(|g| now >= g)
        };
        // SAFETY: linked above, not yet reported woken or unlinked.
        match unsafe { TABLE.after_park(raw, give_up) } {
            Parked::Woken => return Ok(()),
            Parked::Linked { .. } => continue,
            Parked::Unlinked { .. } => {}
        }
        if timed_out {
            return Err(libc::ETIMEDOUT);
        }
        // Unlinked, nothing of ours is referenced by anyone: see the module
        // docs ("Kills and timeouts").
        node.forget_waiter();
        crate::greenlet::abandon_current();
    }
}

/// Unlinks and wakes up to `n` greenlets waiting on `addr` whose bitset
/// shares a bit with `bitset`, and every parker wait on `addr` whatever `n`;
/// returns how many.
pub(super) fn wake(addr: usize, n: usize, bitset: u32) -> usize {
    TABLE.wake(addr, n, bitset)
}

/// Whether `addr` lies in the calling thread's static thread-local storage
/// (the executable's TLS block, which sits right below the thread pointer
/// on x86-64: TLS variant II).
fn thread_local(addr: usize) -> bool {
    let size = exe_tls_span();
    if size == 0 {
        return false;
    }
    let tp: usize;
    // SAFETY: on x86-64 Linux the first word of the thread control block,
    // at %fs:0, holds the thread pointer itself (the ELF TLS ABI); reading
    // it has no side effect.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    addr < tp && addr >= tp.saturating_sub(size)
}

/// Bytes below the thread pointer that may hold the executable's TLS block
/// (its size rounded up, plus alignment slack); 0 if it has none.
fn exe_tls_span() -> usize {
    static SPAN: AtomicUsize = AtomicUsize::new(usize::MAX);
    let s = SPAN.load(Ordering::Relaxed);
    if s != usize::MAX {
        return s;
    }
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _: libc::size_t,
        out: *mut libc::c_void,
    ) -> c_int {
        // SAFETY: glibc passes a valid `dl_phdr_info` whose `dlpi_phdr`
        // points at `dlpi_phnum` headers, and our `out` (a usize).
        unsafe {
            let info = &*info;
            for i in 0..info.dlpi_phnum as usize {
                let ph = &*info.dlpi_phdr.add(i);
                if ph.p_type == libc::PT_TLS {
                    let align = (ph.p_align as usize).max(1);
                    *out.cast::<usize>() = ph.p_memsz as usize + 2 * align;
                }
            }
        }
        1 // the first object is the executable: stop
    }
    let mut span = 0usize;
    // SAFETY: `first` matches the callback type and writes only a usize
    // through its argument, which points at `span`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut span).cast()) };
    SPAN.store(span, Ordering::Relaxed);
    span
}
