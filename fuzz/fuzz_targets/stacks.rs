//! Fuzz target `stacks`: random allocate / free / trim sequences against a
//! hub's stack pool and the global slab allocator (`src/stack/`). Checks that
//! every stack has at least the usable bytes asked for, that no two stacks
//! lent at once overlap (guard regions included), that a stack's contents
//! survive while it is lent (a canary at its bottom and top), that requests
//! above the maximum are refused with an error naming it, and that every
//! stack goes back to the allocator when the pool is dropped.
#![no_main]

use greenhub::__fuzz::{Stack, StackPool, stacks_outstanding};
use libfuzzer_sys::fuzz_target;

/// Writes `v` at the lowest and highest usable words of `s`.
fn paint(s: &Stack, v: u64) {
    for at in [s.bottom(), s.top() - 8] {
        // SAFETY: `at` is an aligned word inside the stack's usable range,
        // which this target owns while the stack is lent to it.
        unsafe { (at as *mut u64).write(v) };
    }
}

fn canary(s: &Stack) -> [u64; 2] {
    // SAFETY: as in `paint`: aligned words inside an owned usable range.
    [s.bottom(), s.top() - 8].map(|at| unsafe { (at as *const u64).read() })
}

fuzz_target!(|data: &[u8]| {
    let before = stacks_outstanding();
    let mut pool = StackPool::default();
    let mut lent: Vec<(Stack, u64)> = Vec::new();
    let mut next = 1u64;
    for pair in data.chunks(2) {
        let [op, arg] = *pair else { break };
        match op % 5 {
            0 | 1 if lent.len() < 512 => {
                // 1 KiB .. 1 MiB, or past the maximum.
                let size = if arg == 255 {
                    greenhub::MAX_STACK_SIZE + 1
                } else {
                    1024usize << (arg % 11)
                };
                match pool.alloc(size) {
                    Ok(s) => {
                        assert!(s.top() - s.bottom() >= size.max(greenhub::MIN_STACK_SIZE));
                        for (o, _) in &lent {
                            let apart = s.top() <= o.bottom() - o.guard()
                                || o.top() <= s.bottom() - s.guard();
                            assert!(apart, "{s:?} overlaps {o:?}");
                        }
                        paint(&s, next);
                        lent.push((s, next));
                        next += 1;
                    }
                    Err(e) => {
                        assert!(size > greenhub::MAX_STACK_SIZE, "alloc({size}): {e}");
                        assert!(e.to_string().contains("maximum"), "{e}");
                    }
                }
            }
            2 | 3 if !lent.is_empty() => {
                let (s, v) = lent.swap_remove(arg as usize % lent.len());
                assert_eq!(canary(&s), [v, v], "{s:?} was overwritten");
                pool.free(s);
            }
            4 => pool.trim(),
            _ => {}
        }
    }
    for (s, v) in lent {
        assert_eq!(canary(&s), [v, v], "{s:?} was overwritten");
        pool.free(s);
    }
    drop(pool);
    assert_eq!(stacks_outstanding(), before, "stacks leaked");
});
