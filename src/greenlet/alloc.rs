//! Greenhub's allocator for greenlet task blocks (`greenlet::task`): one
//! block per greenlet, allocated at spawn and freed when the last
//! reference (`TaskArc`) goes, on whatever thread that is; and one run block
//! (`task::Running`) per started greenlet, allocated by the hub that starts
//! it and freed by the hub that finishes it.
//!
//! Blocks come in size classes of [`GRANULE`] bytes up to [`MAX_BLOCK`]
//! (larger or over-aligned tasks go to the global allocator). Each thread
//! (so each hub) keeps, per class, a [`Cache`]: two intrusive LIFO lists of
//! free blocks of up to [`BATCH`] blocks each (a *loaded* and a *spare*
//! magazine) and the uncarved rest of a chunk (a *span*). Allocating pops the
//! loaded list, else swaps in the spare one, else carves from the span, else
//! refills from the process-wide [`Pool`]; freeing pushes on the loaded list
//! and, when both lists are full, hands the spare one (a whole batch, no
//! walking) to the pool. So a spawn and a join on one hub touch no lock and
//! no shared cache line, and a block freed by another thread (a `JoinHandle`
//! dropped elsewhere, a greenlet that outlived its hub) is simply cached by
//! *that* thread and reaches other threads in batches through the pool.
//!
//! Chunks ([`CHUNK`] bytes, from the global allocator, so mapped lazily by
//! the kernel) are never freed while the process runs: a block's memory is
//! always mapped, and a block is reused only after its last reference freed
//! it. The cost is that the peak number of live task blocks stays allocated
//! (as free blocks) after the greenlets end.
//!
//! # The protocol
//!
//! A block is in exactly one of these states, and moves between them only as
//! listed; each move is made by the one party that owns the block then:
//!
//! - **uncarved**: part of a span, owned by the thread whose cache holds the
//!   span, or by the pool (a span a thread gave up at exit). Carving makes it
//!   *live* (the owner of the span carves).
//! - **live**: owned by the task it holds; the task's reference count decides
//!   who frees it (the thread that drops the last reference, `TaskArc`). A
//!   live run block is owned by the hub that owns its greenlet, which frees
//!   it (`Header::end_run`).
//!   Freeing makes it *cached* on the freeing thread.
//! - **cached**: on a list of one thread's cache; only that thread touches
//!   it (pops it: *live*; hands the list to the pool: *pooled*). A thread
//!   that exits hands all its lists and its spans to the pool (the cache's
//!   `Drop`, a thread-local destructor); a block freed on a thread whose
//!   cache is already gone goes to the pool directly, as a list of one.
//! - **pooled**: on a list in the pool, behind the pool's mutex; a thread
//!   that takes the list under the mutex owns its blocks (*cached*).
//!
//! The only cross-thread moves go through the pool's mutex, whose
//! release/acquire orders the giving thread's last write to a block (its
//! free-list link, and before it the task's drop) before the taking thread's
//! first. `tests/loom_alloc.rs` models it.

use std::alloc::{Layout, handle_alloc_error};
use std::ptr::{self, NonNull};

use crate::loom::Mutex;

/// Size classes step by this many bytes; blocks are aligned to it.
pub const GRANULE: usize = 16;
/// The largest block; larger tasks use the global allocator.
pub const MAX_BLOCK: usize = 1024;
/// Number of size classes.
pub const CLASSES: usize = MAX_BLOCK / GRANULE;
/// Blocks per list moved between a thread and the pool.
pub const BATCH: usize = if cfg!(loom) { 2 } else { 64 };
/// Bytes per chunk carved into blocks.
pub const CHUNK: usize = if cfg!(loom) { 4 * GRANULE } else { 256 * 1024 };
const CHUNK_ALIGN: usize = 64;

/// The class of a block for `layout`, or `None` for the global allocator.
#[inline]
pub(crate) const fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_BLOCK || layout.align() > GRANULE {
        None
    } else {
        Some((layout.size() - 1) / GRANULE)
    }
}

/// The size of the blocks of `class`.
#[inline]
const fn class_size(class: usize) -> usize {
    (class + 1) * GRANULE
}

/// The link a free block holds in its first word.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// An intrusive singly linked list of free blocks of one class.
#[derive(Clone, Copy)]
struct List {
    head: *mut FreeBlock,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: ptr::null_mut(),
        len: 0,
    };

    /// Pushes `block`, which the caller owns and gives to the list.
    ///
    /// # Safety
    ///
    /// `block` is a free block of this list's class, owned by the caller.
    #[inline]
    unsafe fn push(&mut self, block: NonNull<u8>) {
        let b = block.as_ptr().cast::<FreeBlock>();
        // SAFETY: the block is at least `GRANULE` bytes, aligned to it, and
        // ours (free): writing its link is writing our own memory.
        unsafe { b.write(FreeBlock { next: self.head }) };
        self.head = b;
        self.len += 1;
    }

    /// Pops a block, which the caller then owns.
    #[inline]
    fn pop(&mut self) -> Option<NonNull<u8>> {
        let b = NonNull::new(self.head)?;
        // SAFETY: blocks on a list are free and owned by the list's owner
        // (us); the link was written by `push`.
        self.head = unsafe { b.as_ptr().read().next };
        self.len -= 1;
        Some(b.cast())
    }
}

/// The uncarved rest of a chunk.
#[derive(Clone, Copy)]
struct Span {
    next: *mut u8,
    end: *mut u8,
}

impl Span {
    const EMPTY: Span = Span {
        next: ptr::null_mut(),
        end: ptr::null_mut(),
    };

    #[inline]
    fn carve(&mut self, size: usize) -> Option<NonNull<u8>> {
        if (self.end as usize) - (self.next as usize) < size {
            return None;
        }
        let b = self.next;
        // SAFETY: `b + size <= end`, inside the chunk the span was cut from.
        self.next = unsafe { b.add(size) };
        NonNull::new(b)
    }

    fn is_empty(&self, size: usize) -> bool {
        (self.end as usize) - (self.next as usize) < size
    }
}

/// What the pool keeps for one class.
struct Shelf {
    lists: Vec<List>,
    spans: Vec<Span>,
}

// SAFETY: a shelf's lists and spans are free memory that nobody but the
// shelf's holder (under the pool's mutex) touches; handing them to another
// thread hands over that ownership (the module's protocol).
unsafe impl Send for Shelf {}

/// The process-wide store of free blocks and spans, by class, and the owner
/// of every chunk.
pub struct Pool {
    shelves: [Mutex<Shelf>; CLASSES],
    chunks: Mutex<Vec<ChunkPtr>>,
}

struct ChunkPtr(NonNull<u8>);
// SAFETY: only an address, freed by the pool's `Drop` (which owns it).
unsafe impl Send for ChunkPtr {}

impl Pool {
    /// An empty pool.
    #[cfg(not(loom))]
    pub const fn new() -> Pool {
        Pool {
            shelves: [const {
                Mutex::new(Shelf {
                    lists: Vec::new(),
                    spans: Vec::new(),
                })
            }; CLASSES],
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// An empty pool.
    #[cfg(loom)]
    pub fn new() -> Pool {
        Pool {
            shelves: std::array::from_fn(|_| {
                Mutex::new(Shelf {
                    lists: Vec::new(),
                    spans: Vec::new(),
                })
            }),
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// A fresh chunk, as a span.
    fn new_span(&self) -> Span {
        let layout = Layout::from_size_align(CHUNK, CHUNK_ALIGN).expect("chunk layout");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(chunk) = NonNull::new(p) else {
            handle_alloc_error(layout)
        };
        self.chunks.lock().push(ChunkPtr(chunk));
        Span {
            next: p,
            // SAFETY: one past the end of the chunk.
            end: unsafe { p.add(CHUNK) },
        }
    }

    /// How many chunks the pool has allocated.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn chunks(&self) -> usize {
        self.chunks.lock().len()
    }

    /// Allocates one block of `class` without a thread cache (a thread whose
    /// cache is gone).
    fn alloc_one(&self, class: usize) -> NonNull<u8> {
        let size = class_size(class);
        let mut shelf = self.shelves[class].lock();
        if let Some(list) = shelf.lists.last_mut() {
            let b = list.pop().expect("pooled lists are not empty");
            if list.len == 0 {
                shelf.lists.pop();
            }
            return b;
        }
        let mut span = match shelf.spans.pop() {
            Some(s) => s,
            None => self.new_span(),
        };
        let b = span.carve(size).expect("a pooled span holds a block");
        if !span.is_empty(size) {
            shelf.spans.push(span);
        }
        b
    }

    /// Gives `list` to the pool.
    fn give(&self, class: usize, list: List) {
        if list.len > 0 {
            self.shelves[class].lock().lists.push(list);
        }
    }

    /// Frees one block without a thread cache.
    ///
    /// # Safety
    ///
    /// As [`free`].
    unsafe fn free_one(&self, class: usize, block: NonNull<u8>) {
        let mut list = List::EMPTY;
        // SAFETY: the caller gives us the free block.
        unsafe { list.push(block) };
        self.give(class, list);
    }
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Only a pool that is not the process-wide one (the models') is
        // dropped; its blocks were all freed back by then (its users are
        // gone), so no block of its chunks is referenced.
        let layout = Layout::from_size_align(CHUNK, CHUNK_ALIGN).expect("chunk layout");
        for c in self.chunks.lock().drain(..) {
            // SAFETY: allocated by `new_span` with this layout, freed once.
            unsafe { std::alloc::dealloc(c.0.as_ptr(), layout) };
        }
    }
}

/// One class of a thread's cache.
#[derive(Clone, Copy)]
struct ClassCache {
    loaded: List,
    spare: List,
    span: Span,
}

/// A thread's free blocks (see the module's protocol). Not `Send`: its blocks
/// belong to the thread that holds it.
pub struct Cache {
    classes: [ClassCache; CLASSES],
}

impl Cache {
    /// An empty cache.
    pub const fn new() -> Cache {
        Cache {
            classes: [ClassCache {
                loaded: List::EMPTY,
                spare: List::EMPTY,
                span: Span::EMPTY,
            }; CLASSES],
        }
    }

    /// A block of `class` (its size: `(class + 1) * GRANULE` bytes, aligned
    /// to `GRANULE`), uninitialised, owned by the caller.
    #[inline]
    pub fn alloc(&mut self, pool: &Pool, class: usize) -> NonNull<u8> {
        let c = &mut self.classes[class];
        if let Some(b) = c.loaded.pop() {
            return b;
        }
        if c.spare.len > 0 {
            std::mem::swap(&mut c.loaded, &mut c.spare);
            if let Some(b) = c.loaded.pop() {
                return b;
            }
        }
        if let Some(b) = c.span.carve(class_size(class)) {
            return b;
        }
        self.refill(pool, class)
    }

    /// Takes a list or a span from the pool (or a new chunk) when this
    /// cache has neither blocks nor span left for `class`.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, pool: &Pool, class: usize) -> NonNull<u8> {
        let size = class_size(class);
        let c = &mut self.classes[class];
        let mut shelf = pool.shelves[class].lock();
        if let Some(list) = shelf.lists.pop() {
            drop(shelf);
            c.loaded = list;
            return c.loaded.pop().expect("pooled lists are not empty");
        }
        c.span = match shelf.spans.pop() {
            Some(s) => s,
            None => pool.new_span(),
        };
        drop(shelf);
        c.span.carve(size).expect("a fresh span holds a block")
    }

    /// Frees `block` into this cache.
    ///
    /// # Safety
    ///
    /// `block` came from [`alloc`](Self::alloc) (of any thread's cache) or
    /// the pool, with the same `class` and `pool`, and is no longer used by
    /// anyone: the caller gives it up.
    #[inline]
    pub unsafe fn free(&mut self, pool: &Pool, class: usize, block: NonNull<u8>) {
        let c = &mut self.classes[class];
        if c.loaded.len >= BATCH {
            if c.spare.len > 0 {
                pool.give(class, c.spare);
            }
            c.spare = c.loaded;
            c.loaded = List::EMPTY;
        }
        // SAFETY: the caller gives us the free block.
        unsafe { c.loaded.push(block) };
    }

    /// Gives every cached block and span to the pool (thread exit).
    pub fn flush(&mut self, pool: &Pool) {
        for (class, c) in self.classes.iter_mut().enumerate() {
            pool.give(class, std::mem::replace(&mut c.loaded, List::EMPTY));
            pool.give(class, std::mem::replace(&mut c.spare, List::EMPTY));
            let span = std::mem::replace(&mut c.span, Span::EMPTY);
            if !span.is_empty(class_size(class)) {
                pool.shelves[class].lock().spans.push(span);
            }
        }
    }

    /// How many free blocks of `class` this cache holds.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn cached(&self, class: usize) -> usize {
        let c = &self.classes[class];
        c.loaded.len + c.spare.len
    }
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::new()
    }
}

#[cfg(not(loom))]
mod global {
    use std::cell::UnsafeCell;

    use super::{Cache, Pool};

    /// The process-wide pool.
    pub(super) static POOL: Pool = Pool::new();

    /// A thread's cache, which gives its blocks to the pool when the thread
    /// exits.
    pub(super) struct ThreadCache(pub(super) UnsafeCell<Cache>);

    impl Drop for ThreadCache {
        fn drop(&mut self) {
            self.0.get_mut().flush(&POOL);
        }
    }

    thread_local! {
        pub(super) static CACHE: ThreadCache = const { ThreadCache(UnsafeCell::new(Cache::new())) };
    }
}

/// Allocates a block for `layout` (a task's): from this thread's cache, or
/// the global allocator for a large or over-aligned one.
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    #[cfg(not(loom))]
    if let Some(class) = class_of(layout) {
        use global::{CACHE, POOL};
        return match CACHE.try_with(|c| {
            // SAFETY: only this function and `free` borrow the cache, on this
            // thread, without calling out to anything that could re-enter
            // them (no user code, no task drop): the borrow is exclusive.
            unsafe { (*c.0.get()).alloc(&POOL, class) }
        }) {
            Ok(b) => b,
            Err(_) => POOL.alloc_one(class),
        };
    }
    // SAFETY: task layouts have a non-zero size (the header).
    let p = unsafe { std::alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Frees a block from [`alloc`] with the same `layout`.
///
/// # Safety
///
/// `block` came from [`alloc`] with `layout`, its contents are dropped and no
/// reference to it remains.
#[inline]
pub(crate) unsafe fn free(block: NonNull<u8>, layout: Layout) {
    #[cfg(not(loom))]
    if let Some(class) = class_of(layout) {
        use global::{CACHE, POOL};
        if CACHE
            .try_with(|c| {
                // SAFETY: exclusive borrow as in `alloc`; the block is given
                // up by our caller.
                unsafe { (*c.0.get()).free(&POOL, class, block) }
            })
            .is_err()
        {
            // SAFETY: as above, without a cache (thread exit).
            unsafe { POOL.free_one(class, block) };
        }
        return;
    }
    // SAFETY: allocated by the global allocator with this layout.
    unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(16, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(17, 8).unwrap()), Some(1));
        assert_eq!(
            class_of(Layout::from_size_align(MAX_BLOCK, 16).unwrap()),
            Some(CLASSES - 1)
        );
        assert_eq!(
            class_of(Layout::from_size_align(MAX_BLOCK + 1, 8).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
    }

    #[test]
    fn reuse_is_lifo_and_overflow_goes_to_the_pool() {
        let pool = Pool::new();
        let mut a = Cache::new();
        let class = 3;
        let blocks: Vec<_> = (0..3 * BATCH).map(|_| a.alloc(&pool, class)).collect();
        let mut sorted: Vec<usize> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3 * BATCH, "no block handed out twice");
        assert!(
            blocks
                .iter()
                .all(|b| (b.as_ptr() as usize).is_multiple_of(GRANULE))
        );
        for b in &blocks {
            // SAFETY: allocated above, unused.
            unsafe { a.free(&pool, class, *b) };
        }
        assert!(a.cached(class) <= 2 * BATCH);
        assert_eq!(pool.shelves[class].lock().lists.len(), 1);
        let last = *blocks.last().unwrap();
        assert_eq!(a.alloc(&pool, class), last, "LIFO");
        // SAFETY: as above.
        unsafe { a.free(&pool, class, last) };
        // Another thread's cache takes the pooled batch before carving.
        let mut b = Cache::new();
        let chunks = pool.chunks();
        let got: Vec<_> = (0..BATCH).map(|_| b.alloc(&pool, class)).collect();
        assert_eq!(pool.chunks(), chunks);
        assert!(got.iter().all(|g| blocks.contains(g)));
        a.flush(&pool);
        for g in got {
            // SAFETY: as above.
            unsafe { b.free(&pool, class, g) };
        }
        b.flush(&pool);
    }

    #[test]
    fn a_cacheless_thread_uses_the_pool() {
        let pool = Pool::new();
        let b = pool.alloc_one(5);
        // SAFETY: allocated above, unused.
        unsafe { pool.free_one(5, b) };
        assert_eq!(pool.alloc_one(5), b);
    }
}
