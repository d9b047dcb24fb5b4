//! Runs the raw-greenlet examples (`examples/greenlet_switch.rs`,
//! `examples/greenlet_parent.rs`, `examples/greenlet_pipeline.rs`, included
//! as modules) and checks that they print exactly what greenlet's tutorials
//! print.

use std::cell::RefCell;
use std::rc::Rc;

#[allow(dead_code)]
#[path = "../examples/greenlet_switch.rs"]
mod greenlet_switch;

#[allow(dead_code)]
#[path = "../examples/greenlet_parent.rs"]
mod greenlet_parent;

#[allow(dead_code)]
#[path = "../examples/greenlet_pipeline.rs"]
mod greenlet_pipeline;

type Emit = Rc<dyn Fn(&str)>;

fn recorder() -> (Emit, Rc<RefCell<Vec<String>>>) {
    let lines: Rc<RefCell<Vec<String>>> = Rc::default();
    let l = lines.clone();
    (
        Rc::new(move |s: &str| l.borrow_mut().push(s.to_owned())),
        lines,
    )
}

#[test]
fn switch_example_prints_12_56_34() {
    let (emit, lines) = recorder();
    greenlet_switch::run(emit);
    assert_eq!(
        *lines.borrow(),
        ["12", "56", "34", "test2 left suspended: true"]
    );
}

#[test]
fn parent_example_prints_12_56_78_34() {
    let (emit, lines) = recorder();
    greenlet_parent::run(emit);
    assert_eq!(*lines.borrow(), ["12", "56", "78", "34", "both dead: true"]);
}

#[test]
fn pipeline_example_consumes_ten_values_in_order() {
    let (emit, lines) = recorder();
    assert_eq!(greenlet_pipeline::run(emit), 10);
    let mut want = Vec::new();
    for v in 0..10 {
        want.push(format!("produced {v}"));
        want.push(format!("consumed {v}"));
    }
    want.push("main got: 10 consumed".into());
    assert_eq!(*lines.borrow(), want);
}
