// Positive control for raw_greenlet_not_send and generator_not_send: raw
// greenlets and generators are created and driven inside one greenlet (or
// thread), and only their `Send` results leave it.
use greenhub::raw::{Generator, RawGreenlet};

fn main() {
    let v = greenhub::run(|| {
        greenhub::spawn(|| {
            let g = RawGreenlet::new(|x: u32| x + 1);
            let from_raw = g.switch(1).unwrap();
            let generator: Generator<u32> = Generator::new(|co| {
                co.yield_(10);
                co.yield_(20);
            });
            from_raw + generator.sum::<u32>()
        })
        .join()
        .unwrap()
    });
    assert_eq!(v, 32);
}
