//! greenlet's parents: `test2`'s parent is `test1`, so when `test2`'s closure
//! returns, control (and its return value) goes to `test1`, not to main.
//! Prints 12, 56, 78, 34.
//!
//! Run with `cargo run --example greenlet_parent`.

use std::rc::Rc;

use greenhub::raw::RawGreenlet;

/// Where the example's lines go (stdout in `main`, a recorder in tests).
pub type Emit = Rc<dyn Fn(&str)>;

/// Runs the program, sending each printed line to `emit`.
pub fn run(emit: Emit) {
    let e = emit.clone();
    let test2 = RawGreenlet::new(move |()| {
        e("56");
        e("78");
    });
    let (e, child) = (emit.clone(), test2.clone());
    let test1 = RawGreenlet::new(move |()| {
        e("12");
        // Returns when test2 finishes: its parent is us.
        child.switch(()).unwrap();
        e("34");
    });
    test2.set_parent(&test1).unwrap();
    test1.switch(()).unwrap();
    emit(&format!(
        "both dead: {}",
        test1.is_dead() && test2.is_dead()
    ));
}

fn main() {
    run(Rc::new(|line: &str| println!("{line}")));
}
