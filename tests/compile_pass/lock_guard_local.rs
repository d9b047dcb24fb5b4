// Positive control for lock_guard_not_send and lock_of_rc_not_sync: a lock of
// `Send` data is shared with spawned greenlets through an `Arc`, and each
// greenlet takes its own guards (greenhub's and std's) inside its closure.
use std::sync::Arc;

fn main() {
    greenhub::run(|| {
        let m = Arc::new(greenhub::sync::Mutex::new(0u32));
        let l = Arc::new(greenhub::sync::RwLock::new(0u32));
        let s = Arc::new(std::sync::Mutex::new(0u32));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (m, l, s) = (m.clone(), l.clone(), s.clone());
                greenhub::spawn(move || {
                    *m.lock() += 1;
                    assert!(*l.read() < 4);
                    *l.write() += 1;
                    *s.lock().unwrap() += 1;
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!((*m.lock(), *l.read(), *s.lock().unwrap()), (4, 4, 4));
    });
}
