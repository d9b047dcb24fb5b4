//! Fuzz target `timers`: random insert / cancel / advance sequences against
//! the hub's timer heap (`src/time/heap.rs`), checked against a `BTreeMap`
//! model keyed by (deadline, insertion order): the same timers fire in the
//! same order, cancels return exactly the live timers' values, the next
//! deadline always agrees, and nothing is left or lost at the end.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use greenhub::__fuzz::{TimerHeap, TimerKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = Instant::now();
    let mut now = 0u64;
    let mut heap = TimerHeap::default();
    // (deadline, seq) -> value; `keys[seq]` is the heap's key for timer seq.
    let mut model: BTreeMap<(u64, usize), u64> = BTreeMap::new();
    let mut keys: Vec<(TimerKey, u64)> = Vec::new();
    let at = |t: u64| base + Duration::from_millis(t);
    for chunk in data.chunks(3) {
        let [op, a, b] = *chunk else { break };
        let arg = u16::from_le_bytes([a, b]) as u64;
        match op % 4 {
            // Insert: a deadline from now - 8 (already due) to now + ~500.
            0 | 1 => {
                let deadline = (now + arg % 512).saturating_sub(8);
                let seq = keys.len();
                let value = seq as u64 * 7 + 1;
                keys.push((heap.insert(at(deadline), value), deadline));
                model.insert((deadline, seq), value);
            }
            // Cancel any key ever handed out (fired, cancelled or live).
            2 => {
                if keys.is_empty() {
                    continue;
                }
                let seq = arg as usize % keys.len();
                let (key, deadline) = keys[seq];
                assert_eq!(
                    heap.cancel(key),
                    model.remove(&(deadline, seq)),
                    "cancel {seq}"
                );
            }
            // Advance the clock and fire everything due, in order.
            _ => {
                now += arg % 64;
                while let Some(v) = heap.pop_expired(at(now)) {
                    let (&k, &want) = model
                        .iter()
                        .next()
                        .expect("heap fired a timer the model lacks");
                    assert!(k.0 <= now, "fired early");
                    assert_eq!(v, want, "firing order");
                    model.remove(&k);
                }
                assert!(
                    model.keys().next().is_none_or(|k| k.0 > now),
                    "a due timer did not fire"
                );
            }
        }
        assert_eq!(heap.next_deadline(), model.keys().next().map(|k| at(k.0)));
        assert_eq!(heap.is_empty(), model.is_empty());
    }
    // Drain: everything left fires, in the model's order.
    while let Some(v) = heap.pop_expired(at(u64::from(u32::MAX))) {
        let (k, want) = model.pop_first().expect("extra timer");
        assert_eq!(v, want, "drain order at {k:?}");
    }
    assert!(model.is_empty() && heap.is_empty());
});
