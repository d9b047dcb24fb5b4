//! greenlet's first tutorial with greenhub's raw greenlets: `test1` and
//! `test2` switch to each other explicitly. Prints 12, 56, 34: `test1`
//! finishes and control returns to main, so `test2` never prints 78; it is
//! left suspended and unwound when its last handle is dropped.
//!
//! Run with `cargo run --example greenlet_switch`.

use std::cell::RefCell;
use std::rc::Rc;

use greenhub::raw::RawGreenlet;

/// Where the example's lines go (stdout in `main`, a recorder in tests).
pub type Emit = Rc<dyn Fn(&str)>;

type Slot = Rc<RefCell<Option<RawGreenlet<()>>>>;

/// Runs the program, sending each printed line to `emit`.
pub fn run(emit: Emit) {
    let gr1: Slot = Rc::default();
    let gr2: Slot = Rc::default();

    let (e, other) = (emit.clone(), gr2.clone());
    let test1 = RawGreenlet::new(move |()| {
        e("12");
        let gr2 = other.borrow().clone().unwrap();
        gr2.switch(()).unwrap();
        e("34");
    });
    let (e, other) = (emit.clone(), gr1.clone());
    let test2 = RawGreenlet::new(move |()| {
        e("56");
        let gr1 = other.borrow().clone().unwrap();
        gr1.switch(()).unwrap();
        e("78");
    });
    *gr1.borrow_mut() = Some(test1.clone());
    *gr2.borrow_mut() = Some(test2.clone());

    test1.switch(()).unwrap();

    // The two closures hold each other's handles: break that cycle so that
    // dropping the last handle unwinds the suspended test2.
    gr1.borrow_mut().take();
    gr2.borrow_mut().take();
    emit(&format!("test2 left suspended: {}", test2.is_active()));
}

fn main() {
    run(Rc::new(|line: &str| println!("{line}")));
}
