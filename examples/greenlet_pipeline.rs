//! A producer/consumer pair that passes values with raw greenlet switches,
//! no queue and no scheduler: the producer switches each value to the
//! consumer, which switches back for the next one. Ten values go through in
//! order; the consumer's return value (how many it consumed) reaches main,
//! its parent.
//!
//! Run with `cargo run --example greenlet_pipeline`.

use std::cell::RefCell;
use std::rc::Rc;

use greenhub::raw::RawGreenlet;

/// Where the example's lines go (stdout in `main`, a recorder in tests).
pub type Emit = Rc<dyn Fn(&str)>;

/// Messages of this family of greenlets.
#[derive(Debug)]
pub enum Msg {
    /// Producer to consumer: one value.
    Item(u32),
    /// Consumer to producer: send the next value.
    Next,
    /// Producer to consumer: no more values.
    Done,
    /// The consumer's result, for its parent.
    Consumed(usize),
}

/// Runs the program, sending each printed line to `emit`.
pub fn run(emit: Emit) -> usize {
    let producer: Rc<RefCell<Option<RawGreenlet<Msg>>>> = Rc::default();

    let (e, p) = (emit.clone(), producer.clone());
    let consumer = RawGreenlet::new(move |mut msg: Msg| {
        let producer = p.borrow().clone().unwrap();
        let mut n = 0;
        while let Msg::Item(v) = msg {
            e(&format!("consumed {v}"));
            n += 1;
            msg = producer.switch(Msg::Next).unwrap();
        }
        Msg::Consumed(n)
    });

    let (e, c) = (emit.clone(), consumer.clone());
    let prod = RawGreenlet::new(move |_start: Msg| {
        for v in 0..10 {
            e(&format!("produced {v}"));
            c.switch(Msg::Item(v)).unwrap();
        }
        // The consumer returns to its parent, main: this never resumes.
        c.switch(Msg::Done).unwrap()
    });
    *producer.borrow_mut() = Some(prod.clone());

    let total = match prod.switch(Msg::Next).unwrap() {
        Msg::Consumed(n) => n,
        other => panic!("unexpected {other:?}"),
    };
    emit(&format!("main got: {total} consumed"));
    // The producer is still suspended in its last switch.
    producer.borrow_mut().take();
    let _ = prod.kill();
    total
}

fn main() {
    run(Rc::new(|line: &str| println!("{line}")));
}
