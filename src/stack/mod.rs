//! Greenlet stacks: size classes, the stack type, and where stacks come from.
//!
//! - [`Stack`] is one guarded stack, implementing `corosensei::stack::Stack`.
//! - `slab.rs` is the process-wide allocator: slabs of stacks with guard
//!   regions that do not cost a memory mapping each where the kernel allows.
//! - `pool.rs` is each hub's hot cache in front of it, which also releases the
//!   pages of returned stacks beyond a small resident window.
//! - `overflow.rs` turns a fault in a guard region into a message naming the
//!   greenlet, then aborts.
//!
//! Stacks are allocated lazily, when a greenlet first runs; an unstarted
//! greenlet is only its closure. Sizes are rounded up to a power of two between
//! [`MIN_STACK_SIZE`] and [`MAX_STACK_SIZE`] (the size classes).

use std::io;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

pub(crate) mod overflow;
pub(crate) mod pool;
pub(crate) mod slab;

pub(crate) use pool::StackPool;

/// The smallest stack greenhub hands out; smaller requests are rounded up.
///
/// ```
/// assert_eq!(greenhub::MIN_STACK_SIZE, 16 * 1024);
/// ```
pub const MIN_STACK_SIZE: usize = 16 << 10;
/// The largest stack a greenlet may ask for; larger requests are refused
/// with an `InvalidInput` error.
///
/// ```
/// let too_big = greenhub::MAX_STACK_SIZE + 1;
/// assert!(greenhub::Builder::new().stack_size(too_big).build().is_err());
/// ```
pub const MAX_STACK_SIZE: usize = 64 << 20;
/// The default stack size: 256 KiB.
///
/// Address space is cheap and only touched pages cost memory, so the default
/// is generous for Rust code, which likes stack buffers (an idle greenlet
/// still costs one page). may uses 32 KiB and overflows on ordinary code;
/// std threads get 2 MiB. Override it per runtime (`Builder::stack_size`) or
/// per greenlet (`greenlet::Builder::stack_size`).
///
/// ```
/// assert_eq!(greenhub::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;

pub(crate) const NUM_CLASSES: usize =
    (MAX_STACK_SIZE.trailing_zeros() - MIN_STACK_SIZE.trailing_zeros() + 1) as usize;

/// Usable bytes of a stack of `class`.
#[inline]
pub(crate) const fn class_usable(class: usize) -> usize {
    MIN_STACK_SIZE << class
}

/// The size class for a request of `size` bytes.
pub(crate) fn class_for(size: usize) -> io::Result<usize> {
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "greenhub: a greenlet stack of {size} bytes exceeds the maximum of {} MiB",
                MAX_STACK_SIZE >> 20
            ),
        ));
    }
    let size = size.max(MIN_STACK_SIZE).next_power_of_two();
    Ok((size.trailing_zeros() - MIN_STACK_SIZE.trailing_zeros()) as usize)
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // A wait for another thread's initialisation blocks this thread, never
    // parks a greenlet in the middle of a stack allocation.
    let _internal = crate::loom::Internal::enter();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 { n as usize } else { 4096 }
    })
}

/// Bytes of guard below each stack: 16 KiB, or one page if pages are larger.
/// Rust code probes every page of a large frame, so any overflow from Rust
/// lands in the guard; the extra pages cover C frames built without
/// `-fstack-clash-protection` a little longer.
pub(crate) fn guard_size() -> usize {
    page_size().max(16 << 10)
}

/// Releases the pages of `[start, end)`, a range of stacks (and the guard
/// regions between them) that nobody runs on. Guard regions stay installed:
/// `MADV_GUARD_INSTALL` guards survive `MADV_DONTNEED`, and `mprotect` guards
/// hold no pages.
pub(crate) fn release_range(start: usize, end: usize) {
    if end <= start {
        return;
    }
    // SAFETY: the callers own every stack in the range (none is lent to a
    // coroutine), so discarding its contents affects no live data.
    unsafe { libc::madvise(start as *mut _, end - start, libc::MADV_DONTNEED) };
}

/// One guarded greenlet stack: `[top - usable, top)`, with the guard region
/// right below it. Owned: dropping it returns it to the global allocator.
pub(crate) struct Stack {
    top: NonZeroUsize,
    class: u8,
}

impl Stack {
    /// Disassembles the stack without releasing or returning it.
    pub(crate) fn into_raw(self) -> (usize, usize) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.top(), this.class())
    }

    pub(crate) fn from_raw(top: usize, class: usize) -> Stack {
        Stack {
            top: NonZeroUsize::new(top).expect("greenhub: null stack"),
            class: class as u8,
        }
    }

    pub(crate) fn class(&self) -> usize {
        self.class as usize
    }

    pub(crate) fn top(&self) -> usize {
        self.top.get()
    }

    /// Usable bytes.
    pub(crate) fn usable(&self) -> usize {
        class_usable(self.class())
    }

    /// Lowest usable address.
    pub(crate) fn bottom(&self) -> usize {
        self.top() - self.usable()
    }

    /// Releases the pages of `[bottom, top - keep)` (they read as zero later).
    pub(crate) fn release(&self, keep: usize) {
        release_range(
            self.bottom(),
            self.top().saturating_sub(keep).max(self.bottom()),
        );
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.release(0);
        slab::ALLOCATOR.free_raw(self.top(), self.class());
    }
}

// SAFETY: `top` is page-aligned (hence STACK_ALIGNMENT-aligned), the `usable`
// bytes below it are read-write memory owned by this value, and below them
// lies a guard region of `guard_size()` bytes (installed by the slab
// allocator before any stack of the slab is handed out) that faults on access.
// `limit` includes that guard, as corosensei requires, and `usable` is at
// least MIN_STACK_SIZE (16 KiB) > corosensei's 4 KiB minimum.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        self.top
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.bottom() - guard_size()).expect("greenhub: stack limit")
    }
}
