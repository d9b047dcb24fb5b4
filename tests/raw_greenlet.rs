//! greenlet's raw switching API (`greenhub::raw`): the tutorials' programs
//! with their exact outputs, parents, throw, drop-kill, generators, and raw
//! greenlets inside greenhub greenlets.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use greenhub::raw::{
    Generator, GeneratorState, GreenletExit, ParentError, RawGreenlet, SwitchError,
};

type Log = Rc<RefCell<Vec<String>>>;
type Slot<V> = Rc<RefCell<Option<RawGreenlet<V>>>>;

fn log(l: &Log, s: &str) {
    l.borrow_mut().push(s.to_string());
}

fn get<V>(slot: &Slot<V>) -> RawGreenlet<V> {
    slot.borrow().clone().expect("greenlet slot empty")
}

/// Logs when dropped: shows that a greenlet's destructors ran.
struct Cleanup(Log, &'static str);
impl Drop for Cleanup {
    fn drop(&mut self) {
        log(&self.0, self.1);
    }
}

/// greenlet's first tutorial: test1 and test2 switch to each other.
fn test1_test2(reparent: bool) -> Vec<String> {
    let l: Log = Rc::default();
    let gr1: Slot<()> = Rc::default();
    let gr2: Slot<()> = Rc::default();
    let (l1, g2) = (l.clone(), gr2.clone());
    let g1 = RawGreenlet::new(move |()| {
        log(&l1, "12");
        get(&g2).switch(()).unwrap();
        log(&l1, "34");
    });
    let (l2, g1c) = (l.clone(), gr1.clone());
    let g2 = RawGreenlet::new(move |()| {
        let _c = Cleanup(l2.clone(), "gr2 cleaned up");
        log(&l2, "56");
        if !reparent {
            get(&g1c).switch(()).unwrap();
        }
        log(&l2, "78");
    });
    if reparent {
        g2.set_parent(&g1).unwrap();
    }
    *gr1.borrow_mut() = Some(g1.clone());
    *gr2.borrow_mut() = Some(g2.clone());
    g1.switch(()).unwrap();
    assert!(g1.is_dead());
    // Break the handle cycle, then drop the last handles.
    gr1.borrow_mut().take();
    gr2.borrow_mut().take();
    drop((g1, g2));
    l.take()
}

#[test]
fn tutorial_switching_prints_12_56_34() {
    assert_eq!(test1_test2(false), ["12", "56", "34", "gr2 cleaned up"]);
}

#[test]
fn tutorial_with_gr2_parent_gr1_prints_12_56_78_34() {
    assert_eq!(
        test1_test2(true),
        ["12", "56", "78", "gr2 cleaned up", "34"]
    );
}

#[test]
fn producer_consumer_passes_ten_values_in_order() {
    let consumed: Rc<RefCell<Vec<i32>>> = Rc::default();
    let producer_slot: Slot<i32> = Rc::default();
    let (c, p) = (consumed.clone(), producer_slot.clone());
    let consumer = RawGreenlet::new(move |first: i32| {
        let mut v = first;
        loop {
            if v < 0 {
                return c.borrow().len() as i32;
            }
            c.borrow_mut().push(v);
            v = get(&p).switch(0).unwrap();
        }
    });
    let cons = consumer.clone();
    let producer = RawGreenlet::new(move |_: i32| {
        for i in 0..10 {
            cons.switch(i * i).unwrap();
        }
        // Consumer's return value comes back to its parent (main).
        cons.switch(-1).unwrap()
    });
    *producer_slot.borrow_mut() = Some(producer.clone());
    assert_eq!(producer.switch(0).unwrap(), 10);
    assert_eq!(
        *consumed.borrow(),
        (0..10).map(|i| i * i).collect::<Vec<_>>()
    );
    assert!(consumer.is_dead());
    // The producer is still suspended in its last switch; kill it.
    assert_eq!(producer.kill(), Err(SwitchError::Exit));
    producer_slot.borrow_mut().take();
}

#[test]
fn child_return_value_reaches_parent() {
    let g = RawGreenlet::new(|x: u64| x * 3);
    assert_eq!(g.switch(14).unwrap(), 42);
    assert!(g.is_dead() && g.is_started() && !g.is_active());
}

#[test]
fn return_walks_up_past_dead_parents() {
    let p = RawGreenlet::new(|x: i32| x + 1);
    p.switch(0).unwrap();
    assert!(p.is_dead());
    let c = RawGreenlet::with_parent(&p, |x: i32| x * 2);
    // p is dead: c's result goes to main.
    assert_eq!(c.switch(5).unwrap(), 10);
}

#[test]
fn finishing_child_starts_unstarted_parent() {
    let p = RawGreenlet::new(|x: i32| x + 24);
    let c = RawGreenlet::with_parent(&p, |x: i32| x);
    assert_eq!(c.switch(42).unwrap(), 66);
    assert!(p.is_dead());
}

#[test]
fn switch_to_dead_greenlet_goes_to_parent() {
    let g = RawGreenlet::new(|x: i32| x);
    g.switch(1).unwrap();
    // Dead: goes to its parent, main, which is the caller.
    assert_eq!(g.switch(7).unwrap(), 7);
}

#[test]
fn switch_to_self_returns_the_value() {
    assert_eq!(RawGreenlet::<i32>::current().switch(3).unwrap(), 3);
}

#[test]
fn throw_into_suspended_greenlet_runs_destructors_and_returns_to_parent() {
    let l: Log = Rc::default();
    let l2 = l.clone();
    let g = RawGreenlet::new(move |x: i32| {
        let _c = Cleanup(l2.clone(), "destructor ran");
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        main.switch(x + 1).unwrap();
        log(&l2, "never");
        0
    });
    assert_eq!(g.switch(1).unwrap(), 2);
    assert_eq!(g.throw(GreenletExit), Err(SwitchError::Exit));
    assert!(g.is_dead());
    assert_eq!(*l.borrow(), ["destructor ran"]);
}

#[test]
fn throw_error_is_raised_in_the_parent_unless_caught() {
    // Uncaught: the payload reaches the parent's switch.
    let g = RawGreenlet::new(|x: i32| {
        RawGreenlet::<i32>::current()
            .parent()
            .unwrap()
            .switch(x)
            .unwrap()
    });
    g.switch(0).unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| g.throw(String::from("bad")))).unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("bad")
    );
    assert!(g.is_dead());

    // Caught inside: the greenlet goes on and answers.
    let g = RawGreenlet::new(|x: i32| {
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| main.switch(x).unwrap()));
        if r.is_err() { -1 } else { 1 }
    });
    g.switch(0).unwrap();
    assert_eq!(g.throw("recoverable").unwrap(), -1);
}

#[test]
fn throw_into_unstarted_greenlet_never_runs_it() {
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let g = RawGreenlet::new(move |x: i32| {
        *r.borrow_mut() = true;
        x
    });
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert!(g.is_dead() && !*ran.borrow());
    let g = RawGreenlet::new(|x: i32| x);
    let err = catch_unwind(AssertUnwindSafe(|| g.throw(7u8))).unwrap_err();
    assert_eq!(err.downcast_ref::<u8>(), Some(&7));
}

#[test]
fn panic_in_child_is_raised_in_parent() {
    let g = RawGreenlet::new(|x: i32| {
        if x > 0 {
            panic!("child failed");
        }
        x
    });
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(1))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"child failed"));
    assert!(g.is_dead());
    // The thread's tree still works.
    assert_eq!(RawGreenlet::new(|x: i32| x).switch(2).unwrap(), 2);
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_it() {
    let l: Log = Rc::default();
    let l2 = l.clone();
    let g = RawGreenlet::new(move |x: i32| {
        let _c = Cleanup(l2.clone(), "unwound");
        RawGreenlet::<i32>::current()
            .parent()
            .unwrap()
            .switch(x)
            .unwrap()
    });
    g.switch(1).unwrap();
    assert!(l.borrow().is_empty());
    drop(g);
    assert_eq!(*l.borrow(), ["unwound"]);
}

#[test]
fn parent_cycles_and_main_parent_are_refused() {
    let a = RawGreenlet::new(|x: i32| x);
    let b = RawGreenlet::with_parent(&a, |x: i32| x);
    let c = RawGreenlet::with_parent(&b, |x: i32| x);
    assert_eq!(a.set_parent(&a), Err(ParentError::Cycle));
    assert_eq!(a.set_parent(&c), Err(ParentError::Cycle));
    let main = RawGreenlet::<i32>::current();
    assert_eq!(main.set_parent(&a), Err(ParentError::Main));
    assert!(main.parent().is_none());
    // Re-parenting without a cycle is fine.
    c.set_parent(&a).unwrap();
    assert_eq!(c.parent().unwrap(), a);
    assert!(ParentError::Cycle.to_string().contains("cyclic"));
}

#[test]
fn families_of_different_types_nest() {
    // A greenlet of family i32 drives a generator (its own family).
    let g = RawGreenlet::new(|n: i32| {
        let numbers = Generator::new(move |co| {
            for i in 0..n {
                co.yield_(i);
            }
        });
        numbers.sum::<i32>()
    });
    assert_eq!(g.switch(5).unwrap(), 10);
}

#[test]
fn switching_an_outer_family_from_a_nested_one_is_refused() {
    let outer_main = RawGreenlet::<i32>::current();
    let g = RawGreenlet::new(move |x: i32| {
        let m = outer_main.clone();
        let mut inner = Generator::<SwitchError, ()>::new(move |co| {
            // We run nested inside `g`'s stack: suspending `g` from here
            // would be wrong, and is refused.
            co.yield_(m.switch(1).unwrap_err());
        });
        match inner.resume() {
            Some(GeneratorState::Yielded(e)) => {
                assert_eq!(e, SwitchError::WrongContext);
                x
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_eq!(g.switch(9).unwrap(), 9);
}

#[test]
fn generator_yields_and_returns() {
    let mut g = Generator::new(|co| {
        co.yield_("a");
        co.yield_("b");
        3usize
    });
    assert!(!g.is_complete());
    assert_eq!(g.resume(), Some(GeneratorState::Yielded("a")));
    assert_eq!(g.resume(), Some(GeneratorState::Yielded("b")));
    assert_eq!(g.resume(), Some(GeneratorState::Complete(3)));
    assert_eq!(g.resume(), None);
    assert!(g.is_complete());
}

#[test]
fn generator_as_iterator_and_drop_unwinds() {
    let l: Log = Rc::default();
    let l2 = l.clone();
    let mut g = Generator::new(move |co| {
        let _c = Cleanup(l2, "generator cleaned up");
        let mut i = 0u32;
        loop {
            co.yield_(i);
            i += 1;
        }
    });
    assert_eq!(g.by_ref().take(3).collect::<Vec<_>>(), [0, 1, 2]);
    drop(g);
    assert_eq!(*l.borrow(), ["generator cleaned up"]);
}

#[test]
fn generator_panic_reaches_the_resumer() {
    let mut g = Generator::<u8, ()>::new(|co| {
        co.yield_(1);
        panic!("gen failed");
    });
    assert_eq!(g.next(), Some(1));
    let err = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"gen failed"));
    assert_eq!(g.next(), None);
}

#[test]
fn many_generators_reuse_pooled_stacks() {
    for n in 0..2000u32 {
        let g = Generator::new(move |co| {
            co.yield_(n);
        });
        assert_eq!(g.collect::<Vec<_>>(), [n]);
    }
}

#[test]
fn raw_greenlets_inside_hub_greenlets_have_their_own_trees() {
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    let results = rt.block_on(|| {
        let hs: Vec<_> = (0..4)
            .map(|k| {
                greenhub::spawn(move || {
                    // A raw child that sleeps (parking the hub greenlet)
                    // between switches, while the other hub greenlets run
                    // their own raw greenlets on the same thread.
                    let child = RawGreenlet::new(|mut x: u64| {
                        let main = RawGreenlet::<u64>::current().parent().unwrap();
                        loop {
                            greenhub::sleep(Duration::from_millis(1));
                            x = main.switch(x + 1).unwrap();
                        }
                    });
                    let mut v = k * 100;
                    for _ in 0..5 {
                        v = child.switch(v).unwrap();
                    }
                    v
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results, [5, 105, 205, 305]);
}

#[test]
fn raw_greenlet_moved_to_another_hub_greenlet_is_refused() {
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let g = RawGreenlet::new(|x: i32| x);
        let h = greenhub::spawn_local(move || g.switch(1));
        assert_eq!(h.join().unwrap(), Err(SwitchError::WrongContext));
    });
}

#[test]
fn kill_of_hub_greenlet_unwinds_raw_children() {
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    let l: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>> = Default::default();
    let l2 = l.clone();
    rt.block_on(move || {
        let h = greenhub::spawn(move || {
            let l3 = l2.clone();
            let child = RawGreenlet::new(move |_: ()| {
                struct D(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);
                impl Drop for D {
                    fn drop(&mut self) {
                        self.0.lock().unwrap().push("raw child unwound");
                    }
                }
                let _d = D(l3);
                greenhub::sleep(Duration::from_secs(3600));
            });
            child.switch(()).unwrap();
        });
        greenhub::sleep(Duration::from_millis(5));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
    });
    assert_eq!(*l.lock().unwrap(), ["raw child unwound"]);
}

#[test]
fn killing_an_unstarted_greenlet_whose_closure_kills_another() {
    // Dropping the unstarted closure drops the last handle of a suspended
    // greenlet, which is killed (a nested switch) in the middle of the
    // first kill.
    let l: Log = Rc::default();
    let l2 = l.clone();
    let victim = RawGreenlet::new(move |x: i32| {
        let _c = Cleanup(l2.clone(), "victim unwound");
        RawGreenlet::<i32>::current()
            .parent()
            .unwrap()
            .switch(x)
            .unwrap()
    });
    victim.switch(0).unwrap();
    let g = RawGreenlet::new(move |x: i32| victim.switch(x).unwrap());
    let err = catch_unwind(AssertUnwindSafe(|| g.throw("stop"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"stop"));
    assert_eq!(*l.borrow(), ["victim unwound"]);
}
