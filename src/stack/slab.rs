//! The process-wide stack allocator: slabs of guarded stacks.
//!
//! A slab is one anonymous mapping carved into equal slots; each slot is a
//! guard region followed by a stack:
//!
//! ```text
//!   slab base                                                   slab end
//!   | guard | stack 0 ......... | guard | stack 1 ......... | ... |
//!           ^limit              ^top (stack 0 grows down from here)
//! ```
//!
//! Guards come from `madvise(MADV_GUARD_INSTALL)` where the kernel has it
//! (Linux >= 6.13): the guard lives in the page tables, so a slab of N stacks
//! stays one memory mapping, and Linux's `vm.max_map_count` (65530 by default)
//! no longer caps the number of greenlets. A new slab's guards go in with one
//! `process_madvise` call where the kernel accepts `MADV_GUARD_INSTALL` there
//! for the calling process (probed at run time, not by kernel version),
//! instead of one `madvise` per stack: one syscall per slab rather than per
//! greenlet, which matters when many greenlets are suspended at once
//! (figures in benches/compare/PROFILE.md). Elsewhere the guard is a
//! `mprotect(PROT_NONE)` range, which splits the mapping: two mappings per
//! stack. In that mode the allocator budgets mappings itself and refuses a new
//! slab with an `io::Error` naming `vm.max_map_count` before the process runs
//! out (an exhausted map count also breaks `malloc`).
//!
//! Slabs are never unmapped: free stacks go back to a per-size-class free list
//! with their pages released (`MADV_DONTNEED`), so a quiet process holds
//! address space, not memory. Hubs keep a small hot cache in front of this
//! (see `pool.rs`).

use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{NUM_CLASSES, Stack, class_usable, guard_size, page_size};

/// `MADV_GUARD_INSTALL` from Linux 6.13 (`include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `PIDFD_SELF_THREAD_GROUP` from Linux 6.15 (`include/uapi/linux/pidfd.h`):
/// names the calling process where a syscall takes a pidfd.
const PIDFD_SELF_THREAD_GROUP: libc::c_int = -10001;

/// Bytes of address space a slab aims for.
const SLAB_BYTES: usize = 16 << 20;
/// At most this many stacks per slab.
const MAX_SLOTS: usize = 256;
/// Mappings left for the rest of the process when budgeting `mprotect` guards.
const MAP_RESERVE: usize = 4096;

/// How guard regions are installed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum GuardMode {
    /// `MADV_GUARD_INSTALL`: no extra mapping per stack.
    Madvise,
    /// `mprotect(PROT_NONE)`: two mappings per stack.
    Mprotect,
}

const MODE_UNKNOWN: u8 = 0;
const MODE_MADVISE: u8 = 1;
const MODE_MPROTECT: u8 = 2;

/// Whether `process_madvise` takes `PIDFD_SELF_THREAD_GROUP` here.
const SELF_UNKNOWN: u8 = 0;
const SELF_YES: u8 = 1;
const SELF_NO: u8 = 2;
static PIDFD_SELF: AtomicU8 = AtomicU8::new(SELF_UNKNOWN);

/// Installs the guards of a fresh slab (`slots` guards of `guard` bytes at
/// `base + i * slot`) with `process_madvise(MADV_GUARD_INSTALL)`, a few
/// syscalls for the whole slab instead of one per stack. Returns `false`
/// (and the caller installs them one by one) if the kernel refuses it or
/// installs fewer bytes than asked.
///
/// The process is named by `PIDFD_SELF_THREAD_GROUP` where the kernel knows
/// it (Linux >= 6.15), which saves opening and closing a pidfd per slab;
/// elsewhere by a pidfd opened for the call (a cached one would name the
/// parent in a forked child).
fn install_guards_batched(base: usize, slot: usize, slots: usize, guard: usize) -> bool {
    let iov: Vec<libc::iovec> = (0..slots)
        .map(|i| libc::iovec {
            iov_base: (base + i * slot) as *mut libc::c_void,
            iov_len: guard,
        })
        .collect();
    // Ok, or the errno of the first call that fell short (0 if it advised
    // fewer bytes without an error).
    let install = |pidfd: libc::c_int| -> Result<(), i32> {
        // UIO_MAXIOV: at most 1024 ranges per call.
        for chunk in iov.chunks(1024) {
            let n = process_madvise(pidfd, chunk, MADV_GUARD_INSTALL);
            if n != (chunk.len() * guard) as isize {
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                return Err(if n < 0 { errno } else { 0 });
            }
        }
        Ok(())
    };
    if PIDFD_SELF.load(Ordering::Relaxed) != SELF_NO {
        match install(PIDFD_SELF_THREAD_GROUP) {
            Ok(()) => {
                PIDFD_SELF.store(SELF_YES, Ordering::Relaxed);
                return true;
            }
            // A kernel without the sentinel takes it for a bad descriptor;
            // one without `process_madvise`, or a seccomp filter, refuses
            // the call whatever names the process.
            Err(libc::EBADF | libc::ENOSYS | libc::EPERM) => {
                PIDFD_SELF.store(SELF_NO, Ordering::Relaxed)
            }
            // Anything else repeats below, and the one-by-one path reports it.
            Err(_) => {}
        }
    }
    // SAFETY: plain syscall with integer arguments; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if pidfd < 0 {
        return false;
    }
    let ok = install(pidfd as libc::c_int).is_ok();
    // SAFETY: closing the pidfd we opened above.
    unsafe { libc::close(pidfd as libc::c_int) };
    ok
}

/// `process_madvise(pidfd, iov, advice)`: the bytes advised, or -1.
fn process_madvise(pidfd: libc::c_int, iov: &[libc::iovec], advice: libc::c_int) -> isize {
    // SAFETY: the pointer and length describe a live slice of `iovec`s, which
    // the kernel only reads; the caller passes ranges of a fresh slab of its
    // own, which holds no data yet.
    unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd,
            iov.as_ptr(),
            iov.len(),
            advice,
            0u32,
        ) as isize
    }
}

/// The global allocator.
pub(crate) struct SlabAllocator {
    /// Free stacks per size class, as their top addresses. Pages released.
    free: [Mutex<Vec<usize>>; NUM_CLASSES],
    mode: AtomicU8,
    /// Guards installed with `mprotect` (each costs two mappings).
    mprotect_guards: AtomicUsize,
    /// Mapping budget for `mprotect` guards, computed on first need.
    mprotect_budget: AtomicUsize,
    /// Bytes of address space mapped for stacks.
    mapped: AtomicUsize,
    /// Every slab mapped (base, length), for `memory`. Slabs are never
    /// unmapped once handed out.
    slabs: Mutex<Vec<(usize, usize)>>,
    /// Stacks carved from slabs, per size class (for the leak check of the
    /// fuzz targets: `carved - free` stacks are out).
    carved: [AtomicUsize; NUM_CLASSES],
}

pub(crate) static ALLOCATOR: SlabAllocator = SlabAllocator {
    free: [const { Mutex::new(Vec::new()) }; NUM_CLASSES],
    mode: AtomicU8::new(MODE_UNKNOWN),
    mprotect_guards: AtomicUsize::new(0),
    mprotect_budget: AtomicUsize::new(0),
    mapped: AtomicUsize::new(0),
    slabs: Mutex::new(Vec::new()),
    carved: [const { AtomicUsize::new(0) }; NUM_CLASSES],
};

impl SlabAllocator {
    /// Up to `n` (at least one) stacks of `class` under one lock, so that a
    /// hub refilling its cache gets neighbours in a slab: their pages can
    /// then be released together, with one `madvise` (see `pool.rs`).
    pub(crate) fn alloc_batch(&self, class: usize, n: usize) -> io::Result<Vec<Stack>> {
        let mut out = Vec::with_capacity(n);
        {
            let mut free = self.free[class].lock();
            let take = free.len().min(n);
            let at = free.len() - take;
            out.extend(
                free.drain(at..)
                    .rev()
                    .map(|top| Stack::from_raw(top, class)),
            );
        }
        if out.is_empty() {
            // `grow` hands one stack of the new slab straight to us: between
            // its push and a pop here, other hubs could empty the free list.
            out.push(Stack::from_raw(self.grow(class)?, class));
            let mut free = self.free[class].lock();
            let take = free.len().min(n - 1);
            let at = free.len() - take;
            out.extend(
                free.drain(at..)
                    .rev()
                    .map(|top| Stack::from_raw(top, class)),
            );
        }
        Ok(out)
    }

    /// Stacks of `class` not on the free list: lent to a hub cache or a
    /// greenlet. Racy while stacks move; exact when nothing runs.
    #[cfg(fuzzing)]
    pub(crate) fn outstanding(&self, class: usize) -> usize {
        let free = self.free[class].lock().len();
        self.carved[class].load(Ordering::Relaxed) - free
    }

    /// Takes back the stack at `top` of `class`, whose pages were released.
    pub(crate) fn free_raw(&self, top: usize, class: usize) {
        self.free[class].lock().push(top);
    }

    /// Takes back stacks whose pages were released (one lock per run of
    /// stacks of the same class).
    pub(crate) fn free_released(&self, stacks: Vec<Stack>) {
        let mut iter = stacks.into_iter().peekable();
        while let Some(first) = iter.next() {
            let class = first.class();
            let mut free = self.free[class].lock();
            free.push(first.into_raw().0);
            while let Some(s) = iter.next_if(|s| s.class() == class) {
                free.push(s.into_raw().0);
            }
        }
    }

    /// The guard mode in use (probing the kernel on first call).
    pub(crate) fn guard_mode(&self) -> GuardMode {
        match self.mode.load(Ordering::Acquire) {
            MODE_MADVISE => GuardMode::Madvise,
            MODE_MPROTECT => GuardMode::Mprotect,
            _ => {
                let mode = probe_guard_mode();
                let code = match mode {
                    GuardMode::Madvise => MODE_MADVISE,
                    GuardMode::Mprotect => MODE_MPROTECT,
                };
                self.mode.store(code, Ordering::Release);
                mode
            }
        }
    }

    /// Maps a new slab for `class`, puts all its stacks but one on the free
    /// list and returns the top of that one (for the caller).
    #[cold]
    fn grow(&self, class: usize) -> io::Result<usize> {
        let usable = class_usable(class);
        let guard = guard_size();
        let slot = usable + guard;
        let slots = (SLAB_BYTES / slot).clamp(1, MAX_SLOTS);
        let len = slots * slot;
        let mode = self.guard_mode();
        if mode == GuardMode::Mprotect {
            self.reserve_mprotect_guards(slots)?;
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            if mode == GuardMode::Mprotect {
                self.mprotect_guards.fetch_sub(slots, Ordering::Relaxed);
            }
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "greenhub: cannot map {} KiB for greenlet stacks: {err} \
                     (check `ulimit -v` and vm.overcommit_memory)",
                    len >> 10
                ),
            ));
        }
        let base = base as usize;
        // Stacks touch only their top pages; a transparent huge page would
        // make each of them resident in 2 MiB units. Failure is harmless.
        // SAFETY: the range is our own fresh mapping.
        unsafe { libc::madvise(base as *mut _, len, libc::MADV_NOHUGEPAGE) };
        // One `process_madvise` for all the slab's guards where the kernel
        // takes it for our own process; else one call each
        // below (installing a guard twice is harmless).
        let batched =
            mode == GuardMode::Madvise && install_guards_batched(base, slot, slots, guard);
        for i in 0..slots {
            if batched {
                break;
            }
            let guard_lo = base + i * slot;
            // SAFETY: the guard range lies inside our own fresh mapping.
            let rc = unsafe {
                match mode {
                    GuardMode::Madvise => {
                        libc::madvise(guard_lo as *mut _, guard, MADV_GUARD_INSTALL)
                    }
                    GuardMode::Mprotect => {
                        libc::mprotect(guard_lo as *mut _, guard, libc::PROT_NONE)
                    }
                }
            };
            if rc != 0 {
                let err = io::Error::last_os_error();
                // SAFETY: unmapping our own mapping, which holds no stacks in
                // use yet.
                unsafe { libc::munmap(base as *mut _, len) };
                if mode == GuardMode::Mprotect {
                    self.mprotect_guards.fetch_sub(slots, Ordering::Relaxed);
                }
                return Err(guard_error(err, mode));
            }
        }
        self.mapped.fetch_add(len, Ordering::Relaxed);
        self.slabs.lock().push((base, len));
        self.carved[class].fetch_add(slots, Ordering::Relaxed);
        let mut free = self.free[class].lock();
        // Hand out low addresses last, so consecutive stacks are adjacent;
        // the lowest goes to the caller.
        free.extend((1..slots).rev().map(|i| base + (i + 1) * slot));
        Ok(base + slot)
    }

    /// Bytes mapped for stacks, and how many of them are resident (counted
    /// with `mincore`, one call per slab: for snapshots, not hot paths).
    pub(crate) fn memory(&self) -> (usize, usize) {
        let page = page_size();
        let mut resident = 0;
        let mut vec = Vec::new();
        for &(base, len) in self.slabs.lock().iter() {
            vec.clear();
            vec.resize(len.div_ceil(page), 0u8);
            // SAFETY: `base..base + len` is one of our slabs, mapped for the
            // life of the process; `vec` has one byte per page of it.
            let rc = unsafe { libc::mincore(base as *mut _, len, vec.as_mut_ptr()) };
            if rc == 0 {
                resident += vec.iter().filter(|&&b| b & 1 != 0).count() * page;
            }
        }
        (self.mapped.load(Ordering::Relaxed), resident)
    }

    /// Checks and reserves mappings for `n` more `mprotect` guards.
    fn reserve_mprotect_guards(&self, n: usize) -> io::Result<()> {
        let mut budget = self.mprotect_budget.load(Ordering::Relaxed);
        if budget == 0 {
            budget = compute_mprotect_budget();
            self.mprotect_budget.store(budget, Ordering::Relaxed);
        }
        let used = self.mprotect_guards.fetch_add(n, Ordering::Relaxed);
        if used + n > budget {
            self.mprotect_guards.fetch_sub(n, Ordering::Relaxed);
            let max = read_max_map_count().unwrap_or(0);
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "greenhub: cannot allocate more greenlet stacks: {used} guarded stacks \
                     already use {} memory mappings and the limit vm.max_map_count is {max}. \
                     Guard pages use mprotect here ({}), so every stack costs two \
                     mappings. Raise the limit (sysctl -w vm.max_map_count={}) or run on a \
                     kernel with MADV_GUARD_INSTALL (Linux >= 6.13)",
                    2 * used,
                    if forced_mprotect() {
                        "forced by GREENHUB_STACK_GUARD=mprotect"
                    } else {
                        "this kernel has no MADV_GUARD_INSTALL"
                    },
                    (2 * (used + n) + 2 * MAP_RESERVE).next_power_of_two(),
                ),
            ));
        }
        Ok(())
    }
}

fn guard_error(err: io::Error, mode: GuardMode) -> io::Error {
    let how = match mode {
        GuardMode::Madvise => "madvise(MADV_GUARD_INSTALL)",
        GuardMode::Mprotect => "mprotect(PROT_NONE)",
    };
    let hint = if err.raw_os_error() == Some(libc::ENOMEM) {
        " (the process may have reached vm.max_map_count; raise it with sysctl)"
    } else {
        ""
    };
    io::Error::new(
        err.kind(),
        format!("greenhub: cannot install a stack guard page with {how}: {err}{hint}"),
    )
}

/// Decides the guard mode: `GREENHUB_STACK_GUARD=mprotect` forces the
/// fallback (to test it on new kernels); otherwise try `MADV_GUARD_INSTALL`
/// on a scratch mapping.
fn probe_guard_mode() -> GuardMode {
    if forced_mprotect() {
        return GuardMode::Mprotect;
    }
    let len = 2 * page_size();
    // SAFETY: a fresh scratch mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return GuardMode::Mprotect;
    }
    // SAFETY: the range is our scratch mapping.
    let rc = unsafe { libc::madvise(p, page_size(), MADV_GUARD_INSTALL) };
    // SAFETY: unmapping our scratch mapping.
    unsafe { libc::munmap(p, len) };
    if rc == 0 {
        GuardMode::Madvise
    } else {
        GuardMode::Mprotect
    }
}

/// Whether `GREENHUB_STACK_GUARD=mprotect` asks for the fallback.
fn forced_mprotect() -> bool {
    std::env::var_os("GREENHUB_STACK_GUARD").is_some_and(|v| v == "mprotect")
}

fn read_max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many `mprotect` guards fit: (max - mappings in use - reserve) / 2.
fn compute_mprotect_budget() -> usize {
    let max = read_max_map_count().unwrap_or(65530);
    let in_use = std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(1024);
    (max.saturating_sub(in_use + MAP_RESERVE) / 2).max(1)
}
