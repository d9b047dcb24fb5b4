//! Per-stack state across raw switches: `timeout` frames and `local!` values
//! belong to the stack (greenlet, raw greenlet, generator, thread) that made
//! them, so frames on different stacks never restore each other's deadline,
//! and a raw greenlet's `with` reference never outlives its value
//! (issue: `src/greenlet/stack_state.rs`). Also `no_switch`, the scope in
//! which a switch panics instead of breaking stack discipline.
//!
//! The use-after-free cases are also run under valgrind by `.ci/run`.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenhub::Builder;
use greenhub::raw::{Generator, GeneratorState, RawGreenlet};

/// The sequence of `ambient_thread`: a generator suspended inside its own
/// `timeout` frame, resumed (and finished) from inside the caller's frame,
/// then its stack reused and overwritten. A later sleep outside every frame
/// must neither be interrupted nor read the freed frame.
fn frames_of_a_finished_generator_do_not_leak(fill: u8) {
    let mut g: Generator<(), ()> = Generator::new(|co| {
        let r = greenhub::timeout(Duration::from_secs(100), || co.yield_(()));
        assert!(r.is_ok(), "the generator's own frame did not fire");
    });
    assert_eq!(g.resume(), Some(GeneratorState::Yielded(())));
    let outer = greenhub::timeout(Duration::from_secs(200), || {
        assert_eq!(g.resume(), Some(GeneratorState::Complete(())));
    });
    assert!(outer.is_ok());
    drop(g);
    // Reuse the freed stack and overwrite it.
    let mut z: Generator<(), ()> = Generator::new(move |_co| {
        let buf = [fill; 128 * 1024];
        std::hint::black_box(&buf);
    });
    z.resume();
    drop(z);
    let t = Instant::now();
    let r = catch_unwind(|| greenhub::sleep(Duration::from_millis(50)));
    assert!(
        r.is_ok(),
        "a sleep outside every timeout frame was interrupted (a dead frame's deadline)"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "the sleep was cut short after {:?}",
        t.elapsed()
    );
}

#[test]
fn generator_frames_do_not_leak_on_a_thread() {
    for fill in [0u8, 0xff, 0x11] {
        frames_of_a_finished_generator_do_not_leak(fill);
    }
}

#[test]
fn generator_frames_do_not_leak_in_a_greenlet() {
    for (mode, b) in common::mode_builders() {
        let rt = b.build().unwrap();
        rt.block_on(move || {
            for fill in [0u8, 0xff] {
                frames_of_a_finished_generator_do_not_leak(fill);
            }
            // And in a spawned greenlet.
            greenhub::spawn(|| frames_of_a_finished_generator_do_not_leak(0))
                .join()
                .unwrap();
        });
        drop(rt);
        eprintln!("{mode}: ok");
    }
}

#[test]
fn a_generators_own_frame_fires_inside_it_only() {
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let mut g: Generator<bool, ()> = Generator::new(|co| {
            let r = greenhub::timeout(Duration::from_millis(10), || {
                greenhub::sleep(Duration::from_secs(10));
            });
            co.yield_(r.is_err());
            // Its frame is gone: this sleep runs to its end.
            greenhub::sleep(Duration::from_millis(20));
            co.yield_(true);
        });
        let t = Instant::now();
        assert_eq!(g.resume(), Some(GeneratorState::Yielded(true)));
        // The caller has no frame of its own in force.
        greenhub::sleep(Duration::from_millis(20));
        assert_eq!(g.resume(), Some(GeneratorState::Yielded(true)));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(g.resume(), Some(GeneratorState::Complete(())));
    });
}

#[test]
fn an_outer_timeout_bounds_a_blocked_generator() {
    for (mode, b) in common::mode_builders() {
        let rt = b.build().unwrap();
        rt.block_on(move || {
            let dropped = std::rc::Rc::new(Cell::new(false));
            struct Flag(std::rc::Rc<Cell<bool>>);
            impl Drop for Flag {
                fn drop(&mut self) {
                    self.0.set(true);
                }
            }
            let d2 = dropped.clone();
            let mut g: Generator<u32, ()> = Generator::new(move |co| {
                let _flag = Flag(d2);
                co.yield_(1);
                greenhub::sleep(Duration::from_secs(30)); // cut by the caller's frame
                co.yield_(2);
            });
            assert_eq!(g.next(), Some(1));
            let t = Instant::now();
            let r = greenhub::timeout(Duration::from_millis(20), || g.next());
            assert!(r.is_err(), "{mode}: the caller's frame did not fire");
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{mode}: waited out the sleep"
            );
            // The generator unwound (its destructors ran) and is over.
            assert!(dropped.get(), "{mode}: the generator did not unwind");
            assert!(g.is_complete());
            // Nothing is left in force afterwards.
            let t = Instant::now();
            greenhub::sleep(Duration::from_millis(30));
            assert!(t.elapsed() >= Duration::from_millis(30));
        });
    }
}

#[test]
fn an_outer_timeout_bounds_a_raw_greenlet_and_reaches_its_frame() {
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let child = RawGreenlet::new(|x: u32| {
            greenhub::sleep(Duration::from_secs(30));
            x
        });
        let r = greenhub::timeout(Duration::from_millis(20), || child.switch(5));
        assert!(r.is_err());
        assert!(child.is_dead());
    });
}

greenhub::local! {
    static DATA: String = String::from("greenlet-local payload");
    static KEEP: RefCell<Option<RawGreenlet<()>>> = const { RefCell::new(None) };
    static COUNT: Cell<u32> = const { Cell::new(0) };
}

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Guard<'a>(&'a String);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        SEEN.lock().unwrap().push(self.0.clone());
    }
}

/// The sequence of `local_uaf`: a raw greenlet suspended inside `DATA.with`
/// is killed by the destructor of a later local of its hub greenlet, after
/// that greenlet's `DATA` was dropped. Its reference is to its own value,
/// which is still alive.
#[test]
fn a_raw_greenlet_suspended_in_with_outlives_its_hub_greenlets_locals() {
    SEEN.lock().unwrap().clear();
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        greenhub::spawn(|| {
            DATA.with(|_| ()); // index 0
            KEEP.with(|_| ()); // index 1
            let r = RawGreenlet::new(|_: ()| {
                DATA.with(|d| {
                    let _g = Guard(d);
                    let main = RawGreenlet::<()>::current().parent().unwrap();
                    let _ = main.switch(()); // suspended here, holding `d`
                });
            });
            r.switch(()).unwrap();
            KEEP.with(|k| *k.borrow_mut() = Some(r));
        })
        .join()
        .unwrap();
    });
    assert_eq!(*SEEN.lock().unwrap(), ["greenlet-local payload"]);
}

#[test]
fn raw_greenlets_and_generators_have_their_own_locals() {
    for (mode, b) in common::mode_builders() {
        let rt = b.build().unwrap();
        rt.block_on(move || {
            COUNT.with(|c| c.set(10));
            let mut g: Generator<u32, ()> = Generator::new(|co| {
                for _ in 0..3 {
                    COUNT.with(|c| c.set(c.get() + 1));
                    co.yield_(COUNT.with(Cell::get));
                }
            });
            assert_eq!(g.next(), Some(1), "{mode}");
            COUNT.with(|c| c.set(c.get() + 100));
            assert_eq!(g.next(), Some(2), "{mode}");
            assert_eq!(g.next(), Some(3), "{mode}");
            assert_eq!(g.next(), None);
            assert_eq!(COUNT.with(Cell::get), 110, "{mode}");

            let child = RawGreenlet::new(|x: u32| {
                COUNT.with(|c| c.set(x));
                let main = RawGreenlet::<u32>::current().parent().unwrap();
                let back = main.switch(COUNT.with(Cell::get)).unwrap();
                back + COUNT.with(Cell::get)
            });
            assert_eq!(child.switch(7).unwrap(), 7);
            assert_eq!(child.switch(1).unwrap(), 8);
            assert_eq!(COUNT.with(Cell::get), 110, "{mode}");
        });
    }
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

greenhub::local! {
    static COUNTED: Counted = Counted;
}

#[test]
fn a_raw_greenlets_locals_drop_when_it_ends() {
    DROPS.store(0, Ordering::SeqCst);
    // Returned.
    let g = RawGreenlet::new(|_: ()| COUNTED.with(|_| ()));
    g.switch(()).unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    // Killed by dropping the last handle while suspended.
    let g = RawGreenlet::new(|_: ()| {
        COUNTED.with(|_| ());
        let main = RawGreenlet::<()>::current().parent().unwrap();
        main.switch(()).unwrap();
    });
    g.switch(()).unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    drop(g);
    assert_eq!(DROPS.load(Ordering::SeqCst), 2);
    // A generator dropped while suspended.
    let mut gen_: Generator<(), ()> = Generator::new(|co| {
        COUNTED.with(|_| ());
        co.yield_(());
    });
    gen_.resume();
    drop(gen_);
    assert_eq!(DROPS.load(Ordering::SeqCst), 3);
}

fn panic_message(r: Result<(), Box<dyn std::any::Any + Send>>) -> String {
    let p = r.expect_err("expected a panic");
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn no_switch_turns_a_switch_into_a_clear_panic() {
    for (mode, b) in common::mode_builders() {
        let rt = b.build().unwrap();
        rt.block_on(move || {
            // Calls that complete without switching are fine.
            let m = greenhub::sync::Mutex::new(1);
            let (tx, rx) = greenhub::channel::bounded(1);
            let v = greenhub::no_switch(|| {
                *m.lock() += 1;
                tx.send(5).unwrap();
                rx.recv().unwrap() + *m.lock()
            });
            assert_eq!(v, 7, "{mode}");

            let msg = panic_message(catch_unwind(|| {
                greenhub::no_switch(|| greenhub::sleep(Duration::from_millis(1)))
            }));
            assert!(msg.contains("no_switch"), "{mode}: {msg}");
            let msg = panic_message(catch_unwind(|| greenhub::no_switch(greenhub::yield_now)));
            assert!(msg.contains("no_switch"), "{mode}: {msg}");
            // A blocking receive that would wait: the wait node is taken out
            // before the panic, so the channel still works afterwards.
            let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
                greenhub::no_switch(|| {
                    let _ = rx.recv();
                })
            })));
            assert!(msg.contains("no_switch"), "{mode}: {msg}");
            let h = greenhub::spawn(move || tx.send(9).unwrap());
            assert_eq!(rx.recv().unwrap(), 9);
            h.join().unwrap();

            // Raw switches too.
            let g = RawGreenlet::new(|x: u32| x);
            let msg = panic_message(catch_unwind(AssertUnwindSafe(|| {
                greenhub::no_switch(|| {
                    let _ = g.switch(1);
                })
            })));
            assert!(msg.contains("no_switch"), "{mode}: {msg}");
            assert!(!g.is_started());
            assert_eq!(g.switch(2).unwrap(), 2);

            // Nested scopes close in order; switching works after them.
            greenhub::no_switch(|| greenhub::no_switch(|| ()));
            greenhub::sleep(Duration::from_millis(1));
        });
    }
}

#[test]
fn no_switch_off_a_greenlet_lets_threads_block() {
    let t = Instant::now();
    greenhub::no_switch(|| greenhub::sleep(Duration::from_millis(10)));
    assert!(t.elapsed() >= Duration::from_millis(10));
    let g = RawGreenlet::new(|x: u32| x);
    let r = catch_unwind(AssertUnwindSafe(|| {
        greenhub::no_switch(|| {
            let _ = g.switch(1);
        })
    }));
    assert!(panic_message(r).contains("no_switch"));
}

#[test]
fn a_suspended_raw_greenlet_dropped_inside_no_switch_is_leaked_not_run() {
    DROPS.store(0, Ordering::SeqCst);
    let g = RawGreenlet::new(|_: ()| {
        let _c = Counted;
        let main = RawGreenlet::<()>::current().parent().unwrap();
        main.switch(()).unwrap();
    });
    g.switch(()).unwrap();
    greenhub::no_switch(|| drop(g));
    assert_eq!(
        DROPS.load(Ordering::SeqCst),
        0,
        "its code ran inside no_switch"
    );
}

/// `scoped_tls`: a thread-local holding a pointer to the current stack frame,
/// restored in LIFO order (the `scoped-tls` crate's pattern). Two greenlets of
/// one hub that interleave such scopes break the LIFO order; wrapped in
/// `no_switch`, the interleaving panics in the greenlet that tried to switch
/// inside its scope, and the thread-local is restored correctly.
mod scoped {
    use std::cell::Cell;
    thread_local!(static PTR: Cell<*const u64> = const { Cell::new(std::ptr::null()) });

    pub fn set<R>(t: &u64, f: impl FnOnce() -> R) -> R {
        struct Reset(*const u64);
        impl Drop for Reset {
            fn drop(&mut self) {
                PTR.with(|c| c.set(self.0));
            }
        }
        // The tool: no greenlet switch while the pointer is installed.
        greenhub::no_switch(|| {
            let prev = PTR.with(|c| c.replace(t));
            let _reset = Reset(prev);
            f()
        })
    }

    pub fn is_set() -> bool {
        PTR.with(|c| !c.get().is_null())
    }
}

#[test]
fn scoped_thread_locals_inside_no_switch_cannot_interleave() {
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let hold = |v: u64| {
            let local = v;
            scoped::set(&local, || greenhub::sleep(Duration::from_millis(10)));
        };
        let a = greenhub::spawn(move || hold(111));
        let b = greenhub::spawn(move || hold(222));
        let ea = a.join().unwrap_err();
        let eb = b.join().unwrap_err();
        assert!(ea.is_panic() && eb.is_panic());
        // Both scopes ended in order: nothing points into a dead stack.
        assert!(!scoped::is_set());
    });
}
