//! `greenhub::local!`: every greenlet sees its own value (also greenlets of
//! one hub interleaving at `yield_now`, where `thread_local!` would be
//! shared); values are dropped when their greenlet ends, whether it returned,
//! panicked or was killed; a panicking destructor does not take the hub down;
//! initialisers may use other keys; off a greenlet the value is per thread.

mod common;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{in_each_mode, with_deadline};
use greenhub::Builder;

/// Counts its drops in the static it points to.
struct Tracked(&'static AtomicUsize);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

greenhub::local! {
    static ID: Cell<u64> = Cell::new(0);
    static TRAIL: RefCell<Vec<u32>> = RefCell::new(Vec::new());
}

#[test]
fn each_greenlet_sees_its_own_value() {
    in_each_mode("own_value", |mode| {
        ID.with(|v| v.set(u64::MAX)); // the main greenlet's value
        let hs: Vec<_> = (0..40u64)
            .map(|i| {
                greenhub::spawn(move || {
                    assert_eq!(ID.with(Cell::get), 0, "a new greenlet starts fresh");
                    ID.with(|v| v.set(i));
                    for _ in 0..5 {
                        greenhub::sleep(Duration::from_millis(1));
                        assert_eq!(ID.with(Cell::get), i);
                    }
                    ID.with(Cell::get)
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u64, "{mode}");
        }
        assert_eq!(ID.with(Cell::get), u64::MAX, "{mode}");
    });
}

#[test]
fn greenlets_of_one_hub_interleaving_keep_separate_values() {
    let rt = Builder::new().single_threaded().build().unwrap();
    with_deadline("interleave", 60, move || {
        rt.block_on(|| {
            let worker = |tag: u32| {
                move || {
                    for step in 0..4 {
                        TRAIL.with(|t| t.borrow_mut().push(tag * 10 + step));
                        greenhub::yield_now(); // the other greenlet runs here
                    }
                    TRAIL.with(|t| t.borrow().clone())
                }
            };
            let a = greenhub::spawn(worker(1));
            let b = greenhub::spawn(worker(2));
            assert_eq!(a.join().unwrap(), [10, 11, 12, 13]);
            assert_eq!(b.join().unwrap(), [20, 21, 22, 23]);
            assert!(TRAIL.with(|t| t.borrow().is_empty()));
        })
    });
}

#[test]
fn values_are_dropped_when_the_greenlet_ends() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    greenhub::local! { static VALUE: Tracked = Tracked(&DROPS); }
    in_each_mode("dropped_at_end", |mode| {
        let before = DROPS.load(SeqCst);
        let hs: Vec<_> = (0..10)
            .map(|i| {
                greenhub::spawn(move || {
                    if i % 2 == 0 {
                        VALUE.with(|_| ()); // only these create a value
                    }
                    greenhub::sleep(Duration::from_millis(1));
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        // Dropped before `join` returned, and only where created.
        assert_eq!(DROPS.load(SeqCst) - before, 5, "{mode}");
    });
}

#[test]
fn killed_and_panicked_greenlets_drop_their_values() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    greenhub::local! { static VALUE: Tracked = Tracked(&DROPS); }
    in_each_mode("dropped_on_kill", |mode| {
        let before = DROPS.load(SeqCst);
        let victim = greenhub::spawn(|| {
            VALUE.with(|_| ());
            greenhub::sleep(Duration::from_secs(3600));
        });
        greenhub::sleep(Duration::from_millis(5));
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed(), "{mode}");
        assert_eq!(DROPS.load(SeqCst) - before, 1, "{mode}: after a kill");

        let failing = greenhub::spawn(|| {
            VALUE.with(|_| ());
            panic!("fails");
        });
        assert!(failing.join().unwrap_err().is_panic(), "{mode}");
        assert_eq!(DROPS.load(SeqCst) - before, 2, "{mode}: after a panic");
    });
}

#[test]
fn panicking_destructor_does_not_take_the_hub_down() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("local destructor panics");
        }
    }
    greenhub::local! {
        static BOMB: Bomb = Bomb;
        static AFTER: Tracked = Tracked(&DROPS);
    }
    in_each_mode("panicking_dtor", |mode| {
        let before = DROPS.load(SeqCst);
        let h = greenhub::spawn(|| {
            BOMB.with(|_| ());
            AFTER.with(|_| ());
            7
        });
        assert_eq!(h.join().unwrap(), 7, "{mode}: the outcome is kept");
        assert_eq!(
            DROPS.load(SeqCst) - before,
            1,
            "{mode}: the other value dropped too"
        );
        // The hub still runs greenlets.
        assert_eq!(greenhub::spawn(|| 1).join().unwrap(), 1, "{mode}");
    });
}

#[test]
fn initialisers_may_use_other_keys_but_not_their_own() {
    greenhub::local! {
        static BASE: u32 = 40;
        static DERIVED: u32 = BASE.with(|b| *b + 2);
        static SELFISH: u32 = SELFISH.with(|v| *v);
    }
    in_each_mode("reentrant_init", |mode| {
        assert_eq!(greenhub::spawn(|| DERIVED.with(|d| *d)).join().unwrap(), 42);
        let err = greenhub::spawn(|| SELFISH.with(|v| *v)).join().unwrap_err();
        assert!(err.is_panic(), "{mode}");
        assert!(err.to_string().contains("same key"), "{mode}: {err}");
    });
}

#[test]
fn off_a_greenlet_values_are_per_thread() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    greenhub::local! { static VALUE: Tracked = Tracked(&DROPS); }
    with_deadline("per_thread", 60, || {
        let before = DROPS.load(SeqCst);
        let threads: Vec<_> = (0..3u64)
            .map(|i| {
                std::thread::spawn(move || {
                    ID.with(|v| v.set(i + 100));
                    VALUE.with(|_| ());
                    std::thread::sleep(Duration::from_millis(5));
                    ID.with(Cell::get)
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().unwrap(), i as u64 + 100);
        }
        assert_eq!(DROPS.load(SeqCst) - before, 3, "dropped at thread exit");
    });
}
