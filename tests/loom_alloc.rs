//! Loom models of the **task-block allocator** (`src/greenlet/alloc.rs`):
//! per-thread caches ([`Cache`]) that hand whole lists of free blocks and the
//! uncarved rest of their chunks to a shared [`Pool`] behind its mutex, and
//! take them back from it. Under loom a list holds at most `BATCH` = 2
//! blocks and a chunk `CHUNK` = 64 bytes (four blocks of class 0), so a few
//! operations exercise every path: overflow to the pool, refill from it,
//! carving, new chunks, and a thread's exit (`Cache::flush`).
//!
//! A producer thread allocates blocks, writes a tag into each, and sends them
//! to a consumer thread (through a loom mutex, as a `JoinHandle` moves), which
//! checks the tag and frees them into its own cache, while the producer goes
//! on allocating (taking what the consumer gave to the pool). Invariants:
//!
//! - **no block is handed out twice while live**: every block's tag is intact
//!   when its last owner frees it, and the set of live blocks never sees an
//!   address twice;
//! - **freed blocks are reused, not lost**: after both threads exit, a fresh
//!   cache gets every freed block back before the pool carves new memory
//!   (the pool allocates no chunk beyond what the live peak needed).

#![cfg(loom)]

use std::collections::HashSet;
use std::ptr::NonNull;

use greenhub::__private::{BATCH, CHUNK, Cache, GRANULE, Pool};
use loom::sync::{Arc, Mutex};
use loom::thread;

const CLASS: usize = 0;

/// Bookkeeping outside the model (std types: not interleaving points).
struct Book {
    live: std::sync::Mutex<HashSet<usize>>,
}

impl Book {
    fn allocated(&self, b: NonNull<u8>, tag: usize) {
        assert!(
            self.live.lock().unwrap().insert(b.as_ptr() as usize),
            "block handed out twice"
        );
        // SAFETY: a fresh block of `GRANULE` bytes, ours.
        unsafe { b.as_ptr().cast::<usize>().add(1).write(tag) };
    }

    fn freeing(&self, b: NonNull<u8>, tag: usize) {
        // SAFETY: a live block we own, tagged by `allocated`.
        let seen = unsafe { b.as_ptr().cast::<usize>().add(1).read() };
        assert_eq!(seen, tag, "block reused while live");
        assert!(self.live.lock().unwrap().remove(&(b.as_ptr() as usize)));
    }
}

fn alloc(cache: &mut Cache, pool: &Pool, book: &Book, tag: usize) -> NonNull<u8> {
    let b = cache.alloc(pool, CLASS);
    book.allocated(b, tag);
    b
}

fn free(cache: &mut Cache, pool: &Pool, book: &Book, b: NonNull<u8>, tag: usize) {
    book.freeing(b, tag);
    // SAFETY: allocated from `pool` with `CLASS`, no longer used.
    unsafe { cache.free(pool, CLASS, b) };
}

#[test]
fn blocks_move_between_threads_through_the_pool() {
    assert_eq!(CHUNK / GRANULE, 4);
    assert_eq!(BATCH, 2);
    loom::model(|| {
        let pool = Arc::new(Pool::new());
        let book = Arc::new(Book {
            live: std::sync::Mutex::new(HashSet::new()),
        });
        let mailbox: Arc<Mutex<Vec<(usize, usize)>>> = Arc::new(Mutex::new(Vec::new()));

        let consumer = {
            let (pool, book, mailbox) = (pool.clone(), book.clone(), mailbox.clone());
            thread::spawn(move || {
                let mut cache = Cache::new();
                let mut freed = 0;
                // Takes what is there twice, then exits (flushing its cache).
                for _ in 0..2 {
                    let got: Vec<_> = std::mem::take(&mut *mailbox.lock().unwrap());
                    for (addr, tag) in got {
                        let b = NonNull::new(addr as *mut u8).unwrap();
                        free(&mut cache, &pool, &book, b, tag);
                        freed += 1;
                    }
                    thread::yield_now();
                }
                cache.flush(&pool);
                freed
            })
        };

        let mut cache = Cache::new();
        // Five blocks: more than a chunk, more than a list.
        let mut mine = Vec::new();
        for tag in 0..5 {
            let b = alloc(&mut cache, &pool, &book, tag);
            if tag % 2 == 0 {
                mailbox.lock().unwrap().push((b.as_ptr() as usize, tag));
            } else {
                mine.push((b, tag));
            }
        }
        // Freed here while the consumer frees the others.
        for (b, tag) in mine.drain(..) {
            free(&mut cache, &pool, &book, b, tag);
        }
        // Allocates again, possibly taking the consumer's blocks.
        for tag in 10..13 {
            let b = alloc(&mut cache, &pool, &book, tag);
            mine.push((b, tag));
        }
        for (b, tag) in mine.drain(..) {
            free(&mut cache, &pool, &book, b, tag);
        }
        let freed = consumer.join().unwrap();
        // Whatever the consumer did not take is freed here.
        for (addr, tag) in std::mem::take(&mut *mailbox.lock().unwrap()) {
            let b = NonNull::new(addr as *mut u8).unwrap();
            free(&mut cache, &pool, &book, b, tag);
        }
        assert!(freed <= 3);
        cache.flush(&pool);
        assert!(book.live.lock().unwrap().is_empty());

        // At most 5 blocks were ever live at once, so at most two chunks
        // (4 blocks each; the second one's rest may sit in a thread's span).
        let chunks = pool.chunks();
        assert!(chunks <= 2, "{chunks} chunks for 5 live blocks");
        // Every block freed is in the pool: a fresh cache gets all the
        // carved blocks back before the pool allocates anything new.
        let mut fresh = Cache::new();
        let mut seen = HashSet::new();
        for tag in 0..chunks * 4 {
            let b = alloc(&mut fresh, &pool, &book, 100 + tag);
            assert!(seen.insert(b.as_ptr() as usize));
        }
        assert_eq!(pool.chunks(), chunks, "a freed block was lost");
        for b in seen {
            let b = NonNull::new(b as *mut u8).unwrap();
            let tag = {
                // SAFETY: live, tagged above.
                unsafe { b.as_ptr().cast::<usize>().add(1).read() }
            };
            free(&mut fresh, &pool, &book, b, tag);
        }
        fresh.flush(&pool);
    });
}
